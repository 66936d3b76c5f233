//! The sandbox's hosted journey: consent → DigiLocker sign-in → share preview → selfie →
//! done. Every page and form post proves the link's token; progress lives with the
//! sandbox provider, so a customer who leaves resumes where they were.

use super::sandbox::{SandboxFinish, session_at};
use super::{Journeys, ServiceError};
use crate::crypto::Lookup;
use crate::domain::fields::{Mobile, RedirectUrl};
use crate::domain::ids::is_kid;
use crate::domain::kyc::{KycIdentity, Photo};
use crate::domain::state::KycState;
use crate::provider::Applicant;
use crate::sandbox::{Outcome, Step, other_person_than, synthetic_identity};
use crate::store::KycRecord;
use crate::store::StoreError;

/// Largest selfie accepted (the page scales camera and large photos down first).
pub const SELFIE_MAX_BYTES: usize = 2 * 1024 * 1024;

/// What the customer's link carries.
pub struct JourneyKey<'a> {
    pub kid: &'a str,
    pub reference: &'a str,
    pub token: &'a str,
}

/// Why a link opens nothing of the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JourneyRefusal {
    /// Unknown kid, wrong reference or wrong token: indistinguishable on purpose.
    Invalid,
    Expired,
}

#[derive(Debug)]
pub enum JourneyError {
    Refused(JourneyRefusal),
    /// The form was filled in wrongly; the sentence is shown on the page.
    Form(&'static str),
    Failed(ServiceError),
}

impl From<ServiceError> for JourneyError {
    fn from(e: ServiceError) -> Self {
        JourneyError::Failed(e)
    }
}

impl From<StoreError> for JourneyError {
    fn from(e: StoreError) -> Self {
        JourneyError::Failed(e.into())
    }
}

/// Where the customer stands, for rendering a page. Holds identity data: no `Debug`.
pub struct JourneyView {
    pub kid: String,
    pub merchant_name: String,
    pub stage: Stage,
    /// The mobile DigiLocker "sends the OTP to", masked.
    pub mobile_masked: String,
    /// At the share step: the record DigiLocker will share (photo left out).
    pub preview: Option<KycIdentity>,
    /// After the end: where the merchant wants the customer back, with kid and status.
    pub return_url: Option<String>,
    /// The origin the final form may send the customer on to.
    pub leave_origin: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    At(Step),
    Finished(KycState),
}

pub enum JourneyAction {
    Consent,
    SignIn {
        otp: String,
    },
    Share,
    Selfie {
        photo: Option<Vec<u8>>,
        outcome: Outcome,
        face_match: u8,
        /// The tester's "DigiLocker returns a different person".
        other_person: bool,
    },
}

/// What to do after a form post.
pub enum Advanced {
    /// Show the (new) current page.
    Stay,
    /// The journey ended and the merchant gave a redirect: send the customer there.
    Leave(String),
}

impl Journeys {
    /// The page for a link. Looking changes nothing (link-preview bots open links too):
    /// the request moves to `in_progress` only when the customer consents.
    pub async fn view(&self, key: &JourneyKey<'_>) -> Result<JourneyView, JourneyError> {
        let (record, state) = self.journey_record(key).await?;
        if !state.is_open() || state == KycState::AwaitingApproval {
            return self.journey_view(&record, Stage::Finished(state));
        }
        let step = self
            .store
            .sandbox_session(&record.kid)
            .await?
            .and_then(|s| Step::parse(&s.step))
            .unwrap_or(Step::Consent);
        self.journey_view(&record, Stage::At(step))
    }

    pub async fn advance(
        &self,
        key: &JourneyKey<'_>,
        action: JourneyAction,
    ) -> Result<Advanced, JourneyError> {
        let (record, state) = self.journey_record(key).await?;
        if !state.is_open() || state == KycState::AwaitingApproval {
            return Ok(Advanced::Stay);
        }
        let session = self.store.sandbox_session(&record.kid).await?;
        let step = session
            .as_ref()
            .and_then(|s| Step::parse(&s.step))
            .unwrap_or(Step::Consent);
        let now = self.now_ms();
        match (step, action) {
            (Step::Consent, JourneyAction::Consent) => {
                self.store
                    .save_sandbox_session(&record.kid, &session_at(step.next()), now)
                    .await?;
                if state.can_move_to(KycState::InProgress) {
                    self.move_kyc(self.moving(&record.kid, KycState::InProgress))
                        .await?;
                }
            }
            (Step::Share, JourneyAction::Share) => {
                self.store
                    .save_sandbox_session(&record.kid, &session_at(step.next()), now)
                    .await?;
            }
            (Step::SignIn, JourneyAction::SignIn { otp }) => {
                if otp.len() != 6 || !otp.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(JourneyError::Form(
                        "Enter the 6-digit code (any six digits in the sandbox).",
                    ));
                }
                self.store
                    .save_sandbox_session(&record.kid, &session_at(step.next()), now)
                    .await?;
            }
            (
                Step::Selfie,
                JourneyAction::Selfie {
                    photo,
                    outcome,
                    face_match,
                    other_person,
                },
            ) => {
                if photo
                    .as_deref()
                    .is_some_and(|jpeg| jpeg.len() > SELFIE_MAX_BYTES || !is_jpeg(jpeg))
                {
                    return Err(JourneyError::Form(
                        "The photo must be a JPEG picture of at most 2 MB.",
                    ));
                }
                let other = other_person.then(|| other_person_than(&record.kid));
                let finish = SandboxFinish {
                    outcome,
                    face_match,
                    selfie: photo.as_deref(),
                    verified_pan: other.as_ref().map(|p| p.pan.clone()),
                    verified_name: other.map(|p| p.name),
                };
                let ended = self.finish_sandbox(&record, finish).await?;
                if let Some(url) = self.return_url(&record, ended) {
                    return Ok(Advanced::Leave(url));
                }
            }
            // A form from an earlier step (back button, second tab): show where we are.
            _ => {}
        }
        Ok(Advanced::Stay)
    }

    /// Whether a link opens a journey that can still be posted to, before its form is read.
    pub async fn check_link(&self, key: &JourneyKey<'_>) -> Result<(), JourneyError> {
        self.journey_record(key).await.map(drop)
    }

    /// The form token bound to this browser's cookie nonce and this journey.
    pub fn form_token(&self, kid: &str, nonce: &str) -> String {
        hex::encode(self.keys.lookup_hash(Lookup::Csrf, &[kid, nonce]))
    }

    pub fn form_token_ok(&self, kid: &str, nonce: &str, presented: &str) -> bool {
        hex::decode(presented)
            .ok()
            .is_some_and(|raw| self.keys.lookup_matches(Lookup::Csrf, &[kid, nonce], &raw))
    }

    /// The request behind a link, if the link's token is right and its time has not run out.
    async fn journey_record(
        &self,
        key: &JourneyKey<'_>,
    ) -> Result<(KycRecord, KycState), JourneyError> {
        let invalid = JourneyError::Refused(JourneyRefusal::Invalid);
        if !self.is_sandbox() || !is_kid(key.kid) {
            return Err(invalid);
        }
        let Some(record) = self.store.kyc(key.kid, None).await? else {
            return Err(invalid);
        };
        let token_ok = record
            .token_hash
            .as_deref()
            .is_some_and(|h| self.keys.lookup_matches(Lookup::Token, &[key.token], h));
        // A deactivated merchant's links open nothing, like a wrong one.
        if !token_ok || record.reference != key.reference || !record.merchant_active {
            return Err(invalid);
        }
        let state = record.state.as_of(record.expires_at, self.now_ms());
        if state == KycState::Expired {
            return Err(JourneyError::Refused(JourneyRefusal::Expired));
        }
        Ok((record, state))
    }

    fn journey_view(&self, record: &KycRecord, stage: Stage) -> Result<JourneyView, JourneyError> {
        let details = self.submitted(record)?;
        let preview = (stage == Stage::At(Step::Share)).then(|| {
            let applicant = Applicant {
                pan: details.pan.clone(),
                name: details.name.clone(),
            };
            let mut identity = synthetic_identity(&record.kid, &applicant, 0, None);
            identity.image = Photo::none();
            identity
        });
        let return_url = match stage {
            Stage::Finished(state) => self.return_url(record, state),
            Stage::At(_) => None,
        };
        Ok(JourneyView {
            kid: record.kid.clone(),
            merchant_name: record.merchant_name.clone(),
            stage,
            mobile_masked: Mobile::parse(&details.mobile)
                .map(|m| m.masked())
                .unwrap_or_default(),
            preview,
            return_url,
            leave_origin: record
                .redirect_url
                .as_deref()
                .and_then(|u| RedirectUrl::parse(u).ok())
                .map(|u| u.origin().to_owned()),
        })
    }

    fn return_url(&self, record: &KycRecord, state: KycState) -> Option<String> {
        let url = RedirectUrl::parse(record.redirect_url.as_deref()?).ok()?;
        Some(url.with_outcome(&record.kid, state.as_str()))
    }
}

fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF]) && bytes.ends_with(&[0xFF, 0xD9])
}
