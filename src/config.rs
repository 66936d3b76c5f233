//! Typed settings. Every setting comes from a `PAYCC_*` environment variable (or the
//! matching flag); a bad value stops the start with a one-line reason.

use crate::domain::binding::{DEFAULT_NAME_MATCH_MIN, OnMismatch};
use crate::domain::cidr::Cidr;
use crate::domain::rate::RateLimit;
use clap::{Args, ValueEnum};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the data lives and how it is sealed: shared by `serve` and every admin command.
#[derive(Clone, Args)]
pub struct StoreSettings {
    /// Database: `sqlite://PATH`, `sqlite:PATH` or a plain file path.
    #[arg(long = "database-url", env = "PAYCC_DATABASE_URL", default_value = "sqlite://data/paycc.db",
          value_parser = parse_database, global = true)]
    pub database: Database,

    /// Data keys, `ID:BASE64` (32 bytes each), comma-separated, the first one sealing new
    /// values. Without it a development key is generated beside the SQLite file. Prefer
    /// the environment variable: arguments are visible to other local users.
    #[arg(
        long = "encryption-key",
        env = "PAYCC_ENCRYPTION_KEY",
        hide_env_values = true,
        global = true
    )]
    pub encryption_key: Option<String>,

    /// Base64 key (≥ 32 bytes) for lookup hashes and API-secret hashes; derived from the
    /// data key when unset and there is one, required with more than one (`paycc keys
    /// derived-hash-key` prints the derived one). A database refuses any other.
    #[arg(
        long = "hash-key",
        env = "PAYCC_HASH_KEY",
        hide_env_values = true,
        global = true
    )]
    pub hash_key: Option<String>,

    /// SQLite reader threads (default: one per core).
    #[arg(long = "sqlite-readers", env = "PAYCC_SQLITE_READERS", global = true)]
    pub sqlite_readers: Option<usize>,

    /// PostgreSQL connections per node, besides one for each kind of batched lookup
    /// (clients, merchants, KYC requests), two for inits and two for moves of requests
    /// written in groups.
    #[arg(
        long = "db-pool-size",
        env = "PAYCC_DB_POOL_SIZE",
        default_value_t = 16,
        global = true
    )]
    pub db_pool_size: u32,

    /// Longest wait for a PostgreSQL connection before a request fails with 0x0205.
    #[arg(long = "db-acquire-timeout", env = "PAYCC_DB_ACQUIRE_TIMEOUT", default_value = "2s",
          value_parser = parse_duration, global = true)]
    pub db_acquire_timeout: Duration,

    /// Longest any one database call may take (PostgreSQL).
    #[arg(long = "db-call-timeout", env = "PAYCC_DB_CALL_TIMEOUT", default_value = "5s",
          value_parser = parse_duration, global = true)]
    pub db_call_timeout: Duration,
}

// Key material must never reach a log line through `{:?}`.
impl std::fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSettings")
            .field("database", &self.database)
            .field(
                "encryption_key",
                &self.encryption_key.as_ref().map(|_| "***"),
            )
            .field("hash_key", &self.hash_key.as_ref().map(|_| "***"))
            .field("sqlite_readers", &self.sqlite_readers)
            .field("db_pool_size", &self.db_pool_size)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    Sqlite(PathBuf),
    /// A `postgres://` URL (may hold a password: never printed).
    Postgres(String),
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(p) => write!(f, "Sqlite({})", p.display()),
            Database::Postgres(_) => f.write_str("Postgres(***)"),
        }
    }
}

fn parse_database(raw: &str) -> Result<Database, String> {
    let raw = raw.trim();
    if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
        return Ok(Database::Postgres(raw.to_owned()));
    }
    let path = raw
        .strip_prefix("sqlite://")
        .or_else(|| raw.strip_prefix("sqlite:"))
        .unwrap_or(raw);
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path.contains("://") {
        return Err(format!(
            "expected sqlite://PATH or a file path, got {raw:?}"
        ));
    }
    Ok(Database::Sqlite(PathBuf::from(path)))
}

impl Database {
    /// The folder a development key file goes into; PostgreSQL, shared by nodes, needs
    /// configured keys instead.
    pub fn key_dir(&self) -> Option<&Path> {
        match self {
            Database::Sqlite(p) => Some(p.parent().unwrap_or(Path::new("."))),
            Database::Postgres(_) => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProviderKind {
    /// paycc plays the provider and serves the journey itself.
    Sandbox,
    /// Digio's KYC product (DigiLocker Aadhaar + PAN + selfie).
    Digio,
}

/// Settings only the server needs.
#[derive(Debug, Clone, Args)]
pub struct ServeSettings {
    /// Address the API listens on (`:0` picks a free port).
    #[arg(long, env = "PAYCC_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Address of the operations endpoints `/healthz` and `/readyz`.
    #[arg(
        long = "ops-listen",
        env = "PAYCC_OPS_LISTEN",
        default_value = "127.0.0.1:9090"
    )]
    pub ops_listen: SocketAddr,

    /// Public base URL customers reach paycc at, used in KYC links
    /// (default: http://LISTEN).
    #[arg(long = "public-url", env = "PAYCC_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,

    /// KYC provider.
    #[arg(long, env = "PAYCC_PROVIDER", value_enum, default_value = "sandbox")]
    pub provider: ProviderKind,

    /// How long a KYC link stays usable, e.g. `30m`, `24h`, `10d`.
    #[arg(long = "kyc-ttl", env = "PAYCC_KYC_TTL", default_value = "24h", value_parser = parse_duration)]
    pub kyc_ttl: Duration,

    /// How often expired requests are swept.
    #[arg(long = "expiry-interval", env = "PAYCC_EXPIRY_INTERVAL", default_value = "30s",
          value_parser = parse_duration)]
    pub expiry_interval: Duration,

    /// How long an `Idempotency-Key` and its reply are kept.
    #[arg(long = "idempotency-ttl", env = "PAYCC_IDEMPOTENCY_TTL", default_value = "24h", value_parser = parse_duration)]
    pub idempotency_ttl: Duration,

    /// Waits between attempts of a failed merchant callback; after the last one the
    /// event is marked dead. Each wait varies by ±20% so retries do not arrive in step.
    #[arg(long = "callback-retry-schedule", env = "PAYCC_CALLBACK_RETRY_SCHEDULE",
          default_value = DEFAULT_RETRY_SCHEDULE, value_parser = parse_schedule)]
    pub callback_retry_schedule: RetrySchedule,

    /// Longest one callback attempt may take, connecting included.
    #[arg(long = "callback-timeout", env = "PAYCC_CALLBACK_TIMEOUT", default_value = "10s",
          value_parser = parse_duration)]
    pub callback_timeout: Duration,

    /// How often the outbox is checked for due callbacks (state changes on this node
    /// are sent at once).
    #[arg(long = "callback-poll-interval", env = "PAYCC_CALLBACK_POLL_INTERVAL", default_value = "1s",
          value_parser = parse_duration)]
    pub callback_poll_interval: Duration,

    /// How long delivered and dead callback events stay listed before they are purged.
    #[arg(long = "callback-retention", env = "PAYCC_CALLBACK_RETENTION", default_value = "30d",
          value_parser = parse_duration)]
    pub callback_retention: Duration,

    /// How long a KYC's identity data (verified identity and photo, submitted details,
    /// link) is kept after the KYC ends; then it is deleted and a tombstone (kid, custId,
    /// merchant, state, dates) stays. RBI's KYC directions ask for five years.
    #[arg(long = "retention", env = "PAYCC_RETENTION", default_value = "5y",
          value_parser = parse_duration)]
    pub retention: Duration,

    /// How long the provider's processed webhook events are remembered (to drop repeats).
    #[arg(long = "webhook-retention", env = "PAYCC_WEBHOOK_RETENTION", default_value = "30d",
          value_parser = parse_duration)]
    pub webhook_retention: Duration,

    /// How long the sandbox keeps its record of a journey (the tester's choices, the
    /// selfie) after its last step.
    #[arg(long = "sandbox-retention", env = "PAYCC_SANDBOX_RETENTION", default_value = "30d",
          value_parser = parse_duration)]
    pub sandbox_retention: Duration,

    /// Callbacks in flight at once, per node.
    #[arg(long = "callback-concurrency", env = "PAYCC_CALLBACK_CONCURRENCY", default_value_t = 32,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub callback_concurrency: u16,

    /// Callbacks of one client in flight at once, on all nodes together: a receiver that
    /// hangs holds this many deliveries, and every other client's go on.
    #[arg(long = "callback-per-client", env = "PAYCC_CALLBACK_PER_CLIENT", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub callback_per_client: u16,

    /// Deliver callbacks to loopback, private and link-local addresses too. For
    /// development only: it lets a callback URL reach internal services.
    #[arg(long = "callback-allow-private", env = "PAYCC_CALLBACK_ALLOW_PRIVATE", default_value_t = false,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub callback_allow_private: bool,

    /// The least name similarity (0–100) an approval needs: the requested name is
    /// compared with the Aadhaar and the PAN name (see the README), the lower counts.
    #[arg(long = "name-match-min", env = "PAYCC_NAME_MATCH_MIN", default_value_t = DEFAULT_NAME_MATCH_MIN,
          value_parser = clap::value_parser!(u8).range(0..=100))]
    pub name_match_min: u8,

    /// What an approval of someone other than the requested person (PAN differs, or the
    /// name is below PAYCC_NAME_MATCH_MIN) becomes: `reject` ends the KYC rejected,
    /// `review` leaves it awaiting an operator's `paycc kyc decide`.
    #[arg(long = "identity-mismatch", env = "PAYCC_IDENTITY_MISMATCH", default_value = "reject",
          value_parser = parse_on_mismatch)]
    pub identity_mismatch: OnMismatch,

    /// Let the sandbox provider serve on a public (non-loopback) PAYCC_PUBLIC_URL, for a
    /// public demo: anyone holding a link can approve it.
    #[arg(long = "allow-sandbox", env = "PAYCC_ALLOW_SANDBOX", default_value_t = false,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_sandbox: bool,

    #[command(flatten)]
    pub connections: ConnectionArgs,

    #[command(flatten)]
    pub rates: RateArgs,

    #[command(flatten)]
    pub digio: DigioArgs,
}

const HEADER_TIMEOUT: &str = "10s";
const IDLE_TIMEOUT: &str = "60s";
const MAX_CONNECTIONS: u32 = 10_000;
const MAX_IN_FLIGHT: u32 = 2048;
const SHUTDOWN_DELAY: &str = "5s";
const SHUTDOWN_GRACE: &str = "30s";

/// How long and how many connections the API listener keeps.
#[derive(Debug, Clone, Copy, Args)]
pub struct ConnectionArgs {
    /// Longest a request's head (request line and headers) may take to arrive, from its
    /// first byte; a slower connection is dropped.
    #[arg(long = "header-timeout", env = "PAYCC_HEADER_TIMEOUT", default_value = HEADER_TIMEOUT,
          value_parser = parse_duration)]
    pub header_timeout: Duration,

    /// How long a connection with no request in flight is kept open.
    #[arg(long = "idle-timeout", env = "PAYCC_IDLE_TIMEOUT", default_value = IDLE_TIMEOUT,
          value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// Requests worked on at once; past it a request is refused at once with 503 and
    /// `Retry-After: 1`. Requests waiting on a slow provider count, so leave room for
    /// inits per second × the provider's latency; beyond that, queued CPU work is
    /// ~20 µs per request per core (BENCHMARKS.md).
    #[arg(long = "max-in-flight", env = "PAYCC_MAX_IN_FLIGHT", default_value_t = MAX_IN_FLIGHT,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: u32,

    /// Connections open at once on the API listener; more wait to be accepted.
    #[arg(long = "max-connections", env = "PAYCC_MAX_CONNECTIONS", default_value_t = MAX_CONNECTIONS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// After SIGTERM, how long paycc goes on accepting connections while `/readyz`
    /// answers 503, so a load balancer stops sending before the listener closes (`0s`
    /// without one).
    #[arg(long = "shutdown-delay", env = "PAYCC_SHUTDOWN_DELAY", default_value = SHUTDOWN_DELAY,
          value_parser = parse_wait)]
    pub shutdown_delay: Duration,

    /// Then, how long requests and callback attempts in flight may take to finish
    /// before the process exits anyway.
    #[arg(long = "shutdown-grace", env = "PAYCC_SHUTDOWN_GRACE", default_value = SHUTDOWN_GRACE,
          value_parser = parse_duration)]
    pub shutdown_grace: Duration,
}

impl Default for ConnectionArgs {
    fn default() -> Self {
        let duration = |raw| parse_duration(raw).expect("the defaults parse");
        Self {
            header_timeout: duration(HEADER_TIMEOUT),
            idle_timeout: duration(IDLE_TIMEOUT),
            max_in_flight: MAX_IN_FLIGHT,
            max_connections: MAX_CONNECTIONS,
            shutdown_delay: duration(SHUTDOWN_DELAY),
            shutdown_grace: duration(SHUTDOWN_GRACE),
        }
    }
}

const CLIENT_RATE: &str = "1000/s,burst=2000";
const AUTH_FAILURES: u32 = 20;
const JOURNEY_RATE: &str = "10/s,burst=100";

/// Rate limits, each kept by every node for itself.
#[derive(Debug, Clone, Args)]
pub struct RateArgs {
    /// Requests per API client and node, e.g. `200/s,burst=400`; `0` for none.
    /// `paycc client set-limit` gives one client its own.
    #[arg(long = "client-rate", env = "PAYCC_CLIENT_RATE", default_value = CLIENT_RATE,
          value_parser = RateLimit::parse)]
    pub client_rate: RateLimit,

    /// Failed authentications a source address may make in a minute; past it, its
    /// requests are refused (429) for a minute, whatever their credentials.
    #[arg(long = "auth-failures", env = "PAYCC_AUTH_FAILURES", default_value_t = AUTH_FAILURES,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub auth_failures: u32,

    /// Journey page views and posts per source address and node.
    #[arg(long = "journey-rate", env = "PAYCC_JOURNEY_RATE", default_value = JOURNEY_RATE,
          value_parser = RateLimit::parse)]
    pub journey_rate: RateLimit,

    /// Proxies (CIDRs, comma-separated) whose `X-Forwarded-For` is believed: the source
    /// address is then the last one in it that is not one of them.
    #[arg(long = "trusted-proxies", env = "PAYCC_TRUSTED_PROXIES", value_delimiter = ',',
          value_parser = Cidr::parse)]
    pub trusted_proxies: Vec<Cidr>,
}

impl Default for RateArgs {
    fn default() -> Self {
        let rate = |raw| RateLimit::parse(raw).expect("the defaults parse");
        Self {
            client_rate: rate(CLIENT_RATE),
            auth_failures: AUTH_FAILURES,
            journey_rate: rate(JOURNEY_RATE),
            trusted_proxies: Vec::new(),
        }
    }
}

fn parse_on_mismatch(raw: &str) -> Result<OnMismatch, String> {
    OnMismatch::parse(raw).ok_or_else(|| format!("expected reject or review, got {raw:?}"))
}

/// About a day: 10s, 1m, 5m, 15m, 30m, 1h, 2h, 4h, 8h, 8h.
const DEFAULT_RETRY_SCHEDULE: &str = "10s,1m,5m,15m,30m,1h,2h,4h,8h,8h";

const DIGIO_CONNECT_TIMEOUT: &str = "3s";
const DIGIO_TIMEOUT: &str = "10s";
const DIGIO_STALE_AFTER: &str = "30s";
const DIGIO_RECONCILE_AFTER: &str = "10m";
const DIGIO_RECONCILE_INTERVAL: &str = "60s";
const DIGIO_PAUSE: &str = "30s";
const DIGIO_FAILURES_BEFORE_PAUSE: u32 = 5;

/// The Digio provider (`PAYCC_PROVIDER=digio`). The first six are required then;
/// `paycc serve` names any that are missing. Production: API `https://api.digio.in`,
/// gateway `https://app.digio.in`; Digio's sandbox: `https://ext.digio.in:444` and
/// `https://ext.digio.in`.
#[derive(Clone, Args)]
pub struct DigioArgs {
    /// Digio API base URL.
    #[arg(long = "digio-api-url", env = "PAYCC_DIGIO_API_URL", value_parser = parse_public_url)]
    pub api_url: Option<String>,
    /// Digio gateway (browser) base URL.
    #[arg(long = "digio-gateway-url", env = "PAYCC_DIGIO_GATEWAY_URL", value_parser = parse_public_url)]
    pub gateway_url: Option<String>,
    #[arg(
        long = "digio-client-id",
        env = "PAYCC_DIGIO_CLIENT_ID",
        hide_env_values = true
    )]
    pub client_id: Option<String>,
    #[arg(
        long = "digio-client-secret",
        env = "PAYCC_DIGIO_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub client_secret: Option<String>,
    /// The KYC workflow template configured in Digio, e.g. `DIGILOCKER_AADHAAR_PAN`.
    #[arg(long = "digio-template", env = "PAYCC_DIGIO_TEMPLATE")]
    pub template: Option<String>,
    /// Secret Digio signs webhooks with (`X-Digio-Checksum`).
    #[arg(
        long = "digio-webhook-secret",
        env = "PAYCC_DIGIO_WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub webhook_secret: Option<String>,
    /// Where Digio sends customers after the journey when the init gave no `redirectUrl`.
    #[arg(long = "digio-redirect-url", env = "PAYCC_DIGIO_REDIRECT_URL", value_parser = parse_public_url)]
    pub redirect_url: Option<String>,
    #[arg(long = "digio-connect-timeout", env = "PAYCC_DIGIO_CONNECT_TIMEOUT", default_value = DIGIO_CONNECT_TIMEOUT, value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Longest one call to Digio may take; an init then answers 0x0204.
    #[arg(long = "digio-timeout", env = "PAYCC_DIGIO_TIMEOUT", default_value = DIGIO_TIMEOUT, value_parser = parse_duration)]
    pub timeout: Duration,
    /// A status read asks Digio again when the stored state is older than this.
    #[arg(long = "digio-stale-after", env = "PAYCC_DIGIO_STALE_AFTER", default_value = DIGIO_STALE_AFTER, value_parser = parse_duration)]
    pub stale_after: Duration,
    /// The reconciler re-reads open requests not checked for this long.
    #[arg(long = "digio-reconcile-after", env = "PAYCC_DIGIO_RECONCILE_AFTER", default_value = DIGIO_RECONCILE_AFTER, value_parser = parse_duration)]
    pub reconcile_after: Duration,
    #[arg(long = "digio-reconcile-interval", env = "PAYCC_DIGIO_RECONCILE_INTERVAL", default_value = DIGIO_RECONCILE_INTERVAL, value_parser = parse_duration)]
    pub reconcile_interval: Duration,
    /// After this many failures in a row, calls to Digio pause…
    #[arg(long = "digio-failures-before-pause", env = "PAYCC_DIGIO_FAILURES_BEFORE_PAUSE", default_value_t = DIGIO_FAILURES_BEFORE_PAUSE)]
    pub failures_before_pause: u32,
    /// …for this long.
    #[arg(long = "digio-pause", env = "PAYCC_DIGIO_PAUSE", default_value = DIGIO_PAUSE, value_parser = parse_duration)]
    pub pause: Duration,
}

impl Default for DigioArgs {
    fn default() -> Self {
        let d = |s| parse_duration(s).expect("built-in defaults parse");
        Self {
            api_url: None,
            gateway_url: None,
            client_id: None,
            client_secret: None,
            template: None,
            webhook_secret: None,
            redirect_url: None,
            connect_timeout: d(DIGIO_CONNECT_TIMEOUT),
            timeout: d(DIGIO_TIMEOUT),
            stale_after: d(DIGIO_STALE_AFTER),
            reconcile_after: d(DIGIO_RECONCILE_AFTER),
            reconcile_interval: d(DIGIO_RECONCILE_INTERVAL),
            failures_before_pause: DIGIO_FAILURES_BEFORE_PAUSE,
            pause: d(DIGIO_PAUSE),
        }
    }
}

// Credentials must never reach a log line through `{:?}`.
impl std::fmt::Debug for DigioArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigioArgs")
            .field("api_url", &self.api_url)
            .field("gateway_url", &self.gateway_url)
            .field("template", &self.template)
            .finish_non_exhaustive()
    }
}

/// Logging, for every command. Logs go to stderr; command output to stdout.
#[derive(Debug, Clone, Args)]
pub struct LogSettings {
    /// Log filter (tracing-subscriber syntax), e.g. `info` or `paycc=debug`.
    #[arg(
        long = "log",
        env = "PAYCC_LOG",
        default_value = "info,sqlx=warn",
        global = true
    )]
    pub log: String,

    /// Write logs as JSON lines.
    #[arg(long = "log-json", env = "PAYCC_LOG_JSON", default_value_t = false, global = true,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub log_json: bool,
}

impl ServeSettings {
    pub fn public_url(&self, bound: SocketAddr) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"))
    }
}

fn parse_public_url(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim().trim_end_matches('/');
    let ok = (trimmed.starts_with("http://") || trimmed.starts_with("https://"))
        && trimmed.len() > "https://".len()
        && !trimmed.contains(['?', '#', ' ']);
    if ok {
        Ok(trimmed.to_owned())
    } else {
        Err("expected an http(s) base URL without query".into())
    }
}

/// `250ms`, `90s`, `15m`, `24h`, `10d`.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    match millis(raw)? {
        0 => Err("a duration must be positive".into()),
        n => Ok(Duration::from_millis(n)),
    }
}

/// The milliseconds a duration like `30s` stands for.
fn millis(raw: &str) -> Result<u64, String> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (digits, unit) = raw.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("expected a duration like 30s, 15m, 24h, 10d or 5y, got {raw:?}"))?;
    let millis = match unit {
        "ms" => n,
        "s" => n * 1000,
        "m" => n * 60_000,
        "h" => n * 3_600_000,
        "d" => n * 86_400_000,
        // 366 days: a retention in years never ends before the same date that many
        // calendar years later, leap days included.
        "y" => n * 366 * 86_400_000,
        _ => {
            return Err(format!(
                "expected a duration unit ms, s, m, h, d or y, got {raw:?}"
            ));
        }
    };
    Ok(millis)
}

/// `parse_duration` for a wait that may be skipped: `0s` is none.
fn parse_wait(raw: &str) -> Result<Duration, String> {
    millis(raw).map(Duration::from_millis)
}

/// The waits before each retry of a failed callback, e.g. `10s,1m,5m`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(pub Vec<Duration>);

fn parse_schedule(raw: &str) -> Result<RetrySchedule, String> {
    let waits = raw
        .split(',')
        .map(parse_duration)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RetrySchedule(waits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("h").is_err());
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(
            parse_duration("5y"),
            Ok(Duration::from_secs(5 * 366 * 86_400))
        );
        assert_eq!(
            parse_schedule("1s, 2m"),
            Ok(RetrySchedule(vec![
                Duration::from_secs(1),
                Duration::from_secs(120)
            ]))
        );
        assert!(parse_schedule("1s,,2s").is_err());
        let day: Duration = parse_schedule(DEFAULT_RETRY_SCHEDULE)
            .unwrap()
            .0
            .iter()
            .sum();
        assert!((23..=25).contains(&(day.as_secs() / 3600)), "{day:?}");
    }

    #[test]
    fn databases() {
        assert_eq!(
            parse_database("sqlite://data/x.db"),
            Ok(Database::Sqlite("data/x.db".into()))
        );
        assert_eq!(
            parse_database("/tmp/x.db"),
            Ok(Database::Sqlite("/tmp/x.db".into()))
        );
        assert_eq!(
            parse_database("postgres://h/db"),
            Ok(Database::Postgres("postgres://h/db".into()))
        );
        assert!(parse_database("mysql://h/db").is_err());
    }
}
