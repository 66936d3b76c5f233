//! Sends merchant callbacks over HTTP: bounded in time, never following a redirect,
//! never reading more than a few KiB of a reply, and, unless allowed, never reaching a
//! non-public address. The address check runs on what DNS answered, and the connection
//! goes to exactly those addresses, so a name cannot resolve one way for the check and
//! another for the call.

mod address;

pub use address::is_public;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The most of a receiver's reply that is read; the rest is dropped with the connection.
const REPLY_READ_LIMIT: usize = 4096;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an attempt failed, in words fit for an operator: no URL, no reply body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendFailure {
    #[error("refused: {0} is not a public address")]
    Refused(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("could not connect")]
    Connect,
    #[error("the receiver answered HTTP {0}")]
    Status(u16),
    #[error("the request failed: {0}")]
    Other(String),
}

pub struct CallbackSender {
    client: reqwest::Client,
    allow_private: bool,
    timeout: Duration,
}

impl CallbackSender {
    pub fn new(timeout: Duration, allow_private: bool) -> Result<Self, String> {
        crate::crypto::install_tls_provider();
        let client = reqwest::Client::builder()
            .user_agent(concat!("paycc-callbacks/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve the name itself, out of the address check's sight.
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .dns_resolver(PublicOnly { allow_private })
            .build()
            .map_err(|e| format!("cannot build the callback HTTP client: {e}"))?;
        Ok(Self {
            client,
            allow_private,
            timeout,
        })
    }

    /// POSTs `body` as JSON with `headers`; `Ok` only for a 2xx answer.
    pub async fn send(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: Vec<u8>,
    ) -> Result<(), SendFailure> {
        let parsed = reqwest::Url::parse(url).map_err(|_| SendFailure::Other("bad URL".into()))?;
        // A literal address never meets the resolver, so it is checked here.
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal.filter(|ip| !self.allow_private && !is_public(*ip)) {
            return Err(SendFailure::Refused(ip.to_string()));
        }
        let mut request = self
            .client
            .post(parsed)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let mut reply = request.send().await.map_err(|e| self.failure(e))?;
        let status = reply.status();
        let mut read = 0;
        while read < REPLY_READ_LIMIT {
            match reply.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                _ => break,
            }
        }
        if status.is_success() {
            Ok(())
        } else {
            Err(SendFailure::Status(status.as_u16()))
        }
    }

    fn failure(&self, e: reqwest::Error) -> SendFailure {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(err) = source {
            if let Some(NotPublic(host)) = err.downcast_ref::<NotPublic>() {
                return SendFailure::Refused(host.clone());
            }
            source = err.source();
        }
        if e.is_timeout() {
            SendFailure::Timeout(self.timeout)
        } else if e.is_connect() {
            SendFailure::Connect
        } else {
            // Without the URL: it may carry a token of the merchant's.
            SendFailure::Other(e.without_url().to_string())
        }
    }
}

/// A name that resolved to no public address.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves to no public address")]
struct NotPublic(String);

/// Resolves with the system resolver and keeps only the public addresses.
struct PublicOnly {
    allow_private: bool,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let usable: Vec<SocketAddr> = found
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if usable.is_empty() {
                return Err(Box::new(NotPublic(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(usable.into_iter()) as Addrs)
        })
    }
}
