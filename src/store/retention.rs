//! Retention in tiers. Every clip and segment has a tier from the events over it (db.rs
//! `RETIER_*`): 0 footage without an event; 1 with a detection or motion event (its review
//! item is not an alert), 2 with one acknowledged; 3 with an event of an alert item, 4 with
//! one acknowledged; 5 with an event marked keep. So under pressure an alert's footage
//! outlives a detection's, reviewed or not. A pass deletes
//! - by age: tier 0 older than `continuous_days`; tiers 1 to 4 older than `event_days`;
//!   tier 5 never for its age;
//! - under pressure (all clips together, with the audit log bounded by its rotation, over
//!   `max_size_gb`, or the filesystem below `min_free_percent` free): lowest tier first,
//!   oldest first within a tier.
//!
//! Then it drops the events whose footage is all gone. It runs periodically and, through
//! `make_room`, at once when a write hits a full disk. Clips and segments being written
//! are `*.partial` files without rows, so an open one is never cut. Every deletion is
//! logged with its reason. On a full disk the space reserve and the rotated audit log go
//! before any clip: clips take priority.

use super::{Store, StoreError, db};
use rusqlite::{OptionalExtension, named_params};
use std::path::{Path, PathBuf};

// The statements this file runs (named parameters, bound with named_params!).
/// The clips to go under pressure, in order: lowest tier first, then oldest.
const PRESSURE_ORDER: &str = "SELECT id FROM clips ORDER BY tier, start_ms, id LIMIT :limit";
const NEXT_UNDER_PRESSURE: &str = "SELECT id FROM clips ORDER BY tier, start_ms, id LIMIT 1";
/// The oldest clip of a tier set that ended before a cutoff (retention by age).
const OLDEST_ENDED_BEFORE: &str = "SELECT id FROM clips
    WHERE tier BETWEEN :min_tier AND :max_tier AND end_ms < :before_ms
    AND (:uploaded_first = 0 OR NOT EXISTS (SELECT 1 FROM offsite_clips o
         WHERE o.clip_id = clips.id AND o.state != 'uploaded'))
    ORDER BY start_ms, id LIMIT 1";

#[derive(Debug, Clone, Copy)]
pub struct RetentionPolicy {
    pub max_size_bytes: u64,
    /// Age limit of event footage (tiers 1 and 2); 0 = none.
    pub event_ms: i64,
    /// Age limit of footage without an event (tier 0); 0 = none.
    pub continuous_ms: i64,
    pub min_free_percent: f64,
    /// (pre-roll, post-roll) in ms: footage this close to an event counts as its footage.
    pub event_margin_ms: (i64, i64),
}

impl RetentionPolicy {
    /// Deletes nothing: for temporary stores (selftest, benchmarks, tests).
    pub const KEEP_ALL: Self = Self {
        max_size_bytes: u64::MAX,
        event_ms: 0,
        continuous_ms: 0,
        min_free_percent: 0.0,
        event_margin_ms: (5_000, 10_000),
    };
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

/// The clip to delete next under pressure: lowest tier, then oldest.
fn next_under_pressure(store: &Store) -> Result<Option<i64>, StoreError> {
    Ok(store
        .conn()
        .query_row(NEXT_UNDER_PRESSURE, [], |r| r.get("id"))
        .optional()?)
}

/// The oldest clip of tiers `tiers` that ended before `before_ms`.
fn oldest_ended_before(
    store: &Store,
    tiers: (i64, i64),
    before_ms: i64,
) -> Result<Option<i64>, StoreError> {
    Ok(store
        .conn()
        .query_row(
            OLDEST_ENDED_BEFORE,
            named_params! {":min_tier": tiers.0, ":max_tier": tiers.1, ":before_ms": before_ms,
            ":uploaded_first": store.inner.config.offsite_uploaded_first},
            |r| r.get("id"),
        )
        .optional()?)
}

fn delete(
    store: &Store,
    id: i64,
    reason: &str,
    report: &mut RetentionReport,
) -> Result<(), StoreError> {
    let rec = store.clip(id)?;
    warn_if_not_offsite(store, id, reason);
    let freed = store.delete_clip(id)?;
    tracing::info!(
        "retention: deleted {} {id} ({}, {}, tier {}, {} bytes): {reason}",
        match rec.kind {
            super::ClipKind::Event => "clip",
            super::ClipKind::Segment => "segment",
        },
        rec.camera_id,
        rec.path,
        rec.tier,
        freed
    );
    report.deleted += 1;
    report.freed_bytes += freed;
    Ok(())
}

/// A clip bound for the bucket but not there yet is deleted only under pressure (age
/// limits wait for it when `require_uploaded_before_delete` is set): say so loudly.
fn warn_if_not_offsite(store: &Store, id: i64, reason: &str) {
    use super::OffsiteState;
    match store.offsite_state(id) {
        Ok(OffsiteState::Local | OffsiteState::Uploaded) | Err(_) => {}
        Ok(state) if store.inner.config.offsite_uploaded_first => tracing::error!(
            "retention: deleting clip {id} before its off-site copy exists ({}): {reason}; \
             the disk is too small for the upload backlog",
            state.label()
        ),
        Ok(state) => tracing::warn!(
            "retention: clip {id} is deleted before its off-site copy exists ({})",
            state.label()
        ),
    }
}

/// One retention pass with the store's policy.
pub fn enforce(store: &Store, now_ms: i64) -> Result<RetentionReport, StoreError> {
    let policy = store.inner.config.retention;
    let mut report = RetentionReport::default();
    by_age(store, &policy, now_ms, &mut report)?;
    loop {
        let total: i64 = store
            .conn()
            .query_row(db::TOTAL_FILE_BYTES, [], |r| r.get("bytes"))?;
        if total as u64 + audit_log_bytes(store) <= policy.max_size_bytes {
            break;
        }
        let Some(id) = next_under_pressure(store)? else {
            break;
        };
        delete(store, id, "recordings exceed max_size_gb", &mut report)?;
    }
    let root = store.recordings_dir().to_path_buf();
    while let Some((total, free)) = fs_space(&root) {
        if total == 0 || free as f64 * 100.0 / total as f64 >= policy.min_free_percent {
            break;
        }
        let Some(id) = next_under_pressure(store)? else {
            break;
        };
        delete(store, id, "free space below min_free_percent", &mut report)?;
    }
    let gone = store.prune_events_without_footage()?;
    if gone > 0 {
        tracing::info!("retention: deleted {gone} events whose footage is gone");
    }
    store.prune_empty_review_items()?;
    keep_reserve(store);
    Ok(report)
}

/// The age limits: footage without events after `continuous_days`, event footage (not
/// marked keep) after `event_days`, and events without a clip after `event_days`.
fn by_age(
    store: &Store,
    policy: &RetentionPolicy,
    now_ms: i64,
    report: &mut RetentionReport,
) -> Result<(), StoreError> {
    let limits = [
        (
            (0, 0),
            policy.continuous_ms,
            "no event in it, older than continuous_days",
        ),
        ((1, 4), policy.event_ms, "older than event_days"),
    ];
    for (tiers, age_ms, reason) in limits {
        if age_ms <= 0 {
            continue;
        }
        while let Some(id) = oldest_ended_before(store, tiers, now_ms - age_ms)? {
            delete(store, id, reason, report)?;
        }
    }
    if policy.event_ms > 0 {
        let pruned = store.prune_unlinked_events(now_ms - policy.event_ms)?;
        if pruned > 0 {
            tracing::info!(
                "retention: deleted {pruned} events without footage, older than event_days"
            );
        }
    }
    Ok(())
}

/// Called when a write hit ENOSPC: deletes the oldest clip(s) until 5 % of the
/// filesystem (at least 1 MiB) is free. False when nothing could be deleted.
///
/// Order, so that a full disk never blocks its own cleanup:
/// 1. release the space reserve (reserve.rs): SQLite can now record deletions;
/// 2. delete the oldest clips in the usual durability order (row → unlink);
/// 3. if the index still cannot be written, unlink the oldest clips' files first and
///    drop their rows when it can: a row without its file is answered 410 and removed by
///    the next pass or the start-up sweep, which is crash-safe.
pub fn make_room(store: &Store) -> bool {
    let root = store.recordings_dir().to_path_buf();
    super::reserve::release(&super::reserve::path(&store.inner.config.database));
    drop_old_audit_log(store);
    let mut deleted_any = false;
    let mut unlinked: Vec<i64> = Vec::new();
    loop {
        let (total, free) = fs_space(&root).unwrap_or((0, 0));
        let want = (total / 20).max(1 << 20);
        if free >= want && deleted_any {
            return true;
        }
        let candidate = match oldest_excluding(store, &unlinked) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("retention: cannot read the index to make room: {e}");
                return deleted_any;
            }
        };
        let Some(id) = candidate else {
            if !deleted_any {
                tracing::error!(
                    "the disk holding {} is full and sentrix has no clip left to delete: \
                     free space by hand",
                    root.display()
                );
            }
            return deleted_any;
        };
        let mut report = RetentionReport::default();
        match delete(store, id, "the disk is full", &mut report) {
            Ok(()) => deleted_any = true,
            Err(e) => match store.unlink_clip_files(id) {
                Ok(freed) => {
                    tracing::warn!(
                        "retention: the index cannot be written ({e}); deleted the files of clip {id} first ({freed} bytes), its row goes when the index can be written"
                    );
                    unlinked.push(id);
                    deleted_any = true;
                }
                Err(e2) => {
                    tracing::error!(
                        "retention: could not delete clip {id} to make room: {e}; {e2}"
                    );
                    return deleted_any;
                }
            },
        }
    }
}

/// The audit log beside the index (audit.rs writes it there) and its rotated older half.
fn audit_logs(store: &Store) -> [PathBuf; 2] {
    let current = store.inner.config.database.with_file_name("audit.log");
    let old = crate::audit::rotated(&current);
    [current, old]
}

/// Bytes of the audit logs: they count towards `max_size_gb` with the clips.
fn audit_log_bytes(store: &Store) -> u64 {
    audit_logs(store)
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// Clips take priority over logs: on a full disk the rotated audit log goes first.
fn drop_old_audit_log(store: &Store) {
    let [_, old] = audit_logs(store);
    if std::fs::remove_file(&old).is_ok() {
        tracing::warn!(
            "the disk is full: deleted {} to keep recording",
            old.display()
        );
    }
}

/// The next clip under pressure (lowest tier, oldest) not in `skip` (clips whose files
/// are already gone).
fn oldest_excluding(store: &Store, skip: &[i64]) -> Result<Option<i64>, StoreError> {
    let conn = store.conn();
    let mut stmt = conn.prepare(PRESSURE_ORDER)?;
    let limit = skip.len() as i64 + 1;
    let ids = stmt.query_map(rusqlite::named_params! {":limit": limit}, |r| {
        r.get::<_, i64>("id")
    })?;
    for id in ids {
        let id = id?;
        if !skip.contains(&id) {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// Keeps the space reserve in place when there is room for it beyond `min_free_percent`.
pub fn keep_reserve(store: &Store) {
    let root = store.recordings_dir();
    let db_dir = store.inner.config.database.parent().unwrap_or(root);
    let Some((total, free)) = fs_space(db_dir) else {
        return;
    };
    let keep_free = (total as f64 * store.inner.config.retention.min_free_percent / 100.0) as u64;
    let path = super::reserve::path(&store.inner.config.database);
    super::reserve::ensure(&path, total, free, keep_free);
}

/// Whether the filesystem of the recordings is below `min_free_percent` or the reserve is
/// missing: then retention should run now rather than at its next period.
pub fn needs_pass(store: &Store) -> bool {
    let policy = store.inner.config.retention;
    let low = fs_space(store.recordings_dir()).is_some_and(|(total, free)| {
        total > 0 && (free as f64 * 100.0 / total as f64) < policy.min_free_percent
    });
    low || !super::reserve::path(&store.inner.config.database).exists()
}

/// Before the index is opened on a full disk (it could not even create its WAL): frees
/// `want_bytes` by releasing the reserve, then by deleting the oldest clip files found by
/// name (their rows are dropped by the sweep that follows: crash-safe). Thumbnails and
/// snapshots of the same clip go with it.
pub fn reclaim_before_open(root: &Path, database: &Path, want_bytes: u64) {
    let free = |p: &Path| fs_space(p).map_or(u64::MAX, |(_, f)| f);
    let db_dir = database.parent().unwrap_or(root);
    if free(db_dir) >= want_bytes {
        return;
    }
    super::reserve::release(&super::reserve::path(database));
    if free(db_dir) >= want_bytes {
        return;
    }
    let mut clips = clip_files_by_age(root);
    clips.reverse();
    while free(db_dir) < want_bytes {
        let Some(clip) = clips.pop() else { break };
        let stem = clip
            .to_string_lossy()
            .trim_end_matches(".mp4.sntx")
            .to_string();
        for p in [clip.clone(), PathBuf::from(format!("{stem}.jpg.sntx"))] {
            if std::fs::remove_file(&p).is_ok() {
                tracing::warn!(
                    "the disk is full at start: deleted {} before opening the index",
                    p.display()
                );
            }
        }
    }
}

/// Every `*.mp4.sntx` under `root` (camera/date/), oldest first by the start in its name.
fn clip_files_by_age(root: &Path) -> Vec<PathBuf> {
    let mut out: Vec<(i64, PathBuf)> = Vec::new();
    let dirs = std::fs::read_dir(root).into_iter().flatten().flatten();
    for day in dirs.flat_map(|cam| {
        std::fs::read_dir(cam.path())
            .into_iter()
            .flatten()
            .flatten()
    }) {
        for f in std::fs::read_dir(day.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = f.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !name.ends_with(".mp4.sntx") {
                continue;
            }
            if let Some(start) = name.split('-').next().and_then(|s| s.parse().ok()) {
                out.push((start, path));
            }
        }
    }
    out.sort();
    out.into_iter().map(|(_, p)| p).collect()
}
