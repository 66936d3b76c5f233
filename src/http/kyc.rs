//! `POST /v1/service/paycc/init/kyc` and `GET|POST /v1/service/paycc/kyc/status/{kid}`.

use super::AppState;
use super::envelope::{ApiError, Code, Envelope};
use super::extract::{Caller, JsonObject};
use crate::domain::fields::IdempotencyKey;
use crate::domain::kyc::KycIdentity;
use crate::domain::request::{InitKyc, RawInitKyc};
use crate::service::{KycStatus, ServiceError};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Serialize)]
struct InitData {
    url: String,
    kid: String,
}

pub async fn init(
    State(state): State<AppState>,
    Caller(client): Caller,
    headers: HeaderMap,
    body: JsonObject,
) -> Result<Response, ApiError> {
    let raw = RawInitKyc {
        pan: body.field("pan"),
        name: body.field("name"),
        email: body.field("email"),
        mobile: body.field("mobile"),
        merchant_code: body.field("merchantCode"),
        redirect_url: body.field("redirectUrl"),
    };
    let req = InitKyc::parse(raw).map_err(ServiceError::Invalid)?;
    let key = headers
        .get("idempotency-key")
        .map(|v| IdempotencyKey::parse(v.as_bytes()))
        .transpose()
        .map_err(|why| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, Code::Failure, why.0))?;
    let reply = state
        .service
        .init
        .open_once(&client, req, key.as_ref())
        .await?;
    Ok(Envelope::success(
        "Request Init",
        InitData {
            url: reply.url,
            kid: reply.kid,
        },
    )
    .into_response())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApprovedData<'a> {
    kyc: KycView<'a>,
    merchant_details: MerchantDetails<'a>,
}

#[derive(Serialize)]
struct KycView<'a> {
    id: &'a str,
    #[serde(flatten)]
    identity: &'a KycIdentity,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MerchantDetails<'a> {
    cust_id: &'a str,
}

#[derive(Serialize)]
struct KidAndState<'a> {
    kid: &'a str,
    state: &'static str,
}

#[derive(Serialize)]
struct EndedData<'a> {
    kid: &'a str,
    state: &'static str,
    reason: &'a str,
}

/// What a status read of a request whose identity data was deleted says.
const PURGED_MESSAGE: &str = "Kyc data purged";

/// The body, if any, is ignored: raw cURL clients send one with GET.
pub async fn status(
    State(state): State<AppState>,
    Caller(client): Caller,
    kid: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let status = state.service.status.read(&client, &path_kid(kid)).await?;
    Ok(status_response(&status))
}

/// A kid from the path; one that does not even decode reads as unknown.
pub(super) fn path_kid(kid: Result<Path<String>, PathRejection>) -> String {
    kid.map(|Path(k)| k).unwrap_or_default()
}

pub(super) fn status_response(status: &KycStatus) -> Response {
    match status {
        KycStatus::Approved {
            kid,
            identity,
            cust_id,
        } => Envelope::success(
            "Record fetched successful.",
            ApprovedData {
                kyc: KycView { id: kid, identity },
                merchant_details: MerchantDetails { cust_id },
            },
        )
        .into_response(),
        KycStatus::Pending { kid, state } => Envelope::with_data(
            StatusCode::OK,
            Code::Pending,
            state.outcome_message(),
            KidAndState {
                kid,
                state: state.as_str(),
            },
        )
        .into_response(),
        KycStatus::Purged { kid, state } => Envelope::with_data(
            StatusCode::OK,
            Code::Failure,
            PURGED_MESSAGE,
            KidAndState {
                kid,
                state: state.as_str(),
            },
        )
        .into_response(),
        KycStatus::Ended { kid, state, reason } => Envelope::with_data(
            StatusCode::OK,
            Code::Failure,
            state.outcome_message(),
            EndedData {
                kid,
                state: state.as_str(),
                reason,
            },
        )
        .into_response(),
    }
}
