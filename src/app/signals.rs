//! The signals `run` answers, installed first thing so none can arrive unhandled (the
//! default action of SIGUSR1 and SIGHUP is to kill the process): SIGINT/SIGTERM stop,
//! SIGHUP reloads the config, SIGUSR1 is the manual trigger.

use anyhow::Context;
use tokio::signal::unix::{Signal, SignalKind, signal};

pub struct Signals {
    pub usr1: Signal,
    pub hup: Signal,
    pub term: Signal,
    pub int: Signal,
}

impl Signals {
    pub fn install() -> anyhow::Result<Self> {
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
