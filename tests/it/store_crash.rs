//! Crash safety and retention with a real child process: `sentrix test-writer` records
//! synthetic clips into a real store and is killed with SIGKILL at random moments; after
//! the sweep every listed clip decrypts and plays (ffprobe), no partial file is left, and
//! SQLite's integrity check passes. Then the writer fills a small tmpfs: retention deletes
//! the oldest clips and recording goes on.

use crate::common;

use sentrix::config::Config;
use sentrix::store::{Store, StoreConfig};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SENTRIX: &str = env!("CARGO_BIN_EXE_sentrix");

fn writer(cfg: &Path, clip_seconds: u32, bitrate_kbps: u32) -> Child {
    Command::new(SENTRIX)
        .args([
            "test-writer",
            "--clip-seconds",
            &clip_seconds.to_string(),
            "--bitrate-kbps",
            &bitrate_kbps.to_string(),
        ])
        .arg("--config")
        .arg(cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn kill9(child: &mut Child) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
}

/// Opens the store (running the sweep) and checks every listed clip decrypts and plays.
pub(crate) fn verify_store(cfg: &Path, recordings: &Path, scratch: &Path) -> usize {
    let config = Config::load(cfg).unwrap();
    let (store, sweep) = Store::open(
        StoreConfig::from_config(&config),
        sentrix::app::store_setup::load_key(&config).unwrap(),
    )
    .unwrap();
    eprintln!("sweep: {sweep:?}");
    let leftovers: Vec<_> = common::files_under(recordings)
        .into_iter()
        .filter(|p| {
            p.to_string_lossy().ends_with(".partial") || p.to_string_lossy().ends_with(".recover")
        })
        .collect();
    assert!(leftovers.is_empty(), "left after the sweep: {leftovers:?}");
    let clips = store.clips(None, 0, i64::MAX).unwrap();
    for c in &clips {
        let reader = store
            .open_clip(c.id)
            .unwrap_or_else(|e| panic!("clip {} ({}) does not open: {e}", c.id, c.path));
        let mp4 = reader.read_at(0, reader.plain_len()).unwrap();
        let out = scratch.join(format!("clip{}.mp4", c.id));
        std::fs::write(&out, &mp4).unwrap();
        let probed = common::ffprobe_duration(&out);
        assert!(
            (probed * 1000.0 - c.duration_ms as f64).abs() <= 80.0,
            "clip {} ({:?}): ffprobe {probed} s, index {} ms",
            c.id,
            c.state,
            c.duration_ms
        );
        std::fs::remove_file(out).unwrap();
    }
    let ok: String = rusqlite::Connection::open(&config.paths.database)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    clips.len()
}

#[test]
fn sigkill_at_random_points_loses_at_most_the_open_fragment() {
    let dir = common::temp_dir();
    let d = dir.path();
    let recordings = d.join("rec");
    let cfg = common::store_config(
        d,
        &recordings,
        &format!("    key_file: {}", d.join("clip.key").display()),
    );
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("seed {seed}");
    let mut x = seed;
    let (mut recovered, mut removed) = (0, 0);
    for i in 0..20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let delay_ms = 300 + x % 2700;
        // 3 s clips of 64 KiB chunks at ~100 kB/s: most kills land inside a clip that has
        // sealed chunks on disk, some before its first fragment is complete.
        let mut child = writer(&cfg, 3, 800);
        std::thread::sleep(Duration::from_millis(delay_ms));
        kill9(&mut child);
        let mut err = String::new();
        let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err);
        // The next run's sweep (or the final one) deals with this run's partial.
        recovered += err.matches("partials_recovered: 1").count();
        removed += err.matches("partials_removed: 1").count();
        eprintln!("kill {i} after {delay_ms} ms");
    }
    let clips = verify_store(&cfg, &recordings, d);
    let config = Config::load(&cfg).unwrap();
    let (store, _) = Store::open(
        StoreConfig::from_config(&config),
        sentrix::app::store_setup::load_key(&config).unwrap(),
    )
    .unwrap();
    let truncated = store
        .clips(None, 0, i64::MAX)
        .unwrap()
        .iter()
        .filter(|c| c.state == sentrix::store::ClipState::Truncated)
        .count();
    eprintln!(
        "{clips} clips listed after 20 kills: {truncated} truncated; sweeps recovered {recovered} and removed {removed} partials"
    );
    assert!(clips >= 5, "only {clips} clips survived 20 runs");
    assert!(
        truncated >= 3 && recovered >= 3,
        "the kills should have left recoverable partial clips"
    );
    common::assert_no_plaintext(&recordings);
}

pub(crate) fn mount_tmpfs(at: &Path, size: &str) -> Result<(), String> {
    std::fs::create_dir_all(at).unwrap();
    let out = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size},mode=0700"),
            "tmpfs",
        ])
        .arg(at)
        .output();
    match out {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn full_small_filesystem_deletes_oldest_and_keeps_recording() {
    let dir = common::temp_dir();
    let d = dir.path();
    let recordings = d.join("rec");
    if let Err(e) = mount_tmpfs(&recordings, "4m") {
        println!(
            "SKIP retention on a small filesystem: cannot mount a tmpfs here ({e}); run as root"
        );
        eprintln!(
            "SKIP retention on a small filesystem: cannot mount a tmpfs here ({e}); run as root"
        );
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&recordings);
    let cfg = common::store_config(
        d,
        &recordings,
        &format!("    key_file: {}", d.join("clip.key").display()),
    );
    // 4 Mbit/s of noise: ~0.5 MB a second fills 4 MB in ~8 s.
    let mut child = writer(&cfg, 1, 4000);
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let ids: std::sync::Arc<std::sync::Mutex<Vec<i64>>> = Default::default();
    let seen = ids.clone();
    let reader = std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if let Some(id) = line
                .strip_prefix("clip ")
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse().ok())
            {
                seen.lock().unwrap().push(id);
            }
        }
    });
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the writer died on a full disk"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let written = ids.lock().unwrap().clone();
    kill9(&mut child);
    reader.join().unwrap();
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err);
    assert!(
        err.contains("retention: deleted clip"),
        "no retention happened:\n{err}"
    );
    assert!(err.contains("the disk is full"), "{err}");

    let count = verify_store(&cfg, &recordings, d);
    let config = Config::load(&cfg).unwrap();
    let (store, _) = Store::open(
        StoreConfig::from_config(&config),
        sentrix::app::store_setup::load_key(&config).unwrap(),
    )
    .unwrap();
    let kept: Vec<i64> = store
        .clips(None, 0, i64::MAX)
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    eprintln!("{} clips written, {count} kept: {kept:?}", written.len());
    // More was recorded than fits, the oldest went first, and the newest are kept.
    let total_bytes: i64 = store
        .clips(None, 0, i64::MAX)
        .unwrap()
        .iter()
        .map(|c| c.file_bytes)
        .sum();
    assert!(
        written.len() > kept.len() + 3,
        "recording did not go on past the full disk"
    );
    assert!(
        kept.iter().all(|id| *id > written[0]),
        "the oldest clip was not deleted first: {kept:?}"
    );
    let newest_written = *written.last().unwrap();
    assert!(
        kept.contains(&newest_written),
        "the newest finished clip {newest_written} was deleted: {kept:?}"
    );
    let mut sorted = kept.clone();
    sorted.sort();
    assert!(
        sorted
            .windows(2)
            .all(|w| w[1] == w[0] + 1 || w[1] > newest_written - 1),
        "deleted out of order: {kept:?}"
    );
    assert!(total_bytes <= 4 << 20);
    common::assert_no_plaintext(&recordings);
}
