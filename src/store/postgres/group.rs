//! Group commit for inits: inits that arrive while earlier ones are being written go to
//! PostgreSQL together, in one transaction with one commit, as two statements over all
//! of them (arrays `unnest`ed, as the batched lookups do): one expires stale identical
//! requests and finds open ones, one upserts the customers and inserts the requests.
//! Each init is answered when its group has committed.
//!
//! One init's failure (a custId clash, a deadlock with another node) fails the group's
//! statements; the group is then replayed once, each init in a savepoint of its own, so
//! only that init fails. Inits of a customer already named earlier in the group are
//! written one by one after the others, in the same transaction, since one statement
//! may not touch a row twice.

use super::batch::same_error;
use super::{Ctx, within};
use crate::domain::state::{EXPIRED_REASON, KycState};
use crate::store::db::{Columns, DecodeResult, Row, corrupt};
use crate::store::ops::{kyc, statement};
use crate::store::sql::{insert_callback_events, reusable, state_list};
use crate::store::{InitStored, NewKyc, StoreError, StoreResult};
use sqlx::postgres::{PgConnectOptions, PgRow};
use sqlx::{Acquire, Connection, PgConnection};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Inits waiting for their group, at most; past it an init is refused (`Busy`).
const MAX_WAITING: usize = 8 * 1024;
/// The most inits one group carries.
const MOST_PER_GROUP: usize = 256;
/// Groups written at once, each on a connection of its own (outside the pool, so a
/// group pays no ping and keeps its prepared plans): while one commits, others collect.
/// More spread the inits over smaller groups and cost PostgreSQL more per init (three:
/// 115–119 µs, two: 83–91 µs and 10–20% more inits a second; see `BENCHMARKS.md`).
const GROUPS_AT_ONCE: usize = 2;

/// Past this long idle, a kept connection is pinged before a group uses it: the
/// database may have gone away and come back meanwhile, and a dead connection would
/// fail the group. Groups that follow one another closely pay no ping.
const TRUSTED_IDLE: Duration = Duration::from_millis(100);

type Waiter = (NewKyc, oneshot::Sender<StoreResult<InitStored>>);

/// A connection the last group on a turn left open, and when it finished.
struct Kept {
    conn: PgConnection,
    since: Instant,
}

// Each init's customer and requests are looked up through `LATERAL … LIMIT 1` by key,
// which the planner cannot turn into a join: while the tables grow faster than their
// statistics, it hashed the whole customers table for every group (240 pages a group).
// At most one request per customer and fingerprint is open (a partial unique index),
// so `LIMIT 1` loses nothing.
statement!(
    EXPIRE_STALE_THEN_OPEN_IDENTICAL,
    "WITH wanted AS (
       SELECT w.i, w.fingerprint, w.at, c.pk AS customer_pk
       FROM unnest($1::BIGINT[], $2::BYTEA[], $3::BYTEA[], $4::BIGINT[])
         WITH ORDINALITY AS w (merchant_pk, pan_hash, fingerprint, at, i)
       CROSS JOIN LATERAL (
         SELECT pk FROM customers
         WHERE merchant_pk = w.merchant_pk AND pan_hash = w.pan_hash LIMIT 1) AS c),
     stale AS (
       SELECT found.kid, wanted.at FROM wanted CROSS JOIN LATERAL (
         SELECT kid FROM kyc_requests
         WHERE customer_pk = wanted.customer_pk AND fingerprint = wanted.fingerprint
           AND state IN ({}) AND expires_at <= wanted.at LIMIT 1) AS found),
     expired AS (
       UPDATE kyc_requests k SET state = 'expired', reason = $5, updated_at = stale.at
       FROM stale WHERE k.kid = stale.kid
       RETURNING k.kid, k.merchant_pk, k.customer_pk, stale.at),
     queued AS ({})
     SELECT wanted.i, k.kid, k.url_sealed, k.cust_id FROM wanted CROSS JOIN LATERAL (
       SELECT k.kid, k.url_sealed, c.cust_id FROM kyc_requests k
       JOIN customers c ON c.pk = k.customer_pk
       WHERE k.customer_pk = wanted.customer_pk AND k.fingerprint = wanted.fingerprint
         AND {} LIMIT 1) AS k",
    state_list(KycState::expires_by_time),
    insert_callback_events(
        "expired",
        &format!("'{}'", KycState::Expired.as_str()),
        "x.at"
    ),
    reusable("k", "wanted.at")
);
// Rows are written in key order, so that two groups (or nodes) wanting the same
// customers take their locks in the same order.
statement!(
    UPSERT_CUSTOMERS_INSERT_KYCS,
    "WITH new AS (
       SELECT * FROM unnest($1::TEXT[], $2::BIGINT[], $3::BYTEA[], $4::BYTEA[], $5::BYTEA[],
         $6::BIGINT[], $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::TEXT[], $11::BYTEA[],
         $12::BYTEA[], $13::BYTEA[], $14::TEXT[], $15::BIGINT[], $16::BYTEA[])
         WITH ORDINALITY AS n (cust_id, merchant_pk, pan_hash, mobile_hash, details_sealed,
           at, kid, reference, provider, state, fingerprint, url_sealed, token_hash,
           redirect_url, expires_at, submitted_sealed, i)),
     customer AS (
       INSERT INTO customers (cust_id, merchant_pk, pan_hash, mobile_hash, details_sealed, created_at, updated_at)
       SELECT cust_id, merchant_pk, pan_hash, mobile_hash, details_sealed, at, at FROM new
       ORDER BY merchant_pk, pan_hash
       ON CONFLICT (merchant_pk, pan_hash) DO UPDATE SET
         mobile_hash = excluded.mobile_hash, details_sealed = excluded.details_sealed,
         updated_at = excluded.updated_at
       RETURNING pk, cust_id, merchant_pk, pan_hash),
     request AS (
       INSERT INTO kyc_requests (kid, reference, merchant_pk, customer_pk, provider, state, fingerprint,
         url_sealed, token_hash, redirect_url, submitted_sealed, created_at, updated_at, expires_at)
       SELECT new.kid, new.reference, new.merchant_pk, customer.pk, new.provider, new.state,
         new.fingerprint, new.url_sealed, new.token_hash, new.redirect_url, new.submitted_sealed,
         new.at, new.at, new.expires_at
       FROM new JOIN customer USING (merchant_pk, pan_hash)
       ORDER BY customer.pk, new.fingerprint
       ON CONFLICT (customer_pk, fingerprint) WHERE state IN ({}) DO NOTHING
       RETURNING kid)
     SELECT new.i, customer.pk, customer.cust_id, request.kid IS NOT NULL AS inserted
     FROM new JOIN customer USING (merchant_pk, pan_hash)
     LEFT JOIN request ON request.kid = new.kid",
    state_list(KycState::is_open)
);

pub(super) struct InitGroups {
    queue: mpsc::Sender<Waiter>,
}

impl InitGroups {
    /// Starts writing groups on connections made with `options`, each group (connecting
    /// included) given up after `limit`. Runs until the `InitGroups` is dropped.
    pub fn start(options: PgConnectOptions, limit: Duration) -> Self {
        let (queue, mut waiting) = mpsc::channel::<Waiter>(MAX_WAITING);
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
                while group.len() < MOST_PER_GROUP {
                    match waiting.try_recv() {
                        Ok(next) => group.push(next),
                        Err(_) => break,
                    }
                }
                crate::metrics::queue("postgres_init_groups", waiting.len());
                crate::metrics::postgres_group(group.len());
                let (options, turn_back) = (options.clone(), turn_back.clone());
                tokio::spawn(async move {
                    let kept = commit(&options, limit, kept, group).await;
                    let _ = turn_back.send(kept).await;
                });
            }
        };
        // A thread of its own, as SQLite's writer has: on the request runtime each of a
        // group's round trips waited behind every request task ready to run (~6 ms with
        // 64 inits in flight), and groups of 50 took 50 ms.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the init groups");
        std::thread::Builder::new()
            .name("paycc-pg-inits".into())
            .spawn(move || runtime.block_on(writer))
            .expect("a thread for the init groups");
        Self { queue }
    }

    /// Stores `new` with the next group; resolves once that group has committed.
    pub async fn init(&self, new: NewKyc) -> StoreResult<InitStored> {
        crate::store::appender::ask(&self.queue, new, "PostgreSQL inits").await
    }
}

/// Writes one group on the kept connection (or a new one) and answers each of its
/// inits; returns the connection unless something failed on it (then it is let go: it
/// may have been stopped anywhere, a transaction included).
async fn commit(
    options: &PgConnectOptions,
    limit: Duration,
    kept: Option<Kept>,
    group: Vec<Waiter>,
) -> Option<Kept> {
    let (news, replies): (Vec<NewKyc>, Vec<_>) = group.into_iter().unzip();
    let fail_all = |e: &StoreError| news.iter().map(|_| Err(same_error(e))).collect::<Vec<_>>();
    let (kept, answers) = match within(limit, connected(options, kept)).await {
        Err(e) => (None, fail_all(&e)),
        Ok(mut conn) => match within(limit, together(&mut conn, &news)).await {
            Ok(stored) => (Some(conn), stored.into_iter().map(Ok).collect()),
            // A lost database fails every init alike; anything else may be one init's.
            Err(e @ StoreError::Unavailable(_)) => (None, fail_all(&e)),
            // The failed transaction is rolled back before the connection's next use.
            Err(e) => {
                if news.len() > 1 {
                    tracing::debug!(error = %e, inits = news.len(), "a group of inits failed; replaying each alone");
                }
                match within(limit, one_by_one(&mut conn, &news)).await {
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
        .ctx("connecting for inits")
}

/// The whole group in one transaction: both statements over the first init of each
/// customer, then the rest one by one.
async fn together(conn: &mut PgConnection, news: &[NewKyc]) -> StoreResult<Vec<InitStored>> {
    // Plans made once per connection: PostgreSQL otherwise re-plans both statements for
    // every group (custom plans for their arrays), ~1.7 ms each, the larger part of its
    // CPU per init. Their generic plans look every key up through an index (`LATERAL`).
    let mut tx = Connection::begin_with(
        conn,
        "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan",
    )
    .await
    .ctx("starting a transaction")?;
    let mut seen = HashSet::with_capacity(news.len());
    let (firsts, repeats): (Vec<usize>, Vec<usize>) = (0..news.len())
        .partition(|&i| seen.insert((news[i].merchant_pk, &news[i].customer.pan_hash)));
    let mut stored: Vec<Option<InitStored>> = vec![None; news.len()];
    let pick = |at: &[usize]| at.iter().map(|&i| &news[i]).collect::<Vec<_>>();
    let found = open_identical(&mut tx, &pick(&firsts)).await?;
    let mut left = Vec::with_capacity(firsts.len());
    for (i, open) in firsts.into_iter().zip(found) {
        match open {
            Some(open) => stored[i] = Some(open),
            None => left.push(i),
        }
    }
    let inserted = insert(&mut tx, &pick(&left)).await?;
    for (i, (customer_pk, inserted, cust_id)) in left.into_iter().zip(inserted) {
        let new = &news[i];
        stored[i] = Some(if inserted {
            new.stored(cust_id)
        } else {
            // Another node opened the identical request since we looked.
            kyc::open_identical(&mut *tx, customer_pk, new)
                .await?
                .ok_or_else(|| {
                    StoreError::Corrupt(
                        "an identical request blocked the insert but cannot be read".into(),
                    )
                })?
        });
    }
    for i in repeats {
        stored[i] = Some(kyc::init(&mut *tx, &news[i]).await?);
    }
    tx.commit().await.ctx("committing a group of inits")?;
    Ok(stored
        .into_iter()
        .map(|s| s.expect("every init of the group was stored"))
        .collect())
}

/// Each init in a savepoint of its own, one transaction for all: a failing init fails
/// alone.
async fn one_by_one(
    conn: &mut PgConnection,
    news: &[NewKyc],
) -> StoreResult<Vec<StoreResult<InitStored>>> {
    let mut tx = Connection::begin(conn)
        .await
        .ctx("starting a transaction")?;
    let mut answers = Vec::with_capacity(news.len());
    for new in news {
        let mut savepoint = tx.begin().await.ctx("opening a savepoint")?;
        let answer = kyc::init(&mut *savepoint, new).await;
        if answer.is_ok() {
            savepoint.commit().await.ctx("releasing a savepoint")?;
        } else {
            savepoint.rollback().await.ctx("rolling a savepoint back")?;
        }
        answers.push(answer);
    }
    tx.commit().await.ctx("committing a group of inits")?;
    Ok(answers)
}

/// For each init, the open identical request it is answered with, if any (stale ones
/// are expired, and announced, on the way).
async fn open_identical(
    conn: &mut PgConnection,
    news: &[&NewKyc],
) -> StoreResult<Vec<Option<InitStored>>> {
    let rows = sqlx::query(EXPIRE_STALE_THEN_OPEN_IDENTICAL.as_str())
        .bind(each(news, |n| n.merchant_pk.0))
        .bind(each(news, |n| &n.customer.pan_hash))
        .bind(each(news, |n| &n.fingerprint))
        .bind(each(news, |n| n.now.0))
        .bind(EXPIRED_REASON)
        .fetch_all(conn)
        .await
        .ctx("expiring stale identical requests")?;
    by_position(
        &rows,
        news.len(),
        "finding identical requests",
        kyc::identical,
    )
}

/// Upserts the customers and inserts the requests; for each init in order, its
/// customer's pk, whether its request went in, and the custId.
async fn insert(
    conn: &mut PgConnection,
    news: &[&NewKyc],
) -> StoreResult<Vec<(i64, bool, String)>> {
    if news.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(UPSERT_CUSTOMERS_INSERT_KYCS.as_str())
        .bind(each(news, |n| &n.customer.cust_id))
        .bind(each(news, |n| n.merchant_pk.0))
        .bind(each(news, |n| &n.customer.pan_hash))
        .bind(each(news, |n| &n.customer.mobile_hash))
        .bind(each(news, |n| &n.customer.details_sealed))
        .bind(each(news, |n| n.now.0))
        .bind(each(news, |n| &n.kid))
        .bind(each(news, |n| &n.reference))
        .bind(each(news, |n| n.provider))
        .bind(each(news, |n| n.state.as_str()))
        .bind(each(news, |n| &n.fingerprint))
        .bind(each(news, |n| n.url_sealed.as_ref()))
        .bind(each(news, |n| n.token_hash.as_ref()))
        .bind(each(news, |n| n.redirect_url.as_ref()))
        .bind(each(news, |n| n.expires_at.0))
        .bind(each(news, |n| &n.customer.submitted_sealed))
        .fetch_all(conn)
        .await
        .ctx("storing a group of KYC requests")?;
    by_position(
        &rows,
        news.len(),
        "storing a group of KYC requests",
        kyc::upserted,
    )?
    .into_iter()
    .map(|d| d.ok_or_else(|| StoreError::Corrupt("an init of a group was not upserted".into())))
    .collect()
}

/// One column of the group, as the array a statement `unnest`s.
fn each<'a, T>(news: &[&'a NewKyc], column: impl Fn(&'a NewKyc) -> T) -> Vec<T> {
    news.iter().map(|n| column(n)).collect()
}

/// Each row's value at the place of the init it answers: rows carry the 1-based
/// ordinality `i` of their init among `len`.
fn by_position<T>(
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
