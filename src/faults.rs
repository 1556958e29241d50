//! Test-only fault injection, compiled only with the `test-faults` feature (which `make
//! test` turns on; release builds have none of it). A test arms a fault by creating a file
//! in `$SENTRIX_TEST_FAULT_DIR`:
//! - `recorder-panic.<camera>`: that camera's recorder thread panics;
//! - `detector-stall.<camera>`: that camera's detector thread hangs (as in a stuck model);
//! - `main-freeze`: the main loop blocks;
//! - `fsync-fail`: the store's next fsync fails (as after an I/O error).
//!
//! The hooks sit in those loops behind `#[cfg(feature = "test-faults")]`. The hidden
//! `test-writer` command is in cmds/test_writer.rs.

use std::path::PathBuf;
use std::time::Duration;

fn armed(name: &str) -> bool {
    std::env::var_os("SENTRIX_TEST_FAULT_DIR")
        .map(PathBuf::from)
        .is_some_and(|dir| dir.join(name).exists())
}

fn hang(what: &str) -> ! {
    tracing::warn!("test fault: {what} hangs");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

pub fn recorder_hook(camera: &str) {
    if armed(&format!("recorder-panic.{camera}")) {
        panic!("test fault: the recorder of camera {camera} panics");
    }
}

pub fn detector_hook(camera: &str) {
    if armed(&format!("detector-stall.{camera}")) {
        hang(&format!("the detector of camera {camera}"));
    }
}

pub fn main_loop_hook() {
    if armed("main-freeze") {
        hang("the main loop");
    }
}

/// An injected fsync error, if armed.
pub fn fsync_hook() -> std::io::Result<()> {
    if armed("fsync-fail") {
        return Err(std::io::Error::other("test fault: fsync failed"));
    }
    Ok(())
}
