//! The bottom layer: what every other part may use and which uses nothing of sentrix's
//! own. The clock and local time, camera-URL redaction, the descriptor budget, systemd notifications,
//! logging, the allocator's bounds and heartbeats.

pub mod clock;
pub mod fds;
pub mod heartbeat;
pub mod localtime;
pub mod logging;
pub mod memory;
pub mod redact;
pub mod systemd;
