//! The analytics summary: event counts per label per hour and per day, by hour of the
//! day, per camera, durations and acknowledgement, for a time range and optional camera
//! and label. SQLite reads one covering index (`events_for_analytics`) in one range scan,
//! so no event row is read, and the groups are folded here as its entries stream past:
//! SQLite's GROUP BY would sort every entry into a temporary b-tree first, which was
//! nine tenths of the summary's time (`docs/performance.md`). Days and hours of the day
//! are sums of the local hours' groups.

use super::{Store, StoreError};
use rusqlite::Connection;
use std::collections::HashMap;

// The statements this file runs (named parameters, bound with named_params!).
const ANALYTICS_SCAN: &str = "SELECT start_ms, label, camera_id, end_ms, acknowledged
    FROM events INDEXED BY events_for_analytics WHERE start_ms >= :from_ms AND start_ms < :to_ms
    AND (:camera IS NULL OR camera_id = :camera) AND (:label IS NULL OR label = :label)
    ORDER BY start_ms";

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
    fn add(
        &mut self,
        row: &rusqlite::Row,
        col: &ScanColumns,
        tz_offset_ms: i64,
    ) -> rusqlite::Result<()> {
        let start_ms: i64 = row.get(col.start_ms)?;
        let label = self.labels.number(row.get_ref(col.label)?.as_str()?);
        let local_hour = (start_ms + tz_offset_ms).div_euclid(HOUR_MS);
        *self.per_hour_label.entry((local_hour, label)).or_default() += 1;
        let camera = self.cameras.number(row.get_ref(col.camera_id)?.as_str()?);
        if camera == self.per_camera.len() {
            self.per_camera.push(CameraRow::default());
        }
        let totals = &mut self.per_camera[camera];
        totals.count += 1;
        if let Some(end_ms) = row.get::<_, Option<i64>>(col.end_ms)? {
            totals.ended += 1;
            totals.duration_ms += end_ms - start_ms;
            totals.longest_ms = totals.longest_ms.max(Some(end_ms - start_ms));
        }
        totals.acked += i64::from(row.get::<_, i64>(col.acknowledged)? != 0);
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

/// Where the scan's columns are, looked up by name once per query (not once per row:
/// the scan reads 100,000 rows and more).
struct ScanColumns {
    start_ms: usize,
    label: usize,
    camera_id: usize,
    end_ms: usize,
    acknowledged: usize,
}

impl ScanColumns {
    fn of(stmt: &rusqlite::Statement) -> rusqlite::Result<Self> {
        Ok(Self {
            start_ms: stmt.column_index("start_ms")?,
            label: stmt.column_index("label")?,
            camera_id: stmt.column_index("camera_id")?,
            end_ms: stmt.column_index("end_ms")?,
            acknowledged: stmt.column_index("acknowledged")?,
        })
    }
}

/// The filter's events, folded in one scan of the covering index.
fn scan(conn: &Connection, q: &AnalyticsQuery) -> Result<Fold, StoreError> {
    let mut stmt = conn.prepare_cached(ANALYTICS_SCAN)?;
    let col = ScanColumns::of(&stmt)?;
    let mut rows = stmt.query(rusqlite::named_params! {
        ":from_ms": q.from_ms,
        ":to_ms": q.to_ms,
        ":camera": q.camera,
        ":label": q.label,
    })?;
    let mut fold = Fold::default();
    while let Some(row) = rows.next()? {
        fold.add(row, &col, q.tz_offset_ms)?;
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
