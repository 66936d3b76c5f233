//! Audit entries of reads, from every request in flight, appended as one write: each
//! append takes the trail's end (and on PostgreSQL its lock), so a write per read would
//! cap reads at the rate those writes can run one after another (SQLite status reads
//! fell from 41k to 21k a second with one writer job each).

use super::{AuditNote, StoreError, StoreResult};
use std::future::Future;
use tokio::sync::{mpsc, oneshot};

/// Notes waiting for their write, at most; past it a read is refused (`Busy`).
const MAX_WAITING: usize = 8 * 1024;

/// The most entries one write carries.
const MAX_ENTRIES: usize = 1024;

type Waiter = (AuditNote, oneshot::Sender<StoreResult<()>>);

pub(crate) struct AuditAppender {
    queue: mpsc::Sender<Waiter>,
}

impl AuditAppender {
    /// Appends with `write` (one durable write of many notes' entries) until dropped.
    /// Needs a Tokio runtime.
    pub fn start<W, Fut>(write: W) -> Self
    where
        W: Fn(AuditNote) -> Fut + Send + 'static,
        Fut: Future<Output = StoreResult<()>> + Send,
    {
        let (queue, mut waiting) = mpsc::channel::<Waiter>(MAX_WAITING);
        tokio::spawn(async move {
            while let Some(first) = waiting.recv().await {
                let mut entries = first.0.entries.len();
                let mut batch = vec![first];
                while entries < MAX_ENTRIES {
                    match waiting.try_recv() {
                        Ok(next) => {
                            entries += next.0.entries.len();
                            batch.push(next);
                        }
                        Err(_) => break,
                    }
                }
                let merged = AuditNote {
                    link: batch[0].0.link.clone(),
                    entries: batch
                        .iter()
                        .flat_map(|(note, _)| note.entries.iter().cloned())
                        .collect(),
                };
                let done = write(merged).await;
                for (_, reply) in batch {
                    let _ = reply.send(match &done {
                        Ok(()) => Ok(()),
                        Err(StoreError::Busy(queue)) => Err(StoreError::Busy(queue)),
                        Err(e) => Err(StoreError::Unavailable(format!(
                            "recording reads in the audit trail: {e}"
                        ))),
                    });
                }
            }
        });
        Self { queue }
    }

    pub async fn append(&self, note: AuditNote) -> StoreResult<()> {
        ask(&self.queue, note, "audit trail").await
    }
}

/// Hands `job` to a store's worker through its bounded `queue` and waits for the
/// answer: `Busy(name)` at once when the queue is full, `Unavailable` when the worker
/// has stopped.
pub(crate) async fn ask<J, T>(
    queue: &mpsc::Sender<(J, oneshot::Sender<StoreResult<T>>)>,
    job: J,
    name: &'static str,
) -> StoreResult<T> {
    let stopped = || StoreError::Unavailable(format!("the {name} queue has stopped"));
    let (reply, answer) = oneshot::channel();
    queue.try_send((job, reply)).map_err(|e| match e {
        mpsc::error::TrySendError::Full(_) => StoreError::Busy(name),
        mpsc::error::TrySendError::Closed(_) => stopped(),
    })?;
    answer.await.map_err(|_| stopped())?
}
