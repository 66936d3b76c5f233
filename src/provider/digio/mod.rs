//! The Digio provider: KYC requests through `POST /client/kyc/v2/request/with_template`,
//! results through `POST /client/kyc/v2/{KID}/response`, webhooks checked against
//! `X-Digio-Checksum`. One shared HTTP client with connect and total timeouts, bounded
//! retries for reads only, and a circuit breaker for a provider that keeps failing.

mod wire;

use super::breaker::Breaker;
use super::{
    Applicant, KycProvider, Offers, ProviderError, ProviderResult, Session, SessionRequest,
    WebhookError, WebhookNotice,
};
use async_trait::async_trait;
use base64::prelude::*;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::time::Duration;

pub const NAME: &str = "digio";

/// Digio's answers can carry photos; anything far larger is refused unread.
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;
/// Reads are retried this many times on timeouts, connection errors and 5xx.
const READ_RETRIES: u32 = 2;

pub struct DigioSettings {
    pub api_url: String,
    pub gateway_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub template: String,
    pub webhook_secret: String,
    pub default_redirect: Option<String>,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub failures_before_pause: u32,
    pub pause: Duration,
}

pub struct Digio {
    http: reqwest::Client,
    api_url: String,
    gateway_url: String,
    template: String,
    authorization: String,
    webhook_key: Hmac<Sha256>,
    default_redirect: Option<String>,
    breaker: Breaker,
}

/// How one call went, for the caller and for the breaker.
enum Outcome {
    Answer(Value),
    /// 4xx: Digio is up but refused; the body's code is kept for the log.
    Refused(u16, String),
    /// Timeouts, connection errors, 5xx, unreadable bodies: Digio is not well.
    Broken(ProviderError),
}

impl Digio {
    pub fn new(s: DigioSettings) -> Result<Self, String> {
        crate::crypto::install_tls_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(s.connect_timeout)
            .timeout(s.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the HTTP client for Digio: {e}"))?;
        let webhook_key = Hmac::<Sha256>::new_from_slice(s.webhook_secret.as_bytes())
            .map_err(|_| "PAYCC_DIGIO_WEBHOOK_SECRET is unusable".to_owned())?;
        Ok(Self {
            http,
            api_url: s.api_url.trim_end_matches('/').to_owned(),
            gateway_url: s.gateway_url.trim_end_matches('/').to_owned(),
            template: s.template,
            authorization: format!(
                "Basic {}",
                BASE64_STANDARD.encode(format!("{}:{}", s.client_id, s.client_secret))
            ),
            webhook_key,
            default_redirect: s.default_redirect,
            breaker: Breaker::new(s.failures_before_pause, s.pause),
        })
    }

    async fn call(&self, path: &str, body: &Value) -> Outcome {
        let sent = self
            .http
            .post(format!("{}{path}", self.api_url))
            .header(reqwest::header::AUTHORIZATION, &self.authorization)
            .json(body)
            .send()
            .await;
        let mut res = match sent {
            Ok(res) => res,
            Err(e) if e.is_timeout() => return Outcome::Broken(ProviderError::Timeout),
            Err(e) => {
                return Outcome::Broken(ProviderError::Failed(format!(
                    "cannot reach Digio: {}",
                    e.without_url()
                )));
            }
        };
        let status = res.status().as_u16();
        let mut bytes = Vec::new();
        loop {
            match res.chunk().await {
                Ok(Some(chunk)) if bytes.len() + chunk.len() <= MAX_RESPONSE_BYTES => {
                    bytes.extend_from_slice(&chunk)
                }
                Ok(Some(_)) => {
                    return Outcome::Broken(ProviderError::Failed(
                        "Digio's answer is too large".into(),
                    ));
                }
                Ok(None) => break,
                Err(e) if e.is_timeout() => return Outcome::Broken(ProviderError::Timeout),
                Err(e) => {
                    return Outcome::Broken(ProviderError::Failed(format!(
                        "Digio's answer broke off: {}",
                        e.without_url()
                    )));
                }
            }
        }
        let json: Option<Value> = serde_json::from_slice(&bytes).ok();
        match status {
            200..=299 => match json {
                Some(v) if v.is_object() => Outcome::Answer(v),
                _ => Outcome::Broken(ProviderError::Failed(format!(
                    "Digio answered HTTP {status} without a JSON object"
                ))),
            },
            400..=499 => {
                // Digio's error body is {"code","message","details"}; only the code is kept,
                // the message may quote what we sent.
                let code = json
                    .as_ref()
                    .and_then(|v| v.get("code"))
                    .map(|c| c.to_string())
                    .unwrap_or_default();
                Outcome::Refused(status, code)
            }
            _ => Outcome::Broken(ProviderError::Failed(format!(
                "Digio answered HTTP {status}"
            ))),
        }
    }

    /// One call through the breaker.
    async fn guarded(&self, path: &str, body: &Value) -> Result<Outcome, ProviderError> {
        self.breaker.check()?;
        let outcome = self.call(path, body).await;
        self.breaker.record(!matches!(outcome, Outcome::Broken(_)));
        Ok(outcome)
    }

    fn gateway_url(&self, kid: &str, req: &SessionRequest, token: &str) -> String {
        let mut url = format!(
            "{}/#/gateway/login/{kid}/{}/{}?token_id={token}",
            self.gateway_url,
            req.reference,
            encode(&req.mobile)
        );
        if let Some(redirect) = req.redirect_url.as_ref().or(self.default_redirect.as_ref()) {
            url.push_str("&redirect_url=");
            url.push_str(&encode(redirect));
        }
        url
    }
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[async_trait]
impl KycProvider for Digio {
    fn name(&self) -> &'static str {
        NAME
    }

    fn offers(&self) -> Offers {
        Offers {
            simulated_journey: false,
            webhook_signature: Some("x-digio-checksum"),
        }
    }

    fn is_remote(&self) -> bool {
        true
    }

    async fn create_session(&self, req: &SessionRequest) -> Result<Session, ProviderError> {
        let body = json!({
            "customer_identifier": req.mobile,
            "customer_name": req.name,
            "template_name": self.template,
            "notify_customer": false,
            "generate_access_token": true,
            "reference_id": req.reference,
            "transaction_id": req.reference,
            "expire_in_days": req.expire_in_days,
        });
        match self
            .guarded("/client/kyc/v2/request/with_template", &body)
            .await?
        {
            Outcome::Answer(v) => {
                let (kid, token) = wire::created(&v).ok_or_else(|| {
                    ProviderError::Failed("Digio's answer has no request id or access token".into())
                })?;
                let url = self.gateway_url(&kid, req, &token);
                Ok(Session { kid, url, token })
            }
            Outcome::Refused(status, code) => Err(ProviderError::Failed(format!(
                "Digio refused the request: HTTP {status} {code}"
            ))),
            Outcome::Broken(e) => Err(e),
        }
    }

    async fn fetch_result(
        &self,
        kid: &str,
        _: &Applicant,
    ) -> Result<ProviderResult, ProviderError> {
        let path = format!("/client/kyc/v2/{}/response", encode(kid));
        let mut attempt = 0;
        loop {
            match self.guarded(&path, &json!({})).await? {
                Outcome::Answer(v) => return Ok(wire::result(&v)),
                Outcome::Refused(404, _) => return Err(ProviderError::Unknown),
                Outcome::Refused(_, code) if code.contains("1024") => {
                    return Err(ProviderError::Unknown);
                }
                Outcome::Refused(status, code) => {
                    return Err(ProviderError::Failed(format!(
                        "Digio refused the read: HTTP {status} {code}"
                    )));
                }
                Outcome::Broken(e) if attempt >= READ_RETRIES => return Err(e),
                Outcome::Broken(_) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
            }
        }
    }

    fn verify_webhook(
        &self,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<WebhookNotice, WebhookError> {
        let presented = signature
            .and_then(|s| hex::decode(s.trim()).ok())
            .ok_or(WebhookError::BadSignature)?;
        let mut mac = self.webhook_key.clone();
        mac.update(body);
        mac.verify_slice(&presented)
            .map_err(|_| WebhookError::BadSignature)?;
        let v: Value =
            serde_json::from_slice(body).map_err(|_| WebhookError::Malformed("not JSON"))?;
        let event_id = match v.get("id") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(WebhookError::Malformed("no event id")),
        };
        let event = v
            .get("event")
            .and_then(Value::as_str)
            .map(wire::normalise_event)
            .unwrap_or_default();
        let kid = v
            .pointer("/payload/kyc_request/id")
            .or_else(|| v.pointer("/payload/id"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok(WebhookNotice {
            event_id,
            event,
            kid,
        })
    }
}
