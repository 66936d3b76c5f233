//! Opening a KYC request and reading its result.

use super::*;
use crate::crypto::Lookup;
use crate::domain::kyc::KycIdentity;
use crate::domain::request::InitKyc;
use crate::domain::state::{EXPIRED_REASON, KycState, Verdict};
use crate::provider::{Applicant, ProviderResult, ProviderState, SessionRequest};
use crate::store::{KycRecord, NewCustomer, NewKyc, StoreError, Transition};

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

/// A custId clash is one in 36¹²; a few fresh draws settle it.
const CUST_ID_ATTEMPTS: usize = 3;

impl Service {
    pub async fn init_kyc(&self, client: &ApiClient, req: InitKyc) -> ServiceResult<InitReply> {
        let merchant = self.usable_merchant(client, &req.merchant_code).await?;
        let at = OffsetDateTime::now_utc();
        let now = now_ms(at);
        let session = self.provider.create_session(&SessionRequest { at }).await?;
        let details = CustomerDetails {
            pan: req.pan.as_str().into(),
            name: req.name.as_str().into(),
            email: req.email.as_str().into(),
            mobile: req.mobile.as_str().into(),
        };
        let mut new = NewKyc {
            kid: session.kid,
            reference: session.reference,
            merchant_pk: merchant.pk,
            provider: self.provider.name(),
            state: KycState::Pending,
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
            url_sealed: self.keys.seal(URL_CONTEXT, session.url.as_bytes()),
            token_hash: self.keys.lookup_hash(Lookup::Token, &[&session.token]),
            redirect_url: req.redirect_url.map(|u| u.as_str().to_owned()),
            now,
            expires_at: now + self.settings.kyc_ttl.as_millis() as i64,
            customer: NewCustomer {
                cust_id: crate::crypto::random_alnum(12),
                pan_hash: self.keys.lookup_hash(Lookup::Pan, &[&details.pan]),
                mobile_hash: self.keys.lookup_hash(Lookup::Mobile, &[&details.mobile]),
                details_sealed: self.seal_json(DETAILS_CONTEXT, &details),
            },
        };
        let mut attempt = 1;
        let stored = loop {
            match self.store.init_kyc(new.clone()).await {
                Err(StoreError::Conflict("custId")) if attempt < CUST_ID_ATTEMPTS => {
                    attempt += 1;
                    new.customer.cust_id = crate::crypto::random_alnum(12);
                }
                other => break other?,
            }
        };
        if stored.reused {
            tracing::info!(kid = %stored.kid, merchant = %merchant.code, "identical init answered with the open request");
        }
        let url = self.open_text(URL_CONTEXT, &stored.url_sealed)?;
        Ok(InitReply {
            kid: stored.kid,
            url,
        })
    }

    pub async fn kyc_status(&self, client: &ApiClient, kid: &str) -> ServiceResult<KycStatus> {
        let record = self.owned_kyc(client, kid).await?;
        self.status_of(&record)
    }

    /// A request of one of the client's merchants; anything else reads as missing.
    pub(super) async fn owned_kyc(
        &self,
        client: &ApiClient,
        kid: &str,
    ) -> ServiceResult<KycRecord> {
        if !crate::domain::ids::is_kid(kid) {
            return Err(ServiceError::NotFound(NOT_FOUND));
        }
        self.store
            .kyc(kid, Some(client.pk))
            .await?
            .ok_or(ServiceError::NotFound(NOT_FOUND))
    }

    pub(super) fn status_of(&self, r: &KycRecord) -> ServiceResult<KycStatus> {
        let state = effective_state(r.state, r.expires_at, now_ms(OffsetDateTime::now_utc()));
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
                    identity: Box::new(self.open_json(RESULT_CONTEXT, sealed)?),
                    cust_id: r.cust_id.clone(),
                }
            }
        })
    }

    /// Asks the provider for its record of `r` and moves the request forward to match.
    pub(super) async fn refresh(&self, r: &KycRecord) -> ServiceResult<KycState> {
        let details: CustomerDetails =
            self.open_json(DETAILS_CONTEXT, &r.customer_details_sealed)?;
        let applicant = Applicant {
            pan: details.pan,
            name: details.name,
        };
        let result = self.provider.fetch_result(&r.kid, &applicant).await?;
        self.apply(&r.kid, result).await
    }

    async fn apply(&self, kid: &str, result: ProviderResult) -> ServiceResult<KycState> {
        let to = match result.state {
            ProviderState::Requested => KycState::Pending,
            ProviderState::InProgress => KycState::InProgress,
            ProviderState::ApprovalPending => KycState::AwaitingApproval,
            ProviderState::Approved => KycState::Approved,
            ProviderState::Rejected => KycState::Rejected,
            ProviderState::Expired => KycState::Expired,
        };
        if to == KycState::Approved && result.identity.is_none() {
            return Err(ServiceError::Provider(
                "an approval arrived without identity data".into(),
            ));
        }
        let result_sealed = result
            .identity
            .as_ref()
            .map(|i| self.seal_json(RESULT_CONTEXT, i));
        let now = now_ms(OffsetDateTime::now_utc());
        let t = Transition {
            kid: kid.to_owned(),
            to,
            reason: result.reason,
            result_sealed,
            now,
        };
        let after = self
            .store
            .transition(t)
            .await?
            .ok_or(ServiceError::NotFound(NOT_FOUND))?;
        if after == to {
            tracing::info!(kid, state = %to, "KYC request moved");
        }
        Ok(after)
    }

    /// Marks requests whose link ran out as expired; returns how many.
    pub async fn expire_due(&self) -> ServiceResult<usize> {
        let mut total = 0;
        loop {
            let n = self
                .store
                .expire_due(now_ms(OffsetDateTime::now_utc()), 500)
                .await?;
            total += n;
            if n < 500 {
                return Ok(total);
            }
        }
    }
}

pub(super) const NOT_FOUND: &str = "Entity not found for this ID";

/// The stored state, or `expired` for a request whose time ran out before the sweeper
/// got to it, so reads never depend on the sweeper's timing.
pub(super) fn effective_state(state: KycState, expires_at: i64, now: i64) -> KycState {
    if state.expires_by_time() && expires_at <= now {
        KycState::Expired
    } else {
        state
    }
}

fn default_reason(state: KycState) -> &'static str {
    match state {
        KycState::Rejected => "The KYC was rejected.",
        KycState::Expired => EXPIRED_REASON,
        _ => "The KYC provider could not start this request.",
    }
}
