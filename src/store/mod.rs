//! The clip store: owns BOTH the recordings directory and the SQLite index, so the two
//! cannot drift apart. Everything under `recordings_dir` is ciphertext (container.rs).
//!
//! Durability order (after moonfire-nvr):
//! - write: `<clip>.partial` (created 0600, dir fsynced) → sealed chunks, `sync()` at each
//!   fragment → seal last chunk → fsync file → rename → fsync dir → insert row.
//! - delete: in one transaction insert the paths into `garbage` and delete the row →
//!   unlink → fsync dir → delete the garbage rows.
//! - startup sweep (sweep.rs): finish garbage; recover `*.partial` up to the last complete
//!   fragment (recover.rs, marked truncated) or remove it; reconcile files without rows and
//!   rows without files.
//!
//! Files: `sealed.rs` creates, finishes and fsyncs sealed files; `writer.rs` streams a
//! clip; `recover.rs` salvages an unfinished one; `sweep.rs` runs at start; `db.rs` holds
//! the schema and the SQL.
//!
//! An fsync failure stops all writing with an error (fsyncgate): the kernel may have
//! dropped the data, so carrying on would list clips that are not on disk.

mod analytics;
pub mod container;
pub mod db;
mod events;
pub mod keys;
mod lock;
mod managed;
mod offsite;
mod outbox;
mod recover;
mod reserve;
pub mod retention;
pub mod review;
pub mod schema;
pub mod scrub;
mod sealed;
use scrub::FoundBy;
mod segments;
mod sweep;
mod tokens;
mod users;
mod writer;

pub use analytics::{Analytics, AnalyticsQuery, Bucket, CameraCount, LabelCount};
pub use container::{ClipError, OpenReader};
pub use events::{EventQuery, EventRecord};
pub use keys::{KeyId, MasterKey};
pub use lock::DataLock;
pub use managed::ManagedCamera;
pub use offsite::{OffsiteCounts, OffsiteJob, OffsiteState};
pub use outbox::{NewMessage, OutboxRow};
pub use retention::{RetentionPolicy, RetentionReport};
pub use review::{ReviewItem, ReviewNotice, ReviewPolicy, ReviewQuery, Reviewer, Severity};
pub use sealed::FSYNCS;
pub use segments::{Span, Timeline};
pub use sweep::SweepReport;
pub use tokens::{NewToken, TokenRow, TokenUse};
pub use users::{FailureCount, LockKind, UserRow};
pub use writer::ClipWriter;

use rusqlite::{Connection, named_params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

// The statements this file runs (named parameters, bound with named_params!).
const PING: &str = "SELECT 1";
const INSERT_CAMERA: &str = "INSERT INTO cameras (id, name) VALUES (:id, :name)
    ON CONFLICT (id) DO UPDATE SET name = excluded.name";
const INSERT_CLIP: &str =
    "INSERT INTO clips (camera_id, path, start_ms, end_ms, duration_ms, frames,
    plain_bytes, file_bytes, codec, width, height, labels, pre_roll_ms, post_roll_ms, state, key_id,
    kind, run_start_ms, timescale, media_ticks, init_bytes, scrubbed_ms)
    VALUES (:camera_id, :path, :start_ms, :end_ms, :duration_ms, :frames, :plain_bytes,
    :file_bytes, :codec, :width, :height, :labels, :pre_roll_ms, :post_roll_ms, :state, :key_id,
    :kind, :run_start_ms, :timescale, :media_ticks, :init_bytes, :end_ms)";
const SET_CLIP_DAMAGE: &str = "UPDATE clips SET damage = :damage WHERE id = :id";
const CLIP_BY_ID: &str = "WHERE id = :id";
/// Event clips only: segments are reached through the timeline and recordings.
const CLIPS_IN_RANGE: &str = "WHERE kind = 'event' AND (:camera IS NULL OR camera_id = :camera)
    AND start_ms >= :since_ms AND start_ms < :until_ms ORDER BY start_ms, id";
const SELECT_CLIP_PATH: &str = "SELECT path FROM clips WHERE id = :id";
const DELETE_CLIP: &str = "DELETE FROM clips WHERE id = :id";
const DELETE_GARBAGE: &str = "DELETE FROM garbage WHERE path = :path";
/// Events that started while a clip of their camera was being recorded belong to it.
const LINK_EVENTS_TO_CLIP: &str = "UPDATE events SET clip_id = :clip_id
    WHERE camera_id = :camera_id AND clip_id IS NULL AND start_ms >= :start_ms
    AND start_ms <= :end_ms";
const SELECT_EVENT_SNAPSHOTS_OF_CLIP: &str =
    "SELECT snapshot_path FROM events WHERE clip_id = :clip_id AND snapshot_path IS NOT NULL";
const DELETE_EVENTS_OF_CLIP: &str = "DELETE FROM events WHERE clip_id = :clip_id";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("clip store database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("{0}")]
    Schema(#[from] schema::SchemaError),
    #[error("clip store I/O on {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("the disk is full and no older clip is left to delete")]
    DiskFull,
    #[error("writing is stopped: {0}")]
    Stopped(String),
    #[error("clip {0} not found")]
    NotFound(i64),
    #[error("{0}")]
    Clip(#[from] ClipError),
    #[error("invalid clip: {0}")]
    Invalid(String),
    /// The clip's file is damaged beyond salvage, or gone (its row was removed then).
    #[error("clip {id} cannot be served: {reason}")]
    Unservable { id: i64, reason: String },
}

impl StoreError {
    /// A full disk (the filesystem or SQLite said so), not a problem of the data.
    pub fn is_disk_full(&self) -> bool {
        match self {
            Self::DiskFull => true,
            Self::Db(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::DiskFull
            }
            _ => false,
        }
    }
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |error| {
        if error.raw_os_error() == Some(libc::ENOSPC) {
            StoreError::DiskFull
        } else {
            StoreError::Io {
                path: path.to_path_buf(),
                error,
            }
        }
    }
}

/// Where the store lives and how it behaves.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub recordings_dir: PathBuf,
    pub database: PathBuf,
    pub chunk_size: u32,
    pub retention: RetentionPolicy,
    /// Age limits wait until a clip bound for the bucket is there
    /// (`storage.offsite.require_uploaded_before_delete`).
    pub offsite_uploaded_first: bool,
    /// How events become review items (review.rs); `set_review_policy` changes it later.
    pub review: review::ReviewPolicy,
}

/// What the recorder knows about a clip when it starts.
#[derive(Debug, Clone, Default)]
pub struct ClipMeta {
    pub camera_id: String,
    /// UTC wall clock of the first frame, ms since the epoch.
    pub start_ms: i64,
    pub codec: String,
    pub width: u32,
    pub height: u32,
    pub labels: Vec<String>,
    pub pre_roll_ms: i64,
    pub post_roll_ms: i64,
    /// Continuous recording: the wall ms the segment's run started at (the segment is
    /// named after it, so a crash-cut one is recovered into its run). None: an event clip.
    pub run_start_ms: Option<i64>,
}

/// What a clip file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClipKind {
    /// Footage around an event (events mode).
    Event,
    /// A piece of continuous recording.
    Segment,
}

impl ClipKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Event => "event",
            Self::Segment => "segment",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipState {
    Complete,
    Truncated,
}

impl ClipState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Truncated => "truncated",
        }
    }
}

/// One row of the clip index.
#[derive(Debug, Clone)]
pub struct ClipRecord {
    pub id: i64,
    pub camera_id: String,
    /// Relative to recordings_dir.
    pub path: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub duration_ms: i64,
    pub frames: i64,
    pub plain_bytes: i64,
    pub file_bytes: i64,
    pub codec: String,
    pub width: u32,
    pub height: u32,
    pub labels: Vec<String>,
    pub pre_roll_ms: i64,
    pub post_roll_ms: i64,
    pub state: ClipState,
    pub key_id: String,
    /// Why the file cannot be served ('' when it can): set by the start-up sweep or when
    /// serving found it damaged; such a clip is answered 410 with this reason.
    pub damage: String,
    /// A salvaged clip: media ms cut off its end when it was found damaged (0 otherwise).
    pub lost_ms: i64,
    pub kind: ClipKind,
    /// Segments: the wall ms their run (gapless span) started at.
    pub run_start_ms: Option<i64>,
    /// The video track's timescale (ticks per second), 0 when unknown.
    pub timescale: u32,
    /// Media duration in ticks of the timescale.
    pub media_ticks: i64,
    /// Bytes of ftyp and moov before the first fragment, 0 when unknown.
    pub init_bytes: i64,
    /// Retention tier (0 no event .. 3 an event marked keep).
    pub tier: i64,
    /// Where its off-site copy stands.
    pub offsite: OffsiteState,
}

impl ClipRecord {
    /// For a salvaged (truncated) clip, what it lost, in words for the listing and the
    /// clip's page; None for a whole clip.
    pub fn salvage_note(&self) -> Option<String> {
        match self.state {
            ClipState::Complete => None,
            ClipState::Truncated => Some(scrub::truncated_note(self.lost_ms)),
        }
    }

    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        let labels: String = r.get("labels")?;
        let state: String = r.get("state")?;
        let kind: String = r.get("kind")?;
        Ok(Self {
            id: r.get("id")?,
            camera_id: r.get("camera_id")?,
            path: r.get("path")?,
            start_ms: r.get("start_ms")?,
            end_ms: r.get("end_ms")?,
            duration_ms: r.get("duration_ms")?,
            frames: r.get("frames")?,
            plain_bytes: r.get("plain_bytes")?,
            file_bytes: r.get("file_bytes")?,
            codec: r.get("codec")?,
            width: r.get("width")?,
            height: r.get("height")?,
            labels: labels
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            pre_roll_ms: r.get("pre_roll_ms")?,
            post_roll_ms: r.get("post_roll_ms")?,
            state: if state == "truncated" {
                ClipState::Truncated
            } else {
                ClipState::Complete
            },
            key_id: r.get("key_id")?,
            damage: r.get("damage")?,
            lost_ms: r.get("lost_ms")?,
            kind: if kind == "segment" {
                ClipKind::Segment
            } else {
                ClipKind::Event
            },
            run_start_ms: r.get("run_start_ms")?,
            timescale: r.get("timescale")?,
            media_ticks: r.get("media_ticks")?,
            init_bytes: r.get("init_bytes")?,
            tier: r.get("tier")?,
            offsite: OffsiteState::from_parts(r.get("offsite_state")?, r.get("offsite_error")?),
        })
    }
}

pub(crate) struct Inner {
    pub(crate) config: StoreConfig,
    pub(crate) key: MasterKey,
    conn: Mutex<Connection>,
    /// Set after an fsync failure: no more writes until restart.
    stopped: Mutex<Option<String>>,
    /// Directories kept open for fsync (sealed.rs), so syncing needs no new descriptor.
    pub(crate) dir_handles: Mutex<std::collections::HashMap<PathBuf, Arc<std::fs::File>>>,
    /// What the integrity scrub has done since start (scrub.rs).
    pub(crate) scrub: scrub::ScrubStats,
    /// How events become review items (review.rs).
    pub(crate) review: std::sync::RwLock<review::ReviewPolicy>,
}

/// Runs `write`; on SQLITE_FULL, makes room (retention.rs) and runs it once more.
fn retry_with_room<T>(
    store: &Store,
    write: impl Fn() -> rusqlite::Result<T>,
) -> Result<T, StoreError> {
    match write() {
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::DiskFull && retention::make_room(store) =>
        {
            Ok(write()?)
        }
        other => Ok(other?),
    }
}

/// Free bytes the index needs to open (WAL and shared-memory files, a few pages).
const OPEN_ROOM_BYTES: u64 = 1 << 20;

/// Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

impl Store {
    /// Opens the directory and database (creating them 0700/0600), then sweeps.
    pub fn open(config: StoreConfig, key: MasterKey) -> Result<(Self, SweepReport), StoreError> {
        keys::create_private_dir(&config.recordings_dir).map_err(io_err(&config.recordings_dir))?;
        if let Some(parent) = config.database.parent() {
            keys::create_private_dir(parent).map_err(io_err(parent))?;
        }
        // On a full disk SQLite cannot even create its WAL: make a little room first.
        retention::reclaim_before_open(&config.recordings_dir, &config.database, OPEN_ROOM_BYTES);
        let conn = db::open(&config.database)?;
        let review = std::sync::RwLock::new(config.review.clone());
        let store = Self {
            inner: Arc::new(Inner {
                config,
                key,
                conn: Mutex::new(conn),
                stopped: Mutex::new(None),
                dir_handles: Default::default(),
                scrub: Default::default(),
                review,
            }),
        };
        let report = sweep::run(&store)?;
        Ok((store, report))
    }

    /// Opens only the index, for account commands run beside a live `sentrix run`: no
    /// sweep (it would touch the running instance's partial clips), no key, and every clip
    /// write refused.
    pub fn open_accounts(config: StoreConfig) -> Result<Self, StoreError> {
        if let Some(parent) = config.database.parent() {
            keys::create_private_dir(parent).map_err(io_err(parent))?;
        }
        let conn = db::open(&config.database)?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                key: MasterKey::from_bytes([0u8; 32]),
                conn: Mutex::new(conn),
                stopped: Mutex::new(Some("opened for account management only".into())),
                dir_handles: Default::default(),
                scrub: Default::default(),
                review: Default::default(),
            }),
        })
    }

    /// The master key, for sealing beside the store (off-site index records).
    pub(crate) fn clip_key(&self) -> &MasterKey {
        &self.inner.key
    }

    pub fn key_id(&self) -> KeyId {
        self.inner.key.id()
    }

    /// A stable tag of `hex_chars` hex digits for `input`, keyed by the master key under
    /// `purpose` (HMAC-SHA-256): the same on every start of this box, unguessable without
    /// its key. Generated alarm addresses use it.
    pub fn keyed_tag(&self, purpose: &str, input: &str, hex_chars: usize) -> String {
        use hmac::{Hmac, Mac};
        let digest = match Hmac::<sha2::Sha256>::new_from_slice(self.inner.key.secret()) {
            Ok(mac) => mac
                .chain_update(purpose.as_bytes())
                .chain_update([0u8])
                .chain_update(input.as_bytes())
                .finalize()
                .into_bytes()
                .to_vec(),
            Err(_) => Vec::new(), // HMAC takes a key of any length
        };
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        hex.chars().take(hex_chars).collect()
    }

    pub fn retention(&self) -> RetentionPolicy {
        self.inner.config.retention
    }

    pub fn recordings_dir(&self) -> &Path {
        &self.inner.config.recordings_dir
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        self.inner.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn check_running(&self) -> Result<(), StoreError> {
        match &*self.inner.stopped.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(why) => Err(StoreError::Stopped(why.clone())),
            None => Ok(()),
        }
    }

    /// Why writing stopped (an fsync failed), if it did: health reports it, so systemd
    /// restarts a store that can no longer record.
    pub fn writing_stopped(&self) -> Option<String> {
        self.inner
            .stopped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records an fsync failure and stops all further writes.
    pub(crate) fn stop_writing(&self, why: String) -> StoreError {
        tracing::error!("clip store: {why}; recording is stopped until sentrix restarts");
        *self.inner.stopped.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.clone());
        StoreError::Stopped(why)
    }

    /// Starts a clip; write MP4 bytes into the returned writer.
    pub fn begin_clip(&self, meta: ClipMeta) -> Result<ClipWriter, StoreError> {
        self.check_running()?;
        ClipWriter::begin(self.clone(), meta)
    }

    /// Moves everything the WAL holds into the database file and empties the WAL (for a
    /// measure of the index's size, or before copying it).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// A trivial query: the database and its lock answer.
    pub fn ping(&self) -> Result<(), StoreError> {
        self.conn().query_row(PING, [], |_| Ok(()))?;
        Ok(())
    }

    /// (clips indexed, bytes on disk of clips, thumbnails and snapshots), in one query.
    pub fn totals(&self) -> Result<(i64, i64), StoreError> {
        let conn = self.conn();
        let clips = conn.query_row(db::COUNT_CLIPS, [], |r| r.get("clips"))?;
        let bytes = conn.query_row(db::TOTAL_FILE_BYTES, [], |r| r.get("bytes"))?;
        Ok((clips, bytes))
    }

    pub fn ensure_camera(&self, id: &str, name: &str) -> Result<(), StoreError> {
        self.conn()
            .execute(INSERT_CAMERA, named_params! {":id": id, ":name": name})?;
        Ok(())
    }

    pub fn clip(&self, id: i64) -> Result<ClipRecord, StoreError> {
        let sql = format!("{} {}", db::SELECT_CLIP, CLIP_BY_ID);
        self.conn()
            .query_row(&sql, named_params! {":id": id}, ClipRecord::from_row)
            .map_err(|e| not_found_as(id, e))
    }

    /// Clips of `camera` (all when None) starting in [since_ms, until_ms), oldest first.
    pub fn clips(
        &self,
        camera: Option<&str>,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<ClipRecord>, StoreError> {
        let sql = format!("{} {}", db::SELECT_CLIP, CLIPS_IN_RANGE);
        let conn = self.conn();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(
            named_params! {":camera": camera, ":since_ms": since_ms, ":until_ms": until_ms},
            ClipRecord::from_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn open_sealed(&self, rel: &str) -> Result<OpenReader, StoreError> {
        let path = self.inner.config.recordings_dir.join(rel);
        let file = std::fs::File::open(&path).map_err(io_err(&path))?;
        Ok(OpenReader::open(file, &self.inner.key)?)
    }

    /// A reader of a sealed file named by its full path, which must be inside
    /// recordings_dir (the web layer canonicalised it).
    pub fn open_sealed_path(&self, path: &Path) -> Result<OpenReader, StoreError> {
        let root = &self.inner.config.recordings_dir;
        let inside =
            path.starts_with(root) || root.canonicalize().is_ok_and(|r| path.starts_with(r));
        if !inside {
            return Err(StoreError::Invalid("not a file of the clip store".into()));
        }
        let file = std::fs::File::open(path).map_err(io_err(path))?;
        Ok(OpenReader::open(file, &self.inner.key)?)
    }

    /// A random-access reader of the clip's MP4 bytes. A clip flagged damaged, or whose
    /// file turns out damaged now (it is flagged then), or gone (its row is removed then)
    /// is `Unservable` with the reason.
    pub fn open_clip(&self, id: i64) -> Result<OpenReader, StoreError> {
        let rec = self.clip(id)?;
        let unservable = |reason: String| StoreError::Unservable { id, reason };
        if !rec.damage.is_empty() {
            return Err(unservable(rec.damage));
        }
        match self.open_sealed(&rec.path) {
            Err(StoreError::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {
                self.forget_missing(id)?;
                Err(unservable(
                    "its file is gone; it was removed from the list".into(),
                ))
            }
            Err(StoreError::Clip(e)) => {
                let now_ms = crate::base::clock::wall_ms();
                let found =
                    self.damage_found(id, &rec.path, &e.to_string(), FoundBy::Playback, now_ms)?;
                Err(unservable(format!("{e}; {}", found.outcome)))
            }
            other => other,
        }
    }

    pub fn open_thumbnail(&self, id: i64) -> Result<OpenReader, StoreError> {
        let rel = db::thumbnail_path(&self.conn(), id)?.ok_or(StoreError::NotFound(id))?;
        self.open_sealed(&rel)
    }

    /// Runs `write` on the index; when the disk is full, makes room once and runs it again.
    pub(crate) fn with_room<T>(
        &self,
        write: impl Fn(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        retry_with_room(self, || write(&self.conn()))
    }

    /// Inserts the clip row (and thumbnail row) in one transaction; on a full disk, makes room
    /// once and retries. The file must already be sealed in place (the writer, the sweep
    /// and restores call it in that order; the timeline bench indexes rows alone).
    pub fn insert_clip(
        &self,
        mut r: ClipRecord,
        thumb: Option<(String, u64)>,
    ) -> Result<ClipRecord, StoreError> {
        let attempt = |r: &ClipRecord| -> rusqlite::Result<i64> {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            tx.execute(
                db::INSERT_CAMERA_IF_MISSING,
                named_params! {":id": r.camera_id},
            )?;
            tx.execute(
                INSERT_CLIP,
                named_params! {
                    ":camera_id": r.camera_id,
                    ":path": r.path,
                    ":start_ms": r.start_ms,
                    ":end_ms": r.end_ms,
                    ":duration_ms": r.duration_ms,
                    ":frames": r.frames,
                    ":plain_bytes": r.plain_bytes,
                    ":file_bytes": r.file_bytes,
                    ":codec": r.codec,
                    ":width": r.width,
                    ":height": r.height,
                    ":labels": r.labels.join(","),
                    ":pre_roll_ms": r.pre_roll_ms,
                    ":post_roll_ms": r.post_roll_ms,
                    ":state": r.state.as_str(),
                    ":key_id": r.key_id,
                    ":kind": r.kind.as_str(),
                    ":run_start_ms": r.run_start_ms,
                    ":timescale": r.timescale,
                    ":media_ticks": r.media_ticks,
                    ":init_bytes": r.init_bytes,
                },
            )?;
            let id = tx.last_insert_rowid();
            if r.kind == ClipKind::Segment {
                // Footage is marked by the events over it, never linked to them.
                let (pre_ms, post_ms) = self.inner.config.retention.event_margin_ms;
                tx.execute(
                    db::RETIER_SEGMENTS,
                    named_params! {
                        ":camera": r.camera_id, ":from_ms": r.start_ms, ":to_ms": r.end_ms,
                        ":pre_ms": pre_ms, ":post_ms": post_ms,
                    },
                )?;
                tx.commit()?;
                return Ok(id);
            }
            if let Some((path, bytes)) = &thumb {
                tx.execute(
                    db::INSERT_THUMBNAIL,
                    named_params! {":clip_id": id, ":path": path, ":file_bytes": *bytes as i64},
                )?;
            }
            tx.execute(
                LINK_EVENTS_TO_CLIP,
                named_params! {
                    ":clip_id": id,
                    ":camera_id": r.camera_id,
                    ":start_ms": r.start_ms,
                    ":end_ms": r.end_ms,
                },
            )?;
            tx.execute(db::RETIER_EVENT_CLIP, named_params! {":clip_id": id})?;
            tx.commit()?;
            Ok(id)
        };
        let id = retry_with_room(self, || attempt(&r))?;
        r.id = id;
        Ok(r)
    }

    /// Marks clip `id` unservable for `reason` (its file is damaged and nothing in it could
    /// be salvaged); it stays listed with the reason, and its file stays for inspection.
    pub fn flag_damaged(&self, id: i64, reason: &str) -> Result<(), StoreError> {
        tracing::warn!("clip {id} is damaged: {reason}");
        self.conn().execute(
            SET_CLIP_DAMAGE,
            named_params! {":id": id, ":damage": reason},
        )?;
        Ok(())
    }

    /// Removes the row of clip `id` whose file is gone (deleted by hand, lost with a disk),
    /// so it leaves the listing; its thumbnail and event snapshots go too.
    pub fn forget_missing(&self, id: i64) -> Result<(), StoreError> {
        tracing::warn!("clip {id} has no file any more; removing it from the index");
        self.delete_clip(id).map(|_| ())
    }

    /// Unlinks a clip's files (clip, thumbnail, event snapshots) without touching its row:
    /// retention's last resort when the index cannot be written (retention.rs). Returns
    /// the bytes freed.
    pub(crate) fn unlink_clip_files(&self, id: i64) -> Result<u64, StoreError> {
        let paths: Vec<String> = {
            let conn = self.conn();
            let clip: String = conn
                .query_row(SELECT_CLIP_PATH, named_params! {":id": id}, |r| {
                    r.get("path")
                })
                .map_err(|e| not_found_as(id, e))?;
            let mut paths = vec![clip];
            paths.extend(db::thumbnail_path(&conn, id)?);
            paths
        };
        let root = &self.inner.config.recordings_dir;
        let mut freed = 0;
        for rel in &paths {
            let path = root.join(rel);
            freed += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(&path)(e)),
                _ => {}
            }
            if let Some(dir) = path.parent() {
                sealed::fsync_dir_after_unlink(self, dir)?;
            }
        }
        Ok(freed)
    }

    /// Deletes a clip and its thumbnail in durability order.
    pub fn delete_clip(&self, id: i64) -> Result<u64, StoreError> {
        let paths: Vec<String> = {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let clip: String = tx
                .query_row(SELECT_CLIP_PATH, named_params! {":id": id}, |r| {
                    r.get("path")
                })
                .map_err(|e| not_found_as(id, e))?;
            let mut paths = vec![clip];
            paths.extend(db::thumbnail_path(&tx, id)?);
            // The clip's events go with it: an event is kept for its footage.
            {
                let mut stmt = tx.prepare(SELECT_EVENT_SNAPSHOTS_OF_CLIP)?;
                let snaps = stmt.query_map(named_params! {":clip_id": id}, |r| {
                    r.get::<_, String>("snapshot_path")
                })?;
                for p in snaps {
                    paths.push(p?);
                }
            }
            tx.execute(DELETE_EVENTS_OF_CLIP, named_params! {":clip_id": id})?;
            for p in &paths {
                tx.execute(db::INSERT_GARBAGE, named_params! {":path": p})?;
            }
            tx.execute(DELETE_CLIP, named_params! {":id": id})?;
            tx.commit()?;
            paths
        };
        self.collect_garbage(&paths)
    }

    /// Unlinks garbage files, syncs their directories, then forgets them. Returns bytes freed.
    pub(crate) fn collect_garbage(&self, paths: &[String]) -> Result<u64, StoreError> {
        let root = &self.inner.config.recordings_dir;
        let mut freed = 0u64;
        let mut dirs: Vec<PathBuf> = Vec::new();
        for rel in paths {
            let path = root.join(rel);
            freed += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&path)(e)),
            }
            if let Some(d) = path.parent()
                && !dirs.iter().any(|x| x == d)
            {
                dirs.push(d.to_path_buf());
            }
        }
        for d in &dirs {
            sealed::fsync_dir_after_unlink(self, d)?;
        }
        let conn = self.conn();
        for rel in paths {
            conn.execute(DELETE_GARBAGE, named_params! {":path": rel})?;
        }
        Ok(freed)
    }
}

/// A query for clip `id` that found no row means the clip does not exist.
fn not_found_as(id: i64, e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound(id),
        e => e.into(),
    }
}
