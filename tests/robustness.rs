//! Bad input of any shape gets a clear envelope: never a 500, a panic or a hang.

mod common;
use common::*;
use proptest::prelude::*;
use serde_json::json;
use std::io::{Read, Write};

const INIT: &str = "/v1/service/paycc/init/kyc";
const NOT_OBJECT: &str = r#"{"code":"0x0203","status":"MISSING_PARAMETER","message":"The request body must be a JSON object."}"#;

async fn bodies_that_are_not_json_objects(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    for body in [
        "[1,2]",
        "\"pan\"",
        "42",
        "null",
        "{\"pan\":",
        "{'pan':'x'}",
        "\u{0}\u{1}",
        deep.as_str(),
        "{\"pan\":\"A\",\"pan\":\"B\"}x",
    ] {
        let r = app
            .send(
                reqwest::Method::POST,
                INIT,
                Some(body.to_owned()),
                Some(&app.auth()),
            )
            .await;
        r.assert_exact(400, NOT_OBJECT);
    }
    // An empty body is an empty object: every field is missing.
    let r = app
        .send(
            reqwest::Method::POST,
            INIT,
            Some(String::new()),
            Some(&app.auth()),
        )
        .await;
    assert_eq!(
        (r.status, r.json["message"].as_str()),
        (400, Some("The pan field is required."))
    );
}

async fn bodies_over_16_kib_are_refused_cleanly(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut body = app.init_body();
    body["padding"] = json!("x".repeat(17 * 1024));
    let r = app.init(&body).await;
    r.assert_exact(413, r#"{"code":"0x0202","status":"FAILURE","message":"The request body is larger than 16384 bytes."}"#);
    // Just under the limit still works.
    body["padding"] = json!("x".repeat(15 * 1024));
    assert_eq!(app.init(&body).await.status, 200);
    // Several megabytes are refused without being read whole.
    let huge = format!("{{\"pan\":\"{}\"}}", "A".repeat(8 << 20));
    let r = app
        .send(reqwest::Method::POST, INIT, Some(huge), Some(&app.auth()))
        .await;
    assert_eq!((r.status, r.json["code"].as_str()), (413, Some("0x0202")));
}

async fn unknown_routes_and_methods_get_envelopes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = app
        .send(
            reqwest::Method::GET,
            "/v1/service/paycc/nope",
            None,
            Some(&app.auth()),
        )
        .await;
    r.assert_exact(
        404,
        r#"{"code":"0x0202","status":"FAILURE","message":"No such endpoint."}"#,
    );
    let r = app
        .send(reqwest::Method::DELETE, INIT, None, Some(&app.auth()))
        .await;
    r.assert_exact(405, r#"{"code":"0x0202","status":"FAILURE","message":"This endpoint does not accept this HTTP method."}"#);
}

async fn request_ids_are_echoed_or_generated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = app
        .http
        .post(format!("{}{INIT}", app.base))
        .header("x-request-id", "partner-req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "partner-req-42");
    for unsafe_id in ["has space", "new\tline", &"x".repeat(200)] {
        let r = app
            .http
            .post(format!("{}{INIT}", app.base))
            .header("x-request-id", unsafe_id)
            .send()
            .await
            .unwrap();
        let got = r.headers()["x-request-id"].to_str().unwrap();
        assert!(got != unsafe_id && got.len() == 20, "{got}");
    }
    let r = app
        .http
        .get(format!("{}/nowhere", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"].len(), 20);
}

async fn a_stalled_upload_does_not_hold_up_anyone_else(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let auth = app.auth();
    // Promise 1000 bytes, send 10, then stall.
    let mut stalled = std::net::TcpStream::connect(&addr).unwrap();
    write!(stalled, "POST {INIT} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: 1000\r\n\r\n{{\"pan\":\"EN").unwrap();
    for _ in 0..20 {
        assert_eq!(app.init(&app.init_body()).await.status, 200);
    }
    stalled
        .set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(
        stalled.read(&mut buf).is_err(),
        "the stalled request is still waiting for its body"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    /// Any body at all, under any field, gets an envelope below 500.
    #[test]
    fn arbitrary_bodies_never_fail_the_server(
        raw in proptest::collection::vec(any::<u8>(), 0..300),
        field in prop::sample::select(vec!["pan", "name", "email", "mobile", "merchantCode", "redirectUrl"]),
        value in any::<String>(),
        number in any::<f64>(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let app = shared_app().await;
            let r = app.send(reqwest::Method::POST, INIT, Some(String::from_utf8_lossy(&raw).into_owned()), Some(&app.auth())).await;
            assert!(r.status < 500 && r.json["code"].is_string(), "{}", r.text);
            for v in [json!(value), json!(number), json!({"x": value}), json!([value])] {
                let mut body = app.init_body();
                body[field] = v;
                let r = app.init(&body).await;
                assert!(r.status < 500 && r.json["message"].is_string(), "{}", r.text);
            }
        });
    }
}

/// One server for all property cases, on its own runtime thread.
async fn shared_app() -> &'static RemoteApp {
    static APP: std::sync::OnceLock<RemoteApp> = std::sync::OnceLock::new();
    APP.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                let app = TestApp::spawn(Backend::Sqlite).await;
                tx.send(RemoteApp {
                    base: app.base.clone(),
                    auth: app.auth(),
                    merchant: app.merchant.clone(),
                })
                .unwrap();
                std::future::pending::<()>().await;
                drop(app);
            });
        });
        rx.recv().unwrap()
    })
}

struct RemoteApp {
    base: String,
    auth: String,
    merchant: String,
}

impl RemoteApp {
    fn auth(&self) -> String {
        self.auth.clone()
    }

    fn init_body(&self) -> serde_json::Value {
        init_body_for(&self.merchant)
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<String>,
        auth: Option<&str>,
    ) -> Reply {
        send(
            &common::http_client(),
            &format!("{}{path}", self.base),
            method,
            body,
            auth,
        )
        .await
    }

    async fn init(&self, body: &serde_json::Value) -> Reply {
        self.send(
            reqwest::Method::POST,
            INIT,
            Some(body.to_string()),
            Some(&self.auth),
        )
        .await
    }
}

on_both_backends!(
    bodies_that_are_not_json_objects,
    bodies_over_16_kib_are_refused_cleanly,
    unknown_routes_and_methods_get_envelopes,
    request_ids_are_echoed_or_generated,
    a_stalled_upload_does_not_hold_up_anyone_else,
);
