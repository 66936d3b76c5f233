//! The `Store` operations on SQLite: each runs the shared operation (`store::ops`) on the
//! writer (in its next batch) or on a reader.

use super::SqliteStore;
use super::conn::{Lite, run_now};
use crate::domain::state::KycState;
use crate::store::ops::{callbacks, clients, idempotency, kyc, sandbox};
use crate::store::*;
use async_trait::async_trait;

/// Runs an operation on the writer, owning what it needs: `write!(self, |c| op(c, …))`.
macro_rules! write {
    ($store:expr, |$c:ident| $op:expr) => {
        $store.write(move |conn| {
            let $c = &mut Lite(conn);
            run_now($op)
        })
    };
}

/// The same on a reader.
macro_rules! read {
    ($store:expr, |$c:ident| $op:expr) => {
        $store.read(move |conn| {
            let $c = &mut Lite(conn);
            run_now($op)
        })
    };
}

#[async_trait]
impl Settings for SqliteStore {
    async fn readiness(&self) -> StoreResult<()> {
        self.read(super::schema_ready).await
    }

    async fn pin_setting(&self, name: &str, value: &[u8], now: i64) -> StoreResult<Vec<u8>> {
        let (name, value) = (name.to_owned(), value.to_vec());
        write!(self, |c| clients::pin_setting(c, &name, &value, now)).await
    }
}

#[async_trait]
impl Clients for SqliteStore {
    async fn create_client(
        &self,
        client_id: &str,
        name: &str,
        secret_hash: &[u8],
        now: i64,
    ) -> StoreResult<()> {
        let (id, name, hash) = (client_id.to_owned(), name.to_owned(), secret_hash.to_vec());
        write!(self, |c| clients::create_client(c, &id, &name, &hash, now)).await
    }

    async fn set_client_secret(
        &self,
        client_id: &str,
        secret_hash: &[u8],
        now: i64,
    ) -> StoreResult<bool> {
        let (id, hash) = (client_id.to_owned(), secret_hash.to_vec());
        write!(self, |c| clients::set_client_secret(c, &id, &hash, now)).await
    }

    async fn find_client(&self, client_id: &str) -> StoreResult<Option<ClientRecord>> {
        let id = client_id.to_owned();
        read!(self, |c| clients::find_client(c, &id)).await
    }

    async fn set_client_active(&self, client_id: &str, to: Switch) -> StoreResult<bool> {
        let id = client_id.to_owned();
        write!(self, |c| clients::set_client_active(c, &id, to)).await
    }

    async fn count_clients(&self) -> StoreResult<i64> {
        read!(self, |c| clients::count_clients(c)).await
    }

    async fn create_merchant(
        &self,
        client_id: &str,
        code: &str,
        name: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let (id, code, name) = (client_id.to_owned(), code.to_owned(), name.to_owned());
        write!(self, |c| clients::create_merchant(
            c, &id, &code, &name, now
        ))
        .await
    }

    async fn list_merchants(&self) -> StoreResult<Vec<MerchantRecord>> {
        read!(self, |c| clients::list_merchants(c)).await
    }

    async fn set_merchant_active(&self, code: &str, to: Switch) -> StoreResult<bool> {
        let code = code.to_owned();
        write!(self, |c| clients::set_merchant_active(c, &code, to)).await
    }

    async fn merchant_of_client(
        &self,
        client_pk: i64,
        code: &str,
    ) -> StoreResult<Option<MerchantRecord>> {
        let code = code.to_owned();
        read!(self, |c| clients::merchant_of_client(c, client_pk, &code)).await
    }

    async fn client_callback(&self, client_id: &str) -> StoreResult<Option<ClientCallback>> {
        let id = client_id.to_owned();
        read!(self, |c| clients::client_callback(c, &id)).await
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
        write!(self, |c| clients::set_client_callback(
            c,
            &id,
            &url,
            secret.as_deref()
        ))
        .await
    }
}

#[async_trait]
impl KycRequests for SqliteStore {
    async fn init_kyc(&self, new: NewKyc) -> StoreResult<InitStored> {
        write!(self, |c| kyc::init(c, &new)).await
    }

    async fn kyc(&self, kid: &str, client_pk: Option<i64>) -> StoreResult<Option<KycRecord>> {
        let kid = kid.to_owned();
        let found = read!(self, |c| kyc::by_kid(c, &kid)).await?;
        Ok(found
            .filter(|(owner, _)| client_pk.is_none_or(|pk| pk == *owner))
            .map(|(_, record)| record))
    }

    async fn customer(
        &self,
        client_pk: i64,
        merchant_code: &str,
        key: CustomerLookup,
    ) -> StoreResult<Option<CustomerRecord>> {
        let code = merchant_code.to_owned();
        read!(self, |c| kyc::customer(c, client_pk, &code, &key)).await
    }

    async fn transition(&self, t: Transition) -> StoreResult<Option<KycState>> {
        write!(self, |c| kyc::transition(c, &t)).await
    }

    async fn expire_due(&self, now: i64, limit: i64) -> StoreResult<usize> {
        write!(self, |c| kyc::expire_due(c, now, limit)).await
    }

    async fn activate_kyc(&self, reference: &str, a: &ActivatedKyc) -> StoreResult<()> {
        let (reference, a) = (reference.to_owned(), a.clone());
        write!(self, |c| kyc::activate(c, &reference, &a)).await
    }

    async fn fail_kyc(&self, reference: &str, reason: &str, now: i64) -> StoreResult<()> {
        let (reference, reason) = (reference.to_owned(), reason.to_owned());
        write!(self, |c| kyc::fail(c, &reference, &reason, now)).await
    }

    async fn claim_for_recheck(
        &self,
        provider: &str,
        stale_before: i64,
        now: i64,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        let provider = provider.to_owned();
        write!(self, |c| kyc::claim_for_recheck(
            c,
            &provider,
            stale_before,
            now,
            limit
        ))
        .await
    }

    async fn mark_checked(&self, kid: &str, now: i64) -> StoreResult<()> {
        let kid = kid.to_owned();
        write!(self, |c| kyc::mark_checked(c, &kid, now)).await
    }

    async fn record_webhook_event(
        &self,
        provider: &str,
        event_id: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let (provider, event_id) = (provider.to_owned(), event_id.to_owned());
        write!(self, |c| kyc::record_webhook_event(
            c, &provider, &event_id, now
        ))
        .await
    }
}

#[async_trait]
impl CallbackOutbox for SqliteStore {
    async fn claim_callbacks(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> StoreResult<Vec<DueCallback>> {
        write!(self, |c| callbacks::claim(c, now, lease_until, limit)).await
    }

    async fn finish_callback_attempt(&self, attempt: &CallbackAttempt) -> StoreResult<()> {
        let attempt = attempt.clone();
        write!(self, |c| callbacks::finish(c, &attempt)).await
    }

    async fn list_callbacks(
        &self,
        which: CallbackFilter,
        limit: i64,
    ) -> StoreResult<Vec<CallbackRecord>> {
        read!(self, |c| callbacks::list(c, which, limit)).await
    }

    async fn purge_callbacks(&self, before: i64) -> StoreResult<usize> {
        write!(self, |c| callbacks::purge(c, before)).await
    }

    async fn retry_callback(&self, event_id: &str, now: i64) -> StoreResult<bool> {
        let id = event_id.to_owned();
        write!(self, |c| callbacks::retry(c, &id, now)).await
    }
}

#[async_trait]
impl IdempotencyKeys for SqliteStore {
    async fn claim_idempotency_key(&self, claim: &IdempotencyClaim) -> StoreResult<KeyState> {
        let claim = claim.clone();
        write!(self, |c| idempotency::claim(c, &claim)).await
    }

    async fn complete_idempotency_key(
        &self,
        client_pk: i64,
        key: &str,
        reply_sealed: &[u8],
    ) -> StoreResult<()> {
        let (key, reply) = (key.to_owned(), reply_sealed.to_vec());
        write!(self, |c| idempotency::complete(c, client_pk, &key, &reply)).await
    }

    async fn release_idempotency_key(&self, client_pk: i64, key: &str) -> StoreResult<()> {
        let key = key.to_owned();
        write!(self, |c| idempotency::release(c, client_pk, &key)).await
    }

    async fn purge_idempotency_keys(&self, before: i64) -> StoreResult<usize> {
        write!(self, |c| idempotency::purge(c, before)).await
    }
}

#[async_trait]
impl SandboxSessions for SqliteStore {
    async fn save_sandbox_session(
        &self,
        kid: &str,
        session: &SandboxSession,
        now: i64,
    ) -> StoreResult<()> {
        let (kid, s) = (kid.to_owned(), session.clone());
        write!(self, |c| sandbox::save(c, &kid, &s, now)).await
    }

    async fn sandbox_session(&self, kid: &str) -> StoreResult<Option<SandboxSession>> {
        let kid = kid.to_owned();
        read!(self, |c| sandbox::get(c, &kid)).await
    }
}
