//! `POST /v1/sandbox/kyc/{kid}/complete`: finish a sandbox KYC without a browser,
//! optionally with DigiLocker returning someone else (`verifiedPan`, `verifiedName`).

use super::AppState;
use super::envelope::ApiError;
use super::extract::{Caller, JsonObject};
use super::kyc::{path_kid, status_response};
use super::openapi::{Failure, Refusals, SandboxCompleteRequest, StatusAnswer};
use crate::domain::fields::{Pan, PersonName, Refusal};
use crate::domain::kyc::parse_face_match;
use crate::domain::request::{Problem, RawField};
use crate::sandbox::Outcome;
use crate::service::{SandboxFinish, ServiceError};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;

/// Face match used when the tester gives none.
const DEFAULT_FACE_MATCH: u8 = 95;

/// Finish a sandbox KYC without a browser (sandbox provider only).
///
/// Answers as a status read of the finished KYC would.
#[utoipa::path(
    post,
    path = "/v1/sandbox/kyc/{kid}/complete",
    tag = "Sandbox",
    params(("kid" = String, Path, description = "An open KYC of the caller")),
    request_body(content = SandboxCompleteRequest, content_type = "application/json"),
    security(("basic" = [])),
    responses(
        (status = 200, description = "The status read of the finished KYC", body = StatusAnswer),
        (status = 400, description = "`0x0203`: `outcome` missing", body = Failure),
        (status = 404, description = "`0x0202`: no such kid", body = Failure),
        (status = 409, description = "`0x0202`: the KYC has already ended", body = Failure),
        (status = 422, description = "`0x0202`: a field is invalid", body = Failure),
        Refusals,
    )
)]
pub async fn complete(
    State(state): State<AppState>,
    Caller(client): Caller,
    kid: Result<Path<String>, PathRejection>,
    body: JsonObject,
) -> Result<Response, ApiError> {
    let outcome = match body.field("outcome") {
        None => Err(Problem::Missing("outcome")),
        Some(RawField::Text(t)) => match Outcome::parse(t.trim()) {
            Some(o) => Ok(o),
            None => Err(Problem::Invalid(
                "outcome",
                Refusal("The outcome field must be approved, rejected, expired or pending."),
            )),
        },
        Some(_) => Err(Problem::NotText("outcome")),
    };
    let face_match = match body.field("faceMatch") {
        None => Ok(DEFAULT_FACE_MATCH),
        Some(RawField::Number(n) | RawField::Text(n)) => {
            parse_face_match(&n).ok_or(Problem::Invalid(
                "faceMatch",
                Refusal("The faceMatch field must be a whole number from 0 to 100."),
            ))
        }
        Some(RawField::Other) => Err(Problem::Invalid(
            "faceMatch",
            Refusal("The faceMatch field must be a whole number from 0 to 100."),
        )),
    };
    let verified_pan = optional_text(body.field("verifiedPan"), "verifiedPan", BAD_PAN, |t| {
        Pan::parse(t).map(|p| p.as_str().to_owned())
    });
    let verified_name = optional_text(body.field("verifiedName"), "verifiedName", BAD_NAME, |t| {
        PersonName::parse(t).map(|n| n.as_str().to_owned())
    });
    let (outcome, face_match, verified_pan, verified_name) =
        match (outcome, face_match, verified_pan, verified_name) {
            (Ok(o), Ok(f), Ok(p), Ok(n)) => (o, f, p, n),
            (o, f, p, n) => {
                let problems = [o.err(), f.err(), p.err(), n.err()]
                    .into_iter()
                    .flatten()
                    .collect();
                return Err(ServiceError::Invalid(problems).into());
            }
        };
    let finish = SandboxFinish {
        outcome,
        face_match,
        selfie: None,
        verified_pan,
        verified_name,
    };
    let status = state
        .service
        .journeys
        .sandbox_complete(&client, &path_kid(kid), finish)
        .await?;
    Ok(status_response(&status))
}

const BAD_PAN: Refusal = Refusal(
    "The verifiedPan field must be an individual's PAN: 5 letters (the 4th P), 4 digits and a letter.",
);
const BAD_NAME: Refusal = Refusal(
    "The verifiedName field may contain only letters, spaces, dots, apostrophes and hyphens (up to 200).",
);

/// An optional text field: absent or blank is `None`; anything else must parse.
fn optional_text(
    raw: Option<RawField>,
    field: &'static str,
    bad: Refusal,
    parse: impl Fn(&str) -> Result<String, Refusal>,
) -> Result<Option<String>, Problem> {
    match raw {
        None => Ok(None),
        Some(RawField::Text(t)) if t.trim().is_empty() => Ok(None),
        Some(RawField::Text(t)) => parse(&t)
            .map(Some)
            .map_err(|_| Problem::Invalid(field, bad)),
        Some(_) => Err(Problem::Invalid(field, bad)),
    }
}
