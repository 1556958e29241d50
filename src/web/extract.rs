//! Request extractors shared by the handlers: `ClientIp` (the peer's address, for audit
//! lines and rate limits), `Admin` (the authenticated principal, refused with 403
//! unless an admin) and `JsonQuery` (query parameters, refused with a JSON 400 that names
//! the bad one), so no handler repeats these checks.

use super::error::AppError;
use crate::auth::{Principal, Role};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The client's address (0.0.0.0 when served without connection info, as in `oneshot`
/// tests).
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    pub fn of(parts_extensions: &axum::http::Extensions) -> IpAddr {
        parts_extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(Self::of(&parts.extensions)))
    }
}

/// The authenticated user, who must be an admin.
pub struct Admin(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Principal>() {
            Some(p) if p.role == Role::Admin => Ok(Self(p.clone())),
            Some(_) => Err(AppError::forbidden("this needs an admin")),
            None => Err(AppError::unauthorized()),
        }
    }
}

/// The authenticated user, who must be an operator or an admin.
pub struct Operator(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Operator {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Principal>() {
            Some(p) if p.role.operates() => Ok(Self(p.clone())),
            Some(_) => Err(AppError::forbidden("this needs an operator or an admin")),
            None => Err(AppError::unauthorized()),
        }
    }
}

/// Query parameters; a malformed one is a JSON 400 naming it (axum's own rejection is
/// plain text).
pub struct JsonQuery<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for JsonQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(q)) => Ok(Self(q)),
            Err(e) => Err(AppError::bad_request(e.body_text())),
        }
    }
}
