//! The `paycc` binary as an operator runs it: first start, the printed curl, the admin
//! CLI, durability across kill -9, settings errors, and what the logs may contain.

mod common;
use common::deploy::{Deployment, banner_value};
use common::*;
use serde_json::{Value, json};
use std::process::Command;

async fn first_start_prints_a_curl_that_works_as_is(backend: Backend) {
    let dep = Deployment::new(backend).await;
    let server = dep.start(&[]);
    let curl: String = server
        .banner
        .lines()
        .skip_while(|l| !l.starts_with("curl "))
        .take_while(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(curl.contains(&server.base), "{curl}");
    let out = Command::new("sh")
        .arg("-c")
        .arg(&curl)
        .output()
        .expect("curl runs");
    let reply: Value = serde_json::from_slice(&out.stdout).expect("curl printed JSON");
    assert_eq!(reply["code"], "0x0200", "{reply}");
    assert!(is_kid(reply["data"]["kid"].as_str().unwrap()));
    // The key file beside the database is private.
    #[cfg(unix)]
    if backend == Backend::Sqlite {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dep.path().join("paycc.dev.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    drop(server);
    // A second start prints no credentials again.
    let again = dep.start(&[]);
    assert!(!again.banner.contains("clientSecret"), "{}", again.banner);
    drop(again);
}

async fn acknowledged_kids_survive_kill_9(backend: Backend) {
    let dep = Deployment::new(backend).await;
    let server = dep.start(&[]);
    let auth = basic(
        &banner_value(&server.banner, "clientId:"),
        &banner_value(&server.banner, "clientSecret:"),
    );
    let merchant = banner_value(&server.banner, "merchantCode:");
    let http = common::http_client();
    // Clients that keep opening KYCs until the server is gone; each answer they get is
    // an acknowledgement.
    let (acked, mut answers) = tokio::sync::mpsc::unbounded_channel::<String>();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let mut clients = Vec::new();
    for _ in 0..16 {
        let (http, base, auth, merchant) = (
            http.clone(),
            server.base.clone(),
            auth.clone(),
            merchant.clone(),
        );
        let (acked, next) = (acked.clone(), next.clone());
        clients.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let body = json!({"pan": format!("ABCPK{:04}Q", i % 10_000), "name": "Asha Rao", "email": "a@example.in",
                    "mobile": format!("8{i:09}"), "merchantCode": merchant});
                let sent = http.post(format!("{base}/v1/service/paycc/init/kyc")).header("Authorization", &auth)
                    .body(body.to_string()).send().await;
                // After the kill: a request cut off half-way, or one refused at connect.
                let answer: Value = match sent {
                    Ok(res) => match res.json().await {
                        Ok(answer) => answer,
                        Err(_) => return true,
                    },
                    Err(e) => return !e.is_connect(),
                };
                let kid = answer["data"]["kid"].as_str().expect("every init is answered with a kid");
                let _ = acked.send(kid.to_owned());
            }
        }));
    }
    drop(acked);
    let mut kids = Vec::new();
    while kids.len() < 200 {
        kids.push(
            answers
                .recv()
                .await
                .expect("the clients run until the kill"),
        );
    }
    // SIGKILL with requests in flight: no shutdown, no flush; only what was committed
    // before each answer remains.
    drop(server);
    let mut cut_off = 0;
    for c in clients {
        cut_off += usize::from(c.await.unwrap());
    }
    assert!(cut_off > 0, "no request was in flight at the kill");
    while let Some(kid) = answers.recv().await {
        kids.push(kid);
    }
    let restarted = dep.start(&[]);
    for kid in &kids {
        let r = status_at(&restarted.base, &auth, kid).await;
        assert_eq!(r["code"], "0x0206", "{kid} lost after kill -9: {r}");
    }
    drop(restarted);
}

async fn admin_cli_manages_clients_merchants_and_shows_kycs_masked(backend: Backend) {
    let dep = Deployment::new(backend).await;
    let (ok, out, err) = dep.cli(&["migrate"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "migrations applied");

    let (ok, out, _) = dep.cli(&["client", "create", "--name", "Acme Payments", "--json"]);
    assert!(ok);
    let creds: Value = serde_json::from_str(&out).unwrap();
    let (id, secret) = (
        creds["clientId"].as_str().unwrap().to_owned(),
        creds["clientSecret"].as_str().unwrap().to_owned(),
    );
    assert!(secret.len() >= 48, "≥ 192 bits of randomness: {secret}");

    let (ok, out, _) = dep.cli(&[
        "merchant",
        "create",
        "--client",
        &id,
        "--name",
        "Acme Store",
        "--code",
        "MID693000001",
        "--json",
    ]);
    assert!(ok);
    assert_eq!(out.trim(), r#"{"merchantCode":"MID693000001"}"#);
    let (ok, _, err) = dep.cli(&[
        "merchant",
        "create",
        "--client",
        &id,
        "--name",
        "Dup",
        "--code",
        "MID693000001",
    ]);
    assert!(!ok);
    assert_eq!(err.trim(), "paycc: Merchant code MID693000001 is taken.");
    let (ok, _, err) = dep.cli(&["merchant", "create", "--client", "PCCNOPE", "--name", "X"]);
    assert!(!ok && err.contains("No such API client"), "{err}");

    let server = dep.start(&[]);
    assert!(
        !server.banner.contains("clientSecret"),
        "no demo on a database that has clients"
    );
    let http = common::http_client();
    let init = |auth: String| {
        let (http, base) = (http.clone(), server.base.clone());
        async move {
            let body = json!({"pan": PAN, "name": NAME, "email": EMAIL, "mobile": MOBILE, "merchantCode": "MID693000001"});
            let r = http
                .post(format!("{base}/v1/service/paycc/init/kyc"))
                .header("Authorization", auth)
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, reply) = init(basic(&id, &secret)).await;
    assert_eq!(status, 200, "{reply}");
    let kid = reply["data"]["kid"].as_str().unwrap().to_owned();

    let (ok, out, _) = dep.cli(&["merchant", "list"]);
    assert!(
        ok && out.contains("MID693000001") && out.contains("yes") && out.contains(&id),
        "{out}"
    );
    let (ok, out, _) = dep.cli(&["kyc", "show", &kid, "--json"]);
    assert!(ok);
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["kid"], kid.as_str());
    assert_eq!(shown["state"], "pending");
    assert_eq!(shown["pan"], "XXXXXX234L");
    assert_eq!(shown["mobile"], "XXXXXX2345");
    assert_eq!(shown["name"], "S. K.");
    assert_eq!(shown["email"], "s***@example.com");
    for pii in [PAN, MOBILE, EMAIL, NAME] {
        assert!(!out.contains(pii), "{pii} shown by kyc show");
    }

    let (ok, _, _) = dep.cli(&["merchant", "deactivate", "MID693000001"]);
    assert!(ok);
    let (ok, out, _) = dep.cli(&["merchant", "list", "--json"]);
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()[0]["active"],
        false
    );
    within_a_second("a deactivated merchant", || async {
        init(basic(&id, &secret)).await.0 == 403
    })
    .await;
    dep.cli(&["merchant", "activate", "MID693000001"]);
    within_a_second("an activated merchant", || async {
        init(basic(&id, &secret)).await.0 == 200
    })
    .await;

    let (ok, out, _) = dep.cli(&["client", "rotate-secret", &id, "--json"]);
    assert!(ok);
    let new_secret = serde_json::from_str::<Value>(&out).unwrap()["clientSecret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_secret, secret);
    within_a_second("a rotated secret", || async {
        init(basic(&id, &secret)).await.0 == 401
    })
    .await;
    assert_eq!(init(basic(&id, &new_secret)).await.0, 200);
    // The status read no longer takes the old secret either.
    assert_eq!(
        common::status_at(&server.base, &basic(&id, &secret), &kid).await,
        json!({"code":"0x0201","status":"UNAUTHORIZED","message":"Invalid client credentials."})
    );
    assert_eq!(
        common::status_at(&server.base, &basic(&id, &new_secret), &kid).await["code"],
        "0x0206"
    );
    drop(server);
}

#[tokio::test]
async fn logs_carry_ids_and_never_identity_data_or_secrets() {
    let dep = Deployment::new(Backend::Sqlite).await;
    let server = dep.start(&[
        ("PAYCC_LOG", "debug"),
        ("PAYCC_LOG_JSON", "true"),
        ("PAYCC_CALLBACK_ALLOW_PRIVATE", "true"),
    ]);
    let id = banner_value(&server.banner, "clientId:");
    let secret = banner_value(&server.banner, "clientSecret:");
    let merchant = banner_value(&server.banner, "merchantCode:");
    // Callbacks too: their delivery (and the HTTP client's debug logs) must not leak.
    let receiver = common::receiver::Receiver::start().await;
    let (ok, out, err) = dep.cli(&[
        "client",
        "set-callback",
        &id,
        "--url",
        &receiver.url(),
        "--json",
    ]);
    assert!(ok, "{err}");
    let webhook_secret = serde_json::from_str::<Value>(&out).unwrap()["webhookSecret"]
        .as_str()
        .unwrap()
        .to_owned();
    let http = common::http_client();
    let body = json!({"pan": PAN, "name": NAME, "email": EMAIL, "mobile": MOBILE, "merchantCode": merchant, "aadhaarNo": "234567890123"});
    let post = |path: String, body: Value, auth: String| {
        let (http, base) = (http.clone(), server.base.clone());
        async move {
            http.post(format!("{base}{path}"))
                .header("Authorization", auth)
                .header("x-request-id", "trace-me-1")
                .body(body.to_string())
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let r = post(
        "/v1/service/paycc/init/kyc".into(),
        body.clone(),
        basic(&id, &secret),
    )
    .await;
    let kid = r["data"]["kid"].as_str().unwrap().to_owned();
    post(
        format!("/v1/sandbox/kyc/{kid}/complete"),
        json!({"outcome":"approved"}),
        basic(&id, &secret),
    )
    .await;
    post(
        format!("/v1/service/paycc/kyc/status/{kid}"),
        json!({}),
        basic(&id, &secret),
    )
    .await;
    post(
        "/v1/service/paycc/customer".into(),
        json!({"merchantCode": merchant, "pan": PAN}),
        basic(&id, &secret),
    )
    .await;
    let mut bad = body.clone();
    bad["pan"] = json!("ENGCK1234L");
    post(
        "/v1/service/paycc/init/kyc".into(),
        bad,
        basic(&id, &secret),
    )
    .await;
    post(
        "/v1/service/paycc/init/kyc".into(),
        body,
        basic(&id, "pcsk_wrong-secret"),
    )
    .await;
    let delivered = receiver
        .wait_for(1, std::time::Duration::from_secs(10))
        .await;
    assert_eq!(delivered.len(), 1, "the approval was called back");
    let signature = delivered[0].header("webhook-signature").to_owned();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let stderr = server.stderr.clone();
    drop(server);
    // The reader thread may still be draining the pipe.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let logs = stderr.lock().unwrap().clone();
    for secret_or_pii in [
        PAN,
        "ENGCK1234L",
        MOBILE,
        EMAIL,
        NAME,
        "Sanjay",
        "SANJAY",
        "234567890123",
        &secret,
        "pcsk_wrong-secret",
        &webhook_secret,
        &webhook_secret["whsec_".len()..],
        &signature,
        delivered[0].header("signature"),
        "/9j/",
    ] {
        assert!(
            !logs.contains(secret_or_pii),
            "{secret_or_pii} appears in the logs"
        );
    }
    let access: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == "request")
        .collect();
    assert_eq!(access.len(), 6, "{logs}");
    for line in &access {
        assert_eq!(line["span"]["request_id"], "trace-me-1", "{line}");
        assert!(
            line["route"].as_str().unwrap().starts_with("/v1/"),
            "{line}"
        );
        assert!(line["code"].as_str().unwrap().starts_with("0x02"), "{line}");
        assert!(line["latency_us"].is_u64(), "{line}");
        // Every line says which client it was, or `-` before credentials were good.
        let client = line["client"].as_str().unwrap();
        assert!(client == "-" || client.starts_with("PCC"), "{line}");
    }
    assert!(
        access
            .iter()
            .any(|l| l["client"].as_str().unwrap().starts_with("PCC"))
    );
    assert!(
        access
            .iter()
            .any(|l| l["route"] == "/v1/service/paycc/kyc/status/{kid}")
    );
}

#[tokio::test]
async fn the_public_url_shapes_links_and_secures_the_journey_cookie() {
    let dep = Deployment::new(Backend::Sqlite).await;
    let (key, _) = paycc::crypto::Keyring::generate_dev();
    let server = dep.start(&[
        ("PAYCC_PUBLIC_URL", "https://kyc.example.test/"),
        ("PAYCC_ALLOW_SANDBOX", "true"),
        ("PAYCC_ENCRYPTION_KEY", &key),
    ]);
    assert!(
        server
            .banner
            .contains("curl -sS https://kyc.example.test/v1/service/paycc/init/kyc"),
        "{}",
        server.banner
    );
    let auth = basic(
        &banner_value(&server.banner, "clientId:"),
        &banner_value(&server.banner, "clientSecret:"),
    );
    let body = init_body_for(&banner_value(&server.banner, "merchantCode:"));
    let reply = send(
        &http_client(),
        &format!("{}/v1/service/paycc/init/kyc", server.base),
        reqwest::Method::POST,
        Some(body.to_string()),
        Some(&auth),
    )
    .await;
    let url = reply.json["data"]["url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with("https://kyc.example.test/gateway/login/KID"),
        "{url}"
    );
    // Behind https, the journey's cookie is Secure.
    let page = http_client()
        .get(url.replace("https://kyc.example.test", &server.base))
        .send()
        .await
        .unwrap();
    let cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.ends_with("; Path=/gateway; HttpOnly; SameSite=Strict; Secure"),
        "{cookie}"
    );
}

#[tokio::test]
async fn invalid_settings_stop_the_start_with_one_line() {
    let dep = Deployment::new(Backend::Sqlite).await;
    for (var, value, reason) in [
        (
            "PAYCC_LISTEN",
            "nowhere",
            "invalid value 'nowhere' for '--listen <LISTEN>'",
        ),
        (
            "PAYCC_KYC_TTL",
            "soon",
            "invalid value 'soon' for '--kyc-ttl <KYC_TTL>'",
        ),
        (
            "PAYCC_PROVIDER",
            "acme",
            "invalid value 'acme' for '--provider <PROVIDER>'",
        ),
        (
            "PAYCC_PROVIDER",
            "digio",
            "PAYCC_PROVIDER=digio needs PAYCC_DIGIO_API_URL, PAYCC_DIGIO_GATEWAY_URL, PAYCC_DIGIO_CLIENT_ID, PAYCC_DIGIO_CLIENT_SECRET, PAYCC_DIGIO_TEMPLATE, PAYCC_DIGIO_WEBHOOK_SECRET",
        ),
        (
            "PAYCC_PUBLIC_URL",
            "ftp://x",
            "invalid value 'ftp://x' for '--public-url <PUBLIC_URL>'",
        ),
        (
            "PAYCC_ENCRYPTION_KEY",
            "k1:c2hvcnQ=",
            "PAYCC_ENCRYPTION_KEY/PAYCC_HASH_KEY: encryption key k1: must decode to exactly 32 bytes",
        ),
    ] {
        let out = dep.command().arg("serve").env(var, value).output().unwrap();
        assert!(!out.status.success(), "{var}={value} started");
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err.lines().filter(|l| !l.contains("WARN")).collect();
        assert_eq!(lines.len(), 1, "{var}: {err}");
        assert!(
            lines[0].starts_with("paycc: ") && lines[0].contains(reason),
            "{var}: {err}"
        );
        let secret_free = !err.contains("c2hvcnQ");
        assert!(secret_free, "the key value is echoed: {err}");
    }
}

#[tokio::test]
async fn a_database_without_its_key_is_refused() {
    let dep = Deployment::new(Backend::Sqlite).await;
    let (ok, _, _) = dep.cli(&["client", "create", "--name", "A"]);
    assert!(ok);
    std::fs::remove_file(dep.path().join("paycc.dev.key")).unwrap();
    let (ok, _, err) = dep.cli(&["merchant", "list"]);
    assert!(!ok);
    assert!(
        err.contains("its key file") && err.contains("PAYCC_ENCRYPTION_KEY"),
        "{err}"
    );
}

on_both_backends!(
    first_start_prints_a_curl_that_works_as_is,
    acknowledged_kids_survive_kill_9,
    admin_cli_manages_clients_merchants_and_shows_kycs_masked,
);
