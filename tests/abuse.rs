//! Holding up under abuse (issue 17): requests from web pages, and what is refused
//! before anything is read or looked up.

mod common;
use common::*;
use std::time::Duration;

const FROM_A_PAGE: &str = r#"{"code":"0x0202","status":"FAILURE","message":"Requests from web pages are refused: call this API from your server."}"#;

/// `headers` added to a request as a partner's backend makes it.
async fn with_headers(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    auth: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = app
        .http
        .request(method.clone(), format!("{}{path}", app.base))
        .header("Authorization", auth);
    if method == reqwest::Method::POST {
        req = req
            .header("Content-Type", "text/plain")
            .body(app.init_body().to_string());
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    Reply::from_response(req.send().await.expect("paycc answers")).await
}

async fn requests_from_web_pages_are_refused_before_credentials(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let kid = app.init_kid().await;
    let wrong = basic(&app.client_id, "pcsk_wrong");
    let init = "/v1/service/paycc/init/kyc";
    let status = format!("/v1/service/paycc/kyc/status/{kid}");
    for (path, method) in [
        (init, reqwest::Method::POST),
        (status.as_str(), reqwest::Method::GET),
        ("/v1/service/paycc/customer", reqwest::Method::GET),
    ] {
        for headers in [
            &[("Origin", "https://evil.example")][..],
            &[("Origin", "null")][..],
            &[("Sec-Fetch-Site", "cross-site")][..],
            &[("Sec-Fetch-Site", "same-site")][..],
        ] {
            for auth in [app.auth(), wrong.clone()] {
                with_headers(&app, method.clone(), path, &auth, headers)
                    .await
                    .assert_exact(403, FROM_A_PAGE);
            }
        }
    }
    // A browser's own navigation, or a same-origin fetch, is not a cross-site call; a
    // partner's backend sends neither header.
    for headers in [
        &[("Sec-Fetch-Site", "none")][..],
        &[("Sec-Fetch-Site", "same-origin")][..],
        &[][..],
    ] {
        let r = with_headers(&app, reqwest::Method::GET, &status, &app.auth(), headers).await;
        assert_eq!(
            (r.status, r.json["code"].as_str()),
            (200, Some("0x0206")),
            "{}",
            r.text
        );
    }
    // Nothing was opened by the refused inits: the one init above is the only request.
    let r = app.init(&app.init_body()).await;
    assert_eq!(r.json["data"]["kid"], kid.as_str(), "{}", r.text);
}

/// Connection limits are the listener's, whatever the database: these run on SQLite.
async fn app_with_connections(connections: paycc::config::ConnectionArgs) -> TestApp {
    TestApp::spawn_with(
        Backend::Sqlite,
        Options {
            connections,
            ..Options::default()
        },
    )
    .await
}

fn connections(header_ms: u64, idle_ms: u64, max: u32) -> paycc::config::ConnectionArgs {
    paycc::config::ConnectionArgs {
        header_timeout: Duration::from_millis(header_ms),
        idle_timeout: Duration::from_millis(idle_ms),
        max_connections: max,
        ..Default::default()
    }
}

#[tokio::test]
async fn half_sent_requests_are_dropped_at_the_header_timeout_while_the_api_answers() {
    let app = app_with_connections(connections(600, 30_000, 1_000)).await;
    let kid = app.init_kid().await;
    let mut stalled = Vec::new();
    for _ in 0..200 {
        stalled.push(raw::Stalled::send(&app.base, b"GET /v1/service/paycc/kyc/sta").await);
    }
    // Meanwhile every request of a well-behaved client is answered.
    for _ in 0..20 {
        assert_eq!(app.status(&kid).await.status, 200);
    }
    assert!(
        !stalled[0].closed(Duration::from_millis(100)).await,
        "not dropped before its time"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    for (i, conn) in stalled.iter_mut().enumerate() {
        assert!(
            conn.closed(Duration::from_secs(2)).await,
            "connection {i} still open"
        );
    }
    assert_eq!(app.status(&kid).await.status, 200);
}

#[tokio::test]
async fn idle_connections_are_closed_at_the_idle_timeout_not_the_header_one() {
    let app = app_with_connections(connections(300, 1_500, 1_000)).await;
    let kid = app.init_kid().await;
    let request = format!(
        "GET /v1/service/paycc/kyc/status/{kid} HTTP/1.1\r\nHost: paycc\r\nAuthorization: {}\r\n\r\n",
        app.auth()
    );
    let mut conn = raw::Stalled::send(&app.base, request.as_bytes()).await;
    let answer = conn
        .answer(Duration::from_secs(5))
        .await
        .expect("an answer");
    assert_eq!(raw::status_of(&answer), 200, "{answer}");
    // Kept alive past the header timeout…
    assert!(
        !conn.closed(Duration::from_millis(900)).await,
        "closed while idle for less than the idle timeout"
    );
    // …and closed once idle for the idle timeout.
    assert!(
        conn.closed(Duration::from_secs(3)).await,
        "still open after the idle timeout"
    );
}

#[tokio::test]
async fn connections_past_the_limit_wait_until_one_closes() {
    let app = app_with_connections(connections(10_000, 10_000, 2)).await;
    let kid = app.init_kid().await;
    // The test client's own pooled connection from the init is one of the two.
    let held = raw::Stalled::send(&app.base, b"").await;
    let waiting = {
        let url = format!("{}/v1/service/paycc/kyc/status/{kid}", app.base);
        let auth = app.auth();
        tokio::spawn(async move {
            let fresh = http_builder().pool_max_idle_per_host(0).build().unwrap();
            let res = fresh.get(url).header("Authorization", auth).send().await;
            res.expect("paycc answers").status().as_u16()
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "a third connection was served past the limit"
    );
    drop(held);
    let status = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("served once a connection closed")
        .unwrap();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn past_the_in_flight_limit_requests_are_refused_at_once() {
    let mut limits = connections(10_000, 30_000, 1_000);
    limits.max_in_flight = 2;
    let app = app_with_connections(limits).await;
    let kid = app.init_kid().await;
    // Two inits whose bodies never finish hold the two slots.
    let head = format!(
        "POST /v1/service/paycc/init/kyc HTTP/1.1\r\nHost: paycc\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{{\"pan\":",
        app.auth()
    );
    let mut holders = Vec::new();
    for _ in 0..2 {
        holders.push(raw::Stalled::send(&app.base, head.as_bytes()).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let refused = app.status(&kid).await;
    let took = started.elapsed();
    refused.assert_exact(
        503,
        r#"{"code":"0x0205","status":"SOMETHING_WENT_WRONG","message":"The service is busy. Please retry in a second."}"#,
    );
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert!(took < Duration::from_millis(500), "refused in {took:?}");
    drop(holders);
    // The slots come back once the held requests end.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = app.status(&kid).await;
        if r.status == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", r.text);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const TOO_MANY: &str = r#"{"code":"0x0202","status":"FAILURE","message":"Too many requests"}"#;

fn rates(
    client: &str,
    auth_failures: u32,
    journey: &str,
    trusted: &[&str],
) -> paycc::config::RateArgs {
    use paycc::domain::{cidr::Cidr, rate::RateLimit};
    paycc::config::RateArgs {
        client_rate: RateLimit::parse(client).unwrap(),
        auth_failures,
        journey_rate: RateLimit::parse(journey).unwrap(),
        trusted_proxies: trusted.iter().map(|c| Cidr::parse(c).unwrap()).collect(),
    }
}

async fn app_with_rates(backend: Backend, rates: paycc::config::RateArgs) -> TestApp {
    TestApp::spawn_with(
        backend,
        Options {
            rates,
            ..Options::default()
        },
    )
    .await
}

async fn a_flooding_client_is_limited_and_others_are_not(backend: Backend) {
    // Burst of 5, one more every 200 ms.
    let app = app_with_rates(backend, rates("5/s,burst=5", 20, "0", &[])).await;
    let (other_auth, other_merchant) = app.other_client().await;
    let mut mine = app.init_body();
    mine["pan"] = serde_json::json!("ABCPK1234Z");
    let kid = app.init(&mine).await.json["data"]["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut refused = Vec::new();
    for _ in 0..12 {
        let r = app.status(&kid).await;
        if r.status != 200 {
            refused.push(r);
        }
    }
    assert!(refused.len() >= 6, "only {} of 12 refused", refused.len());
    for r in &refused {
        r.assert_exact(429, TOO_MANY);
        assert_eq!(r.header("retry-after"), Some("1"));
    }
    // Another client's requests all go through meanwhile.
    for n in 0..5 {
        let mut body = init_body_for(&other_merchant);
        body["pan"] = serde_json::json!(format!("ABCPK{n:04}Z"));
        let r = send(
            &app.http,
            &format!("{}/v1/service/paycc/init/kyc", app.base),
            reqwest::Method::POST,
            Some(body.to_string()),
            Some(&other_auth),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    // An operator lifts the limit for the first client: from its next request on.
    app.service
        .admin
        .set_client_rate_limit(&app.client_id, Some(paycc::store::RateLimit::UNLIMITED))
        .await
        .unwrap();
    for _ in 0..20 {
        assert_eq!(app.status(&kid).await.status, 200);
    }
    let err = app
        .service
        .admin
        .set_client_rate_limit("PCCNOSUCHCLIENT", None)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "not found: No such API client");
}

async fn an_address_that_keeps_failing_to_authenticate_is_braked(backend: Backend) {
    let app = app_with_rates(backend, rates("0", 3, "0", &[])).await;
    let kid = app.init_kid().await;
    let wrong = basic(&app.client_id, "pcsk_wrong");
    let path = format!("/v1/service/paycc/kyc/status/{kid}");
    for _ in 0..3 {
        let r = app
            .send(reqwest::Method::GET, &path, None, Some(&wrong))
            .await;
        assert_eq!(r.status, 401, "{}", r.text);
    }
    // Now even the right credentials are refused from this address, for a minute.
    let r = app.status(&kid).await;
    r.assert_exact(429, TOO_MANY);
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((55..=60).contains(&wait), "Retry-After: {wait}");
}

async fn behind_a_trusted_proxy_the_forwarded_address_counts(backend: Backend) {
    let app = app_with_rates(backend, rates("0", 2, "0", &["127.0.0.1/32"])).await;
    let kid = app.init_kid().await;
    let path = format!("{}/v1/service/paycc/kyc/status/{kid}", app.base);
    let ask = |auth: String, forwarded: &'static str| {
        let req = app
            .http
            .get(&path)
            .header("Authorization", auth)
            .header("X-Forwarded-For", forwarded);
        async move { Reply::from_response(req.send().await.unwrap()).await }
    };
    let wrong = basic(&app.client_id, "pcsk_wrong");
    // The address before the proxy's own is the client's; a forged first hop is not.
    for _ in 0..2 {
        assert_eq!(
            ask(wrong.clone(), "198.51.100.1, 203.0.113.7").await.status,
            401
        );
    }
    ask(app.auth(), "203.0.113.7")
        .await
        .assert_exact(429, TOO_MANY);
    ask(app.auth(), "198.51.100.1, 203.0.113.7, 127.0.0.1")
        .await
        .assert_exact(429, TOO_MANY);
    assert_eq!(ask(app.auth(), "203.0.113.8").await.status, 200);
    assert_eq!(
        ask(app.auth(), "203.0.113.7, 203.0.113.8").await.status,
        200
    );
}

async fn journey_pages_are_limited_per_address(backend: Backend) {
    let app = app_with_rates(backend, rates("0", 20, "1/s,burst=3", &[])).await;
    let (_, link) = app.open_link(&app.init_body()).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let res = app.http.get(&link).send().await.unwrap();
        let retry = res
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        statuses.push((res.status().as_u16(), retry));
    }
    assert_eq!(
        statuses,
        [
            (200, None),
            (200, None),
            (200, None),
            (429, Some("1".into())),
            (429, Some("1".into()))
        ]
    );
    let res = app.http.get(&link).send().await.unwrap();
    assert!(res.text().await.unwrap().contains("Too many requests"));
}

on_both_backends!(
    requests_from_web_pages_are_refused_before_credentials,
    an_operator_sets_one_clients_limit,
    a_flooding_client_is_limited_and_others_are_not,
    an_address_that_keeps_failing_to_authenticate_is_braked,
    behind_a_trusted_proxy_the_forwarded_address_counts,
    journey_pages_are_limited_per_address,
);

/// An operator gives one client its own limit with the CLI; running nodes apply it
/// within a second, and `--default` gives the node's default back.
async fn an_operator_sets_one_clients_limit(backend: Backend) {
    let dep = common::deploy::Deployment::new(backend).await;
    let (id, auth, merchant) = dep.client_and_merchant();
    let node = dep.start(&[("PAYCC_CLIENT_RATE", "0")]);
    let kid = node.init_kid(&auth, init_body_for(&merchant)).await;

    let (ok, out, err) = dep.cli(&[
        "client",
        "set-limit",
        &id,
        "--per-second",
        "1",
        "--burst",
        "2",
        "--json",
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        format!(r#"{{"clientId":"{id}","perSecond":1,"burst":2}}"#)
    );
    within_a_second("a client's new limit", || async {
        node.status(&auth, &kid).await.status == 429
    })
    .await;
    node.status(&auth, &kid).await.assert_exact(429, TOO_MANY);
    // A full bucket again (1 a second, 2 at most): two go through, then refusals.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let codes: Vec<u16> = {
        let mut codes = Vec::new();
        for _ in 0..4 {
            codes.push(node.status(&auth, &kid).await.status);
        }
        codes
    };
    assert_eq!(codes, [200, 200, 429, 429]);

    let (ok, out, _) = dep.cli(&["client", "set-limit", &id, "--default"]);
    assert!(ok);
    assert_eq!(
        out.trim(),
        format!("client {id} back to the default rate limit")
    );
    within_a_second("the default limit", || async {
        node.status(&auth, &kid).await.status == 200
    })
    .await;
    for _ in 0..10 {
        assert_eq!(node.status(&auth, &kid).await.status, 200);
    }
    let (ok, _, err) = dep.cli(&[
        "client",
        "set-limit",
        "PCCNOSUCHCLIENT00",
        "--per-second",
        "0",
    ]);
    assert!(!ok);
    assert_eq!(err.trim(), "paycc: No such API client");
}

/// A stop (SIGTERM) is not held up by a connection that never finishes its request head.
#[tokio::test]
async fn a_half_sent_request_does_not_hold_up_a_stop() {
    let dep = common::deploy::Deployment::new(Backend::Sqlite).await;
    let _ = dep.client_and_merchant();
    let mut node = dep.start(&[
        ("PAYCC_HEADER_TIMEOUT", "2s"),
        ("PAYCC_SHUTDOWN_DELAY", "0s"),
    ]);
    let _stalled = raw::Stalled::send(&node.base, b"GET /v1/service/paycc/kyc/sta").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    node.terminate();
    let exited = node
        .exit_by(std::time::Instant::now() + Duration::from_secs(5))
        .await;
    assert!(exited.success(), "{exited:?}");
}
