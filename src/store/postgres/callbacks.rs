//! The callback outbox on PostgreSQL. Claims lock their rows with `SKIP LOCKED`, so any
//! number of nodes can deliver side by side without sending one event twice at once.

use super::Ctx;
use super::queries::state_of;
use crate::domain::state::KycState;
use crate::store::sql::{
    DUE_CALLBACK_COLUMNS, attempt_outcome, due_callbacks, insert_callback_events, list_callbacks,
};
use crate::store::*;
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Row};
use std::sync::LazyLock;

// Assembled once from fixed fragments, never from input.
static QUEUE: LazyLock<String> = LazyLock::new(|| {
    insert_callback_events(
        "(SELECT kid, merchant_pk, customer_pk FROM kyc_requests WHERE kid = $1)",
        "$2::text",
        "$3",
    )
});

static CLAIM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH due AS ({}),
         claimed AS (UPDATE callback_events c SET lease_until = $2 FROM due WHERE c.pk = due.pk
                     RETURNING c.*)
         SELECT {DUE_CALLBACK_COLUMNS} FROM claimed e JOIN api_clients a ON a.pk = e.client_pk",
        due_callbacks("$1", "$3", "FOR UPDATE OF e SKIP LOCKED")
    )
});

static LIST: LazyLock<[String; 2]> =
    LazyLock::new(|| [list_callbacks(false, "$1"), list_callbacks(true, "$1")]);

/// The SQL that queues, inside a larger statement, the events of the rows `source`
/// yields entering `state`; used by the expiry sweep.
pub(super) fn queue_from(source: &str, state: KycState, now: &str) -> String {
    insert_callback_events(source, &format!("'{}'", state.as_str()), now)
}

/// Queues the event announcing that `kid` entered `state`, if its client takes callbacks.
pub(super) async fn queue(
    conn: &mut PgConnection,
    kid: &str,
    state: KycState,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(AssertSqlSafe(QUEUE.as_str()))
        .bind(kid)
        .bind(state.as_str())
        .bind(now)
        .execute(conn)
        .await
        .ctx("queueing a callback")
        .map(drop)
}

pub(super) async fn client_callback(
    pool: &PgPool,
    client_id: &str,
) -> StoreResult<Option<ClientCallback>> {
    sqlx::query("SELECT callback_url, callback_secret_sealed FROM api_clients WHERE client_id = $1")
        .bind(client_id)
        .fetch_optional(pool)
        .await
        .ctx("reading a client's callback")?
        .map(|r| -> Result<ClientCallback, sqlx::Error> {
            Ok(ClientCallback {
                url: r.try_get("callback_url")?,
                secret_sealed: r.try_get("callback_secret_sealed")?,
            })
        })
        .transpose()
        .ctx("reading a client's callback")
}

pub(super) async fn set_client_callback(
    pool: &PgPool,
    client_id: &str,
    url: &str,
    secret_sealed: Option<&[u8]>,
) -> StoreResult<bool> {
    Ok(sqlx::query(
        "UPDATE api_clients SET callback_url = $2,
           callback_secret_sealed = COALESCE($3, callback_secret_sealed)
         WHERE client_id = $1",
    )
    .bind(client_id)
    .bind(url)
    .bind(secret_sealed)
    .execute(pool)
    .await
    .ctx("setting a client's callback")?
    .rows_affected()
        == 1)
}

fn due_callback(r: &PgRow) -> Result<DueCallback, sqlx::Error> {
    Ok(DueCallback {
        pk: r.try_get("pk")?,
        event_id: r.try_get("event_id")?,
        kid: r.try_get("kid")?,
        cust_id: r.try_get("cust_id")?,
        merchant_code: r.try_get("merchant_code")?,
        state: state_of(r, "state")?,
        attempts: r.try_get("attempts")?,
        callback: ClientCallback {
            url: r.try_get("callback_url")?,
            secret_sealed: r.try_get("callback_secret_sealed")?,
        },
    })
}

pub(super) async fn claim(
    pool: &PgPool,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> StoreResult<Vec<DueCallback>> {
    let rows = sqlx::query(AssertSqlSafe(CLAIM.as_str()))
        .bind(now)
        .bind(lease_until)
        .bind(limit)
        .fetch_all(pool)
        .await
        .ctx("claiming callbacks")?;
    rows.iter()
        .map(due_callback)
        .collect::<Result<_, _>>()
        .ctx("claiming callbacks")
}

pub(super) async fn finish(pool: &PgPool, a: &CallbackAttempt) -> StoreResult<()> {
    let (status, next) = attempt_outcome(a.result);
    sqlx::query(
        "UPDATE callback_events SET attempts = attempts + 1, lease_until = 0, status = $2,
           next_attempt_at = COALESCE($3, next_attempt_at), last_error = $4, updated_at = $5,
           delivered_at = CASE WHEN $2 = 'delivered' THEN $5 ELSE delivered_at END
         WHERE pk = $1",
    )
    .bind(a.pk)
    .bind(status)
    .bind(next)
    .bind(&a.error)
    .bind(a.now)
    .execute(pool)
    .await
    .ctx("recording a callback attempt")
    .map(drop)
}

pub(super) async fn list(
    pool: &PgPool,
    failed_only: bool,
    limit: i64,
) -> StoreResult<Vec<CallbackRecord>> {
    let rows = sqlx::query(AssertSqlSafe(LIST[usize::from(failed_only)].as_str()))
        .bind(limit)
        .fetch_all(pool)
        .await
        .ctx("listing callbacks")?;
    rows.iter()
        .map(|r| -> Result<CallbackRecord, sqlx::Error> {
            Ok(CallbackRecord {
                event_id: r.try_get("event_id")?,
                kid: r.try_get("kid")?,
                state: state_of(r, "state")?,
                status: r.try_get("status")?,
                attempts: r.try_get("attempts")?,
                next_attempt_at: r.try_get("next_attempt_at")?,
                last_error: r.try_get("last_error")?,
                created_at: r.try_get("created_at")?,
                delivered_at: r.try_get("delivered_at")?,
            })
        })
        .collect::<Result<_, _>>()
        .ctx("listing callbacks")
}

pub(super) async fn retry(pool: &PgPool, event_id: &str, now: i64) -> StoreResult<bool> {
    Ok(sqlx::query(
        "UPDATE callback_events SET status = 'pending', attempts = 0, next_attempt_at = $2,
           lease_until = 0, updated_at = $2
         WHERE event_id = $1",
    )
    .bind(event_id)
    .bind(now)
    .execute(pool)
    .await
    .ctx("queueing a callback again")?
    .rows_affected()
        == 1)
}
