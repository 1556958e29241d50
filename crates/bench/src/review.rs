//! `sentrix-bench review`: the review list over 100,000 synthetic events (4 cameras, 5
//! labels, 30 days) in a temporary store: how long placing them all in review items takes
//! (the rebuild the sweep runs after an index is rebuilt, or an upgrade), then the median
//! and p99 latency of what `GET /api/review` runs — the newest 100 items with the caller's
//! unreviewed counts, as JSON — for the default view and for one camera's alerts.

use sentrix::store::{ReviewQuery, Severity};
use std::path::Path;
use std::time::Instant;

const DAY_MS: i64 = 86_400_000;
const EVENTS: usize = 100_000;
const RUNS: usize = 50;

pub fn review(dir: &Path) -> anyhow::Result<()> {
    super::in_work_dir(dir, "review", measure)
}

fn measure(work: &Path) -> anyhow::Result<()> {
    let store = super::work_store(work)?;
    let to_ms = sentrix::base::clock::wall_ms();
    let from_ms = to_ms - 30 * DAY_MS;
    sentrix_testkit::insert_synthetic_events(&work.join("index.db"), EVENTS, from_ms, 30 * DAY_MS)?;
    let t = Instant::now();
    let placed = store.rebuild_review_items(to_ms)?;
    let rebuild_s = t.elapsed().as_secs_f64();
    let all = ReviewQuery {
        limit: Some(1_000_000),
        ..ReviewQuery::default()
    };
    let items = store.review_items(&all, "bench")?.len();
    println!(
        "bench review: {placed} events over 30 days placed in {items} review items in {rebuild_s:.1} s"
    );
    super::table::add(super::table::Figure::alone(
        &format!("review items rebuilt from {EVENTS} events"),
        format!("{rebuild_s:.1} s ({items} items)"),
    ));
    let views = [
        (
            "default view (alerts and detections)",
            ReviewQuery {
                hide_motion: true,
                ..Default::default()
            },
        ),
        (
            "one camera's alerts",
            ReviewQuery {
                camera: Some("cam1".into()),
                severity: Some(Severity::Alert),
                ..Default::default()
            },
        ),
    ];
    for (what, q) in views {
        let q = ReviewQuery {
            limit: Some(100),
            ..q
        };
        let mut samples = Vec::with_capacity(RUNS);
        let mut list_ms = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let t = Instant::now();
            let items = store.review_items(&q, "bench")?;
            list_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            let counts = store.unreviewed_counts(&q, "bench")?;
            std::hint::black_box(serde_json::to_vec(&(items, counts.len()))?);
            samples.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let (list_median, _) = super::quantiles(list_ms);
        let (median, p99) = super::quantiles(samples);
        println!(
            "bench review: GET /api/review, {what}: median {median:.1} ms, p99 {p99:.1} ms (the 100 items {list_median:.1} ms, the rest the unreviewed counts)"
        );
        super::table::add(super::table::Figure::alone(
            &format!("GET /api/review over {EVENTS} events, {what}"),
            format!("median {median:.1} ms, p99 {p99:.1} ms"),
        ));
    }
    Ok(())
}
