//! The clip master key and where it comes from (`storage.encryption.key_source`):
//! - `file`: 32 random bytes in `key_file`, created 0600 on first run; refused if group or
//!   others can read it.
//! - `systemd-credential`: `$CREDENTIALS_DIRECTORY/clip-key` (32 raw bytes or 64 hex), as
//!   delivered by `LoadCredential=`/`LoadCredentialEncrypted=`.
//! - `passphrase`: PBKDF2-HMAC-SHA256, 600,000 iterations, salt in `<database>.kdf` (0600);
//!   the passphrase from `$SENTRIX_PASSPHRASE`, the file named by `$SENTRIX_PASSPHRASE_FILE`,
//!   or one line on standard input.
//! - `keyring`: the kernel's user keyring (`@u`, key `sentrix:clip-key`), created on first
//!   use; found by every later process of the same user until reboot (docs/security.md).
//!   Through `linux-keyutils` directly rather than the `keyring` crate: that crate keeps
//!   keys in the session keyring, which processes here do not share (and which systemd
//!   makes private to each service run).
//!
//! Every key has a public id (the first 8 bytes of SHA-256 over a label and the key) that
//! is written into each clip header, so a wrong key is named instead of producing garbage.

use sha2::{Digest, Sha256};
use std::fmt;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

pub const PBKDF2_ITERATIONS: u32 = 600_000;
pub const CREDENTIAL_NAME: &str = "clip-key";
pub const KEYRING_DESCRIPTION: &str = "sentrix:clip-key";

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId([u8; 8]);

impl KeyId {
    pub fn from_bytes(b: [u8; 8]) -> Self {
        Self(b)
    }
    pub fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// 32 secret bytes; never printed, zeroed on drop.
pub struct MasterKey {
    secret: Zeroizing<[u8; 32]>,
    id: KeyId,
}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let secret = Zeroizing::new(bytes);
        let digest = Sha256::new()
            .chain_update(b"sentrix key id\0")
            .chain_update(secret.as_slice())
            .finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        Self {
            secret,
            id: KeyId(id),
        }
    }

    pub fn random() -> std::io::Result<Self> {
        let mut b = Zeroizing::new([0u8; 32]);
        getrandom::getrandom(b.as_mut_slice()).map_err(std::io::Error::other)?;
        Ok(Self::from_bytes(*b))
    }

    pub fn from_passphrase(passphrase: &[u8], salt: &[u8], iterations: u32) -> Self {
        let mut out = Zeroizing::new([0u8; 32]);
        sentrix_kdf::derive(passphrase, salt, iterations, out.as_mut_slice());
        Self::from_bytes(*out)
    }

    pub fn id(&self) -> KeyId {
        self.id
    }

    pub(crate) fn secret(&self) -> &[u8] {
        self.secret.as_slice()
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(id {})", self.id)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("systemd credential {CREDENTIAL_NAME}: {0}")]
    Credential(String),
    #[error("passphrase: {0}")]
    Passphrase(String),
    #[error("kernel keyring (user keyring, key {KEYRING_DESCRIPTION}): {0}")]
    Keyring(String),
}

fn file_err(path: &Path, reason: impl fmt::Display) -> KeyError {
    KeyError::File {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Creates `dir` (and parents) with mode 0700 where missing.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Writes a new file with mode 0600 (never replacing one) and syncs it.
fn create_secret_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        create_private_dir(parent)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents)?;
    f.sync_all()?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

fn read_private_file(path: &Path, max_len: u64) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let mut f = std::fs::File::open(path).map_err(|e| file_err(path, e))?;
    let mode = f
        .metadata()
        .map_err(|e| file_err(path, e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(file_err(
            path,
            format!(
                "mode {:o} lets other users read it; chmod 600 it",
                mode & 0o777
            ),
        ));
    }
    let mut buf = Zeroizing::new(Vec::new());
    Read::by_ref(&mut f)
        .take(max_len + 1)
        .read_to_end(&mut buf)
        .map_err(|e| file_err(path, e))?;
    Ok(buf)
}

pub fn load_or_create_file(path: &Path) -> Result<MasterKey, KeyError> {
    if !path.exists() {
        let key = Zeroizing::new({
            let mut b = [0u8; 32];
            getrandom::getrandom(&mut b).map_err(|e| file_err(path, e))?;
            b
        });
        create_secret_file(path, key.as_slice())
            .map_err(|e| file_err(path, format!("cannot create: {e}")))?;
        tracing::info!(
            "created a new clip key in {} (back it up: clips cannot be read without it)",
            path.display()
        );
    }
    let bytes = read_private_file(path, 32)?;
    let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
        file_err(
            path,
            format!("is {} bytes, a key file holds exactly 32", bytes.len()),
        )
    })?;
    Ok(MasterKey::from_bytes(arr))
}

fn decode_key_bytes(raw: &[u8]) -> Option<[u8; 32]> {
    if let Ok(arr) = <[u8; 32]>::try_from(raw) {
        return Some(arr);
    }
    let text = std::str::from_utf8(raw).ok()?.trim();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in text.as_bytes().chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

pub fn load_credential() -> Result<MasterKey, KeyError> {
    let dir = std::env::var_os("CREDENTIALS_DIRECTORY").ok_or_else(|| {
        KeyError::Credential("$CREDENTIALS_DIRECTORY is not set: run under systemd with LoadCredential=clip-key:… or LoadCredentialEncrypted=".into())
    })?;
    let path = Path::new(&dir).join(CREDENTIAL_NAME);
    let raw = std::fs::read(&path)
        .map(Zeroizing::new)
        .map_err(|e| KeyError::Credential(format!("{}: {e}", path.display())))?;
    decode_key_bytes(&raw)
        .map(MasterKey::from_bytes)
        .ok_or_else(|| KeyError::Credential("must hold 32 bytes, or 64 hex digits".into()))
}

pub fn read_passphrase() -> Result<Zeroizing<String>, KeyError> {
    let pass = if let Ok(p) = std::env::var("SENTRIX_PASSPHRASE") {
        Zeroizing::new(p)
    } else if let Some(file) = std::env::var_os("SENTRIX_PASSPHRASE_FILE") {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| KeyError::Passphrase(format!("{}: {e}", Path::new(&file).display())))?;
        Zeroizing::new(text.lines().next().unwrap_or("").to_string())
    } else {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| KeyError::Passphrase(e.to_string()))?;
        Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_string())
    };
    if pass.chars().count() < 12 {
        return Err(KeyError::Passphrase(
            "none given or shorter than 12 characters (set SENTRIX_PASSPHRASE, SENTRIX_PASSPHRASE_FILE, or pipe it on stdin)".into(),
        ));
    }
    Ok(pass)
}

/// Derives the key from `passphrase` with the salt in `kdf_file` (created on first use as
/// `pbkdf2-sha256 <iterations> <salt hex>`).
pub fn from_passphrase_with_salt_file(
    passphrase: &str,
    kdf_file: &Path,
) -> Result<MasterKey, KeyError> {
    if !kdf_file.exists() {
        let mut salt = [0u8; 16];
        getrandom::getrandom(&mut salt).map_err(|e| file_err(kdf_file, e))?;
        let hex: String = salt.iter().map(|b| format!("{b:02x}")).collect();
        create_secret_file(
            kdf_file,
            format!("pbkdf2-sha256 {PBKDF2_ITERATIONS} {hex}\n").as_bytes(),
        )
        .map_err(|e| file_err(kdf_file, format!("cannot create: {e}")))?;
    }
    let text = read_private_file(kdf_file, 256)?;
    let text = std::str::from_utf8(&text).map_err(|_| file_err(kdf_file, "is not text"))?;
    let fields: Vec<&str> = text.split_whitespace().collect();
    let (iterations, salt_hex) = match fields.as_slice() {
        ["pbkdf2-sha256", it, salt] => (it.parse::<u32>().ok(), *salt),
        _ => (None, ""),
    };
    let iterations = iterations
        .filter(|i| *i >= PBKDF2_ITERATIONS)
        .ok_or_else(|| {
            file_err(
                kdf_file,
                format!("expected `pbkdf2-sha256 <iterations >= {PBKDF2_ITERATIONS}> <salt hex>`"),
            )
        })?;
    let salt: Option<Vec<u8>> = (0..salt_hex.len() / 2)
        .map(|i| u8::from_str_radix(salt_hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    let salt = salt
        .filter(|s| s.len() >= 16)
        .ok_or_else(|| file_err(kdf_file, "salt is not 16+ bytes of hex"))?;
    Ok(MasterKey::from_passphrase(
        passphrase.as_bytes(),
        &salt,
        iterations,
    ))
}

pub fn load_or_create_keyring() -> Result<MasterKey, KeyError> {
    use linux_keyutils::{KeyError as KE, KeyRing, KeyRingIdentifier};
    let ring = KeyRing::from_special_id(KeyRingIdentifier::User, true)
        .map_err(|e| KeyError::Keyring(format!("cannot open the user keyring: {e:?}")))?;
    match ring.search(KEYRING_DESCRIPTION) {
        Ok(key) => {
            let secret = Zeroizing::new(
                key.read_to_vec()
                    .map_err(|e| KeyError::Keyring(format!("cannot read: {e:?}")))?,
            );
            decode_key_bytes(&secret)
                .map(MasterKey::from_bytes)
                .ok_or_else(|| KeyError::Keyring("the stored secret is not a 32-byte key".into()))
        }
        Err(KE::KeyDoesNotExist) => {
            let key = MasterKey::random().map_err(|e| KeyError::Keyring(e.to_string()))?;
            ring.add_key(KEYRING_DESCRIPTION, key.secret())
                .map_err(|e| KeyError::Keyring(format!("cannot add the key: {e:?}")))?;
            tracing::info!(
                "created a new clip key {} in the kernel user keyring (lost at reboot: back it up)",
                key.id()
            );
            Ok(key)
        }
        Err(e) => Err(KeyError::Keyring(format!("cannot search: {e:?}"))),
    }
}
