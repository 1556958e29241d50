//! Command-line tools around the clip store: `sentrix decrypt` (a sealed clip to a plain
//! MP4, refusing tampered or truncated files) and `sentrix detect`.

use crate::config::Config;
use crate::store::OpenReader;
use anyhow::{Context, bail};
use std::io::{IsTerminal, Write};
use std::path::Path;

/// Decrypts `input` to `output` (`-` = stdout). A partial output file is removed on error.
pub fn decrypt(config: &Config, input: &Path, output: &Path) -> anyhow::Result<()> {
    let key = crate::app::store_setup::load_key(config)?;
    let file =
        std::fs::File::open(input).with_context(|| format!("cannot open {}", input.display()))?;
    let reader = OpenReader::open(file, &key).with_context(|| format!("{}", input.display()))?;
    let total = reader.plain_len();
    let show_progress = std::io::stderr().is_terminal() && total > 8 << 20;
    let mut last_pct = 0;
    let progress = |done: u64, total: u64| {
        let pct = done * 100 / total.max(1);
        if show_progress && pct != last_pct {
            last_pct = pct;
            eprint!("\rdecrypting: {pct:3}%");
        }
    };
    if output == Path::new("-") {
        let stdout = std::io::stdout();
        let mut lock = stdout.lock();
        reader
            .copy_to(&mut lock, progress)
            .with_context(|| format!("{}", input.display()))?;
        lock.flush()?;
    } else {
        use std::os::unix::fs::OpenOptionsExt;
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(output)
            .with_context(|| format!("cannot create {}", output.display()))?;
        if let Err(e) = reader.copy_to(&mut out, progress) {
            drop(out);
            let _ = std::fs::remove_file(output);
            bail!("{}: {e} (no output written)", input.display());
        }
        out.sync_all()?;
    }
    if show_progress {
        eprintln!();
    }
    eprintln!("decrypted {total} bytes");
    Ok(())
}

/// `sentrix detect`: loads the model, runs it on each image, prints the detections.
pub fn detect(
    model: &Path,
    size: usize,
    layout: Option<crate::detect::Layout>,
    labels_file: Option<&Path>,
    min_score: f32,
    images: &[std::path::PathBuf],
) -> anyhow::Result<()> {
    use crate::detect::{Model, model::load_labels};
    let model = Model::load(model, size, layout, load_labels(labels_file)?)?;
    println!(
        "model: {} layout, input {size}x{size}, loaded in {:.0} ms",
        model.layout, model.load_ms
    );
    for path in images {
        let img = crate::detect::image::load(path).map_err(|e| anyhow::anyhow!(e))?;
        let start = std::time::Instant::now();
        let dets = model.detect(&img, min_score, 0.45)?;
        println!(
            "{} ({}x{}): {} detections in {:.0} ms",
            path.display(),
            img.width,
            img.height,
            dets.len(),
            start.elapsed().as_secs_f64() * 1000.0
        );
        for d in dets {
            let b = d.det;
            println!(
                "  {:<14} {:.2}  [{:.0}, {:.0}, {:.0}, {:.0}]",
                d.label, b.score, b.x1, b.y1, b.x2, b.y2
            );
        }
    }
    Ok(())
}
