//! `sentrix-bench detect`: model load time and inference latency (median, min, max over
//! `runs`) of a YOLO model on images, with peak RSS; beside it, in the same run, the same
//! model, size and image through onnxruntime on one thread (`scripts/ort_detect.py`, when
//! python3 with onnxruntime is installed), and the ratio. With `--ops`, where each
//! inference's time goes, per operator kind, in tract's plan and in onnxruntime's.

use anyhow::Context;
use sentrix::detect::model::{Model, OpKindTime, Precision, load_labels};
use std::path::Path;
use std::time::Instant;

fn peak_rss_mb() -> f64 {
    // SAFETY: getrusage fills a plain struct.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    u.ru_maxrss as f64 / 1024.0
}

/// What the onnxruntime peer measured on one model, size and image.
struct PeerRun {
    median_ms: f64,
    /// With `--ops`: its profiler's time per operator kind.
    op_kinds: Vec<OpKindTime>,
}

fn parse_peer_op(line: &str) -> Option<OpKindTime> {
    let mut fields = line.strip_prefix("ort_op=")?.split(' ');
    Some(OpKindTime {
        kind: fields.next()?.to_string(),
        mean_ms: fields.next()?.parse().ok()?,
        nodes: fields.next()?.parse().ok()?,
    })
}

fn onnxruntime_run(
    model: &Path,
    side: usize,
    image: &Path,
    runs: usize,
    ops: bool,
) -> Option<PeerRun> {
    let script = [
        "scripts/ort_detect.py",
        "/usr/share/sentrix-bench/ort_detect.py",
    ]
    .into_iter()
    .map(Path::new)
    .find(|p| p.exists())?;
    let mut command = std::process::Command::new("python3");
    command
        .arg(script)
        .arg(model)
        .arg(side.to_string())
        .arg(image)
        .arg(runs.to_string());
    if ops {
        command.arg("--ops");
    }
    let out = command.output().ok()?;
    if !out.status.success() {
        eprintln!(
            "onnxruntime peer failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        return None;
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    Some(PeerRun {
        median_ms: stdout
            .lines()
            .find_map(|l| l.strip_prefix("ort_median_ms=")?.parse().ok())?,
        op_kinds: stdout.lines().filter_map(parse_peer_op).collect(),
    })
}

/// Prints where one inference's time goes in tract and, beside it, in onnxruntime.
fn print_op_kinds(side: usize, tract: &[OpKindTime], peer: Option<&PeerRun>) {
    println!("  where the time goes at {side}x{side}, mean ms per inference:");
    println!(
        "  {:<24} {:>8} {:>6}   {:<24} {:>8} {:>6}",
        "tract op", "ms", "nodes", "onnxruntime op", "ms", "nodes"
    );
    let peer_kinds = peer.map(|p| p.op_kinds.as_slice()).unwrap_or_default();
    let cell = |kinds: &[OpKindTime], row: usize| {
        kinds
            .get(row)
            .map(|k| format!("{:<24} {:>8.3} {:>6}", k.kind, k.mean_ms, k.nodes))
            .unwrap_or_default()
    };
    for row in 0..tract.len().max(peer_kinds.len()) {
        println!("  {:<40}   {}", cell(tract, row), cell(peer_kinds, row));
    }
    let sum =
        |kinds: &[OpKindTime]| format!("{:.2} ms", kinds.iter().map(|k| k.mean_ms).sum::<f64>());
    println!(
        "  {:<24} {:>8}          {:<24} {:>8}",
        "sum",
        sum(tract),
        "sum",
        peer.map(|p| sum(&p.op_kinds)).unwrap_or_default()
    );
}

pub fn detect(
    model_path: &Path,
    sizes: &[usize],
    runs: usize,
    precision: Precision,
    images: &[std::path::PathBuf],
    ops: bool,
) -> anyhow::Result<()> {
    let labels = load_labels(None)?;
    println!(
        "bench detect: {} , {runs} runs per image, 1 thread, {precision:?}",
        model_path.display()
    );
    println!(
        "{:<6} {:<28} {:>9} {:>9} {:>9} {:>9} {:>10} {:>8}",
        "size", "image", "load ms", "median", "min", "max", "onnxrt", "ratio"
    );
    for &side in sizes {
        let model = Model::load_with(model_path, side, None, labels.clone(), precision)?;
        for path in images {
            let img = sentrix::detect::image::load(path)
                .map_err(|e| anyhow::anyhow!(e))
                .context("while loading the image")?;
            let (tensor, _) = model.preprocess(&img)?;
            model.infer(tensor.clone(), 0.3)?; // warm-up
            let mut ms: Vec<f64> = (0..runs.max(1))
                .map(|_| {
                    let t = Instant::now();
                    let r = model.infer(tensor.clone(), 0.3);
                    (t.elapsed().as_secs_f64() * 1000.0, r.is_ok())
                })
                .filter(|(_, ok)| *ok)
                .map(|(m, _)| m)
                .collect();
            ms.sort_by(f64::total_cmp);
            let median = ms[ms.len() / 2];
            let peer_run = onnxruntime_run(model_path, side, path, runs, ops);
            let peer = peer_run.as_ref().map(|p| p.median_ms);
            let image = path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let figure = format!("tract {side}x{side} {precision:?}, 1 thread, {image}");
            let ms_text = |m: f64| format!("{m:.1} ms");
            super::table::add(match peer {
                Some(p) => super::table::Figure::against(
                    &figure,
                    ms_text(median),
                    format!("onnxruntime {}", ms_text(p)),
                    median / p,
                ),
                None => super::table::Figure::alone(&figure, ms_text(median)),
            });
            println!(
                "{side:<6} {image:<28} {:>9.0} {:>9.1} {:>9.1} {:>9.1} {:>10} {:>8}",
                model.load_ms,
                median,
                ms[0],
                ms[ms.len() - 1],
                peer.map(|p| format!("{p:.1}"))
                    .unwrap_or_else(|| "-".into()),
                peer.map(|p| format!("{:.2}x", median / p))
                    .unwrap_or_else(|| "-".into()),
            );
            if ops {
                let tract = model.time_per_op_kind(tensor.clone(), runs)?;
                print_op_kinds(side, &tract, peer_run.as_ref());
            }
        }
    }
    println!("peak RSS {:.1} MB", peak_rss_mb());
    Ok(())
}
