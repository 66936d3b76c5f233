//! PostgreSQL backend, for several `paycc serve` nodes on one database. Uniqueness and
//! identical-init reuse are enforced by constraints and upserts, background work is
//! claimed with `FOR UPDATE SKIP LOCKED`, and every call is bounded by a timeout so an
//! unreachable database fails requests fast instead of hanging them.

mod batch;
mod conn;
mod group;
mod inits;
mod lookups;
mod transitions;

use super::appender::AuditAppender;
use super::backend::{Access, Args, Backend, Job, Operation};
use super::db::Unique;
use super::schema::{Dialect, MIGRATIONS};
use super::{ClientPk, ClientRecord, KycRecord, MerchantRecord, StoreError, StoreResult};
use batch::Batched;
use sqlx::PgConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

/// Any fixed number: every node takes this lock to apply migrations one at a time.
const MIGRATION_LOCK: i64 = 0x7061_7963_6301;

#[derive(Debug, Clone)]
pub struct PgSettings {
    pub pool_size: u32,
    /// Longest wait for a pooled connection (and for the whole call, see `call_timeout`).
    pub acquire_timeout: Duration,
    /// Longest any single store call may take.
    pub call_timeout: Duration,
}

pub struct PgStore {
    pool: PgPool,
    call_timeout: Duration,
    /// By client id.
    clients: Batched<String, ClientRecord>,
    /// By (client pk, merchant code).
    merchants: Batched<(ClientPk, String), MerchantRecord>,
    /// By kid, with the pk of the client whose merchant it belongs to.
    kycs: Batched<String, (ClientPk, KycRecord)>,
    /// Audit entries of reads, appended together.
    audits: AuditAppender,
    /// Inits arriving together, written in one transaction.
    inits: group::Groups<inits::Inits>,
    /// Moves of requests arriving together, written in one transaction.
    moves: group::Groups<transitions::Moves>,
    credentials: std::sync::Arc<super::credentials::Credentials>,
}

impl PgStore {
    /// Connects and applies pending migrations (safe from several nodes at once).
    pub async fn open(url: &str, settings: &PgSettings) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| {
                StoreError::Unavailable(format!("bad PostgreSQL URL: {}", redact(&e.to_string())))
            })?
            .application_name("paycc");
        let pool = PgPoolOptions::new()
            .max_connections(settings.pool_size)
            .acquire_timeout(settings.acquire_timeout)
            // A connection the database dropped is found out before use, not by a request.
            .test_before_acquire(true)
            .connect_lazy_with(options.clone());
        let (inits, inits_writer) = group::Groups::new(options.clone(), settings.call_timeout);
        let (moves, moves_writer) = group::Groups::new(options.clone(), settings.call_timeout);
        group::on_own_thread(async {
            tokio::join!(inits_writer, moves_writer);
        });
        let store = Self {
            clients: Batched::start(
                "postgres_client_lookups",
                options.clone(),
                settings.call_timeout,
                lookups::clients,
            ),
            merchants: Batched::start(
                "postgres_merchant_lookups",
                options.clone(),
                settings.call_timeout,
                lookups::merchants,
            ),
            kycs: Batched::start(
                "postgres_kyc_lookups",
                options.clone(),
                settings.call_timeout,
                lookups::kycs,
            ),
            audits: {
                let (pool, limit) = (pool.clone(), settings.call_timeout);
                AuditAppender::start(move |note| {
                    let job = Job {
                        access: Access::Atomic,
                        args: note,
                        op: super::ops::audit::append_op,
                    };
                    run_to_end(pool.clone(), limit, job)
                })
            },
            inits,
            moves,
            pool,
            call_timeout: settings.call_timeout,
            credentials: Default::default(),
        };
        store.bounded(store.migrate()).await?;
        Ok(store)
    }

    async fn migrate(&self) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.ctx("starting migrations")?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .ctx("taking the migration lock")?;
        sqlx::raw_sql("CREATE TABLE IF NOT EXISTS paycc_migrations (version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            .execute(&mut *tx)
            .await
            .ctx("creating the migrations table")?;
        let current: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM paycc_migrations")
                .fetch_one(&mut *tx)
                .await
                .ctx("reading the schema version")?;
        for (i, migration) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            // Embedded text with the dialect's words filled in: never input.
            sqlx::raw_sql(sqlx::AssertSqlSafe(migration.sql(Dialect::Postgres)))
                .execute(&mut *tx)
                .await
                .ctx("applying a migration")?;
            sqlx::query("INSERT INTO paycc_migrations (version) VALUES ($1)")
                .bind(i as i64 + 1)
                .execute(&mut *tx)
                .await
                .ctx("recording a migration")?;
        }
        tx.commit().await.ctx("committing migrations")
    }

    /// Runs one store call within the call timeout.
    async fn bounded<T>(&self, call: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
        within(self.call_timeout, call).await
    }
}

impl super::Store for PgStore {
    fn audited(
        self: std::sync::Arc<Self>,
        note: super::AuditNote,
    ) -> std::sync::Arc<dyn super::Store> {
        super::ops::audit::Audited::wrap(self, note)
    }
}

impl Backend for PgStore {
    type Conn = PgConnection;

    fn credentials(&self) -> &std::sync::Arc<super::credentials::Credentials> {
        &self.credentials
    }

    fn submit<A: Args, T: Send + 'static, F: Operation<PgConnection, A, T>>(
        &self,
        job: Job<A, F>,
    ) -> impl Future<Output = StoreResult<T>> + Send {
        // The job runs on a task of its own, to its end even when its caller has gone: a
        // cancelled BEGIN leaves sqlx's pooled connection inside a transaction it does not
        // know of (sqlx #4385, still so in 0.9.0), and the next borrower's writes would run
        // in it and never commit.
        let job = tokio::spawn(run_to_end(self.pool.clone(), self.call_timeout, job));
        async move {
            job.await
                .unwrap_or_else(|e| Err(StoreError::Corrupt(format!("a store call failed: {e}"))))
        }
    }

    async fn schema_version(&self) -> StoreResult<i64> {
        self.bounded(async {
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM paycc_migrations")
                .fetch_one(&self.pool)
                .await
                .ctx("reading the schema version")
        })
        .await
    }

    async fn store_init(&self, new: crate::store::NewKyc) -> StoreResult<crate::store::InitStored> {
        self.inits.write(new).await
    }

    async fn store_transition(
        &self,
        t: crate::store::Transition,
    ) -> StoreResult<Option<crate::domain::state::KycState>> {
        self.moves.write(t).await
    }

    async fn lookup_client(&self, client_id: &str) -> StoreResult<Option<ClientRecord>> {
        self.bounded(self.clients.get(client_id.to_owned())).await
    }

    async fn lookup_merchant(
        &self,
        client_pk: ClientPk,
        code: &str,
    ) -> StoreResult<Option<MerchantRecord>> {
        self.bounded(self.merchants.get((client_pk, code.to_owned())))
            .await
    }

    async fn lookup_kyc(&self, kid: &str) -> StoreResult<Option<(ClientPk, KycRecord)>> {
        self.bounded(self.kycs.get(kid.to_owned())).await
    }

    async fn append_audit_alone(&self, note: super::AuditNote) -> StoreResult<()> {
        self.audits.append(note).await
    }
}

/// Runs a job on a pooled connection (in a transaction of its own when it is atomic). Past
/// `limit` it is given up and its connection closed rather than pooled again, since it
/// may be stopped anywhere, a transaction's BEGIN included.
async fn run_to_end<A: Args, T: Send + 'static, F: Operation<PgConnection, A, T>>(
    pool: PgPool,
    limit: Duration,
    Job { access, args, op }: Job<A, F>,
) -> StoreResult<T> {
    // The pool bounds the wait for a connection (PAYCC_DB_ACQUIRE_TIMEOUT).
    let mut conn = pool.acquire().await.ctx("taking a connection")?;
    let metrics = crate::metrics::metrics();
    metrics.postgres_connections.set(i64::from(pool.size()));
    metrics
        .postgres_idle_connections
        .set(pool.num_idle() as i64);
    let work = async {
        if access == Access::Atomic {
            let mut tx = sqlx::Connection::begin(&mut *conn)
                .await
                .ctx("starting a transaction")?;
            let done = op(&mut tx, &args).await?;
            tx.commit().await.ctx("committing a transaction")?;
            Ok(done)
        } else {
            op(&mut conn, &args).await
        }
    };
    let outcome = within(limit, work).await;
    if let Err(StoreError::Unavailable(_)) = outcome {
        conn.close_on_drop();
    }
    outcome
}

/// `call`'s result, or `Unavailable` once `limit` has passed without one.
async fn within<T>(limit: Duration, call: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
    tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
        Err(StoreError::Unavailable(format!(
            "no answer from PostgreSQL within {limit:?}"
        )))
    })
}

/// Drops a password from anything that quotes a connection URL.
fn redact(text: &str) -> String {
    match (text.find("://"), text.find('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &text[..s], &text[at..]),
        _ => text.to_owned(),
    }
}

/// Attaches what we were doing to a database error; a unique violation becomes
/// `Conflict`, a lost or unreachable server `Unavailable`.
pub(crate) trait Ctx<T> {
    fn ctx(self, context: &'static str) -> StoreResult<T>;
}

impl<T> Ctx<T> for Result<T, sqlx::Error> {
    fn ctx(self, context: &'static str) -> StoreResult<T> {
        self.map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(Unique::from_postgres(db.constraint()))
            }
            // A dropped or half-open connection surfaces as I/O, TLS or protocol trouble.
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(format!("{context}: {e}")),
            sqlx::Error::Database(db)
                if db
                    .code()
                    .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")) =>
            {
                StoreError::Unavailable(format!("{context}: {e}"))
            }
            _ => StoreError::Backend {
                context,
                source: Box::new(e),
            },
        })
    }
}
