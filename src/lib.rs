//! sentrix: a single-binary NVR for small boards. The library holds every part so that
//! integration tests drive the same code as the `sentrix` binary (`src/main.rs`).
//!
//! Data flows one way: `ingest` (RTSP → access units and small frames) → record/detect →
//! store → web. `config` is read once at start; `redact` keeps camera passwords out of
//! everything that is shown.

pub mod app;
pub mod auth;
pub mod bench;
pub mod clock;
pub mod config;
pub mod detect;
pub mod health;
pub mod ingest;
pub mod logging;
pub mod record;
pub mod redact;
pub mod selftest;
pub mod store;
pub mod systemd;
pub mod tools;
pub mod web;
