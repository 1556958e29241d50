//! Review items in a real index: events grouped by the gap and the cap, severity from the
//! alert rules, reviewed marks per user in step with acknowledgements, "mark all" touching
//! only what it names, and the same items rebuilt from the files after the index is lost.

use crate::common;
use sentrix::store::keys::MasterKey;
use sentrix::store::{ReviewItem, ReviewPolicy, ReviewQuery, Severity, Store, StoreConfig};
use std::path::Path;

const S: i64 = 1000;

fn config(d: &Path) -> StoreConfig {
    StoreConfig {
        recordings_dir: d.join("rec"),
        database: d.join("index.db"),
        chunk_size: 16 * 1024,
        retention: sentrix::store::RetentionPolicy::KEEP_ALL,
        offsite_uploaded_first: false,
        review: ReviewPolicy::default(),
    }
}

fn open(d: &Path) -> Store {
    Store::open(config(d), MasterKey::from_bytes([3; 32]))
        .unwrap()
        .0
}

/// An event of `label` on `camera` over [from_s, to_s] seconds after `t0`, with a snapshot.
fn event(store: &Store, camera: &str, label: &str, t0: i64, from_s: i64, to_s: i64) -> i64 {
    let id = store
        .insert_event(camera, label, t0 + from_s * S, 0.8, &[0.1, 0.1, 0.3, 0.5])
        .unwrap();
    store
        .set_event_snapshot(id, b"\xff\xd8 not really a jpeg")
        .unwrap();
    store
        .update_event(id, Some(t0 + to_s * S), 0.8, &[0.1, 0.1, 0.3, 0.5])
        .unwrap();
    id
}

fn all_items(store: &Store, user: &str) -> Vec<ReviewItem> {
    let q = ReviewQuery {
        limit: Some(1000),
        ..ReviewQuery::default()
    };
    let mut items = store.review_items(&q, user).unwrap();
    items.reverse();
    items
}

/// A day ago, so everything is due to close at "now".
fn t0() -> i64 {
    sentrix::base::clock::wall_ms() - 86_400_000
}

/// door: people walking by (one item), a dog 30 s later (its own, a detection), a motion
/// blip (motion), and a busy stretch that runs past the 300 s cap (two items). yard: a
/// car at the same time as the door's people (separate: per camera).
fn busy_day(store: &Store, t0: i64) -> Vec<i64> {
    let mut ids = vec![
        event(store, "door", "person", t0, 0, 8),
        event(store, "door", "person", t0, 5, 12),
        event(store, "door", "person", t0, 20, 25), // 8 s after the reach: joins
        event(store, "door", "dog", t0, 60, 70),    // 35 s after: a new item
        event(store, "door", "motion", t0, 200, 210),
        event(store, "yard", "car", t0, 3, 9),
    ];
    // From 1000 s: a person every 8 s for 400 s, each seen 6 s.
    for k in 0..50 {
        ids.push(event(
            store,
            "door",
            "person",
            t0,
            1000 + 8 * k,
            1006 + 8 * k,
        ));
    }
    ids
}

#[test]
fn events_become_items_by_gap_cap_and_camera() {
    let dir = common::temp_dir();
    let store = open(dir.path());
    let t0 = t0();
    let ids = busy_day(&store, t0);
    let closed = store.close_due_review_items(t0 + 2 * 86_400_000).unwrap();
    let items = all_items(&store, "alice");
    assert_eq!(closed.len(), items.len());
    let summary: Vec<(&str, i64, i64, Severity, i64, bool)> = items
        .iter()
        .map(|i| {
            (
                i.camera_id.as_str(),
                (i.start_ms - t0) / S,
                (i.end_ms.unwrap() - t0) / S,
                i.severity,
                i.events,
                i.cut,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("door", 0, 25, Severity::Alert, 3, false),
            ("yard", 3, 9, Severity::Alert, 1, false),
            ("door", 60, 70, Severity::Detection, 1, false),
            ("door", 200, 210, Severity::Motion, 1, false),
            // 1000 + 300 = 1300: events starting before the cap join; one more starts at
            // 1296 and lasts to 1302, so the item is cut at the cap.
            ("door", 1000, 1300, Severity::Alert, 38, true),
            ("door", 1304, 1398, Severity::Alert, 12, false),
        ],
        "{items:#?}"
    );
    assert_eq!(items[0].labels, vec!["person"]);
    assert!(items[0].snapshot_event_id.is_some());
    // Every event in exactly one item, and items of a camera do not overlap.
    let total: i64 = items.iter().map(|i| i.events).sum();
    assert_eq!(total as usize, ids.len());
    for id in &ids {
        assert!(store.event(*id).unwrap().review_id.is_some());
    }
    let door: Vec<&ReviewItem> = items.iter().filter(|i| i.camera_id == "door").collect();
    for w in door.windows(2) {
        assert!(w[0].end_ms.unwrap() <= w[1].start_ms, "{w:?}");
    }
}

#[test]
fn reviewed_marks_are_per_user_and_follow_acknowledgements() {
    let dir = common::temp_dir();
    let store = open(dir.path());
    let t0 = t0();
    let ids = busy_day(&store, t0);
    store.close_due_review_items(t0 + 2 * 86_400_000).unwrap();
    let items = all_items(&store, "alice");
    // Acknowledging an event marks its item reviewed for that user only.
    store.acknowledge_event(ids[1], "alice", t0).unwrap();
    assert!(store.review_item(items[0].id, "alice").unwrap().reviewed);
    assert!(!store.review_item(items[0].id, "bob").unwrap().reviewed);
    // Marking an item reviewed acknowledges its events.
    store.mark_reviewed(items[2].id, acker("bob"), t0).unwrap();
    assert!(store.event(ids[3]).unwrap().acknowledged);
    assert!(!store.review_item(items[2].id, "alice").unwrap().reviewed);
    // Mark all touches only what it names: the door's alerts before the busy stretch.
    let before_ms = t0 + 500 * S;
    let marked = store
        .mark_all_reviewed(
            acker("carol"),
            before_ms,
            Some("door"),
            Some(Severity::Alert),
            t0,
        )
        .unwrap();
    assert_eq!(marked, vec![items[0].id]);
    let seen: Vec<bool> = all_items(&store, "carol")
        .iter()
        .map(|i| i.reviewed)
        .collect();
    assert_eq!(seen, vec![true, false, false, false, false, false]);
    let q = ReviewQuery::default();
    let counts = store.unreviewed_counts(&q, "carol").unwrap();
    assert_eq!(
        counts,
        vec![
            (Severity::Alert, 3),
            (Severity::Detection, 1),
            (Severity::Motion, 1)
        ]
    );
    assert!(store.review_item(99_999, "carol").is_err());
    assert!(store.mark_reviewed(99_999, acker("carol"), t0).is_err());
}

#[test]
fn the_same_items_come_back_after_the_index_is_lost() {
    let dir = common::temp_dir();
    let t0 = t0();
    let before: Vec<_> = {
        let store = open(dir.path());
        busy_day(&store, t0);
        store.close_due_review_items(t0 + 2 * 86_400_000).unwrap();
        all_items(&store, "alice")
    };
    std::fs::remove_file(dir.path().join("index.db")).unwrap();
    let _ = std::fs::remove_file(dir.path().join("index.db-wal"));
    let _ = std::fs::remove_file(dir.path().join("index.db-shm"));
    let (store, report) = Store::open(config(dir.path()), MasterKey::from_bytes([3; 32])).unwrap();
    assert_eq!(report.snapshots_relinked, 56, "{report:?}");
    assert_eq!(report.events_placed, 56, "{report:?}");
    let after = all_items(&store, "alice");
    let shape = |items: &[ReviewItem]| -> Vec<_> {
        items
            .iter()
            .map(|i| {
                (
                    i.camera_id.clone(),
                    i.start_ms,
                    i.end_ms,
                    i.severity,
                    i.events,
                    i.cut,
                    i.labels.clone(),
                )
            })
            .collect()
    };
    assert_eq!(shape(&after), shape(&before));
}

/// A reviewer whose marks acknowledge (an operator or an admin).
fn acker(name: &str) -> sentrix::store::Reviewer<'_> {
    sentrix::store::Reviewer {
        name,
        acknowledges: true,
    }
}
