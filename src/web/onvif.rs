//! ONVIF for the add-camera page (admins): `GET /api/onvif/discover` finds cameras (a
//! WS-Discovery probe to the LAN's multicast group and/or to the addresses given) and says
//! which are already added; `POST /api/onvif/profiles` logs in to one (WS-UsernameToken
//! digest) and answers its identity, clock offset and media profiles with their stream and
//! snapshot URIs. One scan and two profile reads at a time. The login is never logged,
//! audited or answered.

use super::error::AppError;
use super::{Admin, AppState, JsonQuery};
use crate::onvif::{OnvifError, discovery};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// How long a scan listens for answers.
const SCAN_WAIT: Duration = Duration::from_secs(2);
static SCANS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);
static READS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoverParams {
    /// Addresses to probe directly: `a.b.c.d`, `a.b.c.d:port`, `a.b.c.d-e`.
    targets: Option<String>,
    /// Also ask the whole LAN segment (multicast); default true.
    multicast: Option<bool>,
}

pub async fn discover(
    State(s): State<Arc<AppState>>,
    _admin: Admin,
    JsonQuery(q): JsonQuery<DiscoverParams>,
) -> Result<Json<Value>, AppError> {
    let targets = discovery::parse_targets(q.targets.as_deref().unwrap_or_default())
        .map_err(|e| AppError::bad_request(format!("targets: {e}")))?;
    let multicast = q.multicast.unwrap_or(true);
    if targets.is_empty() && !multicast {
        return Err(AppError::bad_request(
            "nothing to scan: give targets, or allow multicast",
        ));
    }
    let _permit = SCANS
        .try_acquire()
        .map_err(|_| AppError::too_many(3, "a scan is running; try again in a moment"))?;
    let found = discovery::discover(&targets, multicast, SCAN_WAIT)
        .await
        .map_err(AppError::internal)?;
    let cameras = s.camera_list();
    let answers: Vec<Value> = found
        .into_iter()
        .map(|f| {
            let hosts: Vec<String> = f
                .xaddrs
                .iter()
                .filter_map(|x| host_of(x))
                .chain([f.address.clone()])
                .collect();
            let added: Vec<&str> = cameras
                .iter()
                .filter(|c| host_of(&c.url).is_some_and(|h| hosts.contains(&h)))
                .map(|c| c.id.as_str())
                .collect();
            let mut v = json!(f);
            v["added_as"] = json!(added);
            v
        })
        .collect();
    Ok(Json(json!({ "cameras": answers })))
}

fn host_of(url: &str) -> Option<String> {
    url::Url::parse(url).ok()?.host_str().map(str::to_string)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfilesRequest {
    xaddr: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

pub async fn profiles(
    State(_s): State<Arc<AppState>>,
    _admin: Admin,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let req: ProfilesRequest = serde_json::from_slice(&body)
        .map_err(|e| AppError::bad_request(format!("bad JSON body: {e}")))?;
    let xaddr = url::Url::parse(&req.xaddr)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| {
            AppError::bad_request("xaddr: must be the camera's http:// device service URL")
        })?;
    if req.xaddr.len() > 2048 || req.username.len() > 256 || req.password.len() > 256 {
        return Err(AppError::bad_request(
            "xaddr, username or password too long",
        ));
    }
    let _permit = READS
        .try_acquire()
        .map_err(|_| AppError::too_many(3, "two cameras are being read; try again in a moment"))?;
    let client = crate::onvif::client().map_err(AppError::internal)?;
    let read = crate::onvif::profiles(&client, xaddr.as_str(), &req.username, &req.password).await;
    let endpoint = format!(
        "{}:{}",
        xaddr.host_str().unwrap_or_default(),
        xaddr.port_or_known_default().unwrap_or(80)
    );
    Ok(Json(match read {
        Ok(camera) => json!({"ok": true, "camera": camera}),
        Err(e) => json!({"ok": false, "trouble": trouble(&e, &endpoint)}),
    }))
}

/// A failed read in the words the tiles use.
fn trouble(e: &OnvifError, endpoint: &str) -> Value {
    use crate::ingest::trouble::TroubleKind;
    let kind = match e {
        OnvifError::WrongPassword(_) => TroubleKind::WrongPassword,
        OnvifError::NoAnswer(m) if m.contains("onnect") && !m.contains("timed out") => {
            TroubleKind::HostUnreachable
        }
        OnvifError::NoAnswer(_) => TroubleKind::NoAnswer,
        OnvifError::Other(_) => TroubleKind::Other,
    };
    json!({"kind": kind, "message": kind.words(endpoint), "detail": e.to_string()})
}
