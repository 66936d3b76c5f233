//! The KYC provider seam: who runs the customer's journey and reports its result.

mod breaker;
pub mod digio;
mod measured;
pub use measured::Measured;

use crate::domain::kyc::KycIdentity;
use async_trait::async_trait;
use std::fmt;
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("the provider did not answer in time")]
    Timeout,
    #[error("the provider failed: {0}")]
    Failed(String),
    #[error("the provider has no record of this request")]
    Unknown,
    /// Calls are paused after repeated failures (the circuit breaker is open).
    #[error("the provider kept failing; calls paused for {retry_after_secs} s")]
    Paused { retry_after_secs: u64 },
}

/// What the provider needs to open a journey. Holds identity data: no `Debug`.
#[derive(Clone)]
pub struct SessionRequest {
    /// When the request was made; provider-style ids carry it.
    pub at: OffsetDateTime,
    /// Our reference for the request (`REF…`), sent to the provider and echoed back.
    pub reference: String,
    /// The customer's mobile, which the provider identifies them by.
    pub mobile: String,
    pub name: String,
    /// Where the provider sends the customer after the journey, if anywhere.
    pub redirect_url: Option<String>,
    /// How long the provider should keep the request open, in whole days.
    pub expire_in_days: u32,
}

/// A journey the provider opened.
#[derive(Clone)]
pub struct Session {
    pub kid: String,
    /// Where the customer goes; carries the access token.
    pub url: String,
    pub token: String,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL and token let anyone into the journey: keep them out of logs.
        write!(f, "Session {{ kid: {} }}", self.kid)
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

/// A person by PAN and name: the applicant as the merchant described them (the sandbox
/// makes its synthetic DigiLocker record match them), or who the sandbox's DigiLocker
/// returns instead. Identity data: no `Debug`.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Applicant {
    pub pan: String,
    pub name: String,
}

/// A verified webhook delivery: a hint that a request changed, never the change itself.
#[derive(Debug, Clone)]
pub struct WebhookNotice {
    pub event_id: String,
    /// Normalised, e.g. `kyc.request.approved`.
    pub event: String,
    pub kid: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("the webhook signature is missing or wrong")]
    BadSignature,
    #[error("the webhook body is not an event: {0}")]
    Malformed(&'static str),
    #[error("this provider sends no webhooks")]
    Unsupported,
}

/// What a provider offers beyond opening journeys and reading results, so that the
/// layers above ask it instead of comparing names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offers {
    /// paycc serves the customer's journey and a tester helper itself, and a tester, not
    /// a document check, decides each result.
    pub simulated_journey: bool,
    /// The header a webhook delivery's signature travels in, when the provider sends
    /// webhooks (to `POST /v1/webhooks/{name}`).
    pub webhook_signature: Option<&'static str>,
}

#[async_trait]
pub trait KycProvider: Send + Sync + 'static {
    fn name(&self) -> &'static str;

    fn offers(&self) -> Offers;

    /// Whether opening a session is a call to another service (it may fail or be slow,
    /// so the request is stored first) rather than done in process.
    fn is_remote(&self) -> bool;

    /// Opens a journey.
    async fn create_session(&self, req: &SessionRequest) -> Result<Session, ProviderError>;

    /// The provider's current record of a request.
    async fn fetch_result(
        &self,
        kid: &str,
        applicant: &Applicant,
    ) -> Result<ProviderResult, ProviderError>;

    /// Checks a webhook delivery's signature over the raw body and reads what it is about.
    fn verify_webhook(
        &self,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<WebhookNotice, WebhookError>;
}
