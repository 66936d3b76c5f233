//! Request ids, one access-log line per request, a deadline, and panics turned into
//! envelopes. Log lines carry ids, route templates, codes and timings: never bodies,
//! query strings, credentials or identity data.

use super::envelope::{ApiError, Code, MSG_WENT_WRONG};
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tracing::Instrument;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest a request may take end to end, body upload included.
const REQUEST_DEADLINE: Duration = Duration::from_secs(30);

/// Which API client made a request, once its credentials are checked: carried to the
/// access log (the client id only, never a secret).
#[derive(Clone, Default)]
pub struct ClientNamed(Arc<OnceLock<String>>);

impl ClientNamed {
    pub fn name(&self, client_id: &str) {
        let _ = self.0.set(client_id.to_owned());
    }
}

/// The route template a request matched, carried out to the access log.
#[derive(Clone)]
struct Route(String);

/// Inner layer (per route): remembers which template matched.
pub async fn remember_route(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let mut res = next.run(req).await;
    if let Some(r) = route {
        res.extensions_mut().insert(Route(r));
    }
    res
}

/// Outer layer: request id, deadline, access log.
pub async fn observe(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_acceptable_id(v))
        .map(str::to_owned)
        .unwrap_or_else(|| crate::crypto::random_alnum(20));
    let header_value =
        HeaderValue::from_str(&request_id).expect("checked or generated ids are visible ASCII");
    req.headers_mut()
        .insert(X_REQUEST_ID.clone(), header_value.clone());
    let client = ClientNamed::default();
    req.extensions_mut().insert(client.clone());
    let method = req.method().clone();
    let span = tracing::info_span!("request", request_id = %request_id);
    let outcome =
        tokio::time::timeout(REQUEST_DEADLINE, next.run(req).instrument(span.clone())).await;
    let mut res = outcome.unwrap_or_else(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Code::SomethingWentWrong,
            "The request took too long and was abandoned. Please try again.",
        )
        .into_response()
    });
    res.headers_mut().insert(X_REQUEST_ID.clone(), header_value);
    let route = res
        .extensions()
        .get::<Route>()
        .map_or("-", |r| r.0.as_str());
    let code = res.extensions().get::<Code>().map_or("-", |c| c.as_str());
    crate::metrics::request(
        route,
        method.as_str(),
        res.status().as_u16(),
        started.elapsed(),
    );
    span.in_scope(|| {
        tracing::info!(
            method = %method,
            route,
            client = client.0.get().map_or("-", String::as_str),
            http_status = res.status().as_u16(),
            code,
            latency_us = started.elapsed().as_micros() as u64,
            "request"
        )
    });
    res
}

/// Accept a caller's id only if it is short and plain, so it is safe to log and echo.
fn is_acceptable_id(v: &str) -> bool {
    (1..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// What a panicking handler answers; the payload is not looked at, it may hold anything.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        Code::SomethingWentWrong,
        MSG_WENT_WRONG,
    )
    .into_response()
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, Code::Failure, "No such endpoint.")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        Code::Failure,
        "This endpoint does not accept this HTTP method.",
    )
}
