//! The space reserve: a file of zeros beside the database (`sentrix.reserve`), kept so
//! that the index can always be written when the disk is full. SQLite needs a few pages
//! of free space to record a deletion (the garbage row, the WAL); on a full card it has
//! none, and retention could then never delete anything. The reserve is released first
//! (retention.rs `make_room`, and `Store::open` on a full disk), and made again by the
//! next retention pass once there is room for it beyond `min_free_percent`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub const RESERVE_NAME: &str = "sentrix.reserve";
const MIN_RESERVE_BYTES: u64 = 256 * 1024;
const MAX_RESERVE_BYTES: u64 = 8 * 1024 * 1024;

/// The reserve of the index at `database`: beside it, on the same filesystem.
pub fn path(database: &Path) -> PathBuf {
    database.with_file_name(RESERVE_NAME)
}

/// How big the reserve is on a filesystem of `total_bytes`: 2 %, within 256 KiB..8 MiB.
pub fn size_for(total_bytes: u64) -> u64 {
    (total_bytes / 50).clamp(MIN_RESERVE_BYTES, MAX_RESERVE_BYTES)
}

/// Deletes the reserve; true when there was one (its space is free now).
pub fn release(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    match std::fs::remove_file(path) {
        Ok(()) => {
            tracing::warn!(
                "the disk is full: released the {} KiB space reserve so the index can record deletions",
                meta.len() / 1024
            );
            true
        }
        Err(e) => {
            tracing::error!("cannot release the space reserve {}: {e}", path.display());
            false
        }
    }
}

/// Makes the reserve if it is missing and `free_bytes` leaves room for it beyond
/// `keep_free_bytes`. Written out (not sparse), synced; a failure leaves no file.
pub fn ensure(path: &Path, total_bytes: u64, free_bytes: u64, keep_free_bytes: u64) {
    if path.exists() {
        return;
    }
    let size = size_for(total_bytes);
    if free_bytes < size.saturating_add(keep_free_bytes) {
        return;
    }
    if let Err(e) = write_zeros(path, size) {
        let _ = std::fs::remove_file(path);
        tracing::warn!("cannot make the space reserve {}: {e}", path.display());
    }
}

fn write_zeros(path: &Path, size: u64) -> std::io::Result<()> {
    let tmp = path.with_extension("reserve.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    let block = vec![0u8; 64 * 1024];
    let mut left = size;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        if let Err(e) = f.write_all(&block[..n]) {
            drop(f);
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        left -= n as u64;
    }
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
