//! The sandbox journey as the tester sees it: its steps, how a tester may end it, and
//! the port the sandbox provider reads the ending through.

use async_trait::async_trait;

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
