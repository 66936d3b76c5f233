//! Merchant callbacks through the real doors: a KYC moves through the API, a receiver
//! on loopback gets the signed event over HTTP, and operators see the outbox.

mod common;
use paycc::store::CallbackFilter;

use common::receiver::Receiver;
use common::{Backend, Options, TestApp, basic, init_body_for, send};
use hmac::{Hmac, KeyInit, Mac};
use paycc::service::CallbackSetup;
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

async fn app_with(backend: Backend, opts: Options) -> (TestApp, Receiver, CallbackSetup) {
    let app = TestApp::spawn_with(backend, opts).await;
    let receiver = Receiver::start().await;
    let setup = app
        .service
        .callbacks
        .set(&app.client_id, &receiver.url(), false)
        .await
        .unwrap();
    (app, receiver, setup)
}

/// The exact body an event for `kid` carries.
fn body(
    app: &TestApp,
    kid: &str,
    cust_id: &str,
    event: &str,
    code: &str,
    message: &str,
    state: &str,
) -> String {
    format!(
        r#"{{"event":"{event}","code":"{code}","message":"{message}","data":{{"kid":"{kid}","custId":"{cust_id}","merchantCode":"{}","state":"{state}"}}}}"#,
        app.merchant
    )
}

async fn cust_id(app: &TestApp) -> String {
    let r = app
        .customer(&serde_json::json!({"merchantCode": app.merchant, "pan": common::PAN}))
        .await;
    r.json["data"]["custId"].as_str().unwrap().to_owned()
}

/// The outbox row of an event, as `paycc callbacks list` sees it.
async fn event_row(app: &TestApp, event_id: &str) -> paycc::store::CallbackRecord {
    app.service
        .callbacks
        .list(CallbackFilter::All, 100)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.event_id == event_id)
        .unwrap_or_else(|| panic!("no event {event_id}"))
}

async fn wait_status(app: &TestApp, event_id: &str, status: &str) -> paycc::store::CallbackRecord {
    let row = wait_for(app, event_id, |row| row.status == status).await;
    assert_eq!(row.status, status, "{row:?}");
    row
}

/// The event once it has had `attempts` attempts (as it stands at the deadline if not).
async fn wait_attempts(
    app: &TestApp,
    event_id: &str,
    attempts: i64,
) -> paycc::store::CallbackRecord {
    let row = wait_for(app, event_id, |row| row.attempts >= attempts).await;
    assert_eq!(row.attempts, attempts, "{row:?}");
    row
}

async fn wait_for(
    app: &TestApp,
    event_id: &str,
    done: impl Fn(&paycc::store::CallbackRecord) -> bool,
) -> paycc::store::CallbackRecord {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let row = event_row(app, event_id).await;
        if done(&row) || tokio::time::Instant::now() > deadline {
            return row;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Longer than any test runs: a retry comes only when the test moves the clock.
const HOUR: Duration = Duration::from_secs(3600);

fn hex_hmac(key: &[u8], body: &[u8]) -> String {
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    m.update(body);
    hex::encode(m.finalize().into_bytes())
}

async fn delivers_signed_events_in_order(backend: Backend) {
    let (app, receiver, setup) = app_with(backend, Options::default()).await;
    let secret = setup
        .webhook_secret
        .clone()
        .expect("a first secret is made");
    assert!(secret.starts_with("whsec_"), "{secret}");
    let kid = app.init_kid().await;
    assert_eq!(app.complete(&kid, "pending", 90).await.status, 200);
    assert_eq!(app.complete(&kid, "approved", 93).await.status, 200);

    let got = receiver.wait_for(2, WAIT).await;
    assert_eq!(got.len(), 2, "both events arrive");
    let cust = cust_id(&app).await;
    assert_eq!(
        String::from_utf8(got[0].body.to_vec()).unwrap(),
        body(
            &app,
            &kid,
            &cust,
            "paycc.kyc.pending",
            "0x0206",
            "Kyc is pending",
            "awaiting_approval"
        )
    );
    assert_eq!(
        String::from_utf8(got[1].body.to_vec()).unwrap(),
        body(
            &app,
            &kid,
            &cust,
            "paycc.kyc.success",
            "0x0200",
            "Kyc approved",
            "approved"
        )
    );
    for (r, state) in got.iter().zip(["awaiting_approval", "approved"]) {
        assert_eq!(r.header("webhook-id"), format!("evt_{kid}_{state}"));
        assert_eq!(r.header("content-type"), "application/json");
        // IPAYMENT's header: hex HMAC-SHA256 of the raw body, keyed by the secret as shown.
        assert_eq!(r.header("signature"), hex_hmac(secret.as_bytes(), &r.body));
        // Standard Webhooks, checked by its own library.
        standardwebhooks::Webhook::new(&secret)
            .unwrap()
            .verify(&r.body, &r.headers)
            .expect("the Standard Webhooks signature verifies");
        let wrong = paycc::crypto::new_webhook_secret();
        assert!(
            standardwebhooks::Webhook::new(&wrong)
                .unwrap()
                .verify(&r.body, &r.headers)
                .is_err()
        );
        let row = wait_status(&app, r.header("webhook-id"), "delivered").await;
        assert_eq!((row.attempts, row.last_error), (1, None));
    }
    // Nothing announced the init or the opened link, and nothing arrives twice.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 2);
}

async fn retries_after_a_500_then_succeeds(backend: Backend) {
    let opts = Options {
        callback_schedule: vec![HOUR; 5],
        ..Options::default()
    };
    let (app, receiver, _) = app_with(backend, opts).await;
    receiver.answer(&[(500, Duration::ZERO), (503, Duration::ZERO)]);
    let kid = app.init_kid().await;
    assert_eq!(app.complete(&kid, "rejected", 10).await.status, 200);
    let event = format!("evt_{kid}_rejected");
    for (attempts, answered) in [(1, "HTTP 500"), (2, "HTTP 503")] {
        let row = wait_attempts(&app, &event, attempts).await;
        assert_eq!(
            row.last_error,
            Some(format!("the receiver answered {answered}"))
        );
        app.clock.advance(HOUR + HOUR / 4);
    }
    let got = receiver.wait_for(3, WAIT).await;
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.body == got[0].body && r.header("webhook-id") == got[0].header("webhook-id")),
        "every retry carries the same event");
    assert_eq!(got[0].json()["event"], "paycc.kyc.failed");
    assert_eq!(got[0].json()["message"], "Kyc rejected");
    let row = wait_status(&app, &event, "delivered").await;
    assert_eq!(row.attempts, 3);
    assert!(
        app.service
            .callbacks
            .list(CallbackFilter::Failed, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn slow_receiver_times_out_and_is_retried(backend: Backend) {
    let opts = Options {
        callback_timeout: Duration::from_millis(500),
        callback_schedule: vec![HOUR; 3],
        ..Options::default()
    };
    let (app, receiver, _) = app_with(backend, opts).await;
    receiver.answer(&[(200, Duration::from_secs(3))]);
    let kid = app.init_kid().await;
    assert_eq!(app.complete(&kid, "approved", 95).await.status, 200);
    let event = format!("evt_{kid}_approved");
    let failed = wait_attempts(&app, &event, 1).await;
    assert_eq!(
        (failed.status.as_str(), failed.last_error.as_deref()),
        ("pending", Some("no answer within 500ms"))
    );
    // Not due before its hour (the mark ±20%) is up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(event_row(&app, &event).await.attempts, 1);
    app.clock.advance(HOUR + HOUR / 4);
    let row = wait_status(&app, &event, "delivered").await;
    assert_eq!(row.attempts, 2, "{row:?}");
    assert_eq!(receiver.received().len(), 2);
}

async fn dead_after_the_schedule_then_retried_by_an_operator(backend: Backend) {
    let opts = Options {
        callback_schedule: vec![HOUR; 2],
        ..Options::default()
    };
    let (app, receiver, _) = app_with(backend, opts).await;
    receiver.answer(&[(500, Duration::ZERO); 3]);
    let kid = app.init_kid().await;
    assert_eq!(app.complete(&kid, "approved", 95).await.status, 200);
    let event = format!("evt_{kid}_approved");
    for attempts in 1..=2 {
        assert_eq!(
            wait_attempts(&app, &event, attempts).await.status,
            "pending"
        );
        app.clock.advance(HOUR + HOUR / 4);
    }
    let row = wait_status(&app, &event, "dead").await;
    assert_eq!(row.attempts, 3);
    assert_eq!(
        row.last_error.as_deref(),
        Some("the receiver answered HTTP 500")
    );
    let failed = app
        .service
        .callbacks
        .list(CallbackFilter::Failed, 10)
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].event_id, event);

    app.service.callbacks.retry(&event).await.unwrap();
    let row = wait_status(&app, &event, "delivered").await;
    assert_eq!(row.attempts, 1, "a retried event starts a fresh schedule");
    assert_eq!(receiver.received().len(), 4);
    let err = app.service.callbacks.retry("evt_nope").await.unwrap_err();
    assert_eq!(err.to_string(), "not found: No such callback event");
}

/// A receiver that hangs holds only its client's share of the delivery slots: another
/// client's event goes out at once.
async fn a_hung_receiver_delays_only_its_own_client(backend: Backend) {
    let opts = Options {
        callback_timeout: Duration::from_secs(60),
        callback_per_client: 2,
        ..Options::default()
    };
    let (app, hung, _) = app_with(backend, opts).await;
    hung.answer(&[(200, Duration::from_secs(600)); 12]);
    for _ in 0..12 {
        let kid = app.init_kid_for_new_customer().await;
        assert_eq!(app.complete(&kid, "rejected", 5).await.status, 200);
    }
    assert_eq!(hung.wait_for(2, WAIT).await.len(), 2);
    let other = app
        .service
        .admin
        .create_client("Other partner")
        .await
        .unwrap();
    let merchant = app
        .service
        .admin
        .create_merchant(&other.client_id, "Other merchant", None)
        .await
        .unwrap();
    let prompt = Receiver::start().await;
    app.service
        .callbacks
        .set(&other.client_id, &prompt.url(), false)
        .await
        .unwrap();
    let init = send(
        &app.http,
        &format!("{}/v1/service/paycc/init/kyc", app.base),
        reqwest::Method::POST,
        Some(init_body_for(&merchant).to_string()),
        Some(&basic(&other.client_id, &other.client_secret)),
    )
    .await;
    let kid = init.json["data"]["kid"].as_str().unwrap().to_owned();
    let started = tokio::time::Instant::now();
    let done = send(
        &app.http,
        &format!("{}/v1/sandbox/kyc/{kid}/complete", app.base),
        reqwest::Method::POST,
        Some(r#"{"outcome":"approved","faceMatch":95}"#.into()),
        Some(&basic(&other.client_id, &other.client_secret)),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(prompt.wait_for(1, WAIT).await.len(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        hung.received().len(),
        2,
        "the hung client never had more than its share"
    );
}

async fn receiver_down_for_a_while(backend: Backend) {
    let opts = Options {
        callback_schedule: vec![HOUR; 5],
        ..Options::default()
    };
    let app = TestApp::spawn_with(backend, opts).await;
    // A free port with nothing on it yet.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{addr}/hooks/kyc");
    app.service
        .callbacks
        .set(&app.client_id, &url, false)
        .await
        .unwrap();
    let kid = app.init_kid().await;
    assert_eq!(app.complete(&kid, "approved", 95).await.status, 200);
    let event = format!("evt_{kid}_approved");
    for attempts in 1..=2 {
        let row = wait_attempts(&app, &event, attempts).await;
        assert_eq!(
            (row.status.as_str(), row.last_error.as_deref()),
            ("pending", Some("could not connect"))
        );
        app.clock.advance(HOUR + HOUR / 4);
    }
    let receiver = Receiver::start_on(addr).await;
    let row = wait_status(&app, &event, "delivered").await;
    assert_eq!(row.attempts, 3, "{row:?}");
    assert_eq!(receiver.received().len(), 1);
}

async fn private_addresses_are_refused(backend: Backend) {
    let opts = Options {
        callback_allow_private: false,
        callback_schedule: vec![Duration::from_millis(100)],
        ..Options::default()
    };
    let app = TestApp::spawn_with(backend, opts).await;
    let receiver = Receiver::start().await;
    let by_name = format!("http://localhost:{}/hooks/kyc", receiver.addr.port());
    for (url, refused) in [
        (receiver.url(), "refused: 127.0.0.1 is not a public address"),
        (by_name, "refused: localhost is not a public address"),
        // 6to4 and Teredo tunnel to the IPv4 address inside them; a translated address
        // is the IPv4 one.
        (
            "http://[2002:7f00:1::1]/hooks/kyc".into(),
            "refused: 2002:7f00:1::1 is not a public address",
        ),
        (
            "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hooks/kyc".into(),
            "refused: 2001:0:4136:e378:8000:63bf:80ff:fffe is not a public address",
        ),
        (
            "http://[::ffff:0:7f00:1]/hooks/kyc".into(),
            "refused: ::ffff:0:7f00:1 is not a public address",
        ),
        (
            "http://192.88.99.1/hooks/kyc".into(),
            "refused: 192.88.99.1 is not a public address",
        ),
    ] {
        app.service
            .callbacks
            .set(&app.client_id, &url, false)
            .await
            .unwrap();
        let kid = app.init_kid_for_new_customer().await;
        assert_eq!(app.complete(&kid, "approved", 95).await.status, 200);
        let row = wait_status(&app, &format!("evt_{kid}_approved"), "dead").await;
        assert_eq!(row.last_error.as_deref(), Some(refused));
    }
    assert!(
        receiver.received().is_empty(),
        "nothing reached the private address"
    );
}

async fn expiry_and_clients_without_a_url(backend: Backend) {
    let opts = Options {
        kyc_ttl: HOUR,
        expiry_interval: Duration::from_millis(200),
        ..Options::default()
    };
    let app = TestApp::spawn_with(backend, opts).await;
    // No URL yet: the change queues nothing.
    let quiet = app.init_kid_for_new_customer().await;
    assert_eq!(app.complete(&quiet, "rejected", 10).await.status, 200);
    assert!(
        app.service
            .callbacks
            .list(CallbackFilter::All, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let receiver = Receiver::start().await;
    app.service
        .callbacks
        .set(&app.client_id, &receiver.url(), false)
        .await
        .unwrap();
    let kid = app.init_kid_for_new_customer().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        receiver.received().is_empty(),
        "nothing before the link runs out"
    );
    app.clock.advance(HOUR);
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1, "the sweeper's expiry is announced");
    let event: Value = got[0].json();
    assert_eq!(event["event"], "paycc.kyc.failed");
    assert_eq!(event["code"], "0x0202");
    assert_eq!(event["message"], "Kyc expired");
    assert_eq!(event["data"]["kid"], kid.as_str());
    assert_eq!(event["data"]["state"], "expired");
    assert_eq!(
        app.service
            .callbacks
            .list(CallbackFilter::All, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// An identical init after the first one's time ran out expires it on the spot (the
/// sweeper is far off here), and that expiry is announced like the sweeper's.
async fn expiry_by_an_identical_init_is_announced(backend: Backend) {
    let opts = Options {
        kyc_ttl: Duration::from_secs(3600),
        expiry_interval: Duration::from_secs(3600),
        ..Options::default()
    };
    let (app, receiver, _) = app_with(backend, opts).await;
    let init = app.init_body();
    let (old, _) = app.open_link(&init).await;
    app.clock.advance(Duration::from_secs(3600));
    let (new, _) = app.open_link(&init).await;
    assert_ne!(new, old, "the expired request is not reused");
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let cust_id = cust_id(&app).await;
    assert_eq!(
        String::from_utf8(got[0].body.to_vec()).unwrap(),
        body(
            &app,
            &old,
            &cust_id,
            "paycc.kyc.failed",
            "0x0202",
            "Kyc expired",
            "expired"
        )
    );
    let r = app.status(&old).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["code"], "0x0202", "{}", r.text);
}

async fn secrets_are_kept_or_rotated(backend: Backend) {
    let (app, receiver, first) = app_with(backend, Options::default()).await;
    let again = app
        .service
        .callbacks
        .set(&app.client_id, &receiver.url(), false)
        .await
        .unwrap();
    assert_eq!(
        again.webhook_secret, None,
        "the secret is shown once and kept"
    );
    let rotated = app
        .service
        .callbacks
        .set(&app.client_id, &receiver.url(), true)
        .await
        .unwrap();
    let secret = rotated.webhook_secret.unwrap();
    assert_ne!(Some(&secret), first.webhook_secret.as_ref());
    let kid = app.init_kid().await;
    assert_eq!(app.complete(&kid, "approved", 95).await.status, 200);
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(
        got[0].header("signature"),
        hex_hmac(secret.as_bytes(), &got[0].body)
    );
    // Bad URLs are refused with a reason, unknown clients too.
    for bad in ["ftp://x.example/", "https://u:p@x.example/", "not a url"] {
        let err = app
            .service
            .callbacks
            .set(&app.client_id, bad, false)
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("The callback URL must be an absolute http or https URL"),
            "{err}"
        );
    }
    let err = app
        .service
        .callbacks
        .set("PCCNOPE", &receiver.url(), false)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "not found: No such API client");
}

async fn finished_events_are_purged_after_their_retention(backend: Backend) {
    let opts = Options {
        expiry_interval: Duration::from_millis(100),
        callback_retention: 24 * HOUR,
        // Still waiting for its retry when the delivered one is past its retention.
        callback_schedule: vec![72 * HOUR],
        ..Options::default()
    };
    let (app, receiver, _) = app_with(backend, opts).await;
    let delivered = app.init_kid_for_new_customer().await;
    assert_eq!(app.complete(&delivered, "approved", 95).await.status, 200);
    receiver.wait_for(1, WAIT).await;
    receiver.answer(&[(500, Duration::ZERO)]);
    let failing = app.init_kid_for_new_customer().await;
    assert_eq!(app.complete(&failing, "rejected", 5).await.status, 200);
    wait_attempts(&app, &format!("evt_{failing}_rejected"), 1).await;
    app.clock.advance(48 * HOUR);
    let deadline = tokio::time::Instant::now() + WAIT;
    let left = loop {
        let left: Vec<String> = app
            .service
            .callbacks
            .list(CallbackFilter::All, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kid)
            .collect();
        if left.len() == 1 || tokio::time::Instant::now() > deadline {
            break left;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        left,
        [failing],
        "only the event still being retried is kept"
    );
}

on_both_backends!(
    delivers_signed_events_in_order,
    retries_after_a_500_then_succeeds,
    slow_receiver_times_out_and_is_retried,
    dead_after_the_schedule_then_retried_by_an_operator,
    a_hung_receiver_delays_only_its_own_client,
    receiver_down_for_a_while,
    private_addresses_are_refused,
    expiry_and_clients_without_a_url,
    expiry_by_an_identical_init_is_announced,
    secrets_are_kept_or_rotated,
    finished_events_are_purged_after_their_retention,
);
