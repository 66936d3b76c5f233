//! Audit entries of reads, from every request in flight, appended in one transaction:
//! each append takes the trail's lock and reads its end, so one transaction per read
//! would let a node record only as many reads as it can run those one after another.

use super::run_to_end;
use crate::store::backend::{Access, Job};
use crate::store::ops::audit::append_op;
use crate::store::{AuditNote, StoreError, StoreResult};
use sqlx::PgPool;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Notes waiting for their transaction, at most; past it a read is refused (`Busy`).
const MAX_WAITING: usize = 8 * 1024;

/// The most entries one transaction carries.
const MAX_ENTRIES: usize = 256;

type Waiter = (AuditNote, oneshot::Sender<StoreResult<()>>);

pub(super) struct AuditAppender {
    queue: mpsc::Sender<Waiter>,
}

impl AuditAppender {
    /// Appends until dropped; each transaction within `limit`.
    pub fn start(pool: PgPool, limit: Duration) -> Self {
        let (queue, mut waiting) = mpsc::channel::<Waiter>(MAX_WAITING);
        tokio::spawn(async move {
            while let Some(first) = waiting.recv().await {
                let mut batch = vec![first];
                let mut entries = batch[0].0.entries.len();
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
                let job = Job {
                    access: Access::Atomic,
                    args: merged,
                    op: append_op,
                };
                let done = run_to_end(pool.clone(), limit, job).await;
                for (_, reply) in batch {
                    let _ = reply.send(match &done {
                        Ok(()) => Ok(()),
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
        let stopped = || StoreError::Unavailable("the audit appender has stopped".into());
        let (reply, answer) = oneshot::channel();
        self.queue.try_send((note, reply)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => StoreError::Busy("PostgreSQL audit trail"),
            mpsc::error::TrySendError::Closed(_) => stopped(),
        })?;
        answer.await.map_err(|_| stopped())?
    }
}
