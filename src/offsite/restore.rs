//! What `sentrix offsite` does with the bucket: list a box's clips from their index
//! records, fetch clips as verified, decrypted MP4 files, rebuild an empty store from the
//! bucket (the stolen-box case), and delete objects past the remote retention.
//!
//! A clip whose object is missing or damaged is refused by name and leaves nothing
//! behind, and the others still come back: one bad object must not cost a user the rest
//! of their evidence. A wrong key stops everything at the first record, naming both keys.

use super::client::Bucket;
use super::fetch::{self, FetchError};
use super::record::IndexRecord;
use crate::store::{MasterKey, Store};
use futures_util::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use std::collections::BTreeMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path};

/// Clips downloaded at once by restore.
const PARALLEL_DOWNLOADS: usize = 4;

/// The records of the bucket's box, of `camera` (all when None) ending at or after
/// `since_ms`, by clip id.
pub async fn list(
    bucket: &Bucket,
    key: &MasterKey,
    camera: Option<&str>,
    since_ms: Option<i64>,
) -> Result<Vec<IndexRecord>, FetchError> {
    let mut all = fetch::records(bucket, key).await?;
    all.retain(|r| {
        camera.is_none_or(|c| r.clip.camera_id == c) && since_ms.is_none_or(|s| r.clip.end_ms >= s)
    });
    Ok(all)
}

/// What `fetch` and `restore` got back, and what they refused (each naming its object).
#[derive(Debug, Default)]
pub struct Outcome {
    pub clips: usize,
    pub events: usize,
    pub bytes: u64,
    pub refused: Vec<String>,
}

/// Writes each record's clip into `out_dir` as `ID-CAMERA-START.mp4` (0600), decrypted
/// and verified.
pub async fn fetch_clips(
    bucket: &Bucket,
    key: &MasterKey,
    records: &[IndexRecord],
    out_dir: &Path,
) -> Outcome {
    let mut outcome = Outcome::default();
    for rec in records {
        match fetch_one(bucket, key, rec, out_dir).await {
            Ok(bytes) => {
                outcome.clips += 1;
                outcome.bytes += bytes;
            }
            Err(e) => outcome.refused.push(e.0),
        }
    }
    outcome
}

async fn fetch_one(
    bucket: &Bucket,
    key: &MasterKey,
    rec: &IndexRecord,
    out_dir: &Path,
) -> Result<u64, FetchError> {
    let c = &rec.clip;
    let stem = format!("{}-{}-{}", c.id, safe_name(&c.camera_id), c.start_ms);
    let sealed = out_dir.join(format!(".{stem}.sntx"));
    let reader = fetch::download_clip(bucket, rec, key, &sealed).await?;
    let _ = std::fs::remove_file(&sealed);
    let mp4 = out_dir.join(format!("{stem}.mp4"));
    let partial = out_dir.join(format!(".{stem}.mp4.partial"));
    let io = |e: std::io::Error| FetchError(format!("{}: {e}", mp4.display()));
    let written = (|| {
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)?;
        let n = reader
            .copy_to(&mut out, |_, _| {})
            .map_err(std::io::Error::other)?;
        out.sync_all()?;
        std::fs::rename(&partial, &mp4)?;
        Ok(n)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written.map_err(io)
}

/// Camera ids go into file names: keep them to safe characters.
fn safe_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A relative path with no `..`: a record's clip path, before it is written under the
/// recordings directory.
fn is_plain_relative(p: &str) -> bool {
    let path = Path::new(p);
    !p.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)))
}

/// Rebuilds `store` (which must hold no clip) from the bucket: every clip under its
/// original id and path, marked uploaded, then the events and their snapshots. The
/// store's key must be the one that sealed them.
pub async fn restore(bucket: &Bucket, store: &Store) -> Result<Outcome, FetchError> {
    if !store
        .has_no_clips()
        .map_err(|e| FetchError(e.to_string()))?
    {
        return Err(FetchError(
            "restore goes into an empty store, and this one already holds clips: point \
             storage.recordings_dir and storage.database at empty places"
                .into(),
        ));
    }
    let records = fetch::records(bucket, store.clip_key()).await?;
    let root = store.recordings_dir().to_path_buf();
    let results: Vec<(&IndexRecord, Result<(), FetchError>)> = futures_util::stream::iter(&records)
        .map(|rec| {
            let root = root.clone();
            async move { (rec, restore_file(bucket, store, rec, &root).await) }
        })
        .buffer_unordered(PARALLEL_DOWNLOADS)
        .collect()
        .await;
    let mut outcome = Outcome::default();
    let now = crate::base::clock::wall_ms();
    for (rec, result) in results {
        let indexed = result.and_then(|()| {
            let key = bucket.clip_key(rec.clip.id);
            store
                .insert_restored_clip(
                    &rec.clip.to_record(rec.sealed_bytes),
                    &rec.sha256,
                    key.as_ref(),
                    now,
                )
                .map_err(|e| FetchError(format!("clip {}: {e}", rec.clip.id)))
        });
        match indexed {
            Ok(()) => {
                outcome.clips += 1;
                outcome.bytes += rec.sealed_bytes;
            }
            Err(e) => {
                let _ = std::fs::remove_file(root.join(&rec.clip.path));
                outcome.refused.push(e.0);
            }
        }
    }
    outcome.events = restore_events(store, &records)?;
    restore_snapshots(bucket, store, &records, &mut outcome).await;
    Ok(outcome)
}

/// The events' snapshots, sealed again into the store; one that fails is refused by name
/// and its event stays without a picture.
async fn restore_snapshots(
    bucket: &Bucket,
    store: &Store,
    records: &[IndexRecord],
    outcome: &mut Outcome,
) {
    let snapshots: BTreeMap<i64, _> = records
        .iter()
        .flat_map(|r| r.events.iter())
        .filter_map(|e| Some((e.id, e.snapshot.clone()?)))
        .collect();
    for (id, want) in snapshots {
        let key = bucket.snapshot_key(id);
        let restored = fetch::sealed_object(bucket, &key, &want, store.clip_key())
            .await
            .and_then(|jpeg| {
                store
                    .set_event_snapshot(id, &jpeg)
                    .map_err(|e| FetchError(format!("event {id}'s snapshot: {e}")))
            });
        if let Err(e) = restored {
            outcome.refused.push(e.0);
        }
    }
}

async fn restore_file(
    bucket: &Bucket,
    store: &Store,
    rec: &IndexRecord,
    root: &Path,
) -> Result<(), FetchError> {
    if !is_plain_relative(&rec.clip.path) {
        return Err(FetchError(format!(
            "clip {}: its record names the path {:?}, which is not inside the recordings directory",
            rec.clip.id, rec.clip.path
        )));
    }
    let dest = root.join(&rec.clip.path);
    if let Some(dir) = dest.parent() {
        crate::store::keys::create_private_dir(dir)
            .map_err(|e| FetchError(format!("{}: {e}", dir.display())))?;
    }
    fetch::download_clip(bucket, rec, store.clip_key(), &dest).await?;
    Ok(())
}

/// The events of every record (an event over several segments is in each), once each.
fn restore_events(store: &Store, records: &[IndexRecord]) -> Result<usize, FetchError> {
    let events: BTreeMap<i64, _> = records
        .iter()
        .flat_map(|r| r.events.iter())
        .map(|e| (e.id, e.to_record()))
        .collect();
    for e in events.values() {
        store
            .insert_restored_event(e)
            .map_err(|err| FetchError(format!("event {}: {err}", e.id)))?;
    }
    Ok(events.len())
}

/// Deletes this box's clips, records and snapshots last modified before `cutoff_ms`.
pub async fn delete_older(bucket: &Bucket, cutoff_ms: i64) -> Result<usize, FetchError> {
    let mut deleted = 0;
    let folders = [
        bucket.clips_folder(),
        bucket.index_folder(),
        bucket.snapshots_folder(),
    ];
    for folder in folders {
        let old: Vec<_> = bucket
            .s3
            .list(Some(&folder))
            .try_filter(|m| std::future::ready(m.last_modified.timestamp_millis() < cutoff_ms))
            .try_collect()
            .await
            .map_err(|e| FetchError(format!("listing {folder}: {e}")))?;
        for m in old {
            bucket
                .s3
                .delete(&m.location)
                .await
                .map_err(|e| FetchError(format!("deleting {}: {e}", m.location)))?;
            deleted += 1;
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_paths_stay_inside_the_recordings_directory() {
        assert!(is_plain_relative("front/2026-11-29/1-event.mp4.sntx"));
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "./a"] {
            assert!(!is_plain_relative(bad), "{bad}");
        }
        assert_eq!(safe_name("front door/1"), "front_door_1");
    }
}
