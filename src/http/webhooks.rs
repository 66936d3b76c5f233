//! `POST /v1/webhooks/{provider}` (Digio's event deliveries). A delivery without the
//! signature header is refused before its body is read, a body over 64 KiB is refused
//! without reading it all, and the signature is verified over the raw body before
//! anything in it is looked at. The answer comes at once; the re-read of the request
//! runs in the background.

use super::AppState;
use super::envelope::{ApiError, Code, Envelope};
use super::extract::is_too_large;
use super::openapi::Failure;
use crate::provider::WebhookError;
use crate::service::{WebhookAck, WebhookFailure};
use axum::body::Body;
use axum::extract::State;
use axum::http::header::CONTENT_LENGTH;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Largest delivery read: Digio's events carry ids and states, not documents.
pub const WEBHOOK_BODY_LIMIT: usize = 64 * 1024;

/// Digio's event deliveries (Digio provider only).
///
/// Signed by Digio with `X-Digio-Checksum` (HMAC-SHA256 of the raw body under the
/// webhook secret); checked before anything else. Repeats are answered and ignored.
#[utoipa::path(
    post,
    path = "/v1/webhooks/digio",
    tag = "Provider",
    params(("X-Digio-Checksum" = String, Header, description = "hex HMAC-SHA256 of the raw body")),
    request_body(content = Object, content_type = "application/json", description = "Digio's event, at most 64 KiB"),
    responses(
        (status = 200, description = "`0x0200` Webhook received; `data.status` is `accepted` or `duplicate`", body = Success<Object>,
            example = json!({"code": "0x0200", "message": "Webhook received", "status": "SUCCESS", "data": {"status": "accepted"}})),
        (status = 400, description = "`0x0203`: the body could not be read as an event", body = Failure),
        (status = 401, description = "`0x0201`: the checksum is missing or wrong", body = Failure,
            example = json!({"code": "0x0201", "status": "UNAUTHORIZED", "message": "The webhook checksum is missing or wrong."})),
        (status = 413, description = "`0x0202`: the body is over 64 KiB", body = Failure),
        (status = 503, description = "`0x0205`: storage unavailable; Digio retries", body = Failure),
    )
)]
pub async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let header = state
        .service
        .provider_offers()
        .webhook_signature
        .unwrap_or_default();
    let Some(signature) = headers.get(header).and_then(|v| v.to_str().ok()) else {
        return bad_signature(header);
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > WEBHOOK_BODY_LIMIT as u64) {
        return too_large();
    }
    let body = match axum::body::to_bytes(body, WEBHOOK_BODY_LIMIT).await {
        Ok(body) => body,
        Err(e) if is_too_large(&e) => return too_large(),
        Err(_) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                Code::MissingParameter,
                "The webhook body could not be read.",
            )
            .into_response();
        }
    };
    match state.service.sync.webhook(&body, Some(signature)).await {
        Ok(ack) => {
            let outcome = if ack == WebhookAck::Accepted {
                "accepted"
            } else {
                "duplicate"
            };
            Envelope::success("Webhook received", json!({ "status": outcome })).into_response()
        }
        Err(WebhookFailure::Refused(WebhookError::BadSignature)) => bad_signature(header),
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

fn bad_signature(header: &str) -> Response {
    tracing::warn!(header, "webhook refused: bad or missing signature");
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        Code::Unauthorized,
        "The webhook checksum is missing or wrong.",
    )
    .into_response()
}

fn too_large() -> Response {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        Code::Failure,
        format!("The webhook body is larger than {WEBHOOK_BODY_LIMIT} bytes."),
    )
    .into_response()
}
