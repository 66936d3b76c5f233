//! GET|POST /v1/service/paycc/kyc/status/{kid} in every state, and the sandbox helper.

mod common;
use common::*;
use serde_json::json;
use std::time::Duration;

const NOT_FOUND: &str =
    r#"{"code":"0x0202","status":"FAILURE","message":"Entity not found for this ID"}"#;

async fn pending_until_the_customer_finishes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let kid = app.init_kid().await;
    app.status(&kid).await.assert_exact(
        200,
        &format!(r#"{{"code":"0x0206","status":"PENDING","message":"Kyc is pending","data":{{"kid":"{kid}","state":"pending"}}}}"#),
    );
    app.complete(&kid, "pending", 88).await.assert_exact(
        200,
        &format!(r#"{{"code":"0x0206","status":"PENDING","message":"Kyc is pending","data":{{"kid":"{kid}","state":"awaiting_approval"}}}}"#),
    );
}

async fn approved_carries_the_full_kyc_object_and_cust_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let kid = app.init_kid().await;
    let done = app.complete(&kid, "approved", 97).await;
    let r = app.status(&kid).await;
    assert_eq!(done.text, r.text);
    assert_eq!(r.status, 200);
    assert!(r.text.starts_with(&format!(
        r#"{{"code":"0x0200","message":"Record fetched successful.","status":"SUCCESS","data":{{"kyc":{{"id":"{kid}","name":"Sanjay Kumar","faceMatch":97,"aadhaar":"xxxxxxxx"#
    )), "{}", r.text);
    let kyc = &r.json["data"]["kyc"];
    let order = [
        "id",
        "name",
        "faceMatch",
        "aadhaar",
        "gender",
        "dob",
        "image",
        "fatherName",
        "currentAddress",
        "address",
        "locality_or_post_office",
        "district_or_city",
        "state",
        "pincode",
        "pan",
        "panName",
        "panMatch",
        "nameMatch",
        "merchantDetails",
        "custId",
    ];
    assert_keys_in_order(&r.text, &order);
    // The published eleven, then what paycc adds: the identity bound to the request.
    assert_eq!(kyc.as_object().unwrap().len(), 13);
    assert!(
        r.text.contains(
            r#","panName":"SANJAY KUMAR","panMatch":true,"nameMatch":100},"merchantDetails":"#
        ),
        "{}",
        r.text
    );
    let aadhaar = kyc["aadhaar"].as_str().unwrap();
    assert!(aadhaar.len() == 12 && aadhaar[8..].bytes().all(|b| b.is_ascii_digit()));
    assert!(["M", "F"].contains(&kyc["gender"].as_str().unwrap()));
    let dob = kyc["dob"].as_str().unwrap();
    assert!(
        dob.len() == 10 && &dob[2..3] == "/" && &dob[5..6] == "/",
        "{dob}"
    );
    assert!(kyc["image"].as_str().unwrap().starts_with("/9j/"));
    assert!(kyc["fatherName"].is_string());
    let addr = kyc["currentAddress"].as_object().unwrap();
    let addr_keys: Vec<&str> = addr.keys().map(String::as_str).collect();
    assert_eq!(addr_keys.len(), 5);
    for k in [
        "address",
        "locality_or_post_office",
        "district_or_city",
        "state",
        "pincode",
    ] {
        assert!(addr[k].is_string(), "{k}");
    }
    assert_eq!(kyc["pan"], PAN);
    assert_eq!(kyc["panName"], "SANJAY KUMAR");
    let cust_id = r.json["data"]["merchantDetails"]["custId"]
        .as_str()
        .unwrap();
    assert!(
        cust_id.len() == 12
            && cust_id
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    );
}

async fn rejected_and_expired_are_failures_read_with_200(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let kid = app.init_kid().await;
    assert_eq!(app.complete(&kid, "rejected", 31).await.status, 200);
    app.status(&kid).await.assert_exact(
        200,
        &format!(r#"{{"code":"0x0202","status":"FAILURE","message":"Kyc rejected","data":{{"kid":"{kid}","state":"rejected","reason":"Rejected in the sandbox (face match 31%)."}}}}"#),
    );
    let mut body = app.init_body();
    body["email"] = json!("second@example.com");
    let kid2 = app.init(&body).await.json["data"]["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.complete(&kid2, "expired", 0).await.status, 200);
    app.status(&kid2).await.assert_exact(
        200,
        &format!(r#"{{"code":"0x0202","status":"FAILURE","message":"Kyc expired","data":{{"kid":"{kid2}","state":"expired","reason":"The KYC link expired before the customer completed it."}}}}"#),
    );
}

async fn a_request_expires_after_the_configured_time(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Options {
            kyc_ttl: Duration::from_secs(3600),
            expiry_interval: Duration::from_millis(50),
            ..Options::default()
        },
    )
    .await;
    let kid = app.init_kid().await;
    app.clock.advance(Duration::from_secs(3599));
    assert_eq!(app.status(&kid).await.json["code"], "0x0206");
    app.clock.advance(Duration::from_secs(1));
    let r = app.status(&kid).await;
    assert_eq!(
        (r.json["message"].as_str(), r.json["data"]["state"].as_str()),
        (Some("Kyc expired"), Some("expired"))
    );
    // The sweeper stores it, so it can no longer be finished.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.service.admin.kyc_summary(&kid).await.unwrap().state != "expired" {
        assert!(
            std::time::Instant::now() < deadline,
            "the sweeper never stored the expiry"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.complete(&kid, "approved", 90).await.assert_exact(
        409,
        r#"{"code":"0x0202","status":"FAILURE","message":"This KYC has already ended (expired)."}"#,
    );
}

async fn terminal_states_never_move(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let kid = app.init_kid().await;
    assert_eq!(
        app.complete(&kid, "approved", 99).await.json["code"],
        "0x0200"
    );
    for outcome in ["rejected", "expired", "pending", "approved"] {
        app.complete(&kid, outcome, 10).await.assert_exact(
            409,
            r#"{"code":"0x0202","status":"FAILURE","message":"This KYC has already ended (approved)."}"#,
        );
    }
    assert_eq!(app.status(&kid).await.json["data"]["kyc"]["faceMatch"], 99);
}

async fn unknown_malformed_and_foreign_kids_read_alike(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let kid = app.init_kid().await;
    let (other_auth, _) = app.other_client().await;
    let foreign = app
        .send(
            reqwest::Method::GET,
            &format!("/v1/service/paycc/kyc/status/{kid}"),
            None,
            Some(&other_auth),
        )
        .await;
    foreign.assert_exact(404, NOT_FOUND);
    for probe in [
        "KID000000000000000AAAAAAAAAAAAAA",
        "not-a-kid",
        "%FF%FE",
        &kid.to_lowercase(),
    ] {
        app.status(probe).await.assert_exact(404, NOT_FOUND);
    }
    // The sandbox helper answers a foreign kid the same way.
    let r = app
        .send(
            reqwest::Method::POST,
            &format!("/v1/sandbox/kyc/{kid}/complete"),
            Some(json!({"outcome":"approved"}).to_string()),
            Some(&other_auth),
        )
        .await;
    r.assert_exact(404, NOT_FOUND);
    assert_eq!(app.status(&kid).await.json["code"], "0x0206");
}

async fn status_accepts_post_and_get_with_a_body(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let kid = app.init_kid().await;
    let path = format!("/v1/service/paycc/kyc/status/{kid}");
    for method in [reqwest::Method::GET, reqwest::Method::POST] {
        for body in [
            None,
            Some(r#"{"kid":"ignored","apiType":"x"}"#.to_string()),
            Some("not json at all".to_string()),
        ] {
            let r = app
                .send(method.clone(), &path, body, Some(&app.auth()))
                .await;
            assert_eq!(
                (r.status, r.json["code"].as_str()),
                (200, Some("0x0206")),
                "{method} {}",
                r.text
            );
        }
    }
}

async fn sandbox_helper_validates_its_body(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let kid = app.init_kid().await;
    let path = format!("/v1/sandbox/kyc/{kid}/complete");
    app.post(&path, &json!({})).await.assert_exact(
        400,
        r#"{"code":"0x0203","status":"MISSING_PARAMETER","message":"The outcome field is required.","errors":{"outcome":["The outcome field is required."]}}"#,
    );
    app.post(&path, &json!({"outcome":"maybe","faceMatch":101})).await.assert_exact(
        422,
        r#"{"code":"0x0202","status":"FAILURE","message":"The outcome field is invalid.","errors":{"outcome":["The outcome field must be approved, rejected, expired or pending."],"faceMatch":["The faceMatch field must be a whole number from 0 to 100."]}}"#,
    );
    assert_eq!(app.status(&kid).await.json["code"], "0x0206");
}

/// Credentials are checked before the kid means anything: every refusal reads as 401
/// (GET or POST, own, unknown or malformed kid), and nothing of the request shows.
async fn every_authentication_failure_is_401_whatever_the_kid(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let kid = app.init_kid().await;
    let other_secret = app
        .service
        .admin
        .create_client("Other partner")
        .await
        .unwrap()
        .client_secret;
    for probe in [
        kid.as_str(),
        "KID000000000000000AAAAAAAAAAAAAA",
        "not-a-kid",
    ] {
        let mut cases = auth_failures(&app);
        // Another client's secret does not open this client's id either.
        cases.push((
            Some(basic(&app.client_id, &other_secret)),
            "Invalid client credentials.",
        ));
        for (header, message) in cases {
            for method in [reqwest::Method::GET, reqwest::Method::POST] {
                let r = app
                    .send(
                        method,
                        &format!("/v1/service/paycc/kyc/status/{probe}"),
                        None,
                        header.as_deref(),
                    )
                    .await;
                r.assert_unauthorized(message, &app.secret);
                assert!(!r.text.contains(&kid), "{}", r.text);
            }
        }
    }
    assert_eq!(app.status(&kid).await.json["code"], "0x0206");
}

/// Reads and inits sent at once share their lookups (one query per batch on PostgreSQL,
/// one read transaction on SQLite); each must still answer for its own caller only.
async fn requests_sent_at_once_each_answer_for_their_own_caller(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (other_auth, other_merchant) = app.other_client().await;
    let mine = app.auth();
    let init_url = format!("{}/v1/service/paycc/init/kyc", app.base);
    let mut kids = Vec::new();
    for _ in 0..8 {
        kids.push((app.init_kid_for_new_customer().await, mine.clone()));
    }
    for n in 0..8 {
        let mut body = init_body_for(&other_merchant);
        body["pan"] = json!(format!("ZYXPK{n:04}Z"));
        let r = send(
            &app.http,
            &init_url,
            reqwest::Method::POST,
            Some(body.to_string()),
            Some(&other_auth),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        kids.push((
            r.json["data"]["kid"].as_str().unwrap().to_owned(),
            other_auth.clone(),
        ));
    }
    let wrong_secret = basic(&app.client_id, "not-the-secret");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        for (kid, owner) in &kids {
            for auth in [&mine, &other_auth, &wrong_secret] {
                let (http, url) = (
                    app.http.clone(),
                    format!("{}/v1/service/paycc/kyc/status/{kid}", app.base),
                );
                let expected = if auth == &wrong_secret {
                    (401, r#"{"code":"0x0201","status":"UNAUTHORIZED","message":"Invalid client credentials."}"#.to_owned())
                } else if auth == owner {
                    (
                        200,
                        format!(
                            r#"{{"code":"0x0206","status":"PENDING","message":"Kyc is pending","data":{{"kid":"{kid}","state":"pending"}}}}"#
                        ),
                    )
                } else {
                    (404, NOT_FOUND.to_owned())
                };
                let auth = auth.clone();
                tasks.spawn(async move {
                    let r = send(&http, &url, reqwest::Method::GET, None, Some(&auth)).await;
                    r.assert_exact(expected.0, &expected.1);
                });
            }
        }
        // An init naming the other client's merchant, among the reads.
        let (http, url) = (app.http.clone(), init_url.clone());
        let (body, auth) = (init_body_for(&other_merchant).to_string(), mine.clone());
        tasks.spawn(async move {
            send(&http, &url, reqwest::Method::POST, Some(body), Some(&auth)).await.assert_exact(
                403,
                r#"{"code":"0x0202","status":"FAILURE","message":"The merchant is not active or does not belong to this client."}"#,
            );
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

on_both_backends!(
    every_authentication_failure_is_401_whatever_the_kid,
    requests_sent_at_once_each_answer_for_their_own_caller,
    pending_until_the_customer_finishes,
    approved_carries_the_full_kyc_object_and_cust_id,
    rejected_and_expired_are_failures_read_with_200,
    a_request_expires_after_the_configured_time,
    terminal_states_never_move,
    unknown_malformed_and_foreign_kids_read_alike,
    status_accepts_post_and_get_with_a_body,
    sandbox_helper_validates_its_body,
);
