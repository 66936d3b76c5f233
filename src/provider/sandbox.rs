//! The sandbox provider: paycc plays the provider so integrators can build and test
//! without an account. Ids and tokens look like Digio's; the journey pages live under
//! `/gateway/login/…` on paycc itself; a tester decides the outcome, which this provider
//! reads back through its own port (`JourneyLog`), and an approval comes back with
//! realistic synthetic data.

use super::{
    Applicant, KycProvider, Offers, ProviderError, ProviderResult, ProviderState, Session,
    SessionRequest, WebhookError, WebhookNotice,
};
use crate::crypto::{self, Keyring};
use crate::domain::ids::provider_style_id;
use crate::domain::kyc::{Address, KycIdentity, Photo};
use async_trait::async_trait;
use base64::prelude::*;
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub const NAME: &str = "sandbox";

/// A real JPEG (a drawn head-and-shoulders placeholder) used when no selfie was taken.
const PLACEHOLDER_SELFIE: &[u8] = include_bytes!("../../assets/sandbox-selfie.jpg");

/// The sealing context of a selfie the journey stored.
pub const SELFIE_CONTEXT: &str = "sandbox-selfie";
/// The sealing context of the person a tester made DigiLocker return instead.
pub const PERSON_CONTEXT: &str = "sandbox-person";

pub struct Sandbox {
    journeys: Arc<dyn JourneyLog>,
    keys: Arc<Keyring>,
    public_url: String,
}

/// How a journey ended, as the sandbox reads it back.
pub struct JourneyEnd {
    /// `None` while the customer is still on the way.
    pub outcome: Option<String>,
    pub face_match: Option<u8>,
    pub selfie_sealed: Option<Vec<u8>>,
    /// Who DigiLocker returns instead of the requested person, if a tester chose so.
    pub person_sealed: Option<Vec<u8>>,
}

/// Where the sandbox reads its journeys from: a port of its own, which the application
/// fills from wherever journeys are kept, so this provider needs no store.
#[async_trait]
pub trait JourneyLog: Send + Sync + 'static {
    /// `None` for a journey the customer has not started.
    async fn journey(&self, kid: &str) -> Result<Option<JourneyEnd>, String>;
}

/// How a tester finished a sandbox journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Approved,
    Rejected,
    Expired,
    /// Finished by the customer, left for a reviewer.
    AwaitingReview,
}

impl Outcome {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "approved" => Some(Self::Approved),
            "rejected" => Some(Self::Rejected),
            "expired" => Some(Self::Expired),
            "pending" => Some(Self::AwaitingReview),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
            Self::AwaitingReview => "pending",
        }
    }
}

/// Where a customer is in the sandbox journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Consent,
    SignIn,
    Share,
    Selfie,
    Done,
}

impl Step {
    pub const ALL: [Step; 5] = [
        Step::Consent,
        Step::SignIn,
        Step::Share,
        Step::Selfie,
        Step::Done,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Consent => "consent",
            Step::SignIn => "digilocker",
            Step::Share => "share",
            Step::Selfie => "selfie",
            Step::Done => "done",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn next(self) -> Self {
        match self {
            Step::Consent => Step::SignIn,
            Step::SignIn => Step::Share,
            Step::Share => Step::Selfie,
            Step::Selfie | Step::Done => Step::Done,
        }
    }
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
                            .open(PERSON_CONTEXT, sealed)
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
                            .open(SELFIE_CONTEXT, sealed)
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

const PLACES: &[(&str, &str, &str, &str, &str)] = &[
    (
        "12 Civil Lines",
        "Court Road",
        "Saharanpur",
        "Uttar Pradesh",
        "247001",
    ),
    (
        "44 MG Road",
        "Shivaji Nagar",
        "Pune",
        "Maharashtra",
        "411005",
    ),
    (
        "7 Anna Salai",
        "Teynampet",
        "Chennai",
        "Tamil Nadu",
        "600018",
    ),
    (
        "201 Residency Road",
        "Shanthala Nagar",
        "Bengaluru",
        "Karnataka",
        "560025",
    ),
    (
        "19 Park Street",
        "Mullick Bazar",
        "Kolkata",
        "West Bengal",
        "700016",
    ),
    (
        "88 Ashram Road",
        "Navrangpura",
        "Ahmedabad",
        "Gujarat",
        "380009",
    ),
];

const FATHERS: &[&str] = &[
    "Ramesh Kumar",
    "Suresh Sharma",
    "Mahesh Rao",
    "",
    "Anil Verma",
    "Vijay Singh",
];

const OTHER_PEOPLE: &[&str] = &[
    "Ravi Shankar Iyer",
    "Meena Joshi",
    "Farhan Qureshi",
    "Lakshmi Narayanan",
    "Gurpreet Kaur Sandhu",
    "Debashish Banerjee",
];

/// Someone other than the applicant, the same every time for one kid: who DigiLocker
/// returns when a tester picks "DigiLocker returns a different person".
pub fn other_person_than(kid: &str) -> Applicant {
    let seed = Sha256::digest(format!("other/{kid}").as_bytes());
    let letter = |i: usize| char::from(b'A' + seed[i] % 26);
    let name = OTHER_PEOPLE[seed[0] as usize % OTHER_PEOPLE.len()];
    let surname = name.rsplit(' ').next().unwrap_or(name);
    let digits = u16::from_be_bytes([seed[1], seed[2]]) % 10_000;
    // The Q in the first three letters keeps it apart from any PAN the demo data uses.
    let pan = format!(
        "Q{}{}P{}{digits:04}{}",
        letter(3),
        letter(4),
        &surname[..1],
        letter(5)
    );
    Applicant {
        pan,
        name: name.into(),
    }
}

/// A believable DigiLocker record for the applicant, the same every time for one kid:
/// what the journey previews is what an approval returns.
pub fn synthetic_identity(
    kid: &str,
    applicant: &Applicant,
    face_match: u8,
    selfie: Option<&[u8]>,
) -> KycIdentity {
    let seed = Sha256::digest(kid.as_bytes());
    let pick = |i: usize, n: usize| seed[i] as usize % n;
    let (address, locality, city, state, pincode) = PLACES[pick(0, PLACES.len())];
    let last4 = u16::from_be_bytes([seed[1], seed[2]]) % 10_000;
    let day = 1 + pick(3, 28);
    let month = 1 + pick(4, 12);
    let year = 1960 + pick(5, 45);
    KycIdentity {
        name: applicant.name.clone(),
        face_match,
        aadhaar: format!("xxxxxxxx{last4:04}"),
        gender: ["M", "F"][pick(6, 2)].into(),
        dob: format!("{day:02}/{month:02}/{year}"),
        image: Photo::from_base64(&BASE64_STANDARD.encode(selfie.unwrap_or(PLACEHOLDER_SELFIE))),
        father_name: FATHERS[pick(7, FATHERS.len())].into(),
        current_address: Address {
            address: address.into(),
            locality_or_post_office: locality.into(),
            district_or_city: city.into(),
            state: state.into(),
            pincode: pincode.into(),
        },
        pan: applicant.pan.clone(),
        pan_name: applicant.name.to_uppercase(),
        pan_match: None,
        name_match: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_identity_is_stable_and_well_formed() {
        let a = Applicant {
            pan: "ENGPK1234L".into(),
            name: "Sanjay Kumar".into(),
        };
        let one = synthetic_identity("KID241124231727512Q2Z5XKW1YB9TA", &a, 97, None);
        let two = synthetic_identity("KID241124231727512Q2Z5XKW1YB9TA", &a, 97, None);
        assert!(one == two);
        assert!(one.aadhaar.starts_with("xxxxxxxx") && one.aadhaar.len() == 12);
        assert_eq!(one.dob.len(), 10);
        assert!(
            serde_json::to_string(&one.image)
                .unwrap()
                .starts_with(r#""/9j/"#),
            "a JPEG in base64 starts with /9j/"
        );
        assert_eq!(one.pan_name, "SANJAY KUMAR");
    }
}
