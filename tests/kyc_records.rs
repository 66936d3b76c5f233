//! What each KYC keeps of its own, and for how long: the details the merchant submitted
//! with it stay with it whatever a later init for the same customer sends, and its
//! identity data is deleted once its retention has passed or on an erasure request,
//! leaving a tombstone. Driven through the API, the sandbox helper and the operator's
//! CLI, on both databases.

mod common;
use common::deploy::Deployment;
use common::*;
use serde_json::{Value, json};
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);
const WAIT: Duration = Duration::from_secs(10);

/// The answer to a status read of a purged request.
fn purged(kid: &str, state: &str) -> String {
    format!(
        r#"{{"code":"0x0202","status":"FAILURE","message":"Kyc data purged","data":{{"kid":"{kid}","state":"{state}"}}}}"#
    )
}

/// A count the database gives for `sql`, on either backend.
async fn count(app: &TestApp, sql: &'static str) -> i64 {
    match &app.db {
        Some(db) => db.scalar(sql).await,
        None => rusqlite::Connection::open(app.dir.path().join("paycc.db"))
            .unwrap()
            .query_row(sql, [], |r| r.get(0))
            .unwrap(),
    }
}

/// Polls `sql` until it counts `want` (the sweeper runs on its own); the last count.
async fn count_becomes(app: &TestApp, sql: &'static str, want: i64) -> i64 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let n = count(app, sql).await;
        if n == want || tokio::time::Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const PURGED_WITH_DATA: &str = "SELECT COUNT(*) FROM kyc_requests WHERE purged_at IS NOT NULL
    AND (result_sealed IS NOT NULL OR submitted_sealed IS NOT NULL OR url_sealed IS NOT NULL
         OR token_hash IS NOT NULL OR redirect_url IS NOT NULL)";
const PURGED: &str = "SELECT COUNT(*) FROM kyc_requests WHERE purged_at IS NOT NULL";
const SANDBOX_JOURNEYS: &str = "SELECT COUNT(*) FROM sandbox_sessions";

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

async fn ended_kycs_are_purged_after_their_retention(backend: Backend) {
    let opts = Options {
        expiry_interval: Duration::from_millis(100),
        retention: 10 * DAY,
        sandbox_retention: 2 * DAY,
        ..Options::default()
    };
    let app = TestApp::spawn_with(backend, opts).await;
    let pan = "ABCPR1001A";
    let mut body = app.init_body();
    body["pan"] = json!(pan);
    let (approved, link) = app.open_link(&body).await;
    // The customer opens the link: the sandbox keeps a journey.
    let page = app.http.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let done = app.complete(&approved, "approved", 97).await;
    assert_eq!(done.json["code"], "0x0200", "{}", done.text);
    assert!(count(&app, SANDBOX_JOURNEYS).await >= 1);
    let open = app.init_kid_for_new_customer().await;

    // Past the sandbox's retention, not the KYC's: the journeys go, the identity stays;
    // the open request expires meanwhile (its link lasts a day).
    app.clock.advance(3 * DAY);
    assert_eq!(count_becomes(&app, SANDBOX_JOURNEYS, 0).await, 0);
    assert_eq!(app.status(&approved).await.json["code"], "0x0200");

    // Ten days after it ended, the approved one is purged; the one that expired on the
    // third day is not yet.
    app.clock.advance(8 * DAY);
    assert_eq!(count_becomes(&app, PURGED, 1).await, 1);
    app.status(&approved)
        .await
        .assert_exact(200, &purged(&approved, "approved"));
    let expired = app.status(&open).await;
    assert_eq!(
        (
            expired.json["message"].as_str(),
            expired.json["data"]["state"].as_str()
        ),
        (Some("Kyc expired"), Some("expired")),
        "{}",
        expired.text
    );
    assert_eq!(count(&app, PURGED_WITH_DATA).await, 0);
    // Its customer had nothing else: the PAN finds no one.
    app.customer(&json!({"merchantCode": app.merchant, "pan": pan}))
        .await
        .assert_exact(
            404,
            r#"{"code":"0x0202","status":"FAILURE","message":"No customer found"}"#,
        );
    // The server's purge is in the audit trail, after the read above.
    let filter = paycc::store::AuditFilter {
        kid: Some(approved.clone()),
        limit: 10,
        ..Default::default()
    };
    let trail: Vec<(String, String, String)> = app
        .service
        .admin
        .audit_list(&filter)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.entry.actor, r.entry.action, r.entry.outcome))
        .collect();
    let entry = |actor: &str, action: &str, outcome: &str| {
        (actor.to_owned(), action.to_owned(), outcome.to_owned())
    };
    assert_eq!(
        trail,
        [
            entry("paycc", "kyc.purge", "retention"),
            entry(&app.client_id, "status.read", "identity returned"),
            // The sandbox's completion, which answered with the identity.
            entry(&app.client_id, "status.read", "identity returned")
        ]
    );
    let shown = app.service.admin.kyc_summary(&approved).await.unwrap();
    assert_eq!(
        (shown.state.as_str(), shown.pan, shown.name, shown.has_photo),
        ("approved", None, None, false)
    );
    assert!(shown.purged_at.is_some());

    // The expired one, ten days after it ended.
    app.clock.advance(3 * DAY);
    assert_eq!(count_becomes(&app, PURGED, 2).await, 2);
    app.status(&open)
        .await
        .assert_exact(200, &purged(&open, "expired"));
}

async fn an_operator_purges_one_on_request(backend: Backend) {
    let dep = Deployment::new(backend).await;
    let server = dep.start(&[]);
    let (_, auth, merchant) = dep.client_and_merchant();
    let body = |pan: &str| {
        json!({"pan": pan, "name": "Asha Rao", "email": "asha@example.in",
        "mobile": "8123450001", "merchantCode": merchant})
    };
    let ended = server.init_kid(&auth, body("ABCPR2001A")).await;
    let done = server
        .post(
            &auth,
            &format!("/v1/sandbox/kyc/{ended}/complete"),
            json!({"outcome": "rejected", "faceMatch": 10}),
        )
        .await;
    assert_eq!(done.json["message"], "Kyc rejected", "{}", done.text);
    let open = server.init_kid(&auth, body("ABCPR2002B")).await;

    let purge = |kid: &str| dep.cli(&["purge", "--kid", kid, "--json"]);
    let (ok, out, err) = purge(&ended);
    assert!(ok, "{err}");
    let tomb: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            tomb["kid"].as_str(),
            tomb["state"].as_str(),
            masked(&tomb),
            tomb["purgedAt"].is_string()
        ),
        (
            Some(ended.as_str()),
            Some("rejected"),
            ["(missing)"; 4],
            true
        ),
        "{out}"
    );
    for pii in ["ABCPR2001A", "Asha", "asha@", "8123450001"] {
        assert!(!out.contains(pii), "{pii} in {out}");
    }
    server
        .status(&auth, &ended)
        .await
        .assert_exact(200, &purged(&ended, "rejected"));
    // Again: the same tombstone.
    let (ok, again, _) = purge(&ended);
    assert!(ok);
    assert_eq!(serde_json::from_str::<Value>(&again).unwrap(), tomb);

    let (ok, _, err) = purge(&open);
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "KYC {open} is still open (pending); only an ended one is purged"
        )),
        "{err}"
    );
    assert_eq!(server.status(&auth, &open).await.json["code"], "0x0206");
    let (ok, _, err) = purge("KID000000000000000000000000000");
    assert!(!ok);
    assert!(err.contains("No such KYC request"), "{err}");
}

on_both_backends!(
    each_kyc_keeps_what_was_submitted_with_it,
    ended_kycs_are_purged_after_their_retention,
    an_operator_purges_one_on_request,
);
