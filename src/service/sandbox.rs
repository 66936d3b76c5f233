//! Finishing a sandbox KYC: by the tester helper API (no browser) or at the end of the
//! hosted journey. Either way the outcome is recorded with the sandbox provider and
//! read back as for any provider, so the request moves exactly as a real result would.

use super::kyc::{self, NOT_FOUND};
use super::*;
use crate::domain::state::KycState;
use crate::provider::sandbox::{self, Outcome, Step};
use crate::store::{KycRecord, SandboxSession};

impl Service {
    pub async fn sandbox_complete(
        &self,
        client: &ApiClient,
        kid: &str,
        outcome: Outcome,
        face_match: u8,
    ) -> ServiceResult<KycStatus> {
        if !self.is_sandbox() {
            return Err(ServiceError::NotFound(NOT_FOUND));
        }
        let record = self.owned_kyc(client, kid).await?;
        let state = kyc::effective_state(
            record.state,
            record.expires_at,
            now_ms(OffsetDateTime::now_utc()),
        );
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
        self.finish_sandbox(&record, outcome, face_match, None)
            .await?;
        self.kyc_status(client, kid).await
    }

    pub(super) fn is_sandbox(&self) -> bool {
        self.provider.name() == sandbox::NAME
    }

    /// Records how the journey ended (with the customer's selfie, sealed, if one was
    /// taken) and moves the request to match; returns the state it ends in.
    pub(super) async fn finish_sandbox(
        &self,
        record: &KycRecord,
        outcome: Outcome,
        face_match: u8,
        selfie: Option<&[u8]>,
    ) -> ServiceResult<KycState> {
        let finished = SandboxSession {
            step: Step::Done.as_str().into(),
            outcome: Some(outcome.as_str().into()),
            face_match: Some(face_match),
            selfie_sealed: selfie.map(|jpeg| self.keys.seal(sandbox::SELFIE_CONTEXT, jpeg)),
        };
        self.store
            .save_sandbox_session(&record.kid, &finished, now_ms(OffsetDateTime::now_utc()))
            .await?;
        self.refresh(record).await
    }
}
