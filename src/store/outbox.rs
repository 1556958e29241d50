//! The notification outbox, in the index database: a message is written here before its
//! first attempt and marked once its target acknowledged it, so a crash or a target that
//! is down loses nothing (notify/outbox.rs runs the deliveries). Also the Home Assistant
//! discovery topics an MQTT target has published, so it can clear removed ones.

use super::{Store, StoreError};
use rusqlite::{OptionalExtension, named_params};

// The statements this file runs (named parameters, bound with named_params!).
const INSERT_OUTBOX: &str = "INSERT INTO outbox (target, delivery_id, event_id, kind, payload,
    created_ms, next_attempt_ms) VALUES (:target, :delivery_id, :event_id, :kind, :payload,
    :now_ms, :now_ms)";
const OUTBOX_DUE: &str = "SELECT id, target, delivery_id, event_id, kind, payload, created_ms,
    attempts FROM outbox WHERE target = :target AND state = 'pending'
    AND next_attempt_ms <= :now_ms ORDER BY id LIMIT :limit";
const OUTBOX_NEXT_DUE: &str = "SELECT MIN(next_attempt_ms) AS next_attempt_ms FROM outbox
    WHERE target = :target AND state = 'pending'";
const OUTBOX_DELIVERED: &str = "UPDATE outbox SET state = 'delivered', done_ms = :now_ms,
    attempts = attempts + 1, last_error = '' WHERE id = :id AND state = 'pending'";
const OUTBOX_RETRY: &str = "UPDATE outbox SET attempts = attempts + 1,
    next_attempt_ms = :next_ms, last_error = :error WHERE id = :id AND state = 'pending'";
/// The target refused the message for good: no more attempts.
const OUTBOX_REJECTED: &str = "UPDATE outbox SET state = 'rejected', done_ms = :now_ms,
    attempts = attempts + 1, last_error = :error WHERE id = :id AND state = 'pending'";
const OUTBOX_EXPIRE: &str = "UPDATE outbox SET state = 'expired', done_ms = :now_ms
    WHERE state = 'pending' AND created_ms < :before_ms RETURNING target";
const OUTBOX_PRUNE: &str = "DELETE FROM outbox WHERE state != 'pending' AND done_ms < :before_ms";
const OUTBOX_PENDING: &str =
    "SELECT COUNT(*) AS pending FROM outbox WHERE target = :target AND state = 'pending'";
const SELECT_MQTT_DISCOVERY: &str = "SELECT topic FROM mqtt_discovery WHERE target = :target";
const INSERT_MQTT_DISCOVERY: &str =
    "INSERT OR IGNORE INTO mqtt_discovery (target, topic) VALUES (:target, :topic)";
const DELETE_MQTT_DISCOVERY: &str =
    "DELETE FROM mqtt_discovery WHERE target = :target AND topic = :topic";
const INSERT_SETTING_IF_MISSING: &str =
    "INSERT OR IGNORE INTO settings (key, value) VALUES (:key, :value)";

/// A message waiting for its target.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub id: i64,
    pub target: String,
    /// The receiver's idempotency key (the same on every attempt).
    pub delivery_id: String,
    pub event_id: Option<i64>,
    /// start, update or end.
    pub kind: String,
    /// The event notice as JSON.
    pub payload: String,
    pub created_ms: i64,
    /// Attempts made so far.
    pub attempts: i64,
}

/// A message to write.
pub struct NewMessage<'a> {
    pub target: &'a str,
    pub delivery_id: &'a str,
    pub event_id: Option<i64>,
    pub kind: &'a str,
    pub payload: &'a str,
}

impl Store {
    /// Writes the messages of one event notice in one transaction (one sync, and all or
    /// none of them).
    pub fn outbox_add(&self, messages: &[NewMessage<'_>], now_ms: i64) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for m in messages {
            tx.execute(
                INSERT_OUTBOX,
                named_params! {":target": m.target, ":delivery_id": m.delivery_id,
                ":event_id": m.event_id, ":kind": m.kind, ":payload": m.payload, ":now_ms": now_ms},
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The oldest `limit` messages of `target` due at `now_ms`.
    pub fn outbox_due(
        &self,
        target: &str,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(OUTBOX_DUE)?;
        let rows = stmt.query_map(
            named_params! {":target": target, ":now_ms": now_ms, ":limit": limit},
            |r| {
                Ok(OutboxRow {
                    id: r.get("id")?,
                    target: r.get("target")?,
                    delivery_id: r.get("delivery_id")?,
                    event_id: r.get("event_id")?,
                    kind: r.get("kind")?,
                    payload: r.get("payload")?,
                    created_ms: r.get("created_ms")?,
                    attempts: r.get("attempts")?,
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// When `target`'s next pending message is due, if it has one.
    pub fn outbox_next_due(&self, target: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn()
            .query_row(OUTBOX_NEXT_DUE, named_params! {":target": target}, |r| {
                r.get("next_attempt_ms")
            })
            .optional()?
            .flatten())
    }

    pub fn outbox_pending(&self, target: &str) -> Result<i64, StoreError> {
        Ok(self
            .conn()
            .query_row(OUTBOX_PENDING, named_params! {":target": target}, |r| {
                r.get("pending")
            })?)
    }

    pub fn outbox_delivered(&self, id: i64, now_ms: i64) -> Result<(), StoreError> {
        self.conn().execute(
            OUTBOX_DELIVERED,
            named_params! {":id": id, ":now_ms": now_ms},
        )?;
        Ok(())
    }

    pub fn outbox_retry(&self, id: i64, next_ms: i64, error: &str) -> Result<(), StoreError> {
        self.conn().execute(
            OUTBOX_RETRY,
            named_params! {":id": id, ":next_ms": next_ms, ":error": error},
        )?;
        Ok(())
    }

    /// The target refused the message for good: it is not tried again.
    pub fn outbox_rejected(&self, id: i64, now_ms: i64, error: &str) -> Result<(), StoreError> {
        self.conn().execute(
            OUTBOX_REJECTED,
            named_params! {":id": id, ":now_ms": now_ms, ":error": error},
        )?;
        Ok(())
    }

    /// Gives up on messages created before `before_ms`; returns the target of each, and
    /// forgets finished messages older than `prune_before_ms`.
    pub fn outbox_expire(
        &self,
        before_ms: i64,
        prune_before_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let targets = {
            let mut stmt = conn.prepare_cached(OUTBOX_EXPIRE)?;
            let rows = stmt.query_map(
                named_params! {":before_ms": before_ms, ":now_ms": now_ms},
                |r| r.get("target"),
            )?;
            rows.collect::<Result<Vec<String>, _>>()?
        };
        conn.execute(OUTBOX_PRUNE, named_params! {":before_ms": prune_before_ms})?;
        Ok(targets)
    }

    pub fn mqtt_discovery_topics(&self, target: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(SELECT_MQTT_DISCOVERY)?;
        let rows = stmt.query_map(named_params! {":target": target}, |r| r.get("topic"))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn mqtt_discovery_set(
        &self,
        target: &str,
        topic: &str,
        present: bool,
    ) -> Result<(), StoreError> {
        let sql = match present {
            true => INSERT_MQTT_DISCOVERY,
            false => DELETE_MQTT_DISCOVERY,
        };
        self.conn()
            .execute(sql, named_params! {":target": target, ":topic": topic})?;
        Ok(())
    }

    /// This box's id: 16 hex digits made on first use and kept in the index (MQTT client
    /// and device ids; off-site prefixes).
    pub fn box_id(&self) -> Result<String, StoreError> {
        if let Some(id) = self.setting("box_id")? {
            return Ok(id);
        }
        let mut raw = [0u8; 8];
        getrandom::getrandom(&mut raw).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        self.conn().execute(
            INSERT_SETTING_IF_MISSING,
            named_params! {":key": "box_id", ":value": id},
        )?;
        Ok(self.setting("box_id")?.unwrap_or(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MasterKey, RetentionPolicy, StoreConfig};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// Due messages come oldest first; a retry waits; delivered ones are never due again;
    /// expiry gives up on old pending ones (naming their targets) and forgets old finished
    /// ones.
    #[test]
    fn outbox_rows_go_due_retry_deliver_and_expire() -> TestResult {
        let dir = tempfile::tempdir()?;
        let config = StoreConfig {
            recordings_dir: dir.path().join("rec"),
            database: dir.path().join("index.db"),
            chunk_size: crate::store::container::DEFAULT_CHUNK_SIZE,
            retention: RetentionPolicy::KEEP_ALL,
            offsite_uploaded_first: false,
            review: Default::default(),
        };
        let store = Store::open(config, MasterKey::random()?)?.0;
        let add = |id: &str, at: i64| {
            let m = NewMessage {
                target: "hook",
                delivery_id: id,
                event_id: Some(1),
                kind: "start",
                payload: "{}",
            };
            store.outbox_add(&[m], at)?;
            // Its id: the newest row.
            store
                .outbox_due("hook", i64::MAX, 10)
                .map(|r| r.iter().map(|r| r.id).max().unwrap_or(0))
        };
        let (a, b, c) = (add("a", 1_000)?, add("b", 2_000)?, add("c", 100_000)?);
        let due = |now| {
            store
                .outbox_due("hook", now, 10)
                .map(|r| r.iter().map(|r| r.id).collect::<Vec<_>>())
        };
        assert_eq!(due(3_000)?, vec![a, b]);
        assert!(store.outbox_due("other", 3_000, 10)?.is_empty());
        store.outbox_retry(a, 50_000, "down")?;
        store.outbox_delivered(b, 3_000)?;
        assert_eq!(due(10_000)?, Vec::<i64>::new());
        assert_eq!(store.outbox_next_due("hook")?, Some(50_000));
        assert_eq!(store.outbox_pending("hook")?, 2);
        // Pending messages created before 10 s expire: only a; b is delivered, c is young.
        assert_eq!(
            store.outbox_expire(10_000, 0, 200_000)?,
            vec!["hook".to_string()]
        );
        assert_eq!(due(200_000)?, vec![c]);
        // Finished rows older than the prune time are forgotten (a expired at 200 s).
        store.outbox_expire(0, 300_000, 300_000)?;
        assert_eq!(store.outbox_pending("hook")?, 1);
        Ok(())
    }
}
