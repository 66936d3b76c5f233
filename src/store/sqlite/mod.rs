//! SQLite backend: one writer thread that commits many requests' writes together
//! (group commit), and a few reader threads. WAL mode with `synchronous=FULL`, so a
//! write is acknowledged only after its batch's commit has been fsync'd.

mod callbacks;
mod queries;

use super::{StoreError, StoreResult};
use crossbeam_channel::{Receiver, Sender};
use rusqlite::{Connection, ErrorCode};
use std::path::Path;
use std::time::Duration;
use tokio::sync::oneshot;

/// Page cache of the writer: the index pages random keys (hashes, ids) land on stay in
/// memory instead of being read back from the file for each batch.
const WRITER_CACHE_KIB: u32 = 32 * 1024;

const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// The most writes one transaction carries; bounds the latency a batch adds.
const MAX_BATCH: usize = 1024;

const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_provider_sync.sql"),
    include_str!("migrations/0003_idempotency.sql"),
    include_str!("migrations/0004_callbacks.sql"),
    include_str!("migrations/0005_one_fingerprint_index.sql"),
    include_str!("migrations/0006_identical_by_customer.sql"),
];

type Completion = Box<dyn FnOnce(Result<(), String>) + Send>;
type WriteJob = Box<dyn FnOnce(Result<&Connection, String>) -> Completion + Send>;
type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

pub struct SqliteStore {
    writer: Sender<WriteJob>,
    readers: Sender<ReadJob>,
    /// Dropped with the store, which stops the checkpointer.
    _checkpoints: Sender<()>,
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

        let (writer, write_rx) = crossbeam_channel::unbounded::<WriteJob>();
        spawn(
            "paycc-sqlite-writer".into(),
            "starting the writer",
            move || writer_loop(writer_conn, write_rx),
        )?;

        let (reader_tx, read_rx) = crossbeam_channel::unbounded::<ReadJob>();
        for i in 0..readers.max(1) {
            let conn = connect(path)?;
            conn.execute_batch("PRAGMA query_only=1;")
                .ctx("opening a reader")?;
            let rx = read_rx.clone();
            spawn(
                format!("paycc-sqlite-reader-{i}"),
                "starting a reader",
                move || {
                    for job in rx {
                        job(&conn);
                    }
                },
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
            readers: reader_tx,
            _checkpoints: checkpoints,
        })
    }

    /// Runs `f` inside the writer's current batch (in its own savepoint, so a failing
    /// write leaves no trace) and resolves once that batch has committed.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: WriteJob = Box::new(move |conn| {
            let result = conn
                .map_err(StoreError::Unavailable)
                .and_then(|c| in_savepoint(c, f));
            Box::new(move |commit: Result<(), String>| {
                let _ = tx.send(commit.map_err(StoreError::Unavailable).and(result));
            })
        });
        self.writer
            .send(job)
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?
    }

    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.readers
            .send(Box::new(move |conn| {
                let _ = tx.send(f(conn));
            }))
            .map_err(|_| StoreError::Unavailable("the readers have stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("the readers have stopped".into()))?
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
    for (i, sql) in MIGRATIONS.iter().enumerate() {
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
        tx.execute_batch(sql).ctx("applying a migration")?;
        tx.execute_batch(&format!("PRAGMA user_version = {version}"))
            .ctx("recording the schema version")?;
        tx.commit().ctx("committing a migration")?;
    }
    Ok(())
}

fn in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    // Cached statements: two parses per write were a measurable share of the writer.
    conn.prepare_cached("SAVEPOINT job")
        .and_then(|mut st| st.execute([]))
        .ctx("opening a savepoint")?;
    // A panicking write must not leave half its rows in the shared batch.
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn))).unwrap_or_else(|_| {
            Err(StoreError::Corrupt(
                "a write panicked and was rolled back".into(),
            ))
        });
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

fn writer_loop(conn: Connection, jobs: Receiver<WriteJob>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut done: Vec<Completion> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = jobs.recv() {
        batch.push(first);
        batch.extend(jobs.try_iter().take(MAX_BATCH - 1));
        match conn.execute_batch("BEGIN IMMEDIATE") {
            Ok(()) => {
                done.extend(batch.drain(..).map(|job| job(Ok(&conn))));
                let commit = conn.execute_batch("COMMIT").map_err(|e| {
                    tracing::error!(error = %e, "sqlite commit failed; the batch is rolled back");
                    let _ = conn.execute_batch("ROLLBACK");
                    format!("commit failed: {e}")
                });
                for complete in done.drain(..) {
                    complete(commit.clone());
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "sqlite could not begin a write transaction");
                let reason = format!("could not begin a transaction: {e}");
                for job in batch.drain(..) {
                    job(Err(reason.clone()))(Err(reason.clone()));
                }
            }
        }
    }
}

/// Attaches what we were doing to a SQLite error; a unique violation becomes `Conflict`.
pub(crate) trait Ctx<T> {
    fn ctx(self, context: &'static str) -> StoreResult<T>;
}

impl<T> Ctx<T> for rusqlite::Result<T> {
    fn ctx(self, context: &'static str) -> StoreResult<T> {
        self.map_err(|e| match e.sqlite_error_code() {
            Some(ErrorCode::ConstraintViolation) if e.to_string().contains("UNIQUE") => {
                StoreError::Conflict(context)
            }
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
        })
    }
}
