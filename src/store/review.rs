//! Review items: a camera's overlapping activity as one thing to review, instead of one
//! row per tracked object.
//!
//! - An event is placed when it is inserted, in the same transaction: it joins the
//!   camera's latest item when it starts within `merge_gap_ms` of that item's reach (the
//!   latest end of its events, or "now" while one is open) and before the item's start plus
//!   `max_item_ms`; otherwise it starts a new item. A damaged-file notice always stands
//!   alone.
//! - An item closes (`close_due`, called every second by app/review.rs) once nothing can
//!   join it any more: `CLOSE_SLACK_MS` after its reach plus the gap, or after its cap. An
//!   item whose activity went on past the cap is `cut`, and ends at the cap; the events
//!   still open go on in it, and newer events start the next item.
//! - Its severity is the highest of its events': `alert` when an event matches one of
//!   `review.alerts` (by camera, label and zone), `detection` for any other object,
//!   `motion` when it holds only motion.
//! - Labels, zones, score and the best snapshot are read from its events, so they never
//!   drift from them. The reviewed state is per user (`review_seen`); marking an item
//!   reviewed acknowledges its events, and acknowledging an event marks its item reviewed
//!   for that user (events.rs).
//! - `rebuild` places every event without an item, oldest first, with the same rule: the
//!   sweep runs it after the index was rebuilt from the files (and an upgrade, for the
//!   events of older versions).

use super::{Store, StoreError, not_found_as};
use rusqlite::{Connection, OptionalExtension, named_params};

// The statements this file runs (named parameters, bound with named_params!).
const LATEST_ITEM: &str = "SELECT id, start_ms, end_ms, severity FROM review_items
    WHERE camera_id = :camera ORDER BY start_ms DESC, id DESC LIMIT 1";
/// The latest end of an item's events; an open event counts as never ending.
const ITEM_REACH: &str = "SELECT MAX(COALESCE(end_ms, 9000000000000000)) AS reach
    FROM events WHERE review_id = :id";
const INSERT_ITEM: &str = "INSERT INTO review_items (camera_id, start_ms, end_ms, severity)
    VALUES (:camera, :start_ms, NULL, :severity)";
const RAISE_SEVERITY: &str = "UPDATE review_items SET severity = :severity WHERE id = :id";
const SET_EVENT_ITEM: &str = "UPDATE events SET review_id = :item WHERE id = :event";
const OPEN_ITEMS: &str = "SELECT r.id, r.start_ms, (SELECT MAX(COALESCE(e.end_ms,
    9000000000000000)) FROM events e WHERE e.review_id = r.id) AS reach
    FROM review_items r WHERE r.end_ms IS NULL";
const CLOSE_ITEM: &str = "UPDATE review_items SET end_ms = :end_ms, cut = :cut WHERE id = :id";
const UNPLACED_EVENTS: &str = "SELECT id, camera_id, label, start_ms, zones FROM events
    WHERE review_id IS NULL ORDER BY camera_id, start_ms, id";
const DELETE_EMPTY_ITEMS: &str = "DELETE FROM review_items WHERE end_ms IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM events e WHERE e.review_id = review_items.id)";
const SELECT_ITEM: &str = "SELECT r.id, r.camera_id, r.start_ms, r.end_ms, r.severity, r.cut,
    (SELECT group_concat(DISTINCT e.label) FROM events e WHERE e.review_id = r.id) AS labels,
    (SELECT group_concat(e.zones) FROM events e WHERE e.review_id = r.id AND e.zones != '')
        AS zones,
    (SELECT MAX(e.max_score) FROM events e WHERE e.review_id = r.id) AS max_score,
    (SELECT COUNT(*) FROM events e WHERE e.review_id = r.id) AS events,
    (SELECT e.id FROM events e WHERE e.review_id = r.id AND e.snapshot_path IS NOT NULL
        ORDER BY e.label = 'motion', e.max_score DESC, e.id LIMIT 1) AS snapshot_event_id,
    EXISTS (SELECT 1 FROM review_seen s WHERE s.review_id = r.id AND s.user = :user)
        AS reviewed
    FROM review_items r";
const ITEMS_MATCHING: &str = "WHERE (:camera IS NULL OR r.camera_id = :camera)
    AND (:severity IS NULL OR r.severity = :severity)
    AND (:hide_motion = 0 OR r.severity != 'motion')
    AND r.start_ms >= :since_ms AND r.start_ms < :until_ms
    AND (:reviewed IS NULL OR EXISTS (SELECT 1 FROM review_seen s
        WHERE s.review_id = r.id AND s.user = :user) = :reviewed)
    ORDER BY r.start_ms DESC, r.id DESC LIMIT :limit";
const ITEM_BY_ID: &str = "WHERE r.id = :id";
/// Items of one severity, of all cameras or one (each an index-only range count), and
/// those per severity `user` reviewed: their difference is the badge, with no reviewed
/// probe per item.
const SEVERITY_COUNT: &str = "SELECT COUNT(*) AS items FROM review_items
    WHERE severity = :severity AND start_ms >= :since_ms AND start_ms < :until_ms";
const CAMERA_SEVERITY_COUNT: &str = "SELECT COUNT(*) AS items FROM review_items
    WHERE camera_id = :camera AND severity = :severity
    AND start_ms >= :since_ms AND start_ms < :until_ms";
const REVIEWED_COUNTS: &str = "SELECT r.severity, COUNT(*) AS items FROM review_seen s
    JOIN review_items r ON r.id = s.review_id WHERE s.user = :user
    AND (:camera IS NULL OR r.camera_id = :camera)
    AND r.start_ms >= :since_ms AND r.start_ms < :until_ms
    GROUP BY r.severity";
const MARK_SEEN: &str = "INSERT OR IGNORE INTO review_seen (review_id, user, seen_ms)
    VALUES (:id, :user, :now_ms)";
const ACK_ITEM_EVENTS: &str = "UPDATE events SET acknowledged = 1
    WHERE review_id = :id AND acknowledged = 0 RETURNING id";
const ITEMS_BEFORE: &str = "SELECT id FROM review_items r WHERE r.start_ms < :before_ms
    AND (:camera IS NULL OR r.camera_id = :camera)
    AND (:severity IS NULL OR r.severity = :severity)
    AND NOT EXISTS (SELECT 1 FROM review_seen s WHERE s.review_id = r.id AND s.user = :user)";
const UNREVIEWED_ALERTS: &str = "SELECT COUNT(*) AS items FROM review_items r
    WHERE r.camera_id = :camera AND r.severity = 'alert'
    AND NOT EXISTS (SELECT 1 FROM review_seen s WHERE s.review_id = r.id)";
const ITEM_OF_EVENT: &str = "SELECT review_id FROM events WHERE id = :id";

/// The label of a motion-only event (detect/tracker.rs uses this one).
pub const MOTION_LABEL: &str = "motion";

/// After an item can take no more events, wait this long before closing it, for events
/// that are inserted a little after they started (the detector's latency).
pub const CLOSE_SLACK_MS: i64 = 5000;
/// An open event's end, in SQL above.
const NEVER_MS: i64 = 9_000_000_000_000_000;

/// How much an item asks of its reviewer; ordered, highest last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Motion,
    Detection,
    Alert,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Alert, Severity::Detection, Severity::Motion];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Motion => "motion",
            Severity::Detection => "detection",
            Severity::Alert => "alert",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// One `review.alerts` rule: an event is an alert when its camera, label and zone match
/// (an empty list matches anything).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlertRule {
    pub cameras: Vec<String>,
    pub labels: Vec<String>,
    pub zones: Vec<String>,
}

/// How events become review items (config `review`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewPolicy {
    pub merge_gap_ms: i64,
    pub max_item_ms: i64,
    pub alerts: Vec<AlertRule>,
}

impl Default for ReviewPolicy {
    fn default() -> Self {
        Self {
            merge_gap_ms: 10_000,
            max_item_ms: 300_000,
            alerts: vec![AlertRule {
                labels: vec!["person".into(), "car".into()],
                ..AlertRule::default()
            }],
        }
    }
}

impl ReviewPolicy {
    /// The severity of one event.
    pub fn severity_of(&self, camera: &str, label: &str, zones: &[&str]) -> Severity {
        if label == MOTION_LABEL {
            return Severity::Motion;
        }
        let any_or =
            |list: &[String], f: &dyn Fn(&String) -> bool| list.is_empty() || list.iter().any(f);
        let alert = self.alerts.iter().any(|r| {
            any_or(&r.cameras, &|c| c == camera)
                && any_or(&r.labels, &|l| l == label)
                && any_or(&r.zones, &|z| zones.contains(&z.as_str()))
        });
        match alert {
            true => Severity::Alert,
            false => Severity::Detection,
        }
    }
}

/// A review item as the API shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReviewItem {
    pub id: i64,
    pub camera_id: String,
    pub start_ms: i64,
    /// None while open.
    pub end_ms: Option<i64>,
    pub severity: Severity,
    /// Closed by `review.max_item_seconds` while activity went on.
    pub cut: bool,
    pub labels: Vec<String>,
    pub zones: Vec<String>,
    pub max_score: f64,
    pub events: i64,
    /// The event whose snapshot stands for the item (the best-scored object's).
    pub snapshot_event_id: Option<i64>,
    /// By the user who asked.
    pub reviewed: bool,
}

impl ReviewItem {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        let list = |name: &str| -> rusqlite::Result<Vec<String>> {
            let text: Option<String> = r.get(name)?;
            let mut out: Vec<String> = text
                .unwrap_or_default()
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            out.sort();
            out.dedup();
            Ok(out)
        };
        let severity: String = r.get("severity")?;
        Ok(Self {
            id: r.get("id")?,
            camera_id: r.get("camera_id")?,
            start_ms: r.get("start_ms")?,
            end_ms: r.get("end_ms")?,
            severity: Severity::parse(&severity).unwrap_or(Severity::Detection),
            cut: r.get::<_, i64>("cut")? != 0,
            labels: list("labels")?,
            zones: list("zones")?,
            max_score: r.get::<_, Option<f64>>("max_score")?.unwrap_or(0.0),
            events: r.get("events")?,
            snapshot_event_id: r.get("snapshot_event_id")?,
            reviewed: r.get::<_, i64>("reviewed")? != 0,
        })
    }
}

/// A change to an item, for the dashboard's live feed and notifications.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReviewNotice {
    /// `new`, `update` or `end`.
    pub kind: &'static str,
    pub item: ReviewItem,
}

/// Where review notices go (app/review.rs sends, the dashboard and notifications read).
pub type ReviewBus = tokio::sync::broadcast::Sender<ReviewNotice>;

pub fn review_bus() -> ReviewBus {
    tokio::sync::broadcast::channel(256).0
}

/// The next notice of an optional bus subscription; never returns without one (so a
/// `select!` arm over a bus that is not there stays quiet).
pub async fn next_on<T: Clone>(
    rx: &mut Option<tokio::sync::broadcast::Receiver<T>>,
) -> Result<T, tokio::sync::broadcast::error::RecvError> {
    match rx.as_mut() {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

/// Which items to list: newest first.
#[derive(Debug, Clone, Default)]
pub struct ReviewQuery {
    pub camera: Option<String>,
    pub severity: Option<Severity>,
    /// Leave motion-only items out (the default view).
    pub hide_motion: bool,
    pub reviewed: Option<bool>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub limit: Option<u32>,
}

/// Puts event `event` (just inserted) in the camera's current item or a new one; returns
/// the item's id.
pub(crate) fn place_event(
    conn: &Connection,
    policy: &ReviewPolicy,
    event: &PlacedEvent<'_>,
) -> rusqlite::Result<i64> {
    let zones: Vec<&str> = event.zones.split(',').filter(|z| !z.is_empty()).collect();
    let severity = policy.severity_of(event.camera, event.label, &zones);
    let joined = match event.label == super::scrub::DAMAGED_LABEL {
        true => None,
        false => joinable_item(conn, policy, event.camera, event.start_ms)?,
    };
    let item = match joined {
        Some((id, had)) => {
            if severity > had {
                conn.prepare_cached(RAISE_SEVERITY)?
                    .execute(named_params! {":id": id, ":severity": severity.as_str()})?;
            }
            id
        }
        None => {
            conn.prepare_cached(INSERT_ITEM)?.execute(named_params! {
                ":camera": event.camera, ":start_ms": event.start_ms,
                ":severity": severity.as_str(),
            })?;
            conn.last_insert_rowid()
        }
    };
    conn.prepare_cached(SET_EVENT_ITEM)?
        .execute(named_params! {":item": item, ":event": event.id})?;
    Ok(item)
}

/// What `place_event` needs of an event.
pub(crate) struct PlacedEvent<'a> {
    pub id: i64,
    pub camera: &'a str,
    pub label: &'a str,
    pub start_ms: i64,
    pub zones: &'a str,
}

/// The camera's latest item and its severity, if an event starting at `start_ms` joins it.
fn joinable_item(
    conn: &Connection,
    policy: &ReviewPolicy,
    camera: &str,
    start_ms: i64,
) -> rusqlite::Result<Option<(i64, Severity)>> {
    let latest = conn
        .prepare_cached(LATEST_ITEM)?
        .query_row(named_params! {":camera": camera}, |r| {
            Ok((
                r.get::<_, i64>("id")?,
                r.get::<_, i64>("start_ms")?,
                r.get::<_, Option<i64>>("end_ms")?,
                r.get::<_, String>("severity")?,
            ))
        })
        .optional()?;
    let Some((id, item_start_ms, None, severity)) = latest else {
        return Ok(None);
    };
    if start_ms < item_start_ms || start_ms >= item_start_ms + policy.max_item_ms {
        return Ok(None);
    }
    let reach_ms: Option<i64> = conn
        .prepare_cached(ITEM_REACH)?
        .query_row(named_params! {":id": id}, |r| r.get("reach"))?;
    if start_ms > reach_ms.unwrap_or(item_start_ms) + policy.merge_gap_ms {
        return Ok(None);
    }
    Ok(Some((
        id,
        Severity::parse(&severity).unwrap_or(Severity::Motion),
    )))
}

/// When an open item closes, and how: (end_ms, cut), or None while events may still join.
fn closing(
    policy: &ReviewPolicy,
    start_ms: i64,
    reach_ms: i64,
    now_ms: i64,
) -> Option<(i64, bool)> {
    let cap_ms = start_ms.saturating_add(policy.max_item_ms);
    let joinable_until_ms = reach_ms.saturating_add(policy.merge_gap_ms).min(cap_ms);
    if now_ms < joinable_until_ms.saturating_add(CLOSE_SLACK_MS) {
        return None;
    }
    Some((reach_ms.min(cap_ms), reach_ms > cap_ms))
}

impl Store {
    /// How events become review items (set from the config at start and on reload).
    pub fn set_review_policy(&self, policy: ReviewPolicy) {
        *self.inner.review.write().unwrap_or_else(|p| p.into_inner()) = policy;
    }

    pub fn review_policy(&self) -> ReviewPolicy {
        self.inner
            .review
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Closes the items nothing can join any more; returns their ids.
    pub fn close_due_review_items(&self, now_ms: i64) -> Result<Vec<i64>, StoreError> {
        let policy = self.review_policy();
        self.with_room(|conn| close_due(conn, &policy, now_ms))
    }

    /// Places every event without an item (oldest first), then closes what is due.
    /// Returns how many events were placed.
    pub fn rebuild_review_items(&self, now_ms: i64) -> Result<usize, StoreError> {
        let policy = self.review_policy();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let placed = {
            let mut stmt = tx.prepare(UNPLACED_EVENTS)?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, i64>("id")?,
                    r.get::<_, String>("camera_id")?,
                    r.get::<_, String>("label")?,
                    r.get::<_, i64>("start_ms")?,
                    r.get::<_, String>("zones")?,
                ))
            })?;
            let events = rows.collect::<Result<Vec<_>, _>>()?;
            for (id, camera, label, start_ms, zones) in &events {
                let event = PlacedEvent {
                    id: *id,
                    camera,
                    label,
                    start_ms: *start_ms,
                    zones,
                };
                place_event(&tx, &policy, &event)?;
            }
            events.len()
        };
        close_due(&tx, &policy, now_ms)?;
        tx.commit()?;
        Ok(placed)
    }

    /// Deletes closed items none of whose events is left (retention took them).
    pub(crate) fn prune_empty_review_items(&self) -> Result<usize, StoreError> {
        Ok(self.conn().execute(DELETE_EMPTY_ITEMS, [])?)
    }

    /// One item, as `user` sees it.
    pub fn review_item(&self, id: i64, user: &str) -> Result<ReviewItem, StoreError> {
        let sql = format!("{SELECT_ITEM} {ITEM_BY_ID}");
        self.conn()
            .query_row(
                &sql,
                named_params! {":id": id, ":user": user},
                ReviewItem::from_row,
            )
            .map_err(|e| not_found_as(id, e))
    }

    /// Items matching `q`, newest first, as `user` sees them.
    pub fn review_items(&self, q: &ReviewQuery, user: &str) -> Result<Vec<ReviewItem>, StoreError> {
        let sql = format!("{SELECT_ITEM} {ITEMS_MATCHING}");
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            named_params! {
                ":camera": q.camera, ":severity": q.severity.map(Severity::as_str),
                ":reviewed": q.reviewed, ":user": user, ":hide_motion": q.hide_motion,
                ":since_ms": q.since_ms.unwrap_or(i64::MIN),
                ":until_ms": q.until_ms.unwrap_or(i64::MAX),
                ":limit": q.limit.unwrap_or(100),
            },
            ReviewItem::from_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Items `user` has not reviewed, per severity, among those `q` names (severity,
    /// reviewed and limit aside).
    pub fn unreviewed_counts(
        &self,
        q: &ReviewQuery,
        user: &str,
    ) -> Result<Vec<(Severity, i64)>, StoreError> {
        let (since_ms, until_ms) = (
            q.since_ms.unwrap_or(i64::MIN),
            q.until_ms.unwrap_or(i64::MAX),
        );
        let conn = self.conn();
        let seen: Vec<(String, i64)> = {
            let mut stmt = conn.prepare_cached(REVIEWED_COUNTS)?;
            let rows = stmt.query_map(
                named_params! {":camera": q.camera, ":user": user, ":since_ms": since_ms, ":until_ms": until_ms},
                |r| Ok((r.get::<_, String>("severity")?, r.get::<_, i64>("items")?)),
            )?;
            rows.collect::<Result<_, _>>()?
        };
        let mut out = Vec::new();
        for s in Severity::ALL {
            let sev = s.as_str();
            let all: i64 = match &q.camera {
                None => conn.prepare_cached(SEVERITY_COUNT)?.query_row(
                    named_params! {":severity": sev, ":since_ms": since_ms, ":until_ms": until_ms},
                    |r| r.get("items"),
                )?,
                Some(camera) => conn.prepare_cached(CAMERA_SEVERITY_COUNT)?.query_row(
                    named_params! {":camera": camera, ":severity": sev, ":since_ms": since_ms, ":until_ms": until_ms},
                    |r| r.get("items"),
                )?,
            };
            let reviewed = seen.iter().find(|(t, _)| t == sev).map_or(0, |c| c.1);
            out.push((s, all - reviewed));
        }
        Ok(out)
    }

    /// Alert items of `camera` nobody has reviewed (Home Assistant's sensor).
    pub fn unreviewed_alerts(&self, camera: &str) -> Result<i64, StoreError> {
        Ok(self
            .conn()
            .query_row(UNREVIEWED_ALERTS, named_params! {":camera": camera}, |r| {
                r.get("items")
            })?)
    }

    /// Marks item `id` reviewed by `who`, and acknowledges its events when `who` may.
    pub fn mark_reviewed(&self, id: i64, who: Reviewer, now_ms: i64) -> Result<(), StoreError> {
        let acked = {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let exists: Option<i64> = tx
                .query_row(
                    "SELECT id FROM review_items WHERE id = :id",
                    named_params! {":id": id},
                    |r| r.get("id"),
                )
                .optional()?;
            if exists.is_none() {
                return Err(StoreError::NotFound(id));
            }
            let acked = seen_and_acked(&tx, id, who, now_ms)?;
            tx.commit()?;
            acked
        };
        self.retier_events(&acked)
    }

    /// Marks reviewed by `who` every item that started before `before_ms` (of `camera`
    /// and `severity` when given), acknowledging their events when `who` may. Returns
    /// their ids.
    pub fn mark_all_reviewed(
        &self,
        who: Reviewer,
        before_ms: i64,
        camera: Option<&str>,
        severity: Option<Severity>,
        now_ms: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let (items, acked) = {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let ids: Vec<i64> = {
                let mut stmt = tx.prepare(ITEMS_BEFORE)?;
                let rows = stmt.query_map(
                    named_params! {
                        ":before_ms": before_ms, ":camera": camera,
                        ":severity": severity.map(Severity::as_str), ":user": who.name,
                    },
                    |r| r.get("id"),
                )?;
                rows.collect::<Result<_, _>>()?
            };
            let mut acked = Vec::new();
            for id in &ids {
                acked.extend(seen_and_acked(&tx, *id, who, now_ms)?);
            }
            tx.commit()?;
            (ids, acked)
        };
        self.retier_events(&acked)?;
        Ok(items)
    }

    /// Marks the item of event `id` reviewed by `user` (after its acknowledgement).
    pub(crate) fn mark_event_item_reviewed(
        &self,
        id: i64,
        user: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let conn = self.conn();
        let item: Option<i64> = conn
            .query_row(ITEM_OF_EVENT, named_params! {":id": id}, |r| {
                r.get("review_id")
            })
            .map_err(|e| not_found_as(id, e))?;
        if let Some(item) = item {
            conn.execute(
                MARK_SEEN,
                named_params! {":id": item, ":user": user, ":now_ms": now_ms},
            )?;
        }
        Ok(())
    }
}

/// Who marks items reviewed: the marks are theirs; only operators and admins also
/// acknowledge the items' events (a viewer's marks clear their own list alone).
#[derive(Debug, Clone, Copy)]
pub struct Reviewer<'a> {
    pub name: &'a str,
    pub acknowledges: bool,
}

/// Records that `who` reviewed item `id` and, when they may, acknowledges its events;
/// returns the ids of the events newly acknowledged.
fn seen_and_acked(
    conn: &Connection,
    id: i64,
    who: Reviewer,
    now_ms: i64,
) -> rusqlite::Result<Vec<i64>> {
    conn.prepare_cached(MARK_SEEN)?
        .execute(named_params! {":id": id, ":user": who.name, ":now_ms": now_ms})?;
    if !who.acknowledges {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare_cached(ACK_ITEM_EVENTS)?;
    let rows = stmt.query_map(named_params! {":id": id}, |r| r.get("id"))?;
    rows.collect()
}

/// Closes the open items that are due (see `closing`); returns their ids.
fn close_due(conn: &Connection, policy: &ReviewPolicy, now_ms: i64) -> rusqlite::Result<Vec<i64>> {
    let open: Vec<(i64, i64, Option<i64>)> = {
        let mut stmt = conn.prepare_cached(OPEN_ITEMS)?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get("id")?, r.get("start_ms")?, r.get("reach")?))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let mut closed = Vec::new();
    for (id, start_ms, reach_ms) in open {
        let reach_ms = reach_ms.unwrap_or(start_ms);
        if let Some((end_ms, cut)) = closing(policy, start_ms, reach_ms, now_ms) {
            debug_assert!(end_ms < NEVER_MS);
            conn.prepare_cached(CLOSE_ITEM)?
                .execute(named_params! {":id": id, ":end_ms": end_ms, ":cut": cut as i64})?;
            closed.push(id);
        }
    }
    Ok(closed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_closes_after_its_gap_and_slack_or_is_cut_at_its_cap() {
        let p = ReviewPolicy::default();
        // Ended at 20 s: joinable until 30 s, closes at 35 s, ending at 20 s.
        assert_eq!(closing(&p, 0, 20_000, 34_999), None);
        assert_eq!(closing(&p, 0, 20_000, 35_000), Some((20_000, false)));
        // Still open at the cap: cut there, 5 s of slack later.
        assert_eq!(closing(&p, 0, NEVER_MS, 304_999), None);
        assert_eq!(closing(&p, 0, NEVER_MS, 305_000), Some((300_000, true)));
    }

    #[test]
    fn severity_follows_the_alert_rules() {
        let mut p = ReviewPolicy::default();
        assert_eq!(p.severity_of("door", "person", &[]), Severity::Alert);
        assert_eq!(p.severity_of("door", "dog", &[]), Severity::Detection);
        assert_eq!(p.severity_of("door", "motion", &[]), Severity::Motion);
        p.alerts = vec![AlertRule {
            cameras: vec!["door".into()],
            labels: vec!["person".into()],
            zones: vec!["porch".into()],
        }];
        assert_eq!(p.severity_of("door", "person", &["porch"]), Severity::Alert);
        assert_eq!(
            p.severity_of("door", "person", &["street"]),
            Severity::Detection
        );
        assert_eq!(
            p.severity_of("yard", "person", &["porch"]),
            Severity::Detection
        );
    }
}
