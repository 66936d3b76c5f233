//! A real paycc on a real socket (port 0) over a fresh SQLite file, and helpers to talk
//! to it the way a partner's backend does.
#![allow(dead_code)]

use base64::prelude::*;
use paycc::app::Server;
use paycc::config::{Database, ProviderKind, ServeSettings, StoreSettings};
use paycc::service::Service;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

pub const PAN: &str = "ENGPK1234L";
pub const NAME: &str = "Sanjay Kumar";
pub const EMAIL: &str = "sanjay.kumar@example.com";
pub const MOBILE: &str = "6393712345";

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub service: Arc<Service>,
    pub client_id: String,
    pub secret: String,
    pub merchant: String,
    pub dir: TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

pub struct Options {
    pub kyc_ttl: Duration,
    pub expiry_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            kyc_ttl: Duration::from_secs(86_400),
            expiry_interval: Duration::from_secs(30),
        }
    }
}

pub fn store_settings(dir: &TempDir) -> StoreSettings {
    StoreSettings {
        database: Database::Sqlite(dir.path().join("paycc.db")),
        encryption_key: None,
        hash_key: None,
        sqlite_readers: Some(2),
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(opts: Options) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let serve = ServeSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            public_url: None,
            provider: ProviderKind::Sandbox,
            kyc_ttl: opts.kyc_ttl,
            expiry_interval: opts.expiry_interval,
        };
        let server = Server::bind(&store_settings(&dir), &serve)
            .await
            .expect("paycc binds");
        let base = format!("http://{}", server.local_addr());
        let service = server.service();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        let creds = service.create_client("Test partner").await.unwrap();
        let merchant = service
            .create_merchant(&creds.client_id, "Test merchant", Some("MID693000001"))
            .await
            .unwrap();
        Self {
            base,
            http: reqwest::Client::new(),
            service,
            client_id: creds.client_id,
            secret: creds.client_secret,
            merchant,
            dir,
            shutdown: Some(tx),
        }
    }

    pub fn auth(&self) -> String {
        basic(&self.client_id, &self.secret)
    }

    pub fn init_body(&self) -> Value {
        json!({"pan": PAN, "name": NAME, "email": EMAIL, "mobile": MOBILE, "merchantCode": self.merchant})
    }

    /// Sends `body` as raw bytes with the caller's credentials; returns status, headers, text.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<String>,
        auth: Option<&str>,
    ) -> Reply {
        send(
            &self.http,
            &format!("{}{path}", self.base),
            method,
            body,
            auth,
        )
        .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(
            reqwest::Method::POST,
            path,
            Some(body.to_string()),
            Some(&self.auth()),
        )
        .await
    }

    pub async fn init(&self, body: &Value) -> Reply {
        self.post("/v1/service/paycc/init/kyc", body).await
    }

    /// Inits the default customer and returns the kid.
    pub async fn init_kid(&self) -> String {
        let r = self.init(&self.init_body()).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json["data"]["kid"].as_str().unwrap().to_owned()
    }

    pub async fn status(&self, kid: &str) -> Reply {
        self.send(
            reqwest::Method::GET,
            &format!("/v1/service/paycc/kyc/status/{kid}"),
            None,
            Some(&self.auth()),
        )
        .await
    }

    pub async fn complete(&self, kid: &str, outcome: &str, face_match: u8) -> Reply {
        self.post(
            &format!("/v1/sandbox/kyc/{kid}/complete"),
            &json!({"outcome": outcome, "faceMatch": face_match}),
        )
        .await
    }

    pub async fn customer(&self, body: &Value) -> Reply {
        self.post("/v1/service/paycc/customer", body).await
    }

    /// Another API client with its own merchant, on the same server.
    pub async fn other_client(&self) -> (String, String) {
        let creds = self.service.create_client("Other partner").await.unwrap();
        let merchant = self
            .service
            .create_merchant(&creds.client_id, "Other merchant", None)
            .await
            .unwrap();
        (basic(&creds.client_id, &creds.client_secret), merchant)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// One request as a partner's backend makes it: JSON body, optional Basic credentials.
pub async fn send(
    http: &reqwest::Client,
    url: &str,
    method: reqwest::Method,
    body: Option<String>,
    auth: Option<&str>,
) -> Reply {
    let mut req = http.request(method, url);
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    if let Some(b) = body {
        req = req.header("Content-Type", "application/json").body(b);
    }
    Reply::from_response(req.send().await.expect("paycc answers")).await
}

pub fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", BASE64_STANDARD.encode(format!("{id}:{secret}")))
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    pub async fn from_response(res: reqwest::Response) -> Self {
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.expect("a readable body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            text,
            json,
        }
    }

    /// Asserts the HTTP status and the exact envelope text.
    pub fn assert_exact(&self, status: u16, envelope: &str) {
        assert_eq!((self.status, self.text.as_str()), (status, envelope));
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub fn is_kid(s: &str) -> bool {
    paycc::domain::ids::is_kid(s)
}

/// Asserts that each `"key":` appears in `text` after the previous one.
pub fn assert_keys_in_order(text: &str, keys: &[&str]) {
    let mut at = 0;
    for k in keys {
        let needle = format!("\"{k}\":");
        match text[at..].find(&needle) {
            Some(i) => at += i + needle.len(),
            None => panic!("key {k} missing or out of order in {text}"),
        }
    }
}
