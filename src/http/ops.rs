//! Operations endpoints on their own listener: `/healthz` (the process answers) and
//! `/readyz` (the database answers and its schema is current). For load balancers and
//! orchestrators, so they never compete with API traffic or need credentials.

use crate::service::Service;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use serde_json::json;
use std::sync::Arc;

pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(ready))
        .with_state(service)
}

async fn ready(State(service): State<Arc<Service>>) -> impl IntoResponse {
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
