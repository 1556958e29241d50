//! Off-site copies: sealed clips replicated, unchanged, to an S3-compatible bucket, each
//! with a sealed index record, so a stolen box leaves its evidence and a searchable
//! history behind, readable only with the box's key (docs/offsite.md).
//!
//! Data flow, one way: the index's triggers queue a clip when it is finalised
//! (store/offsite.rs) → the uploader (upload.rs) copies and verifies it through the
//! bucket client (client.rs, with the bandwidth cap) → the queue marks it uploaded.
//! `fetch.rs` and `restore.rs` read the bucket back for `sentrix offsite`.

pub mod client;
pub mod fetch;
pub mod record;
pub mod restore;
pub mod upload;

use crate::config::Config;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
pub use upload::UploaderStatus;

/// How often objects past `retention_days` are deleted from the bucket.
const REMOTE_RETENTION_INTERVAL: Duration = Duration::from_secs(3600);

/// The running uploader, for the API and /metrics.
#[derive(Clone)]
pub struct OffsiteHandle {
    pub status: Arc<UploaderStatus>,
    /// The bucket's name and endpoint, and this box's prefix in it.
    pub bucket: String,
    pub prefix: String,
    /// Upload body bytes sent (after the cap).
    pub throttle: Option<Arc<client::Throttle>>,
}

/// The prefix of this box in the bucket: `prefix`, else the box's id.
pub fn prefix_of(
    config: &crate::config::offsite::Offsite,
    store: &Store,
) -> Result<String, String> {
    match &config.prefix {
        Some(p) => Ok(p.clone()),
        None => store.box_id().map_err(|e| e.to_string()),
    }
}

/// Sets the queue's mode from the config and starts the uploader and remote retention.
/// None when off-site copies are off. A bucket that cannot be set up (a missing
/// credential) is reported in the status; clips still queue for when it can.
pub fn start(
    config: &Config,
    store: &Store,
    shutdown: &CancellationToken,
) -> Option<OffsiteHandle> {
    let Some(cfg) = &config.storage.offsite else {
        if let Err(e) = store.offsite_configure(None) {
            tracing::warn!("offsite: cannot turn the upload queue off: {e}");
        }
        return None;
    };
    if let Err(e) = store.offsite_configure(Some(cfg.what.as_str())) {
        tracing::error!("offsite: cannot turn the upload queue on: {e}");
    }
    let status = Arc::new(UploaderStatus::default());
    let prefix = prefix_of(cfg, store);
    let bucket = prefix
        .clone()
        .and_then(|prefix| client::Bucket::open(cfg, &prefix));
    let prefix = prefix.unwrap_or_default();
    let mut handle = OffsiteHandle {
        status: status.clone(),
        bucket: format!("{} at {}", cfg.bucket, cfg.endpoint),
        prefix: prefix.clone(),
        throttle: None,
    };
    match bucket {
        Ok(bucket) => {
            tracing::info!(
                "offsite: copying {} clips to {} under {prefix}/",
                cfg.what.as_str(),
                bucket.name
            );
            handle.throttle = Some(bucket.throttle.clone());
            if cfg.retention_days > 0.0 {
                let (b, days, stop) = (bucket.clone(), cfg.retention_days, shutdown.clone());
                tokio::spawn(remote_retention(b, days, stop));
            }
            let uploader = upload::Uploader {
                store: store.clone(),
                bucket,
                status,
            };
            tokio::spawn(uploader.run(shutdown.clone()));
        }
        Err(e) => {
            tracing::error!("offsite: {e}; clips queue until it is fixed and sentrix restarts");
            status.set_error(&e);
        }
    }
    Some(handle)
}

/// Deletes this box's objects older than `days` from the bucket, hourly.
async fn remote_retention(bucket: client::Bucket, days: f64, shutdown: CancellationToken) {
    loop {
        let cutoff_ms = crate::base::clock::wall_ms() - (days * 86_400_000.0) as i64;
        match restore::delete_older(&bucket, cutoff_ms).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("offsite: deleted {n} objects older than {days} days"),
            Err(e) => tracing::warn!("offsite: remote retention: {e}"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(REMOTE_RETENTION_INTERVAL) => {}
        }
    }
}
