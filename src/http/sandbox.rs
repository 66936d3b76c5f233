//! `POST /v1/sandbox/kyc/{kid}/complete`: finish a sandbox KYC without a browser.

use super::AppState;
use super::envelope::ApiError;
use super::extract::{Caller, JsonObject};
use super::kyc::{path_kid, status_response};
use crate::domain::fields::Refusal;
use crate::domain::kyc::parse_face_match;
use crate::domain::request::{Problem, RawField};
use crate::provider::sandbox::Outcome;
use crate::service::ServiceError;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;

/// Face match used when the tester gives none.
const DEFAULT_FACE_MATCH: u8 = 95;

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
    let (outcome, face_match) = match (outcome, face_match) {
        (Ok(o), Ok(f)) => (o, f),
        (o, f) => {
            let problems = [o.err(), f.err()].into_iter().flatten().collect();
            return Err(ServiceError::Invalid(problems).into());
        }
    };
    let status = state
        .service
        .sandbox_complete(&client, &path_kid(kid), outcome, face_match)
        .await?;
    Ok(status_response(&status))
}
