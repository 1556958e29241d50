//! `sentrix-bench analytics`: the analytics summary over 100,000 synthetic events (4
//! cameras, 5 labels, 30 days) in a temporary store, as `/api/analytics` computes it:
//! the median and p99 latency over the last 7 days and over all 30, with its JSON.

use sentrix::store::AnalyticsQuery;
use std::path::Path;
use std::time::Instant;

const DAY_MS: i64 = 86_400_000;
const EVENTS: usize = 100_000;
const RUNS: usize = 50;

pub fn analytics(dir: &Path) -> anyhow::Result<()> {
    super::in_work_dir(dir, "analytics", measure)
}

fn measure(work: &Path) -> anyhow::Result<()> {
    let store = super::work_store(work)?;
    let to_ms = sentrix::base::clock::wall_ms();
    let from_ms = to_ms - 30 * DAY_MS;
    let t = Instant::now();
    sentrix_testkit::insert_synthetic_events(&work.join("index.db"), EVENTS, from_ms, 30 * DAY_MS)?;
    println!(
        "bench analytics: {EVENTS} events over 30 days inserted in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    for (what, days) in [("last 7 days", 7), ("all 30 days", 30)] {
        let q = AnalyticsQuery {
            from_ms: to_ms - days * DAY_MS,
            to_ms,
            tz_offset_ms: 60 * 60_000,
            ..Default::default()
        };
        let mut samples = Vec::with_capacity(RUNS);
        let mut total = 0;
        for _ in 0..RUNS {
            let t = Instant::now();
            let summary = store.analytics(&q)?;
            total = summary.total;
            std::hint::black_box(serde_json::to_vec(&summary)?);
            samples.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let (median, p99) = super::quantiles(samples);
        println!(
            "bench analytics: {what} ({total} events): median {median:.1} ms, p99 {p99:.1} ms (goal <= 100 ms)"
        );
        super::table::add(super::table::Figure::alone(
            &format!("analytics summary, {what} of {EVENTS} events"),
            format!("median {median:.1} ms, p99 {p99:.1} ms"),
        ));
    }
    Ok(())
}
