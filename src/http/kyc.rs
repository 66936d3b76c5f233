//! `POST /v1/service/paycc/init/kyc` and `GET|POST /v1/service/paycc/kyc/status/{kid}`.

use super::AppState;
use super::envelope::{ApiError, Code, Envelope};
use super::extract::{Caller, JsonObject};
use super::openapi::{Failure, InitKycRequest, Refusals, StatusAnswer, Success};
use crate::domain::fields::IdempotencyKey;
use crate::domain::kyc::KycIdentity;
use crate::domain::request::{InitKyc, RawInitKyc};
use crate::service::{KycStatus, ServiceError};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub(super) struct InitData {
    /// Where the customer goes: the provider's hosted journey (the sandbox's own page
    /// with the sandbox provider).
    url: String,
    kid: String,
}

/// Generate a KYC URL for a customer.
///
/// Creates or reuses the (merchant, PAN) customer and opens a KYC request with the
/// provider. An identical request while an earlier one is open answers that one's kid
/// and URL. A failed provider call leaves the request stored as failed.
#[utoipa::path(
    post,
    path = "/v1/service/paycc/init/kyc",
    tag = "KYC",
    request_body(content = InitKycRequest, content_type = "application/json"),
    params(("Idempotency-Key" = Option<String>, Header,
        description = "1–255 visible ASCII characters. A retry with the same key and body gets the stored answer; another body gets 422; while the first is in flight, 409.")),
    security(("basic" = [])),
    responses(
        (status = 200, description = "`0x0200` Request Init", body = Success<InitData>,
            example = json!({"code": "0x0200", "message": "Request Init", "status": "SUCCESS",
                "data": {"url": "https://kyc.example.com/gateway/login/KID241124231727512Q2Z5XKW1YB9TA/REF241124231727512ABCDEFGHIJKLMN?token_id=GWT241124231727512ABCDEFGHIJKLMNOPQ", "kid": "KID241124231727512Q2Z5XKW1YB9TA"}})),
        (status = 400, description = "`0x0203`: a required field is missing or empty, or the body is not a JSON object", body = Failure,
            example = json!({"code": "0x0203", "status": "MISSING_PARAMETER", "message": "The name field is required.", "errors": {"name": ["The name field is required."]}})),
        (status = 409, description = "`0x0202`: the same Idempotency-Key is still in flight (`Retry-After: 1`), or an identical request is still being opened with the provider", body = Failure),
        (status = 422, description = "`0x0202`: a field is invalid (`errors` lists each), or the Idempotency-Key is malformed or was used with another body", body = Failure,
            example = json!({"code": "0x0202", "status": "FAILURE", "message": "The pan field is invalid.", "errors": {"pan": ["The pan field must be an individual's PAN: 5 letters (the 4th P), 4 digits and a letter."]}})),
        (status = 502, description = "`0x0205`: the provider failed; the request is stored as failed", body = Failure),
        (status = 504, description = "`0x0204`: the provider did not answer in time", body = Failure,
            example = json!({"code": "0x0204", "status": "CONNECTION_TIMEOUT", "message": "The KYC provider did not answer in time. Please try again."})),
        Refusals,
    )
)]
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

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ApprovedData<'a> {
    kyc: KycView<'a>,
    merchant_details: MerchantDetails<'a>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct KycView<'a> {
    /// The kid.
    id: &'a str,
    #[serde(flatten)]
    identity: &'a KycIdentity,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct MerchantDetails<'a> {
    cust_id: &'a str,
}

#[derive(Serialize, ToSchema)]
pub(super) struct KidAndState<'a> {
    kid: &'a str,
    state: &'static str,
}

#[derive(Serialize, ToSchema)]
pub(super) struct EndedData<'a> {
    kid: &'a str,
    state: &'static str,
    reason: &'a str,
}

/// What a status read of a request whose identity data was deleted says.
const PURGED_MESSAGE: &str = "Kyc data purged";

/// The body, if any, is ignored: raw cURL clients send one with GET.
/// Read a KYC result.
///
/// POST on the same path is the same read; a body, if any, is ignored.
#[utoipa::path(
    method(get, post),
    path = "/v1/service/paycc/kyc/status/{kid}",
    tag = "KYC",
    params(("kid" = String, Path, description = "The kid init answered")),
    security(("basic" = [])),
    responses(
        (status = 200, description = "`0x0200` with the verified identity; `0x0206` while the KYC is not finished; `0x0202` when it ended rejected or expired, or its identity data was purged after its retention",
            body = StatusAnswer,
            examples(
                ("Approved" = (value = json!({"code": "0x0200", "message": "Record fetched successful.", "status": "SUCCESS",
                    "data": {"kyc": {"id": "KID241124231727512Q2Z5XKW1YB9TA", "name": "Sanjay Kumar", "faceMatch": 99, "aadhaar": "xxxxxxxx0339",
                        "gender": "M", "dob": "25/08/1974", "image": "/9j/4AAQ", "fatherName": "",
                        "currentAddress": {"address": "12 Civil Lines", "locality_or_post_office": "Court Road", "district_or_city": "Saharanpur", "state": "Uttar Pradesh", "pincode": "247001"},
                        "pan": "ENGPK1234L", "panName": "SANJAY KUMAR", "panMatch": true, "nameMatch": 100},
                        "merchantDetails": {"custId": "JSIWI5900019"}}}))),
                ("Pending" = (value = json!({"code": "0x0206", "status": "PENDING", "message": "Kyc is pending", "data": {"kid": "KID241124231727512Q2Z5XKW1YB9TA", "state": "pending"}}))),
                ("Rejected" = (value = json!({"code": "0x0202", "status": "FAILURE", "message": "Kyc rejected", "data": {"kid": "KID241124231727512Q2Z5XKW1YB9TA", "state": "rejected", "reason": "The KYC was rejected."}}))),
                ("Purged" = (value = json!({"code": "0x0202", "status": "FAILURE", "message": "Kyc data purged", "data": {"kid": "KID241124231727512Q2Z5XKW1YB9TA", "state": "approved"}}))),
            )),
        (status = 404, description = "`0x0202`: no such kid, or one of another client's merchant", body = Failure,
            example = json!({"code": "0x0202", "status": "FAILURE", "message": "Entity not found for this ID"})),
        Refusals,
    )
)]
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
