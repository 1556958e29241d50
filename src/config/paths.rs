//! Every file and directory one sentrix instance uses, resolved once by `Config::load`
//! (relative config paths are relative to the config file's directory). Nothing else
//! resolves config paths or derives one file's place from another's.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paths {
    /// The directory of the config file, absolute.
    pub config_dir: PathBuf,
    /// `storage.recordings_dir`: sealed clips, thumbnails and snapshots.
    pub recordings: PathBuf,
    /// `storage.database`: the SQLite index.
    pub database: PathBuf,
    /// The database's directory, which holds the instance's private files below.
    pub data_dir: PathBuf,
    /// One JSON line per security-relevant action.
    pub audit_log: PathBuf,
    /// `sentrix healthcheck` asks the running instance here.
    pub health_socket: PathBuf,
    /// Held (flock) by the process writing clips (`sentrix run`), so a second is refused.
    pub data_lock: PathBuf,
    /// The salt of the passphrase key source.
    pub kdf_salt: PathBuf,
    /// `storage.encryption.key_file`.
    pub key_file: PathBuf,
    /// `security.tls_cert` and `security.tls_key`.
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
}

/// `p` made absolute against `base` (itself absolute).
pub fn absolute(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

impl Paths {
    /// Derives the instance's files from the config's (already absolute) paths.
    pub fn derive(config: &super::Config) -> Self {
        let database = config.storage.database.clone();
        let data_dir = database
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| config.base_dir.clone());
        let mut kdf_salt = database.as_os_str().to_owned();
        kdf_salt.push(".kdf");
        Self {
            config_dir: config.base_dir.clone(),
            recordings: config.storage.recordings_dir.clone(),
            audit_log: data_dir.join("audit.log"),
            health_socket: data_dir.join("sentrix.sock"),
            data_lock: data_dir.join("sentrix.lock"),
            kdf_salt: PathBuf::from(kdf_salt),
            key_file: config.storage.encryption.key_file.clone(),
            tls_cert: config.security.tls_cert.clone(),
            tls_key: config.security.tls_key.clone(),
            database,
            data_dir,
        }
    }
}
