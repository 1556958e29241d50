//! The analytics summary: event counts per label per hour and per day, by hour of the
//! day, per camera, durations and acknowledgement, for a time range and optional camera
//! and label. SQLite reads one covering index (`events_for_analytics`) in one range scan,
//! so no event row is read, and the groups are folded here as its entries stream past:
//! SQLite's GROUP BY would sort every entry into a temporary b-tree first, which was
//! nine tenths of the summary's time (`docs/performance.md`). Days and hours of the day
//! are sums of the local hours' groups.

use super::{Store, StoreError, db};
use rusqlite::Connection;
use std::collections::HashMap;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// Which events to summarise: those that started in [from_ms, to_ms).
#[derive(Debug, Clone, Default)]
pub struct AnalyticsQuery {
    pub from_ms: i64,
    pub to_ms: i64,
    pub camera: Option<String>,
    pub label: Option<String>,
    /// The viewer's offset from UTC, for days and hours of the day.
    pub tz_offset_ms: i64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LabelCount {
    pub label: String,
    pub count: i64,
}

/// Events of one label that started in one hour or one day (local time).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Bucket {
    /// Where the hour or day starts, UTC ms.
    pub start_ms: i64,
    pub label: String,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CameraCount {
    pub camera: String,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Analytics {
    pub total: i64,
    pub per_label: Vec<LabelCount>,
    pub per_label_hour: Vec<Bucket>,
    pub per_label_day: Vec<Bucket>,
    /// Events by local hour of the day, 0..24.
    pub hour_of_day: Vec<i64>,
    /// The three busiest hours of the day, busiest first (ties: the earlier hour).
    pub busiest_hours: Vec<u32>,
    pub per_camera: Vec<CameraCount>,
    /// Events that have ended (durations are theirs).
    pub ended: i64,
    pub mean_duration_s: Option<f64>,
    pub longest_duration_s: Option<f64>,
    pub acknowledged: i64,
    pub unacknowledged: i64,
}

impl Store {
    pub fn analytics(&self, q: &AnalyticsQuery) -> Result<Analytics, StoreError> {
        let (hours, cameras) = scan(&self.conn(), q)?.finish();
        let per_label_hour: Vec<Bucket> = hours
            .iter()
            .map(|(label, hour, count)| Bucket {
                label: label.clone(),
                start_ms: hour * HOUR_MS - q.tz_offset_ms,
                count: *count,
            })
            .collect();
        let mut days = std::collections::BTreeMap::<(i64, &str), i64>::new();
        let mut hour_of_day = vec![0i64; 24];
        for (label, hour, count) in &hours {
            *days.entry((hour.div_euclid(24), label)).or_default() += count;
            hour_of_day[hour.rem_euclid(24) as usize] += count;
        }
        let per_label_day: Vec<Bucket> = days
            .into_iter()
            .map(|((day, label), count)| Bucket {
                label: label.to_string(),
                start_ms: day * DAY_MS - q.tz_offset_ms,
                count,
            })
            .collect();
        let sum = |f: fn(&CameraRow) -> i64| cameras.iter().map(f).sum::<i64>();
        let (total, ended, acknowledged) = (sum(|c| c.count), sum(|c| c.ended), sum(|c| c.acked));
        let duration_ms = sum(|c| c.duration_ms);
        Ok(Analytics {
            total,
            per_label: label_totals(&per_label_day),
            busiest_hours: busiest(&hour_of_day, 3),
            per_label_hour,
            per_label_day,
            hour_of_day,
            per_camera: cameras
                .iter()
                .map(|c| CameraCount {
                    camera: c.camera.clone(),
                    count: c.count,
                })
                .collect(),
            ended,
            mean_duration_s: (ended > 0).then(|| duration_ms as f64 / ended as f64 / 1000.0),
            longest_duration_s: cameras
                .iter()
                .filter_map(|c| c.longest_ms)
                .max()
                .map(|ms| ms as f64 / 1000.0),
            acknowledged,
            unacknowledged: total - acknowledged,
        })
    }
}

/// One camera's totals.
#[derive(Default)]
struct CameraRow {
    camera: String,
    count: i64,
    ended: i64,
    duration_ms: i64,
    longest_ms: Option<i64>,
    acked: i64,
}

/// Names seen so far (labels or cameras), each with a small number. A hash map, not a
/// list to search: a model may have hundreds of labels.
#[derive(Default)]
struct Names {
    numbers: HashMap<String, usize>,
    in_order: Vec<String>,
}

impl Names {
    fn number(&mut self, name: &str) -> usize {
        if let Some(&n) = self.numbers.get(name) {
            return n;
        }
        let n = self.in_order.len();
        self.numbers.insert(name.to_owned(), n);
        self.in_order.push(name.to_owned());
        n
    }
}

/// The groups being folded: events per (local hour, label), and per camera.
#[derive(Default)]
struct Fold {
    labels: Names,
    /// (local hour number, label number) → events.
    per_hour_label: HashMap<(i64, usize), i64>,
    cameras: Names,
    /// By camera number.
    per_camera: Vec<CameraRow>,
}

impl Fold {
    fn add(&mut self, row: &rusqlite::Row, tz_offset_ms: i64) -> rusqlite::Result<()> {
        let start_ms: i64 = row.get(0)?;
        let label = self.labels.number(row.get_ref(1)?.as_str()?);
        let local_hour = (start_ms + tz_offset_ms).div_euclid(HOUR_MS);
        *self.per_hour_label.entry((local_hour, label)).or_default() += 1;
        let camera = self.cameras.number(row.get_ref(2)?.as_str()?);
        if camera == self.per_camera.len() {
            self.per_camera.push(CameraRow::default());
        }
        let totals = &mut self.per_camera[camera];
        totals.count += 1;
        if let Some(end_ms) = row.get::<_, Option<i64>>(3)? {
            totals.ended += 1;
            totals.duration_ms += end_ms - start_ms;
            totals.longest_ms = totals.longest_ms.max(Some(end_ms - start_ms));
        }
        totals.acked += i64::from(row.get::<_, i64>(4)? != 0);
        Ok(())
    }

    /// (label, local hour number, count) ordered by hour then label, and the cameras
    /// ordered by name.
    fn finish(self) -> (Vec<(String, i64, i64)>, Vec<CameraRow>) {
        let labels = self.labels.in_order;
        let mut hours: Vec<(String, i64, i64)> = self
            .per_hour_label
            .into_iter()
            .map(|((hour, label), count)| (labels[label].clone(), hour, count))
            .collect();
        hours.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        let mut cameras: Vec<CameraRow> = self
            .per_camera
            .into_iter()
            .zip(self.cameras.in_order)
            .map(|(totals, camera)| CameraRow { camera, ..totals })
            .collect();
        cameras.sort_by(|a, b| a.camera.cmp(&b.camera));
        (hours, cameras)
    }
}

/// The filter's events, folded in one scan of the covering index.
fn scan(conn: &Connection, q: &AnalyticsQuery) -> Result<Fold, StoreError> {
    let mut stmt = conn.prepare_cached(db::ANALYTICS_SCAN)?;
    let mut rows = stmt.query(rusqlite::named_params! {
        ":from_ms": q.from_ms,
        ":to_ms": q.to_ms,
        ":camera": q.camera,
        ":label": q.label,
    })?;
    let mut fold = Fold::default();
    while let Some(row) = rows.next()? {
        fold.add(row, q.tz_offset_ms)?;
    }
    Ok(fold)
}

fn label_totals(days: &[Bucket]) -> Vec<LabelCount> {
    let mut totals = std::collections::BTreeMap::<&str, i64>::new();
    for b in days {
        *totals.entry(&b.label).or_default() += b.count;
    }
    let mut out: Vec<LabelCount> = totals
        .into_iter()
        .map(|(label, count)| LabelCount {
            label: label.to_string(),
            count,
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.label.cmp(&b.label)));
    out
}

/// The `n` hours with most events (none with zero), busiest first.
fn busiest(hour_of_day: &[i64], n: usize) -> Vec<u32> {
    let mut hours: Vec<u32> = (0..hour_of_day.len() as u32)
        .filter(|&h| hour_of_day[h as usize] > 0)
        .collect();
    hours.sort_by_key(|&h| std::cmp::Reverse(hour_of_day[h as usize]));
    hours.truncate(n);
    hours
}

/// One synthetic event for benches and tests.
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
/// more in the evening. Inserted in one transaction; returned for brute-force checks.
pub fn insert_synthetic_events(
    store: &Store,
    n: usize,
    from_ms: i64,
    span_ms: i64,
) -> Result<Vec<SyntheticEvent>, StoreError> {
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
    let mut conn = store.conn();
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare(
            "INSERT INTO events (camera_id, label, start_ms, end_ms, acknowledged)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for e in &events {
            stmt.execute(rusqlite::params![
                e.camera,
                e.label,
                e.start_ms,
                e.end_ms,
                e.acknowledged
            ])?;
        }
    }
    tx.commit()?;
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MasterKey, RetentionPolicy, StoreConfig};
    use std::collections::BTreeMap;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn store(dir: &std::path::Path) -> Result<Store, Box<dyn std::error::Error>> {
        let config = StoreConfig {
            recordings_dir: dir.join("rec"),
            database: dir.join("index.db"),
            chunk_size: crate::store::container::DEFAULT_CHUNK_SIZE,
            retention: RetentionPolicy::KEEP_ALL,
            offsite_uploaded_first: false,
        };
        Ok(Store::open(config, MasterKey::random()?)?.0)
    }

    /// Every figure against a count done by hand over the same events, with a time zone
    /// offset, a camera filter and a range that cuts the data on both sides.
    #[test]
    fn analytics_agree_with_brute_force() -> TestResult {
        let dir = tempfile::tempdir()?;
        let store = store(dir.path())?;
        let t0 = 1_700_000_000_000i64;
        let all = insert_synthetic_events(&store, 5000, t0, 20 * DAY_MS)?;
        let q = AnalyticsQuery {
            from_ms: t0 + 3 * DAY_MS + 5 * HOUR_MS,
            to_ms: t0 + 15 * DAY_MS,
            camera: Some("cam2".into()),
            label: None,
            tz_offset_ms: 330 * 60_000,
        };
        let got = store.analytics(&q)?;
        let want: Vec<&SyntheticEvent> = all
            .iter()
            .filter(|e| e.start_ms >= q.from_ms && e.start_ms < q.to_ms && e.camera == "cam2")
            .collect();
        assert!(want.len() > 300, "the range holds enough events");
        assert_eq!(got.total, want.len() as i64);
        assert_eq!(
            got.acknowledged,
            want.iter().filter(|e| e.acknowledged).count() as i64
        );
        assert_eq!(got.unacknowledged, got.total - got.acknowledged);
        let local = |e: &SyntheticEvent| e.start_ms + q.tz_offset_ms;
        let mut hours = BTreeMap::<(i64, String), i64>::new();
        let mut days = BTreeMap::<(i64, String), i64>::new();
        let mut hod = vec![0i64; 24];
        for e in &want {
            let h = local(e).div_euclid(HOUR_MS);
            *hours
                .entry((h * HOUR_MS - q.tz_offset_ms, e.label.clone()))
                .or_default() += 1;
            let d = local(e).div_euclid(DAY_MS);
            *days
                .entry((d * DAY_MS - q.tz_offset_ms, e.label.clone()))
                .or_default() += 1;
            hod[h.rem_euclid(24) as usize] += 1;
        }
        let as_map = |b: &[Bucket]| -> BTreeMap<(i64, String), i64> {
            b.iter()
                .map(|b| ((b.start_ms, b.label.clone()), b.count))
                .collect()
        };
        assert_eq!(as_map(&got.per_label_hour), hours);
        assert_eq!(as_map(&got.per_label_day), days);
        assert_eq!(got.hour_of_day, hod);
        let top = hod.iter().max().copied().unwrap_or_default();
        assert_eq!(hod[got.busiest_hours[0] as usize], top);
        assert_eq!(
            got.per_camera,
            vec![CameraCount {
                camera: "cam2".into(),
                count: got.total
            }]
        );
        let durations: Vec<i64> = want
            .iter()
            .filter_map(|e| Some(e.end_ms? - e.start_ms))
            .collect();
        assert_eq!(got.ended, durations.len() as i64);
        let mean = durations.iter().sum::<i64>() as f64 / durations.len() as f64 / 1000.0;
        assert!((got.mean_duration_s.unwrap_or(f64::NAN) - mean).abs() < 1e-6);
        let longest = durations.iter().max().copied().unwrap_or_default() as f64 / 1000.0;
        assert_eq!(got.longest_duration_s, Some(longest));
        let person = want.iter().filter(|e| e.label == "person").count() as i64;
        assert!(
            got.per_label
                .iter()
                .any(|l| l.label == "person" && l.count == person)
        );
        Ok(())
    }

    /// Per-camera totals and label filtering, with every camera in the range: counts,
    /// ended events, longest durations and acknowledgements per camera by hand.
    #[test]
    fn analytics_per_camera_agree_with_brute_force() -> TestResult {
        let dir = tempfile::tempdir()?;
        let store = store(dir.path())?;
        let t0 = 1_700_000_000_000i64;
        let all = insert_synthetic_events(&store, 4000, t0, 10 * DAY_MS)?;
        let q = AnalyticsQuery {
            from_ms: t0 + DAY_MS,
            to_ms: t0 + 9 * DAY_MS,
            camera: None,
            label: Some("dog".into()),
            tz_offset_ms: -7 * HOUR_MS,
        };
        let got = store.analytics(&q)?;
        let want: Vec<&SyntheticEvent> = all
            .iter()
            .filter(|e| e.start_ms >= q.from_ms && e.start_ms < q.to_ms && e.label == "dog")
            .collect();
        let mut per_camera = BTreeMap::<String, i64>::new();
        for e in &want {
            *per_camera.entry(e.camera.clone()).or_default() += 1;
        }
        let want_cameras: Vec<CameraCount> = per_camera
            .into_iter()
            .map(|(camera, count)| CameraCount { camera, count })
            .collect();
        assert_eq!(want_cameras.len(), 4, "every camera saw a dog");
        assert_eq!(got.per_camera, want_cameras, "sorted by name, counted");
        assert_eq!(got.total, want.len() as i64);
        assert_eq!(
            got.per_label,
            vec![LabelCount {
                label: "dog".into(),
                count: got.total
            }]
        );
        let ended = want.iter().filter(|e| e.end_ms.is_some()).count() as i64;
        assert_eq!(got.ended, ended);
        assert!(ended < got.total, "some events are still open");
        let longest_ms = want
            .iter()
            .filter_map(|e| Some(e.end_ms? - e.start_ms))
            .max();
        assert_eq!(
            got.longest_duration_s,
            longest_ms.map(|ms| ms as f64 / 1000.0)
        );
        let acked = want.iter().filter(|e| e.acknowledged).count() as i64;
        assert_eq!(
            (got.acknowledged, got.unacknowledged),
            (acked, got.total - acked)
        );
        let hours: i64 = got.per_label_hour.iter().map(|b| b.count).sum();
        assert_eq!(hours, got.total);
        assert!(
            got.per_label_hour
                .windows(2)
                .all(|w| w[0].start_ms < w[1].start_ms),
            "one label: hours strictly ascending"
        );
        Ok(())
    }
}
