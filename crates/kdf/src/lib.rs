//! PBKDF2-HMAC-SHA256 behind plain, non-generic functions.
//!
//! The pbkdf2 crate's API is generic (over the PRF and over `impl Into<Salt>`), so its
//! inner loop is compiled in whichever crate calls it, at that crate's opt-level. sentrix's
//! own crate is unoptimised in `make test`'s dev profile, where one 600,000-round check took
//! 2.5 s instead of 0.1 s. Here the generic code is instantiated once, in this crate, which
//! the workspace's profiles build at opt-level 3 in every profile. The formats are the
//! pbkdf2 crate's own: a PHC string for passwords and raw bytes for keys.

use pbkdf2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use pbkdf2::{Params, Pbkdf2};
use sha2::Sha256;

/// Length of a password hash's output, in bytes.
const PASSWORD_HASH_BYTES: usize = 32;

/// Fills `out` with PBKDF2-HMAC-SHA256 of `secret` and `salt` over `rounds` iterations.
pub fn derive(secret: &[u8], salt: &[u8], rounds: u32, out: &mut [u8]) {
    pbkdf2::pbkdf2_hmac::<Sha256>(secret, salt, rounds, out);
}

/// The PHC string (`$pbkdf2-sha256$i=<rounds>,l=32$<salt>$<hash>`) of `password` with
/// `salt` (at least 4 bytes; callers pass 16 random ones).
pub fn hash_password(password: &[u8], salt: &[u8], rounds: u32) -> Result<String, String> {
    let salt = SaltString::encode_b64(salt).map_err(|e| e.to_string())?;
    let params = Params {
        rounds,
        output_length: PASSWORD_HASH_BYTES,
    };
    Pbkdf2
        .hash_password_customized(password, None, None, params, &salt)
        .map(|phc| phc.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches the PHC string `phc`, compared in constant time. A malformed
/// PHC string never matches.
pub fn verify_password(password: &[u8], phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Pbkdf2.verify_password(password, &parsed).is_ok(),
        Err(_) => false,
    }
}
