//! Lookups of one kind asked for while the last one is out go to PostgreSQL together, as
//! one query over all their keys: for reads, what group commit is for the SQLite writer.
//! A query through the pool costs each request a checkout, sqlx's ping before use and on
//! release, and the query: a status read made six round trips, and under load cost paycc
//! ~160 µs of CPU and PostgreSQL 80–160 µs, most of it on those round trips (42 and 25 µs
//! batched). Each kind of lookup has a connection of its own, outside the pool, so a
//! batch never waits behind the pool's write transactions and pays no pings.

use super::{Ctx, within};
use crate::store::{StoreError, StoreResult};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Lookups waiting for their batch, at most; past it a lookup is refused (`Busy`).
const MAX_WAITING: usize = 8 * 1024;

/// The most keys one query carries.
const MAX_KEYS: usize = 256;

type Waiter<K, V> = (K, oneshot::Sender<StoreResult<Option<V>>>);

/// What a lookup's query gives back: the connection, and the rows found with their keys.
pub(super) type Fetched<K, V> = (PgConnection, StoreResult<Vec<(K, V)>>);

pub(super) struct Batched<K, V> {
    queue: mpsc::Sender<Waiter<K, V>>,
}

impl<K, V> Batched<K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + 'static,
{
    /// Starts answering lookups with `fetch`, which is given the connection and distinct
    /// keys; connecting and each query are given up after `limit`. Runs until the
    /// `Batched` is dropped. `queue` names its backlog in the metrics.
    pub fn start<F, Fut>(
        queue: &'static str,
        options: PgConnectOptions,
        limit: Duration,
        fetch: F,
    ) -> Self
    where
        F: Fn(PgConnection, Vec<K>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Fetched<K, V>> + Send + 'static,
    {
        let name = queue;
        let (queue, mut waiting) = mpsc::channel::<Waiter<K, V>>(MAX_WAITING);
        tokio::spawn(async move {
            let mut conn: Option<PgConnection> = None;
            while let Some(first) = waiting.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_KEYS {
                    match waiting.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                crate::metrics::queue(name, waiting.len());
                // Lookups of abandoned requests are not asked for.
                batch.retain(|(_, reply)| !reply.is_closed());
                if batch.is_empty() {
                    continue;
                }
                let mut seen = HashSet::with_capacity(batch.len());
                let keys: Vec<K> = batch
                    .iter()
                    .filter(|(key, _)| seen.insert(key))
                    .map(|(key, _)| key.clone())
                    .collect();
                let (kept, found) = query(&options, limit, &fetch, conn.take(), keys).await;
                conn = kept;
                answer(batch, found);
            }
        });
        Self { queue }
    }

    pub async fn get(&self, key: K) -> StoreResult<Option<V>> {
        crate::store::appender::ask(&self.queue, key, "PostgreSQL lookup").await
    }
}

/// Runs one batch's query, on the kept connection or a new one. A kept connection that
/// fails (the server restarted, say) is replaced and the query asked once more, as the
/// pool's ping before use would have; after any failure the connection is let go.
async fn query<K, V, F, Fut>(
    options: &PgConnectOptions,
    limit: Duration,
    fetch: &F,
    kept: Option<PgConnection>,
    keys: Vec<K>,
) -> (Option<PgConnection>, StoreResult<Vec<(K, V)>>)
where
    K: Clone + Send + 'static,
    V: Send + 'static,
    F: Fn(PgConnection, Vec<K>) -> Fut,
    Fut: Future<Output = Fetched<K, V>> + Send + 'static,
{
    let reused = kept.is_some();
    let conn = match kept {
        Some(conn) => conn,
        None => {
            let connected = within(limit, async {
                PgConnection::connect_with(options)
                    .await
                    .ctx("connecting for lookups")
            });
            match connected.await {
                Ok(conn) => conn,
                Err(e) => return (None, Err(e)),
            }
        }
    };
    // On a task of its own, so that a panic fails this batch, not the loop.
    let asked = within(limit, async {
        tokio::spawn(fetch(conn, keys.clone()))
            .await
            .map_err(|_| StoreError::Corrupt("a batched lookup panicked".into()))
    });
    match asked.await {
        Ok((conn, Ok(rows))) => (Some(conn), Ok(rows)),
        Ok((_, Err(StoreError::Unavailable(_)))) if reused => {
            Box::pin(query(options, limit, fetch, None, keys)).await
        }
        Ok((_, Err(e))) | Err(e) => (None, Err(e)),
    }
}

fn answer<K: Eq + Hash, V: Clone>(batch: Vec<Waiter<K, V>>, found: StoreResult<Vec<(K, V)>>) {
    match found {
        Ok(rows) => {
            let rows: HashMap<K, V> = rows.into_iter().collect();
            for (key, reply) in batch {
                let _ = reply.send(Ok(rows.get(&key).cloned()));
            }
        }
        Err(e) => {
            for (_, reply) in batch {
                let _ = reply.send(Err(same_error(&e)));
            }
        }
    }
}

/// The error of a shared query, for each of the lookups it failed.
pub(super) fn same_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::SchemaBehind { found, wanted } => StoreError::SchemaBehind {
            found: *found,
            wanted: *wanted,
        },
        StoreError::Conflict(rule) => StoreError::Conflict(*rule),
        StoreError::Unavailable(why) => StoreError::Unavailable(why.clone()),
        StoreError::Busy(queue) => StoreError::Busy(queue),
        StoreError::Backend { context, source } => StoreError::Backend {
            context,
            source: source.to_string().into(),
        },
        StoreError::Corrupt(why) => StoreError::Corrupt(why.clone()),
    }
}
