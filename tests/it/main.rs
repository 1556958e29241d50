//! The end-to-end suite in one test binary (so GStreamer, tract and rustls are linked
//! once, not once per file): each module drives real parts — an in-process RTSP server,
//! SQLite files in temp dirs, `sentrix` child processes, TLS, headless Chromium.
//! Two other binaries stand apart because they watch the whole process: `tests/web`
//! installs a process-wide log capture for its secret sweep, and `tests/camera_loss.rs`
//! counts the process's descriptors and threads.

mod common;

mod alarm;
mod analytics;
mod browser;
mod cameras_admin;
mod cli;
mod compat;
mod config;
mod container;
mod continuous;
mod dashboard_run;
mod detect;
mod detect_events;
mod flood;
mod full_disk;
mod ingest;
mod layers;
mod live_view;
mod notify;
mod notify_servers;
mod offsite;
mod onvif;
mod probe;
mod record;
mod review;
mod review_run;
mod run_tasks;
mod scrub;
mod store;
mod store_crash;
mod systemd;
