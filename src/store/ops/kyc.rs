//! KYC requests and their customers: init, reads, guarded state changes, expiry, and
//! keeping in step with a remote provider.

use super::{callbacks, rows};
use crate::domain::callback::KycEvent;
use crate::domain::state::{EXPIRED_REASON, KycState};
use crate::store::backend::Access::{Atomic, Read, Write};
use crate::store::backend::Backend;
use crate::store::db::{Columns, Conn, DecodeResult, Row, args};
use crate::store::schema::Dialect;
use crate::store::sql::{reusable, state_list};
use crate::store::*;
use async_trait::async_trait;
use std::sync::LazyLock;

// An identical init is one of the same customer (the fingerprint covers merchant and
// PAN). PostgreSQL looks before it knows the customer's pk, so it finds the customer by
// (merchant, PAN hash) first, and the request by the per-customer index.
const CUSTOMER_BY_PAN: &str = "(SELECT pk FROM customers WHERE merchant_pk = $1 AND pan_hash = $2)";

statement!(
    EXPIRE_STALE_IDENTICAL,
    "UPDATE kyc_requests SET state = 'expired', reason = $1, updated_at = $2
     WHERE customer_pk = $3 AND fingerprint = $4 AND state IN ({}) AND expires_at <= $2
     RETURNING kid",
    state_list(KycState::expires_by_time)
);
statement!(
    OPEN_IDENTICAL,
    "SELECT k.kid, k.url_sealed, c.cust_id FROM kyc_requests k
     JOIN customers c ON c.pk = k.customer_pk
     WHERE k.customer_pk = $1 AND k.fingerprint = $2 AND k.state IN ({}) AND {}",
    state_list(KycState::is_open),
    reusable("k", "$3")
);
// PostgreSQL: the stale identical request expired (and announced) and the open one found
// in one statement, one round trip fewer per init. The SELECT reads the snapshot from
// before the UPDATE, and `reusable` leaves out exactly the rows the UPDATE expires.
statement!(
    EXPIRE_STALE_THEN_OPEN_IDENTICAL,
    "WITH expired AS (
       UPDATE kyc_requests SET state = 'expired', reason = $4, updated_at = $5
       WHERE customer_pk = {CUSTOMER_BY_PAN} AND fingerprint = $3 AND state IN ({})
         AND expires_at <= $5
       RETURNING kid, merchant_pk, customer_pk),
     queued AS ({})
     SELECT k.kid, k.url_sealed, c.cust_id FROM kyc_requests k
     JOIN customers c ON c.pk = k.customer_pk
     WHERE k.customer_pk = {CUSTOMER_BY_PAN} AND k.fingerprint = $3 AND {}",
    state_list(KycState::expires_by_time),
    callbacks::queue_from("expired", KycState::Expired, "$5"),
    reusable("k", "$5")
);
// PostgreSQL: the customer (created, or brought up to date) and the request in one
// statement. The custId comes back whether or not the request was inserted: another
// node may have opened the identical request since we looked, and the partial unique
// index then makes this wait for it and insert nothing.
statement!(
    UPSERT_CUSTOMER_INSERT_KYC,
    "WITH customer AS (
       INSERT INTO customers (cust_id, merchant_pk, pan_hash, mobile_hash, details_sealed, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $6)
       ON CONFLICT (merchant_pk, pan_hash) DO UPDATE SET
         mobile_hash = excluded.mobile_hash, details_sealed = excluded.details_sealed,
         updated_at = excluded.updated_at
       RETURNING pk, cust_id),
     request AS (
       INSERT INTO kyc_requests (kid, reference, merchant_pk, customer_pk, provider, state, fingerprint,
         url_sealed, token_hash, redirect_url, submitted_sealed, created_at, updated_at, expires_at)
       SELECT $7, $8, $2, customer.pk, $9, $10, $11, $12, $13, $14, $16, $6, $6, $15 FROM customer
       ON CONFLICT (customer_pk, fingerprint) WHERE state IN ({}) DO NOTHING
       RETURNING kid)
     SELECT customer.pk, customer.cust_id, EXISTS (SELECT 1 FROM request) AS inserted FROM customer",
    state_list(KycState::is_open)
);

/// The upserted customer's pk, whether the request went in, and the custId.
pub(crate) fn upserted(r: &dyn Row) -> DecodeResult<(i64, bool, String)> {
    Ok((r.i64("pk")?, r.flag("inserted")?, r.string("cust_id")?))
}

pub(crate) fn identical(r: &dyn Row) -> DecodeResult<InitStored> {
    Ok(InitStored {
        kid: r.string("kid")?,
        url_sealed: r.bytes("url_sealed")?,
        cust_id: r.string("cust_id")?,
        reused: true,
    })
}

/// Creates or reuses the (merchant, PAN) customer and stores the request, unless an open,
/// unexpired identical request exists: then that one. A stale identical request is
/// expired on the way, and announced like any other expiry.
pub async fn init(c: &mut impl Conn, new: &NewKyc) -> StoreResult<InitStored> {
    match c.dialect() {
        Dialect::Sqlite => init_in_turn(c, new).await,
        Dialect::Postgres => init_at_once(c, new).await,
    }
}

/// SQLite: one writer, so nothing can come between the look and the write. A new
/// customer's init is two inserts after the look; a known one's first settles an
/// identical request.
async fn init_in_turn(c: &mut impl Conn, new: &NewKyc) -> StoreResult<InitStored> {
    let k = &new.customer;
    let known = c
        .fetch_one(
            "looking up a customer",
            "SELECT pk AS n, cust_id AS t FROM customers WHERE merchant_pk = $1 AND pan_hash = $2",
            args![new.merchant_pk, &k.pan_hash],
            rows::pk_and_text,
        )
        .await?;
    let cust_id = match known {
        Some((pk, cust_id)) => {
            let expired = c
                .fetch(
                    "expiring a stale identical request",
                    EXPIRE_STALE_IDENTICAL.as_str(),
                    args![EXPIRED_REASON, new.now, pk, &new.fingerprint],
                    rows::text_kid,
                )
                .await?;
            for kid in &expired {
                callbacks::queue(c, kid, KycState::Expired, new.now).await?;
            }
            if let Some(open) = open_identical(c, pk, new).await? {
                return Ok(open);
            }
            c.execute(
                "updating a customer",
                "UPDATE customers SET mobile_hash = $1, details_sealed = $2, updated_at = $3 WHERE pk = $4",
                args![&k.mobile_hash, &k.details_sealed, new.now, pk],
            )
            .await?;
            cust_id
        }
        None => {
            // No RETURNING: SQLite collects returned rows in a temporary table (an eighth
            // of an init's instructions); the request finds its customer by key instead.
            c.execute(
                "creating a customer",
                "INSERT INTO customers (cust_id, merchant_pk, pan_hash, mobile_hash, details_sealed, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $6)",
                args![&k.cust_id, new.merchant_pk, &k.pan_hash, &k.mobile_hash, &k.details_sealed, new.now],
            )
            .await?;
            k.cust_id.clone()
        }
    };
    c.execute(
        "storing a KYC request",
        "INSERT INTO kyc_requests (kid, reference, merchant_pk, customer_pk, provider, state, fingerprint,
           url_sealed, token_hash, redirect_url, submitted_sealed, created_at, updated_at, expires_at)
         VALUES ($1, $2, $3, (SELECT pk FROM customers WHERE merchant_pk = $3 AND pan_hash = $4),
                 $5, $6, $7, $8, $9, $10, $11, $12, $12, $13)",
        args![
            &new.kid,
            &new.reference,
            new.merchant_pk,
            &k.pan_hash,
            new.provider,
            new.state.as_str(),
            &new.fingerprint,
            &new.url_sealed,
            &new.token_hash,
            &new.redirect_url,
            &k.submitted_sealed,
            new.now,
            new.expires_at
        ],
    )
    .await?;
    Ok(new.stored(cust_id))
}

/// The customer's open request identical to `new`, if it may still be reused.
pub(crate) async fn open_identical(
    c: &mut impl Conn,
    customer_pk: i64,
    new: &NewKyc,
) -> StoreResult<Option<InitStored>> {
    c.fetch_one(
        "looking for an identical open request",
        OPEN_IDENTICAL.as_str(),
        args![customer_pk, &new.fingerprint, new.now],
        identical,
    )
    .await
}

/// PostgreSQL: two statements in the caller's transaction, the second safe against an
/// identical init on another node at the same moment.
async fn init_at_once(c: &mut impl Conn, new: &NewKyc) -> StoreResult<InitStored> {
    let k = &new.customer;
    let open = c
        .fetch_one(
            "expiring a stale identical request",
            EXPIRE_STALE_THEN_OPEN_IDENTICAL.as_str(),
            args![
                new.merchant_pk,
                &k.pan_hash,
                &new.fingerprint,
                EXPIRED_REASON,
                new.now
            ],
            identical,
        )
        .await?;
    if let Some(open) = open {
        return Ok(open);
    }
    let (customer_pk, inserted, cust_id) = c
        .fetch_one(
            "storing a KYC request",
            UPSERT_CUSTOMER_INSERT_KYC.as_str(),
            args![
                &k.cust_id,
                new.merchant_pk,
                &k.pan_hash,
                &k.mobile_hash,
                &k.details_sealed,
                new.now,
                &new.kid,
                &new.reference,
                new.provider,
                new.state.as_str(),
                &new.fingerprint,
                &new.url_sealed,
                &new.token_hash,
                &new.redirect_url,
                new.expires_at,
                &k.submitted_sealed
            ],
            upserted,
        )
        .await?
        .ok_or_else(|| StoreError::Corrupt("an upserted customer returned nothing".into()))?;
    if inserted {
        return Ok(new.stored(cust_id));
    }
    open_identical(c, customer_pk, new).await?.ok_or_else(|| {
        StoreError::Corrupt("an identical request blocked the insert but cannot be read".into())
    })
}

statement!(
    KYC_BY_KID,
    "SELECT {} FROM kyc_requests k
     JOIN merchants m ON m.pk = k.merchant_pk
     JOIN api_clients a ON a.pk = m.client_pk
     JOIN customers c ON c.pk = k.customer_pk
     WHERE k.kid = $1",
    rows::KYC_COLUMNS
);

/// A request with the pk of the client it belongs to.
pub async fn by_kid(c: &mut impl Conn, kid: &str) -> StoreResult<Option<(ClientPk, KycRecord)>> {
    c.fetch_one(
        "reading a KYC request",
        KYC_BY_KID.as_str(),
        args![kid],
        rows::owned_kyc_record,
    )
    .await
}

/// The customer of one of the client's merchants with this `column` hash, and the
/// identity of its verified request.
fn customer_by(column: &str) -> String {
    format!(
        "SELECT c.pk AS n, c.cust_id, c.active, c.merchant_pk, c.pan_hash, c.details_sealed, c.verified_kid, v.result_sealed
         FROM customers c
         JOIN merchants m ON m.pk = c.merchant_pk
         LEFT JOIN kyc_requests v ON v.kid = c.verified_kid
         WHERE m.code = $1 AND m.client_pk = $2 AND c.{column} = $3
         ORDER BY c.updated_at DESC LIMIT 1"
    )
}
statement!(CUSTOMER_BY_PAN_HASH, "{}", customer_by("pan_hash"));
statement!(CUSTOMER_BY_MOBILE_HASH, "{}", customer_by("mobile_hash"));

/// A customer of one of the client's merchants, with its verified and newest requests.
pub async fn customer(
    c: &mut impl Conn,
    client_pk: ClientPk,
    merchant_code: &str,
    key: &CustomerLookup,
) -> StoreResult<Option<CustomerRecord>> {
    let (sql, hash) = match key {
        CustomerLookup::PanHash(h) => (CUSTOMER_BY_PAN_HASH.as_str(), h),
        CustomerLookup::MobileHash(h) => (CUSTOMER_BY_MOBILE_HASH.as_str(), h),
    };
    let Some((pk, mut record)) = c
        .fetch_one(
            "reading a customer",
            sql,
            args![merchant_code, client_pk, hash],
            rows::customer_record,
        )
        .await?
    else {
        return Ok(None);
    };
    // The same tie-break on both databases: of two requests made in the same
    // millisecond, the greater kid counts as the newer.
    record.latest = c
        .fetch_one(
            "reading a customer's latest request",
            "SELECT kid, state, url_sealed, expires_at FROM kyc_requests
             WHERE customer_pk = $1 ORDER BY created_at DESC, kid DESC LIMIT 1",
            args![pk],
            rows::latest_kyc,
        )
        .await?;
    Ok(Some(record))
}

/// Applies the move only from a lower-ranked state; the state after the call, `None` for
/// an unknown kid. An approval makes the customer carry this KYC as verified; a move a
/// callback announces queues one, in the same transaction. A checked request is marked
/// so by the same statement that moves it, or by the one that reads its state: one row
/// version and one round trip fewer than a separate mark.
pub async fn transition(c: &mut impl Conn, t: &Transition) -> StoreResult<Option<KycState>> {
    let checked_at = t.checked.then_some(t.now);
    let moved = c
        .execute(
            "moving a KYC request",
            transition_sql(t.to),
            args![
                t.to.as_str(),
                &t.reason,
                &t.result_sealed,
                t.now,
                checked_at,
                &t.kid
            ],
        )
        .await?
        == 1;
    if !moved {
        return unmoved(c, t).await;
    }
    if t.to == KycState::Approved {
        c.execute(
            "marking a customer verified",
            "UPDATE customers SET verified_kid = $1, updated_at = $2
             WHERE pk = (SELECT customer_pk FROM kyc_requests WHERE kid = $1)",
            args![&t.kid, t.now],
        )
        .await?;
    }
    if KycEvent::on_entering(t.to).is_some() {
        callbacks::queue(c, &t.kid, t.to, t.now).await?;
    }
    if let Some(note) = &t.audit {
        super::audit::append(c, note).await?;
    }
    Ok(Some(t.to))
}

/// Where a transition that did not apply leaves its request: its state (`None`: no such
/// kid), marked checked first when the provider was asked.
pub async fn unmoved(c: &mut impl Conn, t: &Transition) -> StoreResult<Option<KycState>> {
    if t.checked {
        c.fetch_one(
            "marking a request checked",
            "UPDATE kyc_requests SET checked_at = $1 WHERE kid = $2 RETURNING state AS t",
            args![t.now, &t.kid],
            rows::state,
        )
        .await
    } else {
        c.fetch_one(
            "reading a KYC state",
            "SELECT state AS t FROM kyc_requests WHERE kid = $1",
            args![&t.kid],
            rows::state,
        )
        .await
    }
}

/// The guarded UPDATE into `to`, built once per state.
fn transition_sql(to: KycState) -> &'static str {
    static BY_STATE: LazyLock<Vec<(KycState, String)>> = LazyLock::new(|| {
        KycState::ALL
            .into_iter()
            .map(|to| {
                let sql = format!(
                    "UPDATE kyc_requests SET state = $1, reason = COALESCE($2, reason),
                       result_sealed = COALESCE($3, result_sealed), updated_at = $4,
                       checked_at = COALESCE($5, checked_at)
                     WHERE kid = $6 AND state IN ({})",
                    state_list(|s| s.can_move_to(to))
                );
                (to, sql)
            })
            .collect()
    });
    BY_STATE
        .iter()
        .find(|(state, _)| *state == to)
        .map(|(_, sql)| sql.as_str())
        .expect("every state has its statement")
}

statement!(
    EXPIRE_DUE_SQLITE,
    "UPDATE kyc_requests SET state = 'expired', reason = $1, updated_at = $2
     WHERE kid IN (SELECT kid FROM kyc_requests WHERE state IN ({}) AND expires_at <= $2
                   ORDER BY expires_at LIMIT $3)
     RETURNING kid",
    state_list(KycState::expires_by_time)
);
statement!(
    EXPIRE_DUE_POSTGRES,
    "UPDATE kyc_requests SET state = 'expired', reason = $1, updated_at = $2
     WHERE kid IN (SELECT kid FROM kyc_requests WHERE state IN ({}) AND expires_at <= $2
                   ORDER BY expires_at LIMIT $3 FOR UPDATE SKIP LOCKED)
     RETURNING kid",
    state_list(KycState::expires_by_time)
);

/// Marks at most `limit` open requests past their expiry as expired, queueing their
/// callbacks; how many.
pub async fn expire_due(c: &mut impl Conn, now: UnixMs, limit: i64) -> StoreResult<usize> {
    let sql = match c.dialect() {
        Dialect::Sqlite => EXPIRE_DUE_SQLITE.as_str(),
        Dialect::Postgres => EXPIRE_DUE_POSTGRES.as_str(),
    };
    let kids = c
        .fetch(
            "expiring requests",
            sql,
            args![EXPIRED_REASON, now, limit],
            rows::text_kid,
        )
        .await?;
    for kid in &kids {
        callbacks::queue(c, kid, KycState::Expired, now).await?;
    }
    Ok(kids.len())
}

/// A request stored as `created` got its provider session.
pub async fn activate(c: &mut impl Conn, reference: &str, a: &ActivatedKyc) -> StoreResult<()> {
    c.execute(
        "activating a KYC request",
        "UPDATE kyc_requests SET state = 'pending', kid = $1, url_sealed = $2, token_hash = $3, updated_at = $4
         WHERE reference = $5 AND state = 'created'",
        args![&a.kid, &a.url_sealed, &a.token_hash, a.now, reference],
    )
    .await
    .map(drop)
}

/// A request stored as `created` could not get a provider session.
pub async fn fail(
    c: &mut impl Conn,
    reference: &str,
    reason: &str,
    now: UnixMs,
) -> StoreResult<()> {
    c.execute(
        "marking a request failed",
        "UPDATE kyc_requests SET state = 'failed', reason = $1, updated_at = $2
         WHERE reference = $3 AND state = 'created'",
        args![reason, now, reference],
    )
    .await
    .map(drop)
}

statement!(
    RECHECK_SQLITE,
    "UPDATE kyc_requests SET checked_at = $1
     WHERE kid IN (SELECT kid FROM kyc_requests
                   WHERE provider = $2 AND state IN ({}) AND COALESCE(checked_at, updated_at) < $3
                   ORDER BY COALESCE(checked_at, updated_at) LIMIT $4)
     RETURNING kid",
    state_list(|s| s.is_open() && s != KycState::Created)
);
statement!(
    RECHECK_POSTGRES,
    "UPDATE kyc_requests SET checked_at = $1
     WHERE kid IN (SELECT kid FROM kyc_requests
                   WHERE provider = $2 AND state IN ({}) AND COALESCE(checked_at, updated_at) < $3
                   ORDER BY COALESCE(checked_at, updated_at) LIMIT $4 FOR UPDATE SKIP LOCKED)
     RETURNING kid",
    state_list(|s| s.is_open() && s != KycState::Created)
);

/// Claims up to `limit` open requests of `provider` not checked since `stale_before`.
pub async fn claim_for_recheck(
    c: &mut impl Conn,
    provider: &str,
    stale_before: UnixMs,
    now: UnixMs,
    limit: i64,
) -> StoreResult<Vec<String>> {
    let sql = match c.dialect() {
        Dialect::Sqlite => RECHECK_SQLITE.as_str(),
        Dialect::Postgres => RECHECK_POSTGRES.as_str(),
    };
    c.fetch(
        "claiming requests to re-check",
        sql,
        args![now, provider, stale_before, limit],
        rows::text_kid,
    )
    .await
}

/// `true` the first time an event id is seen.
pub async fn record_webhook_event(
    c: &mut impl Conn,
    provider: &str,
    event_id: &str,
    now: UnixMs,
) -> StoreResult<bool> {
    let n = c
        .execute(
            "recording a webhook event",
            "INSERT INTO webhook_events (provider, event_id, received_at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            args![provider, event_id, now],
        )
        .await?;
    Ok(n == 1)
}

#[async_trait]
impl<B: Backend> KycRequests for B {
    async fn init_kyc(&self, new: NewKyc) -> StoreResult<InitStored> {
        self.store_init(new).await
    }

    async fn kyc(&self, kid: &str, client_pk: Option<ClientPk>) -> StoreResult<Option<KycRecord>> {
        let found = self.lookup_kyc(kid).await?;
        Ok(found
            .filter(|(owner, _)| client_pk.is_none_or(|pk| pk == *owner))
            .map(|(_, record)| record))
    }

    async fn customer(
        &self,
        client_pk: ClientPk,
        merchant_code: &str,
        key: CustomerLookup,
    ) -> StoreResult<Option<CustomerRecord>> {
        let args = (merchant_code.to_owned(), key);
        self.run(Read, args, move |c, (code, key)| {
            Box::pin(customer(c, client_pk, code, key))
        })
        .await
    }

    async fn transition(&self, t: Transition) -> StoreResult<Option<KycState>> {
        self.store_transition(t).await
    }

    async fn expire_due(&self, now: UnixMs, limit: i64) -> StoreResult<usize> {
        self.run(Atomic, (), move |c, ()| Box::pin(expire_due(c, now, limit)))
            .await
    }

    async fn activate_kyc(&self, reference: &str, a: &ActivatedKyc) -> StoreResult<()> {
        let args = (reference.to_owned(), a.clone());
        self.run(Write, args, |c, (reference, a)| {
            Box::pin(activate(c, reference, a))
        })
        .await
    }

    async fn fail_kyc(&self, reference: &str, reason: &str, now: UnixMs) -> StoreResult<()> {
        let args = (reference.to_owned(), reason.to_owned());
        self.run(Write, args, move |c, (reference, reason)| {
            Box::pin(fail(c, reference, reason, now))
        })
        .await
    }

    async fn claim_for_recheck(
        &self,
        provider: &str,
        stale_before: UnixMs,
        now: UnixMs,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        self.run(Write, provider.to_owned(), move |c, provider| {
            Box::pin(claim_for_recheck(c, provider, stale_before, now, limit))
        })
        .await
    }

    async fn record_webhook_event(
        &self,
        provider: &str,
        event_id: &str,
        now: UnixMs,
    ) -> StoreResult<bool> {
        let args = (provider.to_owned(), event_id.to_owned());
        self.run(Write, args, move |c, (provider, event_id)| {
            Box::pin(record_webhook_event(c, provider, event_id, now))
        })
        .await
    }
}
