//! The end-to-end suite in one test binary (so GStreamer, tract and rustls are linked
//! once, not once per file): each module drives real parts — an in-process RTSP server,
//! SQLite files in temp dirs, `sentrix` child processes, TLS, headless Chromium.
//! `tests/web` is the second binary: it installs a process-wide log capture for its
//! secret sweep, which must not see the other tests' logs.

mod common;

mod browser;
mod camera_loss;
mod cli;
mod config;
mod container;
mod dashboard_run;
mod detect;
mod detect_events;
mod ingest;
mod record;
mod store;
mod store_crash;
mod systemd;
