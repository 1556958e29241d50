//! The one table `make bench` ends with. Each bench appends its headline figures, one
//! tab-separated line per figure (figure, sentrix, peer, ratio), to the file named by
//! `$SENTRIX_BENCH_TABLE`; shell benches append the same lines with printf. `sentrix
//! bench table` prints the file as a single Markdown table under the machine and date.
//! Without the variable, benches print only their own report.

use std::io::Write;
use std::path::Path;

/// The environment variable naming the results file.
pub const TABLE_ENV: &str = "SENTRIX_BENCH_TABLE";

/// One figure of the table: what sentrix measured and, where a peer ran in the same
/// run, the peer's figure and sentrix/peer (lower is better for costs).
pub struct Figure<'a> {
    pub name: &'a str,
    pub sentrix: String,
    pub peer: Option<String>,
    pub ratio: Option<f64>,
}

impl<'a> Figure<'a> {
    pub fn alone(name: &'a str, sentrix: String) -> Self {
        Self {
            name,
            sentrix,
            peer: None,
            ratio: None,
        }
    }

    pub fn against(name: &'a str, sentrix: String, peer: String, ratio: f64) -> Self {
        Self {
            name,
            sentrix,
            peer: Some(peer),
            ratio: Some(ratio),
        }
    }
}

/// Appends `figure` to the results file, if `make bench` named one. A failed write is
/// reported and otherwise ignored: the bench's own output is still there.
pub fn add(figure: Figure) {
    let Some(path) = std::env::var_os(TABLE_ENV) else {
        return;
    };
    let clean = |s: &str| s.replace(['\t', '\n', '|'], " ");
    let line = format!(
        "{}\t{}\t{}\t{}\n",
        clean(figure.name),
        clean(&figure.sentrix),
        figure.peer.as_deref().map(clean).unwrap_or_default(),
        figure.ratio.map(|r| format!("{r:.2}x")).unwrap_or_default()
    );
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        eprintln!(
            "bench table: cannot append to {}: {e}",
            Path::new(&path).display()
        );
    }
}

/// `sentrix-bench table`: the results file as one Markdown table.
pub fn print(results: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(results)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", results.display()))?;
    println!("{}", render(&text, &machine()));
    Ok(())
}

/// The Markdown table of `text` (results lines) under a heading naming `machine`.
pub fn render(text: &str, machine: &str) -> String {
    let mut out = format!(
        "### sentrix {} on {machine}\n\n| figure | sentrix | peer (same run) | sentrix/peer |\n|---|---|---|---|\n",
        env!("CARGO_PKG_VERSION")
    );
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut cols = line.split('\t').map(str::trim);
        let mut col = || cols.next().filter(|c| !c.is_empty()).unwrap_or("-");
        let (name, ours, peer, ratio) = (col(), col(), col(), col());
        out.push_str(&format!("| {name} | {ours} | {peer} | {ratio} |\n"));
    }
    out
}

/// "CPU model, N cores, arch, date (UTC)" of this machine.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name") || l.starts_with("Model"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let date = chrono::DateTime::from_timestamp(now_s, 0)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, {}, {date}", std::env::consts::ARCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_one_markdown_table_with_blanks_as_dashes() {
        let text = "ingest CPU\t0.9 %\tffmpeg 0.8 %\t1.12x\nHTTP req/s\t9000\t\t\n\n";
        let t = render(text, "test box");
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            format!("### sentrix {} on test box", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(
            lines[2],
            "| figure | sentrix | peer (same run) | sentrix/peer |"
        );
        assert_eq!(lines[4], "| ingest CPU | 0.9 % | ffmpeg 0.8 % | 1.12x |");
        assert_eq!(lines[5], "| HTTP req/s | 9000 | - | - |");
        assert_eq!(lines.len(), 6);
    }
}
