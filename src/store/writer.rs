//! `ClipWriter`: streams a clip's MP4 bytes into a sealed `*.partial` file, syncs it at
//! every completed fragment (found by scanning the bytes), and on `finish` completes the
//! durability order (seal, fsync, rename, fsync dir, insert row). A write that hits a full
//! disk asks retention to delete the oldest clips and tries again. A writer dropped
//! without `finish` is recovered up to its last complete fragment (state `truncated`).
//!
//! Chunks are sealed when full, so a slow stream (a still night scene) could keep whole
//! fragments in memory, unsealed. When a fragment completes and the open chunk would not
//! fill within `TAIL_MAX_AGE` at the stream's recent byte rate (or already holds data
//! older than that), a `free` box pads it to the chunk's end and the chunk is sealed and
//! synced: a crash then loses only the open fragment (and, for a fast stream, under
//! `TAIL_MAX_AGE` of the one before). A fast stream fills chunks sooner and is never padded.

use super::container::SealWriter;
use super::recover::recover_partial;
use super::sealed::{RoomFile, create_sealed, fsync_dir, fsync_file, seal_and_rename};
use super::{ClipKind, ClipMeta, ClipRecord, ClipState, Store, StoreError, io_err, keys};
use crate::media::mp4scan::Mp4Scan;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The oldest unsealed data a completed fragment may leave in memory.
const TAIL_MAX_AGE: Duration = Duration::from_millis(250);

/// Bytes written since a moment: the stream's recent byte rate.
#[derive(Default, Clone, Copy)]
struct ByteRate {
    since: Option<Instant>,
    bytes: u64,
}

impl ByteRate {
    fn from_now() -> Self {
        Self {
            since: Some(Instant::now()),
            bytes: 0,
        }
    }

    /// Starts counting again from now; returns the count so far.
    fn restart(&mut self) -> Self {
        std::mem::replace(self, Self::from_now())
    }

    /// How long `bytes` more would take at this rate (None: no rate known yet).
    fn time_for(&self, bytes: u64) -> Option<Duration> {
        let elapsed_s = self.since?.elapsed().as_secs_f64();
        if self.bytes == 0 || elapsed_s <= 0.0 {
            return None;
        }
        Some(Duration::from_secs_f64(
            bytes as f64 * elapsed_s / self.bytes as f64,
        ))
    }
}

pub struct ClipWriter {
    store: Store,
    meta: ClipMeta,
    /// Relative path of the finished clip.
    rel_path: String,
    partial: PathBuf,
    sealer: Option<SealWriter<RoomFile>>,
    scan: Mp4Scan,
    /// When the oldest byte of the open chunk arrived.
    tail_since: Option<Instant>,
    /// Bytes written since the last completed fragment, for the stream's byte rate.
    fragment_rate: ByteRate,
}

impl ClipWriter {
    pub(crate) fn begin(store: Store, meta: ClipMeta) -> Result<Self, StoreError> {
        if meta.camera_id.is_empty() || meta.camera_id.contains(['/', '\\', '.']) {
            return Err(StoreError::Invalid(format!(
                "camera id {:?} cannot name a directory",
                meta.camera_id
            )));
        }
        let rel_dir = format!(
            "{}/{}",
            meta.camera_id,
            crate::base::clock::utc_date(meta.start_ms)
        );
        let dir = store.inner.config.recordings_dir.join(&rel_dir);
        keys::create_private_dir(&dir).map_err(io_err(&dir))?;
        let mut tag = [0u8; 4];
        getrandom::getrandom(&mut tag).map_err(|e| io_err(&dir)(io::Error::other(e)))?;
        // A segment carries its run in its name, so a crash-cut one rejoins it (recover.rs).
        let run = meta
            .run_start_ms
            .map(|r| format!("-run{r}"))
            .unwrap_or_default();
        let rel_path = format!(
            "{rel_dir}/{}{run}-{:08x}.mp4.sntx",
            meta.start_ms,
            u32::from_be_bytes(tag)
        );
        let partial = store
            .inner
            .config
            .recordings_dir
            .join(format!("{rel_path}.partial"));
        let sealer = create_sealed(&store, &partial);
        // The partial must survive a crash to be recovered. A clip that cannot start (a
        // full disk with nothing left to delete) leaves no empty partial behind.
        let sealer = match sealer.and_then(|s| fsync_dir(&store, &dir).map(|()| s)) {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
        };
        Ok(Self {
            store,
            meta,
            rel_path,
            partial,
            sealer: Some(sealer),
            scan: Mp4Scan::new(),
            tail_since: None,
            fragment_rate: ByteRate::from_now(),
        })
    }

    /// Relative path the clip will have once finished.
    pub fn rel_path(&self) -> &str {
        &self.rel_path
    }

    /// Appends MP4 bytes. Each completed fragment is synced to disk.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.store.check_running()?;
        let Some(sealer) = self.sealer.as_mut() else {
            return Err(StoreError::Invalid("clip already finished".into()));
        };
        let (fragments, sealed) = (self.scan.fragments, sealer.sealed_plain_bytes());
        self.scan.feed(bytes);
        sealer.write(bytes).map_err(io_err(&self.partial))?;
        self.fragment_rate.bytes += bytes.len() as u64;
        if sealer.buffered() == 0 {
            self.tail_since = None;
        } else if self.tail_since.is_none() || sealer.sealed_plain_bytes() > sealed {
            self.tail_since = Some(Instant::now());
        }
        if self.scan.fragments > fragments {
            self.pad_old_tail()?;
            let Some(sealer) = self.sealer.as_ref() else {
                return Ok(());
            };
            fsync_file(&self.store, &sealer.get_ref().file, &self.partial, true)?;
        }
        Ok(())
    }

    /// At a fragment's end: seals the open chunk, padded with a `free` box, when it would
    /// not fill within `TAIL_MAX_AGE` or its data is already older than that.
    fn pad_old_tail(&mut self) -> Result<(), StoreError> {
        let rate = self.fragment_rate.restart();
        let Some(sealer) = self.sealer.as_mut() else {
            return Ok(());
        };
        let at_boundary = self.scan.complete_end == sealer.plain_bytes();
        let chunk = sealer.chunk_size() as usize;
        let fills_in = rate.time_for((chunk - sealer.buffered()) as u64);
        let slow = fills_in.is_some_and(|t| t > TAIL_MAX_AGE);
        let old = self.tail_since.is_some_and(|t| t.elapsed() >= TAIL_MAX_AGE);
        if !at_boundary || !(old || slow) || sealer.buffered() == 0 {
            return Ok(());
        }
        let mut pad = chunk - sealer.buffered();
        if pad < 8 {
            pad += chunk; // a box header needs 8 bytes
        }
        let mut free = vec![0u8; pad];
        free[..4].copy_from_slice(&(pad as u32).to_be_bytes());
        free[4..8].copy_from_slice(b"free");
        self.scan.feed(&free);
        sealer.write(&free).map_err(io_err(&self.partial))?;
        sealer.seal_full_chunk().map_err(io_err(&self.partial))?;
        self.tail_since = None;
        Ok(())
    }

    /// Media written so far, in ms (complete fragments).
    pub fn duration_ms(&self) -> u64 {
        self.scan.duration_ms()
    }

    pub fn plain_bytes(&self) -> u64 {
        self.sealer.as_ref().map(|s| s.plain_bytes()).unwrap_or(0)
    }

    /// Completes the clip (and its thumbnail JPEG, if any) and indexes it.
    pub fn finish(mut self, thumbnail: Option<&[u8]>) -> Result<ClipRecord, StoreError> {
        let sealer = self
            .sealer
            .take()
            .ok_or_else(|| StoreError::Invalid("clip already finished".into()))?;
        if let Some(e) = &self.scan.error {
            drop(sealer);
            let _ = std::fs::remove_file(&self.partial);
            return Err(StoreError::Invalid(format!("not a fragmented MP4: {e}")));
        }
        if self.scan.fragments == 0 {
            drop(sealer);
            let _ = std::fs::remove_file(&self.partial);
            return Err(StoreError::Invalid(
                "no complete fragment was written".into(),
            ));
        }
        if self.scan.complete_end != sealer.plain_bytes() {
            // A fragment was cut off: keep what plays, marked truncated.
            drop(sealer);
            return recover_partial(&self.store, &self.partial)?
                .ok_or_else(|| StoreError::Invalid("nothing playable was written".into()));
        }
        let root = self.store.inner.config.recordings_dir.clone();
        let final_path = root.join(&self.rel_path);
        let file_bytes = seal_and_rename(&self.store, sealer, &self.partial, &final_path)?;
        let thumb = thumbnail.and_then(|jpeg| self.write_thumbnail(jpeg));
        let record = ClipRecord {
            id: 0,
            camera_id: self.meta.camera_id.clone(),
            path: self.rel_path.clone(),
            start_ms: self.meta.start_ms,
            end_ms: self.meta.start_ms + self.scan.duration_ms() as i64,
            duration_ms: self.scan.duration_ms() as i64,
            frames: self.scan.samples as i64,
            plain_bytes: self.scan.complete_end as i64,
            file_bytes: file_bytes as i64,
            codec: if self.meta.codec.is_empty() {
                self.scan.codec.clone()
            } else {
                self.meta.codec.clone()
            },
            width: if self.meta.width == 0 {
                self.scan.width
            } else {
                self.meta.width
            },
            height: if self.meta.height == 0 {
                self.scan.height
            } else {
                self.meta.height
            },
            labels: self.meta.labels.clone(),
            pre_roll_ms: self.meta.pre_roll_ms,
            post_roll_ms: self.meta.post_roll_ms,
            state: ClipState::Complete,
            key_id: self.store.key_id().to_string(),
            damage: String::new(),
            lost_ms: 0,
            kind: if self.meta.run_start_ms.is_some() {
                ClipKind::Segment
            } else {
                ClipKind::Event
            },
            run_start_ms: self.meta.run_start_ms,
            timescale: self.scan.timescale,
            media_ticks: self.scan.duration_ticks as i64,
            init_bytes: self.scan.init_end as i64,
            tier: 0,
            offsite: super::OffsiteState::Local,
        };
        self.store.insert_clip(record, thumb)
    }

    /// Seals the clip's thumbnail beside it. A thumbnail that cannot be written (a full
    /// disk) is left out rather than costing the clip its row.
    fn write_thumbnail(&self, jpeg: &[u8]) -> Option<(String, u64)> {
        let root = &self.store.inner.config.recordings_dir;
        let rel = self.rel_path.replace(".mp4.sntx", ".jpg.sntx");
        let tmp = root.join(format!("{rel}.partial"));
        let written = create_sealed(&self.store, &tmp).and_then(|mut s| {
            s.write(jpeg).map_err(io_err(&tmp))?;
            seal_and_rename(&self.store, s, &tmp, &root.join(&rel))
        });
        match written {
            Ok(bytes) => Some((rel, bytes)),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                tracing::warn!("clip {}: no thumbnail ({e})", self.rel_path);
                None
            }
        }
    }

    /// Discards the clip (no row, no file).
    pub fn abort(mut self) {
        self.sealer.take();
        let _ = std::fs::remove_file(&self.partial);
    }
}

impl Drop for ClipWriter {
    fn drop(&mut self) {
        if self.sealer.take().is_some() {
            match recover_partial(&self.store, &self.partial) {
                Ok(Some(r)) => tracing::warn!(
                    "clip {} was not finished; kept {} ms as truncated",
                    r.path,
                    r.duration_ms
                ),
                Ok(None) => {}
                Err(e) => tracing::warn!(
                    "clip {} was not finished and could not be recovered: {e}",
                    self.rel_path
                ),
            }
        }
    }
}
