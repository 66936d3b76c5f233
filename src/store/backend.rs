//! What sets the two databases apart once the statements are shared: where an operation
//! runs. Every `Store` trait is implemented once, for any `Backend` (`store/ops`), by
//! handing the shared operation to `Backend::run`; SQLite queues it for its writer's
//! next group commit or a reader, PostgreSQL runs it on a pooled connection or in a
//! transaction. The few lookups every request makes have hooks of their own, which
//! PostgreSQL answers from its batched lookups.

use super::credentials::Credentials;
use super::db::Conn;
use super::{
    AuditNote, ClientPk, ClientRecord, InitStored, KycRecord, MerchantRecord, NewKyc, StoreResult,
    Transition,
};
use crate::domain::state::KycState;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What an operation needs of the database's way of running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads only.
    Read,
    /// Writes that are correct statement by statement (one statement, or several that
    /// hold on their own).
    Write,
    /// Writes that must land together or not at all.
    Atomic,
}

/// A shared operation's run on one connection.
pub type Run<'c, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 'c>>;

/// A shared operation, given a connection and the values it needs.
pub trait Operation<C, A, T>:
    for<'c> Fn(&'c mut C, &'c A) -> Run<'c, T> + Send + Sync + 'static
{
}

impl<F, C, A, T> Operation<C, A, T> for F where
    F: for<'c> Fn(&'c mut C, &'c A) -> Run<'c, T> + Send + Sync + 'static
{
}

/// An operation with the values it needs and how it must run.
pub struct Job<A, F> {
    pub access: Access,
    pub args: A,
    pub op: F,
}

/// The values an operation needs: owned, so it may wait in a queue.
pub trait Args: Send + Sync + 'static {}

impl<A: Send + Sync + 'static> Args for A {}

/// One database's way of running the shared operations.
pub trait Backend: Send + Sync + 'static {
    type Conn: Conn + Send;

    /// Runs `op` on a connection with `args`. It may run more than once: the SQLite
    /// writer replays a batch when one of its writes fails.
    fn run<A: Args, T: Send + 'static>(
        &self,
        access: Access,
        args: A,
        op: impl Operation<Self::Conn, A, T>,
    ) -> impl Future<Output = StoreResult<T>> + Send {
        self.submit(Job { access, args, op })
    }

    /// Runs a job: SQLite queues writes for its writer's next group commit and reads
    /// for a reader; PostgreSQL runs an atomic job in a transaction of its own and any
    /// other on a pooled connection.
    fn submit<A: Args, T: Send + 'static, F: Operation<Self::Conn, A, T>>(
        &self,
        job: Job<A, F>,
    ) -> impl Future<Output = StoreResult<T>> + Send;

    /// The clients and merchants kept in memory between changes (`store::credentials`).
    fn credentials(&self) -> &Arc<Credentials>;

    /// Stores an init (`ops::kyc::init`) in a transaction of its own; PostgreSQL writes
    /// the inits that arrive together in one (`postgres::inits`).
    fn store_init(&self, new: NewKyc) -> impl Future<Output = StoreResult<InitStored>> + Send {
        self.run(Access::Atomic, new, |c, new| {
            Box::pin(super::ops::kyc::init(c, new))
        })
    }

    /// Moves a request (`ops::kyc::transition`) in a transaction of its own; PostgreSQL
    /// writes the moves that arrive together in one (`postgres::transitions`).
    fn store_transition(
        &self,
        t: Transition,
    ) -> impl Future<Output = StoreResult<Option<KycState>>> + Send {
        self.run(Access::Atomic, t, |c, t| {
            Box::pin(super::ops::kyc::transition(c, t))
        })
    }

    /// How many migrations the database has applied.
    fn schema_version(&self) -> impl Future<Output = StoreResult<i64>> + Send;

    // The lookups every request makes; PostgreSQL answers them from its batches.
    fn lookup_client(
        &self,
        client_id: &str,
    ) -> impl Future<Output = StoreResult<Option<ClientRecord>>> + Send;

    fn lookup_merchant(
        &self,
        client_pk: ClientPk,
        code: &str,
    ) -> impl Future<Output = StoreResult<Option<MerchantRecord>>> + Send;

    /// A request, with the pk of the client whose merchant it belongs to.
    fn lookup_kyc(
        &self,
        kid: &str,
    ) -> impl Future<Output = StoreResult<Option<(ClientPk, KycRecord)>>> + Send;

    /// Appends audit entries of their own (reads of identity data), durably before it
    /// resolves: SQLite in its writer's group commit, PostgreSQL many requests' entries
    /// in one transaction.
    fn append_audit_alone(&self, note: AuditNote) -> impl Future<Output = StoreResult<()>> + Send;
}
