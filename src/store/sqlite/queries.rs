//! The SQL behind each `Store` operation.

use super::{Ctx, SqliteStore, callbacks};
use crate::domain::callback::KycEvent;
use crate::domain::state::KycState;
use crate::store::*;
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::sync::LazyLock;

use crate::domain::state::EXPIRED_REASON;
use crate::store::sql::{reusable, state_list};

pub(super) fn state_of(row: &Row<'_>, idx: usize) -> rusqlite::Result<KycState> {
    let text: String = row.get(idx)?;
    KycState::parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Text,
            format!("unknown KYC state {text:?}").into(),
        )
    })
}

const KYC_COLUMNS: &str = "k.kid, k.reference, m.code, m.name, a.client_id, c.cust_id, k.provider,
    k.state, k.reason, k.url_sealed, k.token_hash, k.redirect_url, k.result_sealed,
    c.details_sealed, k.created_at, k.updated_at, k.expires_at, k.checked_at, m.active";

fn kyc_record(r: &Row<'_>) -> rusqlite::Result<KycRecord> {
    Ok(KycRecord {
        kid: r.get(0)?,
        reference: r.get(1)?,
        merchant_code: r.get(2)?,
        merchant_name: r.get(3)?,
        client_id: r.get(4)?,
        cust_id: r.get(5)?,
        provider: r.get(6)?,
        state: state_of(r, 7)?,
        reason: r.get(8)?,
        url_sealed: r.get(9)?,
        token_hash: r.get(10)?,
        redirect_url: r.get(11)?,
        result_sealed: r.get(12)?,
        customer_details_sealed: r.get(13)?,
        created_at: r.get(14)?,
        updated_at: r.get(15)?,
        expires_at: r.get(16)?,
        checked_at: r.get(17)?,
        merchant_active: r.get(18)?,
    })
}

fn merchant_record(r: &Row<'_>) -> rusqlite::Result<MerchantRecord> {
    Ok(MerchantRecord {
        pk: r.get(0)?,
        code: r.get(1)?,
        name: r.get(2)?,
        active: r.get(3)?,
        client_id: r.get(4)?,
    })
}

// Built once from the domain's states: these run on every init or status read.
// An identical init is one of the same customer, so both look it up by customer first:
// a new customer's requests then land at the end of that index, not at a random page.
static OPEN_IDENTICAL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT k.kid, k.url_sealed FROM kyc_requests k
         WHERE k.customer_pk = ?1 AND k.fingerprint = ?2 AND k.state IN ({}) AND {}",
        state_list(KycState::is_open),
        reusable("k", "?3")
    )
});
static EXPIRE_STALE_IDENTICAL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE kyc_requests SET state = 'expired', reason = ?4, updated_at = ?3
         WHERE customer_pk = ?1 AND fingerprint = ?2 AND state IN ({}) AND state IN ({})
           AND expires_at <= ?3
         RETURNING kid",
        state_list(KycState::is_open),
        state_list(KycState::expires_by_time)
    )
});
static KYC_BY_KID: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {KYC_COLUMNS} FROM kyc_requests k
         JOIN merchants m ON m.pk = k.merchant_pk
         JOIN api_clients a ON a.pk = m.client_pk
         JOIN customers c ON c.pk = k.customer_pk
         WHERE k.kid = ?1 AND (?2 IS NULL OR m.client_pk = ?2)"
    )
});

/// The customer's open request identical to `new`, if it may still be reused. One whose
/// time ran out no longer counts (nor blocks the new one): it is expired here, and
/// announced like any other expiry.
fn open_identical(
    conn: &Connection,
    customer_pk: i64,
    cust_id: &str,
    new: &NewKyc,
) -> StoreResult<Option<InitStored>> {
    let expired = conn
        .prepare_cached(&EXPIRE_STALE_IDENTICAL)
        .and_then(|mut st| {
            st.query_map(
                params![customer_pk, new.fingerprint, new.now, EXPIRED_REASON],
                |r| r.get::<_, String>(0),
            )?
            .collect::<rusqlite::Result<Vec<String>>>()
        })
        .ctx("expiring a stale identical request")?;
    for kid in &expired {
        callbacks::queue(conn, kid, KycState::Expired, new.now).ctx("queueing a callback")?;
    }
    conn.prepare_cached(&OPEN_IDENTICAL)
        .and_then(|mut st| {
            st.query_row(params![customer_pk, new.fingerprint, new.now], |r| {
                Ok(InitStored {
                    kid: r.get(0)?,
                    url_sealed: r.get(1)?,
                    cust_id: cust_id.to_owned(),
                    reused: true,
                })
            })
            .optional()
        })
        .ctx("looking for an identical open request")
}

fn insert_kyc(conn: &Connection, new: &NewKyc) -> StoreResult<InitStored> {
    let c = &new.customer;
    let known: Option<(i64, String)> = conn
        .prepare_cached(
            "SELECT pk, cust_id FROM customers WHERE merchant_pk = ?1 AND pan_hash = ?2",
        )
        .and_then(|mut st| {
            st.query_row(params![new.merchant_pk, c.pan_hash], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
        })
        .ctx("looking up a customer")?;
    let (customer_pk, cust_id) = match known {
        Some((pk, cust_id)) => {
            if let Some(open) = open_identical(conn, pk, &cust_id, new)? {
                return Ok(open);
            }
            conn.prepare_cached(
                "UPDATE customers SET mobile_hash = ?2, details_sealed = ?3, updated_at = ?4 WHERE pk = ?1",
            )
            .and_then(|mut st| st.execute(params![pk, c.mobile_hash, c.details_sealed, new.now]))
            .ctx("updating a customer")?;
            (pk, cust_id)
        }
        None => {
            let pk = conn
                .prepare_cached(
                    "INSERT INTO customers (cust_id, merchant_pk, pan_hash, mobile_hash, details_sealed, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                )
                .and_then(|mut st| {
                    st.insert(params![c.cust_id, new.merchant_pk, c.pan_hash, c.mobile_hash, c.details_sealed, new.now])
                })
                .ctx("custId")?;
            (pk, c.cust_id.clone())
        }
    };
    conn.prepare_cached(
        "INSERT INTO kyc_requests (kid, reference, merchant_pk, customer_pk, provider, state, fingerprint,
           url_sealed, token_hash, redirect_url, created_at, updated_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12)",
    )
    .and_then(|mut st| {
        st.execute(params![
            new.kid,
            new.reference,
            new.merchant_pk,
            customer_pk,
            new.provider,
            new.state.as_str(),
            new.fingerprint,
            new.url_sealed,
            new.token_hash,
            new.redirect_url,
            new.now,
            new.expires_at
        ])
    })
    .ctx("kid")?;
    Ok(InitStored {
        kid: new.kid.clone(),
        url_sealed: new.url_sealed.clone(),
        cust_id,
        reused: false,
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn readiness(&self) -> StoreResult<()> {
        self.read(|c| {
            let found: i64 = c
                .query_row("PRAGMA user_version", [], |r| r.get(0))
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
        let (name, value) = (name.to_owned(), value.to_vec());
        self.write(move |c| {
            c.execute(
                "INSERT INTO paycc_settings (name, value, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO NOTHING",
                params![name, value, now],
            )
            .ctx("keeping a setting")?;
            c.query_row(
                "SELECT value FROM paycc_settings WHERE name = ?1",
                [&name],
                |r| r.get(0),
            )
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
        let (id, name, hash) = (client_id.to_owned(), name.to_owned(), secret_hash.to_vec());
        self.write(move |c| {
            c.execute(
                "INSERT INTO api_clients (client_id, name, secret_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![id, name, hash, now],
            )
            .ctx("clientId")?;
            Ok(())
        })
        .await
    }

    async fn set_client_secret(
        &self,
        client_id: &str,
        secret_hash: &[u8],
        now: i64,
    ) -> StoreResult<bool> {
        let (id, hash) = (client_id.to_owned(), secret_hash.to_vec());
        self.write(move |c| {
            let n = c
                .execute(
                    "UPDATE api_clients SET secret_hash = ?2, secret_rotated_at = ?3 WHERE client_id = ?1",
                    params![id, hash, now],
                )
                .ctx("rotating a client secret")?;
            Ok(n == 1)
        })
        .await
    }

    async fn find_client(&self, client_id: &str) -> StoreResult<Option<ClientRecord>> {
        let id = client_id.to_owned();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT pk, client_id, name, secret_hash, active FROM api_clients WHERE client_id = ?1",
            )
            .and_then(|mut st| {
                st.query_row([id], |r| {
                    Ok(ClientRecord {
                        pk: r.get(0)?,
                        client_id: r.get(1)?,
                        name: r.get(2)?,
                        secret_hash: r.get(3)?,
                        active: r.get(4)?,
                    })
                })
                .optional()
            })
            .ctx("reading a client")
        })
        .await
    }

    async fn set_client_active(&self, client_id: &str, active: bool) -> StoreResult<bool> {
        let id = client_id.to_owned();
        self.write(move |c| {
            let n = c
                .execute(
                    "UPDATE api_clients SET active = ?2 WHERE client_id = ?1",
                    params![id, active],
                )
                .ctx("switching a client")?;
            Ok(n == 1)
        })
        .await
    }

    async fn count_clients(&self) -> StoreResult<i64> {
        self.read(|c| {
            c.query_row("SELECT COUNT(*) FROM api_clients", [], |r| r.get(0))
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
        let (id, code, name) = (client_id.to_owned(), code.to_owned(), name.to_owned());
        self.write(move |c| {
            let n = c
                .execute(
                    "INSERT INTO merchants (code, client_pk, name, created_at)
                     SELECT ?2, pk, ?3, ?4 FROM api_clients WHERE client_id = ?1",
                    params![id, code, name, now],
                )
                .ctx("merchantCode")?;
            Ok(n == 1)
        })
        .await
    }

    async fn list_merchants(&self) -> StoreResult<Vec<MerchantRecord>> {
        self.read(|c| {
            let mut st = c
                .prepare(
                    "SELECT m.pk, m.code, m.name, m.active, a.client_id FROM merchants m
                     JOIN api_clients a ON a.pk = m.client_pk ORDER BY m.pk",
                )
                .ctx("listing merchants")?;
            let rows = st.query_map([], merchant_record).ctx("listing merchants")?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .ctx("listing merchants")
        })
        .await
    }

    async fn set_merchant_active(&self, code: &str, active: bool) -> StoreResult<bool> {
        let code = code.to_owned();
        self.write(move |c| {
            let n = c
                .execute(
                    "UPDATE merchants SET active = ?2 WHERE code = ?1",
                    params![code, active],
                )
                .ctx("changing a merchant")?;
            Ok(n == 1)
        })
        .await
    }

    async fn merchant_of_client(
        &self,
        client_pk: i64,
        code: &str,
    ) -> StoreResult<Option<MerchantRecord>> {
        let code = code.to_owned();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT m.pk, m.code, m.name, m.active, a.client_id FROM merchants m
                 JOIN api_clients a ON a.pk = m.client_pk WHERE m.code = ?1 AND m.client_pk = ?2",
            )
            .and_then(|mut st| {
                st.query_row(params![code, client_pk], merchant_record)
                    .optional()
            })
            .ctx("reading a merchant")
        })
        .await
    }

    async fn init_kyc(&self, new: NewKyc) -> StoreResult<InitStored> {
        self.write(move |c| insert_kyc(c, &new)).await
    }

    async fn kyc(&self, kid: &str, client_pk: Option<i64>) -> StoreResult<Option<KycRecord>> {
        let kid = kid.to_owned();
        self.read(move |c| {
            c.prepare_cached(&KYC_BY_KID)
                .and_then(|mut st| st.query_row(params![kid, client_pk], kyc_record).optional())
                .ctx("reading a KYC request")
        })
        .await
    }

    async fn customer(
        &self,
        client_pk: i64,
        merchant_code: &str,
        key: CustomerLookup,
    ) -> StoreResult<Option<CustomerRecord>> {
        let code = merchant_code.to_owned();
        self.read(move |c| {
            let (column, hash) = match key {
                CustomerLookup::PanHash(h) => ("pan_hash", h),
                CustomerLookup::MobileHash(h) => ("mobile_hash", h),
            };
            let sql = format!(
                "SELECT c.pk, c.cust_id, c.active, c.details_sealed, c.verified_kid, v.result_sealed
                 FROM customers c
                 JOIN merchants m ON m.pk = c.merchant_pk
                 LEFT JOIN kyc_requests v ON v.kid = c.verified_kid
                 WHERE m.code = ?1 AND m.client_pk = ?2 AND c.{column} = ?3
                 ORDER BY c.updated_at DESC LIMIT 1"
            );
            let found = c
                .prepare_cached(&sql)
                .and_then(|mut st| {
                    st.query_row(params![code, client_pk, hash], |r| {
                        let verified = match (
                            r.get::<_, Option<String>>(4)?,
                            r.get::<_, Option<Vec<u8>>>(5)?,
                        ) {
                            (Some(kid), Some(sealed)) => Some((kid, sealed)),
                            _ => None,
                        };
                        Ok((
                            r.get::<_, i64>(0)?,
                            CustomerRecord {
                                cust_id: r.get(1)?,
                                active: r.get(2)?,
                                details_sealed: r.get(3)?,
                                verified,
                                latest: None,
                            },
                        ))
                    })
                    .optional()
                })
                .ctx("reading a customer")?;
            let Some((pk, mut record)) = found else {
                return Ok(None);
            };
            record.latest = c
                .prepare_cached(
                    "SELECT kid, state, url_sealed, expires_at FROM kyc_requests
                     WHERE customer_pk = ?1 ORDER BY created_at DESC, rowid DESC LIMIT 1",
                )
                .and_then(|mut st| {
                    st.query_row([pk], |r| {
                        Ok(LatestKyc {
                            kid: r.get(0)?,
                            state: state_of(r, 1)?,
                            url_sealed: r.get(2)?,
                            expires_at: r.get(3)?,
                        })
                    })
                    .optional()
                })
                .ctx("reading a customer's latest request")?;
            Ok(Some(record))
        })
        .await
    }

    async fn transition(&self, t: Transition) -> StoreResult<Option<KycState>> {
        self.write(move |c| {
            let sql = format!(
                "UPDATE kyc_requests SET state = ?2, reason = COALESCE(?3, reason),
                   result_sealed = COALESCE(?4, result_sealed), updated_at = ?5
                 WHERE kid = ?1 AND state IN ({})",
                state_list(|s| s.can_move_to(t.to))
            );
            let moved = c
                .prepare_cached(&sql)
                .and_then(|mut st| {
                    st.execute(params![
                        t.kid,
                        t.to.as_str(),
                        t.reason,
                        t.result_sealed,
                        t.now
                    ])
                })
                .ctx("moving a KYC request")?
                == 1;
            if moved && t.to == KycState::Approved {
                c.prepare_cached(
                    "UPDATE customers SET verified_kid = ?1, updated_at = ?2
                     WHERE pk = (SELECT customer_pk FROM kyc_requests WHERE kid = ?1)",
                )
                .and_then(|mut st| st.execute(params![t.kid, t.now]))
                .ctx("marking a customer verified")?;
            }
            if moved && KycEvent::on_entering(t.to).is_some() {
                callbacks::queue(c, &t.kid, t.to, t.now).ctx("queueing a callback")?;
            }
            c.prepare_cached("SELECT state FROM kyc_requests WHERE kid = ?1")
                .and_then(|mut st| st.query_row([&t.kid], |r| state_of(r, 0)).optional())
                .ctx("reading a KYC state")
        })
        .await
    }

    async fn expire_due(&self, now: i64, limit: i64) -> StoreResult<usize> {
        self.write(move |c| {
            let sql = format!(
                "UPDATE kyc_requests SET state = 'expired', reason = ?3, updated_at = ?1
                 WHERE kid IN (SELECT kid FROM kyc_requests WHERE state IN ({}) AND expires_at <= ?1 LIMIT ?2)
                 RETURNING kid",
                state_list(KycState::expires_by_time)
            );
            let kids = c
                .prepare_cached(&sql)
                .and_then(|mut st| {
                    st.query_map(params![now, limit, EXPIRED_REASON], |r| r.get::<_, String>(0))?
                        .collect::<rusqlite::Result<Vec<String>>>()
                })
                .ctx("expiring requests")?;
            for kid in &kids {
                callbacks::queue(c, kid, KycState::Expired, now).ctx("queueing a callback")?;
            }
            Ok(kids.len())
        })
        .await
    }

    async fn client_callback(&self, client_id: &str) -> StoreResult<Option<ClientCallback>> {
        let id = client_id.to_owned();
        self.read(move |c| callbacks::client_callback(c, &id).ctx("reading a client's callback"))
            .await
    }

    async fn set_client_callback(
        &self,
        client_id: &str,
        url: &str,
        secret_sealed: Option<&[u8]>,
    ) -> StoreResult<bool> {
        let (id, url, secret) = (
            client_id.to_owned(),
            url.to_owned(),
            secret_sealed.map(<[u8]>::to_vec),
        );
        self.write(move |c| {
            callbacks::set_client_callback(c, &id, &url, secret.as_deref())
                .ctx("setting a client's callback")
        })
        .await
    }

    async fn claim_callbacks(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> StoreResult<Vec<DueCallback>> {
        self.write(move |c| callbacks::claim(c, now, lease_until, limit).ctx("claiming callbacks"))
            .await
    }

    async fn finish_callback_attempt(&self, attempt: &CallbackAttempt) -> StoreResult<()> {
        let attempt = attempt.clone();
        self.write(move |c| callbacks::finish(c, &attempt).ctx("recording a callback attempt"))
            .await
    }

    async fn list_callbacks(
        &self,
        failed_only: bool,
        limit: i64,
    ) -> StoreResult<Vec<CallbackRecord>> {
        self.read(move |c| callbacks::list(c, failed_only, limit).ctx("listing callbacks"))
            .await
    }

    async fn purge_callbacks(&self, before: i64) -> StoreResult<usize> {
        self.write(move |c| {
            c.execute(&crate::store::sql::purge_callbacks("?1"), [before])
                .ctx("purging callback events")
        })
        .await
    }

    async fn retry_callback(&self, event_id: &str, now: i64) -> StoreResult<bool> {
        let id = event_id.to_owned();
        self.write(move |c| callbacks::retry(c, &id, now).ctx("queueing a callback again"))
            .await
    }

    async fn save_sandbox_session(
        &self,
        kid: &str,
        session: &SandboxSession,
        now: i64,
    ) -> StoreResult<()> {
        let (kid, s) = (kid.to_owned(), session.clone());
        self.write(move |c| {
            c.execute(
                "INSERT INTO sandbox_sessions (kid, step, outcome, face_match, selfie_sealed, person_sealed, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (kid) DO UPDATE SET step = excluded.step, outcome = excluded.outcome,
                   face_match = excluded.face_match,
                   selfie_sealed = COALESCE(excluded.selfie_sealed, selfie_sealed),
                   person_sealed = excluded.person_sealed,
                   updated_at = excluded.updated_at",
                params![kid, s.step, s.outcome, s.face_match, s.selfie_sealed, s.person_sealed, now],
            )
            .ctx("saving a sandbox session")?;
            Ok(())
        })
        .await
    }

    async fn sandbox_session(&self, kid: &str) -> StoreResult<Option<SandboxSession>> {
        let kid = kid.to_owned();
        self.read(move |c| {
            c.prepare_cached("SELECT step, outcome, face_match, selfie_sealed, person_sealed FROM sandbox_sessions WHERE kid = ?1")
                .and_then(|mut st| {
                    st.query_row([kid], |r| {
                        Ok(SandboxSession {
                            step: r.get(0)?,
                            outcome: r.get(1)?,
                            face_match: r.get(2)?,
                            selfie_sealed: r.get(3)?,
                            person_sealed: r.get(4)?,
                        })
                    })
                    .optional()
                })
                .ctx("reading a sandbox session")
        })
        .await
    }

    async fn activate_kyc(&self, reference: &str, a: &ActivatedKyc) -> StoreResult<()> {
        let (reference, a) = (reference.to_owned(), a.clone());
        self.write(move |c| {
            c.execute(
                "UPDATE kyc_requests SET kid = ?2, url_sealed = ?3, token_hash = ?4, state = 'pending', updated_at = ?5
                 WHERE reference = ?1 AND state = 'created'",
                params![reference, a.kid, a.url_sealed, a.token_hash, a.now],
            )
            .ctx("kid")?;
            Ok(())
        })
        .await
    }

    async fn fail_kyc(&self, reference: &str, reason: &str, now: i64) -> StoreResult<()> {
        let (reference, reason) = (reference.to_owned(), reason.to_owned());
        self.write(move |c| {
            c.execute(
                "UPDATE kyc_requests SET state = 'failed', reason = ?2, updated_at = ?3 WHERE reference = ?1 AND state = 'created'",
                params![reference, reason, now],
            )
            .ctx("marking a request failed")?;
            Ok(())
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
        let provider = provider.to_owned();
        self.write(move |c| {
            let sql = format!(
                "UPDATE kyc_requests SET checked_at = ?3
                 WHERE kid IN (SELECT kid FROM kyc_requests
                               WHERE provider = ?1 AND state IN ({}) AND COALESCE(checked_at, updated_at) < ?2
                               ORDER BY COALESCE(checked_at, updated_at) LIMIT ?4)
                 RETURNING kid",
                state_list(|s| s.is_open() && s != KycState::Created)
            );
            let mut st = c.prepare_cached(&sql).ctx("claiming requests to re-check")?;
            let kids = st
                .query_map(params![provider, stale_before, now, limit], |r| r.get(0))
                .ctx("claiming requests to re-check")?;
            kids.collect::<rusqlite::Result<Vec<String>>>().ctx("claiming requests to re-check")
        })
        .await
    }

    async fn mark_checked(&self, kid: &str, now: i64) -> StoreResult<()> {
        let kid = kid.to_owned();
        self.write(move |c| {
            c.execute(
                "UPDATE kyc_requests SET checked_at = ?2 WHERE kid = ?1",
                params![kid, now],
            )
            .ctx("marking a request checked")?;
            Ok(())
        })
        .await
    }

    async fn record_webhook_event(
        &self,
        provider: &str,
        event_id: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let (provider, event_id) = (provider.to_owned(), event_id.to_owned());
        self.write(move |c| {
            let n = c
                .execute(
                    "INSERT INTO webhook_events (provider, event_id, received_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT DO NOTHING",
                    params![provider, event_id, now],
                )
                .ctx("recording a webhook event")?;
            Ok(n == 1)
        })
        .await
    }

    async fn claim_idempotency_key(&self, claim: &IdempotencyClaim) -> StoreResult<KeyState> {
        let k = claim.clone();
        self.write(move |c| {
            let taken = c
                .prepare_cached(
                    "INSERT INTO idempotency_keys (client_pk, idem_key, request_hash, created_at)
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                )
                .and_then(|mut st| st.execute(params![k.client_pk, k.key, k.request_hash, k.now]))
                .ctx("taking an idempotency key")?;
            if taken == 1 {
                return Ok(KeyState::Taken);
            }
            let (hash, reply, created): (Vec<u8>, Option<Vec<u8>>, i64) = c
                .query_row(
                    "SELECT request_hash, reply_sealed, created_at FROM idempotency_keys WHERE client_pk = ?1 AND idem_key = ?2",
                    params![k.client_pk, k.key],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .ctx("reading an idempotency key")?;
            Ok(match (hash == k.request_hash, reply) {
                (false, _) => KeyState::Mismatch,
                (true, Some(reply)) => KeyState::Done(reply),
                (true, None) if created < k.stale_before => {
                    c.execute(
                        "UPDATE idempotency_keys SET created_at = ?3 WHERE client_pk = ?1 AND idem_key = ?2",
                        params![k.client_pk, k.key, k.now],
                    )
                    .ctx("retaking an abandoned idempotency key")?;
                    KeyState::Taken
                }
                (true, None) => KeyState::InFlight,
            })
        })
        .await
    }

    async fn complete_idempotency_key(
        &self,
        client_pk: i64,
        key: &str,
        reply_sealed: &[u8],
    ) -> StoreResult<()> {
        let (key, reply) = (key.to_owned(), reply_sealed.to_vec());
        self.write(move |c| {
            c.execute(
                "UPDATE idempotency_keys SET reply_sealed = ?3 WHERE client_pk = ?1 AND idem_key = ?2",
                params![client_pk, key, reply],
            )
            .ctx("storing an idempotent reply")?;
            Ok(())
        })
        .await
    }

    async fn release_idempotency_key(&self, client_pk: i64, key: &str) -> StoreResult<()> {
        let key = key.to_owned();
        self.write(move |c| {
            c.execute(
                "DELETE FROM idempotency_keys WHERE client_pk = ?1 AND idem_key = ?2 AND reply_sealed IS NULL",
                params![client_pk, key],
            )
            .ctx("releasing an idempotency key")?;
            Ok(())
        })
        .await
    }

    async fn purge_idempotency_keys(&self, before: i64) -> StoreResult<usize> {
        self.write(move |c| {
            c.execute(
                "DELETE FROM idempotency_keys WHERE created_at < ?1",
                [before],
            )
            .ctx("purging idempotency keys")
        })
        .await
    }
}
