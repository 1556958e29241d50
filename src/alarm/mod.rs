//! Alarm receivers: cameras, doorbells and DVRs that cannot stream but e-mail a few
//! pictures when their own sensor fires. `ftp` receives uploads, `smtp` receives the mail (admitted through the
//! dashboard's connection table, authenticated through its login gate, TLS with its
//! certificate), `mime` takes the pictures out, `picture` checks each before anything
//! decodes it, `intake` turns them into events (and `clip` into a clip) on the event bus
//! like any detection.
//!
//! The receivers run beside the dashboard and share its lifetime: a reload restarts both.

pub mod clip;
pub mod ftp;
pub mod intake;
pub mod mime;
pub mod picture;
pub mod smtp;
pub mod video;

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

/// Starts the intake and the receivers set in `alarms` (SMTP, FTP); they stop with
/// `stop`. Returns the intake thread to join, None when no receiver is on.
pub fn start(
    config: &Config,
    store: &Store,
    bus: Option<crate::detect::runner::EventBus>,
    shared: Shared,
    stop: CancellationToken,
) -> anyhow::Result<Option<std::thread::JoinHandle<()>>> {
    let alarms = &config.alarms;
    if alarms.smtp.is_none() && alarms.ftp.is_none() {
        return Ok(None);
    }
    let (intake, thread) = intake::spawn(
        store.clone(),
        bus,
        Some(shared.audit.clone()),
        camera_rules(config),
        alarms.max_events_per_minute,
        stop.clone(),
    )?;
    if let Some(smtp) = &alarms.smtp {
        let receiver = Arc::new(smtp::Receiver {
            mailboxes: mailboxes(config, store),
            allow_plain_auth: smtp.allow_plain_auth,
            max_message_bytes: max_bytes(config),
            max_pictures: alarms.max_pictures,
            max_megapixels: alarms.max_picture_megapixels,
            tls: shared.tls.clone().map(tokio_rustls::TlsAcceptor::from),
            table: shared.table.clone(),
            auth: shared.auth.clone(),
            audit: shared.audit.clone(),
            intake: intake.clone(),
        });
        let at = std::net::SocketAddr::new(smtp.bind.unwrap_or(config.network.bind), smtp.port);
        let listener = listen(at, "alarms.smtp")?;
        tracing::info!(
            "alarm SMTP receiver on {at} for {} camera(s)",
            receiver.mailboxes.len()
        );
        tokio::spawn(smtp::serve(receiver, listener, stop.clone()));
    }
    if let Some(ftp) = &alarms.ftp {
        let receiver = Arc::new(ftp::Receiver {
            logins: ftp_logins(config),
            passive_ports: ftp.passive_ports[0]..=ftp.passive_ports[1],
            ftps: shared.tls.as_ref().map(|_| {
                (
                    config.security.tls_cert.clone(),
                    config.security.tls_key.clone(),
                )
            }),
            max_upload_bytes: max_bytes(config),
            max_megapixels: alarms.max_picture_megapixels,
            table: shared.table,
            auth: shared.auth,
            audit: shared.audit,
            intake,
        });
        let at = std::net::SocketAddr::new(ftp.bind.unwrap_or(config.network.bind), ftp.port);
        let listener = listen(at, "alarms.ftp")?;
        tracing::info!(
            "alarm FTP receiver on {at} for {} camera(s)",
            receiver.logins.len()
        );
        tokio::spawn(ftp::serve(receiver, listener, stop));
    }
    Ok(Some(thread))
}

/// Accepts connections on `listener` until `stop`, each admitted through the dashboard's
/// connection `table` (refusals logged once per 10 s), and runs `serve` on each in a task
/// of its own; a connection's task ends with `stop` too.
pub async fn accept_admitted<F, Fut>(
    what: &'static str,
    listener: tokio::net::TcpListener,
    table: Arc<crate::web::conn::ConnTable>,
    stop: CancellationToken,
    serve: F,
) where
    F: Fn(tokio::net::TcpStream, std::net::SocketAddr, crate::web::conn::Admission) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut warn = crate::base::logging::Throttle::new(Duration::from_secs(10));
    loop {
        let (socket, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    warn.warn(|more| format!("alarm {what} cannot accept: {e}{more}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let admission = match table.admit(peer.ip()) {
            Ok(a) => a,
            Err(why) => {
                drop(socket);
                warn.warn(|more| {
                    format!(
                        "refused an {what} connection from {}: {why:?}{more}",
                        peer.ip()
                    )
                });
                continue;
            }
        };
        let task = serve(socket, peer, admission);
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = task => {}
            }
        });
    }
}

fn max_bytes(config: &Config) -> usize {
    (config.alarms.max_message_mb * 1024.0 * 1024.0) as usize
}

fn listen(at: std::net::SocketAddr, key: &str) -> anyhow::Result<tokio::net::TcpListener> {
    let listener = std::net::TcpListener::bind(at)
        .map_err(|e| anyhow::anyhow!("cannot listen on {at} ({key}.bind, {key}.port): {e}"))?;
    listener.set_nonblocking(true)?;
    Ok(tokio::net::TcpListener::from_std(listener)?)
}

fn ftp_logins(config: &Config) -> HashMap<String, ftp::FtpLogin> {
    config
        .enabled_cameras()
        .filter_map(|c| {
            let login = c.alarm.as_ref()?.ftp.as_ref()?;
            Some((
                login.username.clone(),
                ftp::FtpLogin {
                    camera: c.id.clone(),
                    password: login.password.clone(),
                },
            ))
        })
        .collect()
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
