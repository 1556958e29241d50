//! API tokens and run-time settings, in the index database. Only a token's SHA-256 is
//! kept (auth/tokens.rs makes and hashes them). Checking a token is a read; its uses are
//! counted in memory and written at most once a second per token (auth/tokens.rs), so a
//! script polling the API never costs the index, which recording writes to, an fsync per
//! request.

use super::{Store, StoreError};
use rusqlite::{OptionalExtension, named_params};

// The statements this file runs (named parameters, bound with named_params!).
const INSERT_TOKEN: &str = "INSERT OR IGNORE INTO api_tokens
    (name, token_hash, role, scopes, created_ms, expires_ms)
    VALUES (:name, :token_hash, :role, :scopes, :created_ms, :expires_ms)";
/// A token that exists and has not expired: its name, role and scopes.
const CHECK_TOKEN: &str = "SELECT name, role, scopes FROM api_tokens
    WHERE token_hash = :token_hash AND (expires_ms IS NULL OR expires_ms > :now_ms)";
/// Uses counted since the last write, with the latest one's time and address.
const ADD_TOKEN_USES: &str = "UPDATE api_tokens SET uses = uses + :uses,
    last_used_ms = MAX(COALESCE(last_used_ms, 0), :last_ms), last_address = :address
    WHERE token_hash = :token_hash";
const TOKEN_EXPIRY: &str = "SELECT expires_ms FROM api_tokens WHERE token_hash = :token_hash";
const TOKEN_VALID: &str = "SELECT EXISTS (SELECT 1 FROM api_tokens WHERE token_hash = :token_hash
    AND (expires_ms IS NULL OR expires_ms > :now_ms)) AS valid";
const SELECT_TOKENS: &str = "SELECT name, role, scopes, created_ms, expires_ms, last_used_ms,
    last_address, uses FROM api_tokens ORDER BY name";
const DELETE_TOKEN: &str = "DELETE FROM api_tokens WHERE name = :name";
const SELECT_SETTING: &str = "SELECT value FROM settings WHERE key = :key";
const SET_SETTING: &str = "INSERT INTO settings (key, value) VALUES (:key, :value)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value";

/// A token as listed (never its value or hash).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TokenRow {
    pub name: String,
    pub role: String,
    /// Space-separated scopes.
    pub scopes: String,
    pub created_ms: i64,
    pub expires_ms: Option<i64>,
    pub last_used_ms: Option<i64>,
    pub last_address: String,
    pub uses: i64,
}

/// A new token's row.
pub struct NewToken<'a> {
    pub name: &'a str,
    pub token_hash: &'a str,
    pub role: &'a str,
    pub scopes: &'a str,
    pub created_ms: i64,
    pub expires_ms: Option<i64>,
}

/// What one use of a token found: its name, role and scopes.
pub type TokenUse = (String, String, String);

impl Store {
    /// Adds a token; fails if the name is taken.
    pub fn add_token(&self, t: &NewToken<'_>) -> Result<(), StoreError> {
        let n = self.conn().execute(
            INSERT_TOKEN,
            named_params! {":name": t.name, ":token_hash": t.token_hash, ":role": t.role,
            ":scopes": t.scopes, ":created_ms": t.created_ms, ":expires_ms": t.expires_ms},
        )?;
        if n == 0 {
            return Err(StoreError::Invalid(format!(
                "a token named {:?} already exists",
                t.name
            )));
        }
        Ok(())
    }

    /// The token with this hash, if it exists and has not expired at `now_ms` (a read:
    /// uses are counted in memory and written by `add_token_uses`).
    pub fn check_token(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<TokenUse>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                CHECK_TOKEN,
                named_params! {":token_hash": token_hash, ":now_ms": now_ms},
                |r| Ok((r.get("name")?, r.get("role")?, r.get("scopes")?)),
            )
            .optional()?)
    }

    /// Adds `uses` to a token's count, with the latest use's time and address.
    pub fn add_token_uses(
        &self,
        token_hash: &str,
        uses: u64,
        last_ms: i64,
        address: &str,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            ADD_TOKEN_USES,
            named_params! {":token_hash": token_hash, ":uses": uses as i64, ":last_ms": last_ms,
            ":address": address},
        )?;
        Ok(())
    }

    /// Some(expiry) when a token with this hash exists (None inside: it never expires).
    pub fn token_expiry(&self, token_hash: &str) -> Result<Option<Option<i64>>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                TOKEN_EXPIRY,
                named_params! {":token_hash": token_hash},
                |r| r.get("expires_ms"),
            )
            .optional()?)
    }

    /// Whether the token with this hash still exists and is unexpired (long streams ask).
    pub fn token_valid(&self, token_hash: &str, now_ms: i64) -> Result<bool, StoreError> {
        Ok(self.conn().query_row(
            TOKEN_VALID,
            named_params! {":token_hash": token_hash, ":now_ms": now_ms},
            |r| r.get("valid"),
        )?)
    }

    pub fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(SELECT_TOKENS)?;
        let rows = stmt.query_map([], |r| {
            Ok(TokenRow {
                name: r.get("name")?,
                role: r.get("role")?,
                scopes: r.get("scopes")?,
                created_ms: r.get("created_ms")?,
                expires_ms: r.get("expires_ms")?,
                last_used_ms: r.get("last_used_ms")?,
                last_address: r.get("last_address")?,
                uses: r.get("uses")?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Revokes a token; false if there was none of that name.
    pub fn remove_token(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .execute(DELETE_TOKEN, named_params! {":name": name})?
            > 0)
    }

    pub fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .query_row(SELECT_SETTING, named_params! {":key": key}, |r| {
                r.get("value")
            })
            .optional()?)
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn()
            .execute(SET_SETTING, named_params! {":key": key, ":value": value})?;
        Ok(())
    }
}
