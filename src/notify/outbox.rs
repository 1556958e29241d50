//! Delivering the outbox: one task per target, so a target that is down only delays its
//! own messages. Each round takes the target's due messages oldest first; a delivered
//! message is marked at once (never sent again), a failed one is tried again after a
//! backoff that doubles from 2 s up to `retry_max_seconds` (±20 % jitter), and the round
//! stops at the first failure. A message the target refused for good (error.rs) is marked
//! rejected and never tried again, and the round goes on. Between rounds the task sleeps until the next message is
//! due or the dispatcher wakes it. Expiry (mod.rs) gives up on messages past their age.

use super::email::Email;
use super::error::DeliveryError;
use super::http::{Ntfy, Webhook};
use super::status::TargetStatus;
use crate::config::notify::{NtfyTarget, WebhookTarget};
use crate::store::{OutboxRow, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Messages taken per round.
const ROUND: u32 = 20;
/// The first retry's wait.
const FIRST_RETRY_MS: i64 = 2000;
/// Longest sleep between rounds with nothing due (expiry and wake-ups cover the rest).
const IDLE: Duration = Duration::from_secs(60);
/// Longest one delivery may take, connection included.
const ATTEMPT_DEADLINE: Duration = Duration::from_secs(30);

/// What every target's task shares: its name, the store, its status, its wake-up and the
/// shutdown token.
#[derive(Clone)]
pub struct TargetCtx {
    pub name: String,
    pub store: Store,
    pub status: Arc<TargetStatus>,
    pub wake: Arc<tokio::sync::Notify>,
    pub retry_max_ms: i64,
    pub shutdown: CancellationToken,
}

impl TargetCtx {
    async fn blocking<T: Send + 'static>(
        &self,
        what: &str,
        f: impl FnOnce(&Store) -> Result<T, crate::store::StoreError> + Send + 'static,
    ) -> Option<T> {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || f(&store)).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                tracing::error!(target = %self.name, "notify outbox: {what}: {e}");
                None
            }
            Err(e) => {
                tracing::error!(target = %self.name, "notify outbox: {what}: {e}");
                None
            }
        }
    }

    /// The target's messages due now, oldest first.
    pub async fn due(&self) -> Vec<OutboxRow> {
        let (name, now) = (self.name.clone(), crate::base::clock::wall_ms());
        self.blocking("reading", move |s| s.outbox_due(&name, now, ROUND))
            .await
            .unwrap_or_default()
    }

    pub async fn delivered(&self, row: &OutboxRow, now_ms: i64) {
        let id = row.id;
        self.blocking("marking delivered", move |s| s.outbox_delivered(id, now_ms))
            .await;
        self.status.delivered(now_ms);
    }

    /// The target refused the message for good: it is not tried again.
    pub async fn rejected(&self, row: &OutboxRow, now_ms: i64, error: &str) {
        let (id, e) = (row.id, error.to_string());
        self.blocking("marking rejected", move |s| {
            s.outbox_rejected(id, now_ms, &e)
        })
        .await;
        self.status.rejected(now_ms, error);
        tracing::warn!(target = %self.name, "notification {} rejected by the target: {error}",
            row.delivery_id);
    }

    /// Schedules the next attempt; returns how long until it.
    pub async fn failed(&self, row: &OutboxRow, now_ms: i64, error: &str) -> Duration {
        let next_ms = now_ms + retry_delay_ms(row.attempts, self.retry_max_ms);
        let (id, e) = (row.id, error.to_string());
        self.blocking("scheduling a retry", move |s| {
            s.outbox_retry(id, next_ms, &e)
        })
        .await;
        self.status.attempt_failed(now_ms, error);
        tracing::warn!(target = %self.name, "notification {} not delivered (attempt {}): {error}",
            row.delivery_id, row.attempts + 1);
        Duration::from_millis((next_ms - now_ms).max(0) as u64)
    }

    /// How long until the next message is due (at most a minute).
    pub async fn until_next_due(&self) -> Duration {
        let name = self.name.clone();
        let next = self
            .blocking("reading", move |s| s.outbox_next_due(&name))
            .await
            .flatten();
        match next {
            Some(at) => {
                Duration::from_millis((at - crate::base::clock::wall_ms()).clamp(0, 60_000) as u64)
            }
            None => IDLE,
        }
    }

    /// The event's snapshot, if it has one.
    pub async fn snapshot(&self, event_id: Option<i64>) -> Option<Vec<u8>> {
        let id = event_id?;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.event_snapshot_jpeg(id).ok())
            .await
            .ok()
            .flatten()
    }
}

/// 2 s, 4 s, 8 s … up to `max_ms`, each ±20 %.
pub fn retry_delay_ms(attempts_before: i64, max_ms: i64) -> i64 {
    let base = FIRST_RETRY_MS
        .saturating_mul(1i64 << attempts_before.clamp(0, 20))
        .min(max_ms);
    let mut r = [0u8; 2];
    let _ = getrandom::getrandom(&mut r);
    let jitter = (u16::from_le_bytes(r) as f64 / 65535.0 - 0.5) * 0.4;
    ((base as f64) * (1.0 + jitter)).max(1.0) as i64
}

/// A target that sends one message per request.
pub enum Sender {
    Webhook(WebhookTarget, reqwest::Client),
    Ntfy(NtfyTarget, reqwest::Client),
    Email(Box<Email>),
}

impl Sender {
    async fn send(&self, row: &OutboxRow, ctx: &TargetCtx) -> Result<(), DeliveryError> {
        let payload: serde_json::Value = serde_json::from_str(&row.payload)
            .map_err(|e| DeliveryError::Permanent(format!("payload: {e}")))?;
        let wants_snapshot = match self {
            Self::Webhook(t, _) => t.snapshot,
            _ => true,
        };
        let snapshot = match wants_snapshot {
            true => ctx.snapshot(row.event_id).await,
            false => None,
        };
        let letter = super::message::Letter {
            delivery_id: &row.delivery_id,
            payload: &payload,
            snapshot: snapshot.as_deref(),
        };
        match self {
            Self::Webhook(target, client) => {
                Webhook { target, client }
                    .send(&letter, crate::base::clock::wall_ms())
                    .await
            }
            Self::Ntfy(target, client) => Ntfy { target, client }.send(&letter).await,
            Self::Email(email) => email.send(&letter).await,
        }
    }
}

/// The delivery task of one webhook, e-mail or ntfy target, until shutdown. After a
/// failure the target rests until that message's retry: a target that is down gets one
/// attempt per backoff step, not one per queued message.
pub async fn run(ctx: TargetCtx, sender: Sender) {
    loop {
        let mut rest = None;
        for row in ctx.due().await {
            let now = crate::base::clock::wall_ms();
            let result = match tokio::time::timeout(ATTEMPT_DEADLINE, sender.send(&row, &ctx)).await
            {
                Ok(r) => r,
                Err(_) => Err(DeliveryError::Transient("no answer within 30 s".into())),
            };
            match result {
                Ok(()) => ctx.delivered(&row, now).await,
                Err(e) if e.is_permanent() => ctx.rejected(&row, now, &e.to_string()).await,
                Err(e) => {
                    rest = Some(ctx.failed(&row, now, &e.to_string()).await);
                    break;
                }
            }
            if ctx.shutdown.is_cancelled() {
                return;
            }
        }
        if let Some(rest) = rest {
            tokio::select! {
                _ = ctx.shutdown.cancelled() => return,
                _ = tokio::time::sleep(rest) => continue,
            }
        }
        let wait = ctx.until_next_due().await;
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = ctx.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_doubles_to_its_cap() {
        for (attempts, base) in [
            (0, 2000.0),
            (1, 4000.0),
            (3, 16000.0),
            (10, 300_000.0),
            (60, 300_000.0),
        ] {
            let d = super::retry_delay_ms(attempts, 300_000) as f64;
            assert!(d >= base * 0.79 && d <= base * 1.21, "{attempts}: {d}");
        }
    }
}
