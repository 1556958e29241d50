//! Cameras added in the dashboard, kept in the index (`managed_cameras`): each one's
//! `cameras[]` entry as JSON, and its password sealed with the master key. The user's
//! `surveillance.yml` is never rewritten; `app/managed.rs` merges these with its cameras.
//!
//! A password is sealed with AES-256-GCM under a key derived from the master key for this
//! purpose alone (HMAC-SHA-256), with a random 96-bit nonce and the camera's id as
//! associated data, so a sealed password moved to another camera's row does not open.
//! Layout: version byte 1, nonce (12 bytes), ciphertext and tag.

use super::keys::MasterKey;
use super::{Store, StoreError};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rusqlite::named_params;
use zeroize::Zeroizing;

const SELECT_ALL: &str = "SELECT id, spec, password FROM managed_cameras ORDER BY created_ms, id";
const UPSERT: &str = "INSERT INTO managed_cameras (id, spec, password, created_ms, updated_ms)
    VALUES (:id, :spec, :password, :now_ms, :now_ms)
    ON CONFLICT (id) DO UPDATE SET spec = excluded.spec, password = excluded.password,
        updated_ms = excluded.updated_ms";
const DELETE: &str = "DELETE FROM managed_cameras WHERE id = :id";
const SELECT_AREAS: &str = "SELECT camera_id, zones, masks FROM camera_areas";
const UPSERT_AREAS: &str = "INSERT INTO camera_areas (camera_id, zones, masks, updated_ms)
    VALUES (:id, :zones, :masks, :now_ms)
    ON CONFLICT (camera_id) DO UPDATE SET zones = excluded.zones, masks = excluded.masks,
        updated_ms = excluded.updated_ms";
const DELETE_AREAS: &str = "DELETE FROM camera_areas WHERE camera_id = :id";

const SEAL_VERSION: u8 = 1;
const NONCE_BYTES: usize = 12;
const KEY_PURPOSE: &[u8] = b"sentrix camera password\0";

/// A dashboard-made camera as kept: its entry (JSON, no password) and its password.
pub struct ManagedCamera {
    pub id: String,
    pub spec_json: String,
    pub password: Option<Zeroizing<String>>,
}

impl Store {
    /// Every dashboard-made camera, oldest first, passwords opened. A password that does
    /// not open (another key, a damaged row) is an error naming the camera.
    pub fn managed_cameras(&self) -> Result<Vec<ManagedCamera>, StoreError> {
        let rows: Vec<(String, String, Option<Vec<u8>>)> = {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached(SELECT_ALL)?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?
        };
        rows.into_iter()
            .map(|(id, spec_json, sealed)| {
                let password = match sealed {
                    Some(bytes) => Some(open_password(self.clip_key(), &id, &bytes)?),
                    None => None,
                };
                Ok(ManagedCamera {
                    id,
                    spec_json,
                    password,
                })
            })
            .collect()
    }

    /// Adds or replaces camera `id`'s entry and password (sealed here).
    pub fn put_managed_camera(
        &self,
        id: &str,
        spec_json: &str,
        password: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let sealed = password
            .map(|p| seal_password(self.clip_key(), id, p))
            .transpose()?;
        self.conn().execute(
            UPSERT,
            named_params! {":id": id, ":spec": spec_json, ":password": sealed,
            ":now_ms": now_ms},
        )?;
        Ok(())
    }

    /// Forgets camera `id` and its drawn areas; false when it was not kept here.
    pub fn delete_managed_camera(&self, id: &str) -> Result<bool, StoreError> {
        let conn = self.conn();
        conn.execute(DELETE_AREAS, named_params! {":id": id})?;
        Ok(conn.execute(DELETE, named_params! {":id": id})? > 0)
    }

    /// Zones and masks drawn in the dashboard: `(camera id, zones JSON, masks JSON)`.
    pub fn camera_areas(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(SELECT_AREAS)?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Keeps camera `id`'s drawn zones and masks (JSON lists of areas).
    pub fn put_camera_areas(
        &self,
        id: &str,
        zones_json: &str,
        masks_json: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            UPSERT_AREAS,
            named_params! {":id": id, ":zones": zones_json, ":masks": masks_json,
            ":now_ms": now_ms},
        )?;
        Ok(())
    }
}

fn cipher(key: &MasterKey) -> Result<Aes256Gcm, StoreError> {
    use hmac::{Hmac, Mac};
    let mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key.secret())
        .map_err(|e| StoreError::Invalid(format!("password key: {e}")))?;
    let mut derived = Zeroizing::new([0u8; 32]);
    derived.copy_from_slice(&mac.chain_update(KEY_PURPOSE).finalize().into_bytes());
    Aes256Gcm::new_from_slice(derived.as_slice())
        .map_err(|e| StoreError::Invalid(format!("password key: {e}")))
}

fn associated_data(id: &str) -> Vec<u8> {
    [b"camera:".as_slice(), id.as_bytes()].concat()
}

fn seal_password(key: &MasterKey, id: &str, password: &str) -> Result<Vec<u8>, StoreError> {
    let mut nonce = [0u8; NONCE_BYTES];
    getrandom::getrandom(&mut nonce)
        .map_err(|e| StoreError::Invalid(format!("no random nonce: {e}")))?;
    let aad = associated_data(id);
    let payload = Payload {
        msg: password.as_bytes(),
        aad: &aad,
    };
    let sealed = cipher(key)?
        .encrypt(Nonce::from_slice(&nonce), payload)
        .map_err(|_| StoreError::Invalid("sealing the camera password failed".into()))?;
    Ok([&[SEAL_VERSION][..], &nonce, &sealed].concat())
}

fn open_password(key: &MasterKey, id: &str, bytes: &[u8]) -> Result<Zeroizing<String>, StoreError> {
    let refused = || {
        StoreError::Invalid(format!(
            "the sealed password of dashboard camera {id:?} does not open with key {} \
             (another key, or a damaged index)",
            key.id()
        ))
    };
    let (version, rest) = bytes.split_first().ok_or_else(refused)?;
    if *version != SEAL_VERSION || rest.len() < NONCE_BYTES {
        return Err(refused());
    }
    let (nonce, sealed) = rest.split_at(NONCE_BYTES);
    let aad = associated_data(id);
    let payload = Payload {
        msg: sealed,
        aad: &aad,
    };
    let plain = Zeroizing::new(
        cipher(key)?
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| refused())?,
    );
    let text = std::str::from_utf8(&plain).map_err(|_| refused())?;
    Ok(Zeroizing::new(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_password_opens_for_its_camera_and_key_only() {
        let key = MasterKey::from_bytes([7; 32]);
        let sealed = seal_password(&key, "gate", "s3cret pass").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"s3cret"));
        assert_eq!(
            open_password(&key, "gate", &sealed).unwrap().as_str(),
            "s3cret pass"
        );
        assert!(open_password(&key, "porch", &sealed).is_err());
        let other = MasterKey::from_bytes([8; 32]);
        assert!(open_password(&other, "gate", &sealed).is_err());
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(open_password(&key, "gate", &flipped).is_err());
        // Two seals of the same password differ (random nonce).
        assert_ne!(sealed, seal_password(&key, "gate", "s3cret pass").unwrap());
    }
}
