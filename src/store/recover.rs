//! Salvaging an unfinished clip: a sealed `*.partial` whose last chunk may be missing is
//! re-sealed under its final name up to its last complete fragment and indexed as
//! `truncated`, or removed when nothing in it plays. The writer calls this for a clip it
//! could not finish; the startup sweep for the partials a crash left.

use super::container::OpenReader;
use super::mp4scan::Mp4Scan;
use super::sealed::{create_sealed, fsync_dir, seal_and_rename};
use super::{ClipRecord, ClipState, Store, StoreError, db, io_err};
use rusqlite::named_params;
use std::path::{Path, PathBuf};

/// `camera/date/<start_ms>-<tag>.mp4.sntx` → (camera, start_ms).
pub(crate) fn parse_rel(rel: &str) -> Option<(String, i64)> {
    let mut parts = rel.split('/');
    let camera = parts.next()?.to_string();
    let name = rel.rsplit('/').next()?;
    let start_ms = name.split('-').next()?.parse().ok()?;
    Some((camera, start_ms))
}

/// Recovers `partial` (a sealed file whose last chunk may be missing) into its final name
/// up to the last complete fragment, and indexes it as truncated. Returns None (and removes
/// the partial) when nothing playable is in it or it was already recovered.
pub(crate) fn recover_partial(
    store: &Store,
    partial: &Path,
) -> Result<Option<ClipRecord>, StoreError> {
    let root = &store.inner.config.recordings_dir;
    let final_path = PathBuf::from(partial.to_string_lossy().trim_end_matches(".partial"));
    let rel = final_path
        .strip_prefix(root)
        .ok()
        .and_then(|p| p.to_str())
        .map(str::to_string);
    let (Some(rel), Some((camera, start_ms))) = (rel.clone(), rel.as_deref().and_then(parse_rel))
    else {
        tracing::warn!("removing {}: not a clip path", partial.display());
        let _ = std::fs::remove_file(partial);
        return Ok(None);
    };
    let already: bool =
        store
            .conn()
            .query_row(db::CLIP_PATH_EXISTS, named_params! {":path": rel}, |r| {
                r.get(0)
            })?;
    let file = std::fs::File::open(partial).map_err(io_err(partial))?;
    // Pass 1: how much of it plays.
    let mut scan = Mp4Scan::new();
    let read = OpenReader::recover_chunks(&file, &store.inner.key, |chunk| {
        scan.feed(chunk);
        Ok(scan.error.is_none())
    });
    if already || read.is_err() || scan.fragments == 0 || final_path.is_dir() {
        if let Err(e) = read {
            tracing::warn!("removing unfinished clip {rel}: {e}");
        }
        let _ = std::fs::remove_file(partial);
        fsync_dir(store, partial.parent().unwrap_or(root))?;
        return Ok(None);
    }
    // Pass 2: re-seal exactly the playable prefix under the final name.
    let tmp = PathBuf::from(format!("{}.recover", final_path.display()));
    let _ = std::fs::remove_file(&tmp);
    let mut sealer = create_sealed(store, &tmp)?;
    let mut left = scan.complete_end;
    OpenReader::recover_chunks(&file, &store.inner.key, |chunk| {
        let n = (chunk.len() as u64).min(left) as usize;
        sealer.write(&chunk[..n])?;
        left -= n as u64;
        Ok(left > 0)
    })?;
    let file_bytes = seal_and_rename(store, sealer, &tmp, &final_path)?;
    let record = record_from_scan(
        store,
        camera,
        rel,
        start_ms,
        &scan,
        scan.complete_end,
        file_bytes,
        ClipState::Truncated,
    );
    let record = store.insert_clip(record, None)?;
    std::fs::remove_file(partial).map_err(io_err(partial))?;
    fsync_dir(store, partial.parent().unwrap_or(root))?;
    Ok(Some(record))
}

/// The index row of a clip known only from its file: what the MP4 scan found.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record_from_scan(
    store: &Store,
    camera_id: String,
    path: String,
    start_ms: i64,
    scan: &Mp4Scan,
    plain_bytes: u64,
    file_bytes: u64,
    state: ClipState,
) -> ClipRecord {
    ClipRecord {
        id: 0,
        camera_id,
        path,
        start_ms,
        end_ms: start_ms + scan.duration_ms() as i64,
        duration_ms: scan.duration_ms() as i64,
        frames: scan.samples as i64,
        plain_bytes: plain_bytes as i64,
        file_bytes: file_bytes as i64,
        codec: scan.codec.clone(),
        width: scan.width,
        height: scan.height,
        labels: Vec::new(),
        pre_roll_ms: 0,
        post_roll_ms: 0,
        state,
        key_id: store.key_id().to_string(),
    }
}
