//! Opening a KYC request and reading its result.

use super::{
    ApiClient, CustomerDetails, DETAILS_CONTEXT, RESULT_CONTEXT, Service, ServiceError,
    ServiceResult, URL_CONTEXT, now_ms,
};
use crate::crypto::Lookup;
use crate::domain::binding::{IdentityMatch, OnMismatch};
use crate::domain::callback::KycEvent;
use crate::domain::ids::{CUST_ID_TAIL, provider_style_id};
use crate::domain::kyc::KycIdentity;
use crate::domain::request::InitKyc;
use crate::domain::state::{EXPIRED_REASON, KycState, Verdict};
use crate::provider::{Applicant, ProviderError, ProviderResult, ProviderState, SessionRequest};
use crate::store::{
    ActivatedKyc, InitStored, KycRecord, NewCustomer, NewKyc, StoreError, Transition, Unique,
};
use time::OffsetDateTime;

/// The kid and the journey link; the link carries the access token, so no `Debug`.
pub struct InitReply {
    pub kid: String,
    pub url: String,
}

/// A request as a partner sees it.
#[derive(Debug, Clone)]
pub enum KycStatus {
    Pending {
        kid: String,
        state: KycState,
    },
    Approved {
        kid: String,
        identity: Box<KycIdentity>,
        cust_id: String,
    },
    Ended {
        kid: String,
        state: KycState,
        reason: String,
    },
}

/// A custId clash needs two new customers in the same millisecond drawing the same
/// four-character tail (one in 36⁴); a fresh draw settles it.
const CUST_ID_ATTEMPTS: usize = 3;

impl Service {
    /// Opens a KYC request, or answers with the open identical one. With a remote
    /// provider the request is stored (`created`) before the call, so a crash or a
    /// timeout never leaves a provider request we do not know about, and a retry of the
    /// same init while the call is out never makes a second one.
    pub async fn init_kyc(&self, client: &ApiClient, req: InitKyc) -> ServiceResult<InitReply> {
        let merchant = self.usable_merchant(client, &req.merchant_code).await?;
        let at = self.clock.now();
        let now = now_ms(at);
        let reference = provider_style_id("REF", at, &crate::crypto::random_alnum(14));
        let details = CustomerDetails {
            pan: req.pan.as_str().into(),
            name: req.name.as_str().into(),
            email: req.email.as_str().into(),
            mobile: req.mobile.as_str().into(),
        };
        let ttl_ms = self.settings.kyc_ttl.as_millis() as i64;
        let session_req = SessionRequest {
            at,
            reference: reference.clone(),
            mobile: details.mobile.clone(),
            name: details.name.clone(),
            redirect_url: req.redirect_url.as_ref().map(|u| u.as_str().to_owned()),
            expire_in_days: (ttl_ms.max(0) as u64).div_ceil(86_400_000).max(1) as u32,
        };
        let mut new = NewKyc {
            // Until a remote provider names the request, its reference stands in as kid.
            kid: reference.clone(),
            reference: reference.clone(),
            merchant_pk: merchant.pk,
            provider: self.provider.name(),
            state: KycState::Created,
            fingerprint: self.keys.lookup_hash(
                Lookup::Init,
                &[
                    &merchant.code,
                    &details.pan,
                    &details.name,
                    &details.email,
                    &details.mobile,
                ],
            ),
            url_sealed: None,
            token_hash: None,
            redirect_url: session_req.redirect_url.clone(),
            now,
            expires_at: now + ttl_ms,
            customer: NewCustomer {
                cust_id: new_cust_id(at),
                pan_hash: self.keys.lookup_hash(Lookup::Pan, &[&details.pan]),
                mobile_hash: self.keys.lookup_hash(Lookup::Mobile, &[&details.mobile]),
                details_sealed: self.seal_json(DETAILS_CONTEXT, &details),
            },
        };
        if !self.provider.is_remote() {
            // In process: one write stores the request with its session.
            let session = self.provider.create_session(&session_req).await?;
            new.kid = session.kid.clone();
            new.state = KycState::Pending;
            new.url_sealed = Some(self.keys.seal(URL_CONTEXT, session.url.as_bytes()));
            new.token_hash = Some(self.keys.lookup_hash(Lookup::Token, &[&session.token]));
        }
        let stored = self.store_init(new).await?;
        if stored.reused || !self.provider.is_remote() {
            if stored.reused {
                tracing::info!(kid = %stored.kid, merchant = %merchant.code, "identical init answered with the open request");
            }
            let sealed = stored.url_sealed.ok_or_else(|| {
                ServiceError::Conflict("An identical request is being opened with the KYC provider. Retry in a few seconds.".into())
            })?;
            let url = self.open_text(URL_CONTEXT, &stored.kid, &sealed)?;
            return Ok(InitReply {
                kid: stored.kid,
                url,
            });
        }
        match self.provider.create_session(&session_req).await {
            Ok(session) => {
                let activated = ActivatedKyc {
                    kid: session.kid.clone(),
                    url_sealed: self.keys.seal(URL_CONTEXT, session.url.as_bytes()),
                    token_hash: self.keys.lookup_hash(Lookup::Token, &[&session.token]),
                    now: self.now_ms(),
                };
                self.store.activate_kyc(&reference, &activated).await?;
                tracing::info!(kid = %session.kid, merchant = %merchant.code, "provider request opened");
                Ok(InitReply {
                    kid: session.kid,
                    url: session.url,
                })
            }
            Err(e) => {
                let reason = match &e {
                    ProviderError::Timeout => "The KYC provider did not answer in time.",
                    _ => "The KYC provider could not open the request.",
                };
                tracing::warn!(reference = %reference, error = %e, "provider request failed; stored as failed");
                if let Err(store_error) =
                    self.store.fail_kyc(&reference, reason, self.now_ms()).await
                {
                    tracing::error!(reference = %reference, error = %store_error, "could not mark the request failed");
                }
                Err(e.into())
            }
        }
    }

    async fn store_init(&self, mut new: NewKyc) -> ServiceResult<InitStored> {
        let mut attempt = 1;
        loop {
            match self.store.init_kyc(new.clone()).await {
                Err(StoreError::Conflict(Unique::CustId)) if attempt < CUST_ID_ATTEMPTS => {
                    attempt += 1;
                    new.customer.cust_id = new_cust_id(self.clock.now());
                }
                other => return Ok(other?),
            }
        }
    }

    pub async fn kyc_status(&self, client: &ApiClient, kid: &str) -> ServiceResult<KycStatus> {
        let mut record = self.owned_kyc(client, kid).await?;
        if self.is_stale(&record) {
            // Ask the provider, but never keep the caller waiting past the provider timeout:
            // on any failure the stored state is the answer.
            match tokio::time::timeout(self.settings.refresh_timeout, self.refresh(&record)).await {
                Ok(Ok(_)) => record = self.owned_kyc(client, kid).await?,
                Ok(Err(e)) => {
                    tracing::warn!(kid, error = %e, "could not refresh a stale request; answering from storage")
                }
                Err(_) => tracing::warn!(
                    kid,
                    "refreshing a stale request took too long; answering from storage"
                ),
            }
        }
        self.status_of(&record)
    }

    /// Open at a remote provider and not heard of for longer than the configured age.
    fn is_stale(&self, r: &KycRecord) -> bool {
        let now = self.now_ms();
        let state = r.state.as_of(r.expires_at, now);
        let last = r.checked_at.unwrap_or(r.updated_at).max(r.updated_at);
        self.provider.is_remote()
            && state.is_open()
            && state != KycState::Created
            && now - last > self.settings.stale_after.as_millis() as i64
    }

    /// A request of one of the client's merchants; anything else reads as missing. A
    /// deactivated merchant's requests are refused as the merchant is.
    pub(super) async fn owned_kyc(
        &self,
        client: &ApiClient,
        kid: &str,
    ) -> ServiceResult<KycRecord> {
        if !crate::domain::ids::is_kid(kid) {
            return Err(ServiceError::NotFound(NOT_FOUND));
        }
        let record = self
            .store
            .kyc(kid, Some(client.pk))
            .await?
            .ok_or(ServiceError::NotFound(NOT_FOUND))?;
        // A deactivated merchant's KYCs are switched off too, identity and all.
        if !record.merchant_active {
            return Err(ServiceError::MerchantUnavailable);
        }
        Ok(record)
    }

    pub(super) fn status_of(&self, r: &KycRecord) -> ServiceResult<KycStatus> {
        let state = r.state.as_of(r.expires_at, self.now_ms());
        let reason = if state == r.state {
            r.reason.clone()
        } else {
            None
        };
        let kid = r.kid.clone();
        Ok(match state.verdict() {
            Verdict::Pending => KycStatus::Pending { kid, state },
            Verdict::Failure => KycStatus::Ended {
                kid,
                state,
                reason: reason.unwrap_or_else(|| default_reason(state).into()),
            },
            Verdict::Success => {
                let sealed = r.result_sealed.as_deref().ok_or_else(|| {
                    ServiceError::Internal(format!("approved request {} has no result", r.kid))
                })?;
                KycStatus::Approved {
                    kid,
                    identity: Box::new(self.open_json(RESULT_CONTEXT, &r.kid, sealed)?),
                    cust_id: r.cust_id.clone(),
                }
            }
        })
    }

    /// Asks the provider for its record of `r` and moves the request forward to match.
    pub(super) async fn refresh(&self, r: &KycRecord) -> ServiceResult<KycState> {
        let requested = self.requested_person(r)?;
        let result = self.provider.fetch_result(&r.kid, &requested).await?;
        let state = self.apply(&r.kid, &requested, result).await?;
        self.store.mark_checked(&r.kid, self.now_ms()).await?;
        Ok(state)
    }

    /// The person the merchant asked about for `r`.
    pub(super) fn requested_person(&self, r: &KycRecord) -> ServiceResult<Applicant> {
        let details: CustomerDetails =
            self.open_json(DETAILS_CONTEXT, &r.kid, &r.customer_details_sealed)?;
        Ok(Applicant {
            pan: details.pan,
            name: details.name,
        })
    }

    /// Moves the request to what the provider reports. An approval stands only for the
    /// person asked about: its identity is bound to the requested PAN and name here, for
    /// every provider, and one of someone else is rejected or left for review.
    async fn apply(
        &self,
        kid: &str,
        requested: &Applicant,
        result: ProviderResult,
    ) -> ServiceResult<KycState> {
        let mut to = match result.state {
            ProviderState::Requested => KycState::Pending,
            ProviderState::InProgress => KycState::InProgress,
            ProviderState::ApprovalPending => KycState::AwaitingApproval,
            ProviderState::Approved => KycState::Approved,
            ProviderState::Rejected => KycState::Rejected,
            ProviderState::Expired => KycState::Expired,
        };
        let mut reason = result.reason;
        let mut identity = result.identity;
        if to == KycState::Approved {
            let verified = identity.as_mut().ok_or_else(|| {
                ServiceError::Provider("an approval arrived without identity data".into())
            })?;
            let bound = IdentityMatch::of(&requested.pan, &requested.name, verified);
            verified.pan_match = Some(bound.pan);
            verified.name_match = Some(bound.name);
            let min = self.settings.name_match_min;
            if let Some(why) = bound.mismatch(min) {
                to = match self.settings.on_mismatch {
                    OnMismatch::Reject => KycState::Rejected,
                    OnMismatch::Review => KycState::AwaitingApproval,
                };
                tracing::warn!(kid, parts = bound.failed_parts(min), name_match = bound.name, state = %to,
                    "the verified identity is not the requested person; not approved");
                reason = Some(why);
            }
        }
        let result_sealed = identity.as_ref().map(|i| self.seal_json(RESULT_CONTEXT, i));
        self.move_kyc(kid, to, reason, result_sealed).await
    }

    /// A guarded move; announces it to the callback worker when it queued an event.
    pub(super) async fn move_kyc(
        &self,
        kid: &str,
        to: KycState,
        reason: Option<String>,
        result_sealed: Option<Vec<u8>>,
    ) -> ServiceResult<KycState> {
        let t = Transition {
            kid: kid.to_owned(),
            to,
            reason,
            result_sealed,
            now: self.now_ms(),
        };
        let after = self
            .store
            .transition(t)
            .await?
            .ok_or(ServiceError::NotFound(NOT_FOUND))?;
        if after == to {
            tracing::info!(kid, state = %to, "KYC request moved");
            if KycEvent::on_entering(to).is_some() {
                self.callbacks_queued.notify_one();
            }
        }
        Ok(after)
    }

    /// Marks requests whose link ran out as expired (and forgets old idempotency keys);
    /// returns how many requests expired.
    pub async fn expire_due(&self) -> ServiceResult<usize> {
        self.purge_idempotency_keys().await?;
        self.purge_callbacks().await?;
        let mut total = 0;
        loop {
            let n = self.store.expire_due(self.now_ms(), 500).await?;
            total += n;
            if n < 500 {
                if total > 0 {
                    self.callbacks_queued.notify_one();
                }
                return Ok(total);
            }
        }
    }
}

pub(super) const NOT_FOUND: &str = "Entity not found for this ID";

fn default_reason(state: KycState) -> &'static str {
    match state {
        KycState::Rejected => "The KYC was rejected.",
        KycState::Expired => EXPIRED_REASON,
        _ => "The KYC provider could not start this request.",
    }
}

fn new_cust_id(at: OffsetDateTime) -> String {
    crate::domain::ids::cust_id(at, &crate::crypto::random_alnum(CUST_ID_TAIL))
}
