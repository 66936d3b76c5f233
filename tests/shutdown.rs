//! A stop (SIGTERM) while requests are in flight, on both databases: `/readyz` turns 503
//! at once, connections are still taken during PAYCC_SHUTDOWN_DELAY, every request taken
//! is answered, whatever it stored is there afterwards, a callback attempt under way is
//! finished, and the process exits 0.

mod common;
use common::deploy::Deployment;
use common::fake_digio::{FakeDigio, Mode};
use common::receiver::Receiver;
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

/// An init of a person of its own, on a connection of its own.
async fn init(base: &str, auth: &str, merchant: &str, n: usize) -> reqwest::Result<Reply> {
    let http = http_builder().pool_max_idle_per_host(0).build().unwrap();
    let body = json!({"pan": format!("ABCPR{n:04}Q"), "name": "Asha Rao",
        "email": "asha@example.in", "mobile": format!("81234{n:05}"), "merchantCode": merchant});
    let res = http
        .post(format!("{base}/v1/service/paycc/init/kyc"))
        .header("Authorization", auth)
        .body(body.to_string())
        .send()
        .await?;
    Ok(Reply::from_response(res).await)
}

async fn every_request_taken_is_answered_and_kept(backend: Backend) {
    let fake = FakeDigio::start().await;
    // Each init waits 2 s on the provider: in flight across the signal.
    fake.create_mode(Mode::Slow(Duration::from_secs(2)));
    let dep = Deployment::new(backend).await;
    let (_, auth, merchant) = dep.client_and_merchant();
    let mut node = dep.start(&fake.node_env(&[
        ("PAYCC_DIGIO_TIMEOUT", "10s"),
        ("PAYCC_SHUTDOWN_DELAY", "1s"),
        ("PAYCC_SHUTDOWN_GRACE", "10s"),
    ]));
    let ready = format!("{}/readyz", node.ops);
    assert_eq!(get(ready.clone()).await.unwrap().status(), 200);

    let in_flight: Vec<_> = (0..6)
        .map(|n| {
            let (base, auth, merchant) = (node.base.clone(), auth.clone(), merchant.clone());
            tokio::spawn(async move { init(&base, &auth, &merchant, n).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = Instant::now();
    node.terminate();

    // Out of the load balancer at once.
    let answer = loop {
        let res = get(ready.clone()).await.unwrap();
        if res.status() == 503 {
            break res.text().await.unwrap();
        }
        assert!(
            signalled.elapsed() < Duration::from_millis(500),
            "/readyz still ready after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(answer, r#"{"reason":"shutting down","status":"not ready"}"#);
    // Still taking connections during the delay.
    let late = {
        let (base, auth, merchant) = (node.base.clone(), auth.clone(), merchant.clone());
        tokio::spawn(async move { init(&base, &auth, &merchant, 6).await })
    };
    // Past the delay, no new connection is taken.
    tokio::time::sleep(Duration::from_millis(1500).saturating_sub(signalled.elapsed())).await;
    let refused = init(&node.base, &auth, &merchant, 7).await;
    assert!(
        refused.as_ref().is_err_and(|e| e.is_connect()),
        "a connection was taken after the delay: {:?}",
        refused.map(|r| r.text)
    );

    let mut kids = Vec::new();
    for task in in_flight.into_iter().chain([late]) {
        let reply = task
            .await
            .unwrap()
            .expect("every request taken is answered");
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json["code"], "0x0200", "{}", reply.text);
        kids.push(reply.json["data"]["kid"].as_str().unwrap().to_owned());
    }
    let exited = node.exit_by(signalled + Duration::from_secs(15)).await;
    assert!(exited.success(), "{exited:?}");
    let log = node.stderr.lock().unwrap().clone();
    assert!(log.contains("stopped"), "{log}");

    // What each answer promised is stored: the request, opened with the provider.
    for kid in &kids {
        let (ok, out, err) = dep.cli(&["kyc", "show", kid, "--json"]);
        assert!(ok, "{kid}: {err}");
        let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(shown["state"], "pending", "{shown}");
    }
    assert_eq!(fake.creates().len(), 7);
}

/// A callback attempt under way when the stop comes is finished, not cut off: the
/// receiver's answer is recorded before the process exits.
async fn a_callback_under_way_is_finished(backend: Backend) {
    let receiver = Receiver::start().await;
    receiver.answer(&[(200, Duration::from_secs(2))]);
    let dep = Deployment::new(backend).await;
    let (client_id, auth, merchant) = dep.client_and_merchant();
    dep.set_callback(&client_id, &receiver.url());
    let mut node = dep.start(&[
        ("PAYCC_CALLBACK_ALLOW_PRIVATE", "true"),
        ("PAYCC_SHUTDOWN_DELAY", "0s"),
        ("PAYCC_SHUTDOWN_GRACE", "10s"),
    ]);
    let kid = init(&node.base, &auth, &merchant, 0).await.unwrap().json["data"]["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    node.approve(&auth, &kid).await;
    // The receiver holds the attempt for 2 s.
    assert_eq!(receiver.wait_for(1, Duration::from_secs(10)).await.len(), 1);
    let signalled = Instant::now();
    node.terminate();
    let exited = node.exit_by(signalled + Duration::from_secs(10)).await;
    assert!(exited.success(), "{exited:?}");
    assert!(
        signalled.elapsed() >= Duration::from_secs(1),
        "it did not wait for the attempt"
    );

    let (ok, out, err) = dep.cli(&["callbacks", "list", "--json"]);
    assert!(ok, "{err}");
    let events: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let event = events.iter().find(|e| e["kid"] == kid.as_str()).unwrap();
    assert_eq!(
        (&event["status"], &event["attempts"]),
        (&json!("delivered"), &json!(1)),
        "{out}"
    );
}

on_both_backends!(
    every_request_taken_is_answered_and_kept,
    a_callback_under_way_is_finished
);
