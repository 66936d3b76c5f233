//! What each KYC keeps of its own: the details the merchant submitted with it stay with
//! it, whatever a later init for the same customer sends. Driven through the API, the
//! sandbox helper and the operator's CLI, on both databases.

mod common;
use common::deploy::Deployment;
use common::*;
use serde_json::{Value, json};

/// `paycc kyc show KID --json`, parsed.
fn shown(dep: &Deployment, kid: &str) -> Value {
    let (ok, out, err) = dep.cli(&["kyc", "show", kid, "--json"]);
    assert!(ok, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// The masked details `kyc show` prints: (pan, name, email, mobile).
fn masked(v: &Value) -> [&str; 4] {
    ["pan", "name", "email", "mobile"].map(|k| v[k].as_str().unwrap_or("(missing)"))
}

async fn each_kyc_keeps_what_was_submitted_with_it(backend: Backend) {
    let dep = Deployment::new(backend).await;
    let server = dep.start(&[]);
    let (_, auth, merchant) = dep.client_and_merchant();
    let first = json!({"pan": "ABCPR1234Q", "name": "Asha Rao", "email": "asha@example.in",
        "mobile": "8123450001", "merchantCode": merchant});
    let second = json!({"pan": "ABCPR1234Q", "name": "Ravi Kumar", "email": "ravi@example.com",
        "mobile": "9123450002", "merchantCode": merchant});
    let kid_first = server.init_kid(&auth, first).await;
    let kid_second = server.init_kid(&auth, second).await;
    assert_ne!(kid_first, kid_second);
    let (a, b) = (shown(&dep, &kid_first), shown(&dep, &kid_second));
    assert_eq!(a["custId"], b["custId"], "one customer: {a} {b}");
    assert_eq!(
        masked(&a),
        ["XXXXXX234Q", "A. R.", "a***@example.in", "XXXXXX0001"]
    );
    assert_eq!(
        masked(&b),
        ["XXXXXX234Q", "R. K.", "r***@example.com", "XXXXXX0002"]
    );

    // The first KYC is bound to the name asked with it, not the customer's latest.
    let done = server
        .post(
            &auth,
            &format!("/v1/sandbox/kyc/{kid_first}/complete"),
            json!({"outcome": "approved", "faceMatch": 97, "verifiedName": "Asha Rao"}),
        )
        .await;
    assert_eq!(
        (
            done.status,
            done.json["code"].as_str(),
            done.json["data"]["kyc"]["name"].as_str()
        ),
        (200, Some("0x0200"), Some("Asha Rao")),
        "{}",
        done.text
    );
    let done = server
        .post(
            &auth,
            &format!("/v1/sandbox/kyc/{kid_second}/complete"),
            json!({"outcome": "approved", "faceMatch": 97, "verifiedName": "Asha Rao"}),
        )
        .await;
    assert_eq!(
        (
            done.status,
            done.json["code"].as_str(),
            done.json["message"].as_str()
        ),
        (200, Some("0x0202"), Some("Kyc rejected")),
        "the second asked about Ravi Kumar: {}",
        done.text
    );
    assert_eq!(masked(&shown(&dep, &kid_first))[1], "A. R.");
}

on_both_backends!(each_kyc_keeps_what_was_submitted_with_it);
