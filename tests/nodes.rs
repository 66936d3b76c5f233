//! Several `paycc serve` nodes on one PostgreSQL database: no duplicates under racing
//! inits, background work split without overlap, and surviving a database outage.
//! PostgreSQL only; without it these fail, unless `PAYCC_TEST_SKIP=postgres`.

mod common;
use common::deploy::{Deployment, Running};
use common::proxy::Proxy;
use common::*;
use serde_json::{Value, json};
use std::time::Duration;

/// A PostgreSQL deployment with one API client and merchant, made by the CLI.
async fn deployment() -> Option<(Deployment, String, String)> {
    let backend = Backend::postgres()?;
    let dep = Deployment::new(backend).await;
    let (ok, out, err) = dep.cli(&["client", "create", "--name", "Racer", "--json"]);
    assert!(ok, "{err}");
    let creds: Value = serde_json::from_str(&out).unwrap();
    let client_id = creds["clientId"].as_str().unwrap();
    let (ok, _, err) = dep.cli(&[
        "merchant",
        "create",
        "--client",
        client_id,
        "--name",
        "Race shop",
        "--code",
        "MID693000001",
    ]);
    assert!(ok, "{err}");
    let auth = basic(client_id, creds["clientSecret"].as_str().unwrap());
    Some((dep, auth, "MID693000001".into()))
}

async fn post(base: &str, path: &str, auth: &str, body: &Value) -> Value {
    let http = common::http_client();
    http.post(format!("{base}{path}"))
        .header("Authorization", auth)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn person(pan: &str, email: &str, merchant: &str) -> Value {
    json!({"pan": pan, "name": "Asha Rao", "email": email, "mobile": "9876543210", "merchantCode": merchant})
}

#[tokio::test]
async fn racing_inits_on_two_nodes_make_no_duplicates() {
    let Some((dep, auth, merchant)) = deployment().await else {
        return;
    };
    let nodes = [dep.start(&[]), dep.start(&[])];
    let db = dep.db.as_ref().unwrap();
    let mut tasks = Vec::new();
    for i in 0..60usize {
        let base = nodes[i % 2].base.clone();
        let auth = auth.clone();
        // Three groups: the same init 20 times; one person (PAN) with 20 different emails;
        // 20 different people.
        let body = match i % 3 {
            0 => person("ABCPA1111A", "same@example.in", &merchant),
            1 => person("ABCPB2222B", &format!("mail{i}@example.in"), &merchant),
            _ => person(&format!("ABCPC{:04}C", i), "other@example.in", &merchant),
        };
        tasks.push(tokio::spawn(async move {
            (
                i % 3,
                post(&base, "/v1/service/paycc/init/kyc", &auth, &body).await,
            )
        }));
    }
    let mut same = std::collections::HashSet::new();
    let mut all = Vec::new();
    for t in tasks {
        let (group, reply) = t.await.unwrap();
        assert_eq!(reply["code"], "0x0200", "{reply}");
        let kid = reply["data"]["kid"].as_str().unwrap().to_owned();
        if group == 0 {
            same.insert(kid.clone());
        }
        all.push(kid);
    }
    assert_eq!(
        same.len(),
        1,
        "an identical init raced on two nodes opened one request: {same:?}"
    );
    let distinct: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), 1 + 20 + 20);
    // One customer per PAN: 1 + 1 + 20.
    assert_eq!(db.scalar("SELECT COUNT(*) FROM customers").await, 22);
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM (SELECT fingerprint FROM kyc_requests WHERE state IN ('created','pending','in_progress','awaiting_approval') GROUP BY fingerprint HAVING COUNT(*) > 1) d").await,
        0
    );
    // Every kid reads the same from either node.
    for kid in &distinct {
        for node in &nodes {
            let r = status_at(&node.base, &auth, kid).await;
            assert_eq!(r["code"], "0x0206", "{kid} on {}: {r}", node.base);
        }
    }
    // The same person's custId is one, whichever node answers.
    let mut cust_ids = std::collections::HashSet::new();
    for node in &nodes {
        let r = post(
            &node.base,
            "/v1/service/paycc/customer",
            &auth,
            &json!({"merchantCode": merchant, "pan": "ABCPB2222B"}),
        )
        .await;
        cust_ids.insert(r["data"]["custId"].as_str().unwrap().to_owned());
    }
    assert_eq!(cust_ids.len(), 1);
}

fn expired_counted(node: &Running) -> u64 {
    node.stderr
        .lock()
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == "expired KYC requests whose link ran out")
        .map(|v| v["count"].as_u64().unwrap())
        .sum()
}

#[tokio::test]
async fn two_nodes_share_the_expiry_work_without_overlap() {
    let Some((dep, auth, merchant)) = deployment().await else {
        return;
    };
    let settings = [
        ("PAYCC_KYC_TTL", "1s"),
        ("PAYCC_EXPIRY_INTERVAL", "1s"),
        ("PAYCC_LOG_JSON", "true"),
    ];
    let nodes = [dep.start(&settings), dep.start(&settings)];
    for i in 0..120usize {
        let body = person(&format!("ABCPE{i:04}E"), "e@example.in", &merchant);
        let r = post(
            &nodes[i % 2].base,
            "/v1/service/paycc/init/kyc",
            &auth,
            &body,
        )
        .await;
        assert_eq!(r["code"], "0x0200");
    }
    let db = dep.db.as_ref().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while db
        .scalar("SELECT COUNT(*) FROM kyc_requests WHERE state = 'expired'")
        .await
        < 120
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the sweepers did not expire every request"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let counted = expired_counted(&nodes[0]) + expired_counted(&nodes[1]);
    assert_eq!(counted, 120, "each request was expired by exactly one node");
}

/// A paycc whose PostgreSQL is reached through a proxy the test can cut.
async fn app_behind_proxy() -> (TestApp, Proxy) {
    let db = TestDb::create().await;
    let upstream = postgres_server().unwrap();
    let host_port = upstream
        .split('@')
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let upstream_addr = tokio::net::lookup_host(&host_port)
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = Proxy::start(upstream_addr).await;
    let via_proxy = db.url.replace(&host_port, &proxy.addr.to_string());
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_settings(&dir, Some(&via_proxy));
    store.db_acquire_timeout = Duration::from_secs(1);
    store.db_call_timeout = Duration::from_secs(2);
    let app = TestApp::spawn_on(Backend::Postgres, Some(db), dir, store, Options::default()).await;
    (app, proxy)
}

/// Connections the database dropped while paycc was idle (a restart, a failover) are
/// replaced as they are next used: no request fails for them.
#[tokio::test]
async fn connections_dropped_while_idle_cost_no_request() {
    let Some(_) = Backend::postgres() else { return };
    let (app, proxy) = app_behind_proxy().await;
    let kid = app.init_kid().await;
    let pending = format!(
        r#"{{"code":"0x0206","status":"PENDING","message":"Kyc is pending","data":{{"kid":"{kid}","state":"pending"}}}}"#
    );
    app.status(&kid).await.assert_exact(200, &pending);
    proxy.cut();
    proxy.restore();
    app.status(&kid).await.assert_exact(200, &pending);
    let mut body = app.init_body();
    body["email"] = json!("after@example.in");
    assert_eq!(app.init(&body).await.status, 200);
}

#[tokio::test]
async fn a_database_outage_fails_fast_and_heals_by_itself() {
    let Some(_) = Backend::postgres() else { return };
    let (app, proxy) = app_behind_proxy().await;
    let ready = |app: &TestApp| {
        let url = format!("{}/readyz", app.ops);
        async move { common::get(url).await.unwrap().status().as_u16() }
    };
    assert_eq!(ready(&app).await, 200);
    assert_eq!(
        common::get(format!("{}/healthz", app.ops))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        r#"{"status":"ok"}"#
    );
    let kid = app.init_kid().await;

    proxy.cut();
    // Requests fail with an envelope instead of hanging (the client gives up at 15 s).
    let http = common::http_builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    for _ in 0..3 {
        let r = http
            .post(format!("{}/v1/service/paycc/init/kyc", app.base))
            .header("Authorization", app.auth())
            .body(app.init_body().to_string())
            .send()
            .await
            .expect("an answer, not a hang");
        assert_eq!(r.status(), 503);
        assert_eq!(
            r.text().await.unwrap(),
            r#"{"code":"0x0205","status":"SOMETHING_WENT_WRONG","message":"The service is temporarily unavailable. Please try again."}"#
        );
    }
    assert_eq!(ready(&app).await, 503);
    let why = get(format!("{}/readyz", app.ops))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        why,
        r#"{"reason":"database unavailable","status":"not ready"}"#
    );
    assert_eq!(
        common::get(format!("{}/healthz", app.ops))
            .await
            .unwrap()
            .status(),
        200,
        "alive while not ready"
    );

    proxy.restore();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while ready(&app).await != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "paycc did not recover after the database returned"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        app.status(&kid).await.json["code"],
        "0x0206",
        "data from before the outage"
    );
    let mut body = app.init_body();
    body["email"] = json!("after@example.in");
    let after = app.init(&body).await;
    assert_eq!(after.status, 200, "{}", after.text);
}

/// A database that goes away and comes back between two inits: the next init succeeds,
/// although the connections the init groups kept from before are dead (each is checked
/// before use once it has sat idle).
#[tokio::test]
async fn an_init_after_a_database_restart_is_not_failed_by_an_old_connection() {
    let Some(_) = Backend::postgres() else { return };
    let (app, proxy) = app_behind_proxy().await;
    // Both group turns keep a connection.
    for _ in 0..4 {
        app.init_kid_for_new_customer().await;
    }
    proxy.cut();
    proxy.restore();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..4 {
        app.init_kid_for_new_customer().await;
    }
}

#[tokio::test]
async fn migrations_run_once_when_nodes_start_together() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let dep = Deployment::new(backend).await;
    let runs: Vec<_> = (0..4)
        .map(|_| dep.command().arg("migrate").spawn().expect("paycc starts"))
        .collect();
    for mut run in runs {
        assert!(run.wait().unwrap().success(), "a concurrent migrate failed");
    }
    let db = dep.db.as_ref().unwrap();
    let all = paycc::store::schema::MIGRATIONS.len() as i64;
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM paycc_migrations").await,
        all
    );
    assert_eq!(
        db.scalar("SELECT COUNT(DISTINCT version) FROM paycc_migrations")
            .await,
        all
    );
}
