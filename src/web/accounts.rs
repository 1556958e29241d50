//! User management over the API, for the dashboard's Users page: list, add, change a
//! password, remove. Admins manage everyone; any user may change their own password by
//! giving the current one (checked like a login, so guesses count towards lockout). The
//! rules are `auth::accounts`', the same as `sentrix user`'s. Every change is audited; a
//! changed or removed user's other sessions and cached Basic logins end at their next
//! request by their stamp (`auth::Stamp`), as for a change made by `sentrix user`.
//! Passwords arrive in JSON bodies and go nowhere but the hash.

use super::error::AppError;
use super::error::blocking;
use super::{Admin, AppState, ClientIp, SessionId};
use crate::auth::accounts::{self, AccountError};
use crate::auth::{LoginError, Origin, Principal, Role};
use crate::store::LockKind;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{Value, json};
use std::sync::Arc;

type St = State<Arc<AppState>>;

impl From<AccountError> for AppError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Invalid(m) => AppError::bad_request(m),
            AccountError::NoSuchUser(_) => AppError::not_found(e.to_string()),
            AccountError::Exists(_) | AccountError::LastAdmin(_) => {
                AppError::conflict(e.to_string())
            }
            AccountError::Internal(m) => AppError::internal(m),
        }
    }
}

/// A JSON body, or a 400 that says what is wrong with it (axum's own rejection is text).
fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, AppError> {
    serde_json::from_slice(body).map_err(|e| AppError::bad_request(format!("bad JSON body: {e}")))
}

/// Every user, with `locked_until_ms` set while the name is locked against unknown devices.
pub async fn list(State(s): St, _admin: Admin) -> Result<Json<Value>, AppError> {
    let store = s.store.clone();
    let now = s.auth.now_ms();
    let window_ms = s.auth.policy().window_ms();
    let list = blocking(move || {
        let mut out = Vec::new();
        for u in store.users()? {
            let lock = store.login_failures(LockKind::User, &u.name, now, window_ms)?;
            out.push(json!({
                "name": u.name, "role": u.role, "created_ms": u.created_ms,
                "locked_until_ms": lock.locked_until_ms,
            }));
        }
        Ok(out)
    })
    .await?;
    Ok(Json(json!({ "users": list })))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    username: String,
    role: Role,
    password: String,
}

pub async fn add(
    State(s): St,
    Admin(p): Admin,
    ClientIp(ip): ClientIp,
    body: Bytes,
) -> Result<Response, AppError> {
    let new: NewUser = parse(&body)?;
    let role = new.role;
    let store = s.store.clone();
    let now = s.auth.now_ms();
    let name = new.username.clone();
    blocking(move || Ok(accounts::add(&store, &name, role, &new.password, now)?)).await?;
    s.audit.log(
        Some(&p.user),
        ip,
        "user_add",
        &format!("{} ({})", new.username, role.as_str()),
    );
    let body = json!({"username": new.username, "role": role.as_str()});
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    password: String,
    /// The password of whoever makes the change (their own, also when an admin sets
    /// another user's): a stolen session alone cannot take over an account.
    current_password: Option<String>,
}

pub async fn set_password(
    State(s): St,
    Path(name): Path<String>,
    Extension(p): Extension<Principal>,
    session: Option<Extension<SessionId>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    if p.role != Role::Admin && p.user != name {
        return Err(AppError::forbidden(
            "only an admin changes other users' passwords",
        ));
    }
    let change: NewPassword = parse(&body)?;
    let current = change
        .current_password
        .clone()
        .ok_or_else(|| AppError::bad_request("give current_password: your own password"))?;
    let device = s.cookies().device_token(&headers);
    let (auth, user) = (s.auth.clone(), p.user.clone());
    let checked = blocking(move || {
        let from = Origin {
            ip,
            device_token: device.as_deref(),
        };
        Ok(auth.check_current_password(&user, &current, from))
    });
    match checked.await? {
        Ok(()) => {}
        // 403, not the 401 of a failed login: the session itself is fine.
        Err(LoginError::Refused) => {
            s.audit.log(Some(&p.user), ip, "login_failed", &p.user);
            return Err(AppError::forbidden("the current password is wrong"));
        }
        Err(e) => return Err(e.into()),
    }
    let store = s.store.clone();
    let target = name.clone();
    blocking(move || Ok(accounts::set_password(&store, &target, &change.password)?)).await?;
    // The stamp check ends the user's other sessions and cached logins; the one that
    // changed its own password stays open.
    if let Some(Extension(SessionId(id))) = session.filter(|_| p.user == name) {
        let auth = s.auth.clone();
        blocking(move || Ok(auth.renew_session(&id)?)).await?;
    }
    s.audit.log(Some(&p.user), ip, "user_passwd", &name);
    Ok(Json(json!({"username": name, "password_changed": true})))
}

/// Lifts the lock on a user name (and on that user's known devices), as
/// `sentrix user unlock` does.
pub async fn unlock(
    State(s): St,
    Path(name): Path<String>,
    Admin(p): Admin,
    ClientIp(ip): ClientIp,
) -> Result<Json<Value>, AppError> {
    let store = s.store.clone();
    let target = name.clone();
    blocking(move || Ok(accounts::unlock(&store, &target)?)).await?;
    s.audit.log(Some(&p.user), ip, "user_unlock", &name);
    Ok(Json(json!({"username": name, "unlocked": true})))
}

pub async fn remove(
    State(s): St,
    Path(name): Path<String>,
    Admin(p): Admin,
    ClientIp(ip): ClientIp,
) -> Result<Json<Value>, AppError> {
    if p.user == name {
        return Err(AppError::conflict(
            "you cannot remove yourself; another admin can",
        ));
    }
    let store = s.store.clone();
    let target = name.clone();
    blocking(move || Ok(accounts::remove(&store, &target)?)).await?;
    s.audit.log(Some(&p.user), ip, "user_remove", &name);
    Ok(Json(json!({"username": name, "removed": true})))
}
