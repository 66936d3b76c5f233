//! SQLite backend: one writer thread that commits many requests' writes together
//! (group commit), and a few reader threads. WAL mode with `synchronous=FULL`, so a
//! write is acknowledged only after its batch's commit has been fsync'd.

mod conn;

use super::appender::AuditAppender;
use super::backend::{Access, Args, Backend, Job, Operation};
use super::db::Unique;
use super::ops::{clients, kyc};
use super::schema::{Dialect, MIGRATIONS};
use super::{ClientPk, ClientRecord, KycRecord, MerchantRecord, StoreError, StoreResult};
use conn::run_now;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use rusqlite::{Connection, ErrorCode};
use std::future::Future;
use std::path::Path;
use std::time::Duration;
use tokio::sync::oneshot;

/// Page cache of the writer: the index pages random keys (hashes, ids) land on stay in
/// memory instead of being read back from the file for each batch. Not larger: when a
/// b-tree rebalances, SQLite parks a page at number 262,145 for a moment, and at the
/// next commit walks the whole cache to drop pages past the end of the file; at 32 MiB
/// that walk was ~15% of the writer's time (8 MiB: writer CPU per init −8%).
const WRITER_CACHE_KIB: u32 = 8 * 1024;

const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// The most writes one transaction carries; bounds the latency a batch adds.
const MAX_BATCH: usize = 1024;

/// Writes and reads waiting for a thread, at most; past it a call is refused at once
/// (`Busy`) instead of waiting behind a queue that only grows.
const MAX_QUEUED: usize = 8 * 1024;

/// The most reads one read transaction carries, so that a long queue still lets the
/// checkpointer past the snapshot now and then.
const MAX_READ_BATCH: usize = 64;

type ReadJob = Box<dyn FnOnce(&mut Connection) + Send>;

/// One request's writes, queued for the writer's next batch.
trait WriteJob: Send {
    /// Applies the writes and keeps their result; false when they failed. Alone, the
    /// job runs in its own savepoint, so a failure leaves no trace in the batch.
    fn run(&mut self, conn: &mut Connection, alone: bool) -> bool;
    /// Answers the caller once the batch's fate is known.
    fn finish(self: Box<Self>, batch: Result<(), String>);
}

struct Queued<T, F> {
    write: F,
    result: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> WriteJob for Queued<T, F>
where
    T: Send,
    F: Fn(&mut Connection) -> StoreResult<T> + Send,
{
    fn run(&mut self, conn: &mut Connection, alone: bool) -> bool {
        let result = if alone {
            in_savepoint(conn, &self.write)
        } else {
            unwind_safe(|| (self.write)(conn))
        };
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, batch: Result<(), String>) {
        let result = match (batch, self.result) {
            (Err(e), _) => Err(StoreError::Unavailable(e)),
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err(StoreError::Corrupt("a write was never run".into())),
        };
        let _ = self.reply.send(result);
    }
}

pub struct SqliteStore {
    writer: Sender<Box<dyn WriteJob>>,
    /// Audit entries of reads, appended together; started with the first (it needs the
    /// Tokio runtime, which opening the store does not).
    audits: std::sync::OnceLock<AuditAppender>,
    readers: Sender<ReadJob>,
    /// Dropped with the store, which stops the checkpointer.
    _checkpoints: Sender<()>,
    credentials: std::sync::Arc<super::credentials::Credentials>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file, applies pending migrations and
    /// starts the writer and `readers` reader threads.
    pub fn open(path: &Path, readers: usize) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Backend {
                context: "creating the database directory",
                source: Box::new(e),
            })?;
        }
        let mut writer_conn = connect(path)?;
        writer_conn
            .execute_batch(&format!(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-{WRITER_CACHE_KIB}; PRAGMA wal_autocheckpoint=4096; PRAGMA temp_store=MEMORY;"
            ))
            .ctx("setting WAL mode")?;
        migrate(&mut writer_conn)?;

        let (writer, write_rx) = crossbeam_channel::bounded::<Box<dyn WriteJob>>(MAX_QUEUED);
        spawn(
            "paycc-sqlite-writer".into(),
            "starting the writer",
            move || writer_loop(writer_conn, write_rx),
        )?;

        let (reader_tx, read_rx) = crossbeam_channel::bounded::<ReadJob>(MAX_QUEUED);
        for i in 0..readers.max(1) {
            let conn = connect(path)?;
            conn.execute_batch("PRAGMA query_only=1;")
                .ctx("opening a reader")?;
            let rx = read_rx.clone();
            spawn(
                format!("paycc-sqlite-reader-{i}"),
                "starting a reader",
                move || reader_loop(conn, &rx),
            )?;
        }
        let (checkpoints, stop) = crossbeam_channel::bounded::<()>(0);
        let conn = connect(path)?;
        spawn(
            "paycc-sqlite-checkpointer".into(),
            "starting the checkpointer",
            move || checkpointer(conn, stop),
        )?;
        Ok(Self {
            writer,
            audits: std::sync::OnceLock::new(),
            readers: reader_tx,
            _checkpoints: checkpoints,
            credentials: Default::default(),
        })
    }

    /// Runs `f` inside the writer's current batch and resolves once that batch has
    /// committed. `f` may run twice: when another write of the batch fails, the batch is
    /// rolled back and replayed with each write in its own savepoint.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: Fn(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        write_on(&self.writer, f).await
    }

    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        // A read whose caller has gone (the request was abandoned) is not run.
        let job: ReadJob = Box::new(move |conn| {
            if !tx.is_closed() {
                let _ = tx.send(f(conn));
            }
        });
        self.readers.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => StoreError::Busy("SQLite reader"),
            TrySendError::Disconnected(_) => {
                StoreError::Unavailable("the readers have stopped".into())
            }
        })?;
        rx.await
            .map_err(|_| StoreError::Unavailable("the readers have stopped".into()))?
    }
}

impl super::Store for SqliteStore {
    fn audited(
        self: std::sync::Arc<Self>,
        note: super::AuditNote,
    ) -> std::sync::Arc<dyn super::Store> {
        super::ops::audit::Audited::wrap(self, note)
    }
}

impl Backend for SqliteStore {
    type Conn = Connection;

    fn credentials(&self) -> &std::sync::Arc<super::credentials::Credentials> {
        &self.credentials
    }

    async fn schema_version(&self) -> StoreResult<i64> {
        self.read(|conn| {
            conn.query_row("PRAGMA user_version", [], |r| r.get(0))
                .ctx("reading the schema version")
        })
        .await
    }

    async fn lookup_client(&self, client_id: &str) -> StoreResult<Option<ClientRecord>> {
        self.run(Access::Read, client_id.to_owned(), |c, id| {
            Box::pin(clients::find_client(c, id))
        })
        .await
    }

    async fn lookup_merchant(
        &self,
        client_pk: ClientPk,
        code: &str,
    ) -> StoreResult<Option<MerchantRecord>> {
        self.run(Access::Read, code.to_owned(), move |c, code| {
            Box::pin(clients::merchant_of_client(c, client_pk, code))
        })
        .await
    }

    async fn lookup_kyc(&self, kid: &str) -> StoreResult<Option<(ClientPk, KycRecord)>> {
        self.run(Access::Read, kid.to_owned(), |c, kid| {
            Box::pin(kyc::by_kid(c, kid))
        })
        .await
    }

    async fn append_audit_alone(&self, note: super::AuditNote) -> StoreResult<()> {
        let audits = self.audits.get_or_init(|| {
            let writer = self.writer.clone();
            AuditAppender::start(move |note| {
                write_on(&writer, move |conn| {
                    run_now(super::ops::audit::append_op(conn, &note))
                })
            })
        });
        audits.append(note).await
    }

    fn submit<A: Args, T: Send + 'static, F: Operation<Connection, A, T>>(
        &self,
        Job { access, args, op }: Job<A, F>,
    ) -> impl Future<Output = StoreResult<T>> + Send {
        let run = move |conn: &mut Connection| run_now(op(conn, &args));
        async move {
            // Writes all go to the writer, each inside its batch's transaction.
            match access {
                Access::Read => self.read(run).await,
                Access::Write | Access::Atomic => self.write(run).await,
            }
        }
    }
}

/// Runs `f` in the writer's next batch (see `SqliteStore::write`).
fn write_on<T, F>(
    writer: &Sender<Box<dyn WriteJob>>,
    f: F,
) -> impl Future<Output = StoreResult<T>> + Send + use<T, F>
where
    T: Send + 'static,
    F: Fn(&mut Connection) -> StoreResult<T> + Send + 'static,
{
    let (reply, answer) = oneshot::channel();
    let job = Box::new(Queued {
        write: f,
        result: None,
        reply,
    });
    let sent = writer.try_send(job).map_err(|e| match e {
        TrySendError::Full(_) => StoreError::Busy("SQLite writer"),
        TrySendError::Disconnected(_) => StoreError::Unavailable("the writer has stopped".into()),
    });
    async move {
        sent?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?
    }
}

/// Reads that queued while the last ones ran share one read transaction. Beginning and
/// ending one takes and drops SQLite's WAL read lock through `fcntl` calls: 12% of a
/// status read's CPU (perf), and sharing cut the readers' CPU per status read from
/// 8.6 to 7.3 µs. Every job in a batch was queued before the batch's snapshot is taken,
/// so a read still sees every write acknowledged before it was asked for.
fn reader_loop(mut conn: Connection, jobs: &Receiver<ReadJob>) {
    let statement =
        |conn: &Connection, sql: &str| conn.prepare_cached(sql).and_then(|mut s| s.execute([]));
    while let Ok(first) = jobs.recv() {
        let more: Vec<ReadJob> = jobs.try_iter().take(MAX_READ_BATCH - 1).collect();
        crate::metrics::queue("sqlite_readers", jobs.len());
        // Should BEGIN fail, each job still runs, in a transaction of its own.
        let shared = !more.is_empty() && statement(&conn, "BEGIN").is_ok();
        first(&mut conn);
        more.into_iter().for_each(|job| job(&mut conn));
        if shared && let Err(e) = statement(&conn, "COMMIT") {
            tracing::error!(error = %e, "sqlite could not end a read transaction");
        }
    }
}

/// Starts one of the store's named threads.
fn spawn(
    name: String,
    context: &'static str,
    run: impl FnOnce() + Send + 'static,
) -> StoreResult<()> {
    std::thread::Builder::new()
        .name(name)
        .spawn(run)
        .map(drop)
        .map_err(|e| StoreError::Backend {
            context,
            source: Box::new(e),
        })
}

fn connect(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open(path).ctx("opening the database")?;
    conn.busy_timeout(Duration::from_secs(5))
        .ctx("setting the busy timeout")?;
    conn.execute_batch("PRAGMA foreign_keys=ON;")
        .ctx("enabling foreign keys")?;
    conn.set_prepared_statement_cache_capacity(64);
    // Plans fixed at prepare time: otherwise SQLite re-prepares a cached statement on
    // every run whose plan looked at a bound value (a tenth of a status read's time).
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .ctx("fixing query plans")?;
    Ok(conn)
}

/// Applies the embedded migrations not yet recorded in `user_version`, each in one
/// immediate transaction so concurrent starters apply each exactly once.
fn migrate(conn: &mut Connection) -> StoreResult<()> {
    for (i, migration) in MIGRATIONS.iter().enumerate() {
        let version = i as i64 + 1;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .ctx("starting a migration")?;
        let current: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .ctx("reading the schema version")?;
        if current >= version {
            continue;
        }
        tx.execute_batch(&migration.sql(Dialect::Sqlite))
            .ctx("applying a migration")?;
        tx.execute_batch(&format!("PRAGMA user_version = {version}"))
            .ctx("recording the schema version")?;
        tx.commit().ctx("committing a migration")?;
    }
    Ok(())
}

fn in_savepoint<T>(
    conn: &mut Connection,
    f: impl Fn(&mut Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    // Cached statements: two parses per write were a measurable share of the writer.
    conn.prepare_cached("SAVEPOINT job")
        .and_then(|mut st| st.execute([]))
        .ctx("opening a savepoint")?;
    let result = unwind_safe(|| f(conn));
    let closed = if result.is_ok() {
        conn.prepare_cached("RELEASE job")
            .and_then(|mut st| st.execute([]))
            .map(drop)
    } else {
        conn.execute_batch("ROLLBACK TO job; RELEASE job")
    };
    closed.ctx("closing a savepoint")?;
    result
}

/// A panicking write counts as a failed one, so its rows are rolled back with it.
fn unwind_safe<T>(f: impl FnOnce() -> StoreResult<T>) -> StoreResult<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(StoreError::Corrupt(
            "a write panicked and was rolled back".into(),
        ))
    })
}

/// Copies the WAL back into the database file beside the writer instead of inside it:
/// a checkpoint at commit time stalled the writer (and every request in its batch) for
/// tens of milliseconds. Passive checkpoints never block the writer or the readers.
/// Once the writer has been idle for a tick with everything copied back, the WAL is
/// truncated: reads after a burst of writes otherwise kept searching a large WAL.
fn checkpointer(conn: Connection, stop: Receiver<()>) {
    let mut last_size = -1;
    while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
        stop.recv_timeout(CHECKPOINT_EVERY)
    {
        let passive = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        });
        let idle_and_done = match passive {
            Ok((size, copied)) => {
                let idle = size > 0 && size == copied && size == last_size;
                last_size = size;
                idle
            }
            Err(e) => {
                tracing::warn!(error = %e, "sqlite checkpoint failed; will retry");
                false
            }
        };
        if idle_and_done {
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "sqlite WAL truncation failed; will retry");
            }
            last_size = -1;
        }
    }
}

/// Group commit: every write queued while the last batch committed goes into one
/// transaction and one fsync. Writes run side by side without savepoints (a savepoint
/// per write copied each page it touched, a tenth of the writer's time); if any of them
/// fails, the batch is rolled back and replayed with each write alone in a savepoint,
/// so the failure leaves no trace and the others still commit.
fn writer_loop(mut conn: Connection, jobs: Receiver<Box<dyn WriteJob>>) {
    let mut batch: Vec<Box<dyn WriteJob>> = Vec::with_capacity(MAX_BATCH);
    let metrics = crate::metrics::metrics();
    while let Ok(first) = jobs.recv() {
        batch.push(first);
        batch.extend(jobs.try_iter().take(MAX_BATCH - 1));
        crate::metrics::queue("sqlite_writer", jobs.len());
        let started = std::time::Instant::now();
        let outcome = run_batch(&mut conn, &mut batch);
        metrics
            .sqlite_commit_seconds
            .observe(started.elapsed().as_secs_f64());
        metrics.sqlite_batch_writes.observe(batch.len() as f64);
        for job in batch.drain(..) {
            job.finish(outcome.clone());
        }
    }
}

fn run_batch(conn: &mut Connection, batch: &mut [Box<dyn WriteJob>]) -> Result<(), String> {
    let begin = |conn: &Connection| {
        conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| {
            tracing::error!(error = %e, "sqlite could not begin a write transaction");
            format!("could not begin a transaction: {e}")
        })
    };
    begin(conn)?;
    if !run_all(conn, batch, false)? {
        rollback(conn);
        begin(conn)?;
        run_all(conn, batch, true)?;
    }
    conn.execute_batch("COMMIT").map_err(|e| {
        tracing::error!(error = %e, "sqlite commit failed; the batch is rolled back");
        rollback(conn);
        format!("commit failed: {e}")
    })
}

/// Runs every job of the batch; whether all succeeded. An error that ended the
/// transaction itself (a full disk, I/O) fails the whole batch: the writes after it
/// would otherwise each commit on their own.
fn run_all(
    conn: &mut Connection,
    batch: &mut [Box<dyn WriteJob>],
    alone: bool,
) -> Result<bool, String> {
    let mut all_ok = true;
    for job in batch.iter_mut() {
        if !job.run(conn, alone) {
            all_ok = false;
            if conn.is_autocommit() {
                tracing::error!(
                    "a sqlite write ended its batch's transaction; the batch is rolled back"
                );
                return Err("the transaction was rolled back by the database".into());
            }
        }
    }
    Ok(all_ok)
}

/// Some errors (a full disk, I/O) end the transaction inside SQLite already.
fn rollback(conn: &Connection) {
    if !conn.is_autocommit()
        && let Err(e) = conn.execute_batch("ROLLBACK")
    {
        tracing::error!(error = %e, "sqlite rollback failed");
    }
}

/// Attaches what we were doing to a SQLite error; a unique violation becomes `Conflict`.
pub(crate) trait Ctx<T> {
    fn ctx(self, context: &'static str) -> StoreResult<T>;
}

impl<T> Ctx<T> for rusqlite::Result<T> {
    fn ctx(self, context: &'static str) -> StoreResult<T> {
        self.map_err(|e| match unique_rule(&e) {
            Some(rule) => StoreError::Conflict(rule),
            None => other_error(context, e),
        })
    }
}

/// The unique rule a write broke: SQLite names it only by its columns, in the message
/// of a `SQLITE_CONSTRAINT_UNIQUE` or `_PRIMARYKEY` error.
fn unique_rule(e: &rusqlite::Error) -> Option<Unique> {
    const UNIQUE: std::ffi::c_int = rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE;
    const PRIMARY_KEY: std::ffi::c_int = rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY;
    match e {
        rusqlite::Error::SqliteFailure(f, Some(message))
            if f.extended_code == UNIQUE || f.extended_code == PRIMARY_KEY =>
        {
            let columns = message.split_once(": ").map_or("", |(_, cols)| cols);
            Some(Unique::from_sqlite(columns))
        }
        _ => None,
    }
}

fn other_error(context: &'static str, e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::DiskFull
            | ErrorCode::CannotOpen,
        ) => StoreError::Unavailable(format!("{context}: {e}")),
        _ => StoreError::Backend {
            context,
            source: Box::new(e),
        },
    }
}
