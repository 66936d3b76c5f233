//! Prometheus metrics for the process, served at `/metrics` on the ops listener in the
//! Prometheus text format. Every family is named `paycc_…`. Label values come from short
//! fixed lists (route templates, methods, states, outcomes, reasons, queue names): never a
//! kid, custId, client id, secret or anything a customer typed.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::collections::HashMap;
use std::sync::{LazyLock, RwLock};
use std::time::Duration;

pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route template with its parameters as `:name`
    /// (`/v1/service/paycc/kyc/status/:kid`; braces in a label value trip some scrapers'
    /// parsers), or `-` when none matched.
    pub route: &'static str,
    pub method: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: &'static str,
    pub method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabels {
    pub provider: &'static str,
    /// `create` or `fetch`.
    pub call: &'static str,
    /// `ok`, `timeout`, `paused` or `error`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Latencies from 0.5 ms to ~16 s.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Every family paycc keeps.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_seconds: Histograms<RouteLabels>,
    pub kyc_transitions: Family<StateLabels, Counter>,
    pub provider_calls: Family<ProviderLabels, Counter>,
    pub provider_seconds: Histograms<ProviderLabels>,
    /// 1 while the provider breaker holds calls back.
    pub provider_paused: Gauge,
    pub callback_attempts: Family<OutcomeLabels, Counter>,
    pub callbacks_due: Gauge,
    pub callback_oldest_due_seconds: Gauge,
    pub refusals: Family<ReasonLabels, Counter>,
    pub queue_depth: Family<QueueLabels, Gauge>,
    pub sqlite_batch_writes: Histogram,
    pub sqlite_commit_seconds: Histogram,
    pub postgres_group_inits: Histogram,
    pub postgres_group_moves: Histogram,
    pub postgres_connections: Gauge,
    pub postgres_idle_connections: Gauge,
    pub credentials_lookups: Family<KeptLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KeptLabels {
    /// `kept` (answered from memory) or `read` (from the database).
    pub source: &'static str,
}

impl Metrics {
    fn new() -> Self {
        let mut m = Self {
            registry: Registry::with_prefix("paycc"),
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(latency),
            kyc_transitions: Family::default(),
            provider_calls: Family::default(),
            provider_seconds: Family::new_with_constructor(latency),
            provider_paused: Gauge::default(),
            callback_attempts: Family::default(),
            callbacks_due: Gauge::default(),
            callback_oldest_due_seconds: Gauge::default(),
            refusals: Family::default(),
            queue_depth: Family::default(),
            sqlite_batch_writes: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
            sqlite_commit_seconds: latency(),
            postgres_group_inits: Histogram::new(exponential_buckets(1.0, 2.0, 9)),
            postgres_group_moves: Histogram::new(exponential_buckets(1.0, 2.0, 9)),
            postgres_connections: Gauge::default(),
            postgres_idle_connections: Gauge::default(),
            credentials_lookups: Family::default(),
        };
        let r = &mut m.registry;
        r.register(
            "http_requests",
            "API requests answered, by route template, method and HTTP status",
            m.requests.clone(),
        );
        r.register_with_unit(
            "http_request_duration",
            "Time to answer an API request",
            Unit::Seconds,
            m.request_seconds.clone(),
        );
        r.register(
            "kyc_transitions",
            "KYC requests entering each state",
            m.kyc_transitions.clone(),
        );
        r.register(
            "provider_calls",
            "Calls to the KYC provider, by call and outcome",
            m.provider_calls.clone(),
        );
        r.register_with_unit(
            "provider_call_duration",
            "Time a provider call took",
            Unit::Seconds,
            m.provider_seconds.clone(),
        );
        r.register(
            "provider_paused",
            "1 while the provider breaker holds calls back after repeated failures",
            m.provider_paused.clone(),
        );
        r.register(
            "callback_attempts",
            "Callback deliveries to merchants, by outcome (delivered, retry, dead)",
            m.callback_attempts.clone(),
        );
        r.register(
            "callbacks_due",
            "Callback events waiting for delivery (the outbox), as last counted",
            m.callbacks_due.clone(),
        );
        r.register_with_unit(
            "callback_oldest_due",
            "How long the oldest due callback event has waited, as last counted",
            Unit::Seconds,
            m.callback_oldest_due_seconds.clone(),
        );
        r.register(
            "refusals",
            "Requests refused before any work: in_flight (503), client_rate, auth_brake and journey_rate (429)",
            m.refusals.clone(),
        );
        r.register(
            "queue_depth",
            "Jobs waiting in an internal queue (sqlite_writer, sqlite_readers, postgres_*_lookups, postgres_init_groups, postgres_move_groups), as last seen",
            m.queue_depth.clone(),
        );
        r.register(
            "sqlite_batch_writes",
            "Writes committed together by the SQLite writer",
            m.sqlite_batch_writes.clone(),
        );
        r.register_with_unit(
            "sqlite_commit_duration",
            "Time the SQLite writer took for one batch, commit included",
            Unit::Seconds,
            m.sqlite_commit_seconds.clone(),
        );
        r.register(
            "postgres_group_inits",
            "Inits written together in one PostgreSQL transaction",
            m.postgres_group_inits.clone(),
        );
        r.register(
            "postgres_group_moves",
            "Moves of KYC requests written together in one PostgreSQL transaction",
            m.postgres_group_moves.clone(),
        );
        r.register(
            "postgres_connections",
            "Connections the PostgreSQL pool holds",
            m.postgres_connections.clone(),
        );
        r.register(
            "postgres_idle_connections",
            "Connections of the PostgreSQL pool not in use",
            m.postgres_idle_connections.clone(),
        );
        r.register(
            "credentials_lookups",
            "Client and merchant lookups, by source: kept (in memory, vouched for by the last credentials poll) or read (from the database)",
            m.credentials_lookups.clone(),
        );
        m
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// Everything, in the Prometheus text format (`CONTENT_TYPE`).
pub fn render() -> String {
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &METRICS.registry)
        .expect("writing to a String cannot fail");
    out
}

/// An API request answered.
pub fn request(route: &str, method: &str, status: u16, took: Duration) {
    let (route, method) = (route_label(route), method_label(method));
    METRICS
        .request_seconds
        .get_or_create(&RouteLabels { route, method })
        .observe(took.as_secs_f64());
    METRICS
        .requests
        .get_or_create(&RequestLabels {
            route,
            method,
            status,
        })
        .inc();
}

/// Route templates as labels, made once each: the router's templates are a short fixed
/// list, so keeping them for the process's life costs a few hundred bytes, and a
/// request's labels then cost no allocation.
fn route_label(template: &str) -> &'static str {
    static LABELS: LazyLock<RwLock<HashMap<String, &'static str>>> =
        LazyLock::new(Default::default);
    if let Some(label) = LABELS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(template)
    {
        return label;
    }
    let label: &'static str = template.replace('{', ":").replace('}', "").leak();
    LABELS
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .entry(template.to_owned())
        .or_insert(label)
}

fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// `n` KYC requests entered `state`.
pub fn entered(state: &'static str, n: u64) {
    METRICS
        .kyc_transitions
        .get_or_create(&StateLabels { state })
        .inc_by(n);
}

/// A callback attempt ended.
pub fn callback_attempt(result: crate::store::AttemptResult) {
    use crate::store::AttemptResult::*;
    let outcome = match result {
        Delivered => "delivered",
        RetryAt(_) => "retry",
        Dead => "dead",
    };
    METRICS
        .callback_attempts
        .get_or_create(&OutcomeLabels { outcome })
        .inc();
}

pub fn refused(reason: &'static str) {
    METRICS
        .refusals
        .get_or_create(&ReasonLabels { reason })
        .inc();
}

pub fn postgres_group_inits(inits: usize) {
    METRICS.postgres_group_inits.observe(inits as f64);
}

pub fn postgres_group_moves(moves: usize) {
    METRICS.postgres_group_moves.observe(moves as f64);
}

pub fn credentials_lookup(kept: bool) {
    let source = if kept { "kept" } else { "read" };
    METRICS
        .credentials_lookups
        .get_or_create(&KeptLabels { source })
        .inc();
}

pub fn queue(queue: &'static str, depth: usize) {
    METRICS
        .queue_depth
        .get_or_create(&QueueLabels { queue })
        .set(depth as i64);
}
