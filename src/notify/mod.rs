//! Notifications: word of events to MQTT (with Home Assistant discovery), signed
//! webhooks, e-mail and ntfy, with nothing lost.
//!
//! Data flows one way: the event bus → the dispatcher (rules.rs decides which targets
//! hear of a notice) → the outbox table (a message is written before any attempt) → one
//! delivery task per target (outbox.rs; mqtt.rs for MQTT) → the target. Recording never
//! waits for any of it: the detector only sends on the bus, which drops notices for a
//! dispatcher that lags far behind (logged) rather than block. A target that is down only
//! delays its own messages; messages older than `notify.max_age_hours` expire, counted.
//! Everything stops with the one shutdown token.

mod email;
pub mod error;
pub mod http;
pub mod message;
mod mqtt;
mod outbox;
pub mod review_route;
pub mod rules;
pub mod status;

use crate::config::Config;
use crate::config::notify::Target;
use crate::detect::runner::{EventBus, EventNotice};
use crate::live::Live;
use crate::store::{NewMessage, ReviewNotice, Store};
use outbox::{Sender, TargetCtx};
use rules::Router;
pub use status::{NotifyState, TargetStatus};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often expiry runs.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(60);
/// Finished messages are kept this long (for the dashboard's history), then forgotten.
const KEEP_DONE_MS: i64 = 7 * 86_400_000;

pub struct Notifications {
    pub state: Arc<NotifyState>,
    tasks: Vec<JoinHandle<()>>,
}

/// What the dispatcher needs besides the router.
struct Dispatch {
    store: Store,
    state: Arc<NotifyState>,
    wakes: HashMap<String, Arc<tokio::sync::Notify>>,
    camera_names: HashMap<String, String>,
    box_id: String,
    public_url: Option<String>,
}

impl Notifications {
    /// Starts a task per target, the dispatcher and expiry. A target that cannot be set
    /// up (an unreadable CA file, say) is reported in its status and skipped; nothing
    /// here fails start-up or waits for a network.
    pub fn start(
        config: &Config,
        store: &Store,
        live: &Live,
        bus: &EventBus,
        shutdown: &CancellationToken,
    ) -> Self {
        let n = &config.notify;
        let statuses: Vec<Arc<TargetStatus>> = n
            .targets
            .iter()
            .map(|t| Arc::new(TargetStatus::new(t.name(), t.kind())))
            .collect();
        let state = Arc::new(NotifyState::new(store.clone(), n.armed, statuses.clone()));
        let mut tasks = Vec::new();
        let mut wakes = HashMap::new();
        let cameras: Vec<(String, String)> = config
            .cameras
            .iter()
            .map(|c| (c.id.clone(), c.name.clone()))
            .collect();
        for (target, status) in n.targets.iter().zip(statuses) {
            let ctx = TargetCtx {
                name: target.name().to_string(),
                store: store.clone(),
                status,
                wake: Arc::new(tokio::sync::Notify::new()),
                retry_max_ms: (n.retry_max_seconds * 1000.0) as i64,
                shutdown: shutdown.clone(),
            };
            wakes.insert(ctx.name.clone(), ctx.wake.clone());
            tasks.extend(spawn_target(config, target, ctx, live, &cameras));
        }
        if !n.targets.is_empty() {
            let dispatch = Dispatch {
                store: store.clone(),
                state: state.clone(),
                wakes,
                camera_names: cameras.into_iter().collect(),
                box_id: store.box_id().unwrap_or_default(),
                public_url: n.public_url.clone(),
            };
            tasks.push(tokio::spawn(dispatch.run(
                (Router::new(config), review_route::ReviewRouter::new(config)),
                bus.subscribe(),
                live.review_bus.as_ref().map(|b| b.subscribe()),
                shutdown.clone(),
            )));
            let max_age_ms = (n.max_age_hours * 3_600_000.0) as i64;
            tasks.push(tokio::spawn(expire(
                store.clone(),
                state.clone(),
                max_age_ms,
                shutdown.clone(),
            )));
            tracing::info!(
                "notifications: {} targets, {} rules, armed {}",
                n.targets.len(),
                n.rules.len(),
                state.armed().as_str()
            );
        }
        Self { state, tasks }
    }

    /// Waits (at most 5 s) for the tasks after the shutdown token was cancelled.
    pub async fn stopped(self) {
        let all = futures_util::future::join_all(self.tasks);
        if tokio::time::timeout(Duration::from_secs(5), all)
            .await
            .is_err()
        {
            tracing::warn!("notifications: a delivery did not stop within 5 s; left behind");
        }
    }
}

/// The delivery task of one target; None (and an error in its status) when it cannot be
/// set up. A secret that cannot be read now is reported too, but the task starts: a
/// file may appear later.
fn spawn_target(
    config: &Config,
    target: &Target,
    ctx: TargetCtx,
    live: &Live,
    cameras: &[(String, String)],
) -> Option<JoinHandle<()>> {
    let failed = |e: String| {
        tracing::error!(target = %target.name(), "notify target: {e}");
        ctx.status.record_error(crate::base::clock::wall_ms(), &e);
    };
    if let Err(e) = secrets_readable(target) {
        failed(e);
    }
    match target {
        Target::Mqtt(m) => {
            let labels = rules::mqtt_labels(config, &m.labels);
            let runner = mqtt::Mqtt::new(m.clone(), ctx, live.clone(), cameras.to_vec(), labels);
            Some(tokio::spawn(runner.run()))
        }
        other => match sender(other) {
            Ok(s) => Some(tokio::spawn(outbox::run(ctx, s))),
            Err(e) => {
                failed(format!("not started: {e}"));
                None
            }
        },
    }
}

/// Every secret of `target` can be read now (from the environment or a systemd credential
/// as well as files); the first that cannot, with its field.
fn secrets_readable(target: &Target) -> Result<(), String> {
    let mut t = target.clone();
    for (field, secret) in t.secrets_mut() {
        secret.reveal().map_err(|e| format!("{field}: {e}"))?;
    }
    Ok(())
}

fn sender(target: &Target) -> Result<Sender, String> {
    Ok(match target {
        Target::Webhook(t) => Sender::Webhook(t.clone(), http::client(t.ca_file.as_deref())?),
        Target::Ntfy(t) => Sender::Ntfy(t.clone(), http::client(t.ca_file.as_deref())?),
        Target::Email(t) => Sender::Email(Box::new(email::Email::new(t)?)),
        Target::Mqtt(_) => return Err("MQTT targets have their own task".into()),
    })
}

impl Dispatch {
    async fn run(
        self,
        mut routers: (Router, review_route::ReviewRouter),
        mut rx: tokio::sync::broadcast::Receiver<EventNotice>,
        mut reviews: Option<tokio::sync::broadcast::Receiver<ReviewNotice>>,
        shutdown: CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                r = rx.recv() => match r {
                    Ok(n) => {
                        let now_ms = crate::base::clock::wall_ms();
                        let out = routers.0.route(&n, self.state.armed(), now_ms);
                        if !out.is_empty() {
                            self.enqueue(&n, out).await;
                        }
                    }
                    Err(RecvError::Lagged(k)) => tracing::error!(
                        "notifications: {k} event notices missed (the dispatcher fell behind)"
                    ),
                    Err(RecvError::Closed) => return,
                },
                r = crate::store::review::next_on(&mut reviews) => match r {
                    Ok(n) => {
                        let now_ms = crate::base::clock::wall_ms();
                        let out = routers.1.route(&n, self.state.armed(), now_ms);
                        if !out.is_empty() {
                            self.enqueue_review(&n, out).await;
                        }
                    }
                    Err(RecvError::Lagged(k)) => tracing::error!(
                        "notifications: {k} review notices missed (the dispatcher fell behind)"
                    ),
                    Err(RecvError::Closed) => reviews = None,
                },
            }
        }
    }

    fn camera_name(&self, id: &str) -> String {
        self.camera_names.get(id).cloned().unwrap_or_default()
    }

    /// Writes the messages of an event notice, then wakes their targets.
    async fn enqueue(&self, n: &EventNotice, out: Vec<rules::Outgoing>) {
        let camera = self.camera_name(&n.event.camera_id);
        let rows: Vec<Row> = out
            .into_iter()
            .map(|o| {
                let payload = message::payload(
                    o.kind,
                    &n.event,
                    &camera,
                    &self.box_id,
                    self.public_url.as_deref(),
                );
                (o.target, delivery_id(), o.kind, payload.to_string())
            })
            .collect();
        self.write(rows, n.event.id).await;
    }

    /// Writes the messages of a review notice (each standing on the item's lead event,
    /// whose snapshot they carry), then wakes their targets.
    async fn enqueue_review(&self, n: &ReviewNotice, out: Vec<rules::Outgoing>) {
        let store = self.store.clone();
        let item_id = n.item.id;
        let lead = match tokio::task::spawn_blocking(move || store.review_lead_event(item_id)).await
        {
            Ok(Ok(lead)) => lead,
            _ => {
                tracing::error!("notifications: review item {item_id} has no event to show");
                return;
            }
        };
        let camera = self.camera_name(&n.item.camera_id);
        let rows: Vec<Row> = out
            .into_iter()
            .map(|o| {
                let payload = message::review_payload(
                    o.kind,
                    n,
                    &lead,
                    &camera,
                    &self.box_id,
                    self.public_url.as_deref(),
                );
                (o.target, delivery_id(), o.kind, payload.to_string())
            })
            .collect();
        self.write(rows, lead.id).await;
    }

    /// Writes `rows` to the outbox, then wakes their targets.
    async fn write(&self, rows: Vec<Row>, event_id: i64) {
        let store = self.store.clone();
        let targets: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
        let written = tokio::task::spawn_blocking(move || {
            let now = crate::base::clock::wall_ms();
            let messages: Vec<NewMessage<'_>> = rows
                .iter()
                .map(|(target, id, kind, payload)| NewMessage {
                    target,
                    delivery_id: id,
                    event_id: Some(event_id),
                    kind,
                    payload,
                })
                .collect();
            store.outbox_add(&messages, now)
        })
        .await;
        if !matches!(written, Ok(Ok(()))) {
            tracing::error!(
                "notifications: cannot write event {event_id}'s messages to the outbox"
            );
        }
        for t in targets {
            if let Some(w) = self.wakes.get(&t) {
                w.notify_one();
            }
        }
    }
}

/// One outbox row to write: target, delivery id, kind, payload.
type Row = (String, String, &'static str, String);

/// A new idempotency key: 128 random bits, hex.
fn delivery_id() -> String {
    let mut raw = [0u8; 16];
    let _ = getrandom::getrandom(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every minute: gives up on messages older than `max_age_ms`, counting them per target.
async fn expire(
    store: Store,
    state: Arc<NotifyState>,
    max_age_ms: i64,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(EXPIRY_INTERVAL);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let s = store.clone();
        let now = crate::base::clock::wall_ms();
        let expired = tokio::task::spawn_blocking(move || {
            s.outbox_expire(now - max_age_ms, now - KEEP_DONE_MS, now)
        })
        .await;
        let Ok(Ok(targets)) = expired else {
            tracing::error!("notifications: expiring old messages failed");
            continue;
        };
        if targets.is_empty() {
            continue;
        }
        for t in &targets {
            if let Some(status) = state.target(t) {
                status
                    .expired
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        tracing::warn!(
            "notifications: {} messages expired undelivered after {:.1} h",
            targets.len(),
            max_age_ms as f64 / 3_600_000.0
        );
    }
}
