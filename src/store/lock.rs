//! One clip writer per data directory: `sentrix run` (and the commands that write clips
//! into the configured store) hold an exclusive flock on `sentrix.lock` beside the
//! database, with their pid written in it. A second one would sweep away the first one's
//! unfinished clips, so it exits at once naming the first one's pid. Account commands
//! (`sentrix user`, `sentrix init`) take no lock and keep working beside a running
//! instance. The kernel drops the lock when the process dies, so a crash leaves nothing to
//! clean up.

use anyhow::{Context, bail};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Held for as long as the process writes clips.
pub struct DataLock {
    _file: std::fs::File,
}

impl DataLock {
    pub fn acquire(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            crate::store::keys::create_private_dir(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))?;
        // SAFETY: flock on a descriptor we own; it does not touch memory.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                bail!(
                    "another sentrix process (pid {}) is using the data directory {}: `sentrix run`, or a command that writes clips; stop it first (its lock is {})",
                    pid.trim(),
                    path.parent().unwrap_or(Path::new(".")).display(),
                    path.display()
                );
            }
            return Err(err).with_context(|| format!("cannot lock {}", path.display()));
        }
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "{}", std::process::id())?;
        file.sync_all()?;
        Ok(Self { _file: file })
    }
}
