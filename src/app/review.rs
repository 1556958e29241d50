//! The review watcher: turns event notices into review notices, and closes review items.
//!
//! Events are placed in items by the store as they are inserted (store/review.rs). This
//! task follows the event bus and, for each event that starts or ends, announces its item
//! on the review bus: `new` the first time it sees it, `update` after. Once a second it
//! closes the items nothing can join any more and announces each as `end`. The dashboard's
//! live feed and notifications read the review bus.

use crate::base::clock::ClockRef;
use crate::detect::runner::{EventBus, EventNotice};
use crate::store::review::ReviewBus;
use crate::store::{ReviewNotice, Store};
use std::collections::HashSet;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often due items are closed.
const CLOSE_EVERY: Duration = Duration::from_secs(1);

struct Watcher {
    store: Store,
    review_bus: ReviewBus,
    clock: ClockRef,
    /// Open items already announced.
    announced: HashSet<i64>,
}

/// Starts the watcher; it stops with `shutdown`.
pub fn spawn(
    store: Store,
    events: &EventBus,
    review_bus: ReviewBus,
    clock: ClockRef,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let mut rx = events.subscribe();
    let mut watcher = Watcher {
        store,
        review_bus,
        clock,
        announced: HashSet::new(),
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CLOSE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                notice = rx.recv() => match notice {
                    Ok(n) => watcher.on_event(n).await,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!("review: {missed} event notices missed; the close tick catches up");
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = tick.tick() => watcher.close_due().await,
            }
        }
    })
}

impl Watcher {
    async fn on_event(&mut self, n: EventNotice) {
        let Some(item_id) = n.event.review_id else {
            return;
        };
        if n.kind == "update" {
            return;
        }
        let store = self.store.clone();
        let read = tokio::task::spawn_blocking(move || store.review_item(item_id, "")).await;
        let Ok(Ok(item)) = read else {
            return;
        };
        let kind = match self.announced.insert(item_id) {
            true => "new",
            false => "update",
        };
        let _ = self.review_bus.send(ReviewNotice { kind, item });
    }

    async fn close_due(&mut self) {
        let store = self.store.clone();
        let now_ms = self.clock.wall_ms();
        let closed = tokio::task::spawn_blocking(move || {
            let ids = store.close_due_review_items(now_ms)?;
            ids.into_iter()
                .map(|id| store.review_item(id, ""))
                .collect::<Result<Vec<_>, _>>()
        })
        .await;
        match closed {
            Ok(Ok(items)) => {
                for item in items {
                    self.announced.remove(&item.id);
                    let _ = self.review_bus.send(ReviewNotice { kind: "end", item });
                }
            }
            Ok(Err(e)) => tracing::error!("review: closing items: {e}"),
            Err(e) => tracing::error!("review: closing items: {e}"),
        }
    }
}
