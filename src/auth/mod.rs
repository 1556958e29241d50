//! Who may use the dashboard: users and roles, password checks with lockout, and sessions.
//!
//! A login (HTTP Basic) is refused before any hashing when the username or the client
//! address is locked; otherwise the password is checked (a dummy hash for unknown users,
//! so both take the same time and give the same answer). A failure counts against both the
//! username and the address; `max_login_attempts` of them lock it for `lockout_duration`.
//! The counters live in SQLite and survive a restart. A success clears both and opens a
//! session: a random 256-bit id, valid while used within `session_timeout` and while the
//! user's credentials are those it was opened with (checked each request, one indexed
//! query), so the browser's next requests do not pay PBKDF2 again.

pub mod accounts;
mod attempts;
pub mod password;
mod session;
pub mod tokens;

pub use session::Sessions;

use crate::store::{LockKind, Store};
use std::net::IpAddr;

/// A user's role. Input (`--role`, the users API) parses through clap and serde into this
/// type, so a bad role gets one message; `from_db` reads the stored column.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    /// Between the two: acknowledges, keeps, triggers, exports and switches the armed
    /// mode; manages no users, tokens, cameras, zones or notification targets.
    Operator,
    Viewer,
}

impl Role {
    /// The role stored in the users table (a value sentrix wrote itself).
    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "operator" => Some(Self::Operator),
            "viewer" => Some(Self::Viewer),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Operator => "operator",
            Self::Viewer => "viewer",
        }
    }

    /// Whether this role may act on events and the armed mode (operators and admins).
    pub fn operates(self) -> bool {
        matches!(self, Self::Admin | Self::Operator)
    }
}

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: String,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginError {
    /// Locked: retry after this many seconds. Reported before any password is checked.
    Locked {
        retry_after_s: u64,
    },
    /// Too many password checks from this address, or too many attempts in flight for
    /// the subject: retry after this many seconds. Nothing was checked.
    Throttled {
        retry_after_s: u64,
    },
    /// Wrong user or password (never says which).
    Refused,
    /// An API token that was valid once and has expired.
    TokenExpired,
    Internal(String),
}

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub max_attempts: u32,
    pub lockout_ms: i64,
    pub session_timeout_ms: i64,
}

impl Policy {
    /// How long failures count towards a lock.
    pub fn window_ms(&self) -> i64 {
        self.lockout_ms.max(15 * 60 * 1000)
    }

    pub fn from_config(s: &crate::config::Security) -> Self {
        Self {
            max_attempts: s.max_login_attempts.max(1),
            lockout_ms: s.lockout_duration as i64 * 1000,
            session_timeout_ms: s.session_timeout as i64 * 1000,
        }
    }
}

/// The answer for a lock that ends at `until_ms`.
fn locked_for(until_ms: i64, now_ms: i64) -> LoginError {
    LoginError::Locked {
        retry_after_s: ((until_ms - now_ms) as u64).div_ceil(1000).max(1),
    }
}

/// What a session or a cached Basic login was granted on: a digest of the user's role and
/// password hash at that moment. Each use compares it with the database, so a password
/// change, a role change or a removal, by the dashboard or by `sentrix user` in another
/// process, ends those sessions and cached logins at their next request.
pub type Stamp = [u8; 32];

fn stamp(role: &str, phc: &str) -> Stamp {
    use sha2::{Digest, Sha256};
    Sha256::new()
        .chain_update(role.as_bytes())
        .chain_update([0u8])
        .chain_update(phc.as_bytes())
        .finalize()
        .into()
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct Login {
    pub principal: Principal,
    pub stamp: Stamp,
    /// Verified from the cache of recent Basic credentials (no PBKDF2 ran).
    pub cached: bool,
    /// The request came from a device this user logged in from before (its cookie).
    pub device_known: bool,
}

/// What a request was authorized by, kept for streams that must end when it is revoked.
#[derive(Debug, Clone)]
pub enum Credential {
    Session(String),
    /// HTTP Basic without a session (a cached login): valid while the stamp holds.
    Basic {
        user: String,
        stamp: Stamp,
    },
    /// An API token (its hash): valid while it is neither revoked nor expired.
    Token(String),
    /// `security.require_auth: false`.
    Open,
}

/// What a login attempt presents besides the user name and password.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub ip: IpAddr,
    /// The known-device cookie's token, if the browser sent one.
    pub device_token: Option<&'a str>,
}

/// User names longer than any that can exist are refused without a password check.
const MAX_USER_NAME_BYTES: usize = 64;
/// Known devices remembered per user (the least recently used is forgotten).
const DEVICES_PER_USER: usize = 16;

pub struct Authenticator {
    store: Store,
    policy: Policy,
    clock: crate::base::clock::ClockRef,
    pub sessions: Sessions,
    /// Recently verified Basic credentials, so a client that sends Basic on every request
    /// (scripts, `curl -u`) pays PBKDF2 once, not per request. Keyed by SHA-256 of a random
    /// per-process salt, the user and the password: nothing here outlives the process or
    /// helps an offline guess. Entries expire after `BASIC_CACHE_MS`, and each hit is
    /// checked against the user's current `Stamp`, so a change takes effect at once.
    basic_cache: std::sync::Mutex<std::collections::HashMap<[u8; 32], (Principal, Stamp, i64)>>,
    cache_salt: [u8; 32],
    /// PBKDF2 verifications done (real and dummy), for tests and metrics.
    password_checks: std::sync::atomic::AtomicU64,
    /// Check, count and reserve before hashing (attempts.rs).
    gate: attempts::Gate,
    /// API token uses not yet written to the index, by token hash (tokens.rs).
    token_uses: std::sync::Mutex<std::collections::HashMap<String, tokens::PendingUses>>,
}

/// How long a verified Basic credential is trusted without PBKDF2.
const BASIC_CACHE_MS: i64 = 60_000;

impl Authenticator {
    pub fn new(store: Store, policy: Policy, clock: crate::base::clock::ClockRef) -> Self {
        let mut cache_salt = [0u8; 32];
        // Without randomness the cache key is still a salted hash; getrandom does not fail
        // on Linux after boot.
        let _ = getrandom::getrandom(&mut cache_salt);
        Self {
            sessions: Sessions::new(policy.session_timeout_ms),
            store,
            policy,
            clock,
            basic_cache: std::sync::Mutex::new(std::collections::HashMap::new()),
            cache_salt,
            password_checks: Default::default(),
            gate: Default::default(),
            token_uses: Default::default(),
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.wall_ms()
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Idle seconds before a session ends (the cookie's Max-Age).
    pub fn sessions_timeout_s(&self) -> i64 {
        self.policy.session_timeout_ms / 1000
    }

    /// How many PBKDF2 verifications this authenticator has run.
    pub fn password_checks(&self) -> u64 {
        self.password_checks
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn cache_key(&self, user: &str, password: &str) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        Sha256::new()
            .chain_update(self.cache_salt)
            .chain_update(user.as_bytes())
            .chain_update([0u8])
            .chain_update(password.as_bytes())
            .finalize()
            .into()
    }

    /// Checks a username and password from `from`, from the cache of recently verified
    /// Basic credentials when it can (locks and the stamp are still checked).
    pub fn login_cached(
        &self,
        user: &str,
        password: &str,
        from: Origin<'_>,
    ) -> Result<Login, LoginError> {
        let now = self.now_ms();
        let subjects = self.subjects(user, from, now)?;
        let device_known = subjects.first().is_some_and(|s| s.0 == LockKind::Device);
        let key = self.cache_key(user, password);
        let hit = {
            let mut cache = self.basic_cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.retain(|_, (_, _, until)| *until > now);
            cache.get(&key).map(|(p, st, _)| (p.clone(), *st))
        };
        if let Some((principal, stamp)) = hit {
            // Locks still apply (checked before anything else, as for a full login).
            self.check_unlocked(&subjects, now)?;
            if self.current_stamp(user)? == Some(stamp) {
                return Ok(Login {
                    principal,
                    stamp,
                    cached: true,
                    device_known,
                });
            }
            self.basic_cache
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
        }
        let (principal, stamp) = self.check_password(user, password, from.ip, subjects)?;
        self.basic_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, (principal.clone(), stamp, now + BASIC_CACHE_MS));
        Ok(Login {
            principal,
            stamp,
            cached: false,
            device_known,
        })
    }

    /// Whose failures an attempt counts against: a known device of `user` only (so a
    /// stranger's guesses, which lock the name and their address, never lock it out), else
    /// the user name and the address.
    fn subjects(
        &self,
        user: &str,
        from: Origin<'_>,
        now: i64,
    ) -> Result<Vec<attempts::Subject>, LoginError> {
        if let Some(token) = from.device_token {
            let hash = device_hash(token);
            let owner = self
                .store
                .device_user(&hash, now)
                .map_err(|e| LoginError::Internal(e.to_string()))?;
            if owner.as_deref() == Some(user) {
                return Ok(vec![(LockKind::Device, hash)]);
            }
        }
        Ok(vec![
            (LockKind::User, user.to_string()),
            (LockKind::Ip, from.ip.to_string()),
        ])
    }

    /// Whether `user` names an account (for the audit log, which hashes names that do
    /// not). No lookup for a name longer than any user can have.
    pub fn user_exists(&self, user: &str) -> bool {
        user.len() <= MAX_USER_NAME_BYTES
            && self.store.user_credentials(user).ok().flatten().is_some()
    }

    /// Remembers the browser that just logged in as `user`; returns the token for its
    /// cookie (only its hash is stored).
    pub fn remember_device(&self, user: &str) -> Result<String, LoginError> {
        let mut raw = [0u8; 32];
        getrandom::getrandom(&mut raw).map_err(|e| LoginError::Internal(e.to_string()))?;
        let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        self.store
            .add_device(user, &device_hash(&token), self.now_ms(), DEVICES_PER_USER)
            .map_err(|e| LoginError::Internal(e.to_string()))?;
        Ok(token)
    }

    /// Checks the password of a user who is already signed in (a password change): the
    /// same gate, counters and rate limit as a login, from their address.
    pub fn check_current_password(
        &self,
        user: &str,
        password: &str,
        from: Origin<'_>,
    ) -> Result<(), LoginError> {
        let subjects = self.subjects(user, from, self.now_ms())?;
        self.check_password(user, password, from.ip, subjects)
            .map(|_| ())
    }

    /// Opens a session for a login; returns its id.
    pub fn open_session(&self, login: &Login) -> Result<String, LoginError> {
        self.sessions
            .open(login.principal.clone(), login.stamp, self.now_ms())
            .map_err(LoginError::Internal)
    }

    /// The user of session `id` if it is open, not idle too long, and the user's
    /// credentials are still those it was opened with (else it is closed).
    pub fn session(&self, id: &str) -> Result<Option<Principal>, LoginError> {
        let Some((principal, stamp)) = self.sessions.touch(id, self.now_ms()) else {
            return Ok(None);
        };
        if self.current_stamp(&principal.user)? == Some(stamp) {
            Ok(Some(principal))
        } else {
            self.sessions.close(id);
            Ok(None)
        }
    }

    /// Whether `credential` still authorizes: its session open and unexpired, and the
    /// user's role and password unchanged. Long streams ask this every half second.
    pub fn still_valid(&self, credential: &Credential) -> Result<bool, LoginError> {
        let (user, stamp) = match credential {
            Credential::Open => return Ok(true),
            Credential::Token(hash) => return self.token_still_valid(hash),
            Credential::Basic { user, stamp } => (user.clone(), *stamp),
            Credential::Session(id) => match self.sessions.peek(id, self.now_ms()) {
                Some((p, stamp)) => (p.user, stamp),
                None => return Ok(false),
            },
        };
        Ok(self.current_stamp(&user)? == Some(stamp))
    }

    fn current_stamp(&self, user: &str) -> Result<Option<Stamp>, LoginError> {
        Ok(self
            .store
            .user_credentials(user)
            .map_err(|e| LoginError::Internal(e.to_string()))?
            .map(|(role, phc)| stamp(&role, &phc)))
    }

    /// Keeps session `id` open across a change of its own user's password (every other
    /// session and cached login of that user ends at its next request, by its stamp).
    pub fn renew_session(&self, id: &str) -> Result<(), LoginError> {
        if let Some((principal, _)) = self.sessions.touch(id, self.now_ms())
            && let Some(stamp) = self.current_stamp(&principal.user)?
        {
            self.sessions.restamp(id, stamp);
        }
        Ok(())
    }

    /// Err(Locked) when any of `subjects` is locked at `now`.
    fn check_unlocked(&self, subjects: &[attempts::Subject], now: i64) -> Result<(), LoginError> {
        let window = self.policy.window_ms();
        for (kind, subject) in subjects {
            let count = self
                .store
                .login_failures(*kind, subject, now, window)
                .map_err(|e| LoginError::Internal(e.to_string()))?;
            if let Some(until) = count.locked_until_ms {
                return Err(locked_for(until, now));
            }
        }
        Ok(())
    }

    /// One password check through the gate: reserve, hash, record the outcome, release.
    fn check_password(
        &self,
        user: &str,
        password: &str,
        ip: IpAddr,
        subjects: Vec<attempts::Subject>,
    ) -> Result<(Principal, Stamp), LoginError> {
        let now = self.now_ms();
        let internal = |e: crate::store::StoreError| LoginError::Internal(e.to_string());
        let reservation = self
            .gate
            .reserve(&self.store, &self.policy, ip, subjects, now)?;
        let found = match user.len() <= MAX_USER_NAME_BYTES {
            true => self.store.user_credentials(user).map_err(internal)?,
            false => None,
        };
        self.password_checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ok = match &found {
            Some((_, phc)) => password::verify(password, phc),
            None => {
                password::verify_dummy(password);
                false
            }
        };
        match found {
            Some((role, phc)) if ok => {
                // A success clears its own user's (or device's) count, never the address's:
                // a viewer's login must not reset a stranger's guesses from that address.
                for (kind, subject) in &reservation.subjects {
                    if *kind != LockKind::Ip {
                        self.store
                            .clear_login_failures(*kind, subject)
                            .map_err(internal)?;
                    }
                }
                let principal = Principal {
                    user: user.to_string(),
                    role: Role::from_db(&role).unwrap_or(Role::Viewer),
                };
                Ok((principal, stamp(&role, &phc)))
            }
            _ => self.record_failure(&reservation.subjects, now),
        }
    }

    /// Checks a device's password for `service` (an alarm camera's SMTP login) through the
    /// same gate, lockout and failure counts as a dashboard login: the subjects are
    /// `service:user` and the address. `expected` None (no such user) still spends a check.
    pub fn check_service_login(
        &self,
        service: &str,
        user: &str,
        given: &str,
        expected: Option<&str>,
        ip: IpAddr,
    ) -> Result<(), LoginError> {
        let now = self.now_ms();
        let subject = format!("{service}:{}", cut_name(user));
        let subjects = vec![(LockKind::User, subject), (LockKind::Ip, ip.to_string())];
        self.check_unlocked(&subjects, now)?;
        let reservation = self
            .gate
            .reserve(&self.store, &self.policy, ip, subjects, now)?;
        self.password_checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ok = expected.is_some_and(|e| same_secret(e, given));
        if !ok {
            return self.record_failure(&reservation.subjects, now);
        }
        if let Some((kind, subject)) = reservation.subjects.first() {
            self.store
                .clear_login_failures(*kind, subject)
                .map_err(|e| LoginError::Internal(e.to_string()))?;
        }
        Ok(())
    }

    /// Counts a failed check against each subject; Locked if that locked one of them.
    fn record_failure<T>(&self, subjects: &[attempts::Subject], now: i64) -> Result<T, LoginError> {
        let p = self.policy;
        let mut locked = None;
        for (kind, subject) in subjects {
            let until = self
                .store
                .record_login_failure(
                    *kind,
                    subject,
                    now,
                    p.window_ms(),
                    p.max_attempts,
                    p.lockout_ms,
                )
                .map_err(|e| LoginError::Internal(e.to_string()))?;
            locked = locked.max(until);
        }
        match locked {
            Some(until) => Err(locked_for(until, now)),
            None => Err(LoginError::Refused),
        }
    }
}

/// A user name cut to `MAX_USER_NAME_BYTES` (on a character boundary) for a lock subject.
fn cut_name(user: &str) -> &str {
    let mut end = user.len().min(MAX_USER_NAME_BYTES);
    while !user.is_char_boundary(end) {
        end -= 1;
    }
    &user[..end]
}

/// Whether two secrets are equal, comparing their SHA-256 digests in constant time.
fn same_secret(a: &str, b: &str) -> bool {
    use sha2::{Digest, Sha256};
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

/// What the database keeps of a device token: its SHA-256, hex.
fn device_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(format!("sentrix device\0{token}"))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
