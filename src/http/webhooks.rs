//! `POST /v1/webhooks/{provider}` (Digio's event deliveries): the signature, from the
//! header the provider names, is verified over the raw body before anything else; the
//! answer comes at once, the re-read of the request runs in the background.

use super::AppState;
use super::envelope::{ApiError, Code, Envelope};
use crate::provider::WebhookError;
use crate::service::{WebhookAck, WebhookFailure};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let header = state
        .service
        .provider_offers()
        .webhook_signature
        .unwrap_or_default();
    let signature = headers.get(header).and_then(|v| v.to_str().ok());
    match state.service.sync.webhook(&body, signature).await {
        Ok(ack) => {
            let outcome = if ack == WebhookAck::Accepted {
                "accepted"
            } else {
                "duplicate"
            };
            Envelope::success("Webhook received", json!({ "status": outcome })).into_response()
        }
        Err(WebhookFailure::Refused(WebhookError::BadSignature)) => {
            tracing::warn!(header, "webhook refused: bad or missing signature");
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                Code::Unauthorized,
                "The webhook checksum is missing or wrong.",
            )
            .into_response()
        }
        Err(WebhookFailure::Refused(e)) => ApiError::new(
            StatusCode::BAD_REQUEST,
            Code::MissingParameter,
            format!("The webhook could not be read: {e}."),
        )
        .into_response(),
        // Providers retry non-2xx deliveries: a storage hiccup here is retried by them.
        Err(WebhookFailure::Failed(e)) => ApiError::from(e).into_response(),
    }
}
