//! `review`: how events become review items — the gap that merges activity, the longest an
//! item may run, and which events make an item an alert (store/review.rs).

use serde::{Deserialize, Serialize};

type Problems = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Review {
    /// An event starting within this many seconds of the current item's last activity
    /// joins it.
    pub merge_gap_seconds: f64,
    /// An item closes after this many seconds even while activity goes on; the next event
    /// starts a new one.
    pub max_item_seconds: f64,
    /// An item is an alert when one of its events matches one of these (default: a person
    /// or a car anywhere); a detection otherwise; motion when it holds only motion.
    pub alerts: Vec<AlertRule>,
}

impl Default for Review {
    fn default() -> Self {
        Self {
            merge_gap_seconds: 10.0,
            max_item_seconds: 300.0,
            alerts: vec![AlertRule {
                labels: vec!["person".into(), "car".into()],
                ..AlertRule::default()
            }],
        }
    }
}

/// A review item's severity, as config names it (`notify.rules[].severity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Alert,
    Detection,
    Motion,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Alert => "alert",
            Severity::Detection => "detection",
            Severity::Motion => "motion",
        }
    }
}

/// Which events are alerts: each list empty matches anything.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    #[serde(default)]
    pub cameras: Vec<String>,
    #[serde(default)]
    pub labels: Vec<String>,
    /// Zone names of the camera; the object must stand in one.
    #[serde(default)]
    pub zones: Vec<String>,
}

/// Ranges, and that every camera and zone a rule names exists.
pub fn check(c: &super::Config, p: &mut Problems) {
    let r = &c.review;
    for (key, v, max) in [
        ("review.merge_gap_seconds", r.merge_gap_seconds, 600.0),
        ("review.max_item_seconds", r.max_item_seconds, 86_400.0),
    ] {
        if !v.is_finite() || !(1.0..=max).contains(&v) {
            p.push((
                key.into(),
                format!("{v} is out of range: must be 1..={max} s"),
            ));
        }
    }
    for (i, rule) in r.alerts.iter().enumerate() {
        for (j, cam) in rule.cameras.iter().enumerate() {
            if !c.cameras.iter().any(|x| &x.id == cam) {
                p.push((
                    format!("review.alerts[{i}].cameras[{j}]"),
                    format!("no camera {cam:?}"),
                ));
            }
        }
        for (j, zone) in rule.zones.iter().enumerate() {
            if !super::has_zone(c, &rule.cameras, zone) {
                p.push((
                    format!("review.alerts[{i}].zones[{j}]"),
                    format!("no camera of this rule has a zone named {zone:?}"),
                ));
            }
        }
    }
}
