//! Finishing a sandbox KYC: by the tester helper API (no browser) or at the end of the
//! hosted journey. Either way the outcome is recorded with the sandbox provider and
//! read back as for any provider, so the request moves exactly as a real result would,
//! identity binding included.

use super::lifecycle::NOT_FOUND;
use super::{ApiClient, Core, Journeys, KycStatus, ServiceError, ServiceResult};
use crate::domain::sealed::SealedColumn;
use crate::domain::state::KycState;
use crate::provider::Applicant;
use crate::sandbox::{Outcome, Step};
use crate::store::{KycRecord, SandboxSession};

/// How a tester ended a sandbox journey. Holds identity data: no `Debug`.
pub struct SandboxFinish<'a> {
    pub outcome: Outcome,
    pub face_match: u8,
    /// The customer's JPEG, when one was taken.
    pub selfie: Option<&'a [u8]>,
    /// What DigiLocker returns instead of the requested PAN and name.
    pub verified_pan: Option<String>,
    pub verified_name: Option<String>,
}

/// A journey at `step`, with nothing decided yet.
pub(super) fn session_at(step: Step) -> SandboxSession {
    SandboxSession {
        step: step.as_str().into(),
        outcome: None,
        face_match: None,
        selfie_sealed: None,
        person_sealed: None,
    }
}

impl Journeys {
    pub async fn sandbox_complete(
        &self,
        client: &ApiClient,
        kid: &str,
        finish: SandboxFinish<'_>,
    ) -> ServiceResult<KycStatus> {
        if !self.is_sandbox() {
            return Err(ServiceError::NotFound(NOT_FOUND));
        }
        let record = self.owned_kyc(client, kid).await?;
        let state = record.state.as_of(record.expires_at, self.now_ms());
        if !state.is_open() {
            return Err(ServiceError::Conflict(format!(
                "This KYC has already ended ({state})."
            )));
        }
        if state == KycState::AwaitingApproval && finish.outcome == Outcome::AwaitingReview {
            return Err(ServiceError::Conflict(
                "This KYC is already awaiting review.".into(),
            ));
        }
        self.finish_sandbox(&record, finish).await?;
        let record = self.owned_kyc(client, kid).await?;
        // The answer carries the identity, as a status read's does.
        self.status_read_by(client, &record).await
    }
}

impl Core {
    pub(super) fn is_sandbox(&self) -> bool {
        self.provider.offers().simulated_journey
    }

    /// Records how the journey ended (with the customer's selfie and the person
    /// DigiLocker returns, sealed) and moves the request to match; returns the state it
    /// ends in.
    pub(super) async fn finish_sandbox(
        &self,
        record: &KycRecord,
        finish: SandboxFinish<'_>,
    ) -> ServiceResult<KycState> {
        let person = if finish.verified_pan.is_some() || finish.verified_name.is_some() {
            let requested = self.requested_person(record)?;
            Some(Applicant {
                pan: finish.verified_pan.unwrap_or(requested.pan),
                name: finish.verified_name.unwrap_or(requested.name),
            })
        } else {
            None
        };
        let finished = SandboxSession {
            step: Step::Done.as_str().into(),
            outcome: Some(finish.outcome.as_str().into()),
            face_match: Some(finish.face_match),
            selfie_sealed: finish
                .selfie
                .map(|jpeg| self.seal_bytes(SealedColumn::SandboxSelfie, &record.kid, jpeg)),
            person_sealed: person
                .map(|p| self.seal_json(SealedColumn::SandboxPerson, &record.kid, &p)),
        };
        self.store
            .save_sandbox_session(&record.kid, &finished, self.now_ms())
            .await?;
        self.refresh(record).await
    }
}
