//! The SQL behind each `Store` operation on PostgreSQL.

use super::batch::Fetched;
use super::{Ctx, PgStore, callbacks};
use crate::domain::callback::KycEvent;
use crate::domain::state::{EXPIRED_REASON, KycState};
use crate::store::sql::{reusable, state_list};
use crate::store::*;
use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, Row};
use std::sync::LazyLock;

/// Dynamic SQL here is assembled only from the domain's state names, never from input.
fn dynamic(sql: String) -> AssertSqlSafe<String> {
    AssertSqlSafe(sql)
}

pub(super) fn state_of(row: &PgRow, column: &str) -> Result<KycState, sqlx::Error> {
    let text: String = row.try_get(column)?;
    KycState::parse(&text)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown KYC state {text:?}").into()))
}

fn kyc_record(r: &PgRow) -> Result<KycRecord, sqlx::Error> {
    Ok(KycRecord {
        kid: r.try_get("kid")?,
        reference: r.try_get("reference")?,
        merchant_code: r.try_get("code")?,
        merchant_name: r.try_get("merchant_name")?,
        client_id: r.try_get("client_id")?,
        cust_id: r.try_get("cust_id")?,
        provider: r.try_get("provider")?,
        state: state_of(r, "state")?,
        reason: r.try_get("reason")?,
        url_sealed: r.try_get("url_sealed")?,
        token_hash: r.try_get("token_hash")?,
        redirect_url: r.try_get("redirect_url")?,
        result_sealed: r.try_get("result_sealed")?,
        customer_details_sealed: r.try_get("details_sealed")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        expires_at: r.try_get("expires_at")?,
        checked_at: r.try_get("checked_at")?,
        merchant_active: r.try_get("merchant_active")?,
    })
}

fn merchant_record(r: &PgRow) -> Result<MerchantRecord, sqlx::Error> {
    Ok(MerchantRecord {
        pk: r.try_get("pk")?,
        code: r.try_get("code")?,
        name: r.try_get("name")?,
        active: r.try_get("active")?,
        client_id: r.try_get("client_id")?,
    })
}

static EXPIRE_DUE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH expired AS (
           UPDATE kyc_requests SET state = 'expired', reason = $3, updated_at = $1
           WHERE kid IN (SELECT kid FROM kyc_requests WHERE state IN ({}) AND expires_at <= $1
                         ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)
           RETURNING kid, merchant_pk, customer_pk),
         queued AS ({})
         SELECT COUNT(*) FROM expired",
        state_list(KycState::expires_by_time),
        callbacks::queue_from("expired", KycState::Expired, "$1")
    )
});

// Built once from the domain's states: these run on every init. An identical init is
// one of the same customer (the fingerprint covers merchant and PAN), so each finds the
// customer by (merchant, PAN hash) first and the request by the per-customer index.
const CUSTOMER_BY_PAN: &str = "(SELECT pk FROM customers WHERE merchant_pk = $3 AND pan_hash = $4)";
static OPEN_IDENTICAL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT k.kid, k.url_sealed, c.cust_id FROM kyc_requests k
         JOIN customers c ON c.pk = k.customer_pk
         WHERE k.customer_pk = {CUSTOMER_BY_PAN} AND k.fingerprint = $1 AND {}",
        reusable("k", "$2")
    )
});
// An open request whose time ran out no longer counts (nor blocks the new one): it is
// expired, and announced like any other expiry. One statement does that and looks for
// the identical request still open (one round trip fewer per init): the SELECT reads
// the snapshot from before the UPDATE, and `reusable` leaves out exactly the rows the
// UPDATE expires.
static EXPIRE_STALE_THEN_OPEN_IDENTICAL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH expired AS (
           UPDATE kyc_requests SET state = 'expired', reason = $5, updated_at = $2
           WHERE customer_pk = {CUSTOMER_BY_PAN} AND fingerprint = $1 AND state IN ({})
             AND expires_at <= $2
           RETURNING kid, merchant_pk, customer_pk),
         queued AS ({})
         SELECT k.kid, k.url_sealed, c.cust_id FROM kyc_requests k
         JOIN customers c ON c.pk = k.customer_pk
         WHERE k.customer_pk = {CUSTOMER_BY_PAN} AND k.fingerprint = $1 AND {}",
        state_list(KycState::expires_by_time),
        callbacks::queue_from("expired", KycState::Expired, "$2"),
        reusable("k", "$2")
    )
});
// The customer (created, or brought up to date) and the request in one statement: one
// round trip fewer per init. The customer's custId comes back whether or not the request
// was inserted: another node may have opened the identical request since we looked, and
// the partial unique index then makes this wait for it and insert nothing.
static UPSERT_CUSTOMER_INSERT_KYC: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH customer AS (
           INSERT INTO customers (cust_id, merchant_pk, pan_hash, mobile_hash, details_sealed, created_at, updated_at)
           VALUES ($12, $3, $13, $14, $15, $10, $10)
           ON CONFLICT (merchant_pk, pan_hash) DO UPDATE SET
             mobile_hash = excluded.mobile_hash, details_sealed = excluded.details_sealed,
             updated_at = excluded.updated_at
           RETURNING pk, cust_id),
         request AS (
           INSERT INTO kyc_requests (kid, reference, merchant_pk, customer_pk, provider, state, fingerprint,
             url_sealed, token_hash, redirect_url, created_at, updated_at, expires_at)
           SELECT $1, $2, $3, customer.pk, $4, $5, $6, $7, $8, $9, $10, $10, $11 FROM customer
           ON CONFLICT (customer_pk, fingerprint) WHERE state IN ({}) DO NOTHING
           RETURNING kid)
         SELECT customer.cust_id, EXISTS (SELECT 1 FROM request) AS inserted FROM customer",
        state_list(KycState::is_open)
    )
});

async fn open_identical(conn: &mut PgConnection, new: &NewKyc) -> StoreResult<Option<InitStored>> {
    let row = sqlx::query(OPEN_IDENTICAL.as_str())
        .bind(&new.fingerprint)
        .bind(new.now)
        .bind(new.merchant_pk)
        .bind(&new.customer.pan_hash)
        .fetch_optional(&mut *conn)
        .await
        .ctx("looking for an identical open request")?;
    identical_from(row)
}

/// Expires a stale identical request, and finds the identical one still open.
async fn expire_stale_then_open_identical(
    conn: &mut PgConnection,
    new: &NewKyc,
) -> StoreResult<Option<InitStored>> {
    let row = sqlx::query(EXPIRE_STALE_THEN_OPEN_IDENTICAL.as_str())
        .bind(&new.fingerprint)
        .bind(new.now)
        .bind(new.merchant_pk)
        .bind(&new.customer.pan_hash)
        .bind(EXPIRED_REASON)
        .fetch_optional(&mut *conn)
        .await
        .ctx("expiring a stale identical request")?;
    identical_from(row)
}

fn identical_from(row: Option<PgRow>) -> StoreResult<Option<InitStored>> {
    row.map(|r| {
        Ok(InitStored {
            kid: r.try_get("kid")?,
            url_sealed: r.try_get("url_sealed")?,
            cust_id: r.try_get("cust_id")?,
            reused: true,
        })
    })
    .transpose()
    .ctx("reading an identical open request")
}

/// The lookups that many requests make at once, each as one query over a batch of keys
/// on the lookup's own connection (see `batch`). The keys come in as a joined `unnest`,
/// not `= ANY($1)`: PostgreSQL's generic plan for the prepared `ANY` form scanned the
/// table and compared every row with every key once the table had grown. The KYC lookup
/// is one `LIMIT 1` subquery per key, which the planner cannot fold into a join: with
/// fresh statistics it hashed the whole customers table for each batch instead of
/// looking 64 customers up by key (a status read then cost PostgreSQL 83 µs, not 25).
pub(super) async fn clients(conn: PgConnection, ids: Vec<String>) -> Fetched<String, ClientRecord> {
    let sql = "SELECT a.pk, a.client_id, a.name, a.secret_hash, a.active
               FROM unnest($1::TEXT[]) AS wanted (client_id) JOIN api_clients a USING (client_id)";
    keyed(conn, sql, ids, "reading clients", |r| {
        let client = ClientRecord {
            pk: r.try_get("pk")?,
            client_id: r.try_get("client_id")?,
            name: r.try_get("name")?,
            secret_hash: r.try_get("secret_hash")?,
            active: r.try_get("active")?,
        };
        Ok((client.client_id.clone(), client))
    })
    .await
}

pub(super) async fn merchants(
    conn: PgConnection,
    keys: Vec<(i64, String)>,
) -> Fetched<(i64, String), MerchantRecord> {
    // Codes are unique: at most one row per code, keyed by the client that owns it.
    let codes = keys.into_iter().map(|(_, code)| code).collect();
    let sql = "SELECT m.pk, m.code, m.name, m.active, a.client_id, m.client_pk
               FROM unnest($1::TEXT[]) AS wanted (code) JOIN merchants m USING (code)
               JOIN api_clients a ON a.pk = m.client_pk";
    keyed(conn, sql, codes, "reading merchants", |r| {
        let merchant = merchant_record(r)?;
        Ok(((r.try_get("client_pk")?, merchant.code.clone()), merchant))
    })
    .await
}

/// Each with the pk of the client whose merchant the request belongs to.
pub(super) async fn kycs(
    conn: PgConnection,
    kids: Vec<String>,
) -> Fetched<String, (i64, KycRecord)> {
    let sql = "SELECT found.* FROM unnest($1::TEXT[]) AS wanted (kid) CROSS JOIN LATERAL (
                 SELECT k.kid, k.reference, m.code, m.name AS merchant_name, a.client_id, m.client_pk,
                   c.cust_id, k.provider, k.state, k.reason, k.url_sealed, k.token_hash, k.redirect_url,
                   k.result_sealed, c.details_sealed, k.created_at, k.updated_at, k.expires_at, k.checked_at,
                   m.active AS merchant_active
                 FROM kyc_requests k
                 JOIN merchants m ON m.pk = k.merchant_pk
                 JOIN api_clients a ON a.pk = m.client_pk
                 JOIN customers c ON c.pk = k.customer_pk
                 WHERE k.kid = wanted.kid LIMIT 1) AS found";
    keyed(conn, sql, kids, "reading KYC requests", |r| {
        let record = kyc_record(r)?;
        Ok((record.kid.clone(), (r.try_get("client_pk")?, record)))
    })
    .await
}

/// Runs a batched lookup whose only parameter is the keys, and keys each row it finds.
async fn keyed<K, V>(
    mut conn: PgConnection,
    sql: &'static str,
    keys: Vec<String>,
    context: &'static str,
    row: impl Fn(&PgRow) -> Result<(K, V), sqlx::Error>,
) -> Fetched<K, V> {
    let found = sqlx::query(sql)
        .bind(keys)
        .fetch_all(&mut conn)
        .await
        .and_then(|rows| rows.iter().map(&row).collect())
        .ctx(context);
    (conn, found)
}

impl PgStore {
    async fn claim_key_now(&self, k: &IdempotencyClaim) -> StoreResult<KeyState> {
        let mut tx = self
            .pool
            .begin()
            .await
            .ctx("starting an idempotency claim")?;
        // A concurrent first use waits here for the other insert to commit, then sees its row.
        let taken = sqlx::query(
            "INSERT INTO idempotency_keys (client_pk, idem_key, request_hash, created_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(k.client_pk)
        .bind(&k.key)
        .bind(&k.request_hash)
        .bind(k.now)
        .execute(&mut *tx)
        .await
        .ctx("taking an idempotency key")?
        .rows_affected()
            == 1;
        let state = if taken {
            KeyState::Taken
        } else {
            let row = sqlx::query(
                "SELECT request_hash, reply_sealed, created_at FROM idempotency_keys
                 WHERE client_pk = $1 AND idem_key = $2 FOR UPDATE",
            )
            .bind(k.client_pk)
            .bind(&k.key)
            .fetch_one(&mut *tx)
            .await
            .ctx("reading an idempotency key")?;
            let hash: Vec<u8> = row
                .try_get("request_hash")
                .ctx("reading an idempotency key")?;
            let reply: Option<Vec<u8>> = row
                .try_get("reply_sealed")
                .ctx("reading an idempotency key")?;
            let created: i64 = row
                .try_get("created_at")
                .ctx("reading an idempotency key")?;
            match (hash == k.request_hash, reply) {
                (false, _) => KeyState::Mismatch,
                (true, Some(reply)) => KeyState::Done(reply),
                (true, None) if created < k.stale_before => {
                    sqlx::query("UPDATE idempotency_keys SET created_at = $3 WHERE client_pk = $1 AND idem_key = $2")
                        .bind(k.client_pk)
                        .bind(&k.key)
                        .bind(k.now)
                        .execute(&mut *tx)
                        .await
                        .ctx("retaking an abandoned idempotency key")?;
                    KeyState::Taken
                }
                (true, None) => KeyState::InFlight,
            }
        };
        tx.commit().await.ctx("committing an idempotency claim")?;
        Ok(state)
    }

    async fn insert_kyc(&self, new: NewKyc) -> StoreResult<InitStored> {
        let mut tx = self.pool.begin().await.ctx("starting an init")?;
        if let Some(open) = expire_stale_then_open_identical(&mut tx, &new).await? {
            // Nothing was expired (an open identical request rules out a stale one: the
            // partial unique index holds one open request per customer and fingerprint), so this ends
            // a transaction that wrote nothing.
            tx.commit().await.ctx("ending an init")?;
            return Ok(open);
        }
        let c = &new.customer;
        let upserted = sqlx::query(UPSERT_CUSTOMER_INSERT_KYC.as_str())
            .bind(&new.kid)
            .bind(&new.reference)
            .bind(new.merchant_pk)
            .bind(new.provider)
            .bind(new.state.as_str())
            .bind(&new.fingerprint)
            .bind(&new.url_sealed)
            .bind(&new.token_hash)
            .bind(&new.redirect_url)
            .bind(new.now)
            .bind(new.expires_at)
            .bind(&c.cust_id)
            .bind(&c.pan_hash)
            .bind(&c.mobile_hash)
            .bind(&c.details_sealed)
            .fetch_one(&mut *tx)
            .await;
        // Which unique rule a clash broke tells a custId drawn twice (drawn again by the
        // caller) from a kid or reference taken.
        let row = match upserted {
            Err(sqlx::Error::Database(e)) if e.constraint() == Some("customers_cust_id_key") => {
                return Err(StoreError::Conflict("custId"));
            }
            other => other.ctx("kid")?,
        };
        let (cust_id, inserted): (String, bool) = (
            row.try_get("cust_id").ctx("reading a customer")?,
            row.try_get("inserted").ctx("reading an init")?,
        );
        let stored = if inserted {
            InitStored {
                kid: new.kid.clone(),
                url_sealed: new.url_sealed.clone(),
                cust_id,
                reused: false,
            }
        } else {
            open_identical(&mut tx, &new)
                .await?
                .ok_or(StoreError::Corrupt(
                    "an identical request blocked the insert but cannot be read".into(),
                ))?
        };
        tx.commit().await.ctx("committing an init")?;
        Ok(stored)
    }

    async fn transition_now(&self, t: Transition) -> StoreResult<Option<KycState>> {
        let mut tx = self.pool.begin().await.ctx("starting a state change")?;
        let moved = sqlx::query(dynamic(format!(
            "UPDATE kyc_requests SET state = $2, reason = COALESCE($3, reason),
               result_sealed = COALESCE($4, result_sealed), updated_at = $5
             WHERE kid = $1 AND state IN ({})",
            state_list(|s| s.can_move_to(t.to))
        )))
        .bind(&t.kid)
        .bind(t.to.as_str())
        .bind(&t.reason)
        .bind(&t.result_sealed)
        .bind(t.now)
        .execute(&mut *tx)
        .await
        .ctx("moving a KYC request")?
        .rows_affected()
            == 1;
        if moved && KycEvent::on_entering(t.to).is_some() {
            callbacks::queue(&mut tx, &t.kid, t.to, t.now).await?;
        }
        if moved && t.to == KycState::Approved {
            sqlx::query(
                "UPDATE customers SET verified_kid = $1, updated_at = $2
                 WHERE pk = (SELECT customer_pk FROM kyc_requests WHERE kid = $1)",
            )
            .bind(&t.kid)
            .bind(t.now)
            .execute(&mut *tx)
            .await
            .ctx("marking a customer verified")?;
        }
        let state = sqlx::query("SELECT state FROM kyc_requests WHERE kid = $1")
            .bind(&t.kid)
            .fetch_optional(&mut *tx)
            .await
            .ctx("reading a KYC state")?
            .map(|r| state_of(&r, "state"))
            .transpose()
            .ctx("reading a KYC state")?;
        tx.commit().await.ctx("committing a state change")?;
        Ok(state)
    }

    async fn customer_now(
        &self,
        client_pk: i64,
        code: &str,
        key: CustomerLookup,
    ) -> StoreResult<Option<CustomerRecord>> {
        let (column, hash) = match key {
            CustomerLookup::PanHash(h) => ("pan_hash", h),
            CustomerLookup::MobileHash(h) => ("mobile_hash", h),
        };
        let sql = format!(
            "SELECT c.pk, c.cust_id, c.active, c.details_sealed, c.verified_kid, v.result_sealed
             FROM customers c
             JOIN merchants m ON m.pk = c.merchant_pk
             LEFT JOIN kyc_requests v ON v.kid = c.verified_kid
             WHERE m.code = $1 AND m.client_pk = $2 AND c.{column} = $3
             ORDER BY c.updated_at DESC LIMIT 1"
        );
        let Some(row) = sqlx::query(dynamic(sql))
            .bind(code)
            .bind(client_pk)
            .bind(&hash)
            .fetch_optional(&self.pool)
            .await
            .ctx("reading a customer")?
        else {
            return Ok(None);
        };
        let read = |r: &PgRow| -> Result<(i64, CustomerRecord), sqlx::Error> {
            let verified = match (
                r.try_get::<Option<String>, _>("verified_kid")?,
                r.try_get::<Option<Vec<u8>>, _>("result_sealed")?,
            ) {
                (Some(kid), Some(sealed)) => Some((kid, sealed)),
                _ => None,
            };
            Ok((
                r.try_get("pk")?,
                CustomerRecord {
                    cust_id: r.try_get("cust_id")?,
                    active: r.try_get("active")?,
                    details_sealed: r.try_get("details_sealed")?,
                    verified,
                    latest: None,
                },
            ))
        };
        let (pk, mut record) = read(&row).ctx("reading a customer")?;
        record.latest = sqlx::query(
            "SELECT kid, state, url_sealed, expires_at FROM kyc_requests
             WHERE customer_pk = $1 ORDER BY created_at DESC, kid DESC LIMIT 1",
        )
        .bind(pk)
        .fetch_optional(&self.pool)
        .await
        .ctx("reading a customer's latest request")?
        .map(|r| -> Result<LatestKyc, sqlx::Error> {
            Ok(LatestKyc {
                kid: r.try_get("kid")?,
                state: state_of(&r, "state")?,
                url_sealed: r.try_get("url_sealed")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
        .ctx("reading a customer's latest request")?;
        Ok(Some(record))
    }
}

#[async_trait]
impl Store for PgStore {
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
        self.bounded(async {
            sqlx::query(
                "INSERT INTO paycc_settings (name, value, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(value)
            .bind(now)
            .execute(&self.pool)
            .await
            .ctx("keeping a setting")?;
            // A statement of its own: it sees the row of a node that won the insert.
            sqlx::query_scalar("SELECT value FROM paycc_settings WHERE name = $1")
                .bind(name)
                .fetch_one(&self.pool)
                .await
                .ctx("reading a setting")
        })
        .await
    }

    async fn create_client(
        &self,
        client_id: &str,
        name: &str,
        secret_hash: &[u8],
        now: i64,
    ) -> StoreResult<()> {
        let q = sqlx::query("INSERT INTO api_clients (client_id, name, secret_hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(client_id)
            .bind(name)
            .bind(secret_hash)
            .bind(now);
        self.bounded(async { q.execute(&self.pool).await.ctx("clientId").map(drop) })
            .await
    }

    async fn set_client_secret(
        &self,
        client_id: &str,
        secret_hash: &[u8],
        now: i64,
    ) -> StoreResult<bool> {
        let q = sqlx::query(
            "UPDATE api_clients SET secret_hash = $2, secret_rotated_at = $3 WHERE client_id = $1",
        )
        .bind(client_id)
        .bind(secret_hash)
        .bind(now);
        self.bounded(async {
            Ok(q.execute(&self.pool)
                .await
                .ctx("rotating a client secret")?
                .rows_affected()
                == 1)
        })
        .await
    }

    async fn find_client(&self, client_id: &str) -> StoreResult<Option<ClientRecord>> {
        self.bounded(self.clients.get(client_id.to_owned())).await
    }

    async fn set_client_active(&self, client_id: &str, active: bool) -> StoreResult<bool> {
        let q = sqlx::query("UPDATE api_clients SET active = $2 WHERE client_id = $1")
            .bind(client_id)
            .bind(active);
        self.bounded(async {
            Ok(q.execute(&self.pool)
                .await
                .ctx("switching a client")?
                .rows_affected()
                == 1)
        })
        .await
    }

    async fn count_clients(&self) -> StoreResult<i64> {
        self.bounded(async {
            sqlx::query_scalar("SELECT COUNT(*) FROM api_clients")
                .fetch_one(&self.pool)
                .await
                .ctx("counting clients")
        })
        .await
    }

    async fn create_merchant(
        &self,
        client_id: &str,
        code: &str,
        name: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let q = sqlx::query(
            "INSERT INTO merchants (code, client_pk, name, created_at)
             SELECT $2, pk, $3, $4 FROM api_clients WHERE client_id = $1",
        )
        .bind(client_id)
        .bind(code)
        .bind(name)
        .bind(now);
        self.bounded(async {
            Ok(q.execute(&self.pool)
                .await
                .ctx("merchantCode")?
                .rows_affected()
                == 1)
        })
        .await
    }

    async fn list_merchants(&self) -> StoreResult<Vec<MerchantRecord>> {
        self.bounded(async {
            let rows = sqlx::query(
                "SELECT m.pk, m.code, m.name, m.active, a.client_id FROM merchants m
                 JOIN api_clients a ON a.pk = m.client_pk ORDER BY m.pk",
            )
            .fetch_all(&self.pool)
            .await
            .ctx("listing merchants")?;
            rows.iter()
                .map(merchant_record)
                .collect::<Result<_, _>>()
                .ctx("listing merchants")
        })
        .await
    }

    async fn set_merchant_active(&self, code: &str, active: bool) -> StoreResult<bool> {
        let q = sqlx::query("UPDATE merchants SET active = $2 WHERE code = $1")
            .bind(code)
            .bind(active);
        self.bounded(async {
            Ok(q.execute(&self.pool)
                .await
                .ctx("changing a merchant")?
                .rows_affected()
                == 1)
        })
        .await
    }

    async fn merchant_of_client(
        &self,
        client_pk: i64,
        code: &str,
    ) -> StoreResult<Option<MerchantRecord>> {
        self.bounded(self.merchants.get((client_pk, code.to_owned())))
            .await
    }

    async fn init_kyc(&self, new: NewKyc) -> StoreResult<InitStored> {
        self.bounded(self.insert_kyc(new)).await
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
        self.bounded(self.customer_now(client_pk, merchant_code, key))
            .await
    }

    async fn transition(&self, t: Transition) -> StoreResult<Option<KycState>> {
        self.bounded(self.transition_now(t)).await
    }

    async fn expire_due(&self, now: i64, limit: i64) -> StoreResult<usize> {
        // Each node claims its own rows; a row another node holds is skipped, not waited on.
        // One statement: the callbacks are queued in the transaction that expires.
        let q = sqlx::query_scalar::<_, i64>(AssertSqlSafe(EXPIRE_DUE.as_str()))
            .bind(now)
            .bind(limit)
            .bind(EXPIRED_REASON);
        self.bounded(async { Ok(q.fetch_one(&self.pool).await.ctx("expiring requests")? as usize) })
            .await
    }

    async fn client_callback(&self, client_id: &str) -> StoreResult<Option<ClientCallback>> {
        self.bounded(callbacks::client_callback(&self.pool, client_id))
            .await
    }

    async fn set_client_callback(
        &self,
        client_id: &str,
        url: &str,
        secret_sealed: Option<&[u8]>,
    ) -> StoreResult<bool> {
        self.bounded(callbacks::set_client_callback(
            &self.pool,
            client_id,
            url,
            secret_sealed,
        ))
        .await
    }

    async fn claim_callbacks(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> StoreResult<Vec<DueCallback>> {
        self.bounded(callbacks::claim(&self.pool, now, lease_until, limit))
            .await
    }

    async fn finish_callback_attempt(&self, attempt: &CallbackAttempt) -> StoreResult<()> {
        self.bounded(callbacks::finish(&self.pool, attempt)).await
    }

    async fn list_callbacks(
        &self,
        failed_only: bool,
        limit: i64,
    ) -> StoreResult<Vec<CallbackRecord>> {
        self.bounded(callbacks::list(&self.pool, failed_only, limit))
            .await
    }

    async fn purge_callbacks(&self, before: i64) -> StoreResult<usize> {
        let q = sqlx::query(dynamic(crate::store::sql::purge_callbacks("$1"))).bind(before);
        self.bounded(async {
            Ok(q.execute(&self.pool)
                .await
                .ctx("purging callback events")?
                .rows_affected() as usize)
        })
        .await
    }

    async fn retry_callback(&self, event_id: &str, now: i64) -> StoreResult<bool> {
        self.bounded(callbacks::retry(&self.pool, event_id, now))
            .await
    }

    async fn save_sandbox_session(
        &self,
        kid: &str,
        s: &SandboxSession,
        now: i64,
    ) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO sandbox_sessions (kid, step, outcome, face_match, selfie_sealed, person_sealed, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (kid) DO UPDATE SET step = excluded.step, outcome = excluded.outcome,
               face_match = excluded.face_match,
               selfie_sealed = COALESCE(excluded.selfie_sealed, sandbox_sessions.selfie_sealed),
               person_sealed = excluded.person_sealed,
               updated_at = excluded.updated_at",
        )
        .bind(kid)
        .bind(&s.step)
        .bind(&s.outcome)
        .bind(s.face_match.map(i32::from))
        .bind(&s.selfie_sealed)
        .bind(&s.person_sealed)
        .bind(now);
        self.bounded(async {
            q.execute(&self.pool)
                .await
                .ctx("saving a sandbox session")
                .map(drop)
        })
        .await
    }

    async fn sandbox_session(&self, kid: &str) -> StoreResult<Option<SandboxSession>> {
        let q = sqlx::query(
            "SELECT step, outcome, face_match, selfie_sealed, person_sealed FROM sandbox_sessions WHERE kid = $1",
        )
        .bind(kid);
        self.bounded(async {
            q.fetch_optional(&self.pool)
                .await
                .ctx("reading a sandbox session")?
                .map(|r| -> Result<SandboxSession, sqlx::Error> {
                    let face: Option<i32> = r.try_get("face_match")?;
                    Ok(SandboxSession {
                        step: r.try_get("step")?,
                        outcome: r.try_get("outcome")?,
                        face_match: face.and_then(|f| u8::try_from(f).ok()),
                        selfie_sealed: r.try_get("selfie_sealed")?,
                        person_sealed: r.try_get("person_sealed")?,
                    })
                })
                .transpose()
                .ctx("reading a sandbox session")
        })
        .await
    }

    async fn activate_kyc(&self, reference: &str, a: &ActivatedKyc) -> StoreResult<()> {
        let q = sqlx::query(
            "UPDATE kyc_requests SET kid = $2, url_sealed = $3, token_hash = $4, state = 'pending', updated_at = $5
             WHERE reference = $1 AND state = 'created'",
        )
        .bind(reference)
        .bind(&a.kid)
        .bind(&a.url_sealed)
        .bind(&a.token_hash)
        .bind(a.now);
        self.bounded(async { q.execute(&self.pool).await.ctx("kid").map(drop) })
            .await
    }

    async fn fail_kyc(&self, reference: &str, reason: &str, now: i64) -> StoreResult<()> {
        let q = sqlx::query(
            "UPDATE kyc_requests SET state = 'failed', reason = $2, updated_at = $3 WHERE reference = $1 AND state = 'created'",
        )
        .bind(reference)
        .bind(reason)
        .bind(now);
        self.bounded(async {
            q.execute(&self.pool)
                .await
                .ctx("marking a request failed")
                .map(drop)
        })
        .await
    }

    async fn claim_for_recheck(
        &self,
        provider: &str,
        stale_before: i64,
        now: i64,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        // A row another node is claiming right now is skipped, not waited on.
        let sql = format!(
            "UPDATE kyc_requests SET checked_at = $3
             WHERE kid IN (SELECT kid FROM kyc_requests
                           WHERE provider = $1 AND state IN ({}) AND COALESCE(checked_at, updated_at) < $2
                           ORDER BY COALESCE(checked_at, updated_at) LIMIT $4 FOR UPDATE SKIP LOCKED)
             RETURNING kid",
            state_list(|s| s.is_open() && s != KycState::Created)
        );
        let q = sqlx::query_scalar(dynamic(sql))
            .bind(provider)
            .bind(stale_before)
            .bind(now)
            .bind(limit);
        self.bounded(async {
            q.fetch_all(&self.pool)
                .await
                .ctx("claiming requests to re-check")
        })
        .await
    }

    async fn mark_checked(&self, kid: &str, now: i64) -> StoreResult<()> {
        let q = sqlx::query("UPDATE kyc_requests SET checked_at = $2 WHERE kid = $1")
            .bind(kid)
            .bind(now);
        self.bounded(async {
            q.execute(&self.pool)
                .await
                .ctx("marking a request checked")
                .map(drop)
        })
        .await
    }

    async fn record_webhook_event(
        &self,
        provider: &str,
        event_id: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let q = sqlx::query(
            "INSERT INTO webhook_events (provider, event_id, received_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(provider)
        .bind(event_id)
        .bind(now);
        self.bounded(async {
            Ok(q.execute(&self.pool)
                .await
                .ctx("recording a webhook event")?
                .rows_affected()
                == 1)
        })
        .await
    }

    async fn claim_idempotency_key(&self, claim: &IdempotencyClaim) -> StoreResult<KeyState> {
        self.bounded(self.claim_key_now(claim)).await
    }

    async fn complete_idempotency_key(
        &self,
        client_pk: i64,
        key: &str,
        reply_sealed: &[u8],
    ) -> StoreResult<()> {
        let q = sqlx::query(
            "UPDATE idempotency_keys SET reply_sealed = $3 WHERE client_pk = $1 AND idem_key = $2",
        )
        .bind(client_pk)
        .bind(key)
        .bind(reply_sealed);
        self.bounded(async {
            q.execute(&self.pool)
                .await
                .ctx("storing an idempotent reply")
                .map(drop)
        })
        .await
    }

    async fn release_idempotency_key(&self, client_pk: i64, key: &str) -> StoreResult<()> {
        let q = sqlx::query("DELETE FROM idempotency_keys WHERE client_pk = $1 AND idem_key = $2 AND reply_sealed IS NULL")
            .bind(client_pk)
            .bind(key);
        self.bounded(async {
            q.execute(&self.pool)
                .await
                .ctx("releasing an idempotency key")
                .map(drop)
        })
        .await
    }

    async fn purge_idempotency_keys(&self, before: i64) -> StoreResult<usize> {
        let q = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1").bind(before);
        self.bounded(async {
            Ok(q.execute(&self.pool)
                .await
                .ctx("purging idempotency keys")?
                .rows_affected() as usize)
        })
        .await
    }
}
