//! The store's settings taken from the config (surveillance.yml): where it lives, its
//! retention, and which master key seals it. The store itself reads no config; the app
//! and the commands build its settings here.

use crate::config::{Config, KeySource};
use crate::store::container;
use crate::store::keys::{self, MasterKey};
use crate::store::review::AlertRule;
use crate::store::{RetentionPolicy, ReviewPolicy, StoreConfig};

impl StoreConfig {
    pub fn from_config(c: &Config) -> Self {
        Self {
            recordings_dir: c.paths.recordings.clone(),
            database: c.paths.database.clone(),
            chunk_size: container::DEFAULT_CHUNK_SIZE,
            retention: RetentionPolicy::from_config(&c.storage.retention, &c.record),
            offsite_uploaded_first: c
                .storage
                .offsite
                .as_ref()
                .is_some_and(|o| o.require_uploaded_before_delete),
            review: ReviewPolicy::from_config(&c.review),
        }
    }
}

impl ReviewPolicy {
    pub fn from_config(r: &crate::config::review::Review) -> Self {
        Self {
            merge_gap_ms: (r.merge_gap_seconds * 1000.0) as i64,
            max_item_ms: (r.max_item_seconds * 1000.0) as i64,
            alerts: r
                .alerts
                .iter()
                .map(|a| AlertRule {
                    cameras: a.cameras.clone(),
                    labels: a.labels.clone(),
                    zones: a.zones.clone(),
                })
                .collect(),
        }
    }
}

impl RetentionPolicy {
    pub fn from_config(r: &crate::config::Retention, rec: &crate::config::Record) -> Self {
        let days_ms = |d: f64| (d * 86_400_000.0) as i64;
        Self {
            max_size_bytes: (r.max_size_gb * 1e9) as u64,
            event_ms: days_ms(r.event_days),
            continuous_ms: days_ms(r.continuous_days),
            min_free_percent: r.min_free_percent,
            event_margin_ms: (
                (rec.pre_detection_buffer * 1000.0) as i64,
                (rec.post_detection_buffer * 1000.0) as i64,
            ),
        }
    }
}

/// Loads (or on first run creates) the master key the config names.
pub fn load_key(config: &Config) -> Result<MasterKey, keys::KeyError> {
    let enc = &config.storage.encryption;
    match enc.key_source {
        KeySource::File => keys::load_or_create_file(&config.paths.key_file),
        KeySource::SystemdCredential => keys::load_credential(),
        KeySource::Passphrase => {
            let passphrase = keys::read_passphrase()?;
            keys::from_passphrase_with_salt_file(&passphrase, &config.paths.kdf_salt)
        }
        KeySource::Keyring => keys::load_or_create_keyring(),
    }
}
