//! Inits in groups (`group`): two statements over all of a group's inits, one that
//! expires stale identical requests and finds open ones, one that upserts the customers
//! and inserts the requests. Inits of a customer already named earlier in the group are
//! written one by one after the others, in the same transaction, since one statement
//! may not touch a row twice.

use super::Ctx;
use super::group::{Grouped, by_position, each};
use crate::domain::state::{EXPIRED_REASON, KycState};
use crate::store::backend::Run;
use crate::store::ops::{callbacks, kyc, statement};
use crate::store::sql::{reusable, state_list};
use crate::store::{InitStored, NewKyc, StoreError, StoreResult};
use sqlx::PgConnection;
use std::collections::HashSet;

// Each init's customer and requests are looked up through `LATERAL … LIMIT 1` by key,
// which the planner cannot turn into a join: while the tables grow faster than their
// statistics, it hashed the whole customers table for every group (240 pages a group).
// At most one request per customer and fingerprint is open (a partial unique index),
// so `LIMIT 1` loses nothing. The expiring update says again of the row it changes that
// it is still waiting and past its expiry: PostgreSQL rechecks a row another transaction
// changed meanwhile only against the update's own conditions, and without them a request
// approved while the group waited for its row was expired.
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
           AND state IN ({expiring}) AND expires_at <= wanted.at LIMIT 1) AS found),
     expired AS (
       UPDATE kyc_requests k SET state = 'expired', reason = $5, updated_at = stale.at
       FROM stale WHERE k.kid = stale.kid AND k.state IN ({expiring}) AND k.expires_at <= stale.at
       RETURNING k.kid, k.merchant_pk, k.customer_pk, stale.at),
     queued AS ({queue})
     SELECT wanted.i, k.kid, k.url_sealed, k.cust_id FROM wanted CROSS JOIN LATERAL (
       SELECT k.kid, k.url_sealed, c.cust_id FROM kyc_requests k
       JOIN customers c ON c.pk = k.customer_pk
       WHERE k.customer_pk = wanted.customer_pk AND k.fingerprint = wanted.fingerprint
         AND {reusable} LIMIT 1) AS k",
    expiring = state_list(KycState::expires_by_time),
    queue = callbacks::queue_from("expired", KycState::Expired, "x.at"),
    reusable = reusable("k", "wanted.at")
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

/// Inits, grouped.
pub(super) struct Inits;

impl Grouped for Inits {
    type Write = NewKyc;
    type Done = InitStored;
    const QUEUE: &'static str = "postgres_init_groups";
    const MOST: usize = 256;

    fn observe(size: usize) {
        crate::metrics::postgres_group_inits(size);
    }

    fn together<'c>(tx: &'c mut PgConnection, news: &'c [NewKyc]) -> Run<'c, Vec<InitStored>> {
        Box::pin(together(tx, news))
    }

    fn alone<'c>(conn: &'c mut PgConnection, new: &'c NewKyc) -> Run<'c, InitStored> {
        Box::pin(kyc::init(conn, new))
    }
}

/// Both statements over the first init of each customer, then the rest one by one.
async fn together(tx: &mut PgConnection, news: &[NewKyc]) -> StoreResult<Vec<InitStored>> {
    let mut seen = HashSet::with_capacity(news.len());
    let (firsts, repeats): (Vec<usize>, Vec<usize>) = (0..news.len())
        .partition(|&i| seen.insert((news[i].merchant_pk, &news[i].customer.pan_hash)));
    let mut stored: Vec<Option<InitStored>> = vec![None; news.len()];
    let pick = |at: &[usize]| at.iter().map(|&i| &news[i]).collect::<Vec<_>>();
    let found = open_identical(tx, &pick(&firsts)).await?;
    let mut left = Vec::with_capacity(firsts.len());
    for (i, open) in firsts.into_iter().zip(found) {
        match open {
            Some(open) => stored[i] = Some(open),
            None => left.push(i),
        }
    }
    let inserted = insert(tx, &pick(&left)).await?;
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
    Ok(stored
        .into_iter()
        .map(|s| s.expect("every init of the group was stored"))
        .collect())
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
