//! A Digio-compatible server on loopback, written from `shared/spec/digio.md`: the
//! two calls paycc makes, Basic auth, Digio's error bodies, and knobs for a test to
//! make it slow, failing or malformed, or to move a request along.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::prelude::*;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const CLIENT_ID: &str = "AI4K2FAKE";
pub const CLIENT_SECRET: &str = "fake-digio-secret";
pub const WEBHOOK_SECRET: &str = "fake-digio-webhook-secret";
pub const TEMPLATE: &str = "DIGILOCKER_AADHAAR_PAN";

/// How the fake answers the next calls.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Normal,
    Slow(Duration),
    Status(u16),
    /// 200 with a body that is not JSON.
    Garbage,
}

#[derive(Default)]
struct Inner {
    create_mode: Option<Mode>,
    response_mode: Option<Mode>,
    creates: Vec<Value>,
    response_calls: usize,
    /// kid → the JSON `/response` answers with.
    requests: HashMap<String, Value>,
}

#[derive(Clone)]
pub struct FakeDigio {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeDigio {
    pub async fn start() -> Self {
        let inner: Arc<Mutex<Inner>> = Arc::default();
        let app = Router::new()
            .route("/client/kyc/v2/request/with_template", post(create))
            .route("/client/kyc/v2/{kid}/response", post(response))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, inner }
    }

    /// paycc's Digio settings pointing here, with 1 s timeouts; status reads and the
    /// reconciler stay out of the way unless a test shortens them.
    pub fn args(&self) -> paycc::config::DigioArgs {
        paycc::config::DigioArgs {
            api_url: Some(self.url.clone()),
            gateway_url: Some("https://gateway.digio.test".into()),
            client_id: Some(CLIENT_ID.into()),
            client_secret: Some(CLIENT_SECRET.into()),
            template: Some(TEMPLATE.into()),
            webhook_secret: Some(WEBHOOK_SECRET.into()),
            timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            stale_after: Duration::from_secs(3600),
            reconcile_after: Duration::from_secs(3600),
            ..Default::default()
        }
    }

    /// A `paycc serve` node's settings for Digio at this fake, and `extra`.
    pub fn node_env<'a>(&'a self, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut env = vec![
            ("PAYCC_PROVIDER", "digio"),
            ("PAYCC_DIGIO_API_URL", self.url.as_str()),
            ("PAYCC_DIGIO_GATEWAY_URL", "https://gateway.digio.test"),
            ("PAYCC_DIGIO_CLIENT_ID", CLIENT_ID),
            ("PAYCC_DIGIO_CLIENT_SECRET", CLIENT_SECRET),
            ("PAYCC_DIGIO_TEMPLATE", TEMPLATE),
            ("PAYCC_DIGIO_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ];
        env.extend_from_slice(extra);
        env
    }

    pub fn create_mode(&self, mode: Mode) {
        self.inner.lock().unwrap().create_mode = Some(mode);
    }

    pub fn response_mode(&self, mode: Mode) {
        self.inner.lock().unwrap().response_mode = Some(mode);
    }

    /// Every create body received.
    pub fn creates(&self) -> Vec<Value> {
        self.inner.lock().unwrap().creates.clone()
    }

    pub fn response_calls(&self) -> usize {
        self.inner.lock().unwrap().response_calls
    }

    /// Sets what `/response` says about `kid`.
    pub fn set_response(&self, kid: &str, body: Value) {
        self.inner
            .lock()
            .unwrap()
            .requests
            .insert(kid.to_owned(), body);
    }

    /// A signed webhook delivery: (body, `X-Digio-Checksum`).
    pub fn webhook(event_id: &str, event: &str, kid: &str, status: &str) -> (String, String) {
        let body = json!({"id": event_id, "event": event, "entities": ["kyc_request"],
            "payload": {"kyc_request": {"id": kid, "status": status}}, "created_at": 1_700_000_000})
        .to_string();
        let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        let checksum = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        (body, checksum)
    }
}

/// What Digio's `/response` says about an approved request, as the spec shows it.
pub fn approved(kid: &str) -> Value {
    json!({"id": kid, "status": "approved", "customer_identifier": "6393712345", "reference_id": "REF1",
        "actions": [
            {"type": "digilocker", "status": "success", "details": {
                "aadhaar": {"id_number": "xxxxxxxx6355", "gender": "M", "image": "/9j/4AAQSkZJRgABAQ", "name": "Sanjay Kumar",
                    "dob": "25/08/1974", "father_name": "Ram Kumar", "current_address": "12 Civil Lines, Saharanpur",
                    "current_address_details": {"address": "12 Civil Lines", "locality_or_post_office": "Court Road",
                        "district_or_city": "Saharanpur", "state": "Uttar Pradesh", "pincode": "247001"},
                    "permanent_address_details": {"address": "elsewhere"}},
                "pan": {"id_number": "ENGPK1234L", "name": "SANJAY KUMAR", "dob": "25/08/1974"}}},
            {"type": "selfie", "status": "success", "file_id": "FIL1",
             "face_match_result": {"match_result": "matched", "confidence": "97"},
             "validation_result": {"LIVENESS_CHECK": {"score": 0.9467, "result": "PASS"}}}],
        "unknown_future_field": {"nested": true}})
}

fn authorised(headers: &HeaderMap) -> bool {
    let expected = format!(
        "Basic {}",
        BASE64_STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
}

/// Applies a mode; `Some` is the answer to give instead of the normal one.
async fn misbehave(mode: Option<Mode>) -> Option<Response> {
    match mode? {
        Mode::Normal => None,
        Mode::Slow(d) => {
            tokio::time::sleep(d).await;
            None
        }
        Mode::Status(code) => Some(
            (
                StatusCode::from_u16(code).unwrap(),
                json!({"code": "SERVER_ERROR", "message": "try later"}).to_string(),
            )
                .into_response(),
        ),
        Mode::Garbage => Some((StatusCode::OK, "<html>gateway error</html>").into_response()),
    }
}

fn json_response(status: StatusCode, v: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        v.to_string(),
    )
        .into_response()
}

async fn create(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if !authorised(&headers) {
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({"code": "INVALID_API_CREDENTIALS", "message": "Invalid credentials"}),
        );
    }
    let mode = inner.lock().unwrap().create_mode.clone();
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    inner.lock().unwrap().creates.push(body.clone());
    if let Some(answer) = misbehave(mode).await {
        return answer;
    }
    let tail: String = paycc::crypto::random_alnum(14);
    let kid = format!("KID{}{tail}", paycc::crypto::random_digits(15));
    let token = format!(
        "GWT{}{}",
        paycc::crypto::random_digits(15),
        paycc::crypto::random_alnum(14)
    );
    inner.lock().unwrap().requests.insert(
        kid.clone(),
        json!({"id": kid, "status": "requested", "actions": []}),
    );
    json_response(
        StatusCode::OK,
        json!({"id": kid, "created_at": "2026-11-25 10:00:00", "status": "requested",
            "customer_identifier": body["customer_identifier"], "reference_id": body["reference_id"],
            "transaction_id": body["transaction_id"], "customer_name": body["customer_name"],
            "expire_in_days": body["expire_in_days"], "reminder_registered": false,
            "access_token": {"entity_id": kid, "id": token, "valid_till": "2026-11-25 11:00:00", "created_at": "2026-11-25 10:00:00"},
            "workflow_name": "DigiLocker", "auto_approved": false, "template_id": "TMP1"}),
    )
}

async fn response(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(kid): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !authorised(&headers) {
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({"code": "INVALID_API_CREDENTIALS", "message": "Invalid credentials"}),
        );
    }
    let mode = {
        let mut i = inner.lock().unwrap();
        i.response_calls += 1;
        i.response_mode.clone()
    };
    if let Some(answer) = misbehave(mode).await {
        return answer;
    }
    match inner.lock().unwrap().requests.get(&kid) {
        Some(v) => json_response(StatusCode::OK, v.clone()),
        None => json_response(
            StatusCode::NOT_FOUND,
            json!({"code": "1024", "message": "resource not found"}),
        ),
    }
}
