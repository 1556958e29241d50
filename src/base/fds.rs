//! The descriptor budget. At start the soft `RLIMIT_NOFILE` is raised to the hard limit (the
//! unit sets `LimitNOFILE`); the dashboard then gets what is left after a reserve for the
//! parts that must never run short: the store (database, WAL, directory handles, clip and
//! partial files), the cameras (RTSP sockets, GStreamer's pipes and wakeups, threads'
//! eventfds) and the process itself (logs, healthcheck socket, runtime). Each connection
//! holds one descriptor, so the web side can never take the last one recording needs.

/// Descriptors kept for the process, the store and the runtime whatever the cameras.
const BASE_RESERVE: u64 = 96;
/// Descriptors kept per camera (two pipelines with their sockets, pipes and files).
const PER_CAMERA_RESERVE: u64 = 48;
/// The dashboard never gets fewer connections than this (a very low limit still serves).
const MIN_WEB_CONNECTIONS: u64 = 8;

/// Raises the soft descriptor limit to the hard one; returns the soft limit now in force.
pub fn raise_soft_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read or write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    // rlim_t is 32-bit on armhf: widen there, a no-op here.
    #[allow(clippy::useless_conversion)]
    u64::from(lim.rlim_cur)
}

/// The most dashboard connections that fit a soft limit of `nofile` with `cameras`.
pub fn web_connection_budget(nofile: u64, cameras: usize) -> usize {
    let reserve = BASE_RESERVE + PER_CAMERA_RESERVE * cameras as u64;
    nofile.saturating_sub(reserve).max(MIN_WEB_CONNECTIONS) as usize
}

/// Descriptors open in this process now (for /metrics and the tests).
pub fn open_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// An anonymous in-memory file (memfd) named `name` holding `bytes`: readers that want a
/// file get one, and nothing reaches a disk.
pub fn memory_file(name: &std::ffi::CStr, bytes: &[u8]) -> std::io::Result<std::fs::File> {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    // SAFETY: memfd_create with a valid NUL-terminated name; the descriptor it returns is
    // owned by the File from here on.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.write_all(bytes)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_leaves_the_reserve() {
        assert_eq!(web_connection_budget(4096, 4), 4096 - 96 - 4 * 48);
        assert_eq!(web_connection_budget(256, 1), 256 - 144);
        assert_eq!(web_connection_budget(100, 8), MIN_WEB_CONNECTIONS as usize);
    }
}
