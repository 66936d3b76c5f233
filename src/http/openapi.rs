//! The OpenAPI 3.1 document, made from the handlers' own annotations and answer types
//! (`GET /openapi.json`), and the reference page rendered from it (`GET /docs`).

use crate::provider::Offers;
use axum::body::Bytes;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use std::collections::BTreeMap;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{self, OpenApi as Document};
use utoipa::{IntoResponses, Modify, OpenApi, PartialSchema, ToSchema};

/// `POST /v1/service/paycc/init/kyc`. Fields are read from a JSON object whatever the
/// `Content-Type`; unknown fields are ignored.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // A description of the body, which is read field by field.
pub(super) struct InitKycRequest {
    /// Trimmed and upper-cased, then `AAAAA9999A` with `P` as the 4th letter (an
    /// individual).
    #[schema(max_length = 11, example = "ENGPK1234L")]
    pan: String,
    /// Letters of any script, spaces, `.`, `'` and `-`; inner runs of spaces folded.
    #[schema(max_length = 200, example = "Sanjay Kumar")]
    name: String,
    /// One `@`, a domain with a dot, no spaces.
    #[schema(max_length = 200, example = "sanjay@example.com")]
    email: String,
    /// Ten digits starting 6–9, after dropping spaces, dashes and a `+91`, `91` or `0`
    /// prefix. A JSON number is accepted too.
    #[schema(max_length = 16, example = "6393712345")]
    mobile: String,
    /// A merchant of the calling API client, active.
    #[schema(max_length = 20, example = "MID693000001")]
    merchant_code: String,
    /// Where the customer lands after the journey (`http`/`https`), with `kid` and
    /// `status` added as query parameters.
    #[schema(max_length = 300, example = "https://shop.example/kyc-done")]
    redirect_url: Option<String>,
}

/// `GET|POST /v1/service/paycc/customer`: the merchant and one of `mobile` or `pan`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // A description of the body, which is read field by field.
pub(super) struct CustomerCheckRequest {
    #[schema(max_length = 20, example = "MID693000001")]
    merchant_code: String,
    /// As at init.
    #[schema(max_length = 16, example = "6393712345")]
    mobile: Option<String>,
    /// As at init.
    #[schema(max_length = 11)]
    pan: Option<String>,
}

/// `POST /v1/sandbox/kyc/{kid}/complete`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // A description of the body, which is read field by field.
pub(super) struct SandboxCompleteRequest {
    /// `approved`, `rejected`, `expired` or `pending` (awaiting an operator's review).
    #[schema(example = "approved")]
    outcome: String,
    /// 0–100; 95 when absent.
    #[schema(minimum = 0, maximum = 100)]
    face_match: Option<u8>,
    /// DigiLocker returns this PAN instead of the requested one.
    verified_pan: Option<String>,
    /// DigiLocker returns this name instead of the requested one.
    verified_name: Option<String>,
}

/// A success: `code` `0x0200`, `status` `SUCCESS`, keys in this order.
#[derive(ToSchema)]
#[allow(dead_code)] // The shape `Envelope` writes.
pub(super) struct Success<T> {
    #[schema(example = "0x0200")]
    code: String,
    message: String,
    #[schema(example = "SUCCESS")]
    status: String,
    data: T,
}

/// An answer that is not a success but carries data: `0x0206 PENDING`, or `0x0202
/// FAILURE` for a KYC that ended.
#[derive(ToSchema)]
#[allow(dead_code)] // The shape `Envelope` writes.
pub(super) struct Outcome<T> {
    code: String,
    status: String,
    message: String,
    data: T,
}

/// A status read's answer with HTTP 200: the identity, or where the KYC stands.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // The shapes `kyc::status_response` writes.
pub(super) enum StatusAnswer {
    Approved(Success<super::kyc::ApprovedData<'static>>),
    /// `0x0206` while not finished; `0x0202` once purged.
    Open(Outcome<super::kyc::KidAndState<'static>>),
    /// `0x0202` rejected or expired.
    Ended(Outcome<super::kyc::EndedData<'static>>),
}

/// Every other answer: `code`, `status` and `message`, and for invalid fields
/// `errors` (field → sentences).
#[derive(ToSchema)]
#[allow(dead_code)] // The shape `Envelope` writes.
pub(super) struct Failure {
    #[schema(example = "0x0202")]
    code: String,
    #[schema(example = "FAILURE")]
    status: String,
    message: String,
    errors: Option<BTreeMap<String, Vec<String>>>,
}

/// What any authenticated endpoint may answer besides its own answers.
#[derive(IntoResponses)]
#[allow(dead_code)] // A description of the answers `Envelope` writes.
pub(super) enum Refusals {
    /// Missing or bad credentials (`0x0201`), with `WWW-Authenticate: Basic realm="paycc"`.
    #[response(status = 401, example = json!({"code": "0x0201", "status": "UNAUTHORIZED", "message": "Invalid client credentials."}))]
    Unauthorized(Failure),
    /// `0x0202`: the merchant is not the caller's or is inactive; or a browser's
    /// cross-site call (`Origin`, `Sec-Fetch-Site`), refused before authentication.
    #[response(status = 403, example = json!({"code": "0x0202", "status": "FAILURE", "message": "The merchant is not active or does not belong to this client."}))]
    Forbidden(Failure),
    /// `0x0202`: the body is over 16 KiB.
    #[response(status = 413)]
    TooLarge(Failure),
    /// `0x0202`: too many requests from this client or address; retry after
    /// `Retry-After` seconds.
    #[response(status = 429, example = json!({"code": "0x0202", "status": "FAILURE", "message": "Too many requests"}))]
    TooMany(Failure),
    /// `0x0205`: paycc's own failure; no detail is given.
    #[response(status = 500, example = json!({"code": "0x0205", "status": "SOMETHING_WENT_WRONG", "message": "Something went wrong. Please try again later."}))]
    Failed(Failure),
    /// `0x0205`: busy (too many requests in flight) or the database is unavailable;
    /// retry after `Retry-After` seconds.
    #[response(status = 503, example = json!({"code": "0x0205", "status": "SOMETHING_WENT_WRONG", "message": "The service is busy. Please retry in a second."}))]
    Busy(Failure),
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "paycc — the Paycc customer-KYC API",
        description = "IPAYMENT-compatible customer KYC: a KYC link for a customer, the verified identity, and the customer check. Every answer is a JSON envelope; clients read `code` whatever the HTTP status.",
    ),
    paths(
        super::kyc::init,
        super::kyc::status,
        super::customer::check,
        super::sandbox::complete,
        super::webhooks::receive,
    ),
    modifiers(&BasicAuth, &Webhooks, &OperationIds),
)]
struct ApiDoc;

struct BasicAuth;

/// A handler that serves GET and POST is one annotation, so both operations would carry
/// its name; operation ids must be unique: `status_get`, `status_post`.
struct OperationIds;

impl Modify for OperationIds {
    fn modify(&self, doc: &mut Document) {
        for item in doc.paths.paths.values_mut() {
            if let (Some(get), Some(post)) = (item.get.as_mut(), item.post.as_mut()) {
                for (op, method) in [(get, "get"), (post, "post")] {
                    if let Some(id) = op.operation_id.as_mut() {
                        id.push('_');
                        id.push_str(method);
                    }
                }
            }
        }
    }
}

impl Modify for BasicAuth {
    fn modify(&self, doc: &mut Document) {
        doc.info.license = None;
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "basic",
                SecurityScheme::Http(
                    Http::builder()
                        .scheme(HttpAuthScheme::Basic)
                        .description(Some("clientId and clientSecret"))
                        .build(),
                ),
            );
    }
}

/// The callbacks paycc sends to a client's URL (`paycc client set-callback`).
struct Webhooks;

#[derive(ToSchema)]
#[allow(dead_code)] // The shape `domain::callback` writes.
pub(super) struct CallbackEvent {
    /// `paycc.kyc.success`, `paycc.kyc.failed` or `paycc.kyc.pending`.
    event: String,
    code: String,
    message: String,
    data: CallbackData,
}

#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // The shape `domain::callback` writes.
pub(super) struct CallbackData {
    kid: String,
    cust_id: String,
    merchant_code: String,
    state: String,
}

impl Modify for Webhooks {
    fn modify(&self, doc: &mut Document) {
        use openapi::path::{HttpMethod, OperationBuilder, PathItem};
        use openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        let components = doc.components.get_or_insert_with(Default::default);
        for (name, schema) in [
            ("CallbackEvent", CallbackEvent::schema()),
            ("CallbackData", CallbackData::schema()),
        ] {
            components.schemas.insert(name.into(), schema);
        }
        let body = openapi::request_body::RequestBodyBuilder::new()
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(RefOr::Ref(Ref::from_schema_name("CallbackEvent"))))
                    .build(),
            )
            .build();
        let operation = OperationBuilder::new()
            .summary(Some("A KYC request changed state"))
            .description(Some(
                "Sent to the API client's callback URL, retried with backoff until a 2xx, at least once. Signed: `Signature` is the hex HMAC-SHA256 of the raw body under the client's webhook secret; `webhook-id`, `webhook-timestamp` and `webhook-signature` follow the Standard Webhooks spec. `webhook-id` is stable across retries.",
            ))
            .request_body(Some(body))
            .response("2XX", ResponseBuilder::new().description("Received").build())
            .build();
        let mut hooks = openapi::path::Paths::new();
        hooks.paths.insert(
            "kycEvent".into(),
            PathItem::new(HttpMethod::Post, operation),
        );
        doc.webhooks = Some(hooks);
    }
}

/// The document and its page for one node: only the endpoints its provider serves.
/// Both made once, at start: each request only copies a reference to the bytes.
pub struct Reference {
    document: Bytes,
    page: Bytes,
}

impl Reference {
    pub fn for_provider(offers: &Offers, provider: &str) -> Self {
        let mut document = ApiDoc::openapi();
        let webhook = format!("/v1/webhooks/{provider}");
        document.paths.paths.retain(|path, _| match path.as_str() {
            "/v1/sandbox/kyc/{kid}/complete" => offers.simulated_journey,
            p if p.starts_with("/v1/webhooks/") => {
                offers.webhook_signature.is_some() && *p == webhook
            }
            _ => true,
        });
        Self {
            page: super::reference::render(&document).into(),
            document: serde_json::to_vec(&document)
                .expect("the document serialises")
                .into(),
        }
    }

    pub fn document(&self) -> Response {
        (
            [(header::CONTENT_TYPE, "application/json")],
            self.document.clone(),
        )
            .into_response()
    }

    pub fn page(&self) -> Response {
        Html(self.page.clone()).into_response()
    }
}
