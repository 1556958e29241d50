//! A full SD card that the index shares, with the whole product. `sentrix run` records a
//! noisy demo camera (6 Mbit/s, a manual trigger every second) onto a 64 MB tmpfs holding
//! both recordings_dir and the SQLite index, with `min_free_percent: 1` so its own writes
//! run the card full again and again; another program takes 20 MB of it on the way, and
//! fills the card to the last block before the restart. Recording must go on for 3 minutes with retention deleting the oldest
//! clips; a `kill -9` and a restart on the still-full card must work; afterwards every
//! clip plays, `integrity_check` is ok and no `.partial`/`.recover` file is left.

use crate::common;
use crate::common::run::{spawn_run, stop};
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Another program writing up to `max_bytes`, or until the card is full (its file stays).
fn fill(card: &Path, name: &str, max_bytes: u64) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(card.join(name))
        .unwrap();
    let mut written = 0;
    for block in [256 * 1024, 4096] {
        let data = vec![0x5a_u8; block];
        while written < max_bytes && f.write_all(&data).is_ok() {
            written += block as u64;
        }
    }
}

fn free_bytes(p: &Path) -> u64 {
    sentrix::store::retention::fs_space(p).map_or(0, |(_, free)| free)
}

fn partials(rec: &Path) -> Vec<std::path::PathBuf> {
    common::files_under(rec)
        .into_iter()
        .filter(|p| {
            let s = p.to_string_lossy();
            s.ends_with(".partial") || s.ends_with(".recover")
        })
        .collect()
}

/// `sentrix run` on `config`, its log lines gathered in `log`; triggers every second until
/// `until`, checking the card as it goes. Returns the child, still running.
fn record_until(
    config: &Path,
    rec: &Path,
    log: &Arc<Mutex<Vec<String>>>,
    until: Instant,
    mut at: impl FnMut(Duration),
) -> std::process::Child {
    let (child, rx) = spawn_run(config);
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in rx {
            sink.lock().unwrap().push(line);
        }
    });
    let started = Instant::now();
    let mut most_partials = 0;
    while Instant::now() < until {
        std::thread::sleep(Duration::from_secs(1));
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGUSR1) };
        most_partials = most_partials.max(partials(rec).len());
        at(started.elapsed());
    }
    assert!(most_partials <= 3, "{most_partials} partial files at once");
    child
}

#[test]
fn a_full_card_shared_with_the_index_never_stops_recording() {
    let dir = common::temp_dir();
    let d = dir.path();
    let card = d.join("card");
    if let Err(e) = crate::store_crash::mount_tmpfs(&card, "64m") {
        println!("SKIP full card: cannot mount a tmpfs here ({e}); run as root");
        eprintln!("SKIP full card: cannot mount a tmpfs here ({e}); run as root");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&card);
    let rec = card.join("rec");
    let config = d.join("surveillance.yml");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        &config,
        format!(
            "network:\n  api_port: {port}\ndetect:\n  enabled: false\nrecord:\n  pre_detection_buffer: 1\n  post_detection_buffer: 2\n  max_clip_length: 8\nstorage:\n  recordings_dir: {}\n  database: {}\n  encryption:\n    key_file: {}\n  retention:\n    min_free_percent: 1\ncameras:\n  - id: demo\n    url: demo://?width=320&height=240&fps=25&bitrate=6000&pattern=snow\n",
            rec.display(),
            card.join("db/sentrix.db").display(),
            d.join("clip.key").display()
        ),
    )
    .unwrap();
    let log: Arc<Mutex<Vec<String>>> = Default::default();
    let t0 = Instant::now();

    // Two minutes of recording; another program takes 20 MB at 20 s.
    let mut filled = false;
    let mut child = record_until(&config, &rec, &log, t0 + Duration::from_secs(120), |t| {
        if t >= Duration::from_secs(20) && !filled {
            fill(&card, "other-program", 20 << 20);
            filled = true;
        }
    });
    assert!(
        child.try_wait().unwrap().is_none(),
        "sentrix died on the full card"
    );
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();

    // The card is full to the last block; sentrix must start on it and record again.
    fill(&card, "last-blocks", u64::MAX);
    assert!(
        free_bytes(&card) < 64 * 1024,
        "{} bytes free",
        free_bytes(&card)
    );
    let restart_ms = sentrix::base::clock::wall_ms();
    let lines_before = log.lock().unwrap().len();
    let child = record_until(&config, &rec, &log, t0 + Duration::from_secs(180), |_| {});
    let restarted = log.lock().unwrap()[lines_before..].join("\n");
    assert!(
        restarted.contains("streaming (connection 1)"),
        "no start on a full card:\n{restarted}"
    );
    assert!(stop(child), "no clean stop:\n{restarted}");

    let all = log.lock().unwrap().join("\n");
    let sweep: Vec<&str> = all
        .lines()
        .filter(|l| l.contains("sweep") || l.contains("full"))
        .collect();
    assert!(
        partials(&rec).is_empty(),
        "left after a clean stop: {:?}\n{}",
        partials(&rec),
        sweep.join("\n")
    );
    let deletions = all.matches("retention: deleted clip").count();
    assert!(deletions >= 5, "{deletions} deletions:\n{all}");
    assert!(
        all.contains("space reserve"),
        "the reserve was never used:\n{all}"
    );
    assert!(!all.contains("recording is stopped"), "{all}");
    let bytes: usize = all.len();
    assert!(bytes < 1_000_000, "the log grew to {bytes} bytes");

    let scratch = d.join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let kept = crate::store_crash::verify_store(&config, &rec, &scratch);
    let db = rusqlite::Connection::open(card.join("db/sentrix.db")).unwrap();
    let after_restart: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM clips WHERE start_ms > ?1",
            [restart_ms],
            |r| r.get(0),
        )
        .unwrap();
    eprintln!(
        "{deletions} clips deleted by retention, {kept} kept, {after_restart} after the restart"
    );
    assert!(
        after_restart >= 3,
        "recording did not go on after the restart on a full card"
    );
}
