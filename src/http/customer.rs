//! `GET|POST /v1/service/paycc/customer`: the customer check.

use super::AppState;
use super::envelope::{ApiError, Envelope};
use super::extract::{Caller, JsonObject};
use super::openapi::{CustomerCheckRequest, Failure, Refusals, Success};
use crate::domain::kyc::Photo;
use crate::domain::request::{CustomerQuery, RawCustomerQuery};
use crate::service::{CustomerView, ServiceError};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The published record; identity fields are `null` until a KYC is approved.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct CustomerData<'a> {
    first_name: &'a str,
    middle_name: Option<&'a str>,
    last_name: Option<&'a str>,
    /// A JSON number, as published.
    mobile: u64,
    email: &'a str,
    address: Option<String>,
    dob: Option<&'a str>,
    gender: Option<&'static str>,
    pan: &'a str,
    cust_id: &'a str,
    kyc_name: Option<&'a str>,
    face_match_percent: Option<String>,
    #[schema(value_type = Option<String>, format = Byte)]
    image_base64: Option<&'a Photo>,
    is_active: &'static str,
    digio_kyc: &'static str,
    digio_kyc_id: Option<&'a str>,
    kyc_url: Option<&'a str>,
}

/// Customer check: the customer of a merchant by mobile or PAN.
///
/// Published as GET with a body; clients call it with POST too. Before a KYC is
/// approved, `digioKyc` is `"0"`, `kycUrl` is the open KYC's URL, and the identity
/// fields are `null`.
#[utoipa::path(
    method(get, post),
    path = "/v1/service/paycc/customer",
    tag = "Customers",
    request_body(content = CustomerCheckRequest, content_type = "application/json"),
    security(("basic" = [])),
    responses(
        (status = 200, description = "`0x0200` Customer Record found", body = Success<CustomerData>,
            example = json!({"code": "0x0200", "message": "Customer Record found", "status": "SUCCESS",
                "data": {"firstName": "Sanjay", "middleName": null, "lastName": "Kumar", "mobile": 6393712345_u64,
                    "email": "s@example.com", "address": "12 Civil Lines, Court Road, Saharanpur, Uttar Pradesh, 247001", "dob": "25/08/1974", "gender": "Male", "pan": "ENGPK1234L",
                    "custId": "JSIWI5900019", "kycName": "SANJAY KUMAR", "faceMatchPercent": "99", "imageBase64": "/9j/4AAQ",
                    "isActive": "1", "digioKyc": "1", "digioKycId": "KID241124231727512Q2Z5XKW1YB9TA", "kycUrl": null}})),
        (status = 400, description = "`0x0203`: `merchantCode`, or both `mobile` and `pan`, missing", body = Failure),
        (status = 404, description = "`0x0202`: no such customer", body = Failure,
            example = json!({"code": "0x0202", "status": "FAILURE", "message": "No customer found"})),
        (status = 422, description = "`0x0202`: a field is invalid", body = Failure),
        Refusals,
    )
)]
pub async fn check(
    State(state): State<AppState>,
    Caller(client): Caller,
    body: JsonObject,
) -> Result<Response, ApiError> {
    let raw = RawCustomerQuery {
        merchant_code: body.field("merchantCode"),
        mobile: body.field("mobile"),
        pan: body.field("pan"),
    };
    let query = CustomerQuery::parse(raw).map_err(ServiceError::Invalid)?;
    let view = state.service.customers.check(&client, query).await?;
    Ok(Envelope::success("Customer Record found", data(&view)).into_response())
}

fn data(v: &CustomerView) -> CustomerData<'_> {
    let identity = v.verified.as_ref().map(|(_, i)| i);
    CustomerData {
        first_name: &v.first_name,
        middle_name: v.middle_name.as_deref(),
        last_name: v.last_name.as_deref(),
        // Stored mobiles are always ten digits, so this parse cannot fail.
        mobile: v.mobile.parse().unwrap_or_default(),
        email: &v.email,
        address: v.address(),
        dob: identity.map(|i| i.dob.as_str()),
        gender: v.gender(),
        pan: &v.pan,
        cust_id: &v.cust_id,
        kyc_name: identity.map(|i| i.pan_name.as_str()),
        face_match_percent: identity.map(|i| i.face_match.to_string()),
        image_base64: identity.map(|i| &i.image),
        is_active: if v.active { "1" } else { "0" },
        digio_kyc: if identity.is_some() { "1" } else { "0" },
        digio_kyc_id: v.latest_kid.as_deref(),
        kyc_url: v.open_url.as_deref(),
    }
}
