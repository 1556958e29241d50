//! Dashboard users and failed-login counters, in the index database (the store owns every
//! table). Passwords arrive here already hashed (auth/password.rs); lockout policy lives in
//! auth/, this file only counts and remembers.

use super::{Store, StoreError};
use rusqlite::{OptionalExtension, named_params};

// The statements this file runs (named parameters, bound with named_params!).
const INSERT_USER: &str = "INSERT OR IGNORE INTO users (name, role, phc, created_ms)
    VALUES (:name, :role, :phc, :created_ms)";
const SET_USER_PASSWORD: &str = "UPDATE users SET phc = :phc WHERE name = :name";
/// Never the last admin: the check and the delete are one statement.
const DELETE_USER_UNLESS_LAST_ADMIN: &str = "DELETE FROM users WHERE name = :name
    AND (role != 'admin' OR (SELECT COUNT(*) FROM users WHERE role = 'admin') > 1)";
const SELECT_USERS: &str = "SELECT name, role, created_ms FROM users ORDER BY name";
const SELECT_USER_CREDENTIALS: &str = "SELECT role, phc FROM users WHERE name = :name";
const SELECT_LOCKED_UNTIL: &str =
    "SELECT locked_until_ms FROM login_failures WHERE kind = :kind AND subject = :subject";
const SELECT_LOGIN_FAILURES: &str = "SELECT failures, last_ms, locked_until_ms
    FROM login_failures WHERE kind = :kind AND subject = :subject";
const UPSERT_LOGIN_FAILURES: &str =
    "INSERT INTO login_failures (kind, subject, failures, last_ms, locked_until_ms)
    VALUES (:kind, :subject, :failures, :last_ms, :locked_until_ms)
    ON CONFLICT (kind, subject) DO UPDATE SET failures = :failures, last_ms = :last_ms,
    locked_until_ms = :locked_until_ms";
const DELETE_LOGIN_FAILURES: &str =
    "DELETE FROM login_failures WHERE kind = :kind AND subject = :subject";
const COUNT_LOCKED: &str =
    "SELECT COUNT(*) AS locked FROM login_failures WHERE locked_until_ms > :now_ms";
const SELECT_LOCKED_ADDRESSES: &str = "SELECT subject, locked_until_ms FROM login_failures
    WHERE kind = 'ip' AND locked_until_ms > :now_ms ORDER BY locked_until_ms DESC LIMIT :limit";
/// Counters neither locked nor recent enough to count any more.
const PRUNE_LOGIN_FAILURES: &str = "DELETE FROM login_failures
    WHERE locked_until_ms <= :now_ms AND last_ms < :stale_before_ms";
/// Unlocks a user name and every known device of that user.
const DELETE_USER_LOCKS: &str = "DELETE FROM login_failures
    WHERE (kind = 'user' AND subject = :name)
    OR (kind = 'device' AND subject IN (SELECT token_hash FROM known_devices WHERE user = :name))";
const INSERT_DEVICE: &str = "INSERT INTO known_devices (token_hash, user, created_ms, last_used_ms)
    VALUES (:token_hash, :user, :now_ms, :now_ms)";
/// Keeps a user's `:keep` most recently used devices.
const TRIM_DEVICES: &str = "DELETE FROM known_devices WHERE user = :user AND token_hash NOT IN
    (SELECT token_hash FROM known_devices WHERE user = :user ORDER BY last_used_ms DESC LIMIT :keep)";
const SELECT_DEVICE_USER: &str = "SELECT user FROM known_devices WHERE token_hash = :token_hash";
const TOUCH_DEVICE: &str =
    "UPDATE known_devices SET last_used_ms = :now_ms WHERE token_hash = :token_hash";

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UserRow {
    pub name: String,
    /// `admin` or `viewer`.
    pub role: String,
    pub created_ms: i64,
}

/// What a failure counter is kept for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockKind {
    User,
    Ip,
    /// A known device (auth: lockouts from unknown devices do not bind it).
    Device,
}

impl LockKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Ip => "ip",
            Self::Device => "device",
        }
    }
}

/// A failure counter as it stands at some moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureCount {
    /// Failures within the window that still count.
    pub failures: u32,
    /// The lock's end, if locked now.
    pub locked_until_ms: Option<i64>,
}

impl Store {
    /// Adds a user; fails if the name is taken.
    pub fn add_user(
        &self,
        name: &str,
        role: &str,
        phc: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let n = self.conn().execute(
            INSERT_USER,
            named_params! {":name": name, ":role": role, ":phc": phc, ":created_ms": now_ms},
        )?;
        if n == 0 {
            return Err(StoreError::Invalid(format!("user {name:?} already exists")));
        }
        Ok(())
    }

    pub fn set_user_password(&self, name: &str, phc: &str) -> Result<(), StoreError> {
        let n = self.conn().execute(
            SET_USER_PASSWORD,
            named_params! {":name": name, ":phc": phc},
        )?;
        if n == 0 {
            return Err(StoreError::Invalid(format!("no user {name:?}")));
        }
        Ok(())
    }

    /// Removes `name`; Ok(false) when it is the last admin (kept: with no admin left,
    /// nobody could manage users from the dashboard). The check and the delete are one
    /// statement, so two admins removing each other at once cannot both succeed.
    pub fn remove_user(&self, name: &str) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .execute(DELETE_USER_UNLESS_LAST_ADMIN, named_params! {":name": name})?;
        Ok(n > 0)
    }

    pub fn users(&self) -> Result<Vec<UserRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(SELECT_USERS)?;
        let rows = stmt.query_map([], |r| {
            Ok(UserRow {
                name: r.get("name")?,
                role: r.get("role")?,
                created_ms: r.get("created_ms")?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// (role, PHC string) of `name`.
    pub fn user_credentials(&self, name: &str) -> Result<Option<(String, String)>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                SELECT_USER_CREDENTIALS,
                named_params! {":name": name},
                |r| Ok((r.get("role")?, r.get("phc")?)),
            )
            .optional()?)
    }

    /// Until when (ms) `subject` is locked, if it is at `now_ms`.
    pub fn locked_until(
        &self,
        kind: LockKind,
        subject: &str,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let until: Option<i64> = self
            .conn()
            .query_row(
                SELECT_LOCKED_UNTIL,
                named_params! {":kind": kind.as_str(), ":subject": subject},
                |r| r.get("locked_until_ms"),
            )
            .optional()?;
        Ok(until.filter(|&u| u > now_ms))
    }

    /// `subject`'s failures that still count at `now_ms` (within `window_ms`, or of a lock
    /// that has not run out), and its lock.
    pub fn login_failures(
        &self,
        kind: LockKind,
        subject: &str,
        now_ms: i64,
        window_ms: i64,
    ) -> Result<FailureCount, StoreError> {
        let row: Option<(i64, i64, i64)> = self
            .conn()
            .query_row(
                SELECT_LOGIN_FAILURES,
                named_params! {":kind": kind.as_str(), ":subject": subject},
                |r| {
                    Ok((
                        r.get("failures")?,
                        r.get("last_ms")?,
                        r.get("locked_until_ms")?,
                    ))
                },
            )
            .optional()?;
        Ok(match row {
            Some((n, _, until)) if until > now_ms => FailureCount {
                failures: n as u32,
                locked_until_ms: Some(until),
            },
            Some((n, last, 0)) if now_ms - last <= window_ms => FailureCount {
                failures: n as u32,
                locked_until_ms: None,
            },
            _ => FailureCount::default(),
        })
    }

    /// Forgets counters that no longer count (bounded table whatever names are tried).
    pub fn prune_login_failures(&self, now_ms: i64, window_ms: i64) -> Result<(), StoreError> {
        self.conn().execute(
            PRUNE_LOGIN_FAILURES,
            named_params! {":now_ms": now_ms, ":stale_before_ms": now_ms - window_ms},
        )?;
        Ok(())
    }

    /// Unlocks user `name` and its known devices (`sentrix user unlock`, the Users page).
    pub fn unlock_user(&self, name: &str) -> Result<(), StoreError> {
        self.conn()
            .execute(DELETE_USER_LOCKS, named_params! {":name": name})?;
        Ok(())
    }

    /// Addresses locked at `now_ms` with the end of each lock, latest first, at most `limit`.
    pub fn locked_addresses(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(SELECT_LOCKED_ADDRESSES)?;
        let rows = stmt.query_map(
            named_params! {":now_ms": now_ms, ":limit": limit as i64},
            |r| Ok((r.get("subject")?, r.get("locked_until_ms")?)),
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Remembers a device (by its token's hash) for `user`, keeping its `keep` latest.
    pub fn add_device(
        &self,
        user: &str,
        token_hash: &str,
        now_ms: i64,
        keep: usize,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            INSERT_DEVICE,
            named_params! {":token_hash": token_hash, ":user": user, ":now_ms": now_ms},
        )?;
        tx.execute(
            TRIM_DEVICES,
            named_params! {":user": user, ":keep": keep as i64},
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The user a known device belongs to (marking it used).
    pub fn device_user(&self, token_hash: &str, now_ms: i64) -> Result<Option<String>, StoreError> {
        let conn = self.conn();
        let user: Option<String> = conn
            .query_row(
                SELECT_DEVICE_USER,
                named_params! {":token_hash": token_hash},
                |r| r.get("user"),
            )
            .optional()?;
        if user.is_some() {
            conn.execute(
                TOUCH_DEVICE,
                named_params! {":token_hash": token_hash, ":now_ms": now_ms},
            )?;
        }
        Ok(user)
    }

    /// Counts a failure. Failures older than `window_ms` are forgotten; reaching
    /// `max_failures` locks the subject for `lock_ms`. Returns the lock's end, if locked.
    pub fn record_login_failure(
        &self,
        kind: LockKind,
        subject: &str,
        now_ms: i64,
        window_ms: i64,
        max_failures: u32,
        lock_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let prev: Option<(i64, i64, i64)> = tx
            .query_row(
                SELECT_LOGIN_FAILURES,
                named_params! {":kind": kind.as_str(), ":subject": subject},
                |r| {
                    Ok((
                        r.get("failures")?,
                        r.get("last_ms")?,
                        r.get("locked_until_ms")?,
                    ))
                },
            )
            .optional()?;
        let failures = match prev {
            // A lock that ran out, or failures long ago, start a fresh count.
            Some((n, last, until))
                if now_ms - last <= window_ms && (until == 0 || until > now_ms) =>
            {
                n + 1
            }
            _ => 1,
        };
        let until = if failures >= max_failures as i64 {
            now_ms + lock_ms
        } else {
            0
        };
        tx.execute(
            UPSERT_LOGIN_FAILURES,
            named_params! {
                ":kind": kind.as_str(),
                ":subject": subject,
                ":failures": failures,
                ":last_ms": now_ms,
                ":locked_until_ms": until,
            },
        )?;
        tx.commit()?;
        Ok((until > 0).then_some(until))
    }

    pub fn clear_login_failures(&self, kind: LockKind, subject: &str) -> Result<(), StoreError> {
        self.conn().execute(
            DELETE_LOGIN_FAILURES,
            named_params! {":kind": kind.as_str(), ":subject": subject},
        )?;
        Ok(())
    }

    /// Subjects locked now, for /metrics.
    pub fn active_lockouts(&self, now_ms: i64) -> Result<i64, StoreError> {
        Ok(self
            .conn()
            .query_row(COUNT_LOCKED, named_params! {":now_ms": now_ms}, |r| {
                r.get("locked")
            })?)
    }
}
