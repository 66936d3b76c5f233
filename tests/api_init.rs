//! POST /v1/service/paycc/init/kyc: success shape, every missing and invalid field,
//! every authentication failure, merchant ownership, reuse and concurrency.

mod common;
use common::*;
use paycc::store::Switch;
use serde_json::{Value, json};

const INIT: &str = "/v1/service/paycc/init/kyc";

async fn init_returns_kid_and_journey_url_in_published_key_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = app.init(&app.init_body()).await;
    assert_eq!(r.status, 200);
    assert!(
        r.text.starts_with(
            r#"{"code":"0x0200","message":"Request Init","status":"SUCCESS","data":{"url":""#
        ),
        "{}",
        r.text
    );
    let kid = r.json["data"]["kid"].as_str().unwrap();
    assert!(is_kid(kid), "{kid}");
    let url = r.json["data"]["url"].as_str().unwrap();
    let prefix = format!("{}/gateway/login/{kid}/REF", app.base);
    assert!(url.starts_with(&prefix), "{url}");
    let token = url.split("?token_id=").nth(1).unwrap();
    assert!(token.starts_with("GWT") && token.len() == 46, "{token}");
    // No personal data in the link.
    for pii in [PAN, MOBILE, EMAIL, "Sanjay"] {
        assert!(!url.contains(pii), "{pii} leaked into {url}");
    }
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

async fn each_missing_field_is_named(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for field in ["pan", "name", "email", "mobile", "merchantCode"] {
        for blank in [Value::Null, json!(""), json!("   ")] {
            let mut body = app.init_body();
            body[field] = blank.clone();
            app.init(&body).await.assert_exact(
                400,
                &format!(r#"{{"code":"0x0203","status":"MISSING_PARAMETER","message":"The {field} field is required.","errors":{{"{field}":["The {field} field is required."]}}}}"#),
            );
        }
        let mut body = app.init_body();
        body.as_object_mut().unwrap().remove(field);
        let r = app.init(&body).await;
        assert_eq!(
            (r.status, r.json["message"].as_str().unwrap()),
            (400, format!("The {field} field is required.").as_str())
        );
    }
}

async fn every_missing_field_is_listed_and_the_first_named(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.init(&json!({})).await.assert_exact(
        400,
        r#"{"code":"0x0203","status":"MISSING_PARAMETER","message":"The pan field is required.","errors":{"pan":["The pan field is required."],"name":["The name field is required."],"email":["The email field is required."],"mobile":["The mobile field is required."],"merchantCode":["The merchantCode field is required."]}}"#,
    );
}

async fn each_invalid_field_is_refused_with_its_reason(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cases: &[(&str, Value, &str)] = &[
        (
            "pan",
            json!("ENGCK1234L"),
            "The pan field must be an individual's PAN (4th letter P).",
        ),
        (
            "pan",
            json!("ENGP1234KL"),
            "The pan field must be 5 letters, 4 digits and a letter (e.g. ABCPE1234F).",
        ),
        (
            "pan",
            json!("ENGPK1234LXX"),
            "The pan field may not be longer than 11 characters.",
        ),
        ("pan", json!(12345), "The pan field must be a string."),
        (
            "name",
            json!("R2-D2"),
            "The name field may contain only letters, spaces, dots, apostrophes and hyphens.",
        ),
        (
            "name",
            json!("a".repeat(201)),
            "The name field may not be longer than 200 characters.",
        ),
        (
            "name",
            json!(["Sanjay"]),
            "The name field must be a string.",
        ),
        (
            "email",
            json!("sanjay.example.com"),
            "The email field must be a valid email address.",
        ),
        (
            "email",
            json!("a b@example.com"),
            "The email field must be a valid email address.",
        ),
        (
            "mobile",
            json!("5393712345"),
            "The mobile field must be a 10-digit Indian mobile number starting with 6-9.",
        ),
        (
            "mobile",
            json!("63937"),
            "The mobile field must be a 10-digit Indian mobile number starting with 6-9.",
        ),
        ("mobile", json!(true), "The mobile field must be a string."),
        (
            "merchantCode",
            json!("MID 693"),
            "The merchantCode field must be at most 20 letters, digits, '_' or '-'.",
        ),
        (
            "merchantCode",
            json!("M".repeat(21)),
            "The merchantCode field may not be longer than 20 characters.",
        ),
        (
            "redirectUrl",
            json!("ftp://example.com/x"),
            "The redirectUrl field must be an http or https URL of at most 300 characters.",
        ),
    ];
    for (field, value, why) in cases {
        let mut body = app.init_body();
        body[*field] = value.clone();
        let expected = serde_json::to_string(&json!({"x": why})).unwrap();
        let why_json = &expected[5..expected.len() - 1];
        app.init(&body).await.assert_exact(
            422,
            &format!(r#"{{"code":"0x0202","status":"FAILURE","message":"The {field} field is invalid.","errors":{{"{field}":[{why_json}]}}}}"#),
        );
    }
}

async fn lenient_forms_are_normalised_and_accepted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (field, value) in [
        ("pan", json!(" engpk1234l ")),
        ("mobile", json!(6393712345u64)),
        ("mobile", json!("+91 63937-12345")),
        ("mobile", json!("06393712345")),
        ("name", json!("  संजय   कुमार ")),
        ("email", json!("Sanjay@Example.COM")),
        (
            "redirectUrl",
            json!("https://shop.example/kyc/done?order=9"),
        ),
    ] {
        let mut body = app.init_body();
        body[field] = value;
        let r = app.init(&body).await;
        assert_eq!(r.status, 200, "{field}: {}", r.text);
    }
}

async fn extra_fields_are_ignored_and_aadhaar_never_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut body = app.init_body();
    body["aadhaarNo"] = json!("234567890123");
    body["apiType"] = json!("paycc");
    body["nested"] = json!({"deep": [1, 2, 3]});
    let r = app.init(&body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Complete it too, so the KYC result and the customer's verified identity are stored.
    let kid = r.json["data"]["kid"].as_str().unwrap();
    let approved = app.complete(kid, "approved", 91).await;
    let aadhaar = approved.json["data"]["kyc"]["aadhaar"]
        .as_str()
        .unwrap()
        .to_owned();
    let stored = app.stored_bytes().await;
    assert!(stored.len() > 1000, "the check reads the stored data");
    for needle in [
        "234567890123",
        PAN,
        MOBILE,
        EMAIL,
        NAME,
        "SANJAY KUMAR",
        &aadhaar,
    ] {
        let hex: String = needle.bytes().map(|b| format!("{b:02x}")).collect();
        for form in [needle.as_bytes(), hex.as_bytes()] {
            assert!(
                !stored.windows(form.len()).any(|w| w == form),
                "{needle} is stored in plain text"
            );
        }
    }
}

async fn body_is_read_whatever_the_content_type(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut req = app
            .http
            .post(format!("{}{INIT}", app.base))
            .header("Authorization", app.auth());
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        let r = req.body(app.init_body().to_string()).send().await.unwrap();
        assert_eq!(r.status(), 200, "{content_type:?}");
    }
}

async fn every_authentication_failure_is_401_with_a_challenge(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cases = auth_failures(&app);
    for (header, message) in cases {
        let r = app
            .send(
                reqwest::Method::POST,
                INIT,
                Some(app.init_body().to_string()),
                header.as_deref(),
            )
            .await;
        r.assert_unauthorized(message, &app.secret);
    }
    // The scheme name is case-insensitive.
    let lower = app.auth().replacen("Basic", "basic", 1);
    let r = app
        .send(
            reqwest::Method::POST,
            INIT,
            Some(app.init_body().to_string()),
            Some(&lower),
        )
        .await;
    assert_eq!(r.status, 200);
}

const FORBIDDEN: &str = r#"{"code":"0x0202","status":"FAILURE","message":"The merchant is not active or does not belong to this client."}"#;

async fn foreign_unknown_and_inactive_merchants_are_403(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, other_merchant) = app.other_client().await;
    for code in [other_merchant.as_str(), "MID000000000"] {
        let mut body = app.init_body();
        body["merchantCode"] = json!(code);
        app.init(&body).await.assert_exact(403, FORBIDDEN);
    }
    app.service
        .admin
        .set_merchant_active(&app.merchant, Switch::Off)
        .await
        .unwrap();
    app.init(&app.init_body())
        .await
        .assert_exact(403, FORBIDDEN);
    app.service
        .admin
        .set_merchant_active(&app.merchant, Switch::On)
        .await
        .unwrap();
    assert_eq!(app.init(&app.init_body()).await.status, 200);
}

async fn identical_init_while_open_returns_the_same_kid(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = app.init(&app.init_body()).await;
    // Same person written differently is the same request.
    let mut same = app.init_body();
    same["pan"] = json!("engpk1234l");
    same["mobile"] = json!("+91 6393712345");
    let second = app.init(&same).await;
    assert_eq!(first.json["data"], second.json["data"]);

    let mut other_email = app.init_body();
    other_email["email"] = json!("other@example.com");
    let kid = first.json["data"]["kid"].as_str().unwrap();
    let third = app.init(&other_email).await;
    assert_new_kid(&third, kid);

    // Once the first has ended, an identical init opens a new one.
    assert_eq!(app.complete(kid, "rejected", 20).await.status, 200);
    let fourth = app.init(&app.init_body()).await;
    assert_new_kid(&fourth, kid);
}

async fn two_hundred_parallel_inits_give_two_hundred_readable_kids(backend: Backend) {
    let app = std::sync::Arc::new(TestApp::spawn(backend).await);
    let mut tasks = Vec::new();
    for i in 0..200u32 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let mut body = app.init_body();
            body["pan"] = json!(format!("ABCPD{:04}Z", i));
            body["mobile"] = json!(format!("9{:09}", i));
            let r = app.init(&body).await;
            assert_eq!(r.status, 200, "{}", r.text);
            r.json["data"]["kid"].as_str().unwrap().to_owned()
        }));
    }
    let mut kids = std::collections::HashSet::new();
    for t in tasks {
        kids.insert(t.await.unwrap());
    }
    assert_eq!(kids.len(), 200);
    for kid in &kids {
        let r = app.status(kid).await;
        assert_eq!(r.json["code"], "0x0206", "{kid}: {}", r.text);
    }
}

on_both_backends!(
    init_returns_kid_and_journey_url_in_published_key_order,
    each_missing_field_is_named,
    every_missing_field_is_listed_and_the_first_named,
    each_invalid_field_is_refused_with_its_reason,
    lenient_forms_are_normalised_and_accepted,
    extra_fields_are_ignored_and_aadhaar_never_stored,
    body_is_read_whatever_the_content_type,
    every_authentication_failure_is_401_with_a_challenge,
    foreign_unknown_and_inactive_merchants_are_403,
    identical_init_while_open_returns_the_same_kid,
    two_hundred_parallel_inits_give_two_hundred_readable_kids,
);
