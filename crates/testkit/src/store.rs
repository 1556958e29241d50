//! Throwaway stores: a store in a temp dir under a random key that keeps everything, and
//! synthetic events written straight into its index (the analytics bench and tests fill
//! 100,000 rows in one transaction, which the store's own one-event-at-a-time API would
//! take minutes to do with a full sync per commit).

use sentrix::store::{MasterKey, RetentionPolicy, Store, StoreConfig};
use std::path::Path;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// A fresh temp dir named `sentrix-test-…`, removed when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("sentrix-test-")
        .tempdir()
        .expect("temp dir")
}

/// A store in `dir` (recordings in `rec/`, index `index.db`) sealed with `key`, keeping
/// everything, with the default chunk size.
pub fn store_with_key(dir: &Path, key: MasterKey) -> anyhow::Result<Store> {
    let config = StoreConfig {
        recordings_dir: dir.join("rec"),
        database: dir.join("index.db"),
        chunk_size: sentrix::store::container::DEFAULT_CHUNK_SIZE,
        retention: RetentionPolicy::KEEP_ALL,
        offsite_uploaded_first: false,
        review: Default::default(),
    };
    Ok(Store::open(config, key)?.0)
}

/// A store in `dir` under a random key with 64 KiB chunks (small clips span several).
pub fn temp_store(dir: &Path) -> Store {
    let config = StoreConfig {
        recordings_dir: dir.join("rec"),
        database: dir.join("index.db"),
        chunk_size: 64 * 1024,
        retention: RetentionPolicy::KEEP_ALL,
        offsite_uploaded_first: false,
        review: Default::default(),
    };
    Store::open(config, MasterKey::random().expect("random key"))
        .expect("temp store opens")
        .0
}

/// One synthetic event, as written; returned for brute-force checks.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticEvent {
    pub camera: String,
    pub label: String,
    pub start_ms: i64,
    pub end_ms: Option<i64>,
    pub acknowledged: bool,
}

/// `n` pseudo-random events (a fixed seed: the same every run) across 4 cameras and 5
/// labels, starting in [from_ms, from_ms + span_ms): some open, some acknowledged,
/// more in the evening.
pub fn synthetic_events(n: usize, from_ms: i64, span_ms: i64) -> Vec<SyntheticEvent> {
    const LABELS: [&str; 5] = ["person", "car", "dog", "cat", "bicycle"];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut events = Vec::with_capacity(n);
    for _ in 0..n {
        let mut start = from_ms + (next() % span_ms.max(1) as u64) as i64;
        // A third of the events move into the evening hours (busiest hours to find).
        if next() % 3 == 0 {
            start = start - start.rem_euclid(DAY_MS) + 18 * HOUR_MS + (next() % 7_200_000) as i64;
            start = start.clamp(from_ms, from_ms + span_ms - 1);
        }
        events.push(SyntheticEvent {
            camera: format!("cam{}", next() % 4),
            label: LABELS[(next() % 5) as usize].to_string(),
            start_ms: start,
            end_ms: (next() % 20 != 0).then(|| start + 1000 + (next() % 120_000) as i64),
            acknowledged: next() % 4 == 0,
        });
    }
    events
}

/// Writes `synthetic_events(n, from_ms, span_ms)` into the index at `database` (a store's
/// `index.db`, open or not: SQLite's WAL lets a second connection write) in one
/// transaction.
pub fn insert_synthetic_events(
    database: &Path,
    n: usize,
    from_ms: i64,
    span_ms: i64,
) -> anyhow::Result<Vec<SyntheticEvent>> {
    let events = synthetic_events(n, from_ms, span_ms);
    let mut conn = rusqlite::Connection::open(database)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare(
            "INSERT INTO events (camera_id, label, start_ms, end_ms, acknowledged)
             VALUES (:camera, :label, :start_ms, :end_ms, :acknowledged)",
        )?;
        for e in &events {
            stmt.execute(rusqlite::named_params! {
                ":camera": e.camera,
                ":label": e.label,
                ":start_ms": e.start_ms,
                ":end_ms": e.end_ms,
                ":acknowledged": e.acknowledged,
            })?;
        }
    }
    tx.commit()?;
    Ok(events)
}
