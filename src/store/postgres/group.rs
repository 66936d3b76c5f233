//! Group commit on PostgreSQL: writes of one kind (inits, moves of requests) that arrive
//! while earlier ones are being written go to PostgreSQL together, in one transaction
//! with one commit, as a few statements over all of them (arrays `unnest`ed, as the
//! batched lookups do). Each write is answered when its group has committed.
//!
//! One write's failure (a custId clash, a deadlock with another node) fails the group's
//! statements; the group is then replayed once, each write in a savepoint of its own, so
//! only that write fails.

use super::batch::same_error;
use super::{Ctx, within};
use crate::store::backend::Run;
use crate::store::db::{Columns, DecodeResult, Row, corrupt};
use crate::store::{StoreError, StoreResult};
use sqlx::postgres::{PgConnectOptions, PgRow};
use sqlx::{Acquire, Connection, PgConnection};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Writes waiting for their group, at most; past it a write is refused (`Busy`).
const MAX_WAITING: usize = 8 * 1024;
/// Groups of a kind written at once, each on a connection of its own (outside the pool,
/// so a group pays no ping and keeps its prepared plans): while one commits, others
/// collect. More spread the writes over smaller groups and cost PostgreSQL more per
/// write (inits, three: 115–119 µs, two: 83–91 µs and 10–20% more inits a second; see
/// `BENCHMARKS.md`).
const GROUPS_AT_ONCE: usize = 2;

/// Past this long idle, a kept connection is pinged before a group uses it: the
/// database may have gone away and come back meanwhile, and a dead connection would
/// fail the group. Groups that follow one another closely pay no ping.
const TRUSTED_IDLE: Duration = Duration::from_millis(100);

/// A kind of write that is committed in groups.
pub(super) trait Grouped: Send + Sync + 'static {
    type Write: Send + Sync + 'static;
    type Done: Send + 'static;
    /// Names the backlog in the metrics (`paycc_queue_depth`) and in errors.
    const QUEUE: &'static str;
    /// The most writes one group carries.
    const MOST: usize;

    /// Records a group's size in the metrics.
    fn observe(size: usize);

    /// All of `writes` inside the group's transaction, whose plans are forced generic;
    /// their answers in order.
    fn together<'c>(
        tx: &'c mut PgConnection,
        writes: &'c [Self::Write],
    ) -> Run<'c, Vec<Self::Done>>;

    /// One write alone, in the savepoint it is replayed in.
    fn alone<'c>(conn: &'c mut PgConnection, write: &'c Self::Write) -> Run<'c, Self::Done>;
}

type Waiter<K> = (
    <K as Grouped>::Write,
    oneshot::Sender<StoreResult<<K as Grouped>::Done>>,
);

/// A connection the last group on a turn left open, and when it finished.
struct Kept {
    conn: PgConnection,
    since: Instant,
}

pub(super) struct Groups<K: Grouped> {
    queue: mpsc::Sender<Waiter<K>>,
}

impl<K: Grouped> Groups<K> {
    /// The groups of one kind, written on connections made with `options`, each group
    /// (connecting included) given up after `limit`; and the writer, which runs until
    /// the `Groups` is dropped (`on_own_thread`).
    pub fn new(
        options: PgConnectOptions,
        limit: Duration,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (queue, mut waiting) = mpsc::channel::<Waiter<K>>(MAX_WAITING);
        // A turn to write a group, with the connection the last group on it left open.
        let (turn_back, mut turns) = mpsc::channel::<Option<Kept>>(GROUPS_AT_ONCE);
        for _ in 0..GROUPS_AT_ONCE {
            let _ = turn_back.try_send(None);
        }
        let writer = async move {
            loop {
                let Some(kept) = turns.recv().await else {
                    return;
                };
                let Some(first) = waiting.recv().await else {
                    return;
                };
                let mut group = vec![first];
                while group.len() < K::MOST {
                    match waiting.try_recv() {
                        Ok(next) => group.push(next),
                        Err(_) => break,
                    }
                }
                crate::metrics::queue(K::QUEUE, waiting.len());
                K::observe(group.len());
                let (options, turn_back) = (options.clone(), turn_back.clone());
                tokio::spawn(async move {
                    let kept = commit::<K>(&options, limit, kept, group).await;
                    let _ = turn_back.send(kept).await;
                });
            }
        };
        (Self { queue }, writer)
    }

    /// Writes `write` with the next group; resolves once that group has committed.
    pub async fn write(&self, write: K::Write) -> StoreResult<K::Done> {
        crate::store::appender::ask(&self.queue, write, K::QUEUE).await
    }
}

/// Runs the group writers on a thread of their own, as SQLite's writer has: on the
/// request runtime each of a group's round trips waited behind every request task ready
/// to run (~6 ms with 64 inits in flight), and groups of 50 took 50 ms. One thread
/// serves every kind: what it does for a group (encode the arrays, decode the rows) is
/// a small part of a core, and the rest is waiting on PostgreSQL.
pub(super) fn on_own_thread(writers: impl Future<Output = ()> + Send + 'static) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for PostgreSQL's groups");
    std::thread::Builder::new()
        .name("paycc-pg-groups".into())
        .spawn(move || runtime.block_on(writers))
        .expect("a thread for PostgreSQL's groups");
}

/// Writes one group on the kept connection (or a new one) and answers each of its
/// writes; returns the connection unless something failed on it (then it is let go: it
/// may have been stopped anywhere, a transaction included).
async fn commit<K: Grouped>(
    options: &PgConnectOptions,
    limit: Duration,
    kept: Option<Kept>,
    group: Vec<Waiter<K>>,
) -> Option<Kept> {
    let (writes, replies): (Vec<K::Write>, Vec<_>) = group.into_iter().unzip();
    let fail_all = |e: &StoreError| {
        writes
            .iter()
            .map(|_| Err(same_error(e)))
            .collect::<Vec<_>>()
    };
    let (kept, answers) = match within(limit, connected(options, kept)).await {
        Err(e) => (None, fail_all(&e)),
        Ok(mut conn) => match within(limit, together::<K>(&mut conn, &writes)).await {
            Ok(done) => (Some(conn), done.into_iter().map(Ok).collect()),
            // A lost database fails every write alike; anything else may be one write's.
            Err(e @ StoreError::Unavailable(_)) => (None, fail_all(&e)),
            // The failed transaction is rolled back before the connection's next use.
            Err(e) => {
                if writes.len() > 1 {
                    tracing::debug!(error = %e, queue = K::QUEUE, writes = writes.len(), "a group failed; replaying each write alone");
                }
                match within(limit, one_by_one::<K>(&mut conn, &writes)).await {
                    Ok(answers) => (Some(conn), answers),
                    Err(e) => (None, fail_all(&e)),
                }
            }
        },
    };
    for (reply, answer) in replies.into_iter().zip(answers) {
        let _ = reply.send(answer);
    }
    kept.map(|conn| Kept {
        conn,
        since: Instant::now(),
    })
}

/// The kept connection if it is still alive, or a new one.
async fn connected(options: &PgConnectOptions, kept: Option<Kept>) -> StoreResult<PgConnection> {
    if let Some(Kept { mut conn, since }) = kept
        && (since.elapsed() < TRUSTED_IDLE || conn.ping().await.is_ok())
    {
        return Ok(conn);
    }
    PgConnection::connect_with(options)
        .await
        .ctx("connecting for a group")
}

/// The whole group in one transaction.
async fn together<K: Grouped>(
    conn: &mut PgConnection,
    writes: &[K::Write],
) -> StoreResult<Vec<K::Done>> {
    // Plans made once per connection: PostgreSQL otherwise re-plans a group's statements
    // for every group (custom plans for their arrays), ~1.7 ms each for the inits', the
    // larger part of its CPU per init. Their generic plans look every key up through an
    // index (`LATERAL`, or a nested loop over the `unnest`).
    let mut tx = Connection::begin_with(
        conn,
        "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan",
    )
    .await
    .ctx("starting a transaction")?;
    let done = K::together(&mut tx, writes).await?;
    tx.commit().await.ctx("committing a group")?;
    Ok(done)
}

/// Each write in a savepoint of its own, one transaction for all: a failing write fails
/// alone.
async fn one_by_one<K: Grouped>(
    conn: &mut PgConnection,
    writes: &[K::Write],
) -> StoreResult<Vec<StoreResult<K::Done>>> {
    let mut tx = Connection::begin(conn)
        .await
        .ctx("starting a transaction")?;
    let mut answers = Vec::with_capacity(writes.len());
    for write in writes {
        let mut savepoint = tx.begin().await.ctx("opening a savepoint")?;
        let answer = K::alone(&mut savepoint, write).await;
        if answer.is_ok() {
            savepoint.commit().await.ctx("releasing a savepoint")?;
        } else {
            savepoint.rollback().await.ctx("rolling a savepoint back")?;
        }
        answers.push(answer);
    }
    tx.commit().await.ctx("committing a group")?;
    Ok(answers)
}

/// One column of the group, as the array a statement `unnest`s.
pub(super) fn each<'a, W, T>(writes: &[&'a W], column: impl Fn(&'a W) -> T) -> Vec<T> {
    writes.iter().map(|w| column(w)).collect()
}

/// Each row's value at the place of the write it answers: rows carry the 1-based
/// ordinality `i` of their write among `len`.
pub(super) fn by_position<T>(
    rows: &[PgRow],
    len: usize,
    context: &'static str,
    value: fn(&dyn Row) -> DecodeResult<T>,
) -> StoreResult<Vec<Option<T>>> {
    let mut placed: Vec<Option<T>> = std::iter::repeat_with(|| None).take(len).collect();
    for row in rows {
        let i = row.i64("i").map_err(|e| corrupt(context, e))?;
        let found = value(row).map_err(|e| corrupt(context, e))?;
        let at = usize::try_from(i - 1)
            .ok()
            .filter(|&p| p < len)
            .ok_or_else(|| StoreError::Corrupt(format!("a group row numbered {i} of {len}")))?;
        placed[at] = Some(found);
    }
    Ok(placed)
}
