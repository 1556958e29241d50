//! Analytics against a count done by hand: 4,000-5,000 synthetic events (the test kit's,
//! written straight into a real index) summed in Rust and compared with every figure
//! `Store::analytics` returns.

use sentrix::store::{AnalyticsQuery, Bucket, CameraCount, LabelCount};
use sentrix_testkit as testkit;
use sentrix_testkit::SyntheticEvent;
use std::collections::BTreeMap;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Every figure against a count done by hand over the same events, with a time zone
/// offset, a camera filter and a range that cuts the data on both sides.
#[test]
fn analytics_agree_with_brute_force() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = testkit::temp_store(dir.path());
    let t0 = 1_700_000_000_000i64;
    let all =
        testkit::insert_synthetic_events(&dir.path().join("index.db"), 5000, t0, 20 * DAY_MS)?;
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
    let store = testkit::temp_store(dir.path());
    let t0 = 1_700_000_000_000i64;
    let all =
        testkit::insert_synthetic_events(&dir.path().join("index.db"), 4000, t0, 10 * DAY_MS)?;
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
