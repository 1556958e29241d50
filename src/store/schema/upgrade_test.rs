//! Upgrade and compare: for every old schema version, a database built from the steps up
//! to it and filled with the rows that version can hold is upgraded through `prepare`
//! (as `sentrix run` opens it), given the rows of the later versions, and compared with a
//! database made from `schema.sql` holding the same rows: tables, columns, CHECK
//! constraints, foreign keys, indexes, triggers and every row. Then the backups. (The
//! refusal of a database from a newer sentrix is tested through `db::open`, in db.rs.)

use super::*;
use rusqlite::types::Value;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

/// Rows a database of at least `version` can hold, inserted naming only the columns that
/// version has: the columns added later take their defaults, in the upgraded database as
/// in the fresh one.
const ROWS: &[(u32, &str)] = &[
    (
        1,
        "INSERT INTO cameras (id, name) VALUES ('porch', 'Porch'), ('yard', '');
         INSERT INTO clips (id, camera_id, path, start_ms, end_ms, duration_ms, frames,
             plain_bytes, file_bytes, codec, width, height, labels, pre_roll_ms,
             post_roll_ms, state, key_id)
         VALUES (1, 'porch', 'porch/1.mp4.sntx', 1000, 9000, 8000, 200, 4000, 4400, 'h264',
             640, 360, 'person,car', 2000, 3000, 'complete', 'k1'),
             (2, 'yard', 'yard/2.mp4.sntx', 5000, 6000, 1000, 25, 900, 990, 'h265', 1920,
             1080, '', 0, 0, 'truncated', 'k1');
         INSERT INTO thumbnails (clip_id, path, file_bytes) VALUES (1, 'porch/1.jpg.sntx', 77);
         INSERT INTO events (id, camera_id, label, start_ms, end_ms, max_score, box, clip_id,
             snapshot_path, acknowledged)
         VALUES (1, 'porch', 'person', 1500, 2500, 0.875, '[0.1,0.2,0.3,0.4]', 1,
             'porch/e1.jpg.sntx', 1),
             (2, 'yard', 'car', 5200, NULL, 0.5, '', NULL, NULL, 0);
         INSERT INTO garbage (path) VALUES ('porch/old.mp4.sntx');",
    ),
    (
        2,
        "INSERT INTO events (id, camera_id, label, start_ms, snapshot_path, snapshot_bytes)
         VALUES (3, 'porch', 'dog', 7000, 'porch/e3.jpg.sntx', 1234);",
    ),
    (
        3,
        "INSERT INTO users (name, role, phc, created_ms)
         VALUES ('alice', 'admin', '$pbkdf2-sha256$i=600000$c2FsdA$aGFzaA', 11),
             ('bob', 'viewer', '$pbkdf2-sha256$i=600000$c2FsdA$aGFzaB', 12);
         INSERT INTO login_failures (kind, subject, failures, last_ms, locked_until_ms)
         VALUES ('user', 'bob', 3, 100, 0), ('ip', '192.0.2.7', 5, 200, 900);",
    ),
    (
        4,
        "INSERT INTO known_devices (token_hash, user, created_ms, last_used_ms)
         VALUES ('d1', 'alice', 20, 30);
         INSERT INTO login_failures (kind, subject, failures, last_ms)
         VALUES ('device', 'd1', 1, 40);
         UPDATE clips SET damage = 'tag mismatch in chunk 3' WHERE id = 2;",
    ),
    (
        5,
        "INSERT INTO clips (id, camera_id, path, start_ms, end_ms, duration_ms, plain_bytes,
             file_bytes, state, key_id, kind, run_start_ms, timescale, media_ticks,
             init_bytes, tier)
         VALUES (3, 'yard', 'yard/seg-3.mp4.sntx', 60000, 120000, 60000, 80000, 88000,
             'complete', 'k2', 'segment', 60000, 90000, 5400000, 812, 0);
         INSERT INTO events (id, camera_id, label, start_ms, end_ms, keep)
         VALUES (4, 'yard', 'person', 61000, 62000, 1);",
    ),
    (
        6,
        "INSERT INTO meta (key, value) VALUES ('verified_ms', 1700000000000);",
    ),
    (
        7,
        "INSERT INTO api_tokens (name, token_hash, role, scopes, created_ms, expires_ms)
         VALUES ('ha', 'h1', 'viewer', 'events:read clips:read', 50, NULL);
         INSERT INTO outbox (id, target, delivery_id, event_id, kind, payload, created_ms,
             next_attempt_ms)
         VALUES (1, 'mqtt', 'del-1', 1, 'start', '{\"id\":1}', 60, 60);
         INSERT INTO settings (key, value) VALUES ('armed', 'home');
         INSERT INTO mqtt_discovery (target, topic) VALUES ('mqtt', 'homeassistant/x/config');",
    ),
    (
        8,
        "INSERT INTO offsite_clips (clip_id, state, sha256, object_key, queued_ms, uploaded_ms)
         VALUES (1, 'uploaded', 'ab12', 'porch/1.mp4.sntx', 70, 80);",
    ),
    (
        9,
        "INSERT INTO outbox (id, target, delivery_id, kind, payload, created_ms,
             next_attempt_ms, attempts, last_error, state, done_ms)
         VALUES (2, 'hook', 'del-2', 'end', '{}', 90, 90, 1, 'answered 401', 'rejected', 91);",
    ),
    (
        10,
        "UPDATE clips SET scrubbed_ms = 95, lost_ms = 1500 WHERE id = 1;
         INSERT INTO damaged_files (path, clip_id, kind, found_ms, found_by, problem, outcome)
         VALUES ('porch/1.mp4.sntx', 1, 'clip', 96, 'scrub', 'chunk 3 does not authenticate',
             'salvaged: the last 1.5 s were lost');",
    ),
    (11, "UPDATE events SET scene_change = 1 WHERE id = 1;"),
    (
        12,
        "INSERT INTO review_items (id, camera_id, start_ms, end_ms, severity, cut)
         VALUES (1, 'porch', 1500, 2500, 'alert', 0);
         UPDATE events SET review_id = 1, zones = 'drive,path' WHERE id = 1;
         INSERT INTO review_seen (review_id, user, seen_ms) VALUES (1, 'alice', 3000);",
    ),
    (
        13,
        "INSERT INTO managed_cameras (id, spec, password, created_ms, updated_ms)
         VALUES ('gate', '{\"id\":\"gate\"}', X'00', 100, 101);
         INSERT INTO camera_areas (camera_id, zones, masks, updated_ms)
         VALUES ('porch', '[]', '[]', 102);
         INSERT INTO users (name, role, phc, created_ms)
         VALUES ('olive', 'operator', '$pbkdf2-sha256$i=600000$c2FsdA$aGFzaC', 13);
         INSERT INTO api_tokens (name, token_hash, role, scopes, created_ms)
         VALUES ('ops', 'h2', 'operator', 'events:read operate', 103);",
    ),
];

fn insert_rows(conn: &Connection, versions: std::ops::RangeInclusive<u32>) {
    for (v, sql) in ROWS.iter().filter(|(v, _)| versions.contains(v)) {
        conn.execute_batch(sql)
            .unwrap_or_else(|e| panic!("rows of version {v}: {e}"));
    }
}

/// A database at `version`, built from the steps alone, with its rows.
fn old_database(path: &Path, version: u32) -> Connection {
    let conn = Connection::open(path).unwrap();
    for (i, step) in STEPS.iter().take(version as usize).enumerate() {
        conn.execute_batch(step)
            .unwrap_or_else(|e| panic!("step {}: {e}", i + 1));
    }
    conn.pragma_update(None, "user_version", version).unwrap();
    insert_rows(&conn, 1..=version);
    conn
}

/// The same rows in a database made from schema.sql.
fn fresh_database(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    assert_eq!(prepare(&conn, path).unwrap(), Prepared::Created);
    insert_rows(&conn, 1..=CURRENT_VERSION);
    conn
}

fn collapse_spaces(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every `CHECK (…)` of a table's SQL (the pragmas do not show them), spaces collapsed.
fn checks(sql: &str) -> Vec<String> {
    let sql = collapse_spaces(sql);
    let mut found = Vec::new();
    let mut rest = sql.as_str();
    while let Some(at) = rest.find("CHECK (") {
        let body = &rest[at + "CHECK (".len()..];
        let mut depth = 1;
        let end = body
            .char_indices()
            .find_map(|(i, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                (depth == 0).then_some(i)
            })
            .expect("balanced CHECK");
        found.push(body[..end].to_string());
        rest = &body[end..];
    }
    found.sort();
    found
}

fn pragma_rows(conn: &Connection, pragma: &str, name: &str) -> Vec<String> {
    let mut stmt = conn
        .prepare(&format!("SELECT * FROM pragma_{pragma}(?1)"))
        .unwrap();
    let n = stmt.column_count();
    let mut out: Vec<String> = stmt
        .query_map([name], |r| {
            (0..n)
                .map(|i| r.get::<_, Value>(i).map(|v| format!("{v:?}")))
                .collect::<rusqlite::Result<Vec<_>>>()
                .map(|v| v.join("|"))
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    if pragma == "index_list" {
        // Its first column is a sequence number that depends on creation order.
        out = out
            .iter()
            .map(|r| r.split_once('|').map_or(r.clone(), |(_, rest)| rest.into()))
            .collect();
        out.sort();
    }
    out
}

/// Everything about the schema that the code relies on, by object name.
fn describe(conn: &Connection) -> BTreeMap<String, Vec<String>> {
    let mut stmt = conn
        .prepare(
            "SELECT type, name, COALESCE(sql, '') AS sql FROM sqlite_master
             WHERE name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .unwrap();
    let objects: Vec<(String, String, String)> = stmt
        .query_map([], |r| Ok((r.get("type")?, r.get("name")?, r.get("sql")?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let mut out = BTreeMap::new();
    for (kind, name, sql) in objects {
        let mut facts = vec![kind.clone()];
        match kind.as_str() {
            "table" => {
                for pragma in ["table_xinfo", "foreign_key_list", "index_list"] {
                    facts.extend(pragma_rows(conn, pragma, &name));
                }
                facts.extend(checks(&sql));
            }
            "index" => {
                facts.extend(pragma_rows(conn, "index_xinfo", &name));
                facts.push(collapse_spaces(&sql));
            }
            _ => facts.push(collapse_spaces(&sql)),
        }
        out.insert(name, facts);
    }
    out
}

/// Every row of every table, with its column names, sorted.
fn dump(conn: &Connection) -> BTreeMap<String, Vec<String>> {
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get("name"))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let mut out = BTreeMap::new();
    for table in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
        let rows = stmt
            .query_map([], |r| {
                let cells = (0..names.len())
                    .map(|i| Ok(format!("{}={:?}", names[i], r.get::<_, Value>(i)?)))
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(cells.join(", "))
            })
            .unwrap()
            .collect::<rusqlite::Result<Vec<_>>>()
            .unwrap();
        let mut rows = rows;
        rows.sort();
        out.insert(table, rows);
    }
    out
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn every_old_version_upgrades_to_what_schema_sql_makes() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = fresh_database(&dir.path().join("fresh.db"));
    let (want_schema, want_rows) = (describe(&fresh), dump(&fresh));
    assert_eq!(
        want_rows.values().filter(|r| r.is_empty()).count(),
        0,
        "every table has rows"
    );
    for version in 1..CURRENT_VERSION {
        let path = dir.path().join(format!("v{version}.db"));
        let conn = old_database(&path, version);
        let done = prepare(&conn, &path).unwrap_or_else(|e| panic!("v{version}: {e}"));
        let backup = dir.path().join(format!("v{version}.db.v{version}.bak"));
        assert_eq!(
            done,
            Prepared::Upgraded {
                from: version,
                backup: backup.clone()
            }
        );
        assert_eq!(super::version(&conn).unwrap(), CURRENT_VERSION);
        insert_rows(&conn, version + 1..=CURRENT_VERSION);
        assert_eq!(
            describe(&conn),
            want_schema,
            "schema after upgrading v{version}"
        );
        assert_eq!(dump(&conn), want_rows, "rows after upgrading v{version}");

        // The backup is the database as it was: its version and its rows, 0600.
        assert_eq!(mode(&backup), 0o600, "{}", backup.display());
        let old = Connection::open(&backup).unwrap();
        assert_eq!(super::version(&old).unwrap(), version);
        let reference = old_database(&dir.path().join(format!("ref{version}.db")), version);
        assert_eq!(dump(&old), dump(&reference), "backup of v{version}");
    }
}

#[test]
fn the_current_version_is_left_alone_and_a_second_open_makes_no_backup() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.db");
    let conn = fresh_database(&path);
    let before = dump(&conn);
    assert_eq!(prepare(&conn, &path).unwrap(), Prepared::Current);
    assert_eq!(dump(&conn), before);
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains(".bak"))
        .collect();
    assert!(files.is_empty(), "{files:?}");
}
