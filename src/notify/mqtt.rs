//! The MQTT target (rumqttc over rustls, or plain TCP to a broker on loopback), run by one
//! task that owns the connection and publishes one message at a time, waiting for each
//! PUBACK (QoS 1), so an outbox message is marked delivered only once the broker has it.
//!
//! Topics, under `topic_prefix` (default `sentrix`):
//! - `P/availability`: `online`, retained; the last will sets `offline`;
//! - `P/CAMERA/availability`: `online` while the camera streams, else `offline`;
//! - `P/CAMERA/events`: each event notice's JSON (start, update, end), from the outbox,
//!   with `delivery`, its idempotency key;
//! - `P/CAMERA/LABEL`: `ON` while an event of that label is open, else `OFF`, retained;
//! - `P/CAMERA/LABEL/snapshot` and `P/CAMERA/snapshot`: the latest snapshot JPEG, retained;
//! - `P/CAMERA/events_today`: the number of events since local midnight, retained;
//! - `P/CAMERA/review`: each review notice's JSON (`notice`: new, update, end, reviewed;
//!   `review`: the item), from the outbox;
//! - `P/CAMERA/review/unreviewed_alerts`: the camera's alert items nobody has reviewed,
//!   retained.
//!
//! With `discovery: true`, Home Assistant discovery configs (retained) under
//! `homeassistant/…/sentrix_BOX/…`: per camera an occupancy `binary_sensor` per label, a
//! `camera` entity showing the latest snapshot, an events-today `sensor` and an
//! unreviewed-alerts `sensor`, all on one
//! device per sentrix box. The topics published are kept in the index; at the next
//! connection any no longer configured (a removed camera or label) gets an empty retained
//! config, which makes Home Assistant delete the entity.

use super::outbox::TargetCtx;
use crate::config::notify::{MqttTarget, is_loopback_host};
use crate::live::Live;
use crate::store::OutboxRow;
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Outgoing, Packet, QoS, Transport};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// Longest wait for a broker's CONNACK or PUBACK.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// How often camera availability and today's counts are refreshed.
const REFRESH: Duration = Duration::from_secs(30);
const MAX_RECONNECT: Duration = Duration::from_secs(30);

/// A camera the target publishes: its id and name.
pub type CameraName = (String, String);

pub struct Mqtt {
    target: MqttTarget,
    ctx: TargetCtx,
    live: Live,
    cameras: Vec<CameraName>,
    labels: Vec<String>,
    box_id: String,
    /// Open events per (camera, label), for the occupancy states.
    open: HashMap<(String, String), BTreeSet<i64>>,
    /// The availability last published per camera.
    availability: HashMap<String, bool>,
}

/// The connection: the client, and the events of its event loop, which a task of its own
/// polls without ever being cancelled (rumqttc does not promise that `poll` survives
/// being dropped mid-way, as a `select!` would do); the task ends with the connection.
struct Link {
    client: AsyncClient,
    events: tokio::sync::mpsc::Receiver<Result<Event, String>>,
    poller: tokio::task::JoinHandle<()>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.poller.abort();
    }
}

impl Link {
    fn new(options: MqttOptions) -> Self {
        let (client, mut event_loop) = AsyncClient::new(options, 16);
        let (tx, events) = tokio::sync::mpsc::channel(64);
        let poller = tokio::spawn(async move {
            loop {
                let polled = event_loop.poll().await.map_err(|e| e.to_string());
                let failed = polled.is_err();
                if tx.send(polled).await.is_err() || failed {
                    return;
                }
            }
        });
        Self {
            client,
            events,
            poller,
        }
    }

    /// The next event; an error when the connection broke.
    async fn next(&mut self) -> Result<Event, String> {
        match self.events.recv().await {
            Some(Ok(ev)) => Ok(ev),
            Some(Err(e)) => Err(format!("connection: {e}")),
            None => Err("connection closed".into()),
        }
    }

    /// Publishes and waits for the broker's PUBACK.
    async fn publish(&mut self, topic: &str, retain: bool, payload: Vec<u8>) -> Result<(), String> {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload)
            .await
            .map_err(|e| format!("publish: {e}"))?;
        let mut pkid = None;
        loop {
            match tokio::time::timeout(ACK_TIMEOUT, self.next()).await {
                Err(_) => return Err(format!("no PUBACK for {topic} within 10 s")),
                Ok(Err(e)) => return Err(e),
                Ok(Ok(Event::Outgoing(Outgoing::Publish(id)))) if pkid.is_none() => pkid = Some(id),
                Ok(Ok(Event::Incoming(Packet::PubAck(ack)))) if Some(ack.pkid) == pkid => {
                    return Ok(());
                }
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Waits until the broker accepts the connection.
    async fn connect(&mut self) -> Result<(), String> {
        loop {
            match tokio::time::timeout(ACK_TIMEOUT, self.next()).await {
                Err(_) => return Err("no answer from the broker within 10 s".into()),
                Ok(Err(e)) => return Err(e),
                Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => return Ok(()),
                Ok(Ok(_)) => {}
            }
        }
    }
}

/// A label as a topic level and an id part.
fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

impl Mqtt {
    pub fn new(
        target: MqttTarget,
        ctx: TargetCtx,
        live: Live,
        cameras: Vec<CameraName>,
        labels: Vec<String>,
    ) -> Self {
        let cameras = cameras
            .into_iter()
            .filter(|(id, _)| target.cameras.is_empty() || target.cameras.contains(id))
            .collect();
        let box_id = ctx.store.box_id().unwrap_or_else(|_| "unknown".into());
        Self {
            target,
            ctx,
            live,
            cameras,
            labels,
            box_id,
            open: HashMap::new(),
            availability: HashMap::new(),
        }
    }

    fn topic(&self, rest: &str) -> String {
        format!("{}/{rest}", self.target.topic_prefix)
    }

    fn options(&self) -> Result<MqttOptions, String> {
        let t = &self.target;
        let port = t.port.unwrap_or(if t.tls { 8883 } else { 1883 });
        let id = t
            .client_id
            .clone()
            .unwrap_or_else(|| format!("sentrix-{}", self.box_id));
        let mut o = MqttOptions::new(id, &t.host, port);
        o.set_keep_alive(Duration::from_secs(30));
        o.set_clean_session(true);
        o.set_max_packet_size(8 << 20, 8 << 20);
        o.set_last_will(LastWill::new(
            self.topic("availability"),
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
        if let Some(user) = &t.username {
            let password = match &t.password {
                Some(p) => p.reveal().map_err(|e| format!("password: {e}"))?,
                None => String::new(),
            };
            o.set_credentials(user, password);
        }
        if t.tls {
            o.set_transport(Transport::tls_with_config(
                rumqttc::TlsConfiguration::Rustls(Arc::new(tls_config(t)?)),
            ));
        } else if !is_loopback_host(&t.host) {
            return Err("plain MQTT is only allowed to a broker on loopback".into());
        }
        Ok(o)
    }

    /// Connects, publishes, reconnects with backoff, until shutdown.
    pub async fn run(mut self) {
        let mut backoff = Duration::from_secs(1);
        while !self.ctx.shutdown.is_cancelled() {
            let started = tokio::time::Instant::now();
            let error = match self.session().await {
                Ok(()) => return,
                Err(e) => e,
            };
            self.ctx.status.set_connected(false);
            self.ctx
                .status
                .record_error(crate::base::clock::wall_ms(), &error);
            tracing::warn!(target = %self.target.name, "MQTT: {error}; retrying in {} s", backoff.as_secs());
            if started.elapsed() > MAX_RECONNECT {
                backoff = Duration::from_secs(1);
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.ctx.shutdown.cancelled() => return,
            }
            backoff = (backoff * 2).min(MAX_RECONNECT);
        }
    }

    /// One connection: Ok on shutdown (after saying offline), Err when it broke.
    async fn session(&mut self) -> Result<(), String> {
        let mut link = Link::new(self.options()?);
        link.connect().await?;
        self.ctx.status.set_connected(true);
        tracing::info!(target = %self.target.name, "MQTT: connected to {}", self.target.host);
        self.on_connect(&mut link).await?;
        let mut refresh = tokio::time::interval(REFRESH);
        loop {
            self.deliver_due(&mut link).await?;
            let wait = self.ctx.until_next_due().await;
            tokio::select! {
                _ = self.ctx.shutdown.cancelled() => {
                    self.say_goodbye(&mut link).await;
                    return Ok(());
                }
                _ = self.ctx.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = refresh.tick() => self.refresh(&mut link).await?,
                event = link.next() => {
                    event?;
                }
            }
        }
    }

    /// `offline` on the box's availability, then a clean DISCONNECT (sent by the poller
    /// before it is stopped; at most a second).
    async fn say_goodbye(&self, link: &mut Link) {
        let offline = b"offline".to_vec();
        let _ = link
            .publish(&self.topic("availability"), true, offline)
            .await;
        if link.client.disconnect().await.is_ok() {
            let sent = async {
                while let Ok(ev) = link.next().await {
                    if matches!(ev, Event::Outgoing(Outgoing::Disconnect)) {
                        return;
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(1), sent).await;
        }
    }

    async fn on_connect(&mut self, link: &mut Link) -> Result<(), String> {
        link.publish(&self.topic("availability"), true, b"online".to_vec())
            .await?;
        if self.target.discovery {
            self.discovery(link).await?;
        }
        for (camera, _) in self.cameras.clone() {
            for label in self.labels.clone() {
                self.publish_state(link, &camera, &label).await?;
            }
        }
        self.availability.clear();
        self.refresh(link).await
    }

    /// Camera availability changes and today's counts.
    async fn refresh(&mut self, link: &mut Link) -> Result<(), String> {
        for (camera, _) in self.cameras.clone() {
            let up = self
                .live
                .camera(&camera)
                .is_some_and(|c| c.status().state() == crate::ingest::CameraState::Streaming);
            if self.availability.get(&camera) != Some(&up) {
                let text = if up { "online" } else { "offline" };
                link.publish(
                    &self.topic(&format!("{camera}/availability")),
                    true,
                    text.into(),
                )
                .await?;
                self.availability.insert(camera.clone(), up);
            }
            self.publish_count(link, &camera).await?;
        }
        Ok(())
    }

    async fn deliver_due(&mut self, link: &mut Link) -> Result<(), String> {
        for row in self.ctx.due().await {
            let now = crate::base::clock::wall_ms();
            match self.deliver(link, &row).await {
                Ok(()) => self.ctx.delivered(&row, now).await,
                Err(e) => {
                    self.ctx.failed(&row, now, &e).await;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// One event notice: its JSON (with `delivery`, the outbox's idempotency key, so a
    /// subscriber can drop a copy resent after a crash), then the occupancy state, the
    /// snapshots and the count.
    async fn deliver(&mut self, link: &mut Link, row: &OutboxRow) -> Result<(), String> {
        let mut payload: Value =
            serde_json::from_str(&row.payload).map_err(|e| format!("payload: {e}"))?;
        payload["delivery"] = json!(row.delivery_id);
        if row.kind == super::review_route::REVIEW_KIND {
            return self.deliver_review(link, &payload).await;
        }
        let ev = &payload["event"];
        let camera = ev["camera_id"].as_str().unwrap_or_default().to_string();
        let label = ev["label"].as_str().unwrap_or_default().to_string();
        let id = ev["id"].as_i64().unwrap_or_default();
        let topic = self.topic(&format!("{camera}/events"));
        link.publish(&topic, false, payload.to_string().into_bytes())
            .await?;
        let open = self
            .open
            .entry((camera.clone(), label.clone()))
            .or_default();
        match row.kind.as_str() {
            "start" => open.insert(id),
            "end" => open.remove(&id),
            _ => false,
        };
        self.publish_state(link, &camera, &label).await?;
        if ev["has_snapshot"].as_bool() == Some(true)
            && row.kind != "update"
            && let Some(jpeg) = self.ctx.snapshot(Some(id)).await
        {
            let l = slug(&label);
            link.publish(
                &self.topic(&format!("{camera}/{l}/snapshot")),
                true,
                jpeg.clone(),
            )
            .await?;
            link.publish(&self.topic(&format!("{camera}/snapshot")), true, jpeg)
                .await?;
        }
        if row.kind == "start" {
            self.publish_count(link, &camera).await?;
        }
        Ok(())
    }

    async fn publish_state(
        &mut self,
        link: &mut Link,
        camera: &str,
        label: &str,
    ) -> Result<(), String> {
        let on = self
            .open
            .get(&(camera.to_string(), label.to_string()))
            .is_some_and(|s| !s.is_empty());
        let topic = self.topic(&format!("{camera}/{}", slug(label)));
        link.publish(
            &topic,
            true,
            if on { b"ON".to_vec() } else { b"OFF".to_vec() },
        )
        .await
    }

    /// One review notice: `{notice, review, …}` on `P/CAMERA/review`, then the camera's
    /// alert items nobody has reviewed on `P/CAMERA/review/unreviewed_alerts` (retained).
    async fn deliver_review(&mut self, link: &mut Link, payload: &Value) -> Result<(), String> {
        let camera = payload["review"]["camera_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        link.publish(
            &self.topic(&format!("{camera}/review")),
            false,
            payload.to_string().into_bytes(),
        )
        .await?;
        let store = self.ctx.store.clone();
        let cam = camera.clone();
        let count = tokio::task::spawn_blocking(move || store.unreviewed_alerts(&cam))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        link.publish(
            &self.topic(&format!("{camera}/review/unreviewed_alerts")),
            true,
            count.to_string().into_bytes(),
        )
        .await
    }

    async fn publish_count(&mut self, link: &mut Link, camera: &str) -> Result<(), String> {
        let store = self.ctx.store.clone();
        let now = crate::base::clock::wall_ms();
        let (cam, midnight_ms) = (
            camera.to_string(),
            crate::base::localtime::local_midnight_ms(now),
        );
        let count = tokio::task::spawn_blocking(move || {
            store.count_camera_events(&cam, midnight_ms, now + 1)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        link.publish(
            &self.topic(&format!("{camera}/events_today")),
            true,
            count.to_string().into_bytes(),
        )
        .await
    }

    /// Publishes every wanted discovery config and clears those no longer wanted.
    async fn discovery(&mut self, link: &mut Link) -> Result<(), String> {
        let wanted = self.discovery_configs();
        let store = self.ctx.store.clone();
        let name = self.target.name.clone();
        let before = tokio::task::spawn_blocking(move || store.mqtt_discovery_topics(&name))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        for stale in before.iter().filter(|t| !wanted.contains_key(*t)) {
            link.publish(stale, true, Vec::new()).await?;
            self.remember_topic(stale, false).await;
            tracing::info!(target = %self.target.name, "MQTT: removed discovery config {stale}");
        }
        for (topic, config) in &wanted {
            link.publish(topic, true, config.to_string().into_bytes())
                .await?;
            if !before.contains(topic) {
                self.remember_topic(topic, true).await;
            }
        }
        Ok(())
    }

    async fn remember_topic(&self, topic: &str, present: bool) {
        let (store, name, topic) = (
            self.ctx.store.clone(),
            self.target.name.clone(),
            topic.to_string(),
        );
        let done =
            tokio::task::spawn_blocking(move || store.mqtt_discovery_set(&name, &topic, present))
                .await;
        if !matches!(done, Ok(Ok(()))) {
            tracing::warn!(target = %self.target.name, "MQTT: cannot record a discovery topic");
        }
    }

    /// Topic → config of every entity: per camera a binary sensor per label, a camera
    /// and an events-today sensor.
    fn discovery_configs(&self) -> BTreeMap<String, Value> {
        let node = format!("sentrix_{}", self.box_id);
        let device = json!({
            "identifiers": [node],
            "name": format!("sentrix {}", self.box_id),
            "manufacturer": "sentrix",
            "model": "NVR",
            "sw_version": env!("CARGO_PKG_VERSION"),
        });
        let d = &self.target.discovery_prefix;
        let mut out = BTreeMap::new();
        for (camera, name) in &self.cameras {
            let shown = if name.is_empty() { camera } else { name };
            let availability = json!([
                {"topic": self.topic("availability")},
                {"topic": self.topic(&format!("{camera}/availability"))},
            ]);
            let base = |unique: String, entity: String| {
                json!({
                    "name": entity, "unique_id": unique, "device": device,
                    "availability": availability, "availability_mode": "all",
                })
            };
            for label in &self.labels {
                let l = slug(label);
                let mut c = base(format!("{node}_{camera}_{l}"), format!("{shown} {label}"));
                c["state_topic"] = json!(self.topic(&format!("{camera}/{l}")));
                c["device_class"] = json!("occupancy");
                c["payload_on"] = json!("ON");
                c["payload_off"] = json!("OFF");
                out.insert(format!("{d}/binary_sensor/{node}/{camera}_{l}/config"), c);
            }
            let mut c = base(
                format!("{node}_{camera}_snapshot"),
                format!("{shown} snapshot"),
            );
            c["topic"] = json!(self.topic(&format!("{camera}/snapshot")));
            out.insert(format!("{d}/camera/{node}/{camera}/config"), c);
            let mut c = base(
                format!("{node}_{camera}_events_today"),
                format!("{shown} events today"),
            );
            c["state_topic"] = json!(self.topic(&format!("{camera}/events_today")));
            c["state_class"] = json!("total_increasing");
            c["unit_of_measurement"] = json!("events");
            out.insert(format!("{d}/sensor/{node}/{camera}_events_today/config"), c);
            let mut c = base(
                format!("{node}_{camera}_unreviewed_alerts"),
                format!("{shown} unreviewed alerts"),
            );
            c["state_topic"] = json!(self.topic(&format!("{camera}/review/unreviewed_alerts")));
            c["state_class"] = json!("measurement");
            c["unit_of_measurement"] = json!("alerts");
            out.insert(
                format!("{d}/sensor/{node}/{camera}_unreviewed_alerts/config"),
                c,
            );
        }
        out
    }
}

/// rustls with the system's roots and the target's `ca_file`.
fn tls_config(t: &MqttTarget) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(ca) = &t.ca_file {
        let pem = std::fs::read(ca).map_err(|e| format!("cannot read {}: {e}", ca.display()))?;
        for cert in rustls_pemfile_certs(&pem) {
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", ca.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The certificates of a PEM text.
fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect()
}
