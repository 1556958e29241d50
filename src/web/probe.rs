//! `POST /api/cameras/probe` (admins): what a camera at a URL sends, before it is added.
//! The probe connects as the recorder would (`ingest::probe`) and answers within 10 s
//! with the stream's figures and one picture, or with why it failed in the words the
//! tiles use. At most two probes run at once (each holds a pipeline and a decoder), so a
//! script cannot turn the box into a connection cannon; the recorder never waits on them.

use super::error::AppError;
use super::{Admin, AppState};
use crate::base::redact::CameraUrl;
use crate::ingest::{RtspClient, Transport};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The longest a probe takes, from the request to the answer.
const PROBE_LIMIT: Duration = Duration::from_secs(10);
/// Probes at once.
static PROBES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ProbeRequest {
    url: String,
    #[serde(default)]
    transport: Transport,
    #[serde(default)]
    rtsp_client: RtspClient,
}

pub async fn probe(
    State(_s): State<Arc<AppState>>,
    _admin: Admin,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let req: ProbeRequest = serde_json::from_slice(&body)
        .map_err(|e| AppError::bad_request(format!("bad JSON body: {e}")))?;
    let url = camera_url(&req.url)?;
    if req.rtsp_client == RtspClient::Native && url.scheme() == "rtsps" {
        return Err(AppError::bad_request(
            "native speaks rtsp:// only; use gstreamer or auto for an rtsps:// camera",
        ));
    }
    let _permit = PROBES
        .try_acquire()
        .map_err(|_| AppError::too_many(5, "two probes are running; try again in a moment"))?;
    let (transport, client) = (req.transport, req.rtsp_client);
    let limit = PROBE_LIMIT - Duration::from_millis(500);
    let outcome = tokio::task::spawn_blocking(move || {
        let report = crate::ingest::probe::probe(&url, transport, client, limit)?;
        let jpeg = report
            .picture
            .as_deref()
            .and_then(|f| crate::record::snapshot::encode_jpeg(f).ok());
        Ok::<_, crate::ingest::trouble::Trouble>((report, jpeg))
    })
    .await
    .map_err(AppError::internal)?;
    Ok(Json(match outcome {
        Ok((report, jpeg)) => answer(report, jpeg),
        Err(trouble) => json!({ "ok": false, "trouble": trouble }),
    }))
}

/// A URL the recorder could read: rtsp:// or rtsps:// with a host.
fn camera_url(raw: &str) -> Result<CameraUrl, AppError> {
    if raw.len() > 2048 {
        return Err(AppError::bad_request("url: longer than 2048 bytes"));
    }
    let url = CameraUrl::parse(raw).map_err(|e| AppError::bad_request(format!("url: {e}")))?;
    if !matches!(url.scheme(), "rtsp" | "rtsps") {
        return Err(AppError::bad_request(
            "url: must start with rtsp:// or rtsps://",
        ));
    }
    if url.host().is_none_or(str::is_empty) {
        return Err(AppError::bad_request("url: has no host"));
    }
    Ok(url)
}

fn answer(report: crate::ingest::probe::ProbeReport, jpeg: Option<Vec<u8>>) -> Value {
    use base64::Engine;
    let mut v = json!(report);
    v["ok"] = json!(true);
    v["picture"] = json!(jpeg.map(|j| format!(
        "data:image/jpeg;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(j)
    )));
    v
}
