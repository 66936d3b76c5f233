//! Opening a KYC request (`init/kyc`).

use super::{ApiClient, CustomerDetails, Init, ServiceError, ServiceResult};
use crate::crypto::Lookup;
use crate::domain::ids::{CUST_ID_TAIL, provider_style_id};
use crate::domain::request::InitKyc;
use crate::domain::sealed::{SealedColumn, customer_row};
use crate::domain::state::KycState;
use crate::domain::timestamp::UnixMs;
use crate::provider::{ProviderError, SessionRequest};
use crate::store::{ActivatedKyc, InitStored, NewCustomer, NewKyc, StoreError, Unique};
use time::OffsetDateTime;

/// The kid and the journey link; the link carries the access token, so no `Debug`.
pub struct InitReply {
    pub kid: String,
    pub url: String,
}

/// A custId clash needs two new customers in the same millisecond drawing the same
/// four-character tail (one in 36⁴); a fresh draw settles it.
const CUST_ID_ATTEMPTS: usize = 3;

impl Init {
    /// Opens a KYC request, or answers with the open identical one. With a remote
    /// provider the request is stored (`created`) before the call, so a crash or a
    /// timeout never leaves a provider request we do not know about, and a retry of the
    /// same init while the call is out never makes a second one.
    pub async fn open(&self, client: &ApiClient, req: InitKyc) -> ServiceResult<InitReply> {
        let merchant = self.usable_merchant(client, &req.merchant_code).await?;
        let at = self.clock.now();
        let now = UnixMs::of(at);
        let reference = provider_style_id("REF", at, &crate::crypto::random_alnum(14));
        let details = CustomerDetails {
            pan: req.pan.as_str().into(),
            name: req.name.as_str().into(),
            email: req.email.as_str().into(),
            mobile: req.mobile.as_str().into(),
        };
        let session_req = SessionRequest {
            at,
            reference: reference.clone(),
            mobile: details.mobile.clone(),
            name: details.name.clone(),
            redirect_url: req.redirect_url.as_ref().map(|u| u.as_str().to_owned()),
            expire_in_days: self.settings.kyc_ttl.as_secs().div_ceil(86_400).max(1) as u32,
        };
        let pan_hash = self.keys.lookup_hash(Lookup::Pan, &[&details.pan]);
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
            expires_at: now.plus(self.settings.kyc_ttl),
            customer: NewCustomer {
                cust_id: new_cust_id(at),
                mobile_hash: self.keys.lookup_hash(Lookup::Mobile, &[&details.mobile]),
                details_sealed: self.seal_json(
                    SealedColumn::CustomerDetails,
                    &customer_row(merchant.pk.0, &pan_hash),
                    &details,
                ),
                submitted_sealed: self.seal_json(SealedColumn::KycSubmitted, &reference, &details),
                pan_hash,
            },
        };
        if !self.provider.is_remote() {
            // In process: one write stores the request with its session.
            let session = self.provider.create_session(&session_req).await?;
            new.kid = session.kid.clone();
            new.state = KycState::Pending;
            new.url_sealed =
                Some(self.seal_bytes(SealedColumn::KycUrl, &session.kid, session.url.as_bytes()));
            new.token_hash = Some(self.keys.lookup_hash(Lookup::Token, &[&session.token]));
        }
        let state = new.state;
        let stored = self.store_init(new).await?;
        if !stored.reused {
            crate::metrics::entered(state.as_str(), 1);
        }
        if stored.reused || !self.provider.is_remote() {
            if stored.reused {
                tracing::info!(kid = %stored.kid, merchant = %merchant.code, "identical init answered with the open request");
            }
            let sealed = stored.url_sealed.ok_or_else(|| {
                ServiceError::Conflict("An identical request is being opened with the KYC provider. Retry in a few seconds.".into())
            })?;
            let url = self.open_text(SealedColumn::KycUrl, &stored.kid, &sealed)?;
            return Ok(InitReply {
                kid: stored.kid,
                url,
            });
        }
        match self.provider.create_session(&session_req).await {
            Ok(session) => {
                let activated = ActivatedKyc {
                    kid: session.kid.clone(),
                    url_sealed: self.seal_bytes(
                        SealedColumn::KycUrl,
                        &session.kid,
                        session.url.as_bytes(),
                    ),
                    token_hash: self.keys.lookup_hash(Lookup::Token, &[&session.token]),
                    now: self.now_ms(),
                };
                self.store.activate_kyc(&reference, &activated).await?;
                crate::metrics::entered(KycState::Pending.as_str(), 1);
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
                match self.store.fail_kyc(&reference, reason, self.now_ms()).await {
                    Ok(_) => crate::metrics::entered(KycState::Failed.as_str(), 1),
                    Err(store_error) => {
                        tracing::error!(reference = %reference, error = %store_error, "could not mark the request failed")
                    }
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
}

fn new_cust_id(at: OffsetDateTime) -> String {
    crate::domain::ids::cust_id(at, &crate::crypto::random_alnum(CUST_ID_TAIL))
}
