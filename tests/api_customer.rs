//! GET|POST /v1/service/paycc/customer: before and after KYC, by mobile and by PAN.

mod common;
use common::*;
use serde_json::json;

const NO_CUSTOMER: &str = r#"{"code":"0x0202","status":"FAILURE","message":"No customer found"}"#;

async fn before_kyc_the_record_has_the_link_and_no_identity(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let init = app.init(&app.init_body()).await;
    let (kid, url) = (
        init.json["data"]["kid"].as_str().unwrap(),
        init.json["data"]["url"].as_str().unwrap(),
    );
    let r = app
        .customer(&json!({"merchantCode": app.merchant, "mobile": MOBILE}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let cust_id = r.json["data"]["custId"].as_str().unwrap().to_owned();
    let expected = format!(
        r#"{{"code":"0x0200","message":"Customer Record found","status":"SUCCESS","data":{{"firstName":"Sanjay","middleName":null,"lastName":"Kumar","mobile":6393712345,"email":"{EMAIL}","address":null,"dob":null,"gender":null,"pan":"{PAN}","custId":"{cust_id}","kycName":null,"faceMatchPercent":null,"imageBase64":null,"isActive":"1","digioKyc":"0","digioKycId":"{kid}","kycUrl":"{url}"}}}}"#
    );
    r.assert_exact(200, &expected);
    // By PAN, in any case, and with GET carrying the body.
    let by_pan = app
        .send(
            reqwest::Method::GET,
            "/v1/service/paycc/customer",
            Some(json!({"merchantCode": app.merchant, "pan": "engpk1234l"}).to_string()),
            Some(&app.auth()),
        )
        .await;
    by_pan.assert_exact(200, &expected);
}

async fn after_approval_the_record_carries_the_verified_identity(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let kid = app.init_kid().await;
    let status = app.complete(&kid, "approved", 96).await;
    let kyc = &status.json["data"]["kyc"];
    let r = app
        .customer(&json!({"merchantCode": app.merchant, "mobile": 6393712345u64}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let d = &r.json["data"];
    assert_keys_in_order(
        &r.text,
        &[
            "firstName",
            "middleName",
            "lastName",
            "mobile",
            "email",
            "address",
            "dob",
            "gender",
            "pan",
            "custId",
            "kycName",
            "faceMatchPercent",
            "imageBase64",
            "isActive",
            "digioKyc",
            "digioKycId",
            "kycUrl",
        ],
    );
    assert_eq!(d["digioKyc"], "1");
    assert_eq!(d["digioKycId"], kid.as_str());
    assert_eq!(d["kycUrl"], serde_json::Value::Null);
    assert_eq!(d["faceMatchPercent"], "96");
    assert_eq!(d["kycName"], "SANJAY KUMAR");
    assert_eq!(d["dob"], kyc["dob"]);
    assert_eq!(d["imageBase64"], kyc["image"]);
    assert_eq!(
        d["gender"],
        if kyc["gender"] == "M" {
            "Male"
        } else {
            "Female"
        }
    );
    assert_eq!(
        d["custId"],
        status.json["data"]["merchantDetails"]["custId"]
    );
    let addr = &kyc["currentAddress"];
    assert_eq!(
        d["address"].as_str().unwrap(),
        format!(
            "{}, {}, {}, {}, {}",
            addr["address"].as_str().unwrap(),
            addr["locality_or_post_office"].as_str().unwrap(),
            addr["district_or_city"].as_str().unwrap(),
            addr["state"].as_str().unwrap(),
            addr["pincode"].as_str().unwrap()
        )
    );
    // A later KYC for the same customer reuses the custId.
    let mut again = app.init_body();
    again["email"] = json!("new@example.com");
    let second = app.init(&again).await.json["data"]["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    app.complete(&second, "approved", 80).await;
    let after = app.status(&second).await;
    assert_eq!(after.json["data"]["merchantDetails"]["custId"], d["custId"]);
}

async fn after_rejection_there_is_no_open_link(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let kid = app.init_kid().await;
    app.complete(&kid, "rejected", 10).await;
    let d = app
        .customer(&json!({"merchantCode": app.merchant, "pan": PAN}))
        .await
        .json["data"]
        .clone();
    assert_eq!(
        (
            d["digioKyc"].as_str(),
            d["kycUrl"].is_null(),
            d["digioKycId"].as_str()
        ),
        (Some("0"), true, Some(kid.as_str()))
    );
}

async fn unknown_and_foreign_customers_are_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.init_kid().await;
    app.customer(&json!({"merchantCode": app.merchant, "mobile": "9999999999"}))
        .await
        .assert_exact(404, NO_CUSTOMER);
    app.customer(&json!({"merchantCode": app.merchant, "pan": "ABCPZ9999Z"}))
        .await
        .assert_exact(404, NO_CUSTOMER);
    // The other client's merchant has no such customer, and cannot see ours.
    let (other_auth, other_merchant) = app.other_client().await;
    let r = app
        .send(
            reqwest::Method::POST,
            "/v1/service/paycc/customer",
            Some(json!({"merchantCode": other_merchant, "mobile": MOBILE}).to_string()),
            Some(&other_auth),
        )
        .await;
    r.assert_exact(404, NO_CUSTOMER);
    let r = app
        .send(
            reqwest::Method::POST,
            "/v1/service/paycc/customer",
            Some(json!({"merchantCode": app.merchant, "mobile": MOBILE}).to_string()),
            Some(&other_auth),
        )
        .await;
    r.assert_exact(403, r#"{"code":"0x0202","status":"FAILURE","message":"The merchant is not active or does not belong to this client."}"#);
}

async fn customer_check_validates_its_fields(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.customer(&json!({"mobile": MOBILE})).await.assert_exact(
        400,
        r#"{"code":"0x0203","status":"MISSING_PARAMETER","message":"The merchantCode field is required.","errors":{"merchantCode":["The merchantCode field is required."]}}"#,
    );
    app.customer(&json!({"merchantCode": app.merchant})).await.assert_exact(
        400,
        r#"{"code":"0x0203","status":"MISSING_PARAMETER","message":"The mobile field is required.","errors":{"mobile":["The mobile field is required."]}}"#,
    );
    app.customer(&json!({"merchantCode": app.merchant, "pan": "12345"})).await.assert_exact(
        422,
        r#"{"code":"0x0202","status":"FAILURE","message":"The pan field is invalid.","errors":{"pan":["The pan field must be 5 letters, 4 digits and a letter (e.g. ABCPE1234F)."]}}"#,
    );
}

on_both_backends!(
    before_kyc_the_record_has_the_link_and_no_identity,
    after_approval_the_record_carries_the_verified_identity,
    after_rejection_there_is_no_open_link,
    unknown_and_foreign_customers_are_not_found,
    customer_check_validates_its_fields,
);
