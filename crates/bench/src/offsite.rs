//! `sentrix-bench offsite`: off-site copies against s3s-fs, a real S3-compatible server on
//! loopback (built by `scripts/deps.sh test`), in one run:
//! - upload throughput and CPU per MB uploaded of one large clip (1 GB by default: 720p
//!   "snow" through the recorder's muxer, sealed), which goes in 8 MiB parts, and the peak
//!   RSS of the process while it uploads (it streams parts, never the whole clip);
//! - the upload rate of many small clips (one PUT and one index record each), then the
//!   time `offsite restore` takes to rebuild an empty store from them.

use super::bigclip::{encoded_stretch, write_clip};
use sentrix::config::offsite::{Offsite, OffsiteWhat};
use sentrix::config::secret::Secret;
use sentrix::ingest::Codec;
use sentrix::ingest::pipeline::SyntheticSpec;
use sentrix::offsite::client::Bucket;
use sentrix::offsite::upload::{Uploader, UploaderStatus};
use sentrix::store::{MasterKey, Store};
use sentrix_testkit::servers::{free_port, s3_server};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BUCKET: &str = "bench";
const ACCESS: &str = "AKIABENCH";
const SECRET: &str = "bench-secret";

pub fn offsite(dir: &Path, big_mb: u64, clips: usize) -> anyhow::Result<()> {
    super::in_work_dir(dir, "offsite", |work| measure(work, big_mb, clips))
}

fn measure(work: &Path, big_mb: u64, clips: usize) -> anyhow::Result<()> {
    let port = free_port()?;
    let _server = s3_server(&work.join("s3"), port, BUCKET, ACCESS, SECRET)?;
    let mut raw = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::getrandom(raw.as_mut())?;
    let key = || MasterKey::from_bytes(*raw);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let cfg = bucket_config(port);

    let store = super::store_with_key(&work.join("a"), key())?;
    store.offsite_configure(Some(OffsiteWhat::All.as_str()))?;
    let big = big_clip(&store, big_mb)?;
    let bucket = Bucket::open(&cfg, "big").map_err(anyhow::Error::msg)?;
    reset_peak_rss();
    let (rss_before, cpu_before, t) = (rss_mb("VmRSS"), cpu_seconds(), Instant::now());
    runtime.block_on(upload_all(&store, &bucket, 1))?;
    let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu_before);
    let mb = big.file_bytes as f64 / 1e6;
    println!(
        "bench offsite: one {mb:.0} MB clip uploaded in {secs:.1} s = {:.0} MB/s; CPU {:.1} ms per MB \
         (SHA-256, MD5 for the ETag check, reads, SigV4 payload hash, HTTP); peak RSS {:.0} MB \
         while uploading ({rss_before:.0} MB before)",
        mb / secs,
        cpu * 1000.0 / mb,
        rss_mb("VmHWM")
    );
    super::table::add(super::table::Figure::alone(
        &format!("off-site upload of a {mb:.0} MB clip to s3s-fs"),
        format!(
            "{:.0} MB/s, {:.1} ms CPU per MB",
            mb / secs,
            cpu * 1000.0 / mb
        ),
    ));

    let small = super::store_with_key(&work.join("b"), key())?;
    small.offsite_configure(Some(OffsiteWhat::All.as_str()))?;
    let bytes = small_clips(&small, clips)?;
    let bucket = Bucket::open(&cfg, "small").map_err(anyhow::Error::msg)?;
    let (cpu_before, t) = (cpu_seconds(), Instant::now());
    runtime.block_on(upload_all(&small, &bucket, clips as i64))?;
    let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu_before);
    println!(
        "bench offsite: {clips} clips of {:.0} KB uploaded in {secs:.1} s = {:.0} clips/s, \
         {:.1} MB/s; CPU {:.1} ms per clip",
        bytes as f64 / clips as f64 / 1e3,
        clips as f64 / secs,
        bytes as f64 / 1e6 / secs,
        cpu * 1000.0 / clips as f64
    );

    let fresh = super::store_with_key(&work.join("c"), key())?;
    let t = Instant::now();
    let outcome = runtime.block_on(sentrix::offsite::restore::restore(&bucket, &fresh))?;
    let secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        outcome.clips == clips && outcome.refused.is_empty(),
        "restore got {} of {clips} clips: {:?}",
        outcome.clips,
        outcome.refused
    );
    println!(
        "bench offsite: restore of {clips} clips ({:.0} MB) into an empty store: {secs:.1} s \
         = {:.0} clips/s (every object's SHA-256 and every chunk verified)",
        outcome.bytes as f64 / 1e6,
        clips as f64 / secs
    );
    Ok(())
}

fn bucket_config(port: u16) -> Offsite {
    Offsite {
        endpoint: format!("http://127.0.0.1:{port}"),
        bucket: BUCKET.into(),
        region: "us-east-1".into(),
        prefix: None,
        path_style: true,
        access_key_id: Secret::Inline(ACCESS.into()),
        secret_access_key: Secret::Inline(SECRET.into()),
        what: OffsiteWhat::All,
        max_kbps: 0,
        retention_days: 0.0,
        require_uploaded_before_delete: false,
        ca_file: None,
    }
}

fn big_clip(store: &Store, mb: u64) -> anyhow::Result<sentrix::store::ClipRecord> {
    let spec = SyntheticSpec {
        codec: Codec::H264,
        width: 1280,
        height: 720,
        fps: 15,
        bitrate_kbps: 20_000,
        pattern: "snow",
        ..Default::default()
    };
    let stretch = encoded_stretch(spec, 45)?;
    write_clip(store, "bench", &stretch, mb * 1_000_000)
}

/// `count` clips of about 150 KB; returns their sealed bytes.
fn small_clips(store: &Store, count: usize) -> anyhow::Result<i64> {
    let spec = SyntheticSpec {
        codec: Codec::H264,
        width: 320,
        height: 240,
        fps: 15,
        bitrate_kbps: 600,
        pattern: "snow",
        ..Default::default()
    };
    let stretch = encoded_stretch(spec, 30)?;
    let mut total = 0;
    for _ in 0..count {
        total += write_clip(store, "bench", &stretch, 150_000)?.file_bytes;
    }
    Ok(total)
}

/// Runs the uploader until `want` clips and their records are uploaded (or one fails).
async fn upload_all(store: &Store, bucket: &Bucket, want: i64) -> anyhow::Result<()> {
    let stop = tokio_util::sync::CancellationToken::new();
    let uploader = Uploader {
        store: store.clone(),
        bucket: bucket.clone(),
        status: Arc::new(UploaderStatus::default()),
    };
    let task = tokio::spawn(uploader.run(stop.clone()));
    let result = loop {
        let counts = store.offsite_counts()?;
        if counts.uploaded >= want && counts.records_pending == 0 {
            break Ok(());
        }
        if counts.failed > 0 {
            break Err(anyhow::anyhow!("an upload failed: {counts:?}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    stop.cancel();
    let _ = task.await;
    result
}

/// User plus system CPU seconds of this process (every thread).
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills a plain struct.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// A `VmRSS`/`VmHWM` line of /proc/self/status, in MB.
fn rss_mb(field: &str) -> f64 {
    super::status_kib("self", field).map_or(0.0, |kib| kib as f64 / 1024.0)
}

/// Resets VmHWM to the current RSS, so the peak measured is the upload's.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
