//! Assembling paycc: keys, store, provider, service, router and background work.

use crate::config::{
    ConnectionArgs, Database, DigioArgs, ProviderKind, ServeSettings, StoreSettings,
};
use crate::crypto::Keyring;
use crate::delivery::CallbackSender;
use crate::provider::KycProvider;
use crate::provider::digio::{Digio, DigioSettings};
use crate::sandbox::{Sandbox, StoredJourneys};
use crate::service::{Clock, Service, ServiceError, ServiceSettings, SystemClock};
use crate::store::postgres::{PgSettings, PgStore};
use crate::store::{Store, sqlite::SqliteStore};
use crate::workers::{CallbackWorker, periodically};
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Why paycc could not start, in one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

const DEV_KEY_FILE: &str = "paycc.dev.key";

/// Opens the store named by the settings, applying migrations.
pub async fn open_store(settings: &StoreSettings) -> Result<Arc<dyn Store>, StartError> {
    match &settings.database {
        Database::Postgres(url) => {
            let pg = PgSettings {
                pool_size: settings.db_pool_size.max(1),
                acquire_timeout: settings.db_acquire_timeout,
                call_timeout: settings.db_call_timeout,
            };
            let store = PgStore::open(url, &pg)
                .await
                .map_err(|e| StartError(format!("cannot open the PostgreSQL database: {e}")))?;
            Ok(Arc::new(store))
        }
        Database::Sqlite(path) => {
            let readers = settings
                .sqlite_readers
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
            let store = SqliteStore::open(path, readers).map_err(|e| {
                StartError(format!(
                    "cannot open the SQLite database {}: {e}",
                    path.display()
                ))
            })?;
            Ok(Arc::new(store))
        }
    }
}

/// The configured keys, or a development key file beside the database (created on
/// first use, mode 0600). A database without its key file is refused rather than
/// given a new key that could not open its data. The flag says a dev key is in use.
pub fn load_keys(settings: &StoreSettings) -> Result<(Keyring, bool), StartError> {
    let bad = |e: crate::crypto::CryptoError| {
        StartError(format!("PAYCC_ENCRYPTION_KEY/PAYCC_HASH_KEY: {e}"))
    };
    if let Some(spec) = &settings.encryption_key {
        return Keyring::from_config(spec, settings.hash_key.as_deref())
            .map(|k| (k, false))
            .map_err(bad);
    }
    let Some(dir) = settings.database.key_dir() else {
        return Err(StartError(
            "PostgreSQL needs PAYCC_ENCRYPTION_KEY (and PAYCC_HASH_KEY), the same on every node: generate each with `openssl rand -base64 32`".into(),
        ));
    };
    let file = dir.join(DEV_KEY_FILE);
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Database::Sqlite(db) = &settings.database
                && db.metadata().is_ok_and(|m| m.len() > 0)
            {
                return Err(StartError(format!(
                    "{} exists but its key file {} is missing; set PAYCC_ENCRYPTION_KEY to the key it was written with",
                    db.display(),
                    file.display()
                )));
            }
            tracing::warn!(file = %file.display(), "generated a development encryption key beside the database");
            write_dev_key(dir, &file)?
        }
        Err(e) => return Err(StartError(format!("cannot read {}: {e}", file.display()))),
    };
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
            .map(str::trim)
    };
    let data = field("encryption")
        .ok_or_else(|| StartError(format!("{} has no encryption= line", file.display())))?;
    Keyring::from_config(data, field("hash"))
        .map(|k| (k, true))
        .map_err(bad)
}

/// What `paycc keys derived-hash-key` prints.
pub fn derived_hash_key(settings: &StoreSettings) -> Result<String, StartError> {
    if settings.hash_key.is_some() {
        return Err(StartError(
            "PAYCC_HASH_KEY is set: it is the hash key in use; keep it as it is when adding data keys".into(),
        ));
    }
    let Some(spec) = &settings.encryption_key else {
        return Err(StartError(
            "PAYCC_ENCRYPTION_KEY is not set: the development key file names its hash key on its hash= line".into(),
        ));
    };
    Keyring::derived_hash_key(spec).map_err(|e| StartError(format!("PAYCC_ENCRYPTION_KEY: {e}")))
}

fn write_dev_key(dir: &Path, file: &Path) -> Result<String, StartError> {
    let (data, hash) = Keyring::generate_dev();
    let text = format!(
        "# paycc development keys: whoever holds this file can read the database beside it.\nencryption={data}\nhash={hash}\n"
    );
    let fail = |e: std::io::Error| {
        StartError(format!(
            "cannot create the key file {}: {e}",
            file.display()
        ))
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(file).map_err(fail)?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(fail)?;
    Ok(text)
}

/// The store and the keys, once the keys are known to be the ones the database's
/// hashes were made with.
async fn open_with_keys(
    settings: &StoreSettings,
    keys: &Keyring,
) -> Result<Arc<dyn Store>, StartError> {
    let store = open_store(settings).await?;
    let fingerprint = keys.hash_key_fingerprint();
    let kept = store
        .pin_setting(
            HASH_KEY_FINGERPRINT,
            &fingerprint,
            crate::store::UnixMs::of(time::OffsetDateTime::now_utc()),
        )
        .await
        .map_err(|e| {
            StartError(format!(
                "cannot check the hash key against the database: {e}"
            ))
        })?;
    if kept != fingerprint {
        return Err(StartError(
            "PAYCC_HASH_KEY differs from the hash key this database was first started with: every API secret and PAN/mobile lookup would miss; start with the original PAYCC_HASH_KEY (or, if it was never set, with the original first PAYCC_ENCRYPTION_KEY key)".into(),
        ));
    }
    Ok(store)
}

/// The setting under which the lookup-hash key's fingerprint is kept.
const HASH_KEY_FINGERPRINT: &str = "hash_key_fingerprint";

/// A service for admin commands, on the same store and keys as the server, once the
/// data keys pass the start check.
pub async fn admin_service(settings: &StoreSettings) -> Result<Arc<Service>, StartError> {
    let service = admin_service_unchecked(settings).await?;
    admit_data_keys(&service).await?;
    Ok(service)
}

/// `admin_service` without the data-key check: `paycc keys status` still reports what a
/// removed key seals.
pub async fn admin_service_unchecked(settings: &StoreSettings) -> Result<Arc<Service>, StartError> {
    let keys = Arc::new(load_keys(settings)?.0);
    let store = open_with_keys(settings, &keys).await?;
    // Admin commands never reach a provider; the sandbox is the inert choice.
    let provider = Arc::new(Sandbox::new(
        Arc::new(StoredJourneys(store.clone())),
        keys.clone(),
        "http://localhost",
    ));
    Ok(Arc::new(Service::new(
        store,
        provider,
        keys,
        ServiceSettings {
            operator: operator(),
            ..ServiceSettings::offline(Duration::from_secs(86_400))
        },
        Arc::new(SystemClock),
    )))
}

/// Refuses to go on without a data key that still seals values (see
/// `Admin::admit_data_keys`).
async fn admit_data_keys(service: &Service) -> Result<(), StartError> {
    service.admin.admit_data_keys().await.map_err(|e| match e {
        ServiceError::Refused(why) => StartError(why),
        other => StartError(format!(
            "cannot check the data keys against the database: {other}"
        )),
    })
}

/// Who runs this command, as the audit trail names an operator: `cli:USER@HOST`.
fn operator() -> String {
    let user = ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into());
    format!("cli:{user}@{host}")
}

/// A bound, ready-to-run server.
pub struct Server {
    listener: TcpListener,
    ops_listener: TcpListener,
    router: axum::Router,
    service: Arc<Service>,
    public_url: String,
    expiry_interval: Duration,
    reconcile_interval: Duration,
    callbacks: CallbackWorker,
    connections: ConnectionArgs,
}

impl Server {
    pub async fn bind(
        store_settings: &StoreSettings,
        serve: &ServeSettings,
    ) -> Result<Self, StartError> {
        Self::bind_with_clock(store_settings, serve, Arc::new(SystemClock)).await
    }

    /// `bind`, with the service reading the time from `clock` (tests move it).
    pub async fn bind_with_clock(
        store_settings: &StoreSettings,
        serve: &ServeSettings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        // Before anything is created (a key file, a database, a pinned hash key) that a
        // corrected start would then have to live with.
        refuse_unsafe_public_start(serve, store_settings)?;
        let (keys, dev_key) = load_keys(store_settings)?;
        if dev_key {
            tracing::warn!(
                "using the development encryption key kept beside the database; set PAYCC_ENCRYPTION_KEY in production"
            );
        }
        let keys = Arc::new(keys);
        let store = open_with_keys(store_settings, &keys).await?;
        let listener = TcpListener::bind(serve.listen)
            .await
            .map_err(|e| StartError(format!("cannot listen on {}: {e}", serve.listen)))?;
        let ops_listener = TcpListener::bind(serve.ops_listen).await.map_err(|e| {
            StartError(format!(
                "cannot listen on {} (PAYCC_OPS_LISTEN): {e}",
                serve.ops_listen
            ))
        })?;
        let bound = listener
            .local_addr()
            .map_err(|e| StartError(format!("no local address: {e}")))?;
        let public_url = serve.public_url(bound);
        let provider: Arc<dyn KycProvider> = match serve.provider {
            ProviderKind::Sandbox => Arc::new(Sandbox::new(
                Arc::new(StoredJourneys(store.clone())),
                keys.clone(),
                &public_url,
            )),
            ProviderKind::Digio => {
                Arc::new(Digio::new(digio_settings(&serve.digio)?).map_err(StartError)?)
            }
        };
        let provider = Arc::new(crate::provider::Measured(provider));
        let service = Arc::new(Service::new(
            store,
            provider,
            keys,
            ServiceSettings {
                kyc_ttl: serve.kyc_ttl,
                stale_after: serve.digio.stale_after,
                refresh_timeout: serve.digio.timeout,
                reconcile_after: serve.digio.reconcile_after,
                idempotency_ttl: serve.idempotency_ttl,
                callback_schedule: serve.callback_retry_schedule.0.clone(),
                callback_retention: serve.callback_retention,
                retention: serve.retention,
                webhook_retention: serve.webhook_retention,
                sandbox_retention: serve.sandbox_retention,
                // Well past the longest an attempt can take, recording included.
                callback_lease: serve.callback_timeout * 2 + Duration::from_secs(1),
                callback_per_client: serve.callback_per_client,
                name_match_min: serve.name_match_min,
                on_mismatch: serve.identity_mismatch,
                operator: crate::service::SERVER_ACTOR.to_owned(),
            },
            clock,
        ));
        admit_data_keys(&service).await?;
        let callbacks = CallbackWorker {
            sender: Arc::new(
                CallbackSender::new(serve.callback_timeout, serve.callback_allow_private)
                    .map_err(StartError)?,
            ),
            poll: serve.callback_poll_interval,
            concurrency: usize::from(serve.callback_concurrency),
        };
        if serve.callback_allow_private {
            tracing::warn!(
                "PAYCC_CALLBACK_ALLOW_PRIVATE is on: callbacks may reach loopback and private addresses"
            );
        }
        let router = crate::http::router(
            service.clone(),
            &public_url,
            serve.connections.max_in_flight,
            serve.rates.clone(),
        );
        Ok(Self {
            listener,
            ops_listener,
            router,
            service,
            public_url,
            expiry_interval: serve.expiry_interval,
            reconcile_interval: serve.digio.reconcile_interval,
            callbacks,
            connections: serve.connections,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn ops_addr(&self) -> SocketAddr {
        self.ops_listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    pub fn service(&self) -> Arc<Service> {
        self.service.clone()
    }

    /// Serves until `shutdown` resolves; then stops gracefully: `/readyz` answers 503 at
    /// once, connections are still accepted for `PAYCC_SHUTDOWN_DELAY`, and requests and
    /// callback attempts in flight get `PAYCC_SHUTDOWN_GRACE` to finish. Every write a
    /// request was told of is committed before this returns.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (draining, drained) = watch::channel(false);
        let expiry = self.service.clone();
        let sweeper = tokio::spawn(periodically(
            self.expiry_interval,
            "expired KYC requests whose link ran out",
            move || {
                let service = expiry.clone();
                async move { service.status.expire_due().await }
            },
        ));
        // Re-reads requests a remote provider may have moved without telling us.
        let reconcile = self.service.clone();
        let reconciler = tokio::spawn(periodically(
            self.reconcile_interval,
            "reconciled requests with the provider",
            move || {
                let service = reconcile.clone();
                async move { service.sync.reconcile_once().await }
            },
        ));
        // Credentials are kept in memory only while this vouches for them.
        let credentials = self.service.clone();
        let vouching = tokio::spawn(async move { credentials.auth.watch_credentials().await });
        let mut deliverer = tokio::spawn(self.callbacks.run(self.service.clone(), drained.clone()));
        let ops = axum::serve(
            self.ops_listener,
            crate::http::ops_router(self.service.clone(), drained),
        );
        let ops = tokio::spawn(async move { ops.await });
        let delay = self.connections.shutdown_delay;
        let stop_accepting = async move {
            shutdown.await;
            let _ = draining.send(true);
            tracing::info!(
                delay_ms = delay.as_millis() as u64,
                "shutting down: /readyz answers 503; accepting connections for the delay"
            );
            tokio::time::sleep(delay).await;
            tracing::info!("no longer accepting connections; finishing requests in flight");
        };
        let result =
            crate::http::serve(self.listener, self.router, self.connections, stop_accepting).await;
        sweeper.abort();
        reconciler.abort();
        vouching.abort();
        let grace = self.connections.shutdown_grace;
        if tokio::time::timeout(grace, &mut deliverer).await.is_err() {
            // Its claims lapse at the end of their lease; then any node sends them.
            tracing::warn!("callback attempts still in flight when the grace ran out");
            deliverer.abort();
        }
        if let Err(e) = self.service.admin.flush().await {
            tracing::error!(error = %e, "could not flush the last writes");
        }
        ops.abort();
        tracing::info!("stopped");
        result
    }
}

/// A server customers reach from elsewhere must not run the sandbox (anyone holding a
/// link approves it) unless that is asked for, nor keep its data under the development
/// key file. A loopback address is a developer's machine: the two-command start.
/// Only the host matters, so a listen address on port 0 stands for the bound one.
fn refuse_unsafe_public_start(
    serve: &ServeSettings,
    store: &StoreSettings,
) -> Result<(), StartError> {
    let public_url = serve.public_url(serve.listen);
    if is_loopback_url(&public_url) {
        return Ok(());
    }
    if serve.provider == ProviderKind::Sandbox && !serve.allow_sandbox {
        return Err(StartError(format!(
            "PAYCC_PUBLIC_URL {public_url} is not a loopback address and the provider is the sandbox, where anyone holding a link approves it: set PAYCC_PROVIDER=digio, or PAYCC_ALLOW_SANDBOX=true for a public demo"
        )));
    }
    let dev_key = store.encryption_key.is_none() && store.database.key_dir().is_some();
    if dev_key {
        return Err(StartError(format!(
            "PAYCC_PUBLIC_URL {public_url} is not a loopback address: set PAYCC_ENCRYPTION_KEY (and PAYCC_HASH_KEY) instead of the development key file"
        )));
    }
    Ok(())
}

/// `localhost`, `127.0.0.0/8` or `::1`.
fn is_loopback_url(url: &str) -> bool {
    match url::Url::parse(url)
        .ok()
        .and_then(|u| u.host().map(|h| h.to_owned()))
    {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The Digio settings, or one line naming every required one that is missing.
fn digio_settings(a: &DigioArgs) -> Result<DigioSettings, StartError> {
    let required = [
        ("PAYCC_DIGIO_API_URL", &a.api_url),
        ("PAYCC_DIGIO_GATEWAY_URL", &a.gateway_url),
        ("PAYCC_DIGIO_CLIENT_ID", &a.client_id),
        ("PAYCC_DIGIO_CLIENT_SECRET", &a.client_secret),
        ("PAYCC_DIGIO_TEMPLATE", &a.template),
        ("PAYCC_DIGIO_WEBHOOK_SECRET", &a.webhook_secret),
    ];
    let missing: Vec<&str> = required
        .iter()
        .filter(|(_, v)| v.as_deref().is_none_or(|v| v.trim().is_empty()))
        .map(|(name, _)| *name)
        .collect();
    if !missing.is_empty() {
        return Err(StartError(format!(
            "PAYCC_PROVIDER=digio needs {}",
            missing.join(", ")
        )));
    }
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    Ok(DigioSettings {
        api_url: value(&a.api_url),
        gateway_url: value(&a.gateway_url),
        client_id: value(&a.client_id),
        client_secret: value(&a.client_secret),
        template: value(&a.template),
        webhook_secret: value(&a.webhook_secret),
        default_redirect: a.redirect_url.clone(),
        connect_timeout: a.connect_timeout,
        timeout: a.timeout,
        failures_before_pause: a.failures_before_pause,
        pause: a.pause,
    })
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("stop signal received");
}
