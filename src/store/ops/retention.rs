//! Forgetting what is no longer to be kept: a request's identity data once it has ended
//! and its retention has passed (or at once, on an erasure request), provider webhook
//! events and sandbox journeys after their own retention.

use crate::domain::state::KycState;
use crate::store::backend::Access::{Atomic, Write};
use crate::store::backend::Backend;
use crate::store::db::{Columns, Conn, DecodeResult, Row, args};
use crate::store::ops::rows;
use crate::store::sql::state_list;
use crate::store::*;
use async_trait::async_trait;

statement!(
    ENDED_BEFORE,
    "SELECT kid FROM kyc_requests
     WHERE purged_at IS NULL AND state IN ({}) AND updated_at < $1
     ORDER BY updated_at LIMIT $2",
    state_list(KycState::is_terminal)
);

/// Purges up to `limit` requests that ended before `ended_before`; how many.
pub async fn purge_ended(
    c: &mut impl Conn,
    ended_before: UnixMs,
    now: UnixMs,
    limit: i64,
    audit: &AuditNote,
) -> StoreResult<usize> {
    let kids = c
        .fetch(
            "finding requests past their retention",
            ENDED_BEFORE.as_str(),
            args![ended_before, limit],
            rows::text_kid,
        )
        .await?;
    let mut purged = 0;
    for kid in &kids {
        purged += usize::from(purge(c, kid, now, audit).await?);
    }
    Ok(purged)
}

/// A request's customer (pk, custId) and its API client's id.
fn customer_and_client(r: &dyn Row) -> DecodeResult<(i64, String, String)> {
    Ok((r.i64("pk")?, r.string("cust_id")?, r.string("client_id")?))
}

fn state_and_purge(r: &dyn Row) -> DecodeResult<(KycState, bool)> {
    Ok((r.state("state")?, r.at_opt("purged_at")?.is_some()))
}

/// Purges one request if it has ended.
pub async fn purge_one(
    c: &mut impl Conn,
    kid: &str,
    now: UnixMs,
    audit: &AuditNote,
) -> StoreResult<PurgeOutcome> {
    let found = c
        .fetch_one(
            "reading a request to purge",
            "SELECT state, purged_at FROM kyc_requests WHERE kid = $1",
            args![kid],
            state_and_purge,
        )
        .await?;
    Ok(match found {
        None => PurgeOutcome::Unknown,
        Some((_, true)) => PurgeOutcome::AlreadyPurged,
        Some((state, false)) if state.is_open() => PurgeOutcome::StillOpen(state),
        Some(_) if purge(c, kid, now, audit).await? => PurgeOutcome::Purged,
        Some(_) => PurgeOutcome::AlreadyPurged,
    })
}

/// Deletes what identifies the person behind `kid`, keeping the tombstone; its customer
/// too, once none of its requests keeps anything. Recorded by `audit`'s entries, each
/// naming the request and its customer. `false` when another sweep (another node)
/// purged it first: the UPDATE waits for that one and then finds nothing to do.
async fn purge(c: &mut impl Conn, kid: &str, now: UnixMs, audit: &AuditNote) -> StoreResult<bool> {
    let applied = c
        .execute(
            "purging a request",
            "UPDATE kyc_requests SET result_sealed = NULL, submitted_sealed = NULL, url_sealed = NULL,
               token_hash = NULL, redirect_url = NULL, purged_at = $1
             WHERE kid = $2 AND purged_at IS NULL",
            args![now, kid],
        )
        .await?;
    if applied == 0 {
        return Ok(false);
    }
    c.execute(
        "purging a sandbox journey",
        "DELETE FROM sandbox_sessions WHERE kid = $1",
        args![kid],
    )
    .await?;
    c.execute(
        "unlinking a purged verification",
        "UPDATE customers SET verified_kid = NULL, updated_at = $1 WHERE verified_kid = $2",
        args![now, kid],
    )
    .await?;
    let owner = c
        .fetch_one(
            "reading a purged request's customer",
            "SELECT c.pk, c.cust_id, a.client_id FROM kyc_requests k
             JOIN customers c ON c.pk = k.customer_pk
             JOIN merchants m ON m.pk = k.merchant_pk
             JOIN api_clients a ON a.pk = m.client_pk
             WHERE k.kid = $1",
            args![kid],
            customer_and_client,
        )
        .await?;
    let mut note = audit.clone();
    for e in &mut note.entries {
        e.kid = Some(kid.to_owned());
        e.cust_id = owner.as_ref().map(|(_, cust_id, _)| cust_id.clone());
        e.client_id = owner.as_ref().map(|(_, _, client_id)| client_id.clone());
    }
    super::audit::append(c, &note).await?;
    if let Some((pk, cust_id, _)) = owner {
        // The hashes must stay unique and find nothing: derived from the custId, not
        // from the PAN or mobile they stood for.
        let tombstone = format!("purged {cust_id}").into_bytes();
        c.execute(
            "erasing a customer with nothing left",
            "UPDATE customers SET details_sealed = $1, pan_hash = $2, mobile_hash = $2, updated_at = $3
             WHERE pk = $4
               AND NOT EXISTS (SELECT 1 FROM kyc_requests WHERE customer_pk = $4 AND purged_at IS NULL)",
            args![&b""[..], &tombstone, now, pk],
        )
        .await?;
    }
    Ok(true)
}

/// Runs a `DELETE` of rows older than `before` (its only placeholder); how many went.
async fn delete_older(
    c: &mut impl Conn,
    context: &'static str,
    sql: &'static str,
    before: UnixMs,
) -> StoreResult<usize> {
    Ok(c.execute(context, sql, args![before]).await? as usize)
}

#[async_trait]
impl<B: Backend> Retention for B {
    async fn purge_ended_kycs(
        &self,
        ended_before: UnixMs,
        now: UnixMs,
        limit: i64,
        audit: AuditNote,
    ) -> StoreResult<usize> {
        self.run(Atomic, audit, move |c, audit| {
            Box::pin(purge_ended(c, ended_before, now, limit, audit))
        })
        .await
    }

    async fn purge_kyc(
        &self,
        kid: &str,
        now: UnixMs,
        audit: AuditNote,
    ) -> StoreResult<PurgeOutcome> {
        self.run(Atomic, (kid.to_owned(), audit), move |c, (kid, audit)| {
            Box::pin(purge_one(c, kid, now, audit))
        })
        .await
    }

    async fn purge_webhook_events(&self, before: UnixMs) -> StoreResult<usize> {
        let sql = "DELETE FROM webhook_events WHERE received_at < $1";
        self.run(Write, (), move |c, ()| {
            Box::pin(delete_older(c, "purging webhook events", sql, before))
        })
        .await
    }

    async fn purge_sandbox_sessions(&self, before: UnixMs) -> StoreResult<usize> {
        let sql = "DELETE FROM sandbox_sessions WHERE updated_at < $1";
        self.run(Write, (), move |c, ()| {
            Box::pin(delete_older(c, "purging sandbox journeys", sql, before))
        })
        .await
    }
}
