//! Sealed files on disk: creating one (0600, never replacing a file) whose writes make
//! room through retention when the disk is full, finishing one in durability order (seal
//! the last chunk, fsync, rename, fsync the directory), and the fsyncs themselves. An fsync
//! that fails stops all writing (fsyncgate); failing to open a directory to sync it (out of
//! descriptors, say) is an ordinary I/O error, not an fsync failure.

use super::container::SealWriter;
use super::{Store, StoreError, io_err};
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// A file whose writes retry after retention made room when the disk is full.
pub(crate) struct RoomFile {
    pub(crate) file: File,
    store: Store,
}

impl Write for RoomFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match self.file.write(buf) {
                // write(2) reports ENOSPC only when it wrote nothing, so retrying is exact.
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                    if !super::retention::make_room(&self.store) {
                        return Err(e);
                    }
                }
                r => return r,
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Creates `path` (0600, never replacing a file) as a sealed container on a RoomFile.
pub(crate) fn create_sealed(
    store: &Store,
    path: &Path,
) -> Result<SealWriter<RoomFile>, StoreError> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))?;
    let room = RoomFile {
        file,
        store: store.clone(),
    };
    SealWriter::new(room, &store.inner.key, store.inner.config.chunk_size).map_err(|e| {
        // Not even the header fits: leave no empty file behind.
        let _ = std::fs::remove_file(path);
        io_err(path)(e)
    })
}

/// Seals the last chunk, fsyncs, renames `from` → `to` and fsyncs the directory.
pub(crate) fn seal_and_rename(
    store: &Store,
    sealer: SealWriter<RoomFile>,
    from: &Path,
    to: &Path,
) -> Result<u64, StoreError> {
    let (room, sealed) = sealer.finish().map_err(io_err(from))?;
    fsync_file(store, &room.file, from, false)?;
    std::fs::rename(from, to).map_err(io_err(to))?;
    if let Some(dir) = to.parent() {
        fsync_dir(store, dir)?;
    }
    Ok(sealed.file_bytes)
}

/// fsyncs `file` (named `path` in messages; only its data with `data_only`); a failure
/// stops writing.
/// fsyncs of clip files and directories since start (benchmarks report them per minute).
pub static FSYNCS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub(crate) fn fsync_file(
    store: &Store,
    file: &File,
    path: &Path,
    data_only: bool,
) -> Result<(), StoreError> {
    FSYNCS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let synced = fsync_fault().and_then(|()| match data_only {
        true => file.sync_data(),
        false => file.sync_all(),
    });
    synced.map_err(|e| store.stop_writing(format!("fsync of {} failed: {e}", path.display())))
}

/// Directory handles kept open at most (one per camera and day in use, with room).
const MAX_DIR_HANDLES: usize = 64;

/// fsyncs directory `dir` so a create, rename or unlink in it is durable. The handle stays
/// open for the next sync (no descriptor needed then). Opening it can fail without any
/// data at risk (EMFILE, ENFILE): that is an I/O error, writing goes on.
pub(crate) fn fsync_dir(store: &Store, dir: &Path) -> Result<(), StoreError> {
    let handle = dir_handle(store, dir)?;
    fsync_file(store, &handle, dir, false)
}

/// fsyncs `dir` after files in it were unlinked. A directory that is gone (removed by
/// hand with everything in it) has no unlink left to make durable, so that is not an error.
pub(crate) fn fsync_dir_after_unlink(store: &Store, dir: &Path) -> Result<(), StoreError> {
    match fsync_dir(store, dir) {
        Err(StoreError::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn dir_handle(store: &Store, dir: &Path) -> Result<std::sync::Arc<File>, StoreError> {
    let mut handles = store
        .inner
        .dir_handles
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(h) = handles.get(dir) {
        return Ok(h.clone());
    }
    let handle = std::sync::Arc::new(File::open(dir).map_err(io_err(dir))?);
    if handles.len() >= MAX_DIR_HANDLES {
        // Dated directories of days gone by go first: no order is kept, any will do.
        handles.clear();
    }
    handles.insert(dir.to_path_buf(), handle.clone());
    Ok(handle)
}

#[cfg(feature = "test-faults")]
fn fsync_fault() -> io::Result<()> {
    crate::faults::fsync_hook()
}

#[cfg(not(feature = "test-faults"))]
fn fsync_fault() -> io::Result<()> {
    Ok(())
}
