//! The sd_notify protocol, spoken directly over `$NOTIFY_SOCKET` (a datagram socket; a
//! leading `@` means Linux's abstract namespace): `READY=1` once cameras and recorders are
//! up, `STATUS=` one-line summaries, `STOPPING=1` at shutdown, and `WATCHDOG=1` from the
//! health loop (health.rs) only while the process is healthy. Outside systemd every call is
//! a no-op.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

pub struct Notifier {
    socket: Option<(UnixDatagram, String)>,
}

impl Notifier {
    pub fn from_env() -> Self {
        let Some(path) = std::env::var_os("NOTIFY_SOCKET").and_then(|p| p.into_string().ok())
        else {
            return Self { socket: None };
        };
        match UnixDatagram::unbound() {
            Ok(s) => Self {
                socket: Some((s, path)),
            },
            Err(e) => {
                tracing::warn!("cannot create the systemd notify socket: {e}");
                Self { socket: None }
            }
        }
    }

    pub fn enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// Sends one notification (e.g. "READY=1"); failures are logged, never fatal.
    pub fn notify(&self, message: &str) {
        let Some((socket, path)) = &self.socket else {
            return;
        };
        let result = if let Some(name) = path.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                .and_then(|addr| socket.send_to_addr(message.as_bytes(), &addr))
        } else {
            socket.send_to(message.as_bytes(), path)
        };
        if let Err(e) = result {
            tracing::debug!("sd_notify {message:?} failed: {e}");
        }
    }
}

/// The watchdog interval systemd asks for (`$WATCHDOG_USEC`, for this process when
/// `$WATCHDOG_PID` is set), if any.
pub fn watchdog_interval() -> Option<Duration> {
    if let Some(pid) = std::env::var("WATCHDOG_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        && pid != std::process::id()
    {
        return None;
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}
