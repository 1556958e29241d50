//! Which targets hear of a review item (store/review.rs). MQTT targets get every review
//! notice (new, update, end) of their cameras, published on `P/CAMERA/review`. A rule with
//! a `severity` list sends its target one "start" message per item — at the first notice
//! where the item has one of those severities and passes the rule's camera, label, zone
//! and score filters, in an armed mode and scheduled time it allows, and outside the
//! rule's cooldown for that camera — and, if asked, one "end" message when the item
//! closes. A busy hall is then one message per item, not one per walker.

use super::rules::{Outgoing, allowed_now};
use crate::base::localtime::LocalTime;
use crate::config::Config;
use crate::config::notify::{ArmedMode, Rule, SendOn, Target};
use crate::store::ReviewNotice;
use std::collections::HashMap;

/// The outbox kind of an MQTT review message.
pub const REVIEW_KIND: &str = "review";

/// How far a rule got with one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Announced {
    Sent,
    /// Held back by the cooldown: nothing more for this item.
    Suppressed,
}

pub struct ReviewRouter {
    /// The rules with a severity, with their index in `notify.rules`.
    rules: Vec<(usize, Rule)>,
    /// MQTT targets and their cameras (empty: all).
    mqtt: Vec<(String, Vec<String>)>,
    announced: HashMap<(usize, i64), Announced>,
    /// (rule, camera) → when it last sent a start, ms.
    last_sent_ms: HashMap<(usize, String), i64>,
}

impl ReviewRouter {
    pub fn new(config: &Config) -> Self {
        let rules = config
            .notify
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.severity.is_empty())
            .map(|(i, r)| (i, r.clone()))
            .collect();
        let mqtt = config
            .notify
            .targets
            .iter()
            .filter_map(|t| match t {
                Target::Mqtt(m) => Some((m.name.clone(), m.cameras.clone())),
                _ => None,
            })
            .collect();
        Self {
            rules,
            mqtt,
            announced: HashMap::new(),
            last_sent_ms: HashMap::new(),
        }
    }

    /// The messages `n` makes at `now_ms` in armed mode `armed`.
    pub fn route(&mut self, n: &ReviewNotice, armed: ArmedMode, now_ms: i64) -> Vec<Outgoing> {
        let camera = &n.item.camera_id;
        let mut out: Vec<Outgoing> = self
            .mqtt
            .iter()
            .filter(|(_, cams)| cams.is_empty() || cams.contains(camera))
            .map(|(target, _)| Outgoing {
                target: target.clone(),
                kind: REVIEW_KIND,
            })
            .collect();
        let local = LocalTime::of_ms(now_ms);
        for k in 0..self.rules.len() {
            let sends = match n.kind {
                "end" => self.on_end(k, n, armed, &local),
                "new" | "update" => self.on_start(k, n, armed, &local, now_ms),
                _ => None, // "reviewed": for MQTT's unreviewed count only
            };
            if let Some(kind) = sends {
                let o = Outgoing {
                    target: self.rules[k].1.target.clone(),
                    kind,
                };
                if !out.contains(&o) {
                    out.push(o);
                }
            }
        }
        out
    }

    fn on_start(
        &mut self,
        k: usize,
        n: &ReviewNotice,
        armed: ArmedMode,
        local: &LocalTime,
        now_ms: i64,
    ) -> Option<&'static str> {
        let (i, rule) = &self.rules[k];
        let key = (*i, n.item.id);
        if rule.on == SendOn::End || self.announced.contains_key(&key) {
            return None;
        }
        if !passes(rule, n) || !allowed_now(rule, armed, local) {
            return None;
        }
        let cooldown_ms = (rule.cooldown * 1000.0) as i64;
        let last = self.last_sent_ms.get(&(*i, n.item.camera_id.clone()));
        if last.is_some_and(|&t| now_ms - t < cooldown_ms) {
            self.announced.insert(key, Announced::Suppressed);
            return None;
        }
        self.last_sent_ms
            .insert((*i, n.item.camera_id.clone()), now_ms);
        self.announced.insert(key, Announced::Sent);
        Some("start")
    }

    fn on_end(
        &mut self,
        k: usize,
        n: &ReviewNotice,
        armed: ArmedMode,
        local: &LocalTime,
    ) -> Option<&'static str> {
        let (i, rule) = &self.rules[k];
        let was = self.announced.remove(&(*i, n.item.id));
        let wanted = match rule.on {
            SendOn::Start => false,
            SendOn::Both => was == Some(Announced::Sent),
            SendOn::End => passes(rule, n) && allowed_now(rule, armed, local),
        };
        wanted.then_some("end")
    }
}

/// Severity, camera, labels, zones and score of the item.
fn passes(rule: &Rule, n: &ReviewNotice) -> bool {
    let item = &n.item;
    let any =
        |want: &[String], have: &[String]| want.is_empty() || have.iter().any(|h| want.contains(h));
    rule.severity
        .iter()
        .any(|s| s.as_str() == item.severity.as_str())
        && (rule.cameras.is_empty() || rule.cameras.contains(&item.camera_id))
        && any(&rule.labels, &item.labels)
        && any(&rule.zones, &item.zones)
        && item.max_score >= rule.min_score
}
