//! Salvaging what plays of a sealed clip file: its chunks are read in order while they
//! authenticate, the MP4 inside is scanned for complete fragments, and exactly that prefix
//! is re-sealed under the clip's name (through `<clip>.recover`, renamed over it). Used for
//! - an unfinished clip (`*.partial`: the writer could not finish it, or a crash): indexed
//!   as `truncated`, or removed when nothing in it plays;
//! - a finished clip without a row whose tail is damaged (the index was lost);
//! - an indexed clip the start-up sweep found damaged: its row is updated in place.
//!
//! A clip is never deleted for damage: what cannot be salvaged is flagged (and the sweep
//! quarantines a file that is not a clip at all).

use super::container::OpenReader;
use super::sealed::{create_sealed, fsync_dir, seal_and_rename};
use super::{ClipKind, ClipRecord, ClipState, Store, StoreError, io_err};
use crate::media::mp4scan::Mp4Scan;
use rusqlite::named_params;
use std::path::{Path, PathBuf};

// The statements this file runs (named parameters, bound with named_params!).
/// A clip salvaged in place: what plays of it now.
const SET_CLIP_SALVAGED: &str = "UPDATE clips SET end_ms = start_ms + :duration_ms,
    duration_ms = :duration_ms, frames = :frames, plain_bytes = :plain_bytes,
    file_bytes = :file_bytes, media_ticks = :media_ticks, state = 'truncated', damage = ''
    WHERE id = :id";
const CLIP_PATH_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM clips WHERE path = :path) AS present";

/// `camera/date/<start_ms>-<tag>.mp4.sntx` → (camera, start_ms).
pub(crate) fn parse_rel(rel: &str) -> Option<(String, i64)> {
    let mut parts = rel.split('/');
    let camera = parts.next()?.to_string();
    let name = rel.rsplit('/').next()?;
    let start_ms = name.split('-').next()?.parse().ok()?;
    Some((camera, start_ms))
}

/// The run of a segment's file name, `<start_ms>-run<run_start_ms>-<tag>.mp4.sntx`; None
/// for an event clip.
pub(crate) fn run_of_rel(rel: &str) -> Option<i64> {
    let name = rel.rsplit('/').next()?;
    name.split('-').nth(1)?.strip_prefix("run")?.parse().ok()
}

/// What plays of a sealed file: the scan of its authenticated chunks.
fn scan_playable(store: &Store, path: &Path) -> Result<Mp4Scan, StoreError> {
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut scan = Mp4Scan::new();
    OpenReader::recover_chunks(&file, &store.inner.key, |chunk| {
        scan.feed(chunk);
        Ok(scan.error.is_none())
    })?;
    Ok(scan)
}

/// Re-seals the first `scan.complete_end` plaintext bytes of `source` as `final_path`.
/// Returns the new file's size.
fn reseal_prefix(
    store: &Store,
    source: &Path,
    final_path: &Path,
    scan: &Mp4Scan,
) -> Result<u64, StoreError> {
    let file = std::fs::File::open(source).map_err(io_err(source))?;
    let tmp = PathBuf::from(format!("{}.recover", final_path.display()));
    let _ = std::fs::remove_file(&tmp);
    let mut sealer = create_sealed(store, &tmp)?;
    let mut left = scan.complete_end;
    let copied = OpenReader::recover_chunks(&file, &store.inner.key, |chunk| {
        let n = (chunk.len() as u64).min(left) as usize;
        sealer.write(&chunk[..n])?;
        left -= n as u64;
        Ok(left > 0)
    });
    if let Err(e) = copied {
        drop(sealer);
        let _ = std::fs::remove_file(&tmp);
        return Err(e.into());
    }
    seal_and_rename(store, sealer, &tmp, final_path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
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
    let Some(rel) = rel.filter(|r| parse_rel(r).is_some()) else {
        tracing::warn!("removing {}: not a clip path", partial.display());
        let _ = std::fs::remove_file(partial);
        return Ok(None);
    };
    let already: bool =
        store
            .conn()
            .query_row(CLIP_PATH_EXISTS, named_params! {":path": rel}, |r| {
                r.get("present")
            })?;
    let scan = match scan_playable(store, partial) {
        Ok(scan) => Some(scan),
        Err(e) => {
            tracing::warn!("removing unfinished clip {rel}: {e}");
            None
        }
    };
    let Some(scan) = scan.filter(|s| !already && s.fragments > 0 && !final_path.is_dir()) else {
        let _ = std::fs::remove_file(partial);
        fsync_dir(store, partial.parent().unwrap_or(root))?;
        return Ok(None);
    };
    let file_bytes = reseal_prefix(store, partial, &final_path, &scan)?;
    let record = record_of_file(store, &rel, &scan, file_bytes, ClipState::Truncated)?;
    let record = store.insert_clip(record, None)?;
    std::fs::remove_file(partial).map_err(io_err(partial))?;
    fsync_dir(store, partial.parent().unwrap_or(root))?;
    Ok(Some(record))
}

/// Salvages a finished clip file that has no row and does not read to its end (the index
/// was lost and the file damaged): re-sealed in place up to its last good fragment and
/// indexed as truncated. None when nothing in it plays (the caller quarantines it).
pub(crate) fn salvage_orphan(
    store: &Store,
    path: &Path,
    rel: &str,
) -> Result<Option<ClipRecord>, StoreError> {
    let scan = scan_playable(store, path)?;
    if scan.fragments == 0 {
        return Ok(None);
    }
    let file_bytes = reseal_prefix(store, path, path, &scan)?;
    let record = record_of_file(store, rel, &scan, file_bytes, ClipState::Truncated)?;
    Ok(Some(store.insert_clip(record, None)?))
}

/// Salvages indexed clip `id` at `rel`, found damaged for `reason`: re-sealed in place up
/// to its last good fragment with its row updated (truncated), or, when nothing plays,
/// flagged damaged. Returns whether anything was kept playable.
pub(crate) fn salvage_indexed(
    store: &Store,
    id: i64,
    rel: &str,
    reason: &str,
) -> Result<bool, StoreError> {
    let path = store.recordings_dir().join(rel);
    let scan = match scan_playable(store, &path) {
        Ok(scan) if scan.fragments > 0 => scan,
        Ok(_) => {
            store.flag_damaged(id, &format!("{reason}; nothing in it plays"))?;
            return Ok(false);
        }
        Err(e) => {
            store.flag_damaged(id, &format!("{reason}; {e}"))?;
            return Ok(false);
        }
    };
    let file_bytes = reseal_prefix(store, &path, &path, &scan)?;
    store.conn().execute(
        SET_CLIP_SALVAGED,
        named_params! {
            ":id": id,
            ":duration_ms": scan.duration_ms() as i64,
            ":frames": scan.samples as i64,
            ":plain_bytes": scan.complete_end as i64,
            ":file_bytes": file_bytes as i64,
            ":media_ticks": scan.duration_ticks as i64,
        },
    )?;
    tracing::warn!(
        "clip {id} ({rel}) was damaged ({reason}): kept its first {} ms, marked truncated",
        scan.duration_ms()
    );
    Ok(true)
}

/// The index row of a clip known only from its file: camera, start and run from its
/// path `rel`, the rest from the MP4 scan.
pub(crate) fn record_of_file(
    store: &Store,
    rel: &str,
    scan: &Mp4Scan,
    file_bytes: u64,
    state: ClipState,
) -> Result<ClipRecord, StoreError> {
    let (camera_id, start_ms) =
        parse_rel(rel).ok_or_else(|| StoreError::Invalid("not a clip path".into()))?;
    let run_start_ms = run_of_rel(rel);
    Ok(ClipRecord {
        id: 0,
        camera_id,
        start_ms,
        end_ms: start_ms + scan.duration_ms() as i64,
        duration_ms: scan.duration_ms() as i64,
        frames: scan.samples as i64,
        plain_bytes: scan.complete_end as i64,
        file_bytes: file_bytes as i64,
        codec: scan.codec.clone(),
        width: scan.width,
        height: scan.height,
        labels: Vec::new(),
        pre_roll_ms: 0,
        post_roll_ms: 0,
        state,
        key_id: store.key_id().to_string(),
        damage: String::new(),
        lost_ms: 0,
        kind: if run_start_ms.is_some() {
            ClipKind::Segment
        } else {
            ClipKind::Event
        },
        run_start_ms,
        timescale: scan.timescale,
        media_ticks: scan.duration_ticks as i64,
        init_bytes: scan.init_end as i64,
        tier: 0,
        offsite: super::OffsiteState::Local,
        path: rel.to_string(),
    })
}
