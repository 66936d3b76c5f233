//! The sandbox as a `KycProvider`: ids and tokens look like Digio's, the journey link
//! points at paycc's own `/gateway/login/…` pages, and a result is what the tester
//! decided, read back through the sandbox's own port (`JourneyLog`).

use super::NAME;
use super::journey::{JourneyLog, Outcome};
use super::people::synthetic_identity;
use crate::crypto::{self, Keyring};
use crate::domain::ids::provider_style_id;
use crate::domain::sealed::SealedColumn;
use crate::provider::{
    Applicant, KycProvider, Offers, ProviderError, ProviderResult, ProviderState, Session,
    SessionRequest, WebhookError, WebhookNotice,
};
use async_trait::async_trait;
use std::sync::Arc;

pub struct Sandbox {
    journeys: Arc<dyn JourneyLog>,
    keys: Arc<Keyring>,
    public_url: String,
}

impl Sandbox {
    pub fn new(journeys: Arc<dyn JourneyLog>, keys: Arc<Keyring>, public_url: &str) -> Self {
        Self {
            journeys,
            keys,
            public_url: public_url.trim_end_matches('/').to_owned(),
        }
    }
}

#[async_trait]
impl KycProvider for Sandbox {
    fn name(&self) -> &'static str {
        NAME
    }

    fn offers(&self) -> Offers {
        Offers {
            simulated_journey: true,
            webhook_signature: None,
        }
    }

    fn is_remote(&self) -> bool {
        false
    }

    fn verify_webhook(&self, _: &[u8], _: Option<&str>) -> Result<WebhookNotice, WebhookError> {
        Err(WebhookError::Unsupported)
    }

    async fn create_session(&self, req: &SessionRequest) -> Result<Session, ProviderError> {
        let kid = provider_style_id("KID", req.at, &crypto::random_alnum(14));
        // Digio's gateway tokens carry 14 random symbols; ours carry 28 (≈144 bits)
        // because the token alone opens a journey.
        let token = provider_style_id("GWT", req.at, &crypto::random_alnum(28));
        let url = format!(
            "{}/gateway/login/{kid}/{}?token_id={token}",
            self.public_url, req.reference
        );
        Ok(Session { kid, url, token })
    }

    async fn fetch_result(
        &self,
        kid: &str,
        applicant: &Applicant,
    ) -> Result<ProviderResult, ProviderError> {
        let failed = |e: &dyn std::fmt::Display| ProviderError::Failed(e.to_string());
        let session = self.journeys.journey(kid).await.map_err(|e| failed(&e))?;
        let state_only = |state| ProviderResult {
            state,
            identity: None,
            reason: None,
        };
        let Some(session) = session else {
            return Ok(state_only(ProviderState::Requested));
        };
        let Some(outcome) = session.outcome.as_deref() else {
            return Ok(state_only(ProviderState::InProgress));
        };
        let outcome = Outcome::parse(outcome)
            .ok_or_else(|| failed(&format!("unknown sandbox outcome {outcome:?}")))?;
        let face_match = session.face_match.unwrap_or(0);
        Ok(match outcome {
            Outcome::Approved => {
                let person: Option<Applicant> = match &session.person_sealed {
                    Some(sealed) => {
                        let json = self
                            .keys
                            .open(SealedColumn::SandboxPerson.label(), kid, sealed)
                            .map_err(|e| failed(&e))?;
                        Some(serde_json::from_slice(&json).map_err(|_| {
                            failed(&format!("the sandbox person of {kid} does not decode"))
                        })?)
                    }
                    None => None,
                };
                let selfie = match &session.selfie_sealed {
                    Some(sealed) => Some(
                        self.keys
                            .open(SealedColumn::SandboxSelfie.label(), kid, sealed)
                            .map_err(|e| failed(&e))?,
                    ),
                    None => None,
                };
                ProviderResult {
                    state: ProviderState::Approved,
                    identity: Some(synthetic_identity(
                        kid,
                        person.as_ref().unwrap_or(applicant),
                        face_match,
                        selfie.as_deref(),
                    )),
                    reason: None,
                }
            }
            Outcome::AwaitingReview => state_only(ProviderState::ApprovalPending),
            Outcome::Rejected => ProviderResult {
                state: ProviderState::Rejected,
                identity: None,
                reason: Some(format!(
                    "Rejected in the sandbox (face match {face_match}%)."
                )),
            },
            Outcome::Expired => ProviderResult {
                state: ProviderState::Expired,
                identity: None,
                reason: Some(crate::domain::state::EXPIRED_REASON.into()),
            },
        })
    }
}
