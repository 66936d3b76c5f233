//! `/metrics` on the ops listener, scraped after real traffic and read with a Prometheus
//! text parser, on both databases: the series an operator graphs are there with the
//! values the traffic implies, and no label value is a kid, custId, client id or
//! identity datum.

mod common;
use common::deploy::Deployment;
use common::receiver::Receiver;
use common::*;
use prometheus_parse::{Sample, Scrape, Value};
use serde_json::json;
use std::time::Duration;

async fn scrape(ops: &str) -> (String, Scrape) {
    let res = get(format!("{ops}/metrics")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = res.text().await.unwrap();
    let parsed = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    (text, parsed)
}

/// The value of the sample named `metric` whose labels include `labels`.
fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s: &Sample| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            Value::Summary(_) => f64::NAN,
        })
}

async fn traffic_shows_in_the_scrape_without_identities(backend: Backend) {
    let receiver = Receiver::start().await;
    let dep = Deployment::new(backend).await;
    let (client_id, auth, merchant) = dep.client_and_merchant();
    dep.set_callback(&client_id, &receiver.url());
    let node = dep.start(&[("PAYCC_CALLBACK_ALLOW_PRIVATE", "true")]);

    let mut kids = Vec::new();
    for n in 0..3 {
        kids.push(
            node.init_kid(
                &auth,
                json!({"pan": format!("ABCPR{n:04}Q"), "name": "Asha Rao", "email": "asha@example.in",
                    "mobile": format!("81234{n:05}"), "merchantCode": merchant}),
            )
            .await,
        );
    }
    node.approve(&auth, &kids[0]).await;
    for kid in &kids {
        assert_eq!(node.status(&auth, kid).await.status, 200);
    }
    assert_eq!(
        get(format!("{}/nowhere", node.base))
            .await
            .unwrap()
            .status(),
        404
    );
    // The approval's callback arrives.
    assert_eq!(receiver.wait_for(1, Duration::from_secs(10)).await.len(), 1);
    // One client held to one request a second: the second at once is refused.
    let (ok, _, err) = dep.cli(&[
        "client",
        "set-limit",
        &client_id,
        "--per-second",
        "1",
        "--burst",
        "1",
    ]);
    assert!(ok, "{err}");
    // In force within a second; every answer is counted, whichever it was.
    let (refused, read) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    within_a_second("a client's new limit", || async {
        let limited = node.status(&auth, &kids[1]).await.status == 429;
        read.set(read.get() + 1);
        refused.set(refused.get() + usize::from(limited));
        limited
    })
    .await;
    let (refused, read) = (refused.get(), read.get());

    let (text, s) = scrape(&node.ops).await;
    let init = [
        ("route", "/v1/service/paycc/init/kyc"),
        ("method", "POST"),
        ("status", "200"),
    ];
    assert_eq!(
        value(&s, "paycc_http_requests_total", &init),
        Some(3.0),
        "{text}"
    );
    let status_route = "/v1/service/paycc/kyc/status/:kid";
    assert_eq!(
        value(
            &s,
            "paycc_http_requests_total",
            &[("route", status_route), ("status", "200")]
        ),
        Some((3 + read - refused) as f64),
        "{text}"
    );
    assert_eq!(
        value(
            &s,
            "paycc_http_requests_total",
            &[("route", status_route), ("status", "429")]
        ),
        Some(refused as f64)
    );
    assert_eq!(
        value(
            &s,
            "paycc_http_requests_total",
            &[("route", "-"), ("status", "404")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "paycc_http_request_duration_seconds",
            &[("route", "/v1/service/paycc/init/kyc")]
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(&s, "paycc_kyc_transitions_total", &[("state", "pending")]),
        Some(3.0)
    );
    assert_eq!(
        value(&s, "paycc_kyc_transitions_total", &[("state", "approved")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "paycc_provider_calls_total",
            &[
                ("provider", "sandbox"),
                ("call", "create"),
                ("outcome", "ok")
            ]
        ),
        Some(3.0)
    );
    assert_eq!(
        value(
            &s,
            "paycc_callback_attempts_total",
            &[("outcome", "delivered")]
        ),
        Some(1.0)
    );
    assert_eq!(value(&s, "paycc_callbacks_due", &[]), Some(0.0));
    assert_eq!(
        value(&s, "paycc_refusals_total", &[("reason", "client_rate")]),
        Some(refused as f64)
    );
    assert_eq!(value(&s, "paycc_provider_paused", &[]), Some(0.0));
    match backend {
        Backend::Sqlite => {
            let batches = value(&s, "paycc_sqlite_batch_writes", &[]).unwrap();
            assert!(batches >= 1.0, "{text}");
            assert!(value(&s, "paycc_sqlite_commit_duration_seconds", &[]).unwrap() >= 1.0);
        }
        Backend::Postgres => {
            assert!(
                value(&s, "paycc_postgres_connections", &[]).unwrap() >= 1.0,
                "{text}"
            );
            // The inits came one after another, each a group of its own; the approval
            // was the one move.
            assert_eq!(value(&s, "paycc_postgres_group_inits", &[]), Some(3.0));
            assert_eq!(value(&s, "paycc_postgres_group_moves", &[]), Some(1.0));
        }
    }

    // Every series the dashboard in the repository queries is one the node exports.
    // Sample names, and the families declared even before their first sample.
    let exported: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|l| match l.strip_prefix("# TYPE ") {
            Some(declared) => declared.split(' ').next(),
            None if l.starts_with('#') => None,
            None => l.split(['{', ' ']).next(),
        })
        .collect();
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/ops/grafana/paycc.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            for (at, _) in expr.match_indices("paycc_") {
                let name: String = expr[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    exported.contains(name.as_str()),
                    "the dashboard queries {name}, which is not exported:\n{text}"
                );
                queried += 1;
            }
        }
    }
    assert!(queried >= 15, "{queried}");

    // Labels name routes, states and outcomes, never a person, a request or a client.
    let forbidden: Vec<&str> = kids
        .iter()
        .map(String::as_str)
        .chain([client_id.as_str(), "ABCPR", "Asha", "8123", &merchant])
        .collect();
    for sample in &s.samples {
        for (name, value) in sample.labels.iter() {
            for f in &forbidden {
                assert!(
                    !value.contains(f),
                    "label {name}={value} of {}",
                    sample.metric
                );
            }
        }
    }
}

/// Credentials come from memory between changes: after the first poll vouched for them,
/// status reads look neither the client nor, for a customer check, the merchant up again.
async fn credentials_are_kept_between_changes(backend: Backend) {
    let dep = Deployment::new(backend).await;
    let (_, auth, merchant) = dep.client_and_merchant();
    let node = dep.start(&[]);
    let kid = node.init_kid(&auth, init_body_for(&merchant)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let read_before = {
        let (_, s) = scrape(&node.ops).await;
        value(&s, "paycc_credentials_lookups_total", &[("source", "read")]).unwrap_or(0.0)
    };
    for _ in 0..10 {
        assert_eq!(node.status(&auth, &kid).await.json["code"], "0x0206");
    }
    let check = json!({"merchantCode": merchant, "pan": PAN});
    for _ in 0..3 {
        let r = node
            .post(&auth, "/v1/service/paycc/customer", check.clone())
            .await;
        assert_eq!(r.json["code"], "0x0200", "{}", r.text);
    }
    let (text, s) = scrape(&node.ops).await;
    let kept = value(&s, "paycc_credentials_lookups_total", &[("source", "kept")]);
    let read = value(&s, "paycc_credentials_lookups_total", &[("source", "read")]);
    // 13 client lookups and 3 merchant lookups; the first of each kind may have missed.
    assert!(kept.is_some_and(|k| k >= 14.0), "{text}");
    assert!(read.is_some_and(|r| r - read_before <= 2.0), "{text}");
}

on_both_backends!(
    traffic_shows_in_the_scrape_without_identities,
    credentials_are_kept_between_changes
);
