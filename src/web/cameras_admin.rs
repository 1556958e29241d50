//! Cameras managed from the dashboard (admins): `POST /api/cameras`, `PUT /api/cameras/{id}`
//! and `DELETE /api/cameras/{id}`. A body is a `cameras[]` entry as JSON, checked by the
//! same rules, with the same messages, as `check-config`. The handler only reads the body;
//! the change itself goes to the run loop (`app/managed.rs`) as a `ChangeRequest`, which
//! checks it against every other camera, keeps it in the index (its password sealed),
//! restarts that camera alone and answers. One loop applies every change, so two admins
//! at once cannot both take an id. A password given here is never sent back: answers show
//! `"password": "••••"`. Cameras from surveillance.yml are shown but not changed here.

use super::error::AppError;
use super::{Admin, AppState, CameraInfo, ClientIp};
use crate::config::{Area, Camera};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use zeroize::Zeroizing;

/// How long a change may take (a camera stopping finishes its clip first).
const APPLY_LIMIT: Duration = Duration::from_secs(30);
/// What every answer shows for a password that is set.
pub const MASK: &str = "••••";

/// A camera's password as a change gives it.
pub enum PasswordEdit {
    /// Unchanged (a PUT without `password`).
    Keep,
    /// No password (`""`, or a POST without one).
    Clear,
    Set(Zeroizing<String>),
}

pub enum CameraChange {
    Add {
        camera: Box<Camera>,
        password: PasswordEdit,
    },
    Edit {
        camera: Box<Camera>,
        password: PasswordEdit,
    },
    Remove {
        id: String,
    },
    /// Zones and masks drawn on the camera page, for any camera.
    Areas {
        id: String,
        zones: Vec<Area>,
        masks: Vec<Area>,
    },
}

/// Why the run loop did not apply a change.
pub enum Refusal {
    /// The camera's entry breaks the config's rules: `(key, message)` with the key inside
    /// the entry (`url`, `zones[0]`…).
    Invalid(Vec<(String, String)>),
    NotFound(String),
    Conflict(String),
    Failed(String),
}

/// A change and where its outcome goes: Ok carries the sentence to show.
pub struct ChangeRequest {
    pub change: CameraChange,
    pub reply: tokio::sync::oneshot::Sender<Result<String, Refusal>>,
}

/// The dashboard's side of camera management: where changes go, and the camera list the
/// API shows (the run loop replaces it after each change).
#[derive(Clone)]
pub struct CameraDesk {
    pub changes: tokio::sync::mpsc::Sender<ChangeRequest>,
    pub list: Arc<RwLock<Vec<CameraInfo>>>,
}

pub async fn add(
    State(s): State<Arc<AppState>>,
    Admin(p): Admin,
    ClientIp(ip): ClientIp,
    body: Bytes,
) -> Result<Response, AppError> {
    let (camera, password) = parse_entry(&body, None)?;
    let id = camera.id.clone();
    let password = password.unwrap_or(PasswordEdit::Clear);
    let said = send(&s, CameraChange::Add { camera, password }).await?;
    s.audit.log(Some(&p.user), ip, "camera_add", &id);
    Ok((StatusCode::CREATED, Json(answer(&s, &id, said))).into_response())
}

pub async fn edit(
    State(s): State<Arc<AppState>>,
    Admin(p): Admin,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let (camera, password) = parse_entry(&body, Some(&id))?;
    let password = password.unwrap_or(PasswordEdit::Keep);
    let said = send(&s, CameraChange::Edit { camera, password }).await?;
    s.audit.log(Some(&p.user), ip, "camera_edit", &id);
    Ok(Json(answer(&s, &id, said)))
}

pub async fn remove(
    State(s): State<Arc<AppState>>,
    Admin(p): Admin,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let said = send(&s, CameraChange::Remove { id: id.clone() }).await?;
    s.audit.log(Some(&p.user), ip, "camera_remove", &id);
    Ok(Json(json!({ "id": id, "message": said })))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AreasBody {
    #[serde(default)]
    zones: Vec<Area>,
    #[serde(default)]
    masks: Vec<Area>,
}

/// `PUT /api/cameras/{id}/zones`: `{zones, masks}` as in `cameras[]`, for any camera.
/// The detector takes them at its next frame; nothing restarts.
pub async fn set_areas(
    State(s): State<Arc<AppState>>,
    Admin(p): Admin,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let body: AreasBody = serde_json::from_slice(&body)
        .map_err(|e| AppError::bad_request(format!("bad JSON body: {e}")))?;
    let (zones, masks) = (body.zones, body.masks);
    let summary = format!("{id}: {} zones, {} masks", zones.len(), masks.len());
    let change = CameraChange::Areas {
        id: id.clone(),
        zones,
        masks,
    };
    let said = send(&s, change).await?;
    s.audit.log(Some(&p.user), ip, "camera_zones", &summary);
    Ok(Json(answer(&s, &id, said)))
}

/// The entry and its password (None: the body did not say). `path_id` is the id in a
/// PUT's path, which the body may repeat but not change.
fn parse_entry(
    body: &[u8],
    path_id: Option<&str>,
) -> Result<(Box<Camera>, Option<PasswordEdit>), AppError> {
    let mut fields: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|e| AppError::bad_request(format!("bad JSON body: {e}")))?;
    let password = match fields.remove("password") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => Some(PasswordEdit::Clear),
        Some(Value::String(s)) if s == MASK => Some(PasswordEdit::Keep),
        Some(Value::String(s)) => Some(PasswordEdit::Set(Zeroizing::new(s))),
        Some(_) => {
            return Err(AppError::bad_request(
                "password: must be a string (the dashboard keeps it sealed)",
            ));
        }
    };
    if let Some(id) = path_id {
        match fields.get("id") {
            None => {
                fields.insert("id".into(), Value::String(id.to_string()));
            }
            Some(Value::String(given)) if given == id => {}
            Some(_) => {
                return Err(AppError::bad_request(
                    "id: cannot be changed; remove the camera and add it again",
                ));
            }
        }
    }
    let from_url = password_out_of_url(&mut fields)?;
    let camera: Camera = serde_json::from_value(Value::Object(fields))
        .map_err(|e| AppError::bad_request(format!("camera: {e}")))?;
    let password = match (password, from_url) {
        (Some(_), Some(_)) => {
            return Err(AppError::bad_request(
                "url: carries a password and so does password; keep it in one place",
            ));
        }
        (given, from_url) => given.or(from_url.map(PasswordEdit::Set)),
    };
    Ok((Box::new(camera), password))
}

/// A URL typed with its password (`rtsp://admin:pw@cam/…`): the password moves out, to
/// be sealed, and the URL keeps the user alone.
fn password_out_of_url(
    fields: &mut Map<String, Value>,
) -> Result<Option<Zeroizing<String>>, AppError> {
    let Some(Value::String(raw)) = fields.get("url") else {
        return Ok(None);
    };
    let Ok(mut url) = url::Url::parse(raw) else {
        return Ok(None); // the entry's own check words the error
    };
    let Some(password) = url.password().map(|p| {
        Zeroizing::new(
            percent_encoding::percent_decode_str(p)
                .decode_utf8_lossy()
                .into_owned(),
        )
    }) else {
        return Ok(None);
    };
    url.set_password(None)
        .map_err(|_| AppError::bad_request("url: its password cannot be taken out"))?;
    fields.insert("url".into(), Value::String(url.to_string()));
    Ok(Some(password))
}

async fn send(s: &AppState, change: CameraChange) -> Result<String, AppError> {
    let desk = s.desk.as_ref().ok_or_else(|| {
        AppError::conflict("cameras are managed by the running box; this server only reads")
    })?;
    let (reply, outcome) = tokio::sync::oneshot::channel();
    desk.changes
        .send(ChangeRequest { change, reply })
        .await
        .map_err(|_| AppError::conflict("sentrix is stopping"))?;
    let outcome = tokio::time::timeout(APPLY_LIMIT, outcome)
        .await
        .map_err(|_| AppError::internal("a camera change took longer than 30 s"))?
        .map_err(|_| AppError::conflict("sentrix is stopping"))?;
    outcome.map_err(refusal)
}

fn refusal(r: Refusal) -> AppError {
    match r {
        Refusal::Invalid(problems) => {
            let mut e = AppError::bad_request(
                problems
                    .iter()
                    .map(|(k, m)| format!("{k}: {m}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            );
            e.problems = problems;
            e
        }
        Refusal::NotFound(m) => AppError::not_found(m),
        Refusal::Conflict(m) => AppError::conflict(m),
        Refusal::Failed(m) => AppError::internal(m),
    }
}

/// The camera as the list now shows it, and what was done.
fn answer(s: &AppState, id: &str, said: String) -> Value {
    let info = s.camera_list().into_iter().find(|c| c.id == id);
    json!({ "camera": info, "message": said })
}
