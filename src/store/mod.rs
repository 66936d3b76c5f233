//! Persistence behind one seam. The service speaks in records and sealed bytes; only
//! the backends know SQL. Every write returns after its transaction has committed.

mod appender;
pub mod backend;
pub mod credentials;
pub mod db;
pub mod ops;
pub mod postgres;
pub mod schema;
mod sql;
pub mod sqlite;

pub use crate::domain::rate::RateLimit;
use crate::domain::sealed::SealedColumn;
use crate::domain::state::KycState;
pub use crate::domain::timestamp::UnixMs;
use async_trait::async_trait;
pub use db::Unique;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database schema is at version {found}, this build needs {wanted}")]
    SchemaBehind { found: i64, wanted: i64 },
    #[error("unique rule {0} broken")]
    Conflict(Unique),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A queue in front of the database is full: the node has more work than it can take.
    #[error("the {0} queue is full")]
    Busy(&'static str),
    #[error("database error while {context}: {source}")]
    Backend {
        context: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A row's key, typed by its table, so one is never passed for another.
macro_rules! row_key {
    ($($(#[$doc:meta])* $name:ident),*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub i64);
    )*};
}

row_key!(
    /// An API client's row.
    ClientPk,
    /// A merchant's row.
    MerchantPk,
    /// A callback event's row in the outbox.
    EventPk
);

#[derive(Debug, Clone)]
pub struct ClientRecord {
    pub pk: ClientPk,
    pub client_id: String,
    pub name: String,
    pub secret_hash: Vec<u8>,
    /// A disabled client is refused as if its credentials were wrong.
    pub active: bool,
    /// The operator's limit for this client; `None`: the node's default.
    pub rate_limit: Option<RateLimit>,
}

#[derive(Debug, Clone)]
pub struct MerchantRecord {
    pub pk: MerchantPk,
    pub code: String,
    pub name: String,
    pub active: bool,
    pub client_id: String,
}

/// Everything an init writes, prepared (sealed and hashed) by the service.
#[derive(Debug, Clone)]
pub struct NewKyc {
    pub kid: String,
    pub reference: String,
    pub merchant_pk: MerchantPk,
    pub provider: &'static str,
    pub state: KycState,
    pub fingerprint: Vec<u8>,
    /// `None` while a remote provider is still being asked (state `created`).
    pub url_sealed: Option<Vec<u8>>,
    pub token_hash: Option<Vec<u8>>,
    pub redirect_url: Option<String>,
    pub now: UnixMs,
    pub expires_at: UnixMs,
    pub customer: NewCustomer,
}

#[derive(Debug, Clone)]
pub struct NewCustomer {
    /// Used only when the (merchant, PAN) customer does not exist yet.
    pub cust_id: String,
    pub pan_hash: Vec<u8>,
    pub mobile_hash: Vec<u8>,
    /// The submitted details as the customer's latest (bound to the customer's row).
    pub details_sealed: Vec<u8>,
    /// The same details as the request's own (bound to the request's reference).
    pub submitted_sealed: Vec<u8>,
}

impl NewKyc {
    /// What an init that stored this request answers.
    pub fn stored(&self, cust_id: String) -> InitStored {
        InitStored {
            kid: self.kid.clone(),
            url_sealed: self.url_sealed.clone(),
            cust_id,
            reused: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct InitStored {
    pub kid: String,
    /// `None` when the request found is still waiting on the provider.
    pub url_sealed: Option<Vec<u8>>,
    pub cust_id: String,
    /// An open identical request answered instead of the new one.
    pub reused: bool,
}

#[derive(Debug, Clone)]
pub struct KycRecord {
    pub kid: String,
    pub reference: String,
    pub merchant_code: String,
    pub merchant_name: String,
    pub merchant_active: bool,
    pub client_id: String,
    pub cust_id: String,
    pub provider: String,
    pub state: KycState,
    pub reason: Option<String>,
    pub url_sealed: Option<Vec<u8>>,
    pub token_hash: Option<Vec<u8>>,
    pub redirect_url: Option<String>,
    pub result_sealed: Option<Vec<u8>>,
    /// What the merchant submitted with this request (pan, name, email, mobile), sealed:
    /// a later init for the same customer does not change it. Gone once purged.
    pub submitted_sealed: Option<Vec<u8>>,
    pub created_at: UnixMs,
    pub updated_at: UnixMs,
    pub expires_at: UnixMs,
    /// When the provider was last asked about it.
    pub checked_at: Option<UnixMs>,
    /// When its identity data was deleted; the row is a tombstone since.
    pub purged_at: Option<UnixMs>,
}

#[derive(Debug, Clone)]
pub enum CustomerLookup {
    PanHash(Vec<u8>),
    MobileHash(Vec<u8>),
}

#[derive(Debug, Clone)]
pub struct CustomerRecord {
    pub cust_id: String,
    pub active: bool,
    /// The row `details_sealed` is bound to (`domain::sealed::customer_row`).
    pub details_row: String,
    pub details_sealed: Vec<u8>,
    /// The approved KYC and its sealed identity.
    pub verified: Option<(String, Vec<u8>)>,
    /// The newest request of this customer.
    pub latest: Option<LatestKyc>,
}

#[derive(Debug, Clone)]
pub struct LatestKyc {
    pub kid: String,
    pub state: KycState,
    pub url_sealed: Option<Vec<u8>>,
    pub expires_at: UnixMs,
}

/// A guarded state change with what the provider reported.
#[derive(Debug, Clone)]
pub struct Transition {
    pub kid: String,
    pub to: KycState,
    pub reason: Option<String>,
    pub result_sealed: Option<Vec<u8>>,
    pub now: UnixMs,
    /// Appended to the audit trail with the move, only if the move applies.
    pub audit: Option<AuditNote>,
    /// The provider was just asked about the request: it counts as checked at `now`,
    /// whether or not the move applies (a re-check then leaves it be for a while).
    pub checked: bool,
}

impl Transition {
    /// A move of `kid` into `to` at `now`, with nothing else recorded.
    pub fn new(kid: &str, to: KycState, now: UnixMs) -> Self {
        Transition {
            kid: kid.to_owned(),
            to,
            reason: None,
            result_sealed: None,
            now,
            audit: None,
            checked: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ActivatedKyc {
    pub kid: String,
    pub url_sealed: Vec<u8>,
    pub token_hash: Vec<u8>,
    pub now: UnixMs,
}

#[derive(Debug, Clone)]
pub struct IdempotencyClaim {
    pub client_pk: ClientPk,
    pub key: String,
    pub request_hash: Vec<u8>,
    pub now: UnixMs,
    /// A key taken before this with no reply yet is considered abandoned.
    pub stale_before: UnixMs,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    Taken,
    /// Another request holds it and has not finished.
    InFlight,
    /// Used before with a different request.
    Mismatch,
    Done(Vec<u8>),
}

/// Where an API client's callbacks go; both unset until the operator sets them.
#[derive(Debug, Clone)]
pub struct ClientCallback {
    pub url: Option<String>,
    pub secret_sealed: Option<Vec<u8>>,
}

/// An outbox row claimed for one delivery attempt, with where it goes now.
#[derive(Debug, Clone)]
pub struct DueCallback {
    pub pk: EventPk,
    pub event_id: String,
    pub kid: String,
    pub cust_id: String,
    pub merchant_code: String,
    pub state: KycState,
    /// Attempts made before this one.
    pub attempts: i64,
    /// The API client whose callback this is.
    pub client_id: String,
    pub callback: ClientCallback,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    Delivered,
    RetryAt(UnixMs),
    /// The retry schedule ran out.
    Dead,
}

#[derive(Debug, Clone)]
pub struct CallbackAttempt {
    pub pk: EventPk,
    pub result: AttemptResult,
    /// Why it failed, in words that quote neither the URL nor the receiver's reply.
    pub error: Option<String>,
    pub now: UnixMs,
}

/// An outbox row as operators see it.
#[derive(Debug, Clone)]
pub struct CallbackRecord {
    pub event_id: String,
    pub kid: String,
    pub state: KycState,
    /// `pending`, `delivered` or `dead`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: UnixMs,
    pub last_error: Option<String>,
    pub created_at: UnixMs,
    pub delivered_at: Option<UnixMs>,
}

/// The sandbox provider's record of one journey.
#[derive(Debug, Clone)]
pub struct SandboxSession {
    pub step: String,
    pub outcome: Option<String>,
    pub face_match: Option<u8>,
    pub selfie_sealed: Option<Vec<u8>>,
    /// Who DigiLocker returns instead of the requested person, if a tester chose so.
    pub person_sealed: Option<Vec<u8>>,
}

/// Whether a client or merchant may work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    On,
    Off,
}

/// Which callback events an operator lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackFilter {
    All,
    /// The dead, and those whose last attempt failed.
    Failed,
}

/// The database's own facts: whether it is ready, and settings kept once.
#[async_trait]
pub trait Settings: Send + Sync + 'static {
    /// Reachable, and the schema is at the version this build expects.
    async fn readiness(&self) -> StoreResult<()>;
    /// Keeps `value` under `name` unless a value is already kept; returns the kept one.
    async fn pin_setting(&self, name: &str, value: &[u8], now: UnixMs) -> StoreResult<Vec<u8>>;
    /// Resolves once every write queued before it is durable (at shutdown).
    async fn flush(&self) -> StoreResult<()>;
    /// Keeps the credentials kept in memory vouched for, polling the database's
    /// credentials version for as long as the node serves (`store::credentials`).
    async fn watch_credentials(&self);
}

/// API clients, their merchants, and where their callbacks go.
#[async_trait]
pub trait Clients: Send + Sync + 'static {
    async fn create_client(
        &self,
        client_id: &str,
        name: &str,
        secret_hash: &[u8],
        now: UnixMs,
    ) -> StoreResult<()>;
    /// `false` when no such client.
    async fn set_client_secret(
        &self,
        client_id: &str,
        secret_hash: &[u8],
        now: UnixMs,
    ) -> StoreResult<bool>;
    async fn find_client(&self, client_id: &str) -> StoreResult<Option<ClientRecord>>;
    /// `false` when no such client.
    async fn set_client_active(&self, client_id: &str, to: Switch) -> StoreResult<bool>;
    /// The client's own rate limit (`None`: the node's default); `false` when no such client.
    async fn set_client_rate_limit(
        &self,
        client_id: &str,
        limit: Option<RateLimit>,
    ) -> StoreResult<bool>;
    async fn count_clients(&self) -> StoreResult<i64>;
    /// Fails with `Conflict` for a taken code; `Ok(false)` when the client is unknown.
    async fn create_merchant(
        &self,
        client_id: &str,
        code: &str,
        name: &str,
        now: UnixMs,
    ) -> StoreResult<bool>;
    async fn list_merchants(&self) -> StoreResult<Vec<MerchantRecord>>;
    /// The merchant with this code, whichever client owns it.
    async fn find_merchant(&self, code: &str) -> StoreResult<Option<MerchantRecord>>;
    async fn set_merchant_active(&self, code: &str, to: Switch) -> StoreResult<bool>;
    /// The merchant with this code if the client owns it (active or not).
    async fn merchant_of_client(
        &self,
        client_pk: ClientPk,
        code: &str,
    ) -> StoreResult<Option<MerchantRecord>>;
    /// `None` when no such client.
    async fn client_callback(&self, client_id: &str) -> StoreResult<Option<ClientCallback>>;
    /// Sets the URL, and the secret when one is given; `false` when no such client.
    async fn set_client_callback(
        &self,
        client_id: &str,
        url: &str,
        secret_sealed: Option<&[u8]>,
    ) -> StoreResult<bool>;
}

/// KYC requests and their customers.
#[async_trait]
pub trait KycRequests: Send + Sync + 'static {
    /// Creates or reuses the (merchant, PAN) customer and stores the request, unless an
    /// open, unexpired request with the same fingerprint exists: then that one is returned.
    async fn init_kyc(&self, new: NewKyc) -> StoreResult<InitStored>;
    /// A request, only if it belongs to a merchant of `client_pk` (any client when `None`).
    async fn kyc(&self, kid: &str, client_pk: Option<ClientPk>) -> StoreResult<Option<KycRecord>>;
    async fn customer(
        &self,
        client_pk: ClientPk,
        merchant_code: &str,
        key: CustomerLookup,
    ) -> StoreResult<Option<CustomerRecord>>;
    /// Applies the move only from a lower-ranked state; returns the state after the call,
    /// `None` for an unknown kid. On approval the customer takes this KYC as verified.
    /// A move into a state that `KycEvent::on_entering` announces also queues a callback
    /// for a client with a callback URL, in the same transaction.
    async fn transition(&self, t: Transition) -> StoreResult<Option<KycState>>;
    /// Marks open requests past their expiry as expired, at most `limit`, queueing their
    /// callbacks as `transition` does; returns how many.
    async fn expire_due(&self, now: UnixMs, limit: i64) -> StoreResult<usize>;
    /// A request stored as `created` got its provider session: it takes the provider's
    /// kid, link and token and becomes `pending`.
    async fn activate_kyc(&self, reference: &str, session: &ActivatedKyc) -> StoreResult<()>;
    /// A request stored as `created` could not get a provider session.
    async fn fail_kyc(&self, reference: &str, reason: &str, now: UnixMs) -> StoreResult<()>;
    /// Claims up to `limit` open requests of `provider` not checked since `stale_before`,
    /// marking them checked at `now` so no other node claims them too.
    async fn claim_for_recheck(
        &self,
        provider: &str,
        stale_before: UnixMs,
        now: UnixMs,
        limit: i64,
    ) -> StoreResult<Vec<String>>;
    /// `true` the first time an event id is seen, `false` for a redelivery.
    async fn record_webhook_event(
        &self,
        provider: &str,
        event_id: &str,
        now: UnixMs,
    ) -> StoreResult<bool>;
}

/// The callback outbox.
#[async_trait]
pub trait CallbackOutbox: Send + Sync + 'static {
    /// Claims up to `limit` events due at `now` until `lease_until`, so no other worker
    /// sends them meanwhile. An event is due only when no earlier event of its kid is
    /// still undelivered, which keeps each kid's events in order. Clients take turns,
    /// and none has more than `per_client` in flight on all nodes together.
    async fn claim_callbacks(
        &self,
        now: UnixMs,
        lease_until: UnixMs,
        per_client: i64,
        limit: i64,
    ) -> StoreResult<Vec<DueCallback>>;
    /// Records how an attempt ended and releases the claim.
    async fn finish_callback_attempt(&self, attempt: &CallbackAttempt) -> StoreResult<()>;
    /// Newest first.
    async fn list_callbacks(
        &self,
        which: CallbackFilter,
        limit: i64,
    ) -> StoreResult<Vec<CallbackRecord>>;
    /// Forgets delivered and dead events last touched before `before`; returns how many.
    async fn purge_callbacks(&self, before: UnixMs) -> StoreResult<usize>;
    /// Events not yet delivered, and when the longest-waiting due one came due.
    async fn callback_backlog(&self, now: UnixMs) -> StoreResult<(i64, Option<UnixMs>)>;
    /// Puts an event back in the queue, due now, with a fresh retry schedule; `false`
    /// when no such event.
    async fn retry_callback(&self, event_id: &str, now: UnixMs) -> StoreResult<bool>;
}

/// Idempotency-Keys and the replies they give.
#[async_trait]
pub trait IdempotencyKeys: Send + Sync + 'static {
    /// Takes an Idempotency-Key for a request: a key never seen (or whose holder died
    /// before `stale_before` without a reply) is taken; otherwise what it holds.
    async fn claim_idempotency_key(&self, claim: &IdempotencyClaim) -> StoreResult<KeyState>;
    /// Stores the reply a taken key gives from now on.
    async fn complete_idempotency_key(
        &self,
        client_pk: ClientPk,
        key: &str,
        reply_sealed: &[u8],
    ) -> StoreResult<()>;
    /// Gives a taken key back (the request failed in a way a retry may fix).
    async fn release_idempotency_key(&self, client_pk: ClientPk, key: &str) -> StoreResult<()>;
    /// Forgets keys created before `before`; returns how many.
    async fn purge_idempotency_keys(&self, before: UnixMs) -> StoreResult<usize>;
}

/// The sandbox provider's record of each journey.
#[async_trait]
pub trait SandboxSessions: Send + Sync + 'static {
    /// Creates or replaces the record; a `None` selfie keeps the stored one.
    async fn save_sandbox_session(
        &self,
        kid: &str,
        session: &SandboxSession,
        now: UnixMs,
    ) -> StoreResult<()>;
    async fn sandbox_session(&self, kid: &str) -> StoreResult<Option<SandboxSession>>;
}

/// What a purge of one request found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeOutcome {
    Purged,
    AlreadyPurged,
    /// Not ended yet: only an ended request is purged.
    StillOpen(KycState),
    Unknown,
}

/// Forgetting what is no longer to be kept. A purged request keeps its tombstone (kid,
/// custId, merchant, state, dates) and loses its verified identity, photo, submitted
/// details and link; a customer with no unpurged request left loses its details and
/// the hashes that found it by PAN or mobile.
#[async_trait]
pub trait Retention: Send + Sync + 'static {
    /// Purges up to `limit` requests that ended before `ended_before`; how many. Each
    /// purge is recorded by a copy of `audit`'s entries naming its kid and custId.
    async fn purge_ended_kycs(
        &self,
        ended_before: UnixMs,
        now: UnixMs,
        limit: i64,
        audit: AuditNote,
    ) -> StoreResult<usize>;
    /// Purges one ended request at once (an erasure request), recorded as above.
    async fn purge_kyc(
        &self,
        kid: &str,
        now: UnixMs,
        audit: AuditNote,
    ) -> StoreResult<PurgeOutcome>;
    /// Forgets provider webhook events received before `before`; how many.
    async fn purge_webhook_events(&self, before: UnixMs) -> StoreResult<usize>;
    /// Forgets sandbox journeys last touched before `before`; how many.
    async fn purge_sandbox_sessions(&self, before: UnixMs) -> StoreResult<usize>;
}

/// One entry of the audit trail: who did what, to which request, customer or client.
/// Ids and words only, never identity data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: UnixMs,
    /// An API client id, `cli:USER@HOST`, or `paycc` for the server's own acts.
    pub actor: String,
    pub action: String,
    pub kid: Option<String>,
    pub cust_id: Option<String>,
    /// The API client concerned: the reader, or the client an operator changed.
    pub client_id: Option<String>,
    pub request_id: Option<String>,
    pub outcome: String,
}

/// An entry as kept: its place in the trail and the hash linking it to the one before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub seq: i64,
    pub entry: AuditEntry,
    pub chain: Vec<u8>,
}

/// The keyed hash linking entry number `seq` to the one before: (the previous entry's
/// chain, empty for the first; seq; the entry) → its chain. The store links entries as
/// it appends them, without holding the key.
pub type AuditLink = Arc<dyn Fn(&[u8], i64, &AuditEntry) -> Vec<u8> + Send + Sync>;

/// Entries to append, and how to link them.
#[derive(Clone)]
pub struct AuditNote {
    pub entries: Vec<AuditEntry>,
    pub link: AuditLink,
}

impl std::fmt::Debug for AuditNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditNote")
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

/// Which entries `audit_entries` lists, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub kid: Option<String>,
    pub client_id: Option<String>,
    pub since: Option<UnixMs>,
    pub limit: i64,
}

/// The audit trail, appended to and read.
#[async_trait]
pub trait AuditTrail: Send + Sync + 'static {
    /// Appends entries on their own (reads of identity data): durable when this returns.
    async fn append_audit(&self, note: AuditNote) -> StoreResult<()>;
    /// Entries matching `filter`, newest first.
    async fn audit_entries(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRecord>>;
    /// Up to `limit` entries after number `after`, in order: the chain, for checking.
    async fn audit_chain(&self, after: i64, limit: i64) -> StoreResult<Vec<AuditRecord>>;
}

/// Where a walk of a sealed column stands: the last row's key (its integer and text
/// halves; a table keyed by one leaves the other at its start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedCursor {
    pub int: i64,
    pub text: String,
}

impl SealedCursor {
    /// Before every row.
    pub const FIRST: Self = Self {
        int: i64::MIN,
        text: String::new(),
    };
}

/// A sealed value, the row it is bound to, and where the walk that read it stands.
#[derive(Debug, Clone)]
pub struct SealedValue {
    pub cursor: SealedCursor,
    pub row: String,
    pub sealed: Vec<u8>,
}

/// A value sealed again, to replace `old` in the row at `cursor`.
#[derive(Debug, Clone)]
pub struct Resealed {
    pub cursor: SealedCursor,
    pub old: Vec<u8>,
    pub new: Vec<u8>,
}

/// Sealed values by column, for re-sealing and counting, and the data keys noted.
#[async_trait]
pub trait SealedValues: Send + Sync + 'static {
    /// Up to `limit` values of `column` after `after`, in key order, that do not begin
    /// with `current` (the first key's prefix).
    async fn sealed_batch(
        &self,
        column: SealedColumn,
        current: &[u8],
        after: &SealedCursor,
        limit: i64,
    ) -> StoreResult<Vec<SealedValue>>;
    /// Puts each new value in place of its old one, unless the row changed since it was
    /// read (then paycc sealed it anew); how many were replaced. One transaction.
    async fn replace_sealed(&self, column: SealedColumn, values: Vec<Resealed>)
    -> StoreResult<u64>;
    /// How many values of `column` begin with `prefix`; all of them for an empty one.
    async fn count_sealed(&self, column: SealedColumn, prefix: &[u8]) -> StoreResult<i64>;
    /// The data keys noted at earlier starts.
    async fn data_keys(&self) -> StoreResult<Vec<String>>;
    async fn note_data_keys(&self, ids: Vec<String>, now: UnixMs) -> StoreResult<()>;
    async fn forget_data_key(&self, id: &str) -> StoreResult<()>;
}

/// Everything the service keeps, one trait per concern.
pub trait Store:
    Settings
    + Clients
    + KycRequests
    + CallbackOutbox
    + IdempotencyKeys
    + SandboxSessions
    + Retention
    + AuditTrail
    + SealedValues
{
    /// The same store, every change made through it recorded by `note` in the audit
    /// trail within the change's own transaction (or group commit), never apart from it.
    fn audited(self: Arc<Self>, note: AuditNote) -> Arc<dyn Store>;
}
