//! The KYC provider seam: who runs the customer's journey and reports its result.

pub mod sandbox;

use crate::domain::kyc::KycIdentity;
use async_trait::async_trait;
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("the provider did not answer in time")]
    Timeout,
    #[error("the provider failed: {0}")]
    Failed(String),
    #[error("the provider has no record of this request")]
    Unknown,
}

/// What the provider needs to open a journey.
#[derive(Debug, Clone)]
pub struct SessionRequest {
    /// When the request was made; provider-style ids carry it.
    pub at: OffsetDateTime,
}

/// A journey the provider opened.
#[derive(Clone)]
pub struct Session {
    pub kid: String,
    pub reference: String,
    /// Where the customer goes; carries the access token.
    pub url: String,
    pub token: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL and token let anyone into the journey: keep them out of logs.
        write!(
            f,
            "Session {{ kid: {}, reference: {} }}",
            self.kid, self.reference
        )
    }
}

/// The provider's view of a request, mapped to our words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderState {
    Requested,
    InProgress,
    ApprovalPending,
    Approved,
    Rejected,
    Expired,
}

#[derive(Debug, Clone)]
pub struct ProviderResult {
    pub state: ProviderState,
    pub identity: Option<KycIdentity>,
    pub reason: Option<String>,
}

/// The applicant as the merchant described them; the sandbox uses it to make its
/// synthetic DigiLocker record match the customer. Identity data: no `Debug`.
#[derive(Clone)]
pub struct Applicant {
    pub pan: String,
    pub name: String,
}

#[async_trait]
pub trait KycProvider: Send + Sync + 'static {
    fn name(&self) -> &'static str;

    /// Opens a journey. The sandbox does this in process; a remote provider makes a call.
    async fn create_session(&self, req: &SessionRequest) -> Result<Session, ProviderError>;

    /// The provider's current record of a request.
    async fn fetch_result(
        &self,
        kid: &str,
        applicant: &Applicant,
    ) -> Result<ProviderResult, ProviderError>;
}
