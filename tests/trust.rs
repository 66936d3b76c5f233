//! What an operator must be able to trust before real identities flow: switches that
//! switch (a disabled client, a deactivated merchant), starts that refuse to be unsafe
//! in public, keys that cannot silently change, and errors that never quote identity
//! data. Driven as an operator does: the real binary, its CLI, and HTTP.

mod common;
use base64::prelude::*;
use common::deploy::Deployment;
use common::*;
use paycc::crypto::Keyring;
use serde_json::{Value, json};

async fn a_disabled_client_is_refused_on_every_node(backend: Backend) {
    let dep = Deployment::new(backend).await;
    let (id, auth, merchant) = dep.client_and_merchant();
    let (one, two) = (dep.start(&[]), dep.start(&[]));
    let kid = one.init_kid(&auth, init_body_for(&merchant)).await;

    let (ok, out, err) = dep.cli(&["client", "disable", &id, "--json"]);
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        format!(r#"{{"clientId":"{id}","active":false}}"#)
    );
    let refused =
        r#"{"code":"0x0201","status":"UNAUTHORIZED","message":"Invalid client credentials."}"#;
    for node in [&one, &two] {
        within_a_second("a disabled client", || async {
            node.status(&auth, &kid).await.status == 401
        })
        .await;
        node.status(&auth, &kid).await.assert_exact(401, refused);
        node.post(
            &auth,
            "/v1/service/paycc/init/kyc",
            init_body_for(&merchant),
        )
        .await
        .assert_exact(401, refused);
        node.post(
            &auth,
            &format!("/v1/sandbox/kyc/{kid}/complete"),
            json!({"outcome": "approved"}),
        )
        .await
        .assert_exact(401, refused);
    }

    let (ok, out, _) = dep.cli(&["client", "enable", &id]);
    assert!(ok);
    assert_eq!(out.trim(), format!("client {id} enabled"));
    for node in [&one, &two] {
        within_a_second("an enabled client", || async {
            node.status(&auth, &kid).await.status == 200
        })
        .await;
        assert_eq!(node.status(&auth, &kid).await.json["code"], "0x0206");
    }
    let (ok, _, err) = dep.cli(&["client", "disable", "PCCNOSUCHCLIENT00"]);
    assert!(!ok);
    assert_eq!(err.trim(), "paycc: No such API client");
}

async fn a_deactivated_merchants_kycs_are_switched_off(backend: Backend) {
    let dep = Deployment::new(backend).await;
    let (_, auth, merchant) = dep.client_and_merchant();
    let server = dep.start(&[]);
    let approved = server.init_kid(&auth, init_body_for(&merchant)).await;
    server.approve(&auth, &approved).await;
    let mut body = init_body_for(&merchant);
    body["pan"] = json!("ABCPK4321Q");
    let open = server.init_kid(&auth, body).await;

    let (ok, _, err) = dep.cli(&["merchant", "deactivate", &merchant]);
    assert!(ok, "{err}");
    let refused = r#"{"code":"0x0202","status":"FAILURE","message":"The merchant is not active or does not belong to this client."}"#;
    // Status reads see the merchant with the request; the customer check and inits
    // through the credentials kept in memory, within a second.
    let customer_check = json!({"merchantCode": merchant, "pan": PAN});
    within_a_second("a deactivated merchant", || async {
        let check = "/v1/service/paycc/customer";
        server
            .post(&auth, check, customer_check.clone())
            .await
            .status
            == 403
    })
    .await;
    // No identity, no photo: the approved KYC reads like the merchant does.
    server
        .status(&auth, &approved)
        .await
        .assert_exact(403, refused);
    server.status(&auth, &open).await.assert_exact(403, refused);
    server
        .post(
            &auth,
            &format!("/v1/sandbox/kyc/{open}/complete"),
            json!({"outcome": "approved"}),
        )
        .await
        .assert_exact(403, refused);
    server
        .post(&auth, "/v1/service/paycc/customer", customer_check)
        .await
        .assert_exact(403, refused);
    // Nothing was changed: the open one is still open once the merchant is back.
    let (ok, _, _) = dep.cli(&["merchant", "activate", &merchant]);
    assert!(ok);
    within_a_second("an activated merchant", || async {
        server.status(&auth, &approved).await.status == 200
    })
    .await;
    assert_eq!(server.status(&auth, &approved).await.json["code"], "0x0200");
    assert_eq!(server.status(&auth, &open).await.json["code"], "0x0206");
}

/// `paycc serve` with these settings: its one stderr line if it refused to start.
fn refused_start(dep: &Deployment, env: &[(&str, &str)]) -> Option<String> {
    let mut cmd = dep.command();
    cmd.arg("serve")
        .env("PAYCC_LISTEN", "127.0.0.1:0")
        .env("PAYCC_OPS_LISTEN", "127.0.0.1:0")
        .envs(env.iter().copied());
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A start that is not refused keeps running: give it a moment, then stop it.
    for _ in 0..50 {
        if let Some(exit) = child.try_wait().unwrap() {
            assert!(!exit.success());
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            let lines: Vec<&str> = err.lines().filter(|l| !l.contains("WARN")).collect();
            assert_eq!(lines.len(), 1, "{err}");
            return Some(lines[0].to_owned());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[tokio::test]
async fn a_public_start_needs_a_real_provider_and_real_keys() {
    let dep = Deployment::new(Backend::Sqlite).await;
    assert_eq!(
        refused_start(&dep, &[("PAYCC_PUBLIC_URL", "https://kyc.example.test")]).as_deref(),
        Some(
            "paycc: PAYCC_PUBLIC_URL https://kyc.example.test is not a loopback address and the provider is the sandbox, where anyone holding a link approves it: set PAYCC_PROVIDER=digio, or PAYCC_ALLOW_SANDBOX=true for a public demo"
        )
    );
    // Listening on every interface is public too.
    let refused = refused_start(&dep, &[("PAYCC_LISTEN", "0.0.0.0:0")]).unwrap();
    assert!(
        refused.starts_with("paycc: PAYCC_PUBLIC_URL http://0.0.0.0:")
            && refused.contains("PAYCC_ALLOW_SANDBOX=true"),
        "{refused}"
    );
    assert_eq!(
        refused_start(
            &dep,
            &[
                ("PAYCC_PUBLIC_URL", "https://kyc.example.test"),
                ("PAYCC_ALLOW_SANDBOX", "true")
            ]
        )
        .as_deref(),
        Some(
            "paycc: PAYCC_PUBLIC_URL https://kyc.example.test is not a loopback address: set PAYCC_ENCRYPTION_KEY (and PAYCC_HASH_KEY) instead of the development key file"
        )
    );
    // A refused start leaves nothing behind that a corrected one would inherit: no key
    // file, no database (with a hash key pinned in it).
    let left: Vec<String> = std::fs::read_dir(dep.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "a refused start left {left:?}");
    // Every loopback form is a developer's machine: the start is not refused.
    for url in [
        "http://localhost:8080",
        "http://127.0.0.2:8080",
        "http://[::1]:8080",
    ] {
        assert_eq!(
            refused_start(&dep, &[("PAYCC_PUBLIC_URL", url)]),
            None,
            "{url}"
        );
    }
}

#[tokio::test]
async fn sandbox_answers_say_they_are_sandbox() {
    let dep = Deployment::new(Backend::Sqlite).await;
    let (key, hash) = Keyring::generate_dev();
    let server = dep.start(&[
        ("PAYCC_PUBLIC_URL", "https://demo.example.test"),
        ("PAYCC_ALLOW_SANDBOX", "true"),
        ("PAYCC_ENCRYPTION_KEY", &key),
        ("PAYCC_HASH_KEY", &hash),
    ]);
    let auth = basic(
        &deploy::banner_value(&server.banner, "clientId:"),
        &deploy::banner_value(&server.banner, "clientSecret:"),
    );
    let merchant = deploy::banner_value(&server.banner, "merchantCode:");
    let ok = server
        .post(
            &auth,
            "/v1/service/paycc/init/kyc",
            init_body_for(&merchant),
        )
        .await;
    let refused = server
        .post("Basic eDp5", "/v1/service/paycc/init/kyc", json!({}))
        .await;
    let missing = common::get(format!("{}/nowhere", server.base))
        .await
        .unwrap();
    assert_eq!(
        (
            ok.header("paycc-environment"),
            refused.header("paycc-environment"),
            missing
                .headers()
                .get("paycc-environment")
                .map(|v| v.to_str().unwrap())
        ),
        (Some("sandbox"), Some("sandbox"), Some("sandbox"))
    );
    assert!(
        server
            .stderr
            .lock()
            .unwrap()
            .contains("SANDBOX: no identity is verified"),
        "the start log says so"
    );
}

/// `paycc` with exactly these keys (none of the deployment's own).
fn with_keys(
    dep: &Deployment,
    data: &str,
    hash: Option<&str>,
    args: &[&str],
) -> (bool, String, String) {
    let mut cmd = dep.command();
    cmd.env_remove("PAYCC_HASH_KEY")
        .env("PAYCC_ENCRYPTION_KEY", data)
        .args(args);
    if let Some(h) = hash {
        cmd.env("PAYCC_HASH_KEY", h);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn keys_cannot_silently_change(backend: Backend) {
    let dep = Deployment::new(backend).await;
    let key = |b: u8| BASE64_STANDARD.encode([b; 32]);
    let old = format!("k1:{}", key(1));
    let (ok, out, err) = with_keys(
        &dep,
        &old,
        None,
        &["client", "create", "--name", "A", "--json"],
    );
    assert!(ok, "{err}");
    let creds: Value = serde_json::from_str(&out).unwrap();
    let id = creds["clientId"].as_str().unwrap();
    let auth = basic(id, creds["clientSecret"].as_str().unwrap());
    let (ok, out, _) = with_keys(
        &dep,
        &old,
        None,
        &[
            "merchant", "create", "--client", id, "--name", "S", "--json",
        ],
    );
    assert!(ok);
    let merchant = serde_json::from_str::<Value>(&out).unwrap()["merchantCode"]
        .as_str()
        .unwrap()
        .to_owned();

    // A second data key without PAYCC_HASH_KEY would move the hash key with it.
    let rotated = format!("k2:{},{old}", key(2));
    let (ok, _, err) = with_keys(&dep, &rotated, None, &["merchant", "list"]);
    assert!(!ok);
    assert!(
        err.trim().starts_with("paycc: PAYCC_ENCRYPTION_KEY/PAYCC_HASH_KEY: PAYCC_HASH_KEY must be set when PAYCC_ENCRYPTION_KEY holds more than one key"),
        "{err}"
    );
    // Another hash key than the database was first started with.
    let (ok, _, err) = with_keys(&dep, &old, Some(&key(3)), &["merchant", "list"]);
    assert!(!ok);
    assert!(
        err.trim().starts_with(
            "paycc: PAYCC_HASH_KEY differs from the hash key this database was first started with"
        ),
        "{err}"
    );
    assert!(!err.contains(&key(3)), "the key is not echoed: {err}");

    // The documented rotation: pin the hash key in use, then add the new data key.
    let (ok, derived, err) = with_keys(&dep, &old, None, &["keys", "derived-hash-key"]);
    assert!(ok, "{err}");
    let derived = derived.trim().to_owned();
    let server = dep.start(&[
        ("PAYCC_ENCRYPTION_KEY", &rotated),
        ("PAYCC_HASH_KEY", &derived),
    ]);
    // The old secret still matches, and the merchant's customers are found by PAN.
    let kid = server.init_kid(&auth, init_body_for(&merchant)).await;
    assert_eq!(server.status(&auth, &kid).await.json["code"], "0x0206");
    let c = server
        .post(
            &auth,
            "/v1/service/paycc/customer",
            json!({"merchantCode": merchant, "pan": PAN}),
        )
        .await;
    assert_eq!(c.json["code"], "0x0200", "{}", c.text);
}

/// A sealed identity that opens but does not decode: the log names the column and the
/// kid, and nothing of what the decoder saw.
#[tokio::test]
async fn an_undecodable_sealed_value_is_logged_without_its_content() {
    let dep = Deployment::new(Backend::Sqlite).await;
    let server = dep.start(&[]);
    let auth = basic(
        &deploy::banner_value(&server.banner, "clientId:"),
        &deploy::banner_value(&server.banner, "clientSecret:"),
    );
    let merchant = deploy::banner_value(&server.banner, "merchantCode:");
    let kid = server.init_kid(&auth, init_body_for(&merchant)).await;
    let done = server
        .post(
            &auth,
            &format!("/v1/sandbox/kyc/{kid}/complete"),
            json!({"outcome": "approved"}),
        )
        .await;
    assert_eq!(done.json["code"], "0x0200");

    let file = std::fs::read_to_string(dep.path().join("paycc.dev.key")).unwrap();
    let line = |name: &str| {
        file.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .to_owned()
    };
    let keys = Keyring::from_config(&line("encryption="), Some(&line("hash="))).unwrap();
    // A number where text is due: a JSON decoder's message would quote the text.
    let planted = keys.seal(
        "kyc-result",
        &kid,
        br#"{"name":"Zebediah Planted","faceMatch":"Zebediah Planted"}"#,
    );
    let db = rusqlite::Connection::open(dep.path().join("paycc.db")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    db.execute(
        "UPDATE kyc_requests SET result_sealed = ?1 WHERE kid = ?2",
        rusqlite::params![planted, kid],
    )
    .unwrap();

    server.status(&auth, &kid).await.assert_exact(
        500,
        r#"{"code":"0x0205","status":"SOMETHING_WENT_WRONG","message":"Something went wrong. Please try again later."}"#,
    );
    let expected = format!("the sealed kyc_requests.result_sealed of {kid} does not decode");
    let log = server.log_once_it_holds(&expected).await;
    assert!(log.contains(&expected), "{log}");
    assert!(!log.contains("Zebediah"), "{log}");
}

on_both_backends!(
    a_disabled_client_is_refused_on_every_node,
    a_deactivated_merchants_kycs_are_switched_off,
    keys_cannot_silently_change,
);
