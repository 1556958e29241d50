//! The index's schema and its versions. `schema.sql` is the current schema, and a new
//! database is made from it alone. An older one (its `PRAGMA user_version` below
//! `CURRENT_VERSION`) is first copied beside itself as `<db>.v<N>.bak` (0600), then brought
//! up one numbered step at a time (`v2-….sql` takes version 1 to 2), each step in a
//! transaction with its new version number. A database written by a newer sentrix is
//! refused, untouched: running old code on a newer schema is undefined behaviour, not a
//! downgrade. `upgrade_test.rs` checks that every old version, upgraded, equals a fresh
//! database in tables, columns, indexes, triggers and rows.

#[cfg(test)]
mod upgrade_test;

use rusqlite::Connection;
use std::path::{Path, PathBuf};

/// The schema version `schema.sql` describes and this build writes.
pub const CURRENT_VERSION: u32 = 13;

/// The current schema, for a new database.
pub const SCHEMA_SQL: &str = include_str!("schema.sql");

/// `STEPS[i]` takes a database from version `i` to `i + 1` (step 0 makes version 1, the
/// first schema that shipped). Never edit a step that has shipped: add one.
pub const STEPS: [&str; CURRENT_VERSION as usize] = [
    include_str!("v1-initial.sql"),
    include_str!("v2-event-snapshots.sql"),
    include_str!("v3-users.sql"),
    include_str!("v4-known-devices.sql"),
    include_str!("v5-continuous.sql"),
    include_str!("v6-meta.sql"),
    include_str!("v7-tokens-outbox.sql"),
    include_str!("v8-offsite.sql"),
    include_str!("v9-outbox-rejected.sql"),
    include_str!("v10-scrub.sql"),
    include_str!("v11-scene-change.sql"),
    include_str!("v12-review.sql"),
    include_str!("v13-managed-cameras.sql"),
];

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(
        "{path} has index schema version {found}, written by a newer sentrix; this one \
         reads version {supported} at most. It was left untouched: run the newer sentrix \
         again, or restore the backup the upgrade left beside it ({path}.v{supported}.bak)"
    )]
    Newer {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("could not copy {path} to {backup} before upgrading it: {error}")]
    Backup {
        path: PathBuf,
        backup: PathBuf,
        error: String,
    },
    #[error("index schema step to version {version}: {error}")]
    Step {
        version: u32,
        error: rusqlite::Error,
    },
    #[error("index schema: {0}")]
    Db(#[from] rusqlite::Error),
}

/// What `prepare` did, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    Created,
    Current,
    Upgraded { from: u32, backup: PathBuf },
}

/// The database's schema version (`PRAGMA user_version`).
pub fn version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.pragma_query_value(None, "user_version", |r| r.get::<_, u32>("user_version"))
}

/// Brings the database at `path` (open as `conn`) to `CURRENT_VERSION`: creates it from
/// `schema.sql` when new, upgrades it step by step after a backup when older, and refuses
/// it, untouched, when newer.
pub fn prepare(conn: &Connection, path: &Path) -> Result<Prepared, SchemaError> {
    let found = refuse_newer(conn, path)?;
    if found == CURRENT_VERSION {
        return Ok(Prepared::Current);
    }
    if found == 0 && is_empty(conn)? {
        create(conn)?;
        return Ok(Prepared::Created);
    }
    let backup = backup(conn, path, found)?;
    upgrade(conn, found)?;
    Ok(Prepared::Upgraded {
        from: found,
        backup,
    })
}

/// The database's version, or the error that names both versions when a newer sentrix
/// wrote it.
pub fn refuse_newer(conn: &Connection, path: &Path) -> Result<u32, SchemaError> {
    let found = version(conn)?;
    if found > CURRENT_VERSION {
        return Err(SchemaError::Newer {
            path: path.to_path_buf(),
            found,
            supported: CURRENT_VERSION,
        });
    }
    Ok(found)
}

/// A new database: the whole current schema in one transaction.
pub fn create(conn: &Connection) -> rusqlite::Result<()> {
    let tx = conn.unchecked_transaction()?;
    tx.execute_batch(SCHEMA_SQL)?;
    tx.pragma_update(None, "user_version", CURRENT_VERSION)?;
    tx.commit()
}

/// Runs the steps from version `from` to the current one, each in its own transaction
/// that also records the version it reached.
pub fn upgrade(conn: &Connection, from: u32) -> Result<(), SchemaError> {
    for (i, sql) in STEPS.iter().enumerate().skip(from as usize) {
        let version = i as u32 + 1;
        let step = |e| SchemaError::Step { version, error: e };
        let tx = conn.unchecked_transaction().map_err(step)?;
        tx.execute_batch(sql).map_err(step)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(step)?;
        tx.commit().map_err(step)?;
    }
    Ok(())
}

fn is_empty(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row("SELECT COUNT(*) = 0 AS empty FROM sqlite_master", [], |r| {
        r.get("empty")
    })
}

/// Copies the database (with what its WAL holds) to `<path>.v<version>.bak`, 0600. An
/// existing backup of the same version is kept: it is the older copy of that version.
fn backup(conn: &Connection, path: &Path, version: u32) -> Result<PathBuf, SchemaError> {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".v{version}.bak"));
    let backup = PathBuf::from(name);
    if backup.exists() {
        return Ok(backup);
    }
    let failed = |error: String| SchemaError::Backup {
        path: path.to_path_buf(),
        backup: backup.clone(),
        error,
    };
    // Created empty with mode 0600 first: VACUUM INTO fills an empty file and keeps its mode.
    {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&backup)
            .map_err(|e| failed(e.to_string()))?;
    }
    let target = backup
        .to_str()
        .ok_or_else(|| failed("path is not UTF-8".into()))?;
    if let Err(e) = conn.execute("VACUUM INTO ?1", [target]) {
        let _ = std::fs::remove_file(&backup);
        return Err(failed(e.to_string()));
    }
    Ok(backup)
}
