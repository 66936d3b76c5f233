//! The one response shape: `{"code","message","status","data"}` on success,
//! `{"code","status","message","errors"?,"data"?}` otherwise, keys in that order.

use crate::domain::request::Problem;
use crate::service::{AuthFailure, ServiceError};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::ser::{Serialize, SerializeMap, Serializer};

pub use crate::domain::code::Code;

/// Field errors in the order the problems were found.
pub type FieldErrors = Vec<(&'static str, Vec<String>)>;

pub struct Envelope<T> {
    pub http: StatusCode,
    pub code: Code,
    pub message: String,
    pub errors: Option<FieldErrors>,
    pub data: Option<T>,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
}

/// A failure with no data.
pub type ApiError = Envelope<()>;

impl<T: Serialize> Envelope<T> {
    pub fn success(message: &str, data: T) -> Self {
        Self {
            http: StatusCode::OK,
            code: Code::Success,
            message: message.into(),
            errors: None,
            data: Some(data),
            retry_after: None,
        }
    }

    pub fn with_data(http: StatusCode, code: Code, message: &str, data: T) -> Self {
        Self {
            http,
            code,
            message: message.into(),
            errors: None,
            data: Some(data),
            retry_after: None,
        }
    }
}

impl ApiError {
    pub fn new(http: StatusCode, code: Code, message: impl Into<String>) -> Self {
        Self {
            http,
            code,
            message: message.into(),
            errors: None,
            data: None,
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }
}

struct Errors<'a>(&'a FieldErrors);

impl Serialize for Errors<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (field, sentences) in self.0 {
            m.serialize_entry(field, sentences)?;
        }
        m.end()
    }
}

impl<T: Serialize> Serialize for Envelope<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("code", self.code.as_str())?;
        if self.code == Code::Success {
            m.serialize_entry("message", &self.message)?;
            m.serialize_entry("status", self.code.status_word())?;
        } else {
            m.serialize_entry("status", self.code.status_word())?;
            m.serialize_entry("message", &self.message)?;
        }
        if let Some(errors) = &self.errors {
            m.serialize_entry("errors", &Errors(errors))?;
        }
        if let Some(data) = &self.data {
            m.serialize_entry("data", data)?;
        }
        m.end()
    }
}

impl<T: Serialize> IntoResponse for Envelope<T> {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self).expect("envelopes serialise");
        let mut res = (self.http, body).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        // Answers carry identity data: nothing in between may keep them.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.code == Code::Unauthorized {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"paycc\""),
            );
        }
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res.extensions_mut().insert(self.code);
        res
    }
}

pub const MSG_WENT_WRONG: &str = "Something went wrong. Please try again later.";

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        use Code::*;
        match e {
            ServiceError::Invalid(problems) => validation(&problems),
            ServiceError::Unauthorized(why) => ApiError::new(
                StatusCode::UNAUTHORIZED,
                Unauthorized,
                match why {
                    AuthFailure::Missing => {
                        "Authorization header is required (HTTP Basic with your clientId and clientSecret)."
                    }
                    AuthFailure::NotBasic => "Authorization must use the Basic scheme.",
                    AuthFailure::Malformed => {
                        "Authorization header is not valid Basic credentials."
                    }
                    AuthFailure::BadCredentials => "Invalid client credentials.",
                },
            ),
            ServiceError::MerchantUnavailable => ApiError::new(
                StatusCode::FORBIDDEN,
                Failure,
                "The merchant is not active or does not belong to this client.",
            ),
            ServiceError::NotFound(msg) => ApiError::new(StatusCode::NOT_FOUND, Failure, msg),
            ServiceError::Conflict(msg) => ApiError::new(StatusCode::CONFLICT, Failure, msg),
            ServiceError::Refused(msg) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, Failure, msg)
            }
            ServiceError::ProviderTimeout => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                ConnectionTimeout,
                "The KYC provider did not answer in time. Please try again.",
            ),
            ServiceError::InFlight => ApiError::new(
                StatusCode::CONFLICT,
                Failure,
                "A request with this Idempotency-Key is still being processed. Retry shortly.",
            )
            .retry_after(1),
            ServiceError::ProviderPaused(secs) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                SomethingWentWrong,
                format!("The KYC provider is failing, so paycc has paused calls to it for {secs} s. Please retry after that."),
            )
            .retry_after(secs),
            ServiceError::Provider(detail) => {
                tracing::warn!(error = %detail, "provider call failed");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    SomethingWentWrong,
                    "The KYC provider could not handle the request. Please try again.",
                )
            }
            // Each refusal is in the access log (503, 0x0205); a line of its own per
            // request would multiply the log under the very overload it reports.
            ServiceError::Busy(queue) => {
                tracing::debug!(queue, "refused a request: a queue is full");
                busy()
            }
            ServiceError::Unavailable(detail) => {
                tracing::error!(error = %detail, "storage unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    SomethingWentWrong,
                    "The service is temporarily unavailable. Please try again.",
                )
            }
            ServiceError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    SomethingWentWrong,
                    MSG_WENT_WRONG,
                )
            }
        }
    }
}

/// The answer when this node has more work than it takes: at once, to be retried.
pub fn busy() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        Code::SomethingWentWrong,
        "The service is busy. Please retry in a second.",
    )
    .retry_after(1)
}

/// `0x0203` when a field is missing, else `0x0202`/422; the message names the first
/// problem, `errors` lists every one.
fn validation(problems: &[Problem]) -> ApiError {
    let sentence = |p: &Problem| match p {
        Problem::Missing(f) => format!("The {f} field is required."),
        Problem::NotText(f) => format!("The {f} field must be a string."),
        Problem::Invalid(_, why) => why.0.to_owned(),
    };
    let mut errors: FieldErrors = Vec::new();
    for p in problems {
        match errors.iter_mut().find(|(f, _)| *f == p.field()) {
            Some((_, list)) => list.push(sentence(p)),
            None => errors.push((p.field(), vec![sentence(p)])),
        }
    }
    let missing = problems.iter().find(|p| matches!(p, Problem::Missing(_)));
    let (http, code, message) = match (missing, problems.first()) {
        (Some(p), _) => (
            StatusCode::BAD_REQUEST,
            Code::MissingParameter,
            format!("The {} field is required.", p.field()),
        ),
        (None, Some(p)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Code::Failure,
            format!("The {} field is invalid.", p.field()),
        ),
        (None, None) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Code::Failure,
            "The request is invalid.".into(),
        ),
    };
    ApiError {
        http,
        code,
        message,
        errors: Some(errors),
        data: None,
        retry_after: None,
    }
}
