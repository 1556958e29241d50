//! Password hashing: PBKDF2-HMAC-SHA256, 600,000 iterations, a random 16-byte salt per
//! user, stored as a PHC string (`$pbkdf2-sha256$i=600000,l=32$<salt>$<hash>`). Verification
//! compares in constant time (the pbkdf2 crate's `PasswordVerifier`, through `sentrix_kdf`,
//! which keeps PBKDF2 optimised in test builds too). An unknown user is checked against a
//! dummy hash of the same cost, so both cases take the same time.

use std::sync::OnceLock;

pub const ITERATIONS: u32 = 600_000;
/// Shortest password `user add` accepts.
pub const MIN_LENGTH: usize = 10;

pub fn hash(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| e.to_string())?;
    sentrix_kdf::hash_password(password.as_bytes(), &salt, ITERATIONS)
}

/// Whether `password` matches `phc`. A malformed PHC string never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    sentrix_kdf::verify_password(password.as_bytes(), phc)
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

    /// A hash made elsewhere (Python's `hashlib.pbkdf2_hmac`, 1,000 rounds) still verifies:
    /// stored PHC strings stay valid across how sentrix calls PBKDF2.
    #[test]
    fn a_phc_string_from_another_implementation_verifies() {
        let phc = "$pbkdf2-sha256$i=1000,l=32$AAECAwQFBgcICQoLDA0ODw$AhaeZ02AwPxykuhhDI8XvhQN8GKvmqM+qF6qvs/98I0";
        assert!(super::verify("correct horse battery", phc));
        assert!(!super::verify("correct horse battery ", phc));
        let mut raw = [0u8; 32];
        sentrix_kdf::derive(b"password", b"salt", 4096, &mut raw);
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"
        );
    }
}
