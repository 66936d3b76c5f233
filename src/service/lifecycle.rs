//! A request's life after init, shared by every use case that moves or reads one: the
//! merchant's ownership, the provider's verdict checked against the person asked
//! about, and the guarded state change.

use super::{ApiClient, Core, CustomerDetails, KycStatus, ServiceError, ServiceResult};
use crate::domain::binding::{IdentityMatch, OnMismatch};
use crate::domain::callback::KycEvent;
use crate::domain::sealed::SealedColumn;
use crate::domain::state::{EXPIRED_REASON, KycState, Verdict};
use crate::provider::{Applicant, ProviderResult, ProviderState};
use crate::store::{KycRecord, Transition};

impl Core {
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
        if r.purged_at.is_some() {
            return Ok(KycStatus::Purged { kid, state });
        }
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
                    identity: Box::new(self.open_json(SealedColumn::KycResult, &r.kid, sealed)?),
                    cust_id: r.cust_id.clone(),
                }
            }
        })
    }

    /// Asks the provider for its record of `r` and moves the request forward to match.
    pub(super) async fn refresh(&self, r: &KycRecord) -> ServiceResult<KycState> {
        let requested = self.requested_person(r)?;
        let result = self.provider.fetch_result(&r.kid, &requested).await?;
        self.apply(&r.kid, &requested, result).await
    }

    /// What the merchant submitted with `r`. Only an ended request is purged, and none of
    /// the steps that read this takes one.
    pub(super) fn submitted(&self, r: &KycRecord) -> ServiceResult<CustomerDetails> {
        let sealed = r
            .submitted_sealed
            .as_deref()
            .ok_or_else(|| ServiceError::Internal(format!("request {} was purged", r.kid)))?;
        self.open_json(SealedColumn::KycSubmitted, &r.reference, sealed)
    }

    /// The person the merchant asked about for `r`.
    pub(super) fn requested_person(&self, r: &KycRecord) -> ServiceResult<Applicant> {
        let details = self.submitted(r)?;
        Ok(Applicant {
            pan: details.pan,
            name: details.name,
        })
    }

    /// Moves the request to what the provider reports, and marks it checked. An approval
    /// stands only for the person asked about: its identity is bound to the requested PAN
    /// and name here, for every provider, and one of someone else is rejected or left
    /// for review.
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
        let result_sealed = identity
            .as_ref()
            .map(|i| self.seal_json(SealedColumn::KycResult, kid, i));
        self.move_kyc(Transition {
            reason,
            result_sealed,
            checked: true,
            ..self.moving(kid, to)
        })
        .await
    }

    /// A move of `kid` into `to` now, with nothing else recorded.
    pub(super) fn moving(&self, kid: &str, to: KycState) -> Transition {
        Transition::new(kid, to, self.now_ms())
    }

    /// A guarded move; announces it to the callback worker when it queued an event.
    pub(super) async fn move_kyc(&self, t: Transition) -> ServiceResult<KycState> {
        let to = t.to;
        let kid = t.kid.clone();
        let after = self
            .store
            .transition(t)
            .await?
            .ok_or(ServiceError::NotFound(NOT_FOUND))?;
        if after == to {
            tracing::info!(kid, state = %to, "KYC request moved");
            crate::metrics::entered(to.as_str(), 1);
            if KycEvent::on_entering(to).is_some() {
                self.callbacks_queued.notify_one();
            }
        }
        Ok(after)
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
