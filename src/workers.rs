//! Background work every `paycc serve` node runs beside the API. Nodes coordinate only
//! through the database (claimed rows), so any number of them can run it.

use crate::delivery::CallbackSender;
use crate::service::Service;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};

/// Runs `pass` every `every` for as long as the server runs, logging what it did; a
/// failed pass is logged and tried again next time.
pub async fn periodically<F, Fut>(every: Duration, done: &'static str, pass: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = crate::service::ServiceResult<usize>>,
{
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match pass().await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "{done}"),
            Err(e) => tracing::warn!(error = %e, "{done}: the pass failed; will retry"),
        }
    }
}

/// Sends the callback outbox: at most `concurrency` attempts at once, each in its own
/// task so one slow receiver holds up only its own events.
pub struct CallbackWorker {
    pub sender: Arc<CallbackSender>,
    /// How often the outbox is read when nothing wakes the worker: for retries coming
    /// due and for events other nodes queued.
    pub poll: Duration,
    pub concurrency: usize,
}

impl CallbackWorker {
    /// Delivers until `stop` turns true; then claims nothing more and returns once the
    /// attempts in flight have ended.
    pub async fn run(self, service: Arc<Service>, mut stop: watch::Receiver<bool>) {
        let room = Arc::new(Semaphore::new(self.concurrency));
        loop {
            // Wait until at least one attempt can start, then claim as many as fit.
            tokio::select! {
                permit = room.acquire() => drop(permit),
                _ = stop.wait_for(|stopping| *stopping) => break,
            }
            let free = room.available_permits();
            let claimed = match service.callbacks.claim(free).await {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming due callbacks failed; will retry");
                    Vec::new()
                }
            };
            let full = claimed.len() == free;
            for due in claimed {
                // Free permits were counted before the claim and only this loop takes
                // them, so this never waits; a claimed event is never left unsent.
                let permit = room
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed");
                let (service, sender) = (service.clone(), self.sender.clone());
                tokio::spawn(async move {
                    let event_id = due.event_id.clone();
                    if let Err(e) = service.callbacks.deliver(&sender, due).await {
                        // The claim lapses and the event is sent again.
                        tracing::warn!(%event_id, error = %e, "recording a callback attempt failed");
                    }
                    drop(permit);
                });
            }
            if !full {
                tokio::select! {
                    _ = service.callbacks.queued() => {}
                    _ = tokio::time::sleep(self.poll) => {}
                    _ = stop.wait_for(|stopping| *stopping) => break,
                }
            }
        }
        let all = u32::try_from(self.concurrency).unwrap_or(u32::MAX);
        let _ = room.acquire_many(all).await;
    }
}
