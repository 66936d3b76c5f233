//! Rate limits, kept per node: a token bucket per API client, a brake on source
//! addresses that keep failing to authenticate, and a bucket per address for the
//! journey pages. Refusals are `0x0202`/429 with `Retry-After`.

use super::envelope::{ApiError, Code};
use crate::config::RateArgs;
use crate::domain::rate::{Bucket, RateLimit};
use crate::service::ApiClient;
use crate::store::ClientPk;
use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an address that failed too often is refused, and the window its failures
/// are counted in.
const BRAKE: Duration = Duration::from_secs(60);

/// Past this many remembered callers, those whose buckets have refilled are forgotten,
/// so a flood of addresses cannot grow the tables without end.
const REMEMBERED: usize = 50_000;

pub struct Limits {
    settings: RateArgs,
    started: Instant,
    clients: Mutex<HashMap<ClientPk, Bucket>>,
    failures: Mutex<HashMap<IpAddr, Strikes>>,
    journeys: Mutex<HashMap<IpAddr, Bucket>>,
}

/// An address's failed authentications in its current window.
struct Strikes {
    since: Duration,
    count: u32,
    refused_until: Option<Duration>,
}

impl Strikes {
    /// A window with no failure yet, opened at `now`.
    fn opened(now: Duration) -> Self {
        Self {
            since: now,
            count: 0,
            refused_until: None,
        }
    }
}

impl Limits {
    pub fn new(settings: RateArgs) -> Self {
        Self {
            settings,
            started: Instant::now(),
            clients: Mutex::default(),
            failures: Mutex::default(),
            journeys: Mutex::default(),
        }
    }

    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// Where a request comes from: the peer, or, when the peer is a trusted proxy, the
    /// last address in `X-Forwarded-For` that is not a trusted proxy.
    pub fn source(&self, parts: &Parts) -> IpAddr {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        if !self.trusted(peer) {
            return peer;
        }
        forwarded_for(&parts.headers)
            .into_iter()
            .rev()
            .find(|ip| !self.trusted(*ip))
            .unwrap_or(peer)
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.settings.trusted_proxies.iter().any(|c| c.contains(ip))
    }

    /// Refused while the address is braked for failing to authenticate.
    pub fn check_address(&self, ip: IpAddr) -> Result<(), ApiError> {
        let now = self.now();
        let failures = lock(&self.failures);
        match failures.get(&ip).and_then(|s| s.refused_until) {
            Some(until) if until > now => {
                crate::metrics::refused("auth_brake");
                Err(too_many(until - now))
            }
            _ => Ok(()),
        }
    }

    /// Counts a failed authentication; past the limit the address is braked.
    pub fn failed_authentication(&self, ip: IpAddr) {
        let now = self.now();
        let mut failures = lock(&self.failures);
        forget_some(&mut failures, |s| {
            s.refused_until.is_none_or(|until| until <= now) && now - s.since > BRAKE
        });
        let strikes = failures.entry(ip).or_insert_with(|| Strikes::opened(now));
        if now - strikes.since > BRAKE {
            *strikes = Strikes::opened(now);
        }
        strikes.count += 1;
        if strikes.count >= self.settings.auth_failures {
            tracing::warn!(source = %ip, "braking an address that keeps failing to authenticate");
            strikes.refused_until = Some(now + BRAKE);
        }
    }

    /// Takes one of the client's tokens.
    pub fn admit_client(&self, client: &ApiClient) -> Result<(), ApiError> {
        let limit = client.rate_limit.unwrap_or(self.settings.client_rate);
        self.take(&self.clients, client.pk, limit).map_err(|wait| {
            crate::metrics::refused("client_rate");
            too_many(wait)
        })
    }

    /// Takes one of the address's journey tokens; when none is left, how long until one is.
    pub fn admit_journey(&self, ip: IpAddr) -> Result<(), Duration> {
        self.take(&self.journeys, ip, self.settings.journey_rate)
            .inspect_err(|_| crate::metrics::refused("journey_rate"))
    }

    fn take<K: Eq + Hash>(
        &self,
        buckets: &Mutex<HashMap<K, Bucket>>,
        key: K,
        limit: RateLimit,
    ) -> Result<(), Duration> {
        if limit.is_unlimited() {
            return Ok(());
        }
        let now = self.now();
        let mut buckets = lock(buckets);
        forget_some(&mut buckets, |b| b.is_full(limit, now));
        buckets
            .entry(key)
            .or_insert_with(|| Bucket::full(limit, now))
            .take(limit, now)
    }
}

/// `0x0202`/429, to be retried after `wait`.
pub fn too_many(wait: Duration) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        Code::Failure,
        "Too many requests",
    )
    .retry_after(whole_seconds(wait))
}

/// A wait as `Retry-After` gives it: whole seconds, at least one.
pub fn whole_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

fn forwarded_for(headers: &HeaderMap) -> Vec<IpAddr> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse().ok())
        .collect()
}

fn forget_some<K, V>(table: &mut HashMap<K, V>, forgettable: impl Fn(&V) -> bool) {
    if table.len() >= REMEMBERED {
        table.retain(|_, v| !forgettable(v));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
