//! The startup sweep. At start, before any write:
//! finish deletions left in `garbage`; recover each `*.partial` up to its last complete
//! fragment (re-sealed, indexed as `truncated`) or remove it when nothing plays; remove
//! `*.recover` leftovers of an interrupted recovery; index finished clips that lost their
//! row in a crash (rename done, insert not) after checking they decrypt; drop rows whose
//! file is gone. Every action is logged and counted.

use super::container::OpenReader;
use super::mp4scan::Mp4Scan;
use super::recover::{parse_rel, record_from_scan, recover_partial};
use super::{ClipRecord, ClipState, Store, StoreError, db, io_err};
use rusqlite::named_params;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub garbage_removed: usize,
    pub partials_recovered: usize,
    pub partials_removed: usize,
    pub orphans_indexed: usize,
    pub orphans_removed: usize,
    pub rows_without_file: usize,
}

pub fn run(store: &Store) -> Result<SweepReport, StoreError> {
    let mut report = SweepReport::default();
    let garbage: Vec<String> = {
        let conn = store.conn();
        let mut stmt = conn.prepare(db::SELECT_GARBAGE)?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    if !garbage.is_empty() {
        store.collect_garbage(&garbage)?;
        report.garbage_removed = garbage.len();
    }

    let root = store.inner.config.recordings_dir.clone();
    let mut files = Vec::new();
    walk(&root, 0, &mut files).map_err(io_err(&root))?;
    let mut known: HashSet<String> = {
        let conn = store.conn();
        let mut stmt = conn.prepare(db::SELECT_ALL_PATHS)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect::<Result<_, _>>()?
    };
    files.sort();
    for path in &files {
        let Some(rel) = path
            .strip_prefix(&root)
            .ok()
            .and_then(|p| p.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        if rel.ends_with(".recover") {
            tracing::warn!("sweep: removing leftover of an interrupted recovery {rel}");
            let _ = std::fs::remove_file(path);
        } else if rel.ends_with(".partial") {
            match recover_partial(store, path)? {
                Some(r) => {
                    tracing::warn!(
                        "sweep: recovered unfinished clip {} ({} ms, truncated)",
                        r.path,
                        r.duration_ms
                    );
                    known.insert(r.path);
                    report.partials_recovered += 1;
                }
                None => report.partials_removed += 1,
            }
        } else if rel.ends_with(".mp4.sntx") && !known.contains(&rel) {
            match index_orphan(store, path, &rel) {
                Ok(r) => {
                    tracing::warn!("sweep: indexed clip {rel}, whose row was lost in a crash");
                    known.insert(r.path);
                    report.orphans_indexed += 1;
                }
                Err(e) => {
                    tracing::warn!(
                        "sweep: removing {rel}, which has no row and does not read: {e}"
                    );
                    let _ = std::fs::remove_file(path);
                    report.orphans_removed += 1;
                }
            }
        } else if rel.ends_with(".jpg.sntx") && !known.contains(&rel) {
            tracing::warn!("sweep: removing thumbnail {rel}, which has no row");
            let _ = std::fs::remove_file(path);
            report.orphans_removed += 1;
        }
    }
    // Rows whose file is gone (deleted by hand, lost with a disk): forget them.
    let present: HashSet<String> = files
        .iter()
        .filter_map(|p| p.strip_prefix(&root).ok()?.to_str().map(str::to_string))
        .filter(|rel| !rel.ends_with(".partial"))
        .collect();
    let conn = store.conn();
    let missing: Vec<(i64, String)> = {
        let mut stmt = conn.prepare(db::SELECT_CLIP_IDS_AND_PATHS)?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<Vec<(i64, String)>, _>>()?
            .into_iter()
            .filter(|(_, p)| !present.contains(p) && !known_recovered(&files, &root, p))
            .collect()
    };
    for (id, p) in &missing {
        tracing::warn!("sweep: clip {id} ({p}) has no file; removing its row");
        conn.execute(db::DELETE_CLIP, named_params! {":id": id})?;
    }
    report.rows_without_file = missing.len();
    Ok(report)
}

/// A clip recovered during this sweep exists on disk although it was not listed before.
fn known_recovered(files: &[PathBuf], root: &Path, rel: &str) -> bool {
    let partial = root.join(format!("{rel}.partial"));
    files.contains(&partial) && root.join(rel).exists()
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if depth > 3 {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let ft = entry.file_type()?;
        if ft.is_dir() {
            walk(&entry.path(), depth + 1, out)?;
        } else if ft.is_file() {
            out.push(entry.path());
        }
    }
    Ok(())
}

/// Indexes a finished clip file that has no row, after reading it through.
fn index_orphan(store: &Store, path: &Path, rel: &str) -> Result<ClipRecord, StoreError> {
    let (camera, start_ms) =
        parse_rel(rel).ok_or_else(|| StoreError::Invalid("not a clip path".into()))?;
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let reader = OpenReader::open(file, &store.inner.key)?;
    let mut scan = Mp4Scan::new();
    let mut sink = ScanSink(&mut scan);
    reader.copy_to(&mut sink, |_, _| {})?;
    if scan.fragments == 0 || scan.complete_end != reader.plain_len() {
        return Err(StoreError::Invalid("not a complete fragmented MP4".into()));
    }
    let file_bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let record = record_from_scan(
        store,
        camera,
        rel.to_string(),
        start_ms,
        &scan,
        reader.plain_len(),
        file_bytes,
        ClipState::Complete,
    );
    store.insert_clip(record, None)
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
