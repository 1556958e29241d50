//! The dashboard's HTTP layer over real TLS (a generated certificate, rustls on both
//! ends, reqwest trusting that certificate), in one test binary: `auth` (routes, sessions,
//! rate limit, lockout, CSRF, CORS, headers), `media` (Range, traversal), `users` (user
//! management). `fixture` starts the server and sweeps every response and log line for
//! secrets.

#[path = "../it/common/mod.rs"]
mod common;

mod auth;
mod fixture;
mod hostile;
mod media;
mod recordings;
mod review;
mod roles;
mod tokens;
mod users;
