//! The start-up sweep, before any write. In order:
//! 1. finish deletions left in `garbage`;
//! 2. every file under recordings_dir without a row:
//!    - `*.recover` (an interrupted salvage): removed;
//!    - `*.partial`: recovered up to its last complete fragment (recover.rs) or removed
//!      when nothing in it plays;
//!    - a clip (`*.mp4.sntx`) that lost its row in a crash, or with the whole index: indexed
//!      when it reads to the end, else salvaged up to its last good fragment;
//!    - a thumbnail (`<clip>.jpg.sntx`) or event snapshot (`…-event<N>-….jpg.sntx`):
//!      linked back to its clip; a snapshot gets its event row back (camera, time, label);
//!    - one of these that cannot be read at all: moved to `.quarantine/` and named in the
//!      log (files sentrix does not write are left alone);
//! 3. every indexed clip, cheaply: its file must exist (else the row goes), have the size
//!    the row says, and, if it changed since the last sweep, open (header, first and last
//!    chunk authenticate); a damaged one is salvaged in place or flagged, and named in
//!    the log. (A file changed behind the store's back is caught here; older damage is
//!    caught when it is served: 410 and flagged.)
//!
//! One bad file never stops the sweep: it is named and quarantined, and start-up goes on.
//! Only a stopped store (an fsync failed) ends it.

use super::container::OpenReader;
use super::recover::{parse_rel, record_of_file, recover_partial, salvage_orphan};
use super::scrub::FoundBy;
use super::{ClipRecord, Store, StoreError, db, io_err};
use crate::media::mp4scan::Mp4Scan;
use rusqlite::{OptionalExtension, named_params};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

// The statements this file runs (named parameters, bound with named_params!).
const SELECT_CLIP_CHECKS: &str = "SELECT id, path, file_bytes FROM clips WHERE damage = ''";
const SELECT_META: &str = "SELECT value FROM meta WHERE key = :key";
const SET_META: &str = "INSERT INTO meta (key, value) VALUES (:key, :value)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value";
const CLIP_ID_BY_PATH: &str = "SELECT id FROM clips WHERE path = :path";
const INSERT_RESTORED_EVENT: &str = "INSERT INTO events (camera_id, label, start_ms, end_ms,
    clip_id, snapshot_path, snapshot_bytes)
    VALUES (:camera_id, :label, :start_ms, :end_ms,
    (SELECT id FROM clips WHERE camera_id = :camera_id AND start_ms <= :start_ms
     AND end_ms >= :start_ms ORDER BY start_ms DESC LIMIT 1), :path, :bytes)";
const SELECT_GARBAGE: &str = "SELECT path FROM garbage";
const SELECT_ALL_PATHS: &str = "SELECT path FROM clips UNION ALL SELECT path FROM thumbnails
    UNION ALL SELECT snapshot_path FROM events WHERE snapshot_path IS NOT NULL";

/// Where files that are not clips, or cannot be read at all, are moved (not deleted).
pub const QUARANTINE_DIR: &str = ".quarantine";

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub garbage_removed: usize,
    pub partials_recovered: usize,
    pub partials_removed: usize,
    pub orphans_indexed: usize,
    pub orphans_salvaged: usize,
    pub thumbnails_relinked: usize,
    pub snapshots_relinked: usize,
    pub quarantined: usize,
    pub rows_without_file: usize,
    /// Indexed clips found damaged: salvaged (truncated) or flagged.
    pub damaged: usize,
    /// Events given a review item (after a rebuild or an upgrade).
    pub events_placed: usize,
}

pub fn run(store: &Store) -> Result<SweepReport, StoreError> {
    let mut report = SweepReport::default();
    finish_garbage(store, &mut report)?;
    let root = store.inner.config.recordings_dir.clone();
    let mut files = Vec::new();
    walk(&root, 0, &mut files).map_err(io_err(&root))?;
    files.sort();
    let mut known = indexed_paths(store)?;
    // Clips before pictures, so thumbnails and snapshots find their clip's row.
    let (pictures, others): (Vec<_>, Vec<_>) = files
        .iter()
        .partition(|p| p.to_string_lossy().ends_with(".jpg.sntx"));
    for path in others.into_iter().chain(pictures) {
        let Some(rel) = relative(&root, path) else {
            continue;
        };
        if known.contains(&rel) {
            continue;
        }
        match sweep_file(store, path, &rel, &mut report) {
            Ok(Some(indexed)) => {
                known.insert(indexed);
            }
            Ok(None) => {}
            Err(e @ StoreError::Stopped(_)) => return Err(e),
            // Not the file's fault: it stays for the next start (nothing else to delete).
            Err(e) if e.is_disk_full() => tracing::error!("sweep: {rel} left as it is: {e}"),
            Err(e) => quarantine(&root, path, &rel, &e.to_string(), &mut report),
        }
    }
    check_indexed(store, &mut report)?;
    // Events the files gave back (or an older version left) get their review items.
    report.events_placed = store.rebuild_review_items(crate::base::clock::wall_ms())?;
    Ok(report)
}

fn finish_garbage(store: &Store, report: &mut SweepReport) -> Result<(), StoreError> {
    let garbage: Vec<String> = {
        let conn = store.conn();
        let mut stmt = conn.prepare(SELECT_GARBAGE)?;
        let rows = stmt.query_map([], |r| r.get("path"))?;
        rows.collect::<Result<_, _>>()?
    };
    if !garbage.is_empty() {
        store.collect_garbage(&garbage)?;
        report.garbage_removed = garbage.len();
    }
    Ok(())
}

fn indexed_paths(store: &Store) -> Result<HashSet<String>, StoreError> {
    let conn = store.conn();
    let mut stmt = conn.prepare(SELECT_ALL_PATHS)?;
    let rows = stmt.query_map([], |r| r.get::<_, String>("path"))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn relative(root: &Path, path: &Path) -> Option<String> {
    path.strip_prefix(root)
        .ok()
        .and_then(|p| p.to_str())
        .map(str::to_string)
}

/// Handles one file without a row; Some(rel) when it is indexed now.
fn sweep_file(
    store: &Store,
    path: &Path,
    rel: &str,
    report: &mut SweepReport,
) -> Result<Option<String>, StoreError> {
    if rel.ends_with(".recover") {
        tracing::warn!("sweep: removing leftover of an interrupted recovery {rel}");
        std::fs::remove_file(path).map_err(io_err(path))?;
        Ok(None)
    } else if rel.ends_with(".partial") {
        let Some(r) = recover_partial(store, path)? else {
            report.partials_removed += 1;
            return Ok(None);
        };
        tracing::warn!(
            "sweep: recovered unfinished clip {} ({} ms, truncated)",
            r.path,
            r.duration_ms
        );
        report.partials_recovered += 1;
        Ok(Some(r.path))
    } else if rel.ends_with(".mp4.sntx") {
        index_orphan(store, path, rel, report).map(|r| Some(r.path))
    } else if rel.ends_with(".jpg.sntx") {
        relink_picture(store, path, rel, report).map(|()| Some(rel.to_string()))
    } else {
        // Not one of ours (the database may live here too): left alone.
        Ok(None)
    }
}

/// Indexes a finished clip file that has no row: as it is when it reads to the end, else
/// salvaged up to its last good fragment.
fn index_orphan(
    store: &Store,
    path: &Path,
    rel: &str,
    report: &mut SweepReport,
) -> Result<ClipRecord, StoreError> {
    match read_through(store, path) {
        Ok(scan) => {
            let file_bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            let record = record_of_file(store, rel, &scan, file_bytes, super::ClipState::Complete)?;
            let r = store.insert_clip(record, None)?;
            tracing::warn!("sweep: indexed clip {rel}, whose row was lost");
            report.orphans_indexed += 1;
            Ok(r)
        }
        Err(why) => {
            let r = salvage_orphan(store, path, rel)?.ok_or(why)?;
            tracing::warn!(
                "sweep: clip {rel} had no row and a damaged end: salvaged its first {} ms",
                r.duration_ms
            );
            report.orphans_salvaged += 1;
            Ok(r)
        }
    }
}

/// Reads a sealed clip through; its scan when it is a complete fragmented MP4.
fn read_through(store: &Store, path: &Path) -> Result<Mp4Scan, StoreError> {
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let reader = OpenReader::open(file, &store.inner.key)?;
    let mut scan = Mp4Scan::new();
    reader.copy_to(&mut ScanSink(&mut scan), |_, _| {})?;
    if scan.fragments == 0 || scan.complete_end != reader.plain_len() {
        return Err(StoreError::Invalid("not a complete fragmented MP4".into()));
    }
    Ok(scan)
}

/// Links a thumbnail back to its clip, or gives an event snapshot its event row back.
fn relink_picture(
    store: &Store,
    path: &Path,
    rel: &str,
    report: &mut SweepReport,
) -> Result<(), StoreError> {
    // It must at least open with our key (a foreign file is quarantined).
    OpenReader::open(
        std::fs::File::open(path).map_err(io_err(path))?,
        &store.inner.key,
    )?;
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) as i64;
    let conn = store.conn();
    if let Some(snapshot) = SnapshotName::parse(rel) {
        conn.execute(
            INSERT_RESTORED_EVENT,
            named_params! {
                ":camera_id": snapshot.camera, ":label": snapshot.label,
                ":start_ms": snapshot.start_ms, ":path": rel, ":bytes": bytes,
                ":end_ms": snapshot.end_ms.unwrap_or(snapshot.start_ms),
            },
        )?;
        report.snapshots_relinked += 1;
        return Ok(());
    }
    let clip_rel = rel.replace(".jpg.sntx", ".mp4.sntx");
    let clip_id: i64 = conn
        .query_row(CLIP_ID_BY_PATH, named_params! {":path": clip_rel}, |r| {
            r.get("id")
        })
        .map_err(|_| StoreError::Invalid("a thumbnail whose clip is not indexed".into()))?;
    conn.execute(
        db::INSERT_THUMBNAIL,
        named_params! {":clip_id": clip_id, ":path": rel, ":file_bytes": bytes},
    )?;
    report.thumbnails_relinked += 1;
    Ok(())
}

/// `camera/date/<start_ms>[-<end_ms>]-event<id>[-<label>]-<tag>.jpg.sntx`, an event's
/// snapshot (the end once the event ended; older files have no label).
struct SnapshotName {
    camera: String,
    start_ms: i64,
    end_ms: Option<i64>,
    label: String,
}

impl SnapshotName {
    fn parse(rel: &str) -> Option<Self> {
        let (camera, start_ms) = parse_rel(rel)?;
        let name = rel.rsplit('/').next()?.strip_suffix(".jpg.sntx")?;
        let parts: Vec<&str> = name.split('-').collect();
        let (end_ms, rest) = match parts.get(1)?.parse::<i64>() {
            Ok(end_ms) => (Some(end_ms), &parts[2..]),
            Err(_) => (None, &parts[1..]),
        };
        if !rest.first()?.starts_with("event") {
            return None;
        }
        // With a label: event<id>, label…, tag. Without (older files): event, tag.
        let label = match rest.len() {
            n if n > 2 => rest[1..n - 1].join("-"),
            _ => "unknown".to_string(),
        };
        Some(Self {
            camera,
            start_ms,
            end_ms,
            label,
        })
    }
}

/// Step 3: every indexed clip's file against its row, cheaply.
/// Files unchanged since this long before the last full check are not decrypted again
/// (clock granularity and skew).
const VERIFIED_SLACK_MS: i64 = 60_000;

fn check_indexed(store: &Store, report: &mut SweepReport) -> Result<(), StoreError> {
    let started_ms = crate::base::clock::wall_ms();
    let verified_ms: i64 = store
        .conn()
        .query_row(
            SELECT_META,
            named_params! {":key": "sweep_verified_ms"},
            |r| r.get("value"),
        )
        .optional()?
        .unwrap_or(0);
    let rows: Vec<(i64, String, i64)> = {
        let conn = store.conn();
        let mut stmt = conn.prepare(SELECT_CLIP_CHECKS)?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get("id")?, r.get("path")?, r.get("file_bytes")?))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let root = store.recordings_dir().to_path_buf();
    for (id, rel, file_bytes) in rows {
        let path = root.join(&rel);
        let since = verified_ms - VERIFIED_SLACK_MS;
        let Some(problem) = clip_problem(store, &path, file_bytes, since) else {
            continue;
        };
        if problem == MISSING {
            store.forget_missing(id)?;
            report.rows_without_file += 1;
            continue;
        }
        tracing::warn!("sweep: clip {id} ({rel}) is damaged: {problem}");
        report.damaged += 1;
        store.damage_found(id, &rel, &problem, FoundBy::StartUp, started_ms)?;
    }
    store.with_room(|conn| {
        conn.execute(
            SET_META,
            named_params! {":key": "sweep_verified_ms", ":value": started_ms},
        )
    })?;
    Ok(())
}

const MISSING: &str = "its file is missing";

/// What is wrong with a clip file that should be `file_bytes` long, if anything. Its
/// first and last chunk are authenticated only when it changed at or after
/// `changed_since_ms` (a full check before then found it sound): at start-up, a store of
/// a month of continuous segments is then a stat per file, not a decryption.
fn clip_problem(
    store: &Store,
    path: &Path,
    file_bytes: i64,
    changed_since_ms: i64,
) -> Option<String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(MISSING.into()),
        Err(e) => return Some(format!("it cannot be read: {e}")),
    };
    if meta.len() as i64 != file_bytes {
        return Some(format!(
            "it is {} bytes, the index says {file_bytes}",
            meta.len()
        ));
    }
    let changed_ms = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(i64::MAX, |d| d.as_millis() as i64);
    if changed_ms < changed_since_ms {
        return None;
    }
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return Some(format!("it cannot be opened: {e}")),
    };
    OpenReader::open(file, &store.inner.key)
        .err()
        .map(|e| e.to_string())
}

/// Moves a file the sweep cannot use into `.quarantine/`, named in the log.
fn quarantine(root: &Path, path: &Path, rel: &str, why: &str, report: &mut SweepReport) {
    let dir = root.join(QUARANTINE_DIR);
    let target = dir.join(rel.replace('/', "_"));
    let moved = super::keys::create_private_dir(&dir).and_then(|()| std::fs::rename(path, &target));
    match moved {
        Ok(()) => tracing::warn!(
            "sweep: {rel} cannot be used ({why}); moved to {}",
            target.display()
        ),
        Err(e) => tracing::error!("sweep: {rel} cannot be used ({why}) nor moved aside: {e}"),
    }
    report.quarantined += 1;
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if depth > 3 {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let ft = entry.file_type()?;
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if ft.is_dir() && !hidden {
            walk(&entry.path(), depth + 1, out)?;
        } else if ft.is_file() {
            out.push(entry.path());
        }
    }
    Ok(())
}

struct ScanSink<'a>(&'a mut Mp4Scan);

impl std::io::Write for ScanSink<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.feed(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
