//! The integrity scrub's store side: which clip is due, authenticating a clip's files whole
//! (every chunk's tag, not only the first and last the start-up check opens), and what is
//! done with damage, whoever finds it (the start-up check, the scrub or playback).
//!
//! - A clip is due when its file was last authenticated whole (`clips.scrubbed_ms`) more
//!   than a scrub period ago; the least recently scrubbed go first, so a pass interrupted
//!   by a restart resumes where it stopped.
//! - Its thumbnail and its events' snapshots are authenticated with it.
//! - Reads go through a `ReadBudget` (a bounded read rate), and each file's pages are
//!   dropped from the page cache afterwards, so recording and playback keep the disk and
//!   the cache.
//! - A damaged clip is salvaged to its last good fragment as the start-up check does
//!   (recover.rs), and `clips.lost_ms` keeps what was lost; a damaged image is flagged.
//!   Either way a row in `damaged_files` says which file, who found it, why and what was
//!   done: health, /metrics and the clip's page read it.

use super::container::OpenReader;
use super::recover::salvage_indexed;
use super::{Store, StoreError, io_err};
use rusqlite::{OptionalExtension, named_params};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The label of the event that announces a damaged file (notifications, the timeline).
pub const DAMAGED_LABEL: &str = "damaged";

const NEXT_DUE: &str = "SELECT id, path, duration_ms FROM clips
    WHERE scrubbed_ms <= :due_ms AND damage = '' ORDER BY scrubbed_ms, id LIMIT 1";
const SET_SCRUBBED: &str = "UPDATE clips SET scrubbed_ms = :now_ms WHERE id = :id";
/// A clip's thumbnail, and the snapshots of its events: those linked to it, and those of
/// its camera that start within it and are linked to no clip (a continuous segment's).
const CLIP_IMAGES: &str = "SELECT path, 'thumbnail' AS kind FROM thumbnails WHERE clip_id = :id
    UNION ALL SELECT e.snapshot_path AS path, 'snapshot' AS kind FROM events e, clips c
    WHERE c.id = :id AND e.snapshot_path IS NOT NULL
    AND (e.clip_id = c.id OR (e.clip_id IS NULL AND e.camera_id = c.camera_id
        AND e.start_ms >= c.start_ms AND e.start_ms < c.end_ms))";
const CLIP_DURATION: &str = "SELECT duration_ms FROM clips WHERE id = :id";
const SET_LOST: &str = "UPDATE clips SET lost_ms = lost_ms + :lost_ms WHERE id = :id";
const INSERT_DAMAGED: &str = "INSERT INTO damaged_files
    (path, clip_id, kind, found_ms, found_by, problem, outcome)
    VALUES (:path, :clip_id, :kind, :found_ms, :found_by, :problem, :outcome)
    ON CONFLICT (path) DO UPDATE SET found_ms = excluded.found_ms,
    found_by = excluded.found_by, problem = excluded.problem, outcome = excluded.outcome";
const COUNT_DAMAGED: &str = "SELECT COUNT(*) AS n FROM damaged_files";
const DAMAGED_OF_CLIP: &str = "SELECT path, kind, found_ms, found_by, problem, outcome
    FROM damaged_files WHERE clip_id = :id ORDER BY found_ms";
const SALVAGED_OF: &str = "SELECT id, lost_ms FROM clips
    WHERE id IN (SELECT value FROM json_each(:ids)) AND state = 'truncated'";
const COUNT_DUE: &str = "SELECT COUNT(*) AS n, COALESCE(SUM(file_bytes), 0) AS bytes FROM clips
    WHERE scrubbed_ms <= :due_ms AND damage = ''";

/// Who found a damaged file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoundBy {
    StartUp,
    Scrub,
    Playback,
}

impl FoundBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StartUp => "start-up",
            Self::Scrub => "scrub",
            Self::Playback => "playback",
        }
    }
}

/// One damaged file, as `damaged_files` keeps it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DamagedFile {
    pub path: String,
    pub kind: String,
    pub found_ms: i64,
    pub found_by: String,
    pub problem: String,
    /// `salvaged: the last N s were lost`, `flagged: nothing in it plays`, or `flagged`.
    pub outcome: String,
}

/// What the scrub has done since start (for health and /metrics).
#[derive(Default)]
pub struct ScrubStats {
    files: AtomicU64,
    bytes: AtomicU64,
    damaged: AtomicU64,
    busy_ms: AtomicU64,
    passes: AtomicU64,
    last_pass_end_ms: AtomicU64,
    last_pass_ms: AtomicU64,
}

/// A copy of `ScrubStats`.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ScrubTotals {
    pub files: u64,
    pub bytes: u64,
    pub damaged: u64,
    /// Wall time spent scrubbing (reading, throttled), ms.
    pub busy_ms: u64,
    /// Complete passes over every due file.
    pub passes: u64,
    /// When the last complete pass ended (wall ms, 0 = none yet) and how long it took.
    pub last_pass_end_ms: u64,
    pub last_pass_ms: u64,
}

impl ScrubTotals {
    /// The scrub's read rate while it works, MB/s.
    pub fn mb_per_s(&self) -> f64 {
        match self.busy_ms {
            0 => 0.0,
            ms => self.bytes as f64 / 1e6 / (ms as f64 / 1000.0),
        }
    }
}

/// A bounded read rate: `consumed` sleeps as long as reading is ahead of it, until
/// `stop` is cancelled (then the file at hand is finished at full speed, so a shutdown
/// never waits for the rate).
pub struct ReadBudget {
    bytes_per_s: u64,
    started: Instant,
    bytes: u64,
    stop: tokio_util::sync::CancellationToken,
}

impl ReadBudget {
    pub fn new(bytes_per_s: u64, stop: tokio_util::sync::CancellationToken) -> Self {
        Self {
            bytes_per_s: bytes_per_s.max(1),
            started: Instant::now(),
            bytes: 0,
            stop,
        }
    }

    /// Counts `n` bytes read, then waits until the rate allows them.
    pub fn consumed(&mut self, n: u64) {
        self.bytes += n;
        if self.stop.is_cancelled() {
            return;
        }
        let due = Duration::from_secs_f64(self.bytes as f64 / self.bytes_per_s as f64);
        if let Some(ahead) = due.checked_sub(self.started.elapsed()) {
            std::thread::sleep(ahead);
        }
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// What scrubbing one clip found.
#[derive(Debug, Default)]
pub struct ClipScrub {
    /// Files authenticated (the clip and its images).
    pub files: u64,
    /// Sealed bytes read.
    pub bytes: u64,
    pub damaged: Vec<DamagedFile>,
}

/// What a truncated clip's listing says: what was lost when damage was salvaged, or, with
/// nothing measured as lost, that it was recovered after a crash or power cut (only the
/// fragment being written went).
pub fn truncated_note(lost_ms: i64) -> String {
    match lost_ms {
        0 => "salvaged after an interruption: its unfinished last fragment was lost".into(),
        ms => salvage_note(ms),
    }
}

/// The `lost` note of a salvage: what the listing and the clip's page show.
pub fn salvage_note(lost_ms: i64) -> String {
    format!(
        "salvaged: the last {:.1} s were lost",
        lost_ms.max(0) as f64 / 1000.0
    )
}

impl Store {
    /// What the scrub has done since start.
    pub fn scrub_totals(&self) -> ScrubTotals {
        let s = &self.inner.scrub;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ScrubTotals {
            files: get(&s.files),
            bytes: get(&s.bytes),
            damaged: get(&s.damaged),
            busy_ms: get(&s.busy_ms),
            passes: get(&s.passes),
            last_pass_end_ms: get(&s.last_pass_end_ms),
            last_pass_ms: get(&s.last_pass_ms),
        }
    }

    /// Counts one clip scrubbed in `busy_ms`.
    pub fn count_scrubbed(&self, done: &ClipScrub, busy_ms: u64) {
        let s = &self.inner.scrub;
        s.files.fetch_add(done.files, Ordering::Relaxed);
        s.bytes.fetch_add(done.bytes, Ordering::Relaxed);
        s.damaged
            .fetch_add(done.damaged.len() as u64, Ordering::Relaxed);
        s.busy_ms.fetch_add(busy_ms, Ordering::Relaxed);
    }

    /// Counts a complete pass that ended at `end_ms` (wall) after `took_ms`.
    pub fn count_scrub_pass(&self, end_ms: i64, took_ms: u64) {
        let s = &self.inner.scrub;
        s.passes.fetch_add(1, Ordering::Relaxed);
        s.last_pass_end_ms
            .store(end_ms.max(0) as u64, Ordering::Relaxed);
        s.last_pass_ms.store(took_ms, Ordering::Relaxed);
    }

    /// The clip whose files were authenticated longest ago, if that was at or before
    /// `due_ms`: (id, path).
    pub fn next_to_scrub(&self, due_ms: i64) -> Result<Option<(i64, String)>, StoreError> {
        let row = self
            .conn()
            .query_row(NEXT_DUE, named_params! {":due_ms": due_ms}, |r| {
                Ok((r.get("id")?, r.get("path")?))
            })
            .optional()?;
        Ok(row)
    }

    /// Clips (and their sealed bytes) due at `due_ms`: what a pass has left.
    pub fn scrub_due(&self, due_ms: i64) -> Result<(u64, u64), StoreError> {
        let due = self
            .conn()
            .query_row(COUNT_DUE, named_params! {":due_ms": due_ms}, |r| {
                Ok((
                    r.get::<_, i64>("n")? as u64,
                    r.get::<_, i64>("bytes")? as u64,
                ))
            })?;
        Ok(due)
    }

    /// Authenticates clip `id` at `rel` and its images whole within `budget`; salvages or
    /// flags what is damaged, and marks the clip scrubbed at `now_ms`.
    pub fn scrub_clip(
        &self,
        id: i64,
        rel: &str,
        budget: &mut ReadBudget,
        now_ms: i64,
    ) -> Result<ClipScrub, StoreError> {
        let mut out = ClipScrub::default();
        let root = self.recordings_dir().to_path_buf();
        let before = budget.bytes();
        match authenticate_whole(self, &root.join(rel), budget) {
            Ok(()) => out.files += 1,
            // Deleted by retention meanwhile (its row is gone too): nothing to scrub. A row
            // whose file was removed behind the store's back goes, as at start-up.
            Err(Problem::Gone) => {
                if self.clip(id).is_ok() {
                    self.forget_missing(id)?;
                }
                return Ok(out);
            }
            Err(Problem::Damaged(why)) => {
                out.files += 1;
                out.damaged
                    .push(self.damage_found(id, rel, &why, FoundBy::Scrub, now_ms)?);
            }
        }
        for (path, kind) in self.clip_images(id)? {
            match authenticate_whole(self, &root.join(&path), budget) {
                Ok(()) | Err(Problem::Gone) => {}
                Err(Problem::Damaged(why)) => {
                    let found = record_image_damage(self, id, &path, &kind, &why, now_ms)?;
                    out.damaged.push(found);
                }
            }
            out.files += 1;
        }
        out.bytes = budget.bytes() - before;
        self.with_room(|c| c.execute(SET_SCRUBBED, named_params! {":id": id, ":now_ms": now_ms}))?;
        Ok(out)
    }

    fn clip_images(&self, id: i64) -> Result<Vec<(String, String)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(CLIP_IMAGES)?;
        let rows = stmt.query_map(named_params! {":id": id}, |r| {
            Ok((r.get("path")?, r.get("kind")?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Clip `id` at `rel` was found damaged (`problem`) by `found_by`: salvaged to its last
    /// good fragment (what was lost is kept in `lost_ms`), or flagged when nothing plays;
    /// recorded in `damaged_files` and logged.
    pub fn damage_found(
        &self,
        id: i64,
        rel: &str,
        problem: &str,
        found_by: FoundBy,
        now_ms: i64,
    ) -> Result<DamagedFile, StoreError> {
        let before_ms = self.clip_duration_ms(id)?;
        let kept = match salvage_indexed(self, id, rel, problem) {
            Ok(kept) => kept,
            Err(e @ StoreError::Stopped(_)) => return Err(e),
            Err(e) => {
                self.flag_damaged(id, &format!("{problem}; salvage failed: {e}"))?;
                false
            }
        };
        let outcome = if kept {
            let lost_ms = (before_ms - self.clip_duration_ms(id)?).max(0);
            self.with_room(|c| {
                c.execute(SET_LOST, named_params! {":id": id, ":lost_ms": lost_ms})
            })?;
            salvage_note(lost_ms)
        } else {
            "flagged: nothing in it plays".to_string()
        };
        tracing::warn!(
            "{} found clip {id} ({rel}) damaged: {problem}; {outcome}",
            found_by.as_str()
        );
        let found = DamagedFile {
            path: rel.to_string(),
            kind: "clip".into(),
            found_ms: now_ms,
            found_by: found_by.as_str().into(),
            problem: problem.to_string(),
            outcome,
        };
        insert_damaged(self, Some(id), &found)?;
        Ok(found)
    }

    /// `damage_found` for clip `id` found damaged while it was being served.
    pub fn damage_found_in_playback(&self, id: i64, problem: &str) -> Result<(), StoreError> {
        let rec = self.clip(id)?;
        let now_ms = crate::base::clock::wall_ms();
        self.damage_found(id, &rec.path, problem, FoundBy::Playback, now_ms)?;
        Ok(())
    }

    fn clip_duration_ms(&self, id: i64) -> Result<i64, StoreError> {
        let d = self
            .conn()
            .query_row(CLIP_DURATION, named_params! {":id": id}, |r| {
                r.get("duration_ms")
            })
            .optional()?;
        d.ok_or(StoreError::NotFound(id))
    }

    /// The salvage notes (`ClipRecord::salvage_note`) of those of `clip_ids` that were
    /// salvaged, for listings.
    pub fn salvage_notes(
        &self,
        clip_ids: &[i64],
    ) -> Result<std::collections::HashMap<i64, String>, StoreError> {
        let ids =
            serde_json::to_string(clip_ids).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(SALVAGED_OF)?;
        let rows = stmt.query_map(named_params! {":ids": ids}, |r| {
            let note = truncated_note(r.get("lost_ms")?);
            Ok((r.get::<_, i64>("id")?, note))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Damaged files found so far (all of them, for health and /metrics).
    pub fn damaged_file_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self.conn().query_row(COUNT_DAMAGED, [], |r| r.get("n"))?;
        Ok(n as u64)
    }

    /// The damaged files of clip `id` (the clip, its thumbnail, its snapshots).
    pub fn damaged_files_of(&self, id: i64) -> Result<Vec<DamagedFile>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(DAMAGED_OF_CLIP)?;
        let rows = stmt.query_map(named_params! {":id": id}, |r| {
            Ok(DamagedFile {
                path: r.get("path")?,
                kind: r.get("kind")?,
                found_ms: r.get("found_ms")?,
                found_by: r.get("found_by")?,
                problem: r.get("problem")?,
                outcome: r.get("outcome")?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn record_image_damage(
    store: &Store,
    clip_id: i64,
    rel: &str,
    kind: &str,
    problem: &str,
    now_ms: i64,
) -> Result<DamagedFile, StoreError> {
    tracing::warn!("scrub found the {kind} {rel} of clip {clip_id} damaged: {problem}");
    let found = DamagedFile {
        path: rel.to_string(),
        kind: kind.to_string(),
        found_ms: now_ms,
        found_by: FoundBy::Scrub.as_str().into(),
        problem: problem.to_string(),
        outcome: "flagged".into(),
    };
    insert_damaged(store, Some(clip_id), &found)?;
    Ok(found)
}

fn insert_damaged(store: &Store, clip_id: Option<i64>, f: &DamagedFile) -> Result<(), StoreError> {
    store.with_room(|c| {
        c.execute(
            INSERT_DAMAGED,
            named_params! {
                ":path": f.path, ":clip_id": clip_id, ":kind": f.kind, ":found_ms": f.found_ms,
                ":found_by": f.found_by, ":problem": f.problem, ":outcome": f.outcome,
            },
        )
    })?;
    Ok(())
}

enum Problem {
    Gone,
    Damaged(String),
}

/// Authenticates every chunk of the sealed file at `path` within `budget`, then drops
/// its pages from the page cache.
fn authenticate_whole(store: &Store, path: &Path, budget: &mut ReadBudget) -> Result<(), Problem> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Problem::Gone),
        Err(e) => return Err(Problem::Damaged(io_err(path)(e).to_string())),
    };
    let sealed_bytes = file.metadata().map_or(0, |m| m.len());
    let result = OpenReader::open(
        file.try_clone()
            .map_err(|e| Problem::Damaged(e.to_string()))?,
        &store.inner.key,
    )
    .and_then(|reader| {
        let plain = reader.plain_len().max(1);
        let mut counted = 0u64;
        reader.copy_to(&mut std::io::sink(), |done, _| {
            let sealed_done = done * sealed_bytes / plain;
            budget.consumed(sealed_done - counted);
            counted = sealed_done;
        })
    });
    // SAFETY: fadvise on a descriptor we own; it only advises the kernel.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
    result
        .map(|_| ())
        .map_err(|e| Problem::Damaged(e.to_string()))
}
