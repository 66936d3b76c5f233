//! The `Store` operations on PostgreSQL: each runs the shared operation (`store::ops`) on
//! a pooled connection, in a transaction where it writes more than one statement, within
//! the call timeout. The lookups every request makes go through `batch` instead.

use super::batch::Fetched;
use super::{Ctx, PgStore};
use crate::domain::state::KycState;
use crate::store::db::{DecodeResult, Row};
use crate::store::ops::{
    callbacks, clients as client_ops, idempotency, kyc, rows, sandbox, statement,
};
use crate::store::*;
use async_trait::async_trait;
use sqlx::PgConnection;
use sqlx::postgres::PgRow;

/// Runs an operation on a pooled connection: `on_pool!(self, |c| op(c, …))`.
macro_rules! on_pool {
    ($store:expr, |$c:ident| $op:expr) => {
        $store.bounded(async {
            let mut conn = $store.pool.acquire().await.ctx("taking a connection")?;
            let $c = &mut *conn;
            $op.await
        })
    };
}

/// Runs an operation in a transaction of its own.
macro_rules! in_transaction {
    ($store:expr, |$c:ident| $op:expr) => {
        $store.bounded(async {
            let mut tx = $store.pool.begin().await.ctx("starting a transaction")?;
            let done = {
                let $c = &mut *tx;
                $op.await?
            };
            tx.commit().await.ctx("committing a transaction")?;
            Ok(done)
        })
    };
}

// The lookups that many requests make at once, each as one query over a batch of keys
// on the lookup's own connection (see `batch`). The keys come in as a joined `unnest`,
// not `= ANY($1)`: PostgreSQL's generic plan for the prepared `ANY` form scanned the
// table and compared every row with every key once the table had grown. The KYC lookup
// is one `LIMIT 1` subquery per key, which the planner cannot fold into a join: with
// fresh statistics it hashed the whole customers table for each batch instead of
// looking 64 customers up by key.
statement!(
    CLIENTS,
    "SELECT {} FROM unnest($1::TEXT[]) AS wanted (client_id) JOIN api_clients a USING (client_id)",
    rows::CLIENT_COLUMNS
);
// Codes are unique: at most one row per code, keyed by the client that owns it.
statement!(
    MERCHANTS,
    "SELECT {} FROM unnest($1::TEXT[]) AS wanted (code) JOIN merchants m USING (code)
         JOIN api_clients a ON a.pk = m.client_pk",
    rows::MERCHANT_COLUMNS
);
statement!(
    KYCS,
    "SELECT found.* FROM unnest($1::TEXT[]) AS wanted (kid) CROSS JOIN LATERAL (
           SELECT {} FROM kyc_requests k
           JOIN merchants m ON m.pk = k.merchant_pk
           JOIN api_clients a ON a.pk = m.client_pk
           JOIN customers c ON c.pk = k.customer_pk
           WHERE k.kid = wanted.kid LIMIT 1) AS found",
    rows::KYC_COLUMNS
);

pub(super) async fn clients(conn: PgConnection, ids: Vec<String>) -> Fetched<String, ClientRecord> {
    keyed(
        conn,
        CLIENTS.as_str(),
        ids,
        "reading clients",
        rows::keyed_client_record,
    )
    .await
}

pub(super) async fn merchants(
    conn: PgConnection,
    keys: Vec<(i64, String)>,
) -> Fetched<(i64, String), MerchantRecord> {
    let codes = keys.into_iter().map(|(_, code)| code).collect();
    keyed(
        conn,
        MERCHANTS.as_str(),
        codes,
        "reading merchants",
        rows::keyed_merchant_record,
    )
    .await
}

/// Each with the pk of the client whose merchant the request belongs to.
pub(super) async fn kycs(
    conn: PgConnection,
    kids: Vec<String>,
) -> Fetched<String, (i64, KycRecord)> {
    keyed(conn, KYCS.as_str(), kids, "reading KYC requests", |r| {
        let (owner, record) = rows::owned_kyc_record(r)?;
        Ok((record.kid.clone(), (owner, record)))
    })
    .await
}

/// Runs a batched lookup whose only parameter is the keys, and keys each row it finds.
async fn keyed<K, V>(
    mut conn: PgConnection,
    sql: &'static str,
    keys: Vec<String>,
    context: &'static str,
    row: fn(&dyn Row) -> DecodeResult<(K, V)>,
) -> Fetched<K, V> {
    let found = match sqlx::query(sql)
        .bind(keys)
        .fetch_all(&mut conn)
        .await
        .ctx(context)
    {
        Ok(rows) => rows
            .iter()
            .map(|r: &PgRow| row(r).map_err(|e| crate::store::db::corrupt(context, e)))
            .collect(),
        Err(e) => Err(e),
    };
    (conn, found)
}

#[async_trait]
impl Settings for PgStore {
    async fn readiness(&self) -> StoreResult<()> {
        self.bounded(async {
            let found: i64 =
                sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM paycc_migrations")
                    .fetch_one(&self.pool)
                    .await
                    .ctx("reading the schema version")?;
            let wanted = crate::store::schema::MIGRATIONS.len() as i64;
            if found < wanted {
                Err(StoreError::SchemaBehind { found, wanted })
            } else {
                Ok(())
            }
        })
        .await
    }

    async fn pin_setting(&self, name: &str, value: &[u8], now: i64) -> StoreResult<Vec<u8>> {
        on_pool!(self, |c| client_ops::pin_setting(c, name, value, now)).await
    }
}

#[async_trait]
impl Clients for PgStore {
    async fn create_client(
        &self,
        client_id: &str,
        name: &str,
        secret_hash: &[u8],
        now: i64,
    ) -> StoreResult<()> {
        on_pool!(self, |c| client_ops::create_client(
            c,
            client_id,
            name,
            secret_hash,
            now
        ))
        .await
    }

    async fn set_client_secret(
        &self,
        client_id: &str,
        secret_hash: &[u8],
        now: i64,
    ) -> StoreResult<bool> {
        on_pool!(self, |c| client_ops::set_client_secret(
            c,
            client_id,
            secret_hash,
            now
        ))
        .await
    }

    async fn find_client(&self, client_id: &str) -> StoreResult<Option<ClientRecord>> {
        self.bounded(self.clients.get(client_id.to_owned())).await
    }

    async fn set_client_active(&self, client_id: &str, to: Switch) -> StoreResult<bool> {
        on_pool!(self, |c| client_ops::set_client_active(c, client_id, to)).await
    }

    async fn count_clients(&self) -> StoreResult<i64> {
        on_pool!(self, |c| client_ops::count_clients(c)).await
    }

    async fn create_merchant(
        &self,
        client_id: &str,
        code: &str,
        name: &str,
        now: i64,
    ) -> StoreResult<bool> {
        on_pool!(self, |c| client_ops::create_merchant(
            c, client_id, code, name, now
        ))
        .await
    }

    async fn list_merchants(&self) -> StoreResult<Vec<MerchantRecord>> {
        on_pool!(self, |c| client_ops::list_merchants(c)).await
    }

    async fn set_merchant_active(&self, code: &str, to: Switch) -> StoreResult<bool> {
        on_pool!(self, |c| client_ops::set_merchant_active(c, code, to)).await
    }

    async fn merchant_of_client(
        &self,
        client_pk: i64,
        code: &str,
    ) -> StoreResult<Option<MerchantRecord>> {
        self.bounded(self.merchants.get((client_pk, code.to_owned())))
            .await
    }

    async fn client_callback(&self, client_id: &str) -> StoreResult<Option<ClientCallback>> {
        on_pool!(self, |c| client_ops::client_callback(c, client_id)).await
    }

    async fn set_client_callback(
        &self,
        client_id: &str,
        url: &str,
        secret_sealed: Option<&[u8]>,
    ) -> StoreResult<bool> {
        on_pool!(self, |c| client_ops::set_client_callback(
            c,
            client_id,
            url,
            secret_sealed
        ))
        .await
    }
}

#[async_trait]
impl KycRequests for PgStore {
    async fn init_kyc(&self, new: NewKyc) -> StoreResult<InitStored> {
        in_transaction!(self, |c| kyc::init(c, &new)).await
    }

    async fn kyc(&self, kid: &str, client_pk: Option<i64>) -> StoreResult<Option<KycRecord>> {
        let found = self.bounded(self.kycs.get(kid.to_owned())).await?;
        Ok(found
            .filter(|(owner, _)| client_pk.is_none_or(|c| c == *owner))
            .map(|(_, record)| record))
    }

    async fn customer(
        &self,
        client_pk: i64,
        merchant_code: &str,
        key: CustomerLookup,
    ) -> StoreResult<Option<CustomerRecord>> {
        on_pool!(self, |c| kyc::customer(c, client_pk, merchant_code, &key)).await
    }

    async fn transition(&self, t: Transition) -> StoreResult<Option<KycState>> {
        in_transaction!(self, |c| kyc::transition(c, &t)).await
    }

    async fn expire_due(&self, now: i64, limit: i64) -> StoreResult<usize> {
        in_transaction!(self, |c| kyc::expire_due(c, now, limit)).await
    }

    async fn activate_kyc(&self, reference: &str, a: &ActivatedKyc) -> StoreResult<()> {
        on_pool!(self, |c| kyc::activate(c, reference, a)).await
    }

    async fn fail_kyc(&self, reference: &str, reason: &str, now: i64) -> StoreResult<()> {
        on_pool!(self, |c| kyc::fail(c, reference, reason, now)).await
    }

    async fn claim_for_recheck(
        &self,
        provider: &str,
        stale_before: i64,
        now: i64,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        on_pool!(self, |c| kyc::claim_for_recheck(
            c,
            provider,
            stale_before,
            now,
            limit
        ))
        .await
    }

    async fn mark_checked(&self, kid: &str, now: i64) -> StoreResult<()> {
        on_pool!(self, |c| kyc::mark_checked(c, kid, now)).await
    }

    async fn record_webhook_event(
        &self,
        provider: &str,
        event_id: &str,
        now: i64,
    ) -> StoreResult<bool> {
        on_pool!(self, |c| kyc::record_webhook_event(
            c, provider, event_id, now
        ))
        .await
    }
}

#[async_trait]
impl CallbackOutbox for PgStore {
    async fn claim_callbacks(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> StoreResult<Vec<DueCallback>> {
        on_pool!(self, |c| callbacks::claim(c, now, lease_until, limit)).await
    }

    async fn finish_callback_attempt(&self, attempt: &CallbackAttempt) -> StoreResult<()> {
        on_pool!(self, |c| callbacks::finish(c, attempt)).await
    }

    async fn list_callbacks(
        &self,
        which: CallbackFilter,
        limit: i64,
    ) -> StoreResult<Vec<CallbackRecord>> {
        on_pool!(self, |c| callbacks::list(c, which, limit)).await
    }

    async fn purge_callbacks(&self, before: i64) -> StoreResult<usize> {
        on_pool!(self, |c| callbacks::purge(c, before)).await
    }

    async fn retry_callback(&self, event_id: &str, now: i64) -> StoreResult<bool> {
        on_pool!(self, |c| callbacks::retry(c, event_id, now)).await
    }
}

#[async_trait]
impl IdempotencyKeys for PgStore {
    async fn claim_idempotency_key(&self, claim: &IdempotencyClaim) -> StoreResult<KeyState> {
        in_transaction!(self, |c| idempotency::claim(c, claim)).await
    }

    async fn complete_idempotency_key(
        &self,
        client_pk: i64,
        key: &str,
        reply_sealed: &[u8],
    ) -> StoreResult<()> {
        on_pool!(self, |c| idempotency::complete(
            c,
            client_pk,
            key,
            reply_sealed
        ))
        .await
    }

    async fn release_idempotency_key(&self, client_pk: i64, key: &str) -> StoreResult<()> {
        on_pool!(self, |c| idempotency::release(c, client_pk, key)).await
    }

    async fn purge_idempotency_keys(&self, before: i64) -> StoreResult<usize> {
        on_pool!(self, |c| idempotency::purge(c, before)).await
    }
}

#[async_trait]
impl SandboxSessions for PgStore {
    async fn save_sandbox_session(
        &self,
        kid: &str,
        s: &SandboxSession,
        now: i64,
    ) -> StoreResult<()> {
        on_pool!(self, |c| sandbox::save(c, kid, s, now)).await
    }

    async fn sandbox_session(&self, kid: &str) -> StoreResult<Option<SandboxSession>> {
        on_pool!(self, |c| sandbox::get(c, kid)).await
    }
}
