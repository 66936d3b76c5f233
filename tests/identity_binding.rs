//! An approval stands only for the person the merchant asked about: the verified PAN
//! must be the requested one and the name similar enough. Driven through the sandbox
//! helper (DigiLocker returning someone else) and, for review, the operator's CLI.

mod common;
use common::deploy::{Deployment, Running};
use common::receiver::Receiver;
use common::*;
use serde_json::{Value, json};
use std::time::Duration;

/// Name pairs as merchants type them and DigiLocker returns them: (requested, verified,
/// whether the approval stands). Rules in `domain::binding`.
const NAMES: &[(&str, &str, bool)] = &[
    ("Sanjay Kumar", "Kumar Sanjay", true),
    ("S. Kumar", "Sanjay Kumar", true),
    ("sanjay KUMAR", "SANJAY KUMAR", true),
    ("Mr. Sanjay Kumar", "Sanjay Kumar", true),
    ("Smt Priya Kumari", "Priya Kumari", true),
    ("Sanjay Kumar", "Sanjay Ram Kumar", true),
    ("Sanjay Kumar", "Sanjai Kumar", true),
    ("SanjayKumar", "Sanjay Kumar", true),
    ("Sanjay Kumar", "Priya Sharma", false),
    ("Sanjay Kumar", "Sanjay Verma", false),
    ("Sanjay Kumar", "Rajesh Kumar", false),
    ("S. K.", "Sanjay Kumar", false),
    ("Sanjay", "Sanjay Kumar Ram Prasad", false),
];

/// Inits a KYC for a customer of its own with `name`, and completes it in the sandbox
/// with DigiLocker returning `verified` (a JSON object of overrides).
async fn complete_as(app: &TestApp, n: usize, name: &str, verified: Value) -> (String, Reply) {
    let mut body = app.init_body();
    body["pan"] = json!(format!("ABCPK{n:04}Q"));
    body["name"] = json!(name);
    let r = app.init(&body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let kid = r.json["data"]["kid"].as_str().unwrap().to_owned();
    let mut done = json!({"outcome": "approved", "faceMatch": 97});
    for (k, v) in verified.as_object().unwrap() {
        done[k] = v.clone();
    }
    let reply = app
        .post(&format!("/v1/sandbox/kyc/{kid}/complete"), &done)
        .await;
    (kid, reply)
}

async fn names_match_as_the_table_says(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (n, (requested, verified, stands)) in NAMES.iter().enumerate() {
        let (kid, r) = complete_as(&app, n, requested, json!({"verifiedName": verified})).await;
        let score = r.json["data"]["kyc"]["nameMatch"].as_u64();
        if *stands {
            assert_eq!(
                (r.status, r.json["code"].as_str()),
                (200, Some("0x0200")),
                "{requested} / {verified}: {}",
                r.text
            );
            assert!(
                score.is_some_and(|s| s >= 80),
                "{requested} / {verified}: {score:?}"
            );
            assert_eq!(r.json["data"]["kyc"]["panMatch"], true);
            assert_eq!(r.json["data"]["kyc"]["name"], *verified);
        } else {
            assert_eq!(
                (
                    r.status,
                    r.json["code"].as_str(),
                    r.json["message"].as_str()
                ),
                (200, Some("0x0202"), Some("Kyc rejected")),
                "{requested} / {verified}: {}",
                r.text
            );
            let reason = r.json["data"]["reason"].as_str().unwrap();
            assert!(
                reason.starts_with("identity mismatch: name similarity ")
                    && reason.ends_with("/100 is below 80"),
                "{requested} / {verified}: {reason}"
            );
            assert_eq!(r.json["data"]["kid"], kid);
        }
    }
}

async fn another_pan_is_rejected_and_never_verifies_the_customer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let kid = app.init_kid().await;
    let r = app
        .post(
            &format!("/v1/sandbox/kyc/{kid}/complete"),
            &json!({"outcome": "approved", "verifiedPan": " qwepz9876k "}),
        )
        .await;
    let rejected = format!(
        r#"{{"code":"0x0202","status":"FAILURE","message":"Kyc rejected","data":{{"kid":"{kid}","state":"rejected","reason":"identity mismatch: PAN differs from the requested one"}}}}"#
    );
    r.assert_exact(200, &rejected);
    app.status(&kid).await.assert_exact(200, &rejected);
    // The customer check does not present the requested PAN as verified.
    let c = app
        .customer(&json!({"merchantCode": app.merchant, "pan": PAN}))
        .await;
    assert_eq!(c.json["code"], "0x0200", "{}", c.text);
    let data = &c.json["data"];
    assert_eq!(
        (
            data["digioKyc"].as_str(),
            data["kycName"].is_null(),
            data["imageBase64"].is_null(),
            data["pan"].as_str()
        ),
        (Some("0"), true, true, Some(PAN))
    );
}

async fn the_helper_refuses_a_malformed_verified_person(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let kid = app.init_kid().await;
    let path = format!("/v1/sandbox/kyc/{kid}/complete");
    let r = app
        .post(
            &path,
            &json!({"outcome": "approved", "verifiedPan": "ABCDE1234F", "verifiedName": ["x"]}),
        )
        .await;
    r.assert_exact(
        422,
        r#"{"code":"0x0202","status":"FAILURE","message":"The verifiedPan field is invalid.","errors":{"verifiedPan":["The verifiedPan field must be an individual's PAN: 5 letters (the 4th P), 4 digits and a letter."],"verifiedName":["The verifiedName field may contain only letters, spaces, dots, apostrophes and hyphens (up to 200)."]}}"#,
    );
    // Nothing was recorded: the KYC is still open and approves normally.
    assert_eq!(app.status(&kid).await.json["code"], "0x0206");
    assert_eq!(
        app.complete(&kid, "approved", 90).await.json["code"],
        "0x0200"
    );
}

async fn a_stricter_threshold_is_honoured(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Options {
            name_match_min: 95,
            ..Options::default()
        },
    )
    .await;
    // 93 ("Sanjai"), under 95: rejected, and the reason names the configured bound.
    let (_, r) = complete_as(
        &app,
        1,
        "Sanjay Kumar",
        json!({"verifiedName": "Sanjai Kumar"}),
    )
    .await;
    assert_eq!(
        r.json["data"]["reason"], "identity mismatch: name similarity 93/100 is below 95",
        "{}",
        r.text
    );
}

/// A deployment deciding mismatches by review, with its client, merchant and a callback
/// receiver: (server, auth, merchantCode, receiver).
async fn review_deployment(dep: &Deployment) -> (Running, String, String, Receiver) {
    let server = dep.start(&[
        ("PAYCC_IDENTITY_MISMATCH", "review"),
        ("PAYCC_CALLBACK_ALLOW_PRIVATE", "true"),
        ("PAYCC_CALLBACK_POLL_INTERVAL", "100ms"),
    ]);
    let (id, auth, merchant) = dep.client_and_merchant();
    let receiver = Receiver::start().await;
    dep.set_callback(&id, &receiver.url());
    (server, auth, merchant, receiver)
}

/// The (event, state) of each callback received so far.
fn events(receiver: &Receiver) -> Vec<(String, String)> {
    receiver
        .received()
        .iter()
        .map(|r| {
            let v = r.json();
            (
                v["event"].as_str().unwrap().to_owned(),
                v["data"]["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn under_review_an_operator_decides(backend: Backend) {
    let dep = Deployment::new(backend).await;
    let (server, auth, merchant, receiver) = review_deployment(&dep).await;
    let init = |pan: &str| json!({"pan": pan, "name": "Asha Rao", "email": "a@example.in", "mobile": "8123456789", "merchantCode": merchant});
    let other_pan = "QWEPZ9876K";

    // DigiLocker returns someone else's PAN: the KYC waits for a verdict.
    let kid = server.init_kid(&auth, init("ABCPR1234Q")).await;
    let done = server
        .post(
            &auth,
            &format!("/v1/sandbox/kyc/{kid}/complete"),
            json!({"outcome": "approved", "verifiedPan": other_pan}),
        )
        .await;
    done.assert_exact(
        200,
        &format!(
            r#"{{"code":"0x0206","status":"PENDING","message":"Kyc is pending","data":{{"kid":"{kid}","state":"awaiting_approval"}}}}"#
        ),
    );
    receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(
        events(&receiver),
        [(
            "paycc.kyc.pending".to_owned(),
            "awaiting_approval".to_owned()
        )]
    );
    let (ok, out, _) = dep.cli(&["kyc", "show", &kid, "--json"]);
    assert!(ok);
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            shown["state"].as_str(),
            shown["panMatch"].as_bool(),
            shown["nameMatch"].as_u64(),
            shown["reason"].as_str()
        ),
        (
            Some("awaiting_approval"),
            Some(false),
            Some(100),
            Some("identity mismatch: PAN differs from the requested one")
        )
    );
    assert!(!out.contains(other_pan), "kyc show masks: {out}");
    // The customer is not verified while the verdict is awaited.
    let check = json!({"merchantCode": merchant, "pan": "ABCPR1234Q"});
    let c = server
        .post(&auth, "/v1/service/paycc/customer", check.clone())
        .await;
    assert_eq!(c.json["data"]["digioKyc"], "0", "{}", c.text);

    // A reason is required; then the operator approves it.
    let decide = |kid: &str, verdict: &str, reason: &str| {
        dep.cli(&["kyc", "decide", kid, verdict, "--reason", reason, "--json"])
    };
    let refused = |kid: &str, verdict: &str, reason: &str| {
        let (ok, _, err) = decide(kid, verdict, reason);
        assert!(!ok, "{kid} {verdict}");
        err.trim().to_owned()
    };
    assert_eq!(
        refused(&kid, "approve", " "),
        "paycc: A reason must be 1-500 printable characters."
    );
    let (ok, out, err) = decide(&kid, "approve", "PAN holder confirmed by phone");
    assert!(ok, "{err}");
    let decided: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (decided["state"].as_str(), decided["reason"].as_str()),
        (
            Some("approved"),
            Some("approved by an operator: PAN holder confirmed by phone")
        )
    );
    let r = server.status(&auth, &kid).await;
    assert_eq!(r.json["code"], "0x0200", "{}", r.text);
    assert_eq!(
        (
            r.json["data"]["kyc"]["pan"].as_str(),
            r.json["data"]["kyc"]["panMatch"].as_bool()
        ),
        (Some(other_pan), Some(false))
    );
    // The customer check now answers the verified PAN, never the requested one as if verified.
    let c = server
        .post(&auth, "/v1/service/paycc/customer", check)
        .await;
    assert_eq!(
        (
            c.json["data"]["digioKyc"].as_str(),
            c.json["data"]["pan"].as_str(),
            c.json["data"]["digioKycId"].as_str()
        ),
        (Some("1"), Some(other_pan), Some(kid.as_str()))
    );
    receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(
        events(&receiver)[1],
        ("paycc.kyc.success".into(), "approved".into())
    );
    // An ended KYC takes no second verdict.
    assert_eq!(
        refused(&kid, "reject", "changed my mind"),
        "paycc: This KYC has already ended (approved)."
    );

    // A second mismatch, rejected: the partner reads the operator's reason.
    let kid = server.init_kid(&auth, init("ABCPR5678Q")).await;
    server
        .post(
            &auth,
            &format!("/v1/sandbox/kyc/{kid}/complete"),
            json!({"outcome": "approved", "verifiedName": "Priya Sharma"}),
        )
        .await;
    let (ok, _, err) = decide(&kid, "reject", "Name does not match the account holder.");
    assert!(ok, "{err}");
    server.status(&auth, &kid).await.assert_exact(
        200,
        &format!(
            r#"{{"code":"0x0202","status":"FAILURE","message":"Kyc rejected","data":{{"kid":"{kid}","state":"rejected","reason":"Name does not match the account holder."}}}}"#
        ),
    );
    receiver.wait_for(4, Duration::from_secs(10)).await;
    assert_eq!(
        events(&receiver)[3],
        ("paycc.kyc.failed".into(), "rejected".into())
    );

    // Approve needs a KYC awaiting approval with a verified identity.
    let kid = server.init_kid(&auth, init("ABCPR9999Q")).await;
    assert_eq!(
        refused(&kid, "approve", "looks fine"),
        "paycc: Only a KYC awaiting approval can be approved; this one is pending."
    );
    assert_eq!(
        refused("KID000000000000000AAAAAAAAAAAAAA", "reject", "x"),
        "paycc: No such KYC request"
    );
}

on_both_backends!(
    names_match_as_the_table_says,
    another_pan_is_rejected_and_never_verifies_the_customer,
    the_helper_refuses_a_malformed_verified_person,
    a_stricter_threshold_is_honoured,
    under_review_an_operator_decides,
);
