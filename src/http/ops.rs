//! Operations endpoints on their own listener: `/healthz` (the process answers) and
//! `/readyz` (the database answers, its schema is current, and the node is not shutting
//! down). For load balancers and orchestrators, so they never compete with API traffic
//! or need credentials.

use crate::service::Service;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use serde_json::json;
use std::sync::Arc;
use tokio::sync::watch;

/// `draining` turns true when the node begins to shut down.
pub fn router(service: Arc<Service>, draining: watch::Receiver<bool>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .with_state((service, draining))
}

/// The Prometheus scrape; the outbox is counted for it.
async fn metrics(
    State((service, _)): State<(Arc<Service>, watch::Receiver<bool>)>,
) -> impl IntoResponse {
    if let Err(e) = service.callbacks.measure_backlog().await {
        tracing::warn!(error = %e, "could not count the callback outbox for a scrape");
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        crate::metrics::render(),
    )
}

async fn ready(
    State((service, draining)): State<(Arc<Service>, watch::Receiver<bool>)>,
) -> impl IntoResponse {
    if *draining.borrow() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "reason": "shutting down"})),
        );
    }
    match service.admin.readiness().await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Err((reason, detail)) => {
            tracing::warn!(reason, detail = %detail, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "not ready", "reason": reason})),
            )
        }
    }
}
