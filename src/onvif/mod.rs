//! ONVIF, the camera side of "add a camera": finding cameras on the LAN (`discovery`) and
//! asking one for its media profiles. `profiles` reads the camera's clock first
//! (GetSystemDateAndTime needs no login) so the login's timestamp is the camera's own and
//! a camera hours off still accepts it, then its identity (GetDeviceInformation), where its
//! media service is (GetCapabilities), its profiles (GetProfiles) and each profile's stream
//! and snapshot URIs. A wrong login is told apart from a camera that is not there.

pub mod discovery;
pub mod soap;

use soap::{Login, SoapError, call, text_of};
use std::time::Duration;

/// A clock further off than this is worth a warning: clip times and evidence depend on it.
pub const CLOCK_WARNING_S: f64 = 5.0;

/// What a camera says of itself and its profiles.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CameraProfiles {
    pub manufacturer: String,
    pub model: String,
    pub firmware: String,
    /// The camera's clock minus ours, in seconds (positive: the camera is ahead).
    pub clock_offset_s: f64,
    /// Set when the offset is over `CLOCK_WARNING_S`.
    pub clock_warning: Option<String>,
    pub profiles: Vec<Profile>,
}

/// One media profile.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Profile {
    pub token: String,
    pub name: String,
    /// "H264", "H265", "JPEG"… as the camera names it.
    pub codec: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps: Option<f64>,
    pub bitrate_kbps: Option<u32>,
    pub stream_uri: Option<String>,
    pub snapshot_uri: Option<String>,
}

/// Why a camera's profiles could not be read.
#[derive(Debug)]
pub enum OnvifError {
    WrongPassword(String),
    NoAnswer(String),
    Other(String),
}

impl std::fmt::Display for OnvifError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::WrongPassword(m) => write!(f, "the camera refused the login: {m}"),
            Self::NoAnswer(m) => write!(f, "no ONVIF answer: {m}"),
            Self::Other(m) => write!(f, "{m}"),
        }
    }
}

impl From<SoapError> for OnvifError {
    fn from(e: SoapError) -> Self {
        match e {
            SoapError::Refused(m) => Self::WrongPassword(m),
            SoapError::Transport(m) => Self::NoAnswer(m),
            SoapError::Answer(m) => Self::Other(m),
        }
    }
}

/// Reads the profiles of the camera whose device service is at `xaddr`.
pub async fn profiles(
    client: &reqwest::Client,
    xaddr: &str,
    user: &str,
    password: &str,
) -> Result<CameraProfiles, OnvifError> {
    let clock_offset_ms = clock_offset_ms(client, xaddr, user, password).await?;
    let login = Login {
        user,
        password,
        offset_ms: clock_offset_ms,
    };
    let info = call(client, xaddr, "<tds:GetDeviceInformation/>", Some(&login)).await?;
    let identity = |local: &str| -> Result<String, OnvifError> {
        Ok(text_of(parse(&info)?.root(), local)
            .unwrap_or_default()
            .to_string())
    };
    let (manufacturer, model, firmware) = (
        identity("Manufacturer")?,
        identity("Model")?,
        identity("FirmwareVersion")?,
    );
    let media = media_address(client, xaddr, &login).await?;
    let listed = call(client, &media, "<trt:GetProfiles/>", Some(&login)).await?;
    let mut profiles = read_profiles(&parse(&listed)?);
    for p in &mut profiles {
        p.stream_uri = Some(stream_uri(client, &media, &login, &p.token).await?);
        p.snapshot_uri = snapshot_uri(client, &media, &login, &p.token).await;
    }
    let offset_s = clock_offset_ms as f64 / 1000.0;
    Ok(CameraProfiles {
        manufacturer,
        model,
        firmware,
        clock_offset_s: (offset_s * 10.0).round() / 10.0,
        clock_warning: (offset_s.abs() > CLOCK_WARNING_S).then(|| clock_words(offset_s)),
        profiles,
    })
}

fn clock_words(offset_s: f64) -> String {
    format!(
        "the camera's clock is {:.0} s {} this box's: set its time (NTP) so clip times and evidence agree",
        offset_s.abs(),
        if offset_s > 0.0 { "ahead of" } else { "behind" }
    )
}

fn parse(text: &str) -> Result<roxmltree::Document<'_>, OnvifError> {
    roxmltree::Document::parse(text)
        .map_err(|e| OnvifError::Other(format!("the camera's answer is not XML: {e}")))
}

/// The camera's clock minus ours, ms, from GetSystemDateAndTime (its UTC time), taken at
/// the middle of the exchange. ONVIF answers it without a login; a camera that wants one
/// anyway gets it, stamped with our own clock.
async fn clock_offset_ms(
    client: &reqwest::Client,
    xaddr: &str,
    user: &str,
    password: &str,
) -> Result<i64, OnvifError> {
    const ASK: &str = "<tds:GetSystemDateAndTime/>";
    let asked_ms = crate::base::clock::wall_ms();
    let answer = match call(client, xaddr, ASK, None).await {
        Err(SoapError::Refused(_)) => {
            let login = Login {
                user,
                password,
                offset_ms: 0,
            };
            call(client, xaddr, ASK, Some(&login)).await?
        }
        other => other?,
    };
    let middle_ms = (asked_ms + crate::base::clock::wall_ms()) / 2;
    let doc = parse(&answer)?;
    let utc = doc
        .descendants()
        .find(|n| n.tag_name().name() == "UTCDateTime")
        .ok_or_else(|| OnvifError::Other("the camera did not say its UTC time".into()))?;
    let field = |name: &str| -> Option<u32> { text_of(utc, name)?.parse().ok() };
    let camera_ms = chrono::NaiveDate::from_ymd_opt(
        field("Year").unwrap_or(0) as i32,
        field("Month").unwrap_or(0),
        field("Day").unwrap_or(0),
    )
    .and_then(|d| d.and_hms_opt(field("Hour")?, field("Minute")?, field("Second")?))
    .map(|t| t.and_utc().timestamp_millis())
    .ok_or_else(|| OnvifError::Other("the camera's UTC time does not parse".into()))?;
    // The camera says whole seconds: half a second is the middle of what it meant.
    Ok(camera_ms + 500 - middle_ms)
}

/// The media service's address (GetCapabilities), or the device's own when not said.
async fn media_address(
    client: &reqwest::Client,
    xaddr: &str,
    login: &Login<'_>,
) -> Result<String, OnvifError> {
    let body = "<tds:GetCapabilities><tds:Category>Media</tds:Category></tds:GetCapabilities>";
    let answer = call(client, xaddr, body, Some(login)).await?;
    let doc = parse(&answer)?;
    let media = doc
        .descendants()
        .find(|n| n.tag_name().name() == "Media")
        .and_then(|m| text_of(m, "XAddr"));
    Ok(media.unwrap_or(xaddr).to_string())
}

fn read_profiles(doc: &roxmltree::Document<'_>) -> Vec<Profile> {
    doc.descendants()
        .filter(|n| n.tag_name().name() == "Profiles")
        .map(|p| {
            let encoder = p
                .descendants()
                .find(|n| n.tag_name().name() == "VideoEncoderConfiguration");
            let num = |local: &str| {
                encoder
                    .and_then(|e| text_of(e, local))
                    .and_then(|t| t.parse::<f64>().ok())
            };
            Profile {
                token: p.attribute("token").unwrap_or_default().to_string(),
                name: text_of(p, "Name").unwrap_or_default().to_string(),
                codec: encoder
                    .and_then(|e| text_of(e, "Encoding"))
                    .map(str::to_string),
                width: num("Width").map(|v| v as u32),
                height: num("Height").map(|v| v as u32),
                fps: num("FrameRateLimit"),
                bitrate_kbps: num("BitrateLimit").map(|v| v as u32),
                stream_uri: None,
                snapshot_uri: None,
            }
        })
        .collect()
}

async fn stream_uri(
    client: &reqwest::Client,
    media: &str,
    login: &Login<'_>,
    token: &str,
) -> Result<String, OnvifError> {
    let body = format!(
        "<trt:GetStreamUri><trt:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport></trt:StreamSetup><trt:ProfileToken>{}</trt:ProfileToken></trt:GetStreamUri>",
        soap::escape(token)
    );
    let answer = call(client, media, &body, Some(login)).await?;
    text_of(parse(&answer)?.root(), "Uri")
        .map(str::to_string)
        .ok_or_else(|| OnvifError::Other(format!("no stream URI for profile {token}")))
}

/// A profile's snapshot URI; None when the camera has none (many do not).
async fn snapshot_uri(
    client: &reqwest::Client,
    media: &str,
    login: &Login<'_>,
    token: &str,
) -> Option<String> {
    let body = format!(
        "<trt:GetSnapshotUri><trt:ProfileToken>{}</trt:ProfileToken></trt:GetSnapshotUri>",
        soap::escape(token)
    );
    let answer = call(client, media, &body, Some(login)).await.ok()?;
    let doc = roxmltree::Document::parse(&answer).ok()?;
    text_of(doc.root(), "Uri").map(str::to_string)
}

/// The HTTP client for ONVIF: plain HTTP as cameras serve it, no redirects.
pub fn client() -> Result<reqwest::Client, OnvifError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(3))
        .build()
        .map_err(|e| OnvifError::Other(e.to_string()))
}
