//! sentrix: a single-binary NVR for small boards. The library holds every part so that
//! integration tests drive the same code as the `sentrix` binary (`src/main.rs`).
//!
//! Data flows one way: `ingest` (RTSP → access units and small frames) → record/detect →
//! store → web. `config` is read once at start; `redact` keeps camera passwords out of
//! everything that is shown.

pub mod alarm;
pub mod app;
pub mod audit;
pub mod auth;
pub mod base;
pub mod cmds;
pub mod config;
pub mod detect;
#[cfg(feature = "test-faults")]
pub mod faults;
pub mod health;
pub mod ingest;
pub mod live;
pub mod media;
pub mod notify;
pub mod offsite;
pub mod onvif;
pub mod playback;
pub mod record;
pub mod selftest;
pub mod store;
pub mod tls;
pub mod tools;
pub mod web;
