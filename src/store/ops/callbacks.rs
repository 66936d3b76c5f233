//! The callback outbox. An event is queued in the same transaction as the state change it
//! announces; workers on any node claim due events for a lease, so none is sent twice at
//! once, and each kid's events go out in order.

use super::rows;
use crate::domain::state::KycState;
use crate::store::backend::Access::{Atomic, Read, Write};
use crate::store::backend::Backend;
use crate::store::db::{Columns, Conn, args};
use crate::store::schema::Dialect;
use crate::store::sql::{
    attempt_outcome, claimable, due_callbacks, insert_callback_events, list_callbacks,
};
use crate::store::*;
use async_trait::async_trait;
use std::sync::LazyLock;

static QUEUE: LazyLock<String> = LazyLock::new(|| {
    insert_callback_events(
        "(SELECT kid, merchant_pk, customer_pk FROM kyc_requests WHERE kid = $3)",
        "CAST($1 AS TEXT)",
        "$2",
    )
});

/// The SQL that queues, inside a larger statement, the events of the rows `source`
/// yields entering `state` (PostgreSQL's data-modifying `WITH`).
pub fn queue_from(source: &str, state: KycState, now: &str) -> String {
    insert_callback_events(source, &format!("'{}'", state.as_str()), now)
}

/// Queues the event announcing that `kid` entered `state`, if its client takes callbacks.
pub async fn queue(c: &mut impl Conn, kid: &str, state: KycState, now: UnixMs) -> StoreResult<()> {
    c.execute(
        "queueing a callback",
        QUEUE.as_str(),
        args![state.as_str(), now, kid],
    )
    .await
    .map(drop)
}

// SQLite: the writer marks the due rows, then reads them with their client.
statement!(
    CLAIM_SQLITE,
    "UPDATE callback_events SET lease_until = $1 WHERE pk IN ({}) AND {} RETURNING pk AS n",
    due_callbacks(Dialect::Sqlite, "$2", "$3", "$4"),
    claimable("callback_events", "$2")
);
statement!(
    CLAIMED,
    "SELECT {} FROM callback_events e JOIN api_clients a ON a.pk = e.client_pk WHERE e.pk = $1",
    rows::DUE_CALLBACK_COLUMNS
);
statement!(
    CLAIM_POSTGRES,
    "WITH due AS ({}),
         claimed AS (UPDATE callback_events c SET lease_until = $1 FROM due
                     WHERE c.pk = due.pk AND {} RETURNING c.*)
         SELECT {} FROM claimed e JOIN api_clients a ON a.pk = e.client_pk",
    due_callbacks(Dialect::Postgres, "$2", "$3", "$4"),
    claimable("c", "$2"),
    rows::DUE_CALLBACK_COLUMNS
);

/// The PostgreSQL advisory lock that claims on every node take in turn (an arbitrary
/// key of paycc's own): each claim then counts the deliveries the previous ones took,
/// so `per_client` holds on all nodes together. SQLite's writer lock does the same.
const CLAIM_LOCK: i64 = 0x7061_7963_635f_6362; // "paycc_cb"

/// Claims up to `limit` events due at `now` until `lease_until`, at most `per_client`
/// in flight for each client.
pub async fn claim(
    c: &mut impl Conn,
    now: UnixMs,
    lease_until: UnixMs,
    per_client: i64,
    limit: i64,
) -> StoreResult<Vec<DueCallback>> {
    let context = "claiming callbacks";
    let args = args![lease_until, now, per_client, limit];
    match c.dialect() {
        Dialect::Postgres => {
            c.execute(
                "waiting for the callback claim lock",
                "SELECT pg_advisory_xact_lock($1)",
                args![CLAIM_LOCK],
            )
            .await?;
            c.fetch(context, CLAIM_POSTGRES.as_str(), args, rows::due_callback)
                .await
        }
        Dialect::Sqlite => {
            let pks = c
                .fetch(context, CLAIM_SQLITE.as_str(), args, rows::int)
                .await?;
            let mut due = Vec::with_capacity(pks.len());
            for pk in pks {
                due.extend(
                    c.fetch_one(context, CLAIMED.as_str(), args![pk], rows::due_callback)
                        .await?,
                );
            }
            Ok(due)
        }
    }
}

/// Records how an attempt ended and releases the claim.
pub async fn finish(c: &mut impl Conn, a: &CallbackAttempt) -> StoreResult<()> {
    let (status, next) = attempt_outcome(a.result);
    c.execute(
        "recording a callback attempt",
        "UPDATE callback_events SET attempts = attempts + 1, lease_until = 0, status = $1,
           next_attempt_at = COALESCE($2, next_attempt_at), last_error = $3, updated_at = $4,
           delivered_at = CASE WHEN $1 = 'delivered' THEN $4 ELSE delivered_at END
         WHERE pk = $5",
        args![status, next, &a.error, a.now, a.pk],
    )
    .await
    .map(drop)
}

static LIST: LazyLock<[String; 2]> =
    LazyLock::new(|| [list_callbacks(false, "$1"), list_callbacks(true, "$1")]);

pub async fn list(
    c: &mut impl Conn,
    which: CallbackFilter,
    limit: i64,
) -> StoreResult<Vec<CallbackRecord>> {
    c.fetch(
        "listing callbacks",
        LIST[usize::from(which == CallbackFilter::Failed)].as_str(),
        args![limit],
        rows::callback_record,
    )
    .await
}

/// Forgets delivered and dead events last touched before `before`; how many.
pub async fn purge(c: &mut impl Conn, before: UnixMs) -> StoreResult<usize> {
    static PURGE: LazyLock<String> = LazyLock::new(|| crate::store::sql::purge_callbacks("$1"));
    let n = c
        .execute("purging callback events", PURGE.as_str(), args![before])
        .await?;
    Ok(n as usize)
}

/// Puts an event back in the queue, due now, with a fresh schedule; `false` when unknown.
pub async fn retry(c: &mut impl Conn, event_id: &str, now: UnixMs) -> StoreResult<bool> {
    let n = c
        .execute(
            "queueing a callback again",
            "UPDATE callback_events SET status = 'pending', attempts = 0, next_attempt_at = $1,
               lease_until = 0, updated_at = $1
             WHERE event_id = $2",
            args![now, event_id],
        )
        .await?;
    Ok(n == 1)
}

#[async_trait]
impl<B: Backend> CallbackOutbox for B {
    async fn claim_callbacks(
        &self,
        now: UnixMs,
        lease_until: UnixMs,
        per_client: i64,
        limit: i64,
    ) -> StoreResult<Vec<DueCallback>> {
        self.run(Atomic, (), move |c, ()| {
            Box::pin(claim(c, now, lease_until, per_client, limit))
        })
        .await
    }

    async fn finish_callback_attempt(&self, attempt: &CallbackAttempt) -> StoreResult<()> {
        self.run(Write, attempt.clone(), |c, a| Box::pin(finish(c, a)))
            .await
    }

    async fn list_callbacks(
        &self,
        which: CallbackFilter,
        limit: i64,
    ) -> StoreResult<Vec<CallbackRecord>> {
        self.run(Read, (), move |c, ()| Box::pin(list(c, which, limit)))
            .await
    }

    async fn callback_backlog(&self, now: UnixMs) -> StoreResult<(i64, Option<UnixMs>)> {
        self.run(Read, (), move |c, ()| {
            Box::pin(async move {
                let found = c
                    .fetch_one(
                        "counting undelivered callbacks",
                        "SELECT COUNT(*) AS n,
                                MIN(CASE WHEN next_attempt_at <= $1 THEN next_attempt_at END) AS oldest
                         FROM callback_events WHERE status = 'pending'",
                        args![now],
                        |r| Ok((r.i64("n")?, r.at_opt("oldest")?)),
                    )
                    .await?;
                Ok(found.unwrap_or((0, None)))
            })
        })
        .await
    }

    async fn purge_callbacks(&self, before: UnixMs) -> StoreResult<usize> {
        self.run(Write, (), move |c, ()| Box::pin(purge(c, before)))
            .await
    }

    async fn retry_callback(&self, event_id: &str, now: UnixMs) -> StoreResult<bool> {
        self.run(Write, event_id.to_owned(), move |c, id| {
            Box::pin(retry(c, id, now))
        })
        .await
    }
}
