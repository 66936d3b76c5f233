//! Callbacks as an operator meets them: `paycc client set-callback`, `paycc callbacks
//! list|retry`, and a node killed between a state change and its delivery.

mod common;
use common::deploy::{Deployment, Running};
use common::receiver::Receiver;
use common::*;
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

/// Inits a KYC for a customer of its own and finishes it in the sandbox.
async fn approved_kyc(server: &Running, auth: &str, merchant: &str, n: u32) -> String {
    let http = http_client();
    let body = json!({"pan": format!("ABCPK{n:04}Q"), "name": "Asha Rao", "email": "a@example.in",
        "mobile": format!("8{n:09}"), "merchantCode": merchant});
    let url = format!("{}/v1/service/paycc/init/kyc", server.base);
    let r = send(
        &http,
        &url,
        reqwest::Method::POST,
        Some(body.to_string()),
        Some(auth),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let kid = r.json["data"]["kid"].as_str().unwrap().to_owned();
    let url = format!("{}/v1/sandbox/kyc/{kid}/complete", server.base);
    let done = json!({"outcome": "approved", "faceMatch": 97}).to_string();
    let r = send(&http, &url, reqwest::Method::POST, Some(done), Some(auth)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    kid
}

fn list(dep: &Deployment, failed: bool) -> Vec<Value> {
    let mut args = vec!["callbacks", "list", "--json"];
    if failed {
        args.push("--failed");
    }
    let (ok, out, err) = dep.cli(&args);
    assert!(ok, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// (status, attempts) of the event of `kid`, as `paycc callbacks list` shows it.
fn outbox_status(dep: &Deployment, kid: &str) -> (Value, Value) {
    list(dep, false)
        .into_iter()
        .find(|r| r["kid"] == kid)
        .map(|r| (r["status"].clone(), r["attempts"].clone()))
        .unwrap_or_else(|| panic!("no event for {kid}"))
}

async fn operators_set_callbacks_and_see_the_outbox(backend: Backend) {
    let dep = Deployment::new(backend).await;
    let (id, auth, merchant) = dep.client_and_merchant();
    let receiver = Receiver::start().await;
    let url = receiver.url();

    let (ok, out, err) = dep.cli(&["client", "set-callback", &id, "--url", &url, "--json"]);
    assert!(ok, "{err}");
    let first: Value = serde_json::from_str(&out).unwrap();
    assert_keys_in_order(&out, &["clientId", "callbackUrl", "webhookSecret"]);
    assert_eq!(
        (first["clientId"].as_str(), first["callbackUrl"].as_str()),
        (Some(id.as_str()), Some(url.as_str()))
    );
    let secret = first["webhookSecret"].as_str().unwrap().to_owned();
    assert!(
        secret.starts_with("whsec_") && secret.len() == 50,
        "{secret}"
    );
    // Again: the secret is kept and not shown.
    let (ok, out, _) = dep.cli(&["client", "set-callback", &id, "--url", &url]);
    assert!(ok);
    assert_eq!(
        out,
        format!("callbackUrl:   {url}\nwebhookSecret: unchanged\n")
    );
    let (ok, _, err) = dep.cli(&["client", "set-callback", &id, "--url", "ftp://x.example/"]);
    assert!(!ok);
    assert_eq!(
        err,
        "paycc: The callback URL must be an absolute http or https URL of at most 2000 characters, without user name, password or fragment.\n"
    );
    let (ok, _, err) = dep.cli(&["client", "set-callback", "PCCNOPE", "--url", &url]);
    assert!(!ok);
    assert_eq!(err, "paycc: No such API client\n");

    let server = dep.start(&[("PAYCC_CALLBACK_ALLOW_PRIVATE", "true")]);
    let kid = approved_kyc(&server, &auth, &merchant, 1).await;
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["data"]["kid"], kid.as_str());
    standardwebhooks::Webhook::new(&secret)
        .unwrap()
        .verify(&got[0].body, &got[0].headers)
        .unwrap();

    let event = format!("evt_{kid}_approved");
    let deadline = tokio::time::Instant::now() + WAIT;
    let row = loop {
        let rows = list(&dep, false);
        if rows[0]["status"] == "delivered" || tokio::time::Instant::now() > deadline {
            break rows[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(row["eventId"], event.as_str());
    assert_eq!(row["event"], "paycc.kyc.success");
    assert_eq!(row["status"], "delivered");
    assert_eq!(row["attempts"], 1);
    assert_eq!(row["nextAttemptAt"], Value::Null);
    assert!(list(&dep, true).is_empty());
    let (ok, out, _) = dep.cli(&["callbacks", "list"]);
    assert!(ok);
    assert!(
        out.starts_with("EVENT ") && out.contains(&event) && out.contains("delivered"),
        "{out}"
    );

    // An operator sends it again; the running node picks it up.
    let (ok, out, _) = dep.cli(&["callbacks", "retry", &event]);
    assert!(ok);
    assert_eq!(out, format!("callback {event} queued again\n"));
    let got = receiver.wait_for(2, WAIT).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].header("webhook-id"), event);
    let (ok, _, err) = dep.cli(&["callbacks", "retry", "evt_nope"]);
    assert!(!ok);
    assert_eq!(err, "paycc: No such callback event\n");
    drop(server);
}

async fn a_kill_between_state_change_and_delivery_loses_no_event(backend: Backend) {
    let dep = Deployment::new(backend).await;
    let (id, auth, merchant) = dep.client_and_merchant();
    let receiver = Receiver::start().await;
    dep.set_callback(&id, &receiver.url());
    // One callback at a time, and the first one hangs: the second event waits in the outbox.
    receiver.answer(&[(200, Duration::from_secs(600))]);
    let node = dep.start(&[
        ("PAYCC_CALLBACK_ALLOW_PRIVATE", "true"),
        ("PAYCC_CALLBACK_CONCURRENCY", "1"),
        ("PAYCC_CALLBACK_TIMEOUT", "60s"),
    ]);
    let first = approved_kyc(&node, &auth, &merchant, 1).await;
    assert_eq!(receiver.wait_for(1, WAIT).await.len(), 1);
    let second = approved_kyc(&node, &auth, &merchant, 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "the second event has not been sent"
    );
    // SIGKILL: the committed state change is all that is left of the second event.
    drop(node);

    let node = dep.start(&[("PAYCC_CALLBACK_ALLOW_PRIVATE", "true")]);
    let got = receiver.wait_for(2, WAIT).await;
    assert_eq!(
        got.len(),
        2,
        "the event queued before the kill is delivered after the restart"
    );
    assert_eq!(got[1].json()["data"]["kid"], second.as_str());
    let deadline = tokio::time::Instant::now() + WAIT;
    while outbox_status(&dep, &second).0 != "delivered" && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(outbox_status(&dep, &second), (json!("delivered"), json!(1)));
    // The event cut off mid-send stays with its dead worker until the lease ends, then
    // goes again: held, not lost and not sent twice at once.
    assert_eq!(outbox_status(&dep, &first), (json!("pending"), json!(0)));
    drop(node);
}

on_both_backends!(
    operators_set_callbacks_and_see_the_outbox,
    a_kill_between_state_change_and_delivery_loses_no_event,
);

/// Two nodes on one PostgreSQL database share the outbox: every event arrives exactly
/// once (receivers answering at once), and each kid's events in order.
#[tokio::test]
async fn two_nodes_deliver_each_event_once_and_in_order() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let dep = Deployment::new(backend).await;
    let (id, auth, merchant) = dep.client_and_merchant();
    let receiver = Receiver::start().await;
    dep.set_callback(&id, &receiver.url());
    let env = [
        ("PAYCC_CALLBACK_ALLOW_PRIVATE", "true"),
        ("PAYCC_CALLBACK_POLL_INTERVAL", "20ms"),
    ];
    let nodes = [dep.start(&env), dep.start(&env)];
    let http = http_client();
    let mut kids = Vec::new();
    for n in 0..20u32 {
        let node = &nodes[n as usize % 2];
        let body = json!({"pan": format!("ABCPK{n:04}Q"), "name": "Asha Rao", "email": "a@example.in",
            "mobile": format!("8{n:09}"), "merchantCode": merchant});
        let url = format!("{}/v1/service/paycc/init/kyc", node.base);
        let r = send(
            &http,
            &url,
            reqwest::Method::POST,
            Some(body.to_string()),
            Some(&auth),
        )
        .await;
        let kid = r.json["data"]["kid"].as_str().unwrap().to_owned();
        // Pending on one node, the verdict on the other.
        for (node, outcome) in [(&nodes[0], "pending"), (&nodes[1], "approved")] {
            let url = format!("{}/v1/sandbox/kyc/{kid}/complete", node.base);
            let done = json!({"outcome": outcome, "faceMatch": 97}).to_string();
            let r = send(&http, &url, reqwest::Method::POST, Some(done), Some(&auth)).await;
            assert_eq!(r.status, 200, "{}", r.text);
        }
        kids.push(kid);
    }
    let got = receiver.wait_for(40, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got_all = receiver.received();
    let ids: Vec<String> = got_all
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    assert_eq!(
        got_all.len(),
        40,
        "no event twice, none missing ({} first): {ids:?}\n{}",
        got.len(),
        dep.cli(&["callbacks", "list", "--json", "--limit", "100"])
            .1
    );
    for kid in &kids {
        let events: Vec<String> = got_all
            .iter()
            .filter(|r| r.json()["data"]["kid"] == kid.as_str())
            .map(|r| r.json()["event"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(events, ["paycc.kyc.pending", "paycc.kyc.success"], "{kid}");
    }
    drop(nodes);
}
