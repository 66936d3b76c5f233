//! The callback outbox on SQLite. Every function runs on a connection the caller holds,
//! so the writer thread can put an event in the same transaction as its state change.

use super::queries::state_of;
use crate::domain::state::KycState;
use crate::store::sql::{
    DUE_CALLBACK_COLUMNS, attempt_outcome, due_callbacks, insert_callback_events, list_callbacks,
};
use crate::store::*;
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::LazyLock;

static QUEUE: LazyLock<String> = LazyLock::new(|| {
    insert_callback_events(
        "(SELECT kid, merchant_pk, customer_pk FROM kyc_requests WHERE kid = ?1)",
        "?2",
        "?3",
    )
});

/// Queues the event announcing that `kid` entered `state`, if its client takes callbacks.
pub(super) fn queue(c: &Connection, kid: &str, state: KycState, now: i64) -> rusqlite::Result<()> {
    c.prepare_cached(&QUEUE)?
        .execute(params![kid, state.as_str(), now])
        .map(drop)
}

pub(super) fn client_callback(
    c: &Connection,
    client_id: &str,
) -> rusqlite::Result<Option<ClientCallback>> {
    c.prepare_cached(
        "SELECT callback_url, callback_secret_sealed FROM api_clients WHERE client_id = ?1",
    )?
    .query_row([client_id], |r| {
        Ok(ClientCallback {
            url: r.get(0)?,
            secret_sealed: r.get(1)?,
        })
    })
    .optional()
}

pub(super) fn set_client_callback(
    c: &Connection,
    client_id: &str,
    url: &str,
    secret_sealed: Option<&[u8]>,
) -> rusqlite::Result<bool> {
    c.execute(
        "UPDATE api_clients SET callback_url = ?2,
           callback_secret_sealed = COALESCE(?3, callback_secret_sealed)
         WHERE client_id = ?1",
        params![client_id, url, secret_sealed],
    )
    .map(|n| n == 1)
}

static CLAIM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE callback_events SET lease_until = ?2 WHERE pk IN ({}) RETURNING pk",
        due_callbacks("?1", "?3", "")
    )
});

static CLAIMED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {DUE_CALLBACK_COLUMNS} FROM callback_events e
         JOIN api_clients a ON a.pk = e.client_pk WHERE e.pk = ?1"
    )
});

pub(super) fn claim(
    c: &Connection,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> rusqlite::Result<Vec<DueCallback>> {
    let pks = c
        .prepare_cached(&CLAIM)?
        .query_map(params![now, lease_until, limit], |r| r.get::<_, i64>(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    let mut read = c.prepare_cached(&CLAIMED)?;
    pks.into_iter()
        .map(|pk| {
            read.query_row([pk], |r| {
                Ok(DueCallback {
                    pk: r.get(0)?,
                    event_id: r.get(1)?,
                    kid: r.get(2)?,
                    cust_id: r.get(3)?,
                    merchant_code: r.get(4)?,
                    state: state_of(r, 5)?,
                    attempts: r.get(6)?,
                    callback: ClientCallback {
                        url: r.get(7)?,
                        secret_sealed: r.get(8)?,
                    },
                })
            })
        })
        .collect()
}

pub(super) fn finish(c: &Connection, a: &CallbackAttempt) -> rusqlite::Result<()> {
    let (status, next) = attempt_outcome(a.result);
    c.prepare_cached(
        "UPDATE callback_events SET attempts = attempts + 1, lease_until = 0, status = ?2,
           next_attempt_at = COALESCE(?3, next_attempt_at), last_error = ?4, updated_at = ?5,
           delivered_at = CASE WHEN ?2 = 'delivered' THEN ?5 ELSE delivered_at END
         WHERE pk = ?1",
    )?
    .execute(params![a.pk, status, next, a.error, a.now])
    .map(drop)
}

static LIST: LazyLock<[String; 2]> =
    LazyLock::new(|| [list_callbacks(false, "?1"), list_callbacks(true, "?1")]);

pub(super) fn list(
    c: &Connection,
    failed_only: bool,
    limit: i64,
) -> rusqlite::Result<Vec<CallbackRecord>> {
    c.prepare_cached(&LIST[usize::from(failed_only)])?
        .query_map([limit], |r| {
            Ok(CallbackRecord {
                event_id: r.get(0)?,
                kid: r.get(1)?,
                state: state_of(r, 2)?,
                status: r.get(3)?,
                attempts: r.get(4)?,
                next_attempt_at: r.get(5)?,
                last_error: r.get(6)?,
                created_at: r.get(7)?,
                delivered_at: r.get(8)?,
            })
        })?
        .collect()
}

pub(super) fn retry(c: &Connection, event_id: &str, now: i64) -> rusqlite::Result<bool> {
    c.execute(
        "UPDATE callback_events SET status = 'pending', attempts = 0, next_attempt_at = ?2,
           lease_until = 0, updated_at = ?2
         WHERE event_id = ?1",
        params![event_id, now],
    )
    .map(|n| n == 1)
}
