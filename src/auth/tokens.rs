//! API tokens: credentials for scripts and integrations that are not a person's password.
//!
//! A token is `stx_` and 64 hex digits (256 random bits), shown once when made; the index
//! keeps only its SHA-256. It carries a role and scopes (`events:read`, `clips:read`,
//! `live`, `operate`, `admin`; only an admin's token holds `admin`, and a viewer's never
//! holds `operate`), and may expire. It is sent as
//! `Authorization: Bearer …` and is good for the API only: it never opens a dashboard
//! session, and a token in a URL query is refused before anything else (URLs end up in
//! logs and browser history). Unknown tokens count as failed logins against the client's
//! address, so a scanner is locked out like a password guesser. Checking a token reads
//! the index; its use count is written at most once a second (`count_token_use`), so
//! a script polling the API costs the index no fsync per request.

use super::{Authenticator, LoginError, Principal, Role};
use crate::store::{NewToken, Store, TokenRow};
use axum::http::Method;
use std::net::IpAddr;

/// What a token may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Scope {
    #[serde(rename = "events:read")]
    EventsRead,
    #[serde(rename = "clips:read")]
    ClipsRead,
    #[serde(rename = "live")]
    Live,
    /// Acknowledge, keep, trigger, mark reviewed, switch the armed mode.
    #[serde(rename = "operate")]
    Operate,
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Self::EventsRead,
        Self::ClipsRead,
        Self::Live,
        Self::Operate,
        Self::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::EventsRead => "events:read",
            Self::ClipsRead => "clips:read",
            Self::Live => "live",
            Self::Operate => "operate",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// What a token of `role` gets when no scopes are asked for: everything it may hold.
    pub fn defaults(role: Role) -> Vec<Scope> {
        match role {
            Role::Admin => Self::ALL.to_vec(),
            Role::Operator => vec![Self::EventsRead, Self::ClipsRead, Self::Live, Self::Operate],
            Role::Viewer => vec![Self::EventsRead, Self::ClipsRead, Self::Live],
        }
    }
}

/// The prefix of every token (so a leaked one is recognisable, and refused in URLs).
pub const TOKEN_PREFIX: &str = "stx_";

/// The scope a request needs, or None where tokens are refused (the dashboard's pages
/// and the login and logout routes: a token never opens a session). An operator's change
/// (acknowledge, keep, trigger, mark reviewed, the armed mode) needs `operate`; any other
/// change (POST, PUT, DELETE) and anything about users, tokens, notifications or off-site
/// copies needs `admin`.
pub fn required_scope(method: &Method, path: &str) -> Option<Scope> {
    if path == "/" || path.starts_with("/auth/") || path == "/login" {
        return None;
    }
    if is_operation(method, path) {
        return Some(Scope::Operate);
    }
    let admin_area = [
        "/api/users",
        "/api/tokens",
        "/api/notify",
        "/api/offsite",
        "/api/onvif",
    ]
    .iter()
    .any(|p| path == *p || path.starts_with(&format!("{p}/")));
    if admin_area || !matches!(*method, Method::GET | Method::HEAD) {
        return Some(Scope::Admin);
    }
    let live = path == "/api/events/stream"
        || (path.starts_with("/api/cameras/")
            && ["/live.mp4", "/live.mjpeg", "/snapshot.jpg"]
                .iter()
                .any(|s| path.ends_with(s)));
    if live {
        return Some(Scope::Live);
    }
    let clips = [
        "/clips/",
        "/recordings/",
        "/api/clips",
        "/api/recordings/",
        "/api/timeline",
    ]
    .iter()
    .any(|p| path.starts_with(p));
    Some(if clips {
        Scope::ClipsRead
    } else {
        Scope::EventsRead
    })
}

/// The changes an operator may make: `POST /api/events/{id}/ack` and `/keep`, `POST
/// /api/cameras/{id}/trigger`, `POST /api/review/reviewed` and `/api/review/{id}/reviewed`,
/// `PUT /api/notify/armed`.
pub fn is_operation(method: &Method, path: &str) -> bool {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    matches!(
        (method.as_str(), parts.as_slice()),
        ("POST", ["api", "events", _, "ack" | "keep"])
            | ("POST", ["api", "cameras", _, "trigger"])
            | ("POST", ["api", "review", "reviewed"])
            | ("POST", ["api", "review", _, "reviewed"])
            | ("PUT", ["api", "notify", "armed"])
    )
}

/// Whether a URL query carries a token (by a parameter's name or a value's prefix).
pub fn query_has_token(query: &str) -> bool {
    const NAMES: [&str; 6] = [
        "access_token",
        "token",
        "api_key",
        "apikey",
        "bearer",
        "auth",
    ];
    query.split('&').any(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        NAMES.iter().any(|n| name.eq_ignore_ascii_case(n))
            || value.starts_with(TOKEN_PREFIX)
            || value.starts_with("Bearer")
    })
}

/// What the index keeps of a token: its SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How often a token's use count is written at most.
const USE_FLUSH_MS: i64 = 1000;

/// Uses of one token not yet written to the index.
#[derive(Debug, Clone, Default)]
pub struct PendingUses {
    uses: u64,
    last_ms: i64,
    address: String,
    /// When its count was last written.
    written_ms: i64,
}

/// A token request, from the CLI or the API.
pub struct TokenRequest {
    pub name: String,
    pub role: Role,
    /// None: the role's defaults.
    pub scopes: Option<Vec<Scope>>,
    pub expires_days: Option<f64>,
}

/// Makes a token; returns it (the only time it is seen) and its row.
pub fn create(
    store: &Store,
    req: &TokenRequest,
    now_ms: i64,
) -> Result<(String, TokenRow), String> {
    super::accounts::check_name(&req.name).map_err(|_| {
        format!(
            "token name {:?} must be 1-64 letters, digits or - _ . @",
            req.name
        )
    })?;
    let scopes = req
        .scopes
        .clone()
        .unwrap_or_else(|| Scope::defaults(req.role));
    if scopes.is_empty() {
        return Err("a token needs at least one scope".into());
    }
    if req.role != Role::Admin && scopes.contains(&Scope::Admin) {
        return Err(format!(
            "a{} {}'s token cannot hold the admin scope",
            if req.role == Role::Operator { "n" } else { "" },
            req.role.as_str()
        ));
    }
    if !req.role.operates() && scopes.contains(&Scope::Operate) {
        return Err("a viewer's token cannot hold the operate scope".into());
    }
    let expires_ms = match req.expires_days {
        Some(d) if !(d > 0.0 && d <= 3650.0) => {
            return Err(format!(
                "expiry of {d} days is out of range: 0 < days <= 3650"
            ));
        }
        Some(d) => Some(now_ms + (d * 86_400_000.0) as i64),
        None => None,
    };
    let mut raw = [0u8; 32];
    getrandom::getrandom(&mut raw).map_err(|e| e.to_string())?;
    let token = format!(
        "{TOKEN_PREFIX}{}",
        raw.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let scopes_text = scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    store
        .add_token(&NewToken {
            name: &req.name,
            token_hash: &token_hash(&token),
            role: req.role.as_str(),
            scopes: &scopes_text,
            created_ms: now_ms,
            expires_ms,
        })
        .map_err(|e| e.to_string())?;
    let row = TokenRow {
        name: req.name.clone(),
        role: req.role.as_str().into(),
        scopes: scopes_text,
        created_ms: now_ms,
        expires_ms,
        last_used_ms: None,
        last_address: String::new(),
        uses: 0,
    };
    Ok((token, row))
}

/// A token that was accepted.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    pub principal: Principal,
    pub scopes: Vec<Scope>,
    /// For `Credential::Token`: streams re-check it while they run.
    pub token_hash: String,
}

impl Authenticator {
    /// Checks a bearer token from `ip`, counting the use. A locked address is refused
    /// first; an unknown token counts as a failed login against the address.
    pub fn token_login(&self, token: &str, ip: IpAddr) -> Result<TokenGrant, LoginError> {
        let now = self.now_ms();
        let internal = |e: crate::store::StoreError| LoginError::Internal(e.to_string());
        let address = vec![(crate::store::LockKind::Ip, ip.to_string())];
        self.check_unlocked(&address, now)?;
        // A token is 68 characters: anything far longer is not one (no hashing of junk).
        let hash = match token.len() <= 128 {
            true => token_hash(token),
            false => String::new(),
        };
        if let Some((name, role, scopes)) = self.store.check_token(&hash, now).map_err(internal)? {
            self.count_token_use(&hash, now, ip);
            return Ok(TokenGrant {
                principal: Principal {
                    user: format!("token:{name}"),
                    role: Role::from_db(&role).unwrap_or(Role::Viewer),
                },
                scopes: scopes.split(' ').filter_map(Scope::parse).collect(),
                token_hash: hash,
            });
        }
        if let Some(Some(expired_at)) = self.store.token_expiry(&hash).map_err(internal)?
            && expired_at <= now
        {
            return Err(LoginError::TokenExpired);
        }
        self.record_failure(&address, now)
    }

    /// Counts a use in memory; writes the token's pending uses when it last did more than
    /// `USE_FLUSH_MS` ago (so the first use is written at once).
    fn count_token_use(&self, hash: &str, now_ms: i64, ip: IpAddr) {
        let flush = {
            let mut pending = self.token_uses.lock().unwrap_or_else(|p| p.into_inner());
            let p = pending.entry(hash.to_string()).or_default();
            p.uses += 1;
            p.last_ms = now_ms;
            p.address = ip.to_string();
            (now_ms - p.written_ms >= USE_FLUSH_MS).then(|| {
                p.written_ms = now_ms;
                (std::mem::take(&mut p.uses), p.address.clone())
            })
        };
        if let Some((uses, address)) = flush
            && let Err(e) = self.store.add_token_uses(hash, uses, now_ms, &address)
        {
            tracing::warn!("API token use count not written: {e}");
        }
    }

    /// Writes every token's pending uses (each second from the dashboard's task, and
    /// before tokens are listed).
    pub fn flush_token_uses(&self) {
        let now = self.now_ms();
        let due: Vec<(String, PendingUses)> = {
            let mut pending = self.token_uses.lock().unwrap_or_else(|p| p.into_inner());
            pending.retain(|_, p| p.uses > 0 || now - p.written_ms < 60_000);
            pending
                .iter_mut()
                .filter(|(_, p)| p.uses > 0)
                .map(|(h, p)| {
                    p.written_ms = now;
                    let taken = PendingUses {
                        uses: std::mem::take(&mut p.uses),
                        ..p.clone()
                    };
                    (h.clone(), taken)
                })
                .collect()
        };
        for (hash, p) in due {
            if let Err(e) = self
                .store
                .add_token_uses(&hash, p.uses, p.last_ms, &p.address)
            {
                tracing::warn!("API token use count not written: {e}");
            }
        }
    }

    /// Whether a token still stands (not revoked, not expired).
    pub(super) fn token_still_valid(&self, token_hash: &str) -> Result<bool, LoginError> {
        self.store
            .token_valid(token_hash, self.now_ms())
            .map_err(|e| LoginError::Internal(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_by_route() {
        let get = Method::GET;
        assert_eq!(required_scope(&get, "/"), None);
        assert_eq!(required_scope(&Method::POST, "/auth/verify"), None);
        assert_eq!(required_scope(&get, "/api/events"), Some(Scope::EventsRead));
        assert_eq!(
            required_scope(&get, "/api/analytics"),
            Some(Scope::EventsRead)
        );
        assert_eq!(required_scope(&get, "/clips/3.mp4"), Some(Scope::ClipsRead));
        assert_eq!(
            required_scope(&get, "/api/cameras/a/live.mp4"),
            Some(Scope::Live)
        );
        assert_eq!(required_scope(&get, "/api/users"), Some(Scope::Admin));
        assert_eq!(required_scope(&get, "/api/tokens/x"), Some(Scope::Admin));
        assert_eq!(
            required_scope(&Method::POST, "/api/events/1/ack"),
            Some(Scope::Operate)
        );
        assert_eq!(
            required_scope(&Method::POST, "/api/events/1/ack/more"),
            Some(Scope::Admin)
        );
        assert_eq!(
            required_scope(&Method::PUT, "/api/notify/armed"),
            Some(Scope::Operate)
        );
        assert_eq!(
            required_scope(&Method::PUT, "/api/notify/targets"),
            Some(Scope::Admin)
        );
        assert_eq!(
            required_scope(&get, "/api/userslist"),
            Some(Scope::EventsRead)
        );
    }

    #[test]
    fn tokens_in_queries_are_seen() {
        assert!(query_has_token("access_token=abc"));
        assert!(query_has_token("since=1&x=stx_00ff"));
        assert!(query_has_token("TOKEN=1"));
        assert!(!query_has_token("since=1&until=2&camera=front"));
        assert!(!query_has_token(""));
    }
}
