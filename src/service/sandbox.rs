//! Finishing a sandbox KYC the way a tester would, without a browser.

use super::*;
use crate::domain::state::KycState;
use crate::provider::sandbox::{self, Outcome};
use crate::store::SandboxOutcome;

impl Service {
    /// Records the tester's outcome with the sandbox provider, then reads it back as
    /// for any provider, so the request moves exactly as a real result would move it.
    pub async fn sandbox_complete(
        &self,
        client: &ApiClient,
        kid: &str,
        outcome: Outcome,
        face_match: u8,
    ) -> ServiceResult<KycStatus> {
        if self.provider.name() != sandbox::NAME {
            return Err(ServiceError::NotFound(NOT_FOUND));
        }
        let record = self.owned_kyc(client, kid).await?;
        let now = now_ms(OffsetDateTime::now_utc());
        let state = kyc::effective_state(record.state, record.expires_at, now);
        if !state.is_open() {
            return Err(ServiceError::Conflict(format!(
                "This KYC has already ended ({state})."
            )));
        }
        if state == KycState::AwaitingApproval && outcome == Outcome::AwaitingReview {
            return Err(ServiceError::Conflict(
                "This KYC is already awaiting review.".into(),
            ));
        }
        let recorded = SandboxOutcome {
            outcome: outcome.as_str().into(),
            face_match,
            selfie_sealed: None,
        };
        self.store
            .record_sandbox_outcome(kid, &recorded, now)
            .await?;
        self.refresh(&record).await?;
        self.kyc_status(client, kid).await
    }
}

use super::kyc::{self, NOT_FOUND};
