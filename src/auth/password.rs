//! Password hashing: PBKDF2-HMAC-SHA256, 600,000 iterations, a random 16-byte salt per
//! user, stored as a PHC string (`$pbkdf2-sha256$i=600000,l=32$<salt>$<hash>`). Verification
//! compares in constant time (the pbkdf2 crate's `PasswordVerifier`). An unknown user is
//! checked against a dummy hash of the same cost, so both cases take the same time.

use pbkdf2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use pbkdf2::{Params, Pbkdf2};
use std::sync::OnceLock;

pub const ITERATIONS: u32 = 600_000;
/// Shortest password `user add` accepts.
pub const MIN_LENGTH: usize = 10;

pub fn hash(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    let params = Params {
        rounds: ITERATIONS,
        output_length: 32,
    };
    Pbkdf2
        .hash_password_customized(password.as_bytes(), None, None, params, &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches `phc`. A malformed PHC string never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Pbkdf2.verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// Spends the same time as checking a real user's password, and fails.
pub fn verify_dummy(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let phc = DUMMY.get_or_init(|| hash("sentrix dummy password").unwrap_or_default());
    let _ = verify(password, phc);
}

/// A random password for `sentrix user add` without `--password-stdin`: 20 characters from
/// an unambiguous alphabet (about 110 bits).
pub fn generate() -> Result<String, String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    getrandom::getrandom(&mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn hashes_verify_and_differ_per_salt() {
        let a = super::hash("correct horse battery").unwrap();
        let b = super::hash("correct horse battery").unwrap();
        assert!(a.starts_with("$pbkdf2-sha256$i=600000"), "{a}");
        assert_ne!(a, b);
        assert!(super::verify("correct horse battery", &a));
        assert!(!super::verify("correct horse batterY", &a));
        assert!(!super::verify("x", "not a phc string"));
        assert_eq!(super::generate().unwrap().len(), 20);
    }
}
