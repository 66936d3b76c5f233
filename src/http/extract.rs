//! Request extractors whose refusals are envelopes: the JSON body (read whatever the
//! Content-Type says) and the Basic-authenticated caller.

use super::AppState;
use super::envelope::{ApiError, Code};
use super::observe::ClientNamed;
use crate::domain::request::RawField;
use crate::service::{ApiClient, AuthFailure, ServiceError};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header, request::Parts};
use base64::prelude::*;
use serde_json::{Map, Value};

/// Bodies above this are refused before they are parsed.
pub const BODY_LIMIT: usize = 16 * 1024;

/// A request body that is a JSON object (an empty body counts as `{}`).
pub struct JsonObject(pub Map<String, Value>);

impl JsonObject {
    /// A field as the domain sees it; `null` counts as absent.
    pub fn field(&self, name: &str) -> Option<RawField> {
        match self.0.get(name)? {
            Value::Null => None,
            Value::String(s) => Some(RawField::Text(s.clone())),
            Value::Number(n) => Some(RawField::Number(n.to_string())),
            _ => Some(RawField::Other),
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::to_bytes(req.into_body(), BODY_LIMIT)
            .await
            .map_err(|e| {
                if is_too_large(&e) {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        Code::Failure,
                        format!("The request body is larger than {BODY_LIMIT} bytes."),
                    )
                } else {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        Code::MissingParameter,
                        "The request body could not be read.",
                    )
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(Map::new()));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            _ => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                Code::MissingParameter,
                "The request body must be a JSON object.",
            )),
        }
    }
}

/// The authenticated API client behind `Authorization: Basic …`.
pub struct Caller(pub ApiClient);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let source = state.limits.source(parts);
        state.limits.check_address(source)?;
        let mut client = match authenticate(parts, state).await {
            Err(ServiceError::Unauthorized(why)) => {
                state.limits.failed_authentication(source);
                return Err(ServiceError::Unauthorized(why).into());
            }
            other => other?,
        };
        if let Some(named) = parts.extensions.get::<ClientNamed>() {
            named.name(&client.client_id);
        }
        state.limits.admit_client(&client)?;
        // Set (checked or generated) by the outer layer before any handler runs.
        client.request_id = parts
            .headers
            .get(&super::observe::X_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Caller(client))
    }
}

/// The client whose Basic credentials the request carries.
async fn authenticate(parts: &Parts, state: &AppState) -> Result<ApiClient, ServiceError> {
    let refuse = ServiceError::Unauthorized;
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| refuse(AuthFailure::Missing))?;
    let value = value
        .to_str()
        .map_err(|_| refuse(AuthFailure::Malformed))?
        .trim();
    let (scheme, encoded) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(refuse(AuthFailure::NotBasic));
    }
    let decoded = BASE64_STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| refuse(AuthFailure::Malformed))?;
    let (client_id, secret) = decoded
        .split_once(':')
        .ok_or_else(|| refuse(AuthFailure::Malformed))?;
    if client_id.is_empty() || secret.is_empty() {
        return Err(refuse(AuthFailure::Malformed));
    }
    state.service.auth.authenticate(client_id, secret).await
}

/// Whether a body was refused for passing its size limit.
pub fn is_too_large(e: &axum::Error) -> bool {
    std::error::Error::source(e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
}
