//! API tokens over the API, for the Users page: list (never a token's value or hash),
//! create (the token is in that one response only) and revoke (effective at the token's
//! next request, and open streams it authorized end within a second). Admins only; a
//! token's own request cannot make or revoke tokens unless it holds `admin`. Audited.

use super::error::AppError;
use super::error::blocking;
use super::{Admin, AppState, ClientIp};
use crate::auth::Role;
use crate::auth::tokens::{self, Scope, TokenRequest};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;

type St = State<Arc<AppState>>;

pub async fn list(State(s): St, _admin: Admin) -> Result<Json<Value>, AppError> {
    let (store, auth) = (s.store.clone(), s.auth.clone());
    let rows = blocking(move || {
        auth.flush_token_uses();
        Ok(store.tokens()?)
    })
    .await?;
    Ok(Json(json!({ "tokens": rows })))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    role: Role,
    scopes: Option<Vec<Scope>>,
    expires_days: Option<f64>,
}

pub async fn create(
    State(s): St,
    Admin(p): Admin,
    ClientIp(ip): ClientIp,
    body: Bytes,
) -> Result<Response, AppError> {
    let new: NewToken = serde_json::from_slice(&body)
        .map_err(|e| AppError::bad_request(format!("bad JSON body: {e}")))?;
    let req = TokenRequest {
        name: new.name,
        role: new.role,
        scopes: new.scopes,
        expires_days: new.expires_days,
    };
    let store = s.store.clone();
    let now = s.auth.now_ms();
    let (token, row) = blocking(move || {
        tokens::create(&store, &req, now).map_err(|e| match e.contains("already exists") {
            true => AppError::conflict(e),
            false => AppError::bad_request(e),
        })
    })
    .await?;
    let what = format!("{} ({}; {})", row.name, row.role, row.scopes);
    s.audit.log(Some(&p.user), ip, "token_create", &what);
    let body = json!({"token": token, "info": row});
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn revoke(
    State(s): St,
    Admin(p): Admin,
    ClientIp(ip): ClientIp,
    Path(name): Path<String>,
) -> Result<Json<Value>, AppError> {
    let store = s.store.clone();
    let n = name.clone();
    if !blocking(move || Ok(store.remove_token(&n)?)).await? {
        return Err(AppError::not_found(format!("no token {name:?}")));
    }
    s.audit.log(Some(&p.user), ip, "token_revoke", &name);
    Ok(Json(json!({ "revoked": name })))
}
