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
    assert_eq!(app.complete(&second, "approved", 80).await.status, 200);
    let after = app.status(&second).await;
    assert_eq!(after.json["data"]["merchantDetails"]["custId"], d["custId"]);
}

async fn after_rejection_there_is_no_open_link(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let kid = app.init_kid().await;
    assert_eq!(app.complete(&kid, "rejected", 10).await.status, 200);
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

/// The custId a PAN's customer got, read back through the customer check.
async fn cust_id_of(app: &TestApp, pan: &str) -> String {
    let r = app
        .customer(&json!({"merchantCode": app.merchant, "pan": pan}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["data"]["custId"].as_str().unwrap().to_owned()
}

/// Decodes the creation clock at the front of a custId (base 36, digits first, in
/// milliseconds since 2024-01-01T00:00Z) into unix milliseconds.
fn cust_id_clock_ms(cust_id: &str) -> i64 {
    let clock = i64::from_str_radix(&cust_id[..8], 36).expect("eight base-36 digits");
    1_704_067_200_000 + clock
}

async fn cust_ids_tell_creation_order_and_stay_with_the_customer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut earlier: Option<String> = None;
    for pan in ["ABCPK0001Z", "ABCPK0002Z", "ABCPK0003Z"] {
        let before = unix_ms();
        let mut body = app.init_body();
        body["pan"] = json!(pan);
        assert_eq!(app.init(&body).await.status, 200);
        let after = unix_ms();
        let cust_id = cust_id_of(&app, pan).await;
        assert_eq!(cust_id.len(), 12, "{cust_id}");
        assert!(
            cust_id
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
            "{cust_id}"
        );
        let clock = cust_id_clock_ms(&cust_id);
        assert!(
            (before..=after).contains(&clock),
            "{cust_id}: {clock} outside {before}..={after}"
        );
        if let Some(earlier) = &earlier {
            assert!(cust_id > *earlier, "{cust_id} sorts after {earlier}");
        }
        earlier = Some(cust_id);
        // Two customers a millisecond apart at least, so their clocks differ.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    // A later init for a known PAN (new details) keeps the customer's custId.
    let first = cust_id_of(&app, "ABCPK0001Z").await;
    let mut body = app.init_body();
    body["pan"] = json!("ABCPK0001Z");
    body["email"] = json!("new.address@example.com");
    assert_eq!(app.init(&body).await.status, 200);
    assert_eq!(cust_id_of(&app, "ABCPK0001Z").await, first);
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

on_both_backends!(
    cust_ids_tell_creation_order_and_stay_with_the_customer,
    before_kyc_the_record_has_the_link_and_no_identity,
    after_approval_the_record_carries_the_verified_identity,
    after_rejection_there_is_no_open_link,
    unknown_and_foreign_customers_are_not_found,
    customer_check_validates_its_fields,
);
