//! The clip store end to end with real files, SQLite and the `sentrix` binary: a clip and
//! its thumbnail sealed, indexed, read back and decrypted by `sentrix decrypt` into an MP4
//! that ffprobe accepts; file modes; every key source; wrong keys named.

use crate::common;

use sentrix::config::Config;
use sentrix::store::keys::{self, MasterKey};
use sentrix::store::{ClipMeta, ClipState, Store, StoreConfig};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const SENTRIX: &str = env!("CARGO_BIN_EXE_sentrix");

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn key_file_block(dir: &Path, name: &str) -> String {
    format!(
        "    key_source: file\n    key_file: {}",
        dir.join(name).display()
    )
}

#[test]
fn clip_and_thumbnail_round_trip_and_decrypt_command() {
    let dir = common::temp_dir();
    let d = dir.path();
    let recordings = d.join("rec");
    let cfg_path = common::store_config(d, &recordings, &key_file_block(d, "keys/clip.key"));
    let config = Config::load(&cfg_path).unwrap();
    let key = sentrix::app::store_setup::load_key(&config).unwrap();
    let (store, sweep) = Store::open(StoreConfig::from_config(&config), key).unwrap();
    assert_eq!(sweep, Default::default());

    let mp4 = common::synthetic_mp4(3);
    let jpeg = std::fs::read(common::testdata_dir().join("coco_000000002153.jpg")).unwrap();
    let meta = ClipMeta {
        camera_id: "porch".into(),
        start_ms: 1_795_000_000_000,
        labels: vec!["person".into()],
        ..Default::default()
    };
    let mut w = store.begin_clip(meta).unwrap();
    for piece in mp4.chunks(50_000) {
        w.write(piece).unwrap();
    }
    let rec = w.finish(Some(&jpeg)).unwrap();
    assert_eq!(rec.state, ClipState::Complete);
    assert_eq!(
        (rec.frames, rec.codec.as_str(), rec.width, rec.height),
        (75, "avc1", 320, 240)
    );
    assert!((rec.duration_ms - 3000).abs() <= 40, "{}", rec.duration_ms);
    assert_eq!(rec.plain_bytes as usize, mp4.len());
    assert!(rec.path.starts_with("porch/2026-11-18/"), "{}", rec.path);
    let listed = store.clips(Some("porch"), 0, i64::MAX).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].labels, vec!["person".to_string()]);

    let clip = store.open_clip(rec.id).unwrap();
    assert_eq!(clip.read_at(0, clip.plain_len()).unwrap(), mp4);
    let thumb = store.open_thumbnail(rec.id).unwrap();
    assert_eq!(thumb.read_at(0, thumb.plain_len()).unwrap(), jpeg);

    // Modes: dirs 0700, files 0600.
    let clip_path = recordings.join(&rec.path);
    assert_eq!(mode(&recordings), 0o700);
    assert_eq!(mode(clip_path.parent().unwrap()), 0o700);
    assert_eq!(mode(&clip_path), 0o600);
    assert_eq!(mode(&d.join("keys/clip.key")), 0o600);
    assert_eq!(mode(&d.join("keys")), 0o700);
    assert_eq!(mode(&d.join("db/sentrix.db")), 0o600);
    common::assert_no_plaintext(&recordings);

    // `sentrix decrypt` writes a standard MP4 that ffprobe plays for the indexed duration.
    let out = d.join("out.mp4");
    let run = Command::new(SENTRIX)
        .arg("decrypt")
        .arg(&clip_path)
        .arg("-o")
        .arg(&out)
        .arg("--config")
        .arg(&cfg_path)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(std::fs::read(&out).unwrap(), mp4);
    let probed = common::ffprobe_duration(&out);
    assert!(
        (probed * 1000.0 - rec.duration_ms as f64).abs() <= 40.0,
        "ffprobe {probed} s vs index {} ms",
        rec.duration_ms
    );
    // -o - to stdout.
    let run = Command::new(SENTRIX)
        .arg("decrypt")
        .arg(&clip_path)
        .args(["-o", "-", "--config"])
        .arg(&cfg_path)
        .output()
        .unwrap();
    assert!(run.status.success());
    assert_eq!(run.stdout, mp4);

    // A tampered copy is refused, exit code 1, no output left behind.
    let bad = d.join("bad.sntx");
    let mut b = std::fs::read(&clip_path).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x40;
    std::fs::write(&bad, b).unwrap();
    let bad_out = d.join("bad.mp4");
    let run = Command::new(SENTRIX)
        .arg("decrypt")
        .arg(&bad)
        .arg("-o")
        .arg(&bad_out)
        .arg("--config")
        .arg(&cfg_path)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("damaged") && err.contains("bad.sntx"), "{err}");
    assert!(!bad_out.exists(), "a partial output was left behind");

    // Another key: named, not garbage.
    let other_cfg = d.join("other");
    std::fs::create_dir(&other_cfg).unwrap();
    let other = common::store_config(
        &other_cfg,
        &recordings,
        &key_file_block(&other_cfg, "other.key"),
    );
    let run = Command::new(SENTRIX)
        .arg("decrypt")
        .arg(&clip_path)
        .arg("-o")
        .arg(d.join("x.mp4"))
        .arg("--config")
        .arg(&other)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains(&format!("sealed with key {}", store.key_id())),
        "{err}"
    );

    // Delete: row and files gone.
    store.delete_clip(rec.id).unwrap();
    assert!(store.clips(None, 0, i64::MAX).unwrap().is_empty());
    assert!(!clip_path.exists());
    assert!(
        common::files_under(&recordings).is_empty(),
        "{:?}",
        common::files_under(&recordings)
    );
}

#[test]
fn file_key_is_created_0600_and_refused_when_readable_by_others() {
    let dir = common::temp_dir();
    let path = dir.path().join("k/clip.key");
    let a = keys::load_or_create_file(&path).unwrap();
    let b = keys::load_or_create_file(&path).unwrap();
    assert_eq!(a.id(), b.id());
    assert_eq!(std::fs::read(&path).unwrap().len(), 32);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = keys::load_or_create_file(&path).unwrap_err().to_string();
    assert!(err.contains("644") && err.contains("chmod 600"), "{err}");
}

#[test]
fn passphrase_key_uses_stored_salt_and_600k_iterations() {
    let dir = common::temp_dir();
    let d = dir.path();
    let kdf = d.join("db/sentrix.db.kdf");
    std::fs::create_dir_all(d.join("db")).unwrap();
    let a = keys::from_passphrase_with_salt_file("correct horse battery", &kdf).unwrap();
    let b = keys::from_passphrase_with_salt_file("correct horse battery", &kdf).unwrap();
    let c = keys::from_passphrase_with_salt_file("correct horse batterY", &kdf).unwrap();
    assert_eq!(a.id(), b.id());
    assert_ne!(a.id(), c.id());
    let text = std::fs::read_to_string(&kdf).unwrap();
    assert!(text.starts_with("pbkdf2-sha256 600000 "), "{text}");
    assert_eq!(mode(&kdf), 0o600);

    // The binary derives the same key from $SENTRIX_PASSPHRASE and refuses a short one.
    let cfg = common::store_config(d, &d.join("rec"), "    key_source: passphrase");
    let run = Command::new(SENTRIX)
        .args(["key-id", "--config"])
        .arg(&cfg)
        .env("SENTRIX_PASSPHRASE", "correct horse battery")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        a.id().to_string()
    );
    let run = Command::new(SENTRIX)
        .args(["key-id", "--config"])
        .arg(&cfg)
        .env("SENTRIX_PASSPHRASE", "short")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stderr).contains("shorter than 12"));
}

#[test]
fn systemd_credential_key() {
    let dir = common::temp_dir();
    let d = dir.path();
    let creds = d.join("creds");
    std::fs::create_dir(&creds).unwrap();
    let raw: [u8; 32] = std::array::from_fn(|i| (i * 7 + 3) as u8);
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(creds.join("clip-key"), format!("{hex}\n")).unwrap();
    let cfg = common::store_config(d, &d.join("rec"), "    key_source: systemd-credential");
    let run = Command::new(SENTRIX)
        .args(["key-id", "--config"])
        .arg(&cfg)
        .env("CREDENTIALS_DIRECTORY", &creds)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        MasterKey::from_bytes(raw).id().to_string()
    );
    let run = Command::new(SENTRIX)
        .args(["key-id", "--config"])
        .arg(&cfg)
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stderr).contains("CREDENTIALS_DIRECTORY"));
}

#[test]
fn keyring_key_is_found_by_a_later_process() {
    let dir = common::temp_dir();
    let d = dir.path();
    let cfg = common::store_config(d, &d.join("rec"), "    key_source: keyring");
    let id = |n: u32| {
        let run = Command::new(SENTRIX)
            .args(["key-id", "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&run.stderr).to_string();
        (
            run.status.success(),
            String::from_utf8_lossy(&run.stdout).trim().to_string(),
            format!("process {n}: {err}"),
        )
    };
    let (ok1, id1, err1) = id(1);
    let (ok2, id2, err2) = id(2);
    if !ok1 || !ok2 || id1 != id2 {
        // Documented in docs/security.md: some kernels and sandboxes give each process its
        // own session keyring and no persistent keyring.
        println!(
            "SKIP keyring: this kernel does not keep a keyring key across processes ({id1:?} vs {id2:?}; {err1} {err2})"
        );
        eprintln!(
            "SKIP keyring: this kernel does not keep a keyring key across processes ({id1:?} vs {id2:?}; {err1} {err2})"
        );
        return;
    }
    assert_eq!(id1.len(), 16);
}

fn test_store(d: &Path, retention: sentrix::store::RetentionPolicy) -> Store {
    open_test_store(d, retention).0
}

/// The test store under `d` and what its start-up sweep found.
fn open_test_store(
    d: &Path,
    retention: sentrix::store::RetentionPolicy,
) -> (Store, sentrix::store::SweepReport) {
    let config = StoreConfig {
        recordings_dir: d.join("rec"),
        database: d.join("index.db"),
        chunk_size: 16 * 1024,
        retention,
        offsite_uploaded_first: false,
        review: Default::default(),
    };
    Store::open(config, MasterKey::from_bytes([9; 32])).unwrap()
}

fn add_clip(store: &Store, mp4: &[u8], start_ms: i64) -> sentrix::store::ClipRecord {
    add_clip_with_thumbnail(store, mp4, start_ms, None)
}

fn add_clip_with_thumbnail(
    store: &Store,
    mp4: &[u8],
    start_ms: i64,
    jpeg: Option<&[u8]>,
) -> sentrix::store::ClipRecord {
    let mut w = store
        .begin_clip(ClipMeta {
            camera_id: "cam".into(),
            start_ms,
            ..Default::default()
        })
        .unwrap();
    w.write(mp4).unwrap();
    w.finish(jpeg).unwrap()
}

#[test]
fn retention_by_age_and_size_deletes_oldest_first() {
    let dir = common::temp_dir();
    let mp4 = common::synthetic_mp4(1);
    let day = 86_400_000;
    let now = sentrix::base::clock::wall_ms();
    let policy = sentrix::store::RetentionPolicy {
        max_size_bytes: u64::MAX,
        event_ms: 30 * day,
        continuous_ms: 0,
        min_free_percent: 0.0,
        event_margin_ms: (5_000, 10_000),
    };
    let store = test_store(dir.path(), policy);
    let old = add_clip(&store, &mp4, now - 40 * day);
    let mid = add_clip(&store, &mp4, now - 20 * day);
    let new = add_clip(&store, &mp4, now - day);
    let report = sentrix::store::retention::enforce(&store, now).unwrap();
    assert_eq!(report.deleted, 1);
    let ids: Vec<i64> = store
        .clips(None, 0, i64::MAX)
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, vec![mid.id, new.id]);
    drop(store);

    // The same store with a size cap of about one clip keeps only the newest.
    let cap = sentrix::store::RetentionPolicy {
        max_size_bytes: new.file_bytes as u64 + 100,
        ..policy
    };
    let store = test_store(dir.path(), cap);
    let report = sentrix::store::retention::enforce(&store, now).unwrap();
    assert_eq!(report.deleted, 1);
    assert_eq!(
        store
            .clips(None, 0, i64::MAX)
            .unwrap()
            .iter()
            .map(|c| c.id)
            .collect::<Vec<_>>(),
        vec![new.id]
    );
    assert!(
        !dir.path().join("rec").join(&old.path).exists()
            && !dir.path().join("rec").join(&mid.path).exists()
    );
}

fn add_segment(store: &Store, mp4: &[u8], start_ms: i64) -> sentrix::store::ClipRecord {
    let mut w = store
        .begin_clip(ClipMeta {
            camera_id: "cam".into(),
            start_ms,
            run_start_ms: Some(start_ms),
            ..Default::default()
        })
        .unwrap();
    w.write(mp4).unwrap();
    w.finish(None).unwrap()
}

/// An ended event over `seg`'s first half second.
fn event_over(store: &Store, seg: &sentrix::store::ClipRecord) -> i64 {
    let id = store
        .insert_event("cam", "person", seg.start_ms + 100, 0.9, &[0.0; 4])
        .unwrap();
    store
        .update_event(id, Some(seg.start_ms + 500), 0.9, &[0.0; 4])
        .unwrap();
    id
}

/// Ids of the segments left, oldest first.
fn segments_left(store: &Store) -> Vec<i64> {
    store
        .media_overlapping("cam", 0, i64::MAX / 2)
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect()
}

#[test]
fn retention_tiers_by_age_then_by_pressure() {
    let dir = common::temp_dir();
    let mp4 = common::synthetic_mp4(1);
    let day = 86_400_000;
    let now = 1_800_000_000_000; // a simulated clock
    let policy = sentrix::store::RetentionPolicy {
        max_size_bytes: u64::MAX,
        event_ms: 30 * day,
        continuous_ms: 7 * day,
        min_free_percent: 0.0,
        event_margin_ms: (5_000, 10_000),
    };
    let store = test_store(dir.path(), policy);
    let kept_45d = add_segment(&store, &mp4, now - 45 * day);
    let old_event_40d = add_segment(&store, &mp4, now - 40 * day);
    let quiet_10d = add_segment(&store, &mp4, now - 10 * day);
    let event_10d = add_segment(&store, &mp4, now - 10 * day + 60_000);
    let acked_5d = add_segment(&store, &mp4, now - 5 * day);
    let quiet_2d = add_segment(&store, &mp4, now - 2 * day);
    let keep = event_over(&store, &kept_45d);
    store.set_event_keep(keep, true).unwrap();
    let old = event_over(&store, &old_event_40d);
    event_over(&store, &event_10d);
    let acked = event_over(&store, &acked_5d);
    store.acknowledge_event(acked, "alice", 0).unwrap();
    // A segment written after its event is tiered at once. A dog is a detection, not an
    // alert (review.alerts defaults to person and car).
    let late_event = store
        .insert_event("cam", "dog", now - day, 0.8, &[0.0; 4])
        .unwrap();
    store
        .update_event(late_event, Some(now - day + 400), 0.8, &[0.0; 4])
        .unwrap();
    let late = add_segment(&store, &mp4, now - day + 1000);
    let tiers: Vec<i64> = [
        &kept_45d,
        &old_event_40d,
        &quiet_10d,
        &event_10d,
        &acked_5d,
        &quiet_2d,
        &late,
    ]
    .iter()
    .map(|c| store.clip(c.id).unwrap().tier)
    .collect();
    // keep 5; alert 3, acknowledged 4; detection 1; no event 0.
    assert_eq!(tiers, vec![5, 3, 0, 3, 4, 0, 1]);

    // By age: quiet footage after 7 days, event footage after 30, keep never.
    sentrix::store::retention::enforce(&store, now).unwrap();
    assert_eq!(
        segments_left(&store),
        vec![kept_45d.id, event_10d.id, acked_5d.id, quiet_2d.id, late.id]
    );
    assert!(store.event(keep).is_ok(), "a kept event stays");
    assert!(
        store.event(old).is_err(),
        "an event whose footage is gone goes"
    );
    drop(store);

    // Under pressure: no event first (even the newest), then the detection (though newer
    // than the alerts), then alerts (oldest first), then acknowledged alerts, then keep.
    let one = std::fs::metadata(dir.path().join("rec").join(&quiet_2d.path))
        .unwrap()
        .len();
    for (left, expected) in [
        (3, vec![kept_45d.id, event_10d.id, acked_5d.id]),
        (2, vec![kept_45d.id, acked_5d.id]),
        (1, vec![kept_45d.id]),
    ] {
        let cap = sentrix::store::RetentionPolicy {
            max_size_bytes: one * left + one / 2,
            ..policy
        };
        let store = test_store(dir.path(), cap);
        sentrix::store::retention::enforce(&store, now).unwrap();
        assert_eq!(segments_left(&store), expected, "room for {left}");
    }
}

#[test]
fn sweep_reconciles_orphans_missing_files_and_garbage() {
    let dir = common::temp_dir();
    let d = dir.path();
    let mp4 = common::synthetic_mp4(1);
    let policy = sentrix::store::RetentionPolicy::KEEP_ALL;
    let store = test_store(d, policy);
    let now = sentrix::base::clock::wall_ms();
    let orphan = add_clip(&store, &mp4, now - 3000);
    let lost = add_clip(&store, &mp4, now - 2000);
    let kept = add_clip(&store, &mp4, now - 1000);
    drop(store);
    let db = rusqlite::Connection::open(d.join("index.db")).unwrap();
    // A crash between rename and insert: the file is there, the row is not.
    db.execute("DELETE FROM clips WHERE id = ?1", [orphan.id])
        .unwrap();
    // A deletion interrupted after its transaction: row gone, file and garbage row left.
    let doomed = d
        .join("rec")
        .join(kept.path.replace(".mp4.sntx", "-x.mp4.sntx"));
    std::fs::copy(d.join("rec").join(&kept.path), &doomed).unwrap();
    let doomed_rel = doomed
        .strip_prefix(d.join("rec"))
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    db.execute("INSERT INTO garbage (path) VALUES (?1)", [&doomed_rel])
        .unwrap();
    // A file lost behind the store's back.
    std::fs::remove_file(d.join("rec").join(&lost.path)).unwrap();
    // A thumbnail nobody owns, and garbage from an interrupted recovery.
    std::fs::write(
        d.join("rec")
            .join(kept.path.replace(".mp4.sntx", "-y.jpg.sntx")),
        b"x",
    )
    .unwrap();
    std::fs::write(d.join("rec").join(format!("{}.recover", kept.path)), b"x").unwrap();
    drop(db);

    let (store, report) = open_test_store(d, policy);
    assert_eq!(report.garbage_removed, 1, "{report:?}");
    assert_eq!(report.orphans_indexed, 1, "{report:?}");
    // The unreadable "thumbnail" is moved aside, not deleted, and the sweep goes on.
    assert_eq!(report.quarantined, 1, "{report:?}");
    assert_eq!(report.rows_without_file, 1, "{report:?}");
    assert!(!doomed.exists());
    let clips = store.clips(None, 0, i64::MAX).unwrap();
    let paths: Vec<&str> = clips.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(paths.len(), 2, "{paths:?}");
    assert!(paths.contains(&orphan.path.as_str()) && paths.contains(&kept.path.as_str()));
    let re = clips.iter().find(|c| c.path == orphan.path).unwrap();
    assert_eq!(
        (re.frames, re.duration_ms),
        (orphan.frames, orphan.duration_ms)
    );
    let files = common::files_under(&d.join("rec"));
    let (aside, files): (Vec<_>, Vec<_>) = files
        .into_iter()
        .partition(|p| p.to_string_lossy().contains("/.quarantine/"));
    assert_eq!((files.len(), aside.len()), (2, 1), "{files:?} {aside:?}");
}

/// Someone empties the recordings folder (rm -rf) but keeps the index: the box still
/// starts, and the index forgets the clips whose day folders are gone.
#[test]
fn a_recordings_folder_removed_by_hand_is_forgotten_not_fatal() {
    let dir = common::temp_dir();
    let keep_all = sentrix::store::RetentionPolicy::KEEP_ALL;
    let store = test_store(dir.path(), keep_all);
    for ago_ms in [2000, 1000] {
        let at_ms = sentrix::base::clock::wall_ms() - ago_ms;
        add_clip(&store, &common::synthetic_mp4(1), at_ms);
    }
    drop(store);
    std::fs::remove_dir_all(dir.path().join("rec")).unwrap();
    let (store, report) = open_test_store(dir.path(), keep_all);
    assert_eq!(report.rows_without_file, 2, "{report:?}");
    assert!(store.clips(None, 0, i64::MAX).unwrap().is_empty());
}

/// A clip with a thumbnail and an event with a snapshot, as the recorder makes them.
fn add_clip_with_pictures(store: &Store, mp4: &[u8], jpeg: &[u8], start_ms: i64) -> i64 {
    let event = store
        .insert_event("cam", "person", start_ms + 100, 0.9, &[0.1, 0.1, 0.2, 0.2])
        .unwrap();
    store.set_event_snapshot(event, jpeg).unwrap();
    add_clip_with_thumbnail(store, mp4, start_ms, Some(jpeg)).id
}

#[test]
fn a_lost_index_is_rebuilt_and_damaged_clips_are_salvaged_not_deleted() {
    let dir = common::temp_dir();
    let d = dir.path();
    let mp4 = common::synthetic_mp4(3);
    let jpeg = std::fs::read(common::testdata_dir().join("coco_000000001000.jpg"))
        .unwrap_or_else(|_| b"\xff\xd8\xff\xe0 not really a jpeg".to_vec());
    let policy = sentrix::store::RetentionPolicy::KEEP_ALL;
    let store = test_store(d, policy);
    let now = sentrix::base::clock::wall_ms();
    let ids: Vec<i64> = (0..4)
        .map(|i| add_clip_with_pictures(&store, &mp4, &jpeg, now - 10_000 * (4 - i)))
        .collect();
    let clips = store.clips(None, 0, i64::MAX).unwrap();
    let damaged_rel = clips[3].path.clone();
    drop(store);

    // The index is lost; one clip lost its last 100 bytes; a partial cannot be read at all.
    std::fs::remove_file(d.join("index.db")).unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(d.join(format!("index.db{suffix}")));
    }
    common::cut_tail(&d.join("rec").join(&damaged_rel), 100);
    let junk = d
        .join("rec")
        .join(damaged_rel.replace(".mp4.sntx", "-junk.mp4.sntx.partial"));
    std::fs::write(&junk, b"not a sealed file at all").unwrap();

    let (store, report) =
        Store::open(test_config(d, policy), MasterKey::from_bytes([9; 32])).unwrap();
    assert_eq!(report.orphans_indexed, 3, "{report:?}");
    assert_eq!(report.orphans_salvaged, 1, "{report:?}");
    assert_eq!(report.thumbnails_relinked, 4, "{report:?}");
    assert_eq!(report.snapshots_relinked, 4, "{report:?}");
    let clips = store.clips(None, 0, i64::MAX).unwrap();
    assert_eq!(clips.len(), 4, "no clip is deleted for damage");
    let salvaged = clips.iter().find(|c| c.path == damaged_rel).unwrap();
    assert_eq!(salvaged.state.as_str(), "truncated");
    assert!(salvaged.duration_ms > 0);
    for c in &clips {
        let thumb = store.open_thumbnail(c.id).unwrap();
        assert_eq!(
            thumb.read_at(0, 3).unwrap(),
            jpeg[..3].to_vec(),
            "thumbnail of {}",
            c.id
        );
        assert!(store.open_clip(c.id).is_ok());
    }
    let events = store.events(&Default::default()).unwrap();
    assert_eq!(events.len(), 4, "{events:?}");
    assert!(
        events
            .iter()
            .all(|e| e.label == "person" && e.clip_id.is_some()),
        "{events:?}"
    );
    assert!(!junk.exists());
    let _ = ids;

    // Damage found in an indexed clip: named, salvaged in place (still listed, plays).
    drop(store);
    common::cut_tail(&d.join("rec").join(&clips[0].path), 100);
    let (store, report) =
        Store::open(test_config(d, policy), MasterKey::from_bytes([9; 32])).unwrap();
    assert_eq!(report.damaged, 1, "{report:?}");
    let again = store.clip(clips[0].id).unwrap();
    assert_eq!(again.state.as_str(), "truncated");
    assert!(again.damage.is_empty());
    assert!(store.open_clip(again.id).is_ok());
}

fn test_config(d: &Path, retention: sentrix::store::RetentionPolicy) -> StoreConfig {
    StoreConfig {
        recordings_dir: d.join("rec"),
        database: d.join("index.db"),
        chunk_size: 16 * 1024,
        retention,
        offsite_uploaded_first: false,
        review: Default::default(),
    }
}

#[test]
fn plaintext_signatures_are_recognised() {
    // The no-plaintext check must catch what sentrix would leak: a real MP4 and a JPEG
    // (jpegenc, which makes the thumbnails, writes a JFIF segment like this photo).
    let dir = common::temp_dir();
    std::fs::write(dir.path().join("a.mp4"), common::synthetic_mp4(1)).unwrap();
    let caught = std::panic::catch_unwind(|| common::assert_no_plaintext(dir.path()));
    assert!(caught.is_err(), "an MP4 file was not recognised");
    std::fs::remove_file(dir.path().join("a.mp4")).unwrap();
    std::fs::copy(
        common::testdata_dir().join("coco_000000002153.jpg"),
        dir.path().join("a.jpg"),
    )
    .unwrap();
    let caught = std::panic::catch_unwind(|| common::assert_no_plaintext(dir.path()));
    assert!(caught.is_err(), "a JPEG file was not recognised");
}

#[test]
fn the_offsite_queue_follows_what_and_holds_back_age_retention() {
    let dir = common::temp_dir();
    let mp4 = common::synthetic_mp4(1);
    let day = 86_400_000;
    let now = sentrix::base::clock::wall_ms();
    let policy = sentrix::store::RetentionPolicy {
        max_size_bytes: u64::MAX,
        event_ms: 30 * day,
        continuous_ms: 0,
        min_free_percent: 0.0,
        event_margin_ms: (0, 0),
    };
    let config = StoreConfig {
        offsite_uploaded_first: true,
        review: Default::default(),
        ..test_config(dir.path(), policy)
    };
    let store = Store::open(config, MasterKey::from_bytes([9; 32]))
        .unwrap()
        .0;
    use sentrix::store::OffsiteState;
    let state = |id: i64| store.offsite_state(id).unwrap();
    // Off: nothing queues.
    let before = add_clip(&store, &mp4, now - 50 * day);
    assert_eq!(state(before.id), OffsiteState::Local);
    // events: event clips queue at once, segments once an event lies over them.
    store.offsite_configure(Some("events")).unwrap();
    let old = add_clip(&store, &mp4, now - 40 * day);
    let quiet = add_segment(&store, &mp4, now - 2 * day);
    let busy = add_segment(&store, &mp4, now - day);
    assert_eq!(state(old.id), OffsiteState::Queued);
    assert_eq!(state(quiet.id), OffsiteState::Local);
    assert_eq!(state(busy.id), OffsiteState::Local);
    event_over(&store, &busy);
    assert_eq!(
        state(busy.id),
        OffsiteState::Queued,
        "an event over it queues it"
    );
    // all: every clip.
    store.offsite_configure(Some("all")).unwrap();
    let any = add_segment(&store, &mp4, now - 3 * day);
    assert_eq!(state(any.id), OffsiteState::Queued);
    // The age limit waits for the queued clip's upload, not for a local one.
    sentrix::store::retention::enforce(&store, now).unwrap();
    let left = |id: i64| store.clip(id).is_ok();
    assert!(!left(before.id), "a local clip goes at its age");
    assert!(left(old.id), "a queued clip waits for its upload");
    store
        .offsite_failed(old.id, "down", now + 60_000, false)
        .unwrap();
    assert_eq!(state(old.id), OffsiteState::Failed("down".into()));
    store.offsite_uploaded(old.id, now).unwrap();
    sentrix::store::retention::enforce(&store, now).unwrap();
    assert!(!left(old.id), "uploaded: it goes");
    let counts = store.offsite_counts().unwrap();
    assert_eq!((counts.queued, counts.uploaded), (2, 0), "{counts:?}");
}
