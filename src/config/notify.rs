//! `notify:`: where sentrix sends word of events (targets) and which events go where
//! (rules). Targets are MQTT (with Home Assistant discovery), signed webhooks, e-mail and
//! ntfy; their passwords and keys are `Secret`s. Rules filter by camera, label, zone and
//! score, hold back repeats for a cooldown per camera and label, follow the armed mode and
//! an optional schedule, and send on an event's start, end or both. MQTT publishes every
//! event of its cameras and labels (it is state for Home Assistant, not a message), so
//! rules name webhook, e-mail and ntfy targets only.

use super::secret::Secret;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Notify {
    /// The dashboard as users reach it (https://nvr.home:8443), for links in messages.
    pub public_url: Option<String>,
    /// The armed mode at first start; a change over the API or dashboard is kept in the
    /// index and wins from then on.
    pub armed: ArmedMode,
    /// Hours an undelivered message is retried before it expires.
    pub max_age_hours: f64,
    /// Longest wait between two attempts of one message, seconds (backoff doubles up to it).
    pub retry_max_seconds: f64,
    pub targets: Vec<Target>,
    pub rules: Vec<Rule>,
}

impl Default for Notify {
    fn default() -> Self {
        Self {
            public_url: None,
            armed: ArmedMode::Home,
            max_age_hours: 24.0,
            retry_max_seconds: 300.0,
            targets: Vec::new(),
            rules: Vec::new(),
        }
    }
}

/// Home: someone is in; away: nobody is; off: no messages at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArmedMode {
    Home,
    Away,
    Off,
}

impl ArmedMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Home => "home",
            Self::Away => "away",
            Self::Off => "off",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Home, Self::Away, Self::Off]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Target {
    Mqtt(MqttTarget),
    Webhook(WebhookTarget),
    Email(EmailTarget),
    Ntfy(NtfyTarget),
}

impl Target {
    pub fn name(&self) -> &str {
        match self {
            Self::Mqtt(t) => &t.name,
            Self::Webhook(t) => &t.name,
            Self::Email(t) => &t.name,
            Self::Ntfy(t) => &t.name,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Mqtt(_) => "mqtt",
            Self::Webhook(_) => "webhook",
            Self::Email(_) => "email",
            Self::Ntfy(_) => "ntfy",
        }
    }

    /// Its secrets, for checking and for resolving relative files.
    pub fn secrets_mut(&mut self) -> Vec<(&'static str, &mut Secret)> {
        let mut out = Vec::new();
        match self {
            Self::Mqtt(t) => out.extend(t.password.as_mut().map(|s| ("password", s))),
            Self::Webhook(t) => out.extend(t.secret.as_mut().map(|s| ("secret", s))),
            Self::Email(t) => out.extend(t.password.as_mut().map(|s| ("password", s))),
            Self::Ntfy(t) => out.extend(t.token.as_mut().map(|s| ("token", s))),
        }
        out
    }

    pub fn ca_file_mut(&mut self) -> Option<&mut PathBuf> {
        match self {
            Self::Mqtt(t) => t.ca_file.as_mut(),
            Self::Webhook(t) => t.ca_file.as_mut(),
            Self::Email(t) => t.ca_file.as_mut(),
            Self::Ntfy(t) => t.ca_file.as_mut(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MqttTarget {
    pub name: String,
    pub host: String,
    /// Default 8883 with TLS, 1883 without.
    pub port: Option<u16>,
    /// TLS (verified against the system's roots, or `ca_file`). Off only for a broker on
    /// loopback.
    #[serde(default = "yes")]
    pub tls: bool,
    pub ca_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Default `sentrix-<box id>`.
    pub client_id: Option<String>,
    #[serde(default = "default_topic_prefix")]
    pub topic_prefix: String,
    #[serde(default = "yes")]
    pub discovery: bool,
    #[serde(default = "default_discovery_prefix")]
    pub discovery_prefix: String,
    /// Cameras published (empty: all).
    #[serde(default)]
    pub cameras: Vec<String>,
    /// Labels with an occupancy sensor and events published (empty: `detect.labels`).
    #[serde(default)]
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookTarget {
    pub name: String,
    /// https:// (http:// only to a loopback address).
    pub url: String,
    /// HMAC-SHA256 key for `X-Sentrix-Signature`.
    pub secret: Option<Secret>,
    /// A CA certificate (PEM) to trust besides the system's.
    pub ca_file: Option<PathBuf>,
    /// Send the snapshot too, as multipart/form-data.
    #[serde(default)]
    pub snapshot: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only to a server on loopback.
    None,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EmailTarget {
    pub name: String,
    pub host: String,
    /// Default 587 (starttls), 465 (tls), 25 (none).
    pub port: Option<u16>,
    #[serde(default)]
    pub security: SmtpSecurity,
    pub ca_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub from: String,
    pub to: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NtfyTarget {
    pub name: String,
    /// The topic's URL, https://ntfy.sh/my-topic (http:// only to loopback).
    pub url: String,
    /// An access token (sent as Bearer).
    pub token: Option<Secret>,
    pub ca_file: Option<PathBuf>,
    /// 1 (min) to 5 (max); default 4 (high).
    #[serde(default = "default_priority")]
    pub priority: u8,
    /// Extra tags (the label is always one).
    #[serde(default)]
    pub tags: Vec<String>,
}

/// When a rule sends: at an event's start, its end, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SendOn {
    #[default]
    Start,
    End,
    Both,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The target's name.
    pub target: String,
    /// Camera ids (empty: all).
    #[serde(default)]
    pub cameras: Vec<String>,
    /// Labels (empty: all).
    #[serde(default)]
    pub labels: Vec<String>,
    /// Zone names of the camera; the object must stand in one (empty: anywhere).
    #[serde(default)]
    pub zones: Vec<String>,
    /// Review item severities (alert, detection, motion): when given, the rule sends one
    /// message when an item of one starts and at most one when it ends, instead of one
    /// per event; `labels`, `zones` and `min_score` then apply to the item's.
    #[serde(default)]
    pub severity: Vec<super::review::Severity>,
    #[serde(default)]
    pub min_score: f64,
    /// Seconds after a message during which the same camera and label send no other.
    #[serde(default = "default_cooldown")]
    pub cooldown: f64,
    #[serde(default)]
    pub on: SendOn,
    /// Armed modes in which the rule sends (default: home and away).
    #[serde(default = "default_when_armed")]
    pub when_armed: Vec<ArmedMode>,
    pub schedule: Option<Schedule>,
}

/// Local times of the box when a rule sends; `from` later than `to` spans midnight.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// mon..sun (empty: every day); the day the span starts on.
    #[serde(default)]
    pub days: Vec<String>,
    /// "HH:MM".
    pub from: String,
    pub to: String,
}

fn yes() -> bool {
    true
}
fn default_topic_prefix() -> String {
    "sentrix".into()
}
fn default_discovery_prefix() -> String {
    "homeassistant".into()
}
fn default_priority() -> u8 {
    4
}
fn default_cooldown() -> f64 {
    60.0
}
fn default_when_armed() -> Vec<ArmedMode> {
    vec![ArmedMode::Home, ArmedMode::Away]
}

/// "HH:MM" as minutes after midnight.
pub fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && s.len() == 5).then_some(h * 60 + m)
}

pub const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

type Problems = Vec<(String, String)>;

/// Whether `host` is a loopback name or address (where plain connections are allowed).
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The checks of `notify:` after parsing.
pub fn check(c: &super::Config, p: &mut Problems) {
    let n = &c.notify;
    if !(n.max_age_hours > 0.0 && n.max_age_hours <= 720.0) {
        p.push((
            "notify.max_age_hours".into(),
            format!(
                "{} is out of range: must be 0 < hours <= 720",
                n.max_age_hours
            ),
        ));
    }
    if !(n.retry_max_seconds >= 1.0 && n.retry_max_seconds <= 3600.0) {
        p.push((
            "notify.retry_max_seconds".into(),
            format!(
                "{} is out of range: must be 1..=3600 s",
                n.retry_max_seconds
            ),
        ));
    }
    if let Some(u) = &n.public_url
        && !url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
    {
        p.push((
            "notify.public_url".into(),
            format!("{u:?} is not an http(s) URL"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, t) in n.targets.iter().enumerate() {
        let key = format!("notify.targets[{i}]");
        let name = t.name();
        let ok_name = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_');
        if !ok_name {
            p.push((
                format!("{key}.name"),
                format!("{name:?} must be 1-64 letters, digits, - or _"),
            ));
        }
        if !seen.insert(name) {
            p.push((
                format!("{key}.name"),
                format!("another target is also named {name:?}"),
            ));
        }
        check_target(t, &key, p);
    }
    for (i, r) in n.rules.iter().enumerate() {
        check_rule(c, r, &format!("notify.rules[{i}]"), p);
    }
}

fn check_target(t: &Target, key: &str, p: &mut Problems) {
    let mut t = t.clone();
    // Files are checked here; the environment and systemd credentials exist only in the
    // service's own environment (not in a shell running `check-config`), so they are
    // checked when `run` starts the target, which reports a missing one in its status.
    for (field, secret) in t.secrets_mut() {
        super::secret::check_readable(secret, &format!("{key}.{field}"), p);
    }
    if let Some(ca) = t.ca_file_mut()
        && let Err(e) = std::fs::read(&*ca)
    {
        p.push((
            format!("{key}.ca_file"),
            format!("cannot read {}: {e}", ca.display()),
        ));
    }
    match &t {
        Target::Webhook(w) => check_http_url(&w.url, &format!("{key}.url"), p),
        Target::Ntfy(w) => {
            check_http_url(&w.url, &format!("{key}.url"), p);
            if !(1..=5).contains(&w.priority) {
                p.push((format!("{key}.priority"), "must be 1..=5".into()));
            }
        }
        Target::Mqtt(m) => {
            if !m.tls && !is_loopback_host(&m.host) {
                p.push((
                    format!("{key}.tls"),
                    format!("must be true for a broker not on loopback ({})", m.host),
                ));
            }
            if m.topic_prefix.is_empty() || m.topic_prefix.contains(['+', '#']) {
                p.push((
                    format!("{key}.topic_prefix"),
                    "must be a topic without + or #".into(),
                ));
            }
        }
        Target::Email(e) => {
            if e.security == SmtpSecurity::None && !is_loopback_host(&e.host) {
                p.push((
                    format!("{key}.security"),
                    format!(
                        "none is only allowed to a server on loopback, not {}",
                        e.host
                    ),
                ));
            }
            if e.to.is_empty() {
                p.push((format!("{key}.to"), "needs at least one address".into()));
            }
            for (field, addr) in
                std::iter::once(("from", &e.from)).chain(e.to.iter().map(|a| ("to", a)))
            {
                if !addr.contains('@') {
                    p.push((
                        format!("{key}.{field}"),
                        format!("{addr:?} is not an e-mail address"),
                    ));
                }
            }
        }
    }
}

fn check_http_url(u: &str, key: &str, p: &mut Problems) {
    match url::Url::parse(u) {
        Ok(url) if url.scheme() == "https" => {}
        Ok(url) if url.scheme() == "http" && url.host_str().is_some_and(is_loopback_host) => {}
        Ok(_) => p.push((
            key.into(),
            format!("{u:?} must be https:// (http:// only to loopback)"),
        )),
        Err(e) => p.push((key.into(), format!("{u:?} is not a URL: {e}"))),
    }
}

fn check_rule(c: &super::Config, r: &Rule, key: &str, p: &mut Problems) {
    match c.notify.targets.iter().find(|t| t.name() == r.target) {
        None => p.push((format!("{key}.target"), format!("no target named {:?}", r.target))),
        Some(Target::Mqtt(_)) => p.push((
            format!("{key}.target"),
            format!("{:?} is an mqtt target, which publishes every event of its cameras and labels; rules are for webhook, email and ntfy targets", r.target),
        )),
        Some(_) => {}
    }
    for (j, cam) in r.cameras.iter().enumerate() {
        if !c.cameras.iter().any(|x| &x.id == cam) {
            p.push((format!("{key}.cameras[{j}]"), format!("no camera {cam:?}")));
        }
    }
    for (j, zone) in r.zones.iter().enumerate() {
        if !super::has_zone(c, &r.cameras, zone) {
            p.push((
                format!("{key}.zones[{j}]"),
                format!("no camera of this rule has a zone named {zone:?}"),
            ));
        }
    }
    if !(0.0..=1.0).contains(&r.min_score) {
        p.push((
            format!("{key}.min_score"),
            format!("{} is out of range: must be 0..=1", r.min_score),
        ));
    }
    if !(0.0..=86400.0).contains(&r.cooldown) {
        p.push((
            format!("{key}.cooldown"),
            format!("{} is out of range: must be 0..=86400 s", r.cooldown),
        ));
    }
    if r.when_armed.is_empty() {
        p.push((
            format!("{key}.when_armed"),
            "needs at least one mode (home, away, off)".into(),
        ));
    }
    if let Some(s) = &r.schedule {
        for (field, v) in [("from", &s.from), ("to", &s.to)] {
            if parse_hhmm(v).is_none() {
                p.push((
                    format!("{key}.schedule.{field}"),
                    format!("{v:?} is not a time like 22:30"),
                ));
            }
        }
        for (j, d) in s.days.iter().enumerate() {
            if !DAY_NAMES.contains(&d.as_str()) {
                p.push((
                    format!("{key}.schedule.days[{j}]"),
                    format!("{d:?} is not one of mon, tue, wed, thu, fri, sat, sun"),
                ));
            }
        }
    }
}
