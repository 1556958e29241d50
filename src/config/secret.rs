//! A secret in the config (a password, an HMAC key, an access token): written inline, or
//! read from a file (`{file: PATH}`), a systemd credential (`{credential: NAME}`, from
//! `$CREDENTIALS_DIRECTORY`) or the environment (`{env: NAME}`). Its `Debug` and
//! `Serialize` never show the value; `reveal` is the one way to read it, at the moment of
//! use. Files and credentials are read when the config is checked (a missing one is a
//! config error naming its key) and again when used, so a rotated file takes effect.

use serde::{Deserialize, Serialize, Serializer};
use std::path::PathBuf;

#[derive(Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Secret {
    Inline(String),
    Source(SecretSource),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum SecretSource {
    File(PathBuf),
    Credential(String),
    Env(String),
}

impl Secret {
    /// The value, trimmed of a trailing newline (as files usually end).
    pub fn reveal(&self) -> Result<String, String> {
        let raw = match self {
            Self::Inline(s) => return Ok(s.clone()),
            Self::Source(SecretSource::File(p)) => read(p)?,
            Self::Source(SecretSource::Credential(name)) => {
                let dir = std::env::var_os("CREDENTIALS_DIRECTORY").ok_or_else(|| {
                    format!("systemd credential {name:?}: $CREDENTIALS_DIRECTORY is not set")
                })?;
                read(&PathBuf::from(dir).join(name))?
            }
            Self::Source(SecretSource::Env(name)) => std::env::var(name)
                .map_err(|_| format!("environment variable {name} is not set"))?,
        };
        Ok(raw.trim_end_matches(['\r', '\n']).to_string())
    }

    /// Resolves a relative file against the config's directory.
    pub fn make_absolute(&mut self, base: &std::path::Path) {
        if let Self::Source(SecretSource::File(p)) = self {
            *p = super::paths::absolute(base, p);
        }
    }
}

/// Adds a problem when an inline or file secret is unreadable or empty. The environment
/// and systemd credentials exist only in the service's own environment (not in a shell
/// running `check-config`), so `run` checks those when it uses them.
pub fn check_readable(secret: &Secret, key: &str, p: &mut Vec<(String, String)>) {
    if !matches!(
        secret,
        Secret::Inline(_) | Secret::Source(SecretSource::File(_))
    ) {
        return;
    }
    match secret.reveal() {
        Ok(v) if v.is_empty() => p.push((key.into(), "is empty".into())),
        Ok(_) => {}
        Err(e) => p.push((key.into(), e)),
    }
}

fn read(path: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Inline(_) => f.write_str("Secret(<redacted>)"),
            Self::Source(s) => write!(f, "Secret({s:?})"),
        }
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}
