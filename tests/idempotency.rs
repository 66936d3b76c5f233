//! `Idempotency-Key` on init, on both backends, including concurrent duplicates.

mod common;
use common::fake_digio::{FakeDigio, Mode};
use common::*;
use serde_json::json;
use std::time::Duration;

const INIT: &str = "/v1/service/paycc/init/kyc";

async fn init_with_key(app: &TestApp, key: &str, body: &serde_json::Value) -> Reply {
    let res = http_client()
        .post(format!("{}{INIT}", app.base))
        .header("Authorization", app.auth())
        .header("Idempotency-Key", key)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    Reply::from_response(res).await
}

async fn same_key_same_body_gives_the_stored_reply(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = init_with_key(&app, "order-42", &app.init_body()).await;
    assert_eq!(first.status, 200, "{}", first.text);
    // Written differently, the same request.
    let mut same = app.init_body();
    same["mobile"] = json!("+91 6393712345");
    let again = init_with_key(&app, "order-42", &same).await;
    assert_eq!(again.text, first.text);
    // After the request ended, the key still answers with the same reply, not a new request.
    let kid = first.json["data"]["kid"].as_str().unwrap();
    assert_eq!(app.complete(kid, "rejected", 5).await.status, 200);
    assert_eq!(
        init_with_key(&app, "order-42", &app.init_body()).await.text,
        first.text
    );
    // With another key, a new request opens.
    assert_new_kid(
        &init_with_key(&app, "order-43", &app.init_body()).await,
        kid,
    );
}

async fn same_key_different_body_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(
        init_with_key(&app, "k-1", &app.init_body()).await.status,
        200
    );
    let mut other = app.init_body();
    other["email"] = json!("someone.else@example.com");
    init_with_key(&app, "k-1", &other).await.assert_exact(
        422,
        r#"{"code":"0x0202","status":"FAILURE","message":"This Idempotency-Key was already used with a different request."}"#,
    );
    // Keys belong to one API client: another client's identical key is its own.
    let (other_auth, other_merchant) = app.other_client().await;
    let mut body = app.init_body();
    body["merchantCode"] = json!(other_merchant);
    let res = http_client()
        .post(format!("{}{INIT}", app.base))
        .header("Authorization", other_auth)
        .header("Idempotency-Key", "k-1")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

async fn malformed_keys_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for key in ["has space", &"k".repeat(256)] {
        init_with_key(&app, key, &app.init_body()).await.assert_exact(
            422,
            r#"{"code":"0x0202","status":"FAILURE","message":"The Idempotency-Key header must be 1 to 255 visible ASCII characters."}"#,
        );
    }
}

async fn concurrent_duplicates_open_one_request(backend: Backend) {
    let app = std::sync::Arc::new(TestApp::spawn(backend).await);
    let mut tasks = Vec::new();
    for i in 0..30 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let mut body = app.init_body();
            // Different people under one key: the first wins, the rest are refused or wait.
            if i % 2 == 1 {
                body["email"] = json!(format!("p{i}@example.com"));
            }
            init_with_key(&app, "burst", &body).await
        }));
    }
    let mut kids = std::collections::HashSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            200 => {
                kids.insert(r.json["data"]["kid"].as_str().unwrap().to_owned());
            }
            409 => assert_eq!(r.header("retry-after"), Some("1")),
            422 => assert_eq!(
                r.json["message"],
                "This Idempotency-Key was already used with a different request."
            ),
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    assert_eq!(kids.len(), 1, "one key, one request: {kids:?}");
}

async fn in_flight_duplicate_waits_and_no_second_provider_request(backend: Backend) {
    let fake = FakeDigio::start().await;
    fake.create_mode(Mode::Slow(Duration::from_millis(800)));
    let mut args = fake.args();
    args.timeout = Duration::from_secs(5);
    let app = std::sync::Arc::new(
        TestApp::spawn_with(
            backend,
            Options {
                digio: Some(args),
                ..Options::default()
            },
        )
        .await,
    );
    let first = {
        let app = app.clone();
        tokio::spawn(async move { init_with_key(&app, "slow-1", &app.init_body()).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let busy = init_with_key(&app, "slow-1", &app.init_body()).await;
    busy.assert_exact(
        409,
        r#"{"code":"0x0202","status":"FAILURE","message":"A request with this Idempotency-Key is still being processed. Retry shortly."}"#,
    );
    assert_eq!(busy.header("retry-after"), Some("1"));
    let first = first.await.unwrap();
    assert_eq!(first.status, 200);
    assert_eq!(
        init_with_key(&app, "slow-1", &app.init_body()).await.text,
        first.text
    );
    assert_eq!(fake.creates().len(), 1);
}

on_both_backends!(
    same_key_same_body_gives_the_stored_reply,
    same_key_different_body_is_refused,
    malformed_keys_are_refused,
    concurrent_duplicates_open_one_request,
    in_flight_duplicate_waits_and_no_second_provider_request,
);
