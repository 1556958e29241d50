//! Account changes shared by `sentrix user` and the dashboard's admin API, so both apply
//! the same rules: what a user name may hold, how long a password must be, and that the
//! last admin cannot be removed (nobody could manage users from the dashboard after).
//! Passwords are hashed here (PBKDF2, ~80 ms: callers on an async runtime use a blocking
//! task) and never logged or returned.

use super::{Role, password};
use crate::store::Store;

/// Longest password accepted: PBKDF2 hashes any length, but a megabyte "password" is
/// an attempt to burn CPU, not a credential.
pub const MAX_PASSWORD_CHARS: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// A name or password that breaks the rules (the message says which rule).
    #[error("{0}")]
    Invalid(String),
    #[error("user {0:?} already exists")]
    Exists(String),
    #[error("no user {0:?}")]
    NoSuchUser(String),
    #[error("{0:?} is the last admin; add another admin first")]
    LastAdmin(String),
    #[error("{0}")]
    Internal(String),
}

fn internal(e: impl std::fmt::Display) -> AccountError {
    AccountError::Internal(e.to_string())
}

/// 1-64 letters, digits or `- _ . @` (no spaces or colons: Basic auth splits on ':').
pub fn check_name(name: &str) -> Result<(), AccountError> {
    let ok = !name.is_empty()
        && name.chars().count() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(AccountError::Invalid(format!(
            "user name {name:?} must be 1-64 letters, digits or - _ . @"
        )))
    }
}

/// At least `password::MIN_LENGTH` characters, at most `MAX_PASSWORD_CHARS`, no control
/// characters (a stray newline from a pasted file would never be typed again).
pub fn check_password(pw: &str) -> Result<(), AccountError> {
    let n = pw.chars().count();
    if n < password::MIN_LENGTH {
        return Err(AccountError::Invalid(format!(
            "the password must have at least {} characters",
            password::MIN_LENGTH
        )));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(AccountError::Invalid(format!(
            "the password must have at most {MAX_PASSWORD_CHARS} characters"
        )));
    }
    if pw.chars().any(char::is_control) {
        return Err(AccountError::Invalid(
            "the password must not hold control characters".into(),
        ));
    }
    Ok(())
}

fn role_of(store: &Store, name: &str) -> Result<Option<Role>, AccountError> {
    Ok(store
        .user_credentials(name)
        .map_err(internal)?
        .map(|(role, _)| Role::from_db(&role).unwrap_or(Role::Viewer)))
}

pub fn add(
    store: &Store,
    name: &str,
    role: Role,
    pw: &str,
    now_ms: i64,
) -> Result<(), AccountError> {
    check_name(name)?;
    check_password(pw)?;
    if role_of(store, name)?.is_some() {
        return Err(AccountError::Exists(name.to_string()));
    }
    let phc = password::hash(pw).map_err(internal)?;
    store
        .add_user(name, role.as_str(), &phc, now_ms)
        .map_err(|e| match role_of(store, name) {
            Ok(Some(_)) => AccountError::Exists(name.to_string()),
            _ => internal(e),
        })
}

pub fn set_password(store: &Store, name: &str, pw: &str) -> Result<(), AccountError> {
    check_password(pw)?;
    if role_of(store, name)?.is_none() {
        return Err(AccountError::NoSuchUser(name.to_string()));
    }
    let phc = password::hash(pw).map_err(internal)?;
    store.set_user_password(name, &phc).map_err(internal)
}

pub fn remove(store: &Store, name: &str) -> Result<(), AccountError> {
    match role_of(store, name)? {
        None => Err(AccountError::NoSuchUser(name.to_string())),
        Some(_) => match store.remove_user(name).map_err(internal)? {
            true => Ok(()),
            false => Err(AccountError::LastAdmin(name.to_string())),
        },
    }
}

/// Unlocks user `name` and its known devices (the address locks stay: they expire).
pub fn unlock(store: &Store, name: &str) -> Result<(), AccountError> {
    if role_of(store, name)?.is_none() {
        return Err(AccountError::NoSuchUser(name.to_string()));
    }
    store.unlock_user(name).map_err(internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_passwords_follow_the_rules() {
        assert!(check_name("front-door_cam.admin@home").is_ok());
        for bad in ["", "a b", "a:b", "x/y", &"n".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_password("ten chars!").is_ok());
        assert!(check_password("short").is_err());
        assert!(check_password("line one\nline two").is_err());
        assert!(check_password(&"p".repeat(MAX_PASSWORD_CHARS + 1)).is_err());
    }

    #[test]
    fn the_last_admin_stays_and_duplicates_are_refused() -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("sentrix-accounts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open_accounts(crate::store::StoreConfig {
            recordings_dir: dir.join("rec"),
            database: dir.join("db/sentrix.db"),
            chunk_size: 64 * 1024,
            retention: crate::store::RetentionPolicy::KEEP_ALL,
            offsite_uploaded_first: false,
            review: Default::default(),
        })?;
        add(&store, "alice", Role::Admin, "alice password 1", 1)?;
        add(&store, "victor", Role::Viewer, "victor password 1", 2)?;
        assert_eq!(
            add(&store, "alice", Role::Viewer, "another password", 3),
            Err(AccountError::Exists("alice".into()))
        );
        assert_eq!(
            remove(&store, "alice"),
            Err(AccountError::LastAdmin("alice".into()))
        );
        assert_eq!(
            remove(&store, "nobody"),
            Err(AccountError::NoSuchUser("nobody".into()))
        );
        add(&store, "bob", Role::Admin, "bob password 12", 4)?;
        remove(&store, "alice")?;
        remove(&store, "victor")?;
        assert_eq!(
            remove(&store, "bob"),
            Err(AccountError::LastAdmin("bob".into()))
        );
        set_password(&store, "bob", "bob password 34")?;
        let (_, phc) = store.user_credentials("bob")?.ok_or("bob is gone")?;
        assert!(password::verify("bob password 34", &phc));
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}
