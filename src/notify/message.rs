//! What a message says. The outbox keeps one JSON payload per message — the event as the
//! API shows it, the camera's name, the box and a link to the event on the dashboard —
//! and each target renders it: webhooks and MQTT send the JSON itself; e-mail and ntfy
//! a title ("person at Front door"), a line of text and the link.

use crate::base::localtime::LocalTime;
use crate::store::{EventRecord, ReviewNotice};
use serde_json::{Value, json};

/// The payload of one message.
pub fn payload(
    kind: &str,
    event: &EventRecord,
    camera_name: &str,
    box_id: &str,
    public_url: Option<&str>,
) -> Value {
    json!({
        "kind": kind,
        "event": event,
        "camera": {"id": event.camera_id, "name": camera_name},
        "box": box_id,
        "url": public_url.map(|u| format!("{}/#event/{}", u.trim_end_matches('/'), event.id)),
    })
}

/// The payload of a message about a review item: `event` stands for the item (its labels
/// as the label, its span, its best score and the lead event's snapshot), so every
/// rendering reads it like an event's; `review` holds the item, `notice` what happened
/// to it (new, update, end).
pub fn review_payload(
    kind: &str,
    notice: &ReviewNotice,
    lead: &EventRecord,
    camera_name: &str,
    box_id: &str,
    public_url: Option<&str>,
) -> Value {
    let item = &notice.item;
    let mut standing = lead.clone();
    standing.label = item.labels.join(", ");
    standing.start_ms = item.start_ms;
    standing.end_ms = item.end_ms;
    standing.max_score = item.max_score;
    let mut v = payload(kind, &standing, camera_name, box_id, None);
    v["notice"] = json!(notice.kind);
    v["review"] = json!(item);
    v["url"] =
        json!(public_url.map(|u| format!("{}/#review/{}", u.trim_end_matches('/'), item.id)));
    v
}

/// One message as a target sends it: its idempotency key, the payload and the snapshot.
pub struct Letter<'a> {
    pub delivery_id: &'a str,
    pub payload: &'a Value,
    pub snapshot: Option<&'a [u8]>,
}

/// The parts of a payload the renderings use (missing parts come out empty).
pub struct Summary {
    pub kind: String,
    pub event_id: i64,
    pub label: String,
    pub camera: String,
    pub score: f64,
    pub start_ms: i64,
    pub end_ms: Option<i64>,
    pub url: Option<String>,
    pub has_snapshot: bool,
}

impl Summary {
    pub fn of(payload: &Value) -> Self {
        let ev = &payload["event"];
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let camera = match text(&payload["camera"]["name"]) {
            n if n.is_empty() => text(&ev["camera_id"]),
            n => n,
        };
        Self {
            kind: text(&payload["kind"]),
            event_id: ev["id"].as_i64().unwrap_or_default(),
            label: text(&ev["label"]),
            camera,
            score: ev["max_score"].as_f64().unwrap_or_default(),
            start_ms: ev["start_ms"].as_i64().unwrap_or_default(),
            end_ms: ev["end_ms"].as_i64(),
            url: payload["url"].as_str().map(str::to_string),
            has_snapshot: ev["has_snapshot"].as_bool().unwrap_or(false),
        }
    }

    /// "person at Front door" (or "person left Front door" for an end).
    pub fn title(&self) -> String {
        match self.kind.as_str() {
            "end" => format!("{} left {}", self.label, self.camera),
            _ => format!("{} at {}", self.label, self.camera),
        }
    }

    /// One line: when, how sure, how long.
    pub fn line(&self) -> String {
        let when = LocalTime::of_ms(self.start_ms).text();
        let mut s = format!("{} at {} ({:.0} %)", self.title(), when, self.score * 100.0);
        if let Some(end) = self.end_ms.filter(|_| self.kind == "end") {
            s.push_str(&format!(", {:.0} s", (end - self.start_ms) as f64 / 1000.0));
        }
        s
    }

    /// The text body of an e-mail or ntfy message.
    pub fn body(&self) -> String {
        match &self.url {
            Some(u) => format!("{}\n\n{u}\n", self.line()),
            None => format!("{}\n", self.line()),
        }
    }
}
