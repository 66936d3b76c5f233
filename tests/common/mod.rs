//! A real paycc on a real socket (port 0) over a fresh SQLite file, and helpers to talk
//! to it the way a partner's backend does.
#![allow(dead_code)]

pub mod deploy;
pub mod fake_digio;
pub mod proxy;
pub mod raw;
pub mod receiver;

use base64::prelude::*;
use paycc::app::Server;
use paycc::config::{
    ConnectionArgs, Database, DigioArgs, ProviderKind, RateArgs, RetrySchedule, ServeSettings,
    StoreSettings,
};
use paycc::crypto::Keyring;
use paycc::domain::binding::{DEFAULT_NAME_MATCH_MIN, OnMismatch};
use paycc::service::Service;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

pub const PAN: &str = "ENGPK1234L";
pub const NAME: &str = "Sanjay Kumar";
pub const EMAIL: &str = "sanjay.kumar@example.com";
pub const MOBILE: &str = "6393712345";

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// PostgreSQL when a server is reachable; else the test fails, or is skipped when the
    /// user opted out (`PAYCC_TEST_SKIP=postgres`).
    pub fn postgres() -> Option<Backend> {
        postgres_server().map(|_| Backend::Postgres)
    }
}

/// Runs each named `async fn(Backend)` test once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name($crate::common::Backend::Sqlite).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                if let Some(backend) = $crate::common::Backend::postgres() {
                    super::$name(backend).await;
                }
            })*
        }
    };
}

/// The PostgreSQL server for tests: `PAYCC_TEST_POSTGRES_URL`, or the machine's local
/// server. When it is unreachable the test fails, unless the user opted out of
/// PostgreSQL tests (`PAYCC_TEST_SKIP=postgres`): then `None`, and the skip is counted.
pub fn postgres_server() -> Option<String> {
    let url = std::env::var("PAYCC_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let host_port = url
        .split("://")
        .nth(1)
        .unwrap_or("")
        .rsplit('@')
        .next()
        .unwrap_or("")
        .split('/')
        .next()
        .unwrap_or("");
    let reachable = std::net::ToSocketAddrs::to_socket_addrs(host_port)
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|addr| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
        });
    if reachable {
        return Some(url);
    }
    skip_or_fail(
        Need::Postgres,
        &format!(
            "PostgreSQL at {host_port} is unreachable (the README's test command starts the local one)"
        ),
    );
    None
}

/// What a test needs that a machine may lack.
#[derive(Debug, Clone, Copy)]
pub enum Need {
    Postgres,
    Browser,
    /// The `schemathesis` command (PyPI), for the contract run.
    Schemathesis,
}

impl Need {
    fn word(self) -> &'static str {
        match self {
            Need::Postgres => "postgres",
            Need::Browser => "browser",
            Need::Schemathesis => "schemathesis",
        }
    }
}

/// A test that cannot run fails, unless the user opted out of what it needs with
/// `PAYCC_TEST_SKIP` (e.g. `postgres,browser`). An opted-out skip is written to
/// `target/tmp/paycc-test-skips.log`, which the README's test command counts at the end.
pub fn skip_or_fail(need: Need, why: &str) {
    let opted_out = std::env::var("PAYCC_TEST_SKIP")
        .unwrap_or_default()
        .split(',')
        .any(|w| w.trim() == need.word());
    assert!(
        opted_out,
        "{why}; to skip these tests instead, set PAYCC_TEST_SKIP={}",
        need.word()
    );
    let test = std::thread::current()
        .name()
        .unwrap_or("(unnamed)")
        .to_owned();
    eprintln!("SKIPPED {test}: {why} (PAYCC_TEST_SKIP={})", need.word());
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("paycc-test-skips.log");
    let line = format!("{}\t{test}\t{why}\n", need.word());
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
    assert!(written.is_ok(), "cannot record a skip in {}", log.display());
}

/// A database of its own for one test, dropped afterwards.
pub struct TestDb {
    pub url: String,
    server: String,
    name: String,
}

impl TestDb {
    pub async fn create() -> Self {
        let server = postgres_server().expect("PostgreSQL is reachable");
        let name = format!("paycc_t_{}", paycc::crypto::random_alnum(12).to_lowercase());
        let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&server)
            .await
            .expect("connect to PostgreSQL");
        sqlx::Executor::execute(
            &mut admin,
            sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")),
        )
        .await
        .expect("create a test database");
        let (base, _) = server.rsplit_once('/').expect("a database URL");
        Self {
            url: format!("{base}/{name}"),
            server,
            name,
        }
    }

    /// Runs SQL against this test's database, for assertions the API cannot make.
    pub async fn scalar(&self, sql: &'static str) -> i64 {
        let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&self.url)
            .await
            .unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop may run inside a runtime; do the async cleanup on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut admin) =
                    <sqlx::PgConnection as sqlx::Connection>::connect(&server).await
                {
                    let _ = sqlx::Executor::execute(
                        &mut admin,
                        sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")),
                    )
                    .await;
                }
            });
        })
        .join();
    }
}

/// The wall clock, plus however far a test has moved it: expiry and staleness are tested
/// by moving it, while everything else (callback schedules, leases) keeps flowing.
pub struct TestClock(std::sync::Mutex<Duration>);

impl TestClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self(std::sync::Mutex::new(Duration::ZERO)))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl paycc::service::Clock for TestClock {
    fn now(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc() + *self.0.lock().unwrap()
    }
}

pub struct TestApp {
    /// The service's clock; `advance` it instead of waiting.
    pub clock: Arc<TestClock>,
    pub base: String,
    pub ops: String,
    pub backend: Backend,
    pub db: Option<TestDb>,
    pub http: reqwest::Client,
    pub service: Arc<Service>,
    pub client_id: String,
    pub secret: String,
    pub merchant: String,
    pub dir: TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

pub struct Options {
    pub kyc_ttl: Duration,
    pub expiry_interval: Duration,
    /// Digio settings to run with the Digio provider instead of the sandbox.
    pub digio: Option<DigioArgs>,
    /// Waits between callback attempts.
    pub callback_schedule: Vec<Duration>,
    pub callback_timeout: Duration,
    pub callback_retention: Duration,
    /// PAYCC_RETENTION, PAYCC_WEBHOOK_RETENTION and PAYCC_SANDBOX_RETENTION.
    pub retention: Duration,
    pub webhook_retention: Duration,
    pub sandbox_retention: Duration,
    /// Tests' receivers are on loopback, so private addresses are allowed unless a
    /// test says otherwise.
    pub callback_allow_private: bool,
    /// Callbacks of one client in flight at once.
    pub callback_per_client: u16,
    pub connections: ConnectionArgs,
    pub rates: RateArgs,
    pub name_match_min: u8,
    pub identity_mismatch: OnMismatch,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            kyc_ttl: Duration::from_secs(86_400),
            expiry_interval: Duration::from_secs(30),
            digio: None,
            callback_schedule: vec![Duration::from_millis(200); 5],
            callback_timeout: Duration::from_secs(2),
            callback_retention: Duration::from_secs(86_400),
            retention: Duration::from_secs(5 * 366 * 86_400),
            webhook_retention: Duration::from_secs(30 * 86_400),
            sandbox_retention: Duration::from_secs(30 * 86_400),
            callback_allow_private: true,
            callback_per_client: 4,
            connections: ConnectionArgs::default(),
            // Many tests send wrong credentials on purpose, from one address: the brake
            // on failed authentications is tested on its own (tests/abuse.rs).
            rates: RateArgs {
                auth_failures: 10_000,
                ..RateArgs::default()
            },
            name_match_min: DEFAULT_NAME_MATCH_MIN,
            identity_mismatch: OnMismatch::Reject,
        }
    }
}

/// Settings for a test's store: a SQLite file in `dir`, or the PostgreSQL database at
/// `pg_url` with fresh keys (PostgreSQL has no development key file).
pub fn store_settings(dir: &TempDir, pg_url: Option<&str>) -> StoreSettings {
    let (database, keys) = match pg_url {
        Some(url) => (
            Database::Postgres(url.to_owned()),
            Some(Keyring::generate_dev()),
        ),
        None => (Database::Sqlite(dir.path().join("paycc.db")), None),
    };
    StoreSettings {
        database,
        encryption_key: keys.as_ref().map(|k| k.0.clone()),
        hash_key: keys.map(|k| k.1),
        sqlite_readers: Some(2),
        db_pool_size: 8,
        db_acquire_timeout: Duration::from_secs(2),
        db_call_timeout: Duration::from_secs(5),
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, Options::default()).await
    }

    pub async fn spawn_with(backend: Backend, opts: Options) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let db = match backend {
            Backend::Postgres => Some(TestDb::create().await),
            Backend::Sqlite => None,
        };
        let store = store_settings(&dir, db.as_ref().map(|d| d.url.as_str()));
        Self::spawn_on(backend, db, dir, store, opts).await
    }

    /// A server on the given store settings (the outage tests point it through a proxy).
    pub async fn spawn_on(
        backend: Backend,
        db: Option<TestDb>,
        dir: TempDir,
        store: StoreSettings,
        opts: Options,
    ) -> Self {
        let serve = ServeSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            ops_listen: "127.0.0.1:0".parse().unwrap(),
            public_url: None,
            provider: if opts.digio.is_some() {
                ProviderKind::Digio
            } else {
                ProviderKind::Sandbox
            },
            kyc_ttl: opts.kyc_ttl,
            expiry_interval: opts.expiry_interval,
            idempotency_ttl: Duration::from_secs(86_400),
            callback_retry_schedule: RetrySchedule(opts.callback_schedule),
            callback_timeout: opts.callback_timeout,
            callback_poll_interval: Duration::from_millis(50),
            callback_retention: opts.callback_retention,
            retention: opts.retention,
            webhook_retention: opts.webhook_retention,
            sandbox_retention: opts.sandbox_retention,
            callback_concurrency: 8,
            callback_per_client: opts.callback_per_client,
            callback_allow_private: opts.callback_allow_private,
            name_match_min: opts.name_match_min,
            identity_mismatch: opts.identity_mismatch,
            allow_sandbox: false,
            connections: opts.connections,
            rates: opts.rates,
            digio: opts.digio.unwrap_or_default(),
        };
        let clock = TestClock::new();
        let server = Server::bind_with_clock(&store, &serve, clock.clone())
            .await
            .expect("paycc binds");
        let base = format!("http://{}", server.local_addr());
        let ops = format!("http://{}", server.ops_addr());
        let service = server.service();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        let creds = service.admin.create_client("Test partner").await.unwrap();
        let merchant = service
            .admin
            .create_merchant(&creds.client_id, "Test merchant", Some("MID693000001"))
            .await
            .unwrap();
        Self {
            clock,
            base,
            ops,
            backend,
            db,
            http: http_client(),
            service,
            client_id: creds.client_id,
            secret: creds.client_secret,
            merchant,
            dir,
            shutdown: Some(tx),
        }
    }

    /// Everything the database holds, as stored: the SQLite files, or every PostgreSQL
    /// row as JSON (binary columns appear in hex).
    pub async fn stored_bytes(&self) -> Vec<u8> {
        match &self.db {
            None => ["paycc.db", "paycc.db-wal"]
                .iter()
                .flat_map(|f| std::fs::read(self.dir.path().join(f)).unwrap_or_default())
                .collect(),
            Some(db) => {
                let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
                    .await
                    .unwrap();
                let mut all = Vec::new();
                for table in [
                    "api_clients",
                    "merchants",
                    "customers",
                    "kyc_requests",
                    "sandbox_sessions",
                ] {
                    let sql = format!(
                        "SELECT COALESCE(string_agg(row_to_json(t)::text, ''), '') FROM {table} t"
                    );
                    let text: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                        .fetch_one(&mut c)
                        .await
                        .unwrap();
                    all.extend_from_slice(text.as_bytes());
                }
                all
            }
        }
    }

    pub fn auth(&self) -> String {
        basic(&self.client_id, &self.secret)
    }

    pub fn init_body(&self) -> Value {
        init_body_for(&self.merchant)
    }

    /// Sends `body` as raw bytes with the caller's credentials; returns status, headers, text.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<String>,
        auth: Option<&str>,
    ) -> Reply {
        send(
            &self.http,
            &format!("{}{path}", self.base),
            method,
            body,
            auth,
        )
        .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(
            reqwest::Method::POST,
            path,
            Some(body.to_string()),
            Some(&self.auth()),
        )
        .await
    }

    pub async fn init(&self, body: &Value) -> Reply {
        self.post("/v1/service/paycc/init/kyc", body).await
    }

    /// Inits `body` and returns the kid and the journey link.
    pub async fn open_link(&self, body: &Value) -> (String, String) {
        let r = self.init(body).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let data = &r.json["data"];
        (
            data["kid"].as_str().unwrap().to_owned(),
            data["url"].as_str().unwrap().to_owned(),
        )
    }

    /// Inits the default customer and returns the kid.
    pub async fn init_kid(&self) -> String {
        let r = self.init(&self.init_body()).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json["data"]["kid"].as_str().unwrap().to_owned()
    }

    /// A kid for a customer no earlier init named (a PAN of its own).
    pub async fn init_kid_for_new_customer(&self) -> String {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut body = self.init_body();
        body["pan"] = json!(format!("ABCPK{:04}Z", n % 10_000));
        let r = self.init(&body).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json["data"]["kid"].as_str().unwrap().to_owned()
    }

    pub async fn status(&self, kid: &str) -> Reply {
        self.send(
            reqwest::Method::GET,
            &format!("/v1/service/paycc/kyc/status/{kid}"),
            None,
            Some(&self.auth()),
        )
        .await
    }

    pub async fn complete(&self, kid: &str, outcome: &str, face_match: u8) -> Reply {
        self.post(
            &format!("/v1/sandbox/kyc/{kid}/complete"),
            &json!({"outcome": outcome, "faceMatch": face_match}),
        )
        .await
    }

    pub async fn customer(&self, body: &Value) -> Reply {
        self.post("/v1/service/paycc/customer", body).await
    }

    /// Another API client with its own merchant, on the same server.
    pub async fn other_client(&self) -> (String, String) {
        let creds = self
            .service
            .admin
            .create_client("Other partner")
            .await
            .unwrap();
        let merchant = self
            .service
            .admin
            .create_merchant(&creds.client_id, "Other merchant", None)
            .await
            .unwrap();
        (basic(&creds.client_id, &creds.client_secret), merchant)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// HTTP clients for tests. reqwest is built without a bundled TLS provider (paycc
/// installs ring); install it here too, before any client exists.
pub fn http_builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

pub fn http_client() -> reqwest::Client {
    http_builder().build().expect("an HTTP client")
}

pub async fn get(url: String) -> reqwest::Result<reqwest::Response> {
    http_client().get(url).send().await
}

/// One request as a partner's backend makes it: JSON body, optional Basic credentials.
pub async fn send(
    http: &reqwest::Client,
    url: &str,
    method: reqwest::Method,
    body: Option<String>,
    auth: Option<&str>,
) -> Reply {
    let mut req = http.request(method, url);
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    if let Some(b) = body {
        req = req.header("Content-Type", "application/json").body(b);
    }
    Reply::from_response(req.send().await.expect("paycc answers")).await
}

/// The default customer's init body for a merchant.
pub fn init_body_for(merchant: &str) -> Value {
    json!({"pan": PAN, "name": NAME, "email": EMAIL, "mobile": MOBILE, "merchantCode": merchant})
}

/// `GET …/kyc/status/{kid}` against any server, as JSON.
pub async fn status_at(base: &str, auth: &str, kid: &str) -> Value {
    http_client()
        .get(format!("{base}/v1/service/paycc/kyc/status/{kid}"))
        .header("Authorization", auth)
        .send()
        .await
        .expect("paycc answers")
        .json()
        .await
        .expect("an envelope")
}

/// Every shape of refused credentials, with the message each gets.
pub fn auth_failures(app: &TestApp) -> Vec<(Option<String>, &'static str)> {
    vec![
        (
            None,
            "Authorization header is required (HTTP Basic with your clientId and clientSecret).",
        ),
        (
            Some(format!("Bearer {}", app.secret)),
            "Authorization must use the Basic scheme.",
        ),
        (
            Some("Basic !!!not-base64!!!".into()),
            "Authorization header is not valid Basic credentials.",
        ),
        (
            Some("Basic Og==".into()),
            "Authorization header is not valid Basic credentials.",
        ),
        (
            Some(format!("Basic {}", BASE64_STANDARD.encode("no-colon-here"))),
            "Authorization header is not valid Basic credentials.",
        ),
        (
            Some(basic("PCCNOSUCHCLIENT00", &app.secret)),
            "Invalid client credentials.",
        ),
        (
            Some(basic(&app.client_id, "pcsk_wrong")),
            "Invalid client credentials.",
        ),
    ]
}

pub fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", BASE64_STANDARD.encode(format!("{id}:{secret}")))
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    pub async fn from_response(res: reqwest::Response) -> Self {
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.expect("a readable body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            text,
            json,
        }
    }

    /// Asserts the HTTP status and the exact envelope text.
    pub fn assert_exact(&self, status: u16, envelope: &str) {
        assert_eq!((self.status, self.text.as_str()), (status, envelope));
    }

    /// The 401 envelope with `message`, the Basic challenge, and no trace of `secret`.
    pub fn assert_unauthorized(&self, message: &str, secret: &str) {
        self.assert_exact(
            401,
            &format!(r#"{{"code":"0x0201","status":"UNAUTHORIZED","message":"{message}"}}"#),
        );
        assert_eq!(
            self.header("www-authenticate"),
            Some(r#"Basic realm="paycc""#)
        );
        assert!(!self.text.contains(secret));
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub fn is_kid(s: &str) -> bool {
    paycc::domain::ids::is_kid(s)
}

/// An init that succeeded with a kid other than `old`: a refusal, whose `kid` is absent,
/// does not pass.
pub fn assert_new_kid(init: &Reply, old: &str) {
    assert_eq!(
        (init.status, init.json["code"].as_str()),
        (200, Some("0x0200")),
        "{}",
        init.text
    );
    let kid = init.json["data"]["kid"].as_str().unwrap_or_default();
    assert!(is_kid(kid) && kid != old, "{kid} after {old}");
}

/// Asserts that each `"key":` appears in `text` after the previous one.
pub fn assert_keys_in_order(text: &str, keys: &[&str]) {
    let mut at = 0;
    for k in keys {
        let needle = format!("\"{k}\":");
        match text[at..].find(&needle) {
            Some(i) => at += i + needle.len(),
            None => panic!("key {k} missing or out of order in {text}"),
        }
    }
}

/// A running node keeps credentials in memory and is promised to apply a change to a
/// client or a merchant (made by the CLI or another node) within 1 s: waits until
/// `in_force` holds, failing if it still does not 1 s after the call. The caller then
/// asserts the exact answer.
pub async fn within_a_second<F, Fut>(what: &str, mut in_force: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        if in_force().await {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not in force 1 s after the change"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
