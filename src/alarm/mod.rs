//! Alarm receivers: cameras, doorbells and DVRs that cannot stream but e-mail a few
//! pictures when their own sensor fires. `smtp` receives the mail (admitted through the
//! dashboard's connection table, authenticated through its login gate, TLS with its
//! certificate), `mime` takes the pictures out, `picture` checks each before anything
//! decodes it, `intake` turns them into events (and `clip` into a clip) on the event bus
//! like any detection.
//!
//! The receivers run beside the dashboard and share its lifetime: a reload restarts both.

pub mod clip;
pub mod intake;
pub mod mime;
pub mod picture;
pub mod smtp;

use crate::config::Config;
use crate::store::Store;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What the dashboard shares with the receivers.
#[derive(Clone)]
pub struct Shared {
    pub table: Arc<crate::web::conn::ConnTable>,
    pub auth: Arc<crate::auth::Authenticator>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub audit: Arc<crate::audit::Audit>,
}

/// The recipient address of camera `cam`'s alarm mail (config::alarms::smtp_address with
/// this box's keyed tag).
pub fn smtp_address(store: &Store, cam: &crate::config::Camera) -> Option<String> {
    crate::config::alarms::smtp_address(cam, |id| {
        store.keyed_tag(crate::config::alarms::ADDRESS_TAG_PURPOSE, id, 8)
    })
}

/// Starts the intake and the SMTP receiver when `alarms.smtp` is set; they stop with
/// `stop`. Returns the intake thread to join.
pub fn start(
    config: &Config,
    store: &Store,
    bus: Option<crate::detect::runner::EventBus>,
    shared: Shared,
    stop: CancellationToken,
) -> anyhow::Result<Option<std::thread::JoinHandle<()>>> {
    let Some(smtp) = &config.alarms.smtp else {
        return Ok(None);
    };
    let rules = camera_rules(config);
    let (intake, thread) = intake::spawn(
        store.clone(),
        bus,
        Some(shared.audit.clone()),
        rules,
        config.alarms.max_events_per_minute,
        stop.clone(),
    )?;
    let receiver = Arc::new(smtp::Receiver {
        mailboxes: mailboxes(config, store),
        allow_plain_auth: smtp.allow_plain_auth,
        max_message_bytes: (config.alarms.max_message_mb * 1024.0 * 1024.0) as usize,
        max_pictures: config.alarms.max_pictures,
        max_megapixels: config.alarms.max_picture_megapixels,
        tls: shared.tls.map(tokio_rustls::TlsAcceptor::from),
        table: shared.table,
        auth: shared.auth,
        audit: shared.audit,
        intake,
    });
    let addr = std::net::SocketAddr::new(smtp.bind.unwrap_or(config.network.bind), smtp.port);
    let listener = std::net::TcpListener::bind(addr).map_err(|e| {
        anyhow::anyhow!("cannot listen on {addr} (alarms.smtp.bind, alarms.smtp.port): {e}")
    })?;
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    tracing::info!(
        "alarm SMTP receiver on {addr} for {} camera(s)",
        receiver.mailboxes.len()
    );
    tokio::spawn(smtp::serve(receiver, listener, stop));
    Ok(Some(thread))
}

fn camera_rules(config: &Config) -> HashMap<String, intake::CameraRules> {
    config
        .enabled_cameras()
        .filter_map(|c| {
            let a = c.alarm.as_ref()?;
            Some((
                c.id.clone(),
                intake::CameraRules {
                    label: a.label.clone(),
                    batch: Duration::from_secs_f64(a.batch_seconds),
                    picture_ms: (a.picture_seconds * 1000.0) as i64,
                },
            ))
        })
        .collect()
}

fn mailboxes(config: &Config, store: &Store) -> HashMap<String, smtp::Mailbox> {
    let mut out = HashMap::new();
    for cam in config.enabled_cameras() {
        let (Some(address), Some(smtp)) = (
            smtp_address(store, cam),
            cam.alarm.as_ref().and_then(|a| a.smtp.as_ref()),
        ) else {
            continue;
        };
        let login = smtp.username.clone().zip(smtp.password.clone());
        tracing::info!(camera = %cam.id, "alarm mail to {address}");
        out.insert(
            address.to_ascii_lowercase(),
            smtp::Mailbox {
                camera: cam.id.clone(),
                login,
            },
        );
    }
    out
}
