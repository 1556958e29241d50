//! The uploader: one task that takes the next due clip from the queue (store/offsite.rs),
//! copies its sealed file unchanged to the bucket, verifies the copy and marks it uploaded;
//! the clip's sealed index record is then due, and is written beside it next, after the
//! sealed snapshots of its events (also copied unchanged). Clips up to 16 MiB go in one PUT;
//! larger ones in 8 MiB parts, each recorded in the queue as it lands, so an upload cut by
//! a crash or an outage resumes at its next part. A failure waits 2 s, 4 s … up to 5 min
//! (±20 %) before that clip is tried again, and the uploader rests as long, so an outage
//! costs one attempt per step; a clip whose file is gone or damaged waits an hour and does
//! not hold the others up.
//!
//! When an event of an uploaded clip changes (it ends, is acknowledged or kept), a trigger
//! marks the clip's record stale and the uploader writes the record again, so the bucket's
//! index follows the local one; a crash between a clip and its record leaves the record
//! due, not lost.
//!
//! It never holds the index lock while it talks to the bucket (each store call is one
//! short statement), and hashing runs on the blocking pool, so recording never waits.

use super::client::Bucket;
use super::record::{self, IndexRecord, StoredObject, hex};
use crate::store::{OffsiteJob, Store, StoreError};
use md5::{Digest, Md5};
use object_store::multipart::{MultipartStore, PartId};
use object_store::{ObjectStore, PutPayload};
use sha2::Sha256;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use super::client::PART_BYTES;
/// Larger clips go in parts.
pub const SINGLE_PUT_MAX_BYTES: u64 = 16 << 20;
/// How often the queue is looked at when nothing is due.
const IDLE_POLL: Duration = Duration::from_secs(2);
const FIRST_RETRY_MS: i64 = 2_000;
const MAX_RETRY_MS: i64 = 300_000;
/// Events recorded with a clip, at most (a clip rarely holds more than a handful).
const MAX_EVENTS_PER_RECORD: u32 = 1000;
/// A record that could not be written is tried again after about 16 s.
const RECORD_RETRY_STEP: i64 = 3;

/// What the uploader did, for the API, the dashboard and /metrics.
#[derive(Debug, Default)]
pub struct UploaderStatus {
    pub uploaded_total: std::sync::atomic::AtomicU64,
    pub failed_total: std::sync::atomic::AtomicU64,
    pub last_upload_ms: std::sync::atomic::AtomicI64,
    pub last_error: std::sync::Mutex<String>,
}

impl UploaderStatus {
    pub fn set_error(&self, e: &str) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = e.to_string();
    }

    pub fn error(&self) -> String {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// SHA-256 of a sealed file (kept in the index and the record) and the ETag S3 gives
/// its copy: MD5 of the body, or for a multipart upload MD5 of the parts' MD5s, "-N".
#[derive(Debug, Clone, PartialEq)]
pub struct Digests {
    pub sha256: String,
    pub etag: String,
}

/// Reads the file once for both digests (parts of PART_BYTES when `len` needs parts).
pub fn digests(path: &Path, len: u64) -> std::io::Result<Digests> {
    let mut file = std::fs::File::open(path)?;
    let multipart = len > SINGLE_PUT_MAX_BYTES;
    let mut sha = Sha256::new();
    let (mut part, mut part_md5s, mut in_part) = (Md5::new(), Vec::new(), 0usize);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let want = buf.len().min(PART_BYTES - in_part);
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        part.update(&buf[..n]);
        in_part += n;
        if multipart && in_part == PART_BYTES {
            part_md5s.extend_from_slice(&part.finalize_reset());
            in_part = 0;
        }
    }
    let etag = if multipart {
        let count = part_md5s.len() / 16 + usize::from(in_part > 0);
        if in_part > 0 {
            part_md5s.extend_from_slice(&part.finalize());
        }
        format!("{}-{count}", hex(&Md5::digest(&part_md5s)))
    } else {
        hex(&part.finalize())
    };
    Ok(Digests {
        sha256: hex(&sha.finalize()),
        etag,
    })
}

/// An ETag S3 derived from MD5s (not so for some encryption modes and providers).
fn is_md5_etag(etag: &str) -> bool {
    let (digest, count) = etag.split_once('-').unwrap_or((etag, "1"));
    digest.len() == 32
        && digest.bytes().all(|c| c.is_ascii_hexdigit())
        && count.bytes().all(|c| c.is_ascii_digit())
}

pub struct Uploader {
    pub store: Store,
    pub bucket: Bucket,
    pub status: Arc<UploaderStatus>,
}

/// Why an attempt failed, and whether trying again can help.
enum Failure {
    Retry(String),
    /// The clip's file is gone or damaged: no point retrying soon.
    Permanent(String),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self::Retry(e.to_string())
    }
}

impl From<object_store::Error> for Failure {
    fn from(e: object_store::Error) -> Self {
        Self::Retry(short_error(&e))
    }
}

/// object_store's message, first line only (its sources repeat the URL and the body).
fn short_error(e: &object_store::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    first.chars().take(300).collect()
}

impl Uploader {
    /// Uploads due clips until `shutdown`; an upload in flight is dropped then (it resumes
    /// at its next part after the restart).
    pub async fn run(self, shutdown: tokio_util::sync::CancellationToken) {
        loop {
            let due = self.store.offsite_due(crate::base::clock::wall_ms());
            let pause = match due {
                Ok(Some(job)) => {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        rest = self.attempt(job) => rest,
                    }
                }
                Ok(None) => Some(IDLE_POLL),
                Err(e) => {
                    tracing::warn!("offsite: cannot read the upload queue: {e}");
                    Some(IDLE_POLL)
                }
            };
            if let Some(pause) = pause {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }

    /// One attempt at one clip, or at an uploaded clip's index record, its outcome
    /// written to the queue. A verified copy marks the clip uploaded and makes its record
    /// due at once. After a failure that may pass (the bucket is down), the uploader rests
    /// until that retry, so an outage costs one attempt per backoff step, not one per
    /// queued clip.
    async fn attempt(&self, job: OffsiteJob) -> Option<Duration> {
        let id = job.clip_id;
        if job.record_version > 0 {
            return self.write_record(id, &job.sha256, job.record_version).await;
        }
        let attempts = job.attempts;
        let now = crate::base::clock::wall_ms();
        let (result, rest) = match self.upload(job).await {
            // Deleted since it was queued: its queue row went with it.
            Ok(false) => return None,
            Ok(true) => {
                use std::sync::atomic::Ordering::Relaxed;
                self.status.uploaded_total.fetch_add(1, Relaxed);
                self.status.last_upload_ms.store(now, Relaxed);
                self.status.set_error("");
                (self.store.offsite_uploaded(id, now), None)
            }
            Err(f) => {
                let (why, wait_ms, rest) = match f {
                    Failure::Retry(why) => {
                        let wait_ms = retry_after_ms(attempts);
                        (why, wait_ms, Some(Duration::from_millis(wait_ms as u64)))
                    }
                    Failure::Permanent(why) => (why, MAX_RETRY_MS * 12, None),
                };
                tracing::warn!("offsite: clip {id} not uploaded: {why}");
                self.status
                    .failed_total
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.status.set_error(&format!("clip {id}: {why}"));
                (
                    self.store.offsite_failed(id, &why, now + wait_ms, false),
                    rest,
                )
            }
        };
        if let Err(e) = result {
            tracing::warn!("offsite: cannot record clip {id}'s upload: {e}");
        }
        rest
    }

    /// Writes clip `id`'s index record with its events as they are now; the record is
    /// done unless an event changed after `version` was read.
    async fn write_record(&self, id: i64, sha256: &str, version: i64) -> Option<Duration> {
        let written = async {
            let clip = match self.store.clip(id) {
                Ok(c) => c,
                Err(StoreError::NotFound(_)) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            self.put_record(&clip, sha256, clip.file_bytes as u64)
                .await?;
            Ok(self.store.offsite_record_written(id, version)?)
        };
        let why = match written.await {
            Ok(()) => return None,
            Err(Failure::Retry(why) | Failure::Permanent(why)) => why,
        };
        tracing::warn!("offsite: clip {id}'s index record not written: {why}");
        self.status.set_error(&format!("clip {id}: {why}"));
        let wait_ms = retry_after_ms(RECORD_RETRY_STEP);
        let next = crate::base::clock::wall_ms() + wait_ms;
        if let Err(e) = self.store.offsite_failed(id, &why, next, true) {
            tracing::warn!("offsite: cannot mark clip {id}'s record for another try: {e}");
        }
        Some(Duration::from_millis(wait_ms as u64))
    }

    /// The clip's sealed index record: its row, its events now, and the sealed object's
    /// SHA-256 and size.
    async fn put_record(
        &self,
        clip: &crate::store::ClipRecord,
        sha256: &str,
        sealed_bytes: u64,
    ) -> Result<(), Failure> {
        let events = self.store.events_overlapping(
            &clip.camera_id,
            clip.start_ms,
            clip.end_ms,
            MAX_EVENTS_PER_RECORD,
        )?;
        let mut record = IndexRecord::new(clip, &events, sha256, sealed_bytes);
        for (stored, event) in record.events.iter_mut().zip(&events) {
            if event.has_snapshot {
                stored.snapshot = self.put_snapshot(event.id).await?;
            }
        }
        let sealed = record::seal(&record, self.store.clip_key())
            .map_err(|e| Failure::Retry(format!("sealing the index record: {e}")))?;
        self.bucket
            .s3
            .put(&self.bucket.record_key(clip.id), sealed.into())
            .await?;
        Ok(())
    }

    /// Copies event `id`'s sealed snapshot unchanged to the bucket (checked by its ETag
    /// where that is an MD5); what the record says of it.
    async fn put_snapshot(&self, id: i64) -> Result<Option<StoredObject>, Failure> {
        let Some(bytes) = self.store.event_snapshot_sealed(id)? else {
            return Ok(None);
        };
        let object = StoredObject {
            sha256: hex(&Sha256::digest(&bytes)),
            sealed_bytes: bytes.len() as u64,
        };
        let md5 = hex(&Md5::digest(&bytes));
        let key = self.bucket.snapshot_key(id);
        let put = self.bucket.s3.put(&key, PutPayload::from(bytes)).await?;
        let etag = put.e_tag.unwrap_or_default();
        let etag = etag.trim_matches('"');
        if is_md5_etag(etag) && etag != md5 {
            return Err(Failure::Retry(format!(
                "verification failed: {key} has ETag {etag}, the snapshot's is {md5}"
            )));
        }
        Ok(Some(object))
    }

    /// Copies the clip's sealed file and verifies the copy (its SHA-256 is in the queue
    /// from here on); false when the clip was deleted meanwhile.
    async fn upload(&self, job: OffsiteJob) -> Result<bool, Failure> {
        let clip = match self.store.clip(job.clip_id) {
            Ok(c) => c,
            Err(StoreError::NotFound(_)) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        if !clip.damage.is_empty() {
            return Err(Failure::Permanent(format!(
                "the clip is damaged: {}",
                clip.damage
            )));
        }
        let path = self.store.recordings_dir().join(&clip.path);
        let len = std::fs::metadata(&path)
            .map_err(|e| Failure::Permanent(format!("cannot read {}: {e}", clip.path)))?
            .len();
        let digests = hash_file(path.clone(), len).await?;
        let key = self.bucket.clip_key(clip.id);
        self.store
            .offsite_set_hash(clip.id, &digests.sha256, key.as_ref())?;
        let etag = if len <= SINGLE_PUT_MAX_BYTES {
            self.put_whole(&key, &path).await?
        } else {
            self.put_parts(&job, &key, &path, len).await?
        };
        self.verify(&key, len, &digests, etag).await?;
        Ok(true)
    }

    async fn put_whole(
        &self,
        key: &object_store::path::Path,
        path: &Path,
    ) -> Result<Option<String>, Failure> {
        let p = path.to_path_buf();
        let bytes = tokio::task::spawn_blocking(move || std::fs::read(&p))
            .await
            .map_err(|e| Failure::Retry(e.to_string()))?
            .map_err(|e| Failure::Permanent(format!("cannot read the clip: {e}")))?;
        let put = self.bucket.s3.put(key, PutPayload::from(bytes)).await?;
        Ok(put.e_tag)
    }

    /// A multipart upload, resumed from the parts the queue says have landed.
    async fn put_parts(
        &self,
        job: &OffsiteJob,
        key: &object_store::path::Path,
        path: &Path,
        len: u64,
    ) -> Result<Option<String>, Failure> {
        let s3 = &self.bucket.s3;
        let (mut upload_id, mut parts) = (job.upload_id.clone(), job.parts.clone());
        if upload_id.is_empty() {
            upload_id = s3.create_multipart(key).await?;
            parts.clear();
            self.store
                .offsite_set_upload(job.clip_id, &upload_id, &parts)?;
        }
        let count = len.div_ceil(PART_BYTES as u64) as usize;
        for idx in parts.len()..count {
            let bytes = read_part(path.to_path_buf(), idx, len).await?;
            match s3.put_part(key, &upload_id, idx, bytes.into()).await {
                Ok(part) => parts.push(part.content_id),
                Err(e) => return Err(self.forget_upload_if_gone(job.clip_id, e)),
            }
            self.store
                .offsite_set_upload(job.clip_id, &upload_id, &parts)?;
        }
        let ids = parts
            .into_iter()
            .map(|content_id| PartId { content_id })
            .collect();
        let done = match s3.complete_multipart(key, &upload_id, ids).await {
            Ok(done) => done,
            Err(e) => return Err(self.forget_upload_if_gone(job.clip_id, e)),
        };
        self.store.offsite_set_upload(job.clip_id, "", &[])?;
        Ok(done.e_tag)
    }

    /// An upload the server no longer knows (it expired, or was completed just before a
    /// crash) starts over at the next attempt.
    fn forget_upload_if_gone(&self, clip_id: i64, e: object_store::Error) -> Failure {
        if matches!(e, object_store::Error::NotFound { .. })
            && let Err(e2) = self.store.offsite_set_upload(clip_id, "", &[])
        {
            tracing::warn!("offsite: cannot reset clip {clip_id}'s upload: {e2}");
        }
        e.into()
    }

    /// The bucket's copy has the clip's size and ETag (or, where the provider's ETag is
    /// not an MD5, its SHA-256 read back).
    async fn verify(
        &self,
        key: &object_store::path::Path,
        len: u64,
        digests: &Digests,
        put_etag: Option<String>,
    ) -> Result<(), Failure> {
        let meta = self.bucket.s3.head(key).await?;
        if meta.size != len {
            return Err(Failure::Retry(format!(
                "verification failed: {key} holds {} bytes, the clip {len}",
                meta.size
            )));
        }
        let etag = meta.e_tag.or(put_etag).unwrap_or_default();
        let etag = etag.trim_matches('"');
        if is_md5_etag(etag) {
            if etag != digests.etag {
                return Err(Failure::Retry(format!(
                    "verification failed: {key} has ETag {etag}, the clip's is {}",
                    digests.etag
                )));
            }
            return Ok(());
        }
        let read_back = super::fetch::sha256_of_object(&self.bucket, key).await?;
        if read_back != digests.sha256 {
            return Err(Failure::Retry(format!(
                "verification failed: {key} read back with another SHA-256"
            )));
        }
        Ok(())
    }
}

impl From<super::fetch::FetchError> for Failure {
    fn from(e: super::fetch::FetchError) -> Self {
        Self::Retry(e.to_string())
    }
}

/// 2 s, 4 s, … 5 min after `attempts` failures, ±20 %.
fn retry_after_ms(attempts: i64) -> i64 {
    let base = FIRST_RETRY_MS
        .saturating_mul(1 << attempts.clamp(0, 20))
        .min(MAX_RETRY_MS);
    let mut r = [0u8; 2];
    let _ = getrandom::getrandom(&mut r);
    let jitter = (u16::from_le_bytes(r) as f64 / u16::MAX as f64) * 0.4 - 0.2;
    base + (base as f64 * jitter) as i64
}

async fn hash_file(path: PathBuf, len: u64) -> Result<Digests, Failure> {
    tokio::task::spawn_blocking(move || digests(&path, len))
        .await
        .map_err(|e| Failure::Retry(e.to_string()))?
        .map_err(|e| Failure::Permanent(format!("cannot read the clip: {e}")))
}

async fn read_part(path: PathBuf, idx: usize, len: u64) -> Result<Vec<u8>, Failure> {
    tokio::task::spawn_blocking(move || {
        let start = idx as u64 * PART_BYTES as u64;
        let n = (len - start).min(PART_BYTES as u64) as usize;
        let mut buf = vec![0u8; n];
        std::fs::File::open(&path)?.read_exact_at(&mut buf, start)?;
        Ok::<_, std::io::Error>(buf)
    })
    .await
    .map_err(|e| Failure::Retry(e.to_string()))?
    .map_err(|e| Failure::Permanent(format!("cannot read the clip: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_follow_s3s_md5_rules() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let small = dir.path().join("small");
        std::fs::write(&small, b"hello")?;
        let d = digests(&small, 5)?;
        assert_eq!(d.etag, "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(
            d.sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        let big = dir.path().join("big");
        let len = PART_BYTES * 2 + 100 + 16 * 1024 * 1024 - 2 * PART_BYTES;
        let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        std::fs::write(&big, &body)?;
        let d = digests(&big, len as u64)?;
        let mut md5s = Vec::new();
        for part in body.chunks(PART_BYTES) {
            md5s.extend_from_slice(&Md5::digest(part));
        }
        let want = format!("{}-{}", hex(&Md5::digest(&md5s)), len.div_ceil(PART_BYTES));
        assert_eq!(d.etag, want);
        assert!(is_md5_etag(&d.etag) && is_md5_etag("5d41402abc4b2a76b9719d911017c592"));
        assert!(!is_md5_etag("0x8DB1") && !is_md5_etag(""));
        Ok(())
    }

    #[test]
    fn retries_back_off_to_five_minutes() {
        assert!((1_600..=2_400).contains(&retry_after_ms(0)));
        assert!((3_200..=4_800).contains(&retry_after_ms(1)));
        assert!((240_000..=360_000).contains(&retry_after_ms(40)));
    }
}
