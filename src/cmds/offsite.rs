//! `sentrix offsite list|fetch|restore`: reading the off-site bucket back with the local
//! key. `list` and `fetch` are safe beside a running instance; `restore` rebuilds an
//! empty store (the stolen-box case) and takes the data lock, so it never runs beside one.

use crate::config::Config;
use crate::offsite::client::Bucket;
use crate::offsite::record::IndexRecord;
use crate::offsite::restore;
use crate::store::{Store, StoreConfig, keys};
use anyhow::{Context, bail};
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: OffsiteAction,
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Another box's folder in the bucket (default: this box's).
    #[arg(long, global = true)]
    prefix: Option<String>,
}

#[derive(Subcommand)]
pub enum OffsiteAction {
    /// List the clips the bucket holds for this box: id, camera, start, length, size,
    /// labels and events.
    List {
        #[arg(long)]
        camera: Option<String>,
        /// Clips ending at or after: `7d`, `12h`, `30m` ago, a date (UTC) or RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
    },
    /// Download, verify and decrypt clips to MP4 files in DIR.
    Fetch {
        /// A clip id (or --since).
        id: Option<i64>,
        #[arg(long)]
        since: Option<String>,
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
    },
    /// Rebuild this box's empty store from the bucket: clips, their events and index.
    Restore,
}

pub fn run(args: Args) -> ExitCode {
    match super::load(args.config) {
        Ok(c) => super::report(offsite(&c, args.action, args.prefix)),
        Err(code) => code,
    }
}

fn offsite(config: &Config, action: OffsiteAction, prefix: Option<String>) -> anyhow::Result<()> {
    let Some(cfg) = &config.storage.offsite else {
        bail!("storage.offsite is not configured (see docs/offsite.md)");
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let now = crate::base::clock::wall_ms();
    match action {
        OffsiteAction::Restore => {
            let _lock = crate::store::DataLock::acquire(&config.paths.data_lock)?;
            let key =
                crate::app::store_setup::load_key(config).context("while loading the clip key")?;
            let (store, _) = Store::open(StoreConfig::from_config(config), key)?;
            let prefix = match prefix {
                Some(p) => p,
                None => crate::offsite::prefix_of(cfg, &store).map_err(anyhow::Error::msg)?,
            };
            let bucket = Bucket::open(cfg, &prefix).map_err(anyhow::Error::msg)?;
            let outcome = runtime.block_on(restore::restore(&bucket, &store))?;
            report_outcome("restored", &outcome, &bucket)
        }
        OffsiteAction::List { camera, since } => {
            let (bucket, key) = open_for_reading(config, cfg, prefix)?;
            let since_ms = since.map(|s| parse_since(&s, now)).transpose()?;
            let records =
                runtime.block_on(restore::list(&bucket, &key, camera.as_deref(), since_ms))?;
            print_list(&records);
            Ok(())
        }
        OffsiteAction::Fetch { id, since, output } => {
            let (bucket, key) = open_for_reading(config, cfg, prefix)?;
            let since_ms = since.map(|s| parse_since(&s, now)).transpose()?;
            if id.is_none() && since_ms.is_none() {
                bail!("name a clip id or --since");
            }
            keys::create_private_dir(&output)
                .with_context(|| format!("cannot create {}", output.display()))?;
            let mut records = runtime.block_on(restore::list(&bucket, &key, None, since_ms))?;
            records.retain(|r| id.is_none_or(|i| r.clip.id == i));
            if records.is_empty() {
                bail!(
                    "{} holds no such clip under {}/",
                    bucket.name,
                    bucket.prefix
                );
            }
            let outcome = runtime.block_on(restore::fetch_clips(&bucket, &key, &records, &output));
            report_outcome("fetched", &outcome, &bucket)
        }
    }
}

/// The bucket under `prefix` (default: this box's) and the local key.
fn open_for_reading(
    config: &Config,
    cfg: &crate::config::offsite::Offsite,
    prefix: Option<String>,
) -> anyhow::Result<(Bucket, crate::store::MasterKey)> {
    let key = crate::app::store_setup::load_key(config).context("while loading the clip key")?;
    let prefix = match prefix {
        Some(p) => p,
        None => {
            let store = Store::open_accounts(StoreConfig::from_config(config))?;
            crate::offsite::prefix_of(cfg, &store).map_err(anyhow::Error::msg)?
        }
    };
    Ok((Bucket::open(cfg, &prefix).map_err(anyhow::Error::msg)?, key))
}

fn report_outcome(verb: &str, o: &restore::Outcome, bucket: &Bucket) -> anyhow::Result<()> {
    println!(
        "{verb} {} clips ({} bytes sealed) and {} events from {} under {}/",
        o.clips, o.bytes, o.events, bucket.name, bucket.prefix
    );
    for why in &o.refused {
        eprintln!("refused: {why}");
    }
    if !o.refused.is_empty() {
        bail!(
            "{} clips were refused (nothing of them was kept)",
            o.refused.len()
        );
    }
    Ok(())
}

fn print_list(records: &[IndexRecord]) {
    println!("id\tcamera\tstart (UTC)\tseconds\tbytes\tlabels\tevents");
    for r in records {
        let c = &r.clip;
        println!(
            "{}\t{}\t{}\t{:.1}\t{}\t{}\t{}",
            c.id,
            c.camera_id,
            crate::base::clock::utc_time(c.start_ms),
            c.duration_ms as f64 / 1000.0,
            r.sealed_bytes,
            c.labels.join(","),
            r.events.len()
        );
    }
    eprintln!("{} clips", records.len());
}

/// `7d`, `12h`, `30m` (that long before `now_ms`), `YYYY-MM-DD` (UTC) or RFC 3339.
pub fn parse_since(s: &str, now_ms: i64) -> anyhow::Result<i64> {
    let unit_ms = match s.chars().last() {
        Some('d') => Some(86_400_000.0),
        Some('h') => Some(3_600_000.0),
        Some('m') => Some(60_000.0),
        _ => None,
    };
    if let Some(unit) = unit_ms
        && let Ok(n) = s[..s.len() - 1].parse::<f64>()
        && n >= 0.0
    {
        return Ok(now_ms - (n * unit) as i64);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(t.and_utc().timestamp_millis());
    }
    bail!("--since {s:?}: give 7d, 12h, 30m, a date (2026-11-29) or an RFC 3339 time")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_ages_dates_and_times() -> anyhow::Result<()> {
        let now = 1_000_000_000_000;
        assert_eq!(parse_since("2h", now)?, now - 7_200_000);
        assert_eq!(parse_since("1d", now)?, now - 86_400_000);
        assert_eq!(parse_since("1970-01-02", now)?, 86_400_000);
        assert_eq!(parse_since("1970-01-01T00:00:01Z", now)?, 1000);
        assert!(parse_since("yesterday", now).is_err());
        Ok(())
    }
}
