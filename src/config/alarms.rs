//! `alarms` and `cameras[].alarm`: cameras that cannot stream but send their alarm pictures
//! by e-mail. `alarms.smtp` turns on the built-in SMTP receiver (off by default); each
//! camera with an `alarm.smtp` section gets a recipient address of its own, and optionally
//! a user name and password it must authenticate with. The limits that keep a hostile LAN
//! from filling memory or the disk live here too (alarm/).

use super::secret::Secret;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

type Problems = Vec<(String, String)>;

/// The domain of generated recipient addresses (`<camera>-<tag>@sentrix.local`).
pub const ALARM_DOMAIN: &str = "sentrix.local";

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Alarms {
    /// The SMTP receiver; absent: off.
    pub smtp: Option<SmtpReceiver>,
    /// The FTP receiver; absent: off.
    pub ftp: Option<FtpReceiver>,
    /// The largest message accepted, MB; refused while it is read, never buffered whole.
    pub max_message_mb: f64,
    /// The most pictures taken from one message; the rest are ignored.
    pub max_pictures: usize,
    /// The most alarm events one camera may raise per minute; later alarms are dropped.
    pub max_events_per_minute: u32,
    /// The largest picture decoded, in megapixels (a JPEG declaring more is refused unread).
    pub max_picture_megapixels: f64,
}

impl Default for Alarms {
    fn default() -> Self {
        Self {
            smtp: None,
            ftp: None,
            max_message_mb: 25.0,
            max_pictures: 20,
            max_events_per_minute: 12,
            max_picture_megapixels: 40.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpReceiver {
    /// Address it listens on; absent: the dashboard's (`network.bind`).
    pub bind: Option<IpAddr>,
    pub port: u16,
    /// Offer AUTH before STARTTLS, so passwords may cross the LAN in clear (off).
    pub allow_plain_auth: bool,
}

impl Default for SmtpReceiver {
    fn default() -> Self {
        Self {
            bind: None,
            port: 2525,
            allow_plain_auth: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FtpReceiver {
    /// Address it listens on; absent: the dashboard's (`network.bind`).
    pub bind: Option<IpAddr>,
    pub port: u16,
    /// The ports offered for passive-mode data connections, `[first, last]`.
    pub passive_ports: [u16; 2],
}

impl Default for FtpReceiver {
    fn default() -> Self {
        Self {
            bind: None,
            port: 2121,
            passive_ports: [50000, 50099],
        }
    }
}

/// `cameras[].alarm`: how one camera's alarm messages are received and filed.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CameraAlarm {
    pub smtp: Option<CameraSmtp>,
    /// The camera uploads its pictures by FTP with this login.
    pub ftp: Option<CameraFtp>,
    /// The label of its events (default `alarm`); a subject naming a label of the detector
    /// (`person`, `car`, ...) overrides it.
    pub label: String,
    /// Pictures arriving within this many seconds of the previous one join its event; two
    /// or more become a clip.
    pub batch_seconds: f64,
    /// How long each picture shows in the clip when the pictures carry no capture times
    /// (EXIF) and arrived together.
    pub picture_seconds: f64,
}

impl Default for CameraAlarm {
    fn default() -> Self {
        Self {
            smtp: None,
            ftp: None,
            label: "alarm".into(),
            batch_seconds: 10.0,
            picture_seconds: 1.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CameraSmtp {
    /// The recipient its mail must go to; absent: `<camera>-<tag>@sentrix.local`, the tag
    /// derived from the box's key (stable, unguessable), shown on the camera page.
    pub address: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
}

/// What keys the tag of a generated address (the store's `keyed_tag` purpose).
pub const ADDRESS_TAG_PURPOSE: &str = "alarm smtp address";

/// The recipient of camera `cam`'s alarm mail: its `alarm.smtp.address`, or
/// `<id>-<tag>@sentrix.local` with `tag(id)` (the store's keyed tag: stable, unguessable).
pub fn smtp_address(cam: &super::Camera, tag: impl Fn(&str) -> String) -> Option<String> {
    let smtp = cam.alarm.as_ref()?.smtp.as_ref()?;
    Some(match &smtp.address {
        Some(a) => a.clone(),
        None => format!(
            "{}-{}@{ALARM_DOMAIN}",
            cam.id.to_ascii_lowercase(),
            tag(&cam.id)
        ),
    })
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CameraFtp {
    pub username: String,
    pub password: Secret,
}

pub fn check(c: &super::Config, p: &mut Problems) {
    let a = &c.alarms;
    if !a.max_message_mb.is_finite() || !(0.1..=1024.0).contains(&a.max_message_mb) {
        p.push((
            "alarms.max_message_mb".into(),
            format!("{} is out of range: must be 0.1..=1024", a.max_message_mb),
        ));
    }
    if !(1..=500).contains(&a.max_pictures) {
        p.push((
            "alarms.max_pictures".into(),
            format!("{} is out of range: must be 1..=500", a.max_pictures),
        ));
    }
    if !(1..=600).contains(&a.max_events_per_minute) {
        p.push((
            "alarms.max_events_per_minute".into(),
            format!(
                "{} is out of range: must be 1..=600",
                a.max_events_per_minute
            ),
        ));
    }
    let mp = a.max_picture_megapixels;
    if !mp.is_finite() || !(0.1..=400.0).contains(&mp) {
        p.push((
            "alarms.max_picture_megapixels".into(),
            format!("{mp} is out of range: must be 0.1..=400"),
        ));
    }
    if let Some(ftp) = &a.ftp {
        let [first, last] = ftp.passive_ports;
        if first == 0 || first > last || last - first > 10_000 {
            p.push((
                "alarms.ftp.passive_ports".into(),
                format!("[{first}, {last}] must be [first, last] with 0 < first <= last"),
            ));
        }
    }
    let mut ftp_users = std::collections::HashMap::new();
    for (i, cam) in c.cameras.iter().enumerate() {
        let Some(ftp) = cam.alarm.as_ref().and_then(|a| a.ftp.as_ref()) else {
            continue;
        };
        let key = format!("cameras[{i}].alarm.ftp");
        if a.ftp.is_none() {
            p.push((
                key.clone(),
                "the FTP receiver is off: add an `alarms.ftp` section".into(),
            ));
        }
        if ftp.username.is_empty() || ftp.username.len() > 64 {
            p.push((format!("{key}.username"), "must be 1-64 bytes".into()));
        }
        if let Some(j) = ftp_users.insert(ftp.username.clone(), i) {
            p.push((
                format!("{key}.username"),
                format!("also cameras[{j}]'s FTP user name"),
            ));
        }
        super::secret::check_readable(&ftp.password, &format!("{key}.password"), p);
    }
    let mut addresses = std::collections::HashMap::new();
    for (i, cam) in c.cameras.iter().enumerate() {
        if let Some(alarm) = &cam.alarm {
            check_camera(c, alarm, &format!("cameras[{i}].alarm"), p);
            if let Some(addr) = alarm.smtp.as_ref().and_then(|s| s.address.as_ref()) {
                let lower = addr.to_ascii_lowercase();
                if let Some(j) = addresses.insert(lower, i) {
                    p.push((
                        format!("cameras[{i}].alarm.smtp.address"),
                        format!("{addr:?} is also cameras[{j}]'s address"),
                    ));
                }
            }
        }
    }
}

fn check_camera(c: &super::Config, a: &CameraAlarm, key: &str, p: &mut Problems) {
    let label_ok = !a.label.is_empty()
        && a.label.len() <= 32
        && a.label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !label_ok {
        p.push((
            format!("{key}.label"),
            format!("{:?} must be 1-32 characters of a-z 0-9 _ -", a.label),
        ));
    }
    for (field, v, max) in [
        ("batch_seconds", a.batch_seconds, 600.0),
        ("picture_seconds", a.picture_seconds, 60.0),
    ] {
        if !v.is_finite() || !(0.1..=max).contains(&v) {
            p.push((
                format!("{key}.{field}"),
                format!("{v} is out of range: must be 0.1..={max} s"),
            ));
        }
    }
    let Some(smtp) = &a.smtp else {
        return;
    };
    if c.alarms.smtp.is_none() {
        p.push((
            format!("{key}.smtp"),
            "the SMTP receiver is off: add an `alarms.smtp` section".into(),
        ));
    }
    check_smtp(smtp, &format!("{key}.smtp"), p);
}

fn check_smtp(s: &CameraSmtp, key: &str, p: &mut Problems) {
    if let Some(addr) = &s.address
        && !is_plain_address(addr)
    {
        p.push((
            format!("{key}.address"),
            format!("{addr:?} is not an address like name@host"),
        ));
    }
    match (&s.username, &s.password) {
        (Some(_), None) | (None, Some(_)) => p.push((
            format!("{key}.username"),
            "username and password go together".into(),
        )),
        (Some(u), Some(_)) if u.is_empty() || u.len() > 64 => {
            p.push((format!("{key}.username"), "must be 1-64 bytes".into()))
        }
        _ => {}
    }
    if let Some(secret) = &s.password {
        super::secret::check_readable(secret, &format!("{key}.password"), p);
    }
}

/// `local@domain` of printable ASCII without spaces or angle brackets.
pub fn is_plain_address(addr: &str) -> bool {
    let Some((local, domain)) = addr.split_once('@') else {
        return false;
    };
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && !b"<>()[]\\,;:\"@".contains(&b))
    };
    ok(local) && ok(domain)
}
