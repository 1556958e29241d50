//! Which targets hear of an event notice. MQTT targets get every notice (start, update,
//! end) of their cameras and labels. Each rule sends its target one "start" message per
//! event — at the first notice where the event passes its filters (camera, label, zone,
//! score), in an armed mode and scheduled time it allows, and outside the cooldown of
//! that camera and label — and, if asked, an "end" message. An event held back by the
//! cooldown stays held back for its whole life: one person walking by is one message.
//! Two rules that send the same notice to one target send it once.

use crate::base::localtime::LocalTime;
use crate::config::notify::{ArmedMode, Rule, SendOn, parse_hhmm};
use crate::config::{Config, notify::Target};
use crate::detect::runner::EventNotice;
use crate::detect::zones::Polygon;
use std::collections::{HashMap, HashSet};

/// A message for a target: its name and the kind (start, update or end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub target: String,
    pub kind: &'static str,
}

/// When a notice is routed: the armed mode, the box's local time and the wall ms.
struct Moment {
    armed: ArmedMode,
    local: LocalTime,
    ms: i64,
}

struct MqttFilter {
    target: String,
    cameras: Vec<String>,
    labels: Vec<String>,
}

/// How far a rule got with one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Announced {
    Sent,
    /// Held back by the cooldown: nothing more for this event.
    Suppressed,
}

pub struct Router {
    rules: Vec<Rule>,
    /// Each camera's named zones.
    zones: HashMap<String, Vec<(String, Polygon)>>,
    mqtt: Vec<MqttFilter>,
    announced: HashMap<(usize, i64), Announced>,
    /// (rule, camera, label, kind) → when it last sent, ms.
    last_sent_ms: HashMap<(usize, String, String, &'static str), i64>,
}

impl Router {
    pub fn new(config: &Config) -> Self {
        let zones = config
            .cameras
            .iter()
            .map(|c| {
                let named = c
                    .zones
                    .iter()
                    .map(|z| (z.name.clone(), Polygon::new(z.points.clone())))
                    .collect();
                (c.id.clone(), named)
            })
            .collect();
        let mqtt = config
            .notify
            .targets
            .iter()
            .filter_map(|t| match t {
                Target::Mqtt(m) => Some(MqttFilter {
                    target: m.name.clone(),
                    cameras: m.cameras.clone(),
                    labels: mqtt_labels(config, &m.labels),
                }),
                _ => None,
            })
            .collect();
        Self {
            rules: config.notify.rules.clone(),
            zones,
            mqtt,
            announced: HashMap::new(),
            last_sent_ms: HashMap::new(),
        }
    }

    /// The messages `notice` makes at `now_ms` in armed mode `armed`.
    pub fn route(&mut self, notice: &EventNotice, armed: ArmedMode, now_ms: i64) -> Vec<Outgoing> {
        let ev = &notice.event;
        let mut out: Vec<Outgoing> = self
            .mqtt
            .iter()
            .filter(|m| m.cameras.is_empty() || m.cameras.contains(&ev.camera_id))
            .filter(|m| m.labels.contains(&ev.label))
            .map(|m| Outgoing {
                target: m.target.clone(),
                kind: notice.kind,
            })
            .collect();
        let now = Moment {
            armed,
            local: LocalTime::of_ms(now_ms),
            ms: now_ms,
        };
        // Rules with a severity hear of review items instead (review_route.rs).
        let per_event: Vec<usize> = (0..self.rules.len())
            .filter(|&i| self.rules[i].severity.is_empty())
            .collect();
        for i in per_event {
            let sends = match notice.kind {
                "end" => self.on_end(i, notice, &now),
                _ => self.on_start(i, notice, &now),
            };
            if let Some(kind) = sends {
                let o = Outgoing {
                    target: self.rules[i].target.clone(),
                    kind,
                };
                if !out.contains(&o) {
                    out.push(o);
                }
            }
        }
        out
    }

    fn on_start(&mut self, i: usize, n: &EventNotice, now: &Moment) -> Option<&'static str> {
        let rule = &self.rules[i];
        let key = (i, n.event.id);
        if rule.on == SendOn::End || self.announced.contains_key(&key) {
            return None;
        }
        if !self.passes(rule, n) || !allowed_now(rule, now.armed, &now.local) {
            return None;
        }
        if !self.cooled_down(i, n, "start", now.ms) {
            self.announced.insert(key, Announced::Suppressed);
            return None;
        }
        self.announced.insert(key, Announced::Sent);
        Some("start")
    }

    fn on_end(&mut self, i: usize, n: &EventNotice, now: &Moment) -> Option<&'static str> {
        let was = self.announced.remove(&(i, n.event.id));
        let rule = &self.rules[i];
        let wanted = match rule.on {
            SendOn::Start => false,
            SendOn::Both => was == Some(Announced::Sent),
            SendOn::End => self.passes(rule, n) && allowed_now(rule, now.armed, &now.local),
        };
        (wanted && self.cooled_down(i, n, "end", now.ms)).then_some("end")
    }

    /// Camera, label, score and zone.
    fn passes(&self, rule: &Rule, n: &EventNotice) -> bool {
        let ev = &n.event;
        let camera_ok = rule.cameras.is_empty() || rule.cameras.contains(&ev.camera_id);
        let label_ok = rule.labels.is_empty() || rule.labels.contains(&ev.label);
        camera_ok && label_ok && ev.max_score >= rule.min_score && self.in_zone(rule, ev)
    }

    fn in_zone(&self, rule: &Rule, ev: &crate::store::EventRecord) -> bool {
        if rule.zones.is_empty() {
            return true;
        }
        let [x1, _, x2, y2] = ev.bbox;
        let (x, y) = ((x1 as f64 + x2 as f64) / 2.0, y2 as f64);
        self.zones.get(&ev.camera_id).is_some_and(|zones| {
            zones
                .iter()
                .any(|(name, area)| rule.zones.contains(name) && area.contains(x, y))
        })
    }

    /// Checks and stamps the cooldown of (rule, camera, label, kind).
    fn cooled_down(&mut self, i: usize, n: &EventNotice, kind: &'static str, now_ms: i64) -> bool {
        let cooldown_ms = (self.rules[i].cooldown * 1000.0) as i64;
        let key = (i, n.event.camera_id.clone(), n.event.label.clone(), kind);
        if let Some(&last) = self.last_sent_ms.get(&key)
            && now_ms - last < cooldown_ms
        {
            return false;
        }
        self.last_sent_ms.insert(key, now_ms);
        true
    }
}

/// The labels an MQTT target publishes: its own list, else `detect.labels`; manual
/// triggers, motion-only events and damaged-file notices always.
pub fn mqtt_labels(config: &Config, own: &[String]) -> Vec<String> {
    let mut labels: Vec<String> = match own.is_empty() {
        true => config.detect.labels.clone(),
        false => own.to_vec(),
    };
    for extra in [
        crate::live::MANUAL_LABEL,
        crate::detect::runner::MOTION_LABEL,
        crate::store::scrub::DAMAGED_LABEL,
    ] {
        if !labels.iter().any(|l| l == extra) {
            labels.push(extra.to_string());
        }
    }
    let mut seen = HashSet::new();
    labels.retain(|l| seen.insert(l.clone()));
    labels
}

/// The armed mode and the schedule.
pub(super) fn allowed_now(rule: &Rule, armed: ArmedMode, local: &LocalTime) -> bool {
    if armed == ArmedMode::Off || !rule.when_armed.contains(&armed) {
        return false;
    }
    let Some(s) = &rule.schedule else {
        return true;
    };
    let (Some(from), Some(to)) = (parse_hhmm(&s.from), parse_hhmm(&s.to)) else {
        return false;
    };
    let now = local.minutes();
    let day_ok = |weekday: u32| {
        s.days.is_empty()
            || s.days.iter().any(|d| {
                crate::config::notify::DAY_NAMES.get(weekday as usize) == Some(&d.as_str())
            })
    };
    if from <= to {
        return day_ok(local.weekday) && now >= from && now < to;
    }
    // Spans midnight: the evening part on its own day, the morning part on the next.
    (now >= from && day_ok(local.weekday)) || (now < to && day_ok((local.weekday + 6) % 7))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EventRecord;

    fn config(rules: &str) -> Config {
        // A fixed text: a mistake in it is this test's own bug.
        let text = format!(
            "cameras:\n  - id: door\n    url: demo://\n    zones:\n      - name: path\n        points: [[0,0.5],[1,0.5],[1,1],[0,1]]\n\
             notify:\n  targets:\n    - {{type: webhook, name: hook, url: 'https://example.com/h'}}\n    - {{type: mqtt, name: ha, host: localhost, tls: false, labels: [person]}}\n  rules:\n{rules}"
        );
        Config::from_text(&text, std::env::temp_dir()).expect("the test config is valid") // ok: fixed test text
    }

    fn notice(kind: &'static str, id: i64, label: &str, score: f64, bbox: [f32; 4]) -> EventNotice {
        EventNotice {
            kind,
            event: EventRecord {
                id,
                camera_id: "door".into(),
                label: label.into(),
                start_ms: 0,
                end_ms: None,
                max_score: score,
                bbox,
                clip_id: None,
                has_snapshot: false,
                acknowledged: false,
                keep: false,
                scene_change: false,
                review_id: None,
                zones: Vec::new(),
            },
        }
    }

    const LOW: [f32; 4] = [0.4, 0.5, 0.6, 0.9];
    const HIGH: [f32; 4] = [0.4, 0.0, 0.6, 0.3];

    fn targets(out: &[Outgoing]) -> Vec<(&str, &str)> {
        out.iter().map(|o| (o.target.as_str(), o.kind)).collect()
    }

    #[test]
    fn ten_events_in_thirty_seconds_make_one_message() {
        let mut r = Router::new(&config(
            "    - {target: hook, labels: [person], cooldown: 60}\n",
        ));
        let mut sent = 0;
        for i in 0..10 {
            let t = i * 3000;
            for kind in ["start", "update", "end"] {
                let out = r.route(&notice(kind, i, "person", 0.9, LOW), ArmedMode::Home, t);
                sent += out.iter().filter(|o| o.target == "hook").count();
            }
        }
        assert_eq!(sent, 1);
        let out = r.route(
            &notice("start", 99, "person", 0.9, LOW),
            ArmedMode::Home,
            61_000,
        );
        assert_eq!(targets(&out), vec![("ha", "start"), ("hook", "start")]);
    }

    #[test]
    fn filters_armed_mode_and_score_that_rises() {
        let mut r = Router::new(&config(
            "    - {target: hook, labels: [person], zones: [path], min_score: 0.7, cooldown: 0, on: both, when_armed: [away]}\n",
        ));
        let home = r.route(&notice("start", 1, "person", 0.9, LOW), ArmedMode::Home, 0);
        assert_eq!(targets(&home), vec![("ha", "start")]);
        let off = r.route(&notice("start", 2, "person", 0.9, LOW), ArmedMode::Off, 0);
        assert_eq!(targets(&off), vec![("ha", "start")], "off: MQTT state only");
        let away = ArmedMode::Away;
        assert!(
            r.route(&notice("start", 3, "person", 0.9, HIGH), away, 0)
                .len()
                == 1,
            "outside the zone"
        );
        assert!(
            r.route(&notice("start", 4, "car", 0.9, LOW), away, 0)
                .is_empty()
        );
        // Below the score at its start, above it at an update: the message comes then.
        assert_eq!(
            r.route(&notice("start", 5, "person", 0.5, LOW), away, 0)
                .len(),
            1
        );
        let up = r.route(&notice("update", 5, "person", 0.8, LOW), away, 10);
        assert_eq!(targets(&up), vec![("ha", "update"), ("hook", "start")]);
        let end = r.route(&notice("end", 5, "person", 0.8, LOW), away, 20);
        assert_eq!(targets(&end), vec![("ha", "end"), ("hook", "end")]);
    }

    #[test]
    fn schedules_span_midnight() {
        let rule: Rule = serde_yaml::from_str(
            "{target: hook, schedule: {days: [fri], from: '22:00', to: '06:00'}}",
        )
        .expect("a valid rule"); // ok: fixed test text
        let at = |weekday, hour| LocalTime {
            year: 2026,
            month: 11,
            day: 27,
            weekday,
            hour,
            minute: 0,
            second: 0,
        };
        assert!(allowed_now(&rule, ArmedMode::Home, &at(4, 23)));
        assert!(
            allowed_now(&rule, ArmedMode::Home, &at(5, 3)),
            "saturday morning continues friday's"
        );
        assert!(!allowed_now(&rule, ArmedMode::Home, &at(5, 23)));
        assert!(!allowed_now(&rule, ArmedMode::Home, &at(4, 12)));
        assert!(!allowed_now(&rule, ArmedMode::Off, &at(4, 23)));
    }
}
