//! `ClipWriter`: streams a clip's MP4 bytes into a sealed `*.partial` file, syncs it at
//! every completed fragment (found by scanning the bytes), and on `finish` completes the
//! durability order (seal, fsync, rename, fsync dir, insert row). A write that hits a full
//! disk asks retention to delete the oldest clips and tries again. A writer dropped
//! without `finish` is recovered up to its last complete fragment (state `truncated`).

use super::container::SealWriter;
use super::mp4scan::Mp4Scan;
use super::recover::recover_partial;
use super::sealed::{RoomFile, create_sealed, fsync_dir, fsync_file, seal_and_rename};
use super::{ClipKind, ClipMeta, ClipRecord, ClipState, Store, StoreError, io_err, keys};
use std::io;
use std::path::PathBuf;

pub struct ClipWriter {
    store: Store,
    meta: ClipMeta,
    /// Relative path of the finished clip.
    rel_path: String,
    partial: PathBuf,
    sealer: Option<SealWriter<RoomFile>>,
    scan: Mp4Scan,
}

impl ClipWriter {
    pub(crate) fn begin(store: Store, meta: ClipMeta) -> Result<Self, StoreError> {
        if meta.camera_id.is_empty() || meta.camera_id.contains(['/', '\\', '.']) {
            return Err(StoreError::Invalid(format!(
                "camera id {:?} cannot name a directory",
                meta.camera_id
            )));
        }
        let rel_dir = format!("{}/{}", meta.camera_id, super::utc_date(meta.start_ms));
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
        let fragments = self.scan.fragments;
        self.scan.feed(bytes);
        sealer.write(bytes).map_err(io_err(&self.partial))?;
        if self.scan.fragments > fragments {
            fsync_file(&self.store, &sealer.get_ref().file, &self.partial, true)?;
        }
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
