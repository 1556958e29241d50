//! The signals `run` answers: SIGINT/SIGTERM stop, SIGHUP reloads the config, SIGUSR1 is
//! the manual trigger. Their default action kills the process, so `hold` blocks them as
//! the very first thing `sentrix run` does (before the config is read and any thread
//! starts: every thread inherits the mask), and `Signals::install` unblocks them on the
//! main thread once its handlers are in place. A signal sent in between waits, pending,
//! and is then handled: none is lost and none kills.

use anyhow::Context;
use tokio::signal::unix::{Signal, SignalKind, signal};

pub struct Signals {
    pub usr1: Signal,
    pub hup: Signal,
    pub term: Signal,
    pub int: Signal,
}

const HANDLED: [libc::c_int; 4] = [libc::SIGUSR1, libc::SIGHUP, libc::SIGTERM, libc::SIGINT];

/// Blocks (`block`) or unblocks the handled signals on the calling thread.
fn mask(block: bool) {
    // SAFETY: sigset operations on a local set; pthread_sigmask changes only this thread.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in HANDLED {
            libc::sigaddset(&mut set, s);
        }
        let how = if block {
            libc::SIG_BLOCK
        } else {
            libc::SIG_UNBLOCK
        };
        libc::pthread_sigmask(how, &set, std::ptr::null_mut());
    }
}

/// Holds the handled signals pending until `Signals::install` (call first thing, on the
/// main thread).
pub fn hold() {
    mask(true);
}

impl Signals {
    /// Installs the handlers, then lets held signals through (call on the thread that
    /// called `hold`).
    pub fn install() -> anyhow::Result<Self> {
        let installed = Self::handlers();
        mask(false);
        installed
    }

    fn handlers() -> anyhow::Result<Self> {
        let on = |kind: SignalKind, name: &str| {
            signal(kind).with_context(|| format!("while installing the {name} handler"))
        };
        Ok(Self {
            usr1: on(SignalKind::user_defined1(), "SIGUSR1")?,
            hup: on(SignalKind::hangup(), "SIGHUP")?,
            term: on(SignalKind::terminate(), "SIGTERM")?,
            int: on(SignalKind::interrupt(), "SIGINT")?,
        })
    }
}
