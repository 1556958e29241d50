//! The gate every password check passes before any hashing: check, count and reserve in one
//! step, so simultaneous guesses cannot race past the lockout.
//!
//! Under one mutex, `reserve` (1) takes one of the client address's `CHECKS_PER_MINUTE`
//! password checks (a rate limit on every route that checks credentials: Basic on any
//! path, `/auth/verify`, the current password of a password change), then (2) for each
//! lock subject of the attempt (user name and address, or the known device) refuses when
//! it is locked or when its recorded failures plus the attempts already in flight reach
//! `max_login_attempts`, and (3) counts the attempt in flight for each subject. The
//! reservation is released only after the outcome is recorded in the database, so a
//! failure is never invisible to a concurrent check. At most `max_login_attempts` hashes
//! run for a subject before it locks, however many requests arrive at once.

use super::{LoginError, Policy, locked_for};
use crate::store::{LockKind, Store};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

/// Password checks (PBKDF2 runs) one client address may cause per minute.
pub const CHECKS_PER_MINUTE: usize = 20;
/// How often the failure table is pruned of counters that no longer count.
const PRUNE_EVERY_MS: i64 = 60_000;

/// Whose failures an attempt counts against.
pub type Subject = (LockKind, String);

#[derive(Default)]
struct GateState {
    in_flight: HashMap<Subject, u32>,
    checks_by_address: HashMap<IpAddr, VecDeque<i64>>,
    pruned_ms: i64,
}

#[derive(Default)]
pub struct Gate {
    state: Mutex<GateState>,
}

/// Attempts in flight for some subjects; released on drop (after the outcome is stored).
pub struct Reservation<'a> {
    gate: &'a Gate,
    pub subjects: Vec<Subject>,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut st = self.gate.lock();
        for s in &self.subjects {
            if let Some(n) = st.in_flight.get_mut(s) {
                *n -= 1;
                if *n == 0 {
                    st.in_flight.remove(s);
                }
            }
        }
    }
}

impl Gate {
    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves one password check from `ip` against `subjects` (see the module doc).
    pub fn reserve(
        &self,
        store: &Store,
        policy: &Policy,
        ip: IpAddr,
        subjects: Vec<Subject>,
        now_ms: i64,
    ) -> Result<Reservation<'_>, LoginError> {
        let internal = |e: crate::store::StoreError| LoginError::Internal(e.to_string());
        let mut st = self.lock();
        if now_ms - st.pruned_ms > PRUNE_EVERY_MS {
            st.pruned_ms = now_ms;
            store
                .prune_login_failures(now_ms, policy.window_ms())
                .map_err(internal)?;
        }
        take_check(&mut st.checks_by_address, ip, now_ms)?;
        for s in &subjects {
            let count = store
                .login_failures(s.0, &s.1, now_ms, policy.window_ms())
                .map_err(internal)?;
            if let Some(until) = count.locked_until_ms {
                return Err(locked_for(until, now_ms));
            }
            let pending = st.in_flight.get(s).copied().unwrap_or(0);
            if count.failures + pending >= policy.max_attempts {
                return Err(LoginError::Throttled { retry_after_s: 1 });
            }
        }
        for s in &subjects {
            *st.in_flight.entry(s.clone()).or_default() += 1;
        }
        Ok(Reservation {
            gate: self,
            subjects,
        })
    }
}

/// Takes one of `ip`'s password checks for the last minute, or says how long to wait.
fn take_check(
    by_address: &mut HashMap<IpAddr, VecDeque<i64>>,
    ip: IpAddr,
    now_ms: i64,
) -> Result<(), LoginError> {
    by_address.retain(|_, times| times.back().is_some_and(|&t| now_ms - t < 60_000));
    let times = by_address.entry(ip).or_default();
    while times.front().is_some_and(|&t| now_ms - t >= 60_000) {
        times.pop_front();
    }
    if times.len() >= CHECKS_PER_MINUTE {
        let wait_ms = 60_000 - (now_ms - times[0]);
        return Err(LoginError::Throttled {
            retry_after_s: (wait_ms.max(1000) as u64).div_ceil(1000),
        });
    }
    times.push_back(now_ms);
    Ok(())
}
