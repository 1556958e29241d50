//! Retention: deletes the oldest clips when they are older than `max_age_days`, when all
//! clips together exceed `max_size_gb`, or when the filesystem has less than
//! `min_free_percent` free. Runs periodically and, through `make_room`, at once when a
//! write hits a full disk. Clips being written are `*.partial` files without rows, so they
//! are never candidates. Every deletion is logged with its reason.

use super::{Store, StoreError, db};
use rusqlite::OptionalExtension;
use std::path::Path;

#[derive(Debug, Clone, Copy)]
pub struct RetentionPolicy {
    pub max_size_bytes: u64,
    /// 0 = no age limit.
    pub max_age_ms: i64,
    pub min_free_percent: f64,
}

impl RetentionPolicy {
    /// Deletes nothing: for temporary stores (selftest, benchmarks, tests).
    pub const KEEP_ALL: Self = Self {
        max_size_bytes: u64::MAX,
        max_age_ms: 0,
        min_free_percent: 0.0,
    };

    pub fn from_config(r: &crate::config::Retention) -> Self {
        Self {
            max_size_bytes: (r.max_size_gb * 1e9) as u64,
            max_age_ms: (r.max_age_days * 86_400_000.0) as i64,
            min_free_percent: r.min_free_percent,
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RetentionReport {
    pub deleted: usize,
    pub freed_bytes: u64,
}

/// (total, available) bytes of the filesystem holding `path`.
pub fn fs_space(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills a plain struct for a valid NUL-terminated path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frsize = st.f_frsize as u64;
    Some((st.f_blocks as u64 * frsize, st.f_bavail as u64 * frsize))
}

fn oldest(store: &Store) -> Result<Option<(i64, i64)>, StoreError> {
    Ok(store
        .conn()
        .query_row(db::OLDEST_CLIP, [], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

fn delete(
    store: &Store,
    id: i64,
    reason: &str,
    report: &mut RetentionReport,
) -> Result<(), StoreError> {
    let rec = store.clip(id)?;
    let freed = store.delete_clip(id)?;
    tracing::info!(
        "retention: deleted clip {id} ({}, {}, {} bytes): {reason}",
        rec.camera_id,
        rec.path,
        freed
    );
    report.deleted += 1;
    report.freed_bytes += freed;
    Ok(())
}

/// One retention pass with the store's policy.
pub fn enforce(store: &Store, now_ms: i64) -> Result<RetentionReport, StoreError> {
    let policy = store.inner.config.retention;
    let mut report = RetentionReport::default();
    if policy.max_age_ms > 0 {
        while let Some((id, start_ms)) = oldest(store)? {
            if start_ms >= now_ms - policy.max_age_ms {
                break;
            }
            delete(store, id, "older than max_age_days", &mut report)?;
        }
        let pruned = store.prune_unlinked_events(now_ms - policy.max_age_ms)?;
        if pruned > 0 {
            tracing::info!(
                "retention: deleted {pruned} events without a clip, older than max_age_days"
            );
        }
    }
    loop {
        let total: i64 = store
            .conn()
            .query_row(db::TOTAL_FILE_BYTES, [], |r| r.get(0))?;
        if (total as u64) <= policy.max_size_bytes {
            break;
        }
        let Some((id, _)) = oldest(store)? else { break };
        delete(store, id, "recordings exceed max_size_gb", &mut report)?;
    }
    let root = store.recordings_dir().to_path_buf();
    while let Some((total, free)) = fs_space(&root) {
        if total == 0 || free as f64 * 100.0 / total as f64 >= policy.min_free_percent {
            break;
        }
        let Some((id, _)) = oldest(store)? else { break };
        delete(store, id, "free space below min_free_percent", &mut report)?;
    }
    Ok(report)
}

/// Called when a write hit ENOSPC: deletes the oldest clip(s) until 5 % of the
/// filesystem (at least 1 MiB) is free. False when nothing could be deleted.
pub fn make_room(store: &Store) -> bool {
    let root = store.recordings_dir().to_path_buf();
    let mut deleted_any = false;
    loop {
        let (total, free) = fs_space(&root).unwrap_or((0, 0));
        let want = (total / 20).max(1 << 20);
        if free >= want && deleted_any {
            return true;
        }
        match oldest(store) {
            Ok(Some((id, _))) => {
                let mut report = RetentionReport::default();
                if let Err(e) = delete(store, id, "the disk is full", &mut report) {
                    tracing::error!("retention: could not delete clip {id} to make room: {e}");
                    return deleted_any;
                }
                deleted_any = true;
            }
            _ => {
                if !deleted_any {
                    tracing::error!(
                        "the disk holding {} is full and no clip is left to delete",
                        root.display()
                    );
                }
                return deleted_any;
            }
        }
    }
}
