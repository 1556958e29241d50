//! `sentrix bench detect`: model load time and inference latency (median, min, max over
//! `runs`) of a YOLO model on images, with peak RSS; beside it, in the same run, the same
//! model, size and image through onnxruntime on one thread (`scripts/ort_detect.py`, when
//! python3 with onnxruntime is installed), and the ratio.

use crate::detect::model::{Model, Precision, load_labels};
use anyhow::Context;
use std::path::Path;
use std::time::Instant;

fn peak_rss_mb() -> f64 {
    // SAFETY: getrusage fills a plain struct.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    u.ru_maxrss as f64 / 1024.0
}

fn onnxruntime_ms(model: &Path, side: usize, image: &Path, runs: usize) -> Option<f64> {
    let script = ["scripts/ort_detect.py", "/usr/share/sentrix/ort_detect.py"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())?;
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(model)
        .arg(side.to_string())
        .arg(image)
        .arg(runs.to_string())
        .output()
        .ok()?;
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
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("ort_median_ms=")?.parse().ok())
}

pub fn detect(
    model_path: &Path,
    sizes: &[usize],
    runs: usize,
    precision: Precision,
    images: &[std::path::PathBuf],
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
            let img = crate::detect::image::load(path)
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
            // onnxruntime takes the model's own input size only (416 for YOLOX-Nano).
            let peer = onnxruntime_ms(model_path, side, path, runs);
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
        }
    }
    println!("peak RSS {:.1} MB", peak_rss_mb());
    Ok(())
}
