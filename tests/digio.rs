//! The Digio provider against a Digio-compatible fake over real HTTP on loopback.

mod common;
use common::fake_digio::{self, FakeDigio, Mode};
use common::*;
use paycc::config::DigioArgs;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn spawn(backend: Backend, tweak: impl FnOnce(&mut DigioArgs)) -> (TestApp, FakeDigio) {
    let fake = FakeDigio::start().await;
    let mut args = fake.args();
    tweak(&mut args);
    let app = TestApp::spawn_with(
        backend,
        Options {
            digio: Some(args),
            ..Options::default()
        },
    )
    .await;
    (app, fake)
}

async fn webhook(app: &TestApp, body: &str, checksum: Option<&str>) -> Reply {
    let mut req = http_client()
        .post(format!("{}/v1/webhooks/digio", app.base))
        .body(body.to_owned());
    if let Some(c) = checksum {
        req = req.header("X-Digio-Checksum", c);
    }
    Reply::from_response(req.send().await.unwrap()).await
}

/// Waits (up to 10 s) for the request's stored state to become `state`.
async fn wait_state(app: &TestApp, kid: &str, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = app.service.admin.kyc_summary(kid).await.unwrap().state;
        if now == state {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{kid} stayed {now}, expected {state}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn happy_path_init_webhook_status(backend: Backend) {
    let (app, fake) = spawn(backend, |_| {}).await;
    let mut body = app.init_body();
    body["redirectUrl"] = json!("https://shop.example/kyc/done");
    let (kid, url) = app.open_link(&body).await;
    // What paycc asked Digio for.
    let creates = fake.creates();
    assert_eq!(creates.len(), 1);
    let sent = &creates[0];
    assert_eq!(sent["customer_identifier"], MOBILE);
    assert_eq!(sent["customer_name"], NAME);
    assert_eq!(sent["template_name"], fake_digio::TEMPLATE);
    assert_eq!(
        (
            sent["notify_customer"].as_bool(),
            sent["generate_access_token"].as_bool()
        ),
        (Some(false), Some(true))
    );
    assert_eq!(sent["expire_in_days"], 1);
    let reference = sent["reference_id"].as_str().unwrap();
    assert!(reference.starts_with("REF") && reference.len() == 32);
    assert_eq!(sent["transaction_id"], reference);
    // The kid is Digio's; the link is Digio's gateway with the token and the redirect.
    assert!(is_kid(&kid));
    let prefix = format!(
        "https://gateway.digio.test/#/gateway/login/{kid}/{reference}/{MOBILE}?token_id=GWT"
    );
    assert!(url.starts_with(&prefix), "{url}");
    assert!(
        url.ends_with("&redirect_url=https%3A%2F%2Fshop.example%2Fkyc%2Fdone"),
        "{url}"
    );
    assert_eq!(app.status(&kid).await.json["code"], "0x0206");

    fake.set_response(&kid, fake_digio::approved(&kid));
    let (event, checksum) = FakeDigio::webhook("EVT1", "kyc.request.approved", &kid, "approved");
    webhook(&app, &event, Some(&checksum)).await.assert_exact(
        200,
        r#"{"code":"0x0200","message":"Webhook received","status":"SUCCESS","data":{"status":"accepted"}}"#,
    );
    wait_state(&app, &kid, "approved").await;
    let cust_id = app
        .customer(&json!({"merchantCode": app.merchant, "pan": PAN}))
        .await
        .json["data"]["custId"]
        .clone();
    app.status(&kid).await.assert_exact(
        200,
        &format!(
            r#"{{"code":"0x0200","message":"Record fetched successful.","status":"SUCCESS","data":{{"kyc":{{"id":"{kid}","name":"Sanjay Kumar","faceMatch":97,"aadhaar":"xxxxxxxx6355","gender":"M","dob":"25/08/1974","image":"/9j/4AAQSkZJRgABAQ","fatherName":"Ram Kumar","currentAddress":{{"address":"12 Civil Lines","locality_or_post_office":"Court Road","district_or_city":"Saharanpur","state":"Uttar Pradesh","pincode":"247001"}},"pan":"ENGPK1234L","panName":"SANJAY KUMAR","panMatch":true,"nameMatch":100}},"merchantDetails":{{"custId":{cust_id}}}}}}}"#
        ),
    );
    let customer = app
        .customer(&json!({"merchantCode": app.merchant, "mobile": MOBILE}))
        .await;
    assert_eq!(
        (
            customer.json["data"]["digioKyc"].as_str(),
            customer.json["data"]["digioKycId"].as_str()
        ),
        (Some("1"), Some(kid.as_str()))
    );
    // An identical init after the end opens a new Digio request; while open it would not.
    let again = app.init(&body).await;
    assert_new_kid(&again, &kid);
    let third = app.init(&body).await;
    assert_eq!(third.json["data"], again.json["data"]);
    assert_eq!(
        fake.creates().len(),
        2,
        "an identical open init never makes a second Digio request"
    );
}

async fn a_slow_provider_times_out_and_the_request_is_marked_failed(backend: Backend) {
    let (app, fake) = spawn(backend, |_| {}).await;
    fake.create_mode(Mode::Slow(Duration::from_secs(3)));
    app.init(&app.init_body()).await.assert_exact(
        504,
        r#"{"code":"0x0204","status":"CONNECTION_TIMEOUT","message":"The KYC provider did not answer in time. Please try again."}"#,
    );
    let customer = app
        .customer(&json!({"merchantCode": app.merchant, "pan": PAN}))
        .await;
    let placeholder = customer.json["data"]["digioKycId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        placeholder.starts_with("REF"),
        "the stored row carries our reference"
    );
    let stored = app.service.admin.kyc_summary(&placeholder).await.unwrap();
    assert_eq!(
        (stored.state.as_str(), stored.reason.as_deref()),
        ("failed", Some("The KYC provider did not answer in time."))
    );
    assert_eq!(customer.json["data"]["kycUrl"], Value::Null);
    // A retry starts clean once Digio answers again.
    fake.create_mode(Mode::Normal);
    let retry = app.init(&app.init_body()).await;
    assert_eq!(retry.json["code"], "0x0200", "{}", retry.text);
    assert_eq!(fake.creates().len(), 2);
}

const PROVIDER_FAILED: &str = r#"{"code":"0x0205","status":"SOMETHING_WENT_WRONG","message":"The KYC provider could not handle the request. Please try again."}"#;

async fn provider_errors_and_malformed_answers_are_0x0205(backend: Backend) {
    let (app, fake) = spawn(backend, |a| a.failures_before_pause = 100).await;
    for mode in [
        Mode::Status(500),
        Mode::Status(401),
        Mode::Status(422),
        Mode::Garbage,
    ] {
        fake.create_mode(mode.clone());
        let r = app.init(&app.init_body()).await;
        r.assert_exact(502, PROVIDER_FAILED);
    }
    // Wrong credentials: Digio's own 401 with INVALID_API_CREDENTIALS.
    let fake2 = FakeDigio::start().await;
    let mut args = fake2.args();
    args.client_secret = Some("wrong".into());
    let app2 = TestApp::spawn_with(
        backend,
        Options {
            digio: Some(args),
            ..Options::default()
        },
    )
    .await;
    app2.init(&app2.init_body())
        .await
        .assert_exact(502, PROVIDER_FAILED);
    assert!(
        !app2
            .init(&app2.init_body())
            .await
            .text
            .contains("INVALID_API_CREDENTIALS"),
        "Digio's words stay in the log"
    );
}

async fn partial_and_malformed_results_are_read_defensively(backend: Backend) {
    let (app, fake) = spawn(backend, |a| a.stale_after = Duration::from_secs(30)).await;
    let kid = app.init_kid().await;
    // Garbage from /response: the status read answers from storage, in time.
    fake.response_mode(Mode::Garbage);
    app.clock.advance(Duration::from_secs(31));
    let r = app.status(&kid).await;
    assert_eq!(r.json["code"], "0x0206");
    // A partial approval: numbers as strings, most fields missing.
    fake.response_mode(Mode::Normal);
    fake.set_response(&kid, json!({"id": kid, "status": "approved", "actions": [
        {"type": "selfie", "face_match_result": {"confidence": "88.4"}},
        {"type": "digilocker", "details": {"aadhaar": {"name": "S Kumar", "id_number": 123456789012u64,
            "current_address_details": {"pincode": 247001}}, "pan": {"id_number": "engpk1234l"}}}]}));
    app.clock.advance(Duration::from_secs(31));
    let r = app.status(&kid).await;
    assert_eq!(r.json["code"], "0x0200", "{}", r.text);
    let kyc = &r.json["data"]["kyc"];
    assert_eq!(
        (
            kyc["faceMatch"].as_u64(),
            kyc["aadhaar"].as_str(),
            kyc["name"].as_str()
        ),
        (Some(88), Some("xxxxxxxx9012"), Some("S Kumar"))
    );
    assert_eq!(
        (
            kyc["currentAddress"]["pincode"].as_str(),
            kyc["pan"].as_str(),
            kyc["fatherName"].as_str()
        ),
        (Some("247001"), Some("ENGPK1234L"), Some(""))
    );
    // "S Kumar" is Sanjay Kumar by the initial; DigiLocker gave no PAN name to compare.
    assert_eq!(
        (kyc["panMatch"].as_bool(), kyc["nameMatch"].as_u64()),
        (Some(true), Some(100))
    );
}

/// A status read that found the request stale asks Digio; an answer that moves nothing
/// still counts as a check, so the next reads answer from storage until the request is
/// stale again.
async fn an_answer_that_moves_nothing_counts_as_a_check(backend: Backend) {
    let (app, fake) = spawn(backend, |a| {
        a.stale_after = Duration::from_secs(30);
        a.reconcile_after = Duration::from_secs(3600);
        a.reconcile_interval = Duration::from_secs(3600);
    })
    .await;
    let kid = app.init_kid().await;
    fake.set_response(&kid, json!({"id": kid, "status": "requested"}));
    let pending = format!(
        r#"{{"code":"0x0206","status":"PENDING","message":"Kyc is pending","data":{{"kid":"{kid}","state":"pending"}}}}"#
    );
    app.status(&kid).await.assert_exact(200, &pending);
    assert_eq!(fake.response_calls(), 0, "a fresh request is not looked up");
    app.clock.advance(Duration::from_secs(31));
    app.status(&kid).await.assert_exact(200, &pending);
    assert_eq!(fake.response_calls(), 1, "a stale request is looked up");
    app.clock.advance(Duration::from_secs(20));
    app.status(&kid).await.assert_exact(200, &pending);
    assert_eq!(fake.response_calls(), 1, "checked 20 s ago: not stale");
    app.clock.advance(Duration::from_secs(11));
    app.status(&kid).await.assert_exact(200, &pending);
    assert_eq!(fake.response_calls(), 2, "checked 31 s ago: stale again");
}

async fn webhooks_are_verified_deduplicated_and_never_trusted(backend: Backend) {
    let (app, fake) = spawn(backend, |_| {}).await;
    let kid = app.init_kid().await;
    // A bad or missing checksum is refused and changes nothing, not even a re-read.
    let (event, checksum) = FakeDigio::webhook("EVT9", "kyc.request.approved", &kid, "approved");
    fake.set_response(&kid, fake_digio::approved(&kid));
    let mut wrong = checksum.clone();
    wrong.replace_range(
        0..2,
        if checksum.starts_with("00") {
            "11"
        } else {
            "00"
        },
    );
    for sig in [None, Some(wrong.as_str()), Some("not-hex")] {
        webhook(&app, &event, sig).await.assert_exact(
            401,
            r#"{"code":"0x0201","status":"UNAUTHORIZED","message":"The webhook checksum is missing or wrong."}"#,
        );
    }
    let tampered = event.replace("EVT9", "EVT8");
    assert_eq!(webhook(&app, &tampered, Some(&checksum)).await.status, 401);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(fake.response_calls(), 0);
    assert_eq!(
        app.service.admin.kyc_summary(&kid).await.unwrap().state,
        "pending"
    );

    // The body says "approved" but Digio's record says "requested": the record wins.
    fake.set_response(&kid, json!({"id": kid, "status": "requested"}));
    let (lie, sig) = FakeDigio::webhook("EVT10", "KYC_REQUEST_APPROVED", &kid, "approved");
    assert_eq!(
        webhook(&app, &lie, Some(&sig)).await.json["data"]["status"],
        "accepted"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.service.admin.kyc_summary(&kid).await.unwrap().state,
        "pending"
    );

    // Approved, then a late "requested" event: approved stays.
    fake.set_response(&kid, fake_digio::approved(&kid));
    let (approved, sig) = FakeDigio::webhook("EVT11", "kyc.request.approved", &kid, "approved");
    webhook(&app, &approved, Some(&sig)).await;
    wait_state(&app, &kid, "approved").await;
    fake.set_response(&kid, json!({"id": kid, "status": "requested"}));
    let (late, sig) = FakeDigio::webhook("EVT12", "kyc.request.created", &kid, "requested");
    webhook(&app, &late, Some(&sig)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.status(&kid).await.json["code"], "0x0200");

    // The same event again is answered and ignored.
    let calls = fake.response_calls();
    let r = webhook(
        &app,
        &approved,
        Some(&FakeDigio::webhook("EVT11", "kyc.request.approved", &kid, "approved").1),
    )
    .await;
    assert_eq!(r.json["data"]["status"], "duplicate");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(fake.response_calls(), calls);

    // An event for a kid we never issued: accepted (so Digio stops retrying), nothing moves.
    let stranger = "KID000000000000000STRANGER00000";
    let (unknown, sig) = FakeDigio::webhook("EVT13", "kyc.request.approved", stranger, "approved");
    assert_eq!(webhook(&app, &unknown, Some(&sig)).await.status, 200);
}

/// A delivery is refused before its body is read when it has no checksum or says it is
/// too large, and without reading past 64 KiB when it turns out to be.
async fn webhook_bodies_are_checked_before_they_are_read(backend: Backend) {
    let (app, fake) = spawn(backend, |_| {}).await;
    let unsigned = r#"{"code":"0x0201","status":"UNAUTHORIZED","message":"The webhook checksum is missing or wrong."}"#;
    let too_large = r#"{"code":"0x0202","status":"FAILURE","message":"The webhook body is larger than 65536 bytes."}"#;
    for (head, status, envelope) in [
        // No checksum: refused with 10 MB still to come.
        ("Content-Length: 10485760\r\n", 401, unsigned),
        // Signed, but says 10 MB.
        (
            "X-Digio-Checksum: 00\r\nContent-Length: 10485760\r\n",
            413,
            too_large,
        ),
        // Signed and chunked: refused once 64 KiB have come, the rest never read.
        (
            "X-Digio-Checksum: 00\r\nTransfer-Encoding: chunked\r\n",
            413,
            too_large,
        ),
    ] {
        let mut request = format!(
            "POST /v1/webhooks/digio HTTP/1.1\r\nHost: paycc\r\nContent-Type: application/json\r\n{head}\r\n"
        )
        .into_bytes();
        if head.contains("chunked") {
            let chunk = vec![b' '; 70 * 1024];
            request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            request.extend_from_slice(&chunk);
            request.extend_from_slice(b"\r\n");
        } else {
            request.extend_from_slice(b"{\"id\":");
        }
        let mut conn = raw::Stalled::send(&app.base, &request).await;
        let answer = conn
            .answer(Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("no answer to {head:?} while its body is still owed"));
        assert_eq!(raw::status_of(&answer), status, "{answer}");
        assert_eq!(raw::body_of(&answer), envelope);
    }
    assert_eq!(fake.response_calls(), 0, "nothing was looked up for them");
}

async fn the_reconciler_picks_up_a_missed_webhook(backend: Backend) {
    let (app, fake) = spawn(backend, |a| {
        a.reconcile_after = Duration::from_secs(1);
        a.reconcile_interval = Duration::from_secs(1);
    })
    .await;
    let kid = app.init_kid().await;
    let other = {
        let mut b = app.init_body();
        b["email"] = json!("rejected@example.com");
        app.init(&b).await.json["data"]["kid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // Digio finishes both; no webhook ever arrives.
    fake.set_response(&kid, fake_digio::approved(&kid));
    fake.set_response(&other, json!({"id": other, "status": "rejected"}));
    wait_state(&app, &kid, "approved").await;
    wait_state(&app, &other, "rejected").await;
    assert_eq!(app.status(&other).await.json["message"], "Kyc rejected");
}

async fn a_failing_provider_is_paused_by_the_breaker(backend: Backend) {
    let (app, fake) = spawn(backend, |a| {
        a.failures_before_pause = 2;
        a.pause = Duration::from_secs(60);
    })
    .await;
    fake.create_mode(Mode::Status(503));
    for _ in 0..2 {
        app.init(&app.init_body())
            .await
            .assert_exact(502, PROVIDER_FAILED);
    }
    let paused = app.init(&app.init_body()).await;
    assert_eq!(paused.status, 503);
    assert_eq!(paused.json["code"], "0x0205");
    let message = paused.json["message"].as_str().unwrap();
    assert!(
        message.starts_with("The KYC provider is failing, so paycc has paused calls to it for "),
        "{message}"
    );
    let retry_after: u64 = paused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_eq!(fake.creates().len(), 2, "no call while paused");
}

async fn an_identical_init_while_the_first_is_with_digio_waits_its_turn(backend: Backend) {
    let (app, fake) = spawn(backend, |a| a.timeout = Duration::from_secs(5)).await;
    fake.create_mode(Mode::Slow(Duration::from_millis(800)));
    let app = std::sync::Arc::new(app);
    let first = {
        let app = app.clone();
        tokio::spawn(async move { app.init(&app.init_body()).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.init(&app.init_body()).await.assert_exact(
        409,
        r#"{"code":"0x0202","status":"FAILURE","message":"An identical request is being opened with the KYC provider. Retry in a few seconds."}"#,
    );
    let first = first.await.unwrap();
    assert_eq!(first.json["code"], "0x0200");
    let after = app.init(&app.init_body()).await;
    assert_eq!(after.json["data"], first.json["data"]);
    assert_eq!(fake.creates().len(), 1);
}

/// Sets what Digio's `/response` says of `kid`: approved, with DigiLocker's PAN and both
/// names replaced, and tells paycc by webhook.
async fn digio_approves(app: &TestApp, fake: &FakeDigio, kid: &str, pan: &str, name: &str) {
    let mut answer = fake_digio::approved(kid);
    let details = &mut answer["actions"][0]["details"];
    details["pan"]["id_number"] = json!(pan);
    details["pan"]["name"] = json!(name.to_uppercase());
    details["aadhaar"]["name"] = json!(name);
    fake.set_response(kid, answer);
    let (event, checksum) = FakeDigio::webhook(
        &format!("EVT-{kid}"),
        "kyc.request.approved",
        kid,
        "approved",
    );
    assert_eq!(webhook(app, &event, Some(&checksum)).await.status, 200);
}

async fn an_approval_of_someone_else_approves_nothing(backend: Backend) {
    let (app, fake) = spawn(backend, |_| {}).await;
    let receiver = common::receiver::Receiver::start().await;
    app.service
        .callbacks
        .set(&app.client_id, &receiver.url(), false)
        .await
        .unwrap();

    // The fraud the binding stops: a KYC opened with the victim's PAN and name, and
    // DigiLocker finished with the fraudster's own Aadhaar and PAN.
    let kid = app.init_kid().await;
    digio_approves(&app, &fake, &kid, "QWEPZ9876K", "Sanjay Kumar").await;
    wait_state(&app, &kid, "rejected").await;
    app.status(&kid).await.assert_exact(
        200,
        &format!(
            r#"{{"code":"0x0202","status":"FAILURE","message":"Kyc rejected","data":{{"kid":"{kid}","state":"rejected","reason":"identity mismatch: PAN differs from the requested one"}}}}"#
        ),
    );
    let c = app
        .customer(&json!({"merchantCode": app.merchant, "pan": PAN}))
        .await;
    assert_eq!(
        (
            c.json["data"]["digioKyc"].as_str(),
            c.json["data"]["kycName"].is_null()
        ),
        (Some("0"), true),
        "{}",
        c.text
    );
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    let event = got[0].json();
    assert_eq!(
        (event["event"].as_str(), event["data"]["state"].as_str()),
        (Some("paycc.kyc.failed"), Some("rejected"))
    );

    // The right PAN, someone else's name: below the threshold.
    let mut body = app.init_body();
    body["pan"] = json!("ABCPK0042Z");
    let (kid, _) = app.open_link(&body).await;
    digio_approves(&app, &fake, &kid, "ABCPK0042Z", "Priya Sharma").await;
    wait_state(&app, &kid, "rejected").await;
    assert_eq!(
        app.status(&kid).await.json["data"]["reason"],
        "identity mismatch: name similarity 47/100 is below 80"
    );
    let summary = app.service.admin.kyc_summary(&kid).await.unwrap();
    assert_eq!(
        (summary.pan_match, summary.name_match),
        (Some(true), Some(47))
    );
}

/// An event id is remembered (a redelivery is a duplicate) until
/// `PAYCC_WEBHOOK_RETENTION` has passed; then it is forgotten.
async fn webhook_events_are_forgotten_after_their_retention(backend: Backend) {
    let fake = FakeDigio::start().await;
    let app = TestApp::spawn_with(
        backend,
        Options {
            digio: Some(fake.args()),
            expiry_interval: Duration::from_millis(100),
            webhook_retention: Duration::from_secs(2 * 86_400),
            ..Options::default()
        },
    )
    .await;
    let kid = app.init_kid().await;
    fake.set_response(&kid, fake_digio::approved(&kid));
    let (event, sig) = FakeDigio::webhook("EVT21", "kyc.request.approved", &kid, "approved");
    let status = |r: Reply| r.json["data"]["status"].as_str().unwrap_or("-").to_owned();
    assert_eq!(status(webhook(&app, &event, Some(&sig)).await), "accepted");
    assert_eq!(status(webhook(&app, &event, Some(&sig)).await), "duplicate");
    app.clock.advance(Duration::from_secs(86_400));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(status(webhook(&app, &event, Some(&sig)).await), "duplicate");
    app.clock.advance(Duration::from_secs(2 * 86_400));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = String::new();
    while Instant::now() < deadline {
        last = status(webhook(&app, &event, Some(&sig)).await);
        if last == "accepted" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        last, "accepted",
        "the event id is forgotten after its retention"
    );
}

on_both_backends!(
    webhook_events_are_forgotten_after_their_retention,
    webhook_bodies_are_checked_before_they_are_read,
    an_approval_of_someone_else_approves_nothing,
    happy_path_init_webhook_status,
    a_slow_provider_times_out_and_the_request_is_marked_failed,
    provider_errors_and_malformed_answers_are_0x0205,
    partial_and_malformed_results_are_read_defensively,
    an_answer_that_moves_nothing_counts_as_a_check,
    webhooks_are_verified_deduplicated_and_never_trusted,
    the_reconciler_picks_up_a_missed_webhook,
    a_failing_provider_is_paused_by_the_breaker,
    an_identical_init_while_the_first_is_with_digio_waits_its_turn,
);

/// The real binary with debug logs on: Digio's credentials and webhook secret, and the
/// customer's identity, appear in no log line, whatever the HTTP stack logs.
#[tokio::test]
async fn digio_secrets_and_identity_stay_out_of_the_logs() {
    use base64::prelude::*;
    use common::deploy::Deployment;
    let fake = FakeDigio::start().await;
    let dep = Deployment::new(Backend::Sqlite).await;
    let (ok, out, err) = dep.cli(&["client", "create", "--name", "Log check", "--json"]);
    assert!(ok, "{err}");
    let creds: serde_json::Value = serde_json::from_str(&out).unwrap();
    let client_id = creds["clientId"].as_str().unwrap();
    let secret = creds["clientSecret"].as_str().unwrap();
    assert!(
        dep.cli(&[
            "merchant",
            "create",
            "--client",
            client_id,
            "--name",
            "Shop",
            "--code",
            "MID693000001"
        ])
        .0
    );
    let server = dep.start(&fake.node_env(&[("PAYCC_LOG", "debug")]));
    let auth = basic(client_id, secret);
    let http = http_client();
    let url = |path: &str| format!("{}{path}", server.base);
    let body = init_body_for("MID693000001").to_string();
    let init = send(
        &http,
        &url("/v1/service/paycc/init/kyc"),
        reqwest::Method::POST,
        Some(body),
        Some(&auth),
    )
    .await;
    let kid = init.json["data"]["kid"].as_str().unwrap().to_owned();
    fake.set_response(&kid, fake_digio::approved(&kid));
    let (event, checksum) = FakeDigio::webhook("EVT-LOG", "kyc.request.approved", &kid, "approved");
    let hook = http
        .post(url("/v1/webhooks/digio"))
        .header("X-Digio-Checksum", checksum)
        .body(event)
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while status_at(&server.base, &auth, &kid).await["code"] != "0x0200" {
        assert!(
            Instant::now() < deadline,
            "the webhook's re-read never approved {kid}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A refused delivery is logged too.
    let bad = http
        .post(url("/v1/webhooks/digio"))
        .header("X-Digio-Checksum", "00")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    server.log_once_it_holds("webhook accepted").await;
    let stderr = server.stderr.clone();
    drop(server);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let logs = stderr.lock().unwrap().clone();
    assert!(
        logs.contains("provider request opened") && logs.contains("webhook accepted"),
        "{logs}"
    );
    let basic_creds = BASE64_STANDARD.encode(format!(
        "{}:{}",
        fake_digio::CLIENT_ID,
        fake_digio::CLIENT_SECRET
    ));
    for secret_or_pii in [
        fake_digio::CLIENT_SECRET,
        &basic_creds,
        fake_digio::WEBHOOK_SECRET,
        secret,
        PAN,
        MOBILE,
        EMAIL,
        NAME,
        "/9j/",
    ] {
        assert!(
            !logs.contains(secret_or_pii),
            "{secret_or_pii} appears in the logs"
        );
    }
}
