//! The use cases: what each request means, between the HTTP layer and the store and
//! provider. Personal data is sealed and hashed here, on its way in, and opened here
//! on its way out.

mod admin;
mod audit;
mod auth;
mod callbacks;
mod clock;
mod customer;
mod idempotency;
mod init;
mod journey;
mod keys;
mod lifecycle;
mod retention;
mod sandbox;
mod status;
mod sync;

pub use admin::{ClientCredentials, Decision, KycSummary};
pub use audit::{AuditAction, AuditCheck, SERVER_ACTOR};
pub use auth::{ApiClient, AuthFailure};
pub use callbacks::CallbackSetup;
pub use clock::{Clock, SystemClock};
pub use customer::CustomerView;
pub use init::InitReply;
pub use journey::{
    Advanced, JourneyAction, JourneyError, JourneyKey, JourneyRefusal, JourneyView,
    SELFIE_MAX_BYTES, Stage,
};
pub use keys::{DEFAULT_BATCH, KeyStatus, KeyUse, Rotation, RotationProgress};
pub use sandbox::SandboxFinish;
pub use status::KycStatus;
pub use sync::{WebhookAck, WebhookFailure};

use crate::crypto::{CryptoError, Keyring};
use crate::domain::binding::{DEFAULT_NAME_MATCH_MIN, OnMismatch};
use crate::domain::request::Problem;
use crate::domain::sealed::SealedColumn;
use crate::domain::timestamp::UnixMs;
use crate::provider::{KycProvider, ProviderError};
use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("invalid request fields")]
    Invalid(Vec<Problem>),
    #[error("authentication failed: {0:?}")]
    Unauthorized(AuthFailure),
    #[error("merchant not usable by this client")]
    MerchantUnavailable,
    #[error("not found: {0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Refused(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("provider timeout")]
    ProviderTimeout,
    #[error("an identical request with this Idempotency-Key is still running")]
    InFlight,
    #[error("provider calls paused for {0} s")]
    ProviderPaused(u64),
    #[error("provider error: {0}")]
    Provider(String),
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// More work than this node takes: refused at once, to be retried.
    #[error("busy: the {0} queue is full")]
    Busy(&'static str),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => ServiceError::Unavailable(m),
            StoreError::Busy(queue) => ServiceError::Busy(queue),
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

impl From<CryptoError> for ServiceError {
    fn from(e: CryptoError) -> Self {
        ServiceError::Internal(e.to_string())
    }
}

impl From<ProviderError> for ServiceError {
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::Timeout => ServiceError::ProviderTimeout,
            ProviderError::Paused { retry_after_secs } => {
                ServiceError::ProviderPaused(retry_after_secs)
            }
            other => ServiceError::Provider(other.to_string()),
        }
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;

#[derive(Debug, Clone)]
pub struct ServiceSettings {
    pub kyc_ttl: Duration,
    /// A status read asks a remote provider again when the stored state is older.
    pub stale_after: Duration,
    /// Longest a status read waits on that.
    pub refresh_timeout: Duration,
    /// The reconciler re-reads open requests not checked for this long.
    pub reconcile_after: Duration,
    /// How long an Idempotency-Key and its reply are kept.
    pub idempotency_ttl: Duration,
    /// Waits between attempts of a failed callback; then it is dead.
    pub callback_schedule: Vec<Duration>,
    /// How long delivered and dead callback events are kept for operators.
    pub callback_retention: Duration,
    /// How long a KYC's identity data is kept after it ends.
    pub retention: Duration,
    /// How long processed provider webhook events are remembered.
    pub webhook_retention: Duration,
    /// How long the sandbox keeps its record of a journey after its last step.
    pub sandbox_retention: Duration,
    /// How long a claimed callback stays with its worker before another may take it:
    /// longer than an attempt can last.
    pub callback_lease: Duration,
    /// Callbacks of one client in flight at once, on all nodes together.
    pub callback_per_client: u16,
    /// The least name similarity (0–100) an approval needs to stand.
    pub name_match_min: u8,
    /// What an approval of someone other than the requested person becomes.
    pub on_mismatch: OnMismatch,
    /// Who this process's operator acts are recorded as: `cli:USER@HOST`.
    pub operator: String,
}

impl ServiceSettings {
    /// For commands that never talk to a provider.
    pub fn offline(kyc_ttl: Duration) -> Self {
        Self {
            kyc_ttl,
            stale_after: Duration::MAX,
            refresh_timeout: Duration::ZERO,
            reconcile_after: Duration::MAX,
            idempotency_ttl: Duration::from_secs(86_400),
            callback_schedule: Vec::new(),
            callback_retention: Duration::from_secs(30 * 86_400),
            retention: Duration::MAX,
            webhook_retention: Duration::MAX,
            sandbox_retention: Duration::MAX,
            callback_lease: Duration::from_secs(60),
            callback_per_client: 1,
            name_match_min: DEFAULT_NAME_MATCH_MIN,
            on_mismatch: OnMismatch::Reject,
            operator: audit::SERVER_ACTOR.to_owned(),
        }
    }
}

/// What every use case shares: the store, the provider, the keys, the settings and the
/// clock, and the steps more than one use case takes (sealing, a request's lifecycle).
pub struct Core {
    store: Arc<dyn Store>,
    provider: Arc<dyn KycProvider>,
    keys: Arc<Keyring>,
    settings: ServiceSettings,
    clock: Arc<dyn Clock>,
    /// Rung when this node queued a callback, so the delivery worker need not wait for
    /// its next poll.
    callbacks_queued: Arc<tokio::sync::Notify>,
    /// Links audit entries into their chain (keyed by the hash key).
    audit_link: crate::store::AuditLink,
}

/// Each use case is a room over the shared `Core`.
macro_rules! rooms {
    ($($(#[$doc:meta])* $room:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $room(Arc<Core>);

        impl std::ops::Deref for $room {
            type Target = Core;
            fn deref(&self) -> &Core {
                &self.0
            }
        }
    )*};
}

rooms!(
    /// API clients' credentials, checked on every request.
    Auth,
    /// `init/kyc`, with and without an Idempotency-Key.
    Init,
    /// `kyc/status`, and the expiry of requests nobody finished.
    Status,
    /// The customer check.
    Customers,
    /// The hosted journey a customer follows.
    Journeys,
    /// Where callbacks go, and their delivery.
    Callbacks,
    /// What the provider reports on its own: webhooks, and the reconciler's re-reads.
    ProviderSync,
    /// The operator's commands and the readiness check.
    Admin,
);

/// The use cases, one room each.
#[derive(Clone)]
pub struct Service {
    pub auth: Auth,
    pub init: Init,
    pub status: Status,
    pub customers: Customers,
    pub journeys: Journeys,
    pub callbacks: Callbacks,
    pub sync: ProviderSync,
    pub admin: Admin,
    core: Arc<Core>,
}

/// The customer as the merchant described them at init; sealed as one value.
#[derive(Serialize, Deserialize)]
struct CustomerDetails {
    pan: String,
    name: String,
    email: String,
    mobile: String,
}

impl Service {
    pub fn new(
        store: Arc<dyn Store>,
        provider: Arc<dyn KycProvider>,
        keys: Arc<Keyring>,
        settings: ServiceSettings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let core = Arc::new(Core {
            store,
            provider,
            audit_link: audit::audit_link(keys.clone()),
            keys,
            settings,
            clock,
            callbacks_queued: Arc::default(),
        });
        Self {
            auth: Auth(core.clone()),
            init: Init(core.clone()),
            status: Status(core.clone()),
            customers: Customers(core.clone()),
            journeys: Journeys(core.clone()),
            callbacks: Callbacks(core.clone()),
            sync: ProviderSync(core.clone()),
            admin: Admin(core.clone()),
            core,
        }
    }

    pub fn provider_name(&self) -> &'static str {
        self.core.provider.name()
    }

    /// What the provider offers beyond journeys and results.
    pub fn provider_offers(&self) -> crate::provider::Offers {
        self.core.provider.offers()
    }
}

impl Core {
    /// Now, as stored times count it.
    fn now_ms(&self) -> UnixMs {
        UnixMs::of(self.clock.now())
    }

    /// The stored time `age` ago.
    fn older_than(&self, age: Duration) -> UnixMs {
        self.now_ms().minus(age)
    }

    /// Seals `value` as the value of `column` in row `row` (a kid, reference, client id…).
    fn seal_bytes(&self, column: SealedColumn, row: &str, value: &[u8]) -> Vec<u8> {
        self.keys.seal(column.label(), row, value)
    }

    fn seal_json<T: Serialize>(&self, column: SealedColumn, row: &str, value: &T) -> Vec<u8> {
        let json = serde_json::to_vec(value).expect("plain structs serialise");
        self.seal_bytes(column, row, &json)
    }

    /// Opens the sealed value of `column` in row `row`, named in the error as far as an
    /// error may name it (`SealedColumn::row_in_logs`). A value that does not decode is
    /// reported by column and row only: the decoder's own message can quote the
    /// decrypted text.
    fn open_json<T: for<'de> Deserialize<'de>>(
        &self,
        column: SealedColumn,
        row: &str,
        sealed: &[u8],
    ) -> ServiceResult<T> {
        let json = self.open_bytes(column, row, sealed)?;
        serde_json::from_slice(&json).map_err(|_| {
            ServiceError::Internal(format!(
                "the sealed {} of {} does not decode",
                column.name(),
                column.row_in_logs(row)
            ))
        })
    }

    fn open_text(&self, column: SealedColumn, row: &str, sealed: &[u8]) -> ServiceResult<String> {
        String::from_utf8(self.open_bytes(column, row, sealed)?).map_err(|_| {
            ServiceError::Internal(format!(
                "the sealed {} of {} is not UTF-8",
                column.name(),
                column.row_in_logs(row)
            ))
        })
    }

    fn open_bytes(&self, column: SealedColumn, row: &str, sealed: &[u8]) -> ServiceResult<Vec<u8>> {
        self.keys.open(column.label(), row, sealed).map_err(|e| {
            ServiceError::Internal(format!(
                "the sealed {} of {} does not open: {e}",
                column.name(),
                column.row_in_logs(row)
            ))
        })
    }
}
