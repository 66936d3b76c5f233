//! Data keys over their life, through the CLI and the API on both databases: `keys
//! status` counts what each key seals, `keys rotate` re-seals everything under a new
//! first key while a node serves inits and reads, a start without a key that still
//! seals something is refused (and allowed once it seals nothing), and a sealed value
//! moved to another row does not open.

mod common;
use common::deploy::{self, Deployment};
use common::*;
use paycc::crypto::{Keyring, Lookup};
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};

const OLD: &str = "old:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const NEW: &str = "new:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
const HASH: &str = "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=";

/// `paycc` with these data keys (and one hash key throughout), run by `keyholder`.
fn with_keys(dep: &Deployment, keys: &str) -> Command {
    let mut c = dep.command();
    c.env("PAYCC_ENCRYPTION_KEY", keys)
        .env("PAYCC_HASH_KEY", HASH)
        .env("USER", "keyholder");
    c
}

fn run(dep: &Deployment, keys: &str, args: &[&str]) -> (bool, String, String) {
    deploy::ran(with_keys(dep, keys).args(args))
}

fn json_of(dep: &Deployment, keys: &str, args: &[&str]) -> Value {
    let (ok, out, err) = run(dep, keys, args);
    assert!(ok, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed {out:?}: {e}"))
}

/// `keys status --json` as (key, role, values, unbound) rows, and what is left to re-seal.
fn status(dep: &Deployment, keys: &str) -> (Vec<(String, &'static str, i64, i64)>, i64) {
    let s = json_of(dep, keys, &["keys", "status", "--json"]);
    assert_eq!(s["otherKeys"], 0, "{s}");
    let rows = s["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let role = match (k["sealing"].as_bool(), k["configured"].as_bool()) {
                (Some(true), _) => "sealing",
                (_, Some(true)) => "configured",
                _ => "removed",
            };
            (
                k["keyId"].as_str().unwrap().to_owned(),
                role,
                k["values"].as_i64().unwrap(),
                k["unbound"].as_i64().unwrap(),
            )
        })
        .collect();
    (rows, s["toReseal"].as_i64().unwrap())
}

/// The output of a `serve` that must refuse to start, within 30 s.
fn refused_serve(dep: &Deployment, keys: &str) -> String {
    let mut child = with_keys(dep, keys)
        .arg("serve")
        .env("PAYCC_LISTEN", "127.0.0.1:0")
        .env("PAYCC_OPS_LISTEN", "127.0.0.1:0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(!status.success());
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            return err;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("paycc started without a key that still seals values");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `plain` sealed as releases before row binding sealed it: under data key `spec`
/// (`id:base64`), the column's label alone as associated data.
fn sealed_unbound(spec: &str, label: &str, plain: &[u8]) -> Vec<u8> {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    use base64::prelude::*;
    let (id, b64) = spec.split_once(':').unwrap();
    let raw = BASE64_STANDARD.decode(b64).unwrap();
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(&raw).unwrap();
    let nonce = [7u8; 12];
    let ct = cipher
        .encrypt(
            &aes_gcm::Nonce::try_from(&nonce[..]).unwrap(),
            Payload {
                msg: plain,
                aad: label.as_bytes(),
            },
        )
        .unwrap();
    [&[id.len() as u8][..], id.as_bytes(), &nonce, &ct].concat()
}

fn person(n: usize, merchant: &str) -> Value {
    json!({"pan": format!("ABCPR{n:04}Q"), "name": "Asha Rao", "email": "asha@example.in",
        "mobile": format!("81234{n:05}"), "merchantCode": merchant})
}

/// Every KYC still opens: `kyc show` prints its submitted details (masked), and an
/// approved one's status gives its identity.
async fn all_open(
    dep: &Deployment,
    keys: &str,
    server: &deploy::Running,
    auth: &str,
    kids: &[String],
    approved: &[String],
) {
    for kid in kids {
        let shown = json_of(dep, keys, &["kyc", "show", kid, "--json"]);
        assert_eq!(shown["name"], "A. R.", "{kid}: {shown}");
    }
    for kid in approved {
        let read = server.status(auth, kid).await;
        assert_eq!(read.json["code"], "0x0200", "{kid}: {}", read.text);
        assert_eq!(
            read.json["data"]["kyc"]["name"], "Asha Rao",
            "{}",
            read.text
        );
    }
}

async fn rotation_reseals_everything_and_a_key_leaves_only_once_empty(backend: Backend) {
    let dep = Deployment::new(backend).await;
    let creds = json_of(&dep, OLD, &["client", "create", "--name", "Acme", "--json"]);
    let id = creds["clientId"].as_str().unwrap().to_owned();
    let auth = basic(&id, creds["clientSecret"].as_str().unwrap());
    let merchant = json_of(
        &dep,
        OLD,
        &[
            "merchant", "create", "--client", &id, "--name", "Shop", "--json",
        ],
    )["merchantCode"]
        .as_str()
        .unwrap()
        .to_owned();
    json_of(
        &dep,
        OLD,
        &[
            "client",
            "set-callback",
            &id,
            "--url",
            "https://shop.example/kyc",
            "--json",
        ],
    );

    // Under the old key: requests, two approvals (each with an identity and the
    // sandbox's person) and an Idempotency-Key's stored reply.
    let server = dep.start(&[("PAYCC_ENCRYPTION_KEY", OLD), ("PAYCC_HASH_KEY", HASH)]);
    let mut kids = Vec::new();
    for n in 0..6 {
        kids.push(server.init_kid(&auth, person(n, &merchant)).await);
    }
    let keyed = http_client()
        .post(format!("{}/v1/service/paycc/init/kyc", server.base))
        .header("Authorization", &auth)
        .header("Idempotency-Key", "order-1")
        .body(person(6, &merchant).to_string())
        .send()
        .await
        .unwrap();
    let keyed = Reply::from_response(keyed).await;
    assert_eq!(keyed.json["code"], "0x0200", "{}", keyed.text);
    kids.push(keyed.json["data"]["kid"].as_str().unwrap().to_owned());
    let approved = kids[..2].to_vec();
    for kid in &approved {
        // DigiLocker returning the same person, named: the sandbox keeps that person.
        let done = server
            .post(
                &auth,
                &format!("/v1/sandbox/kyc/{kid}/complete"),
                json!({"outcome": "approved", "verifiedName": "Asha Rao"}),
            )
            .await;
        assert_eq!(done.json["code"], "0x0200", "{}", done.text);
    }
    drop(server);
    // One request's details as a release before row binding left them.
    let legacy = sealed_unbound(
        OLD,
        "customer-details",
        br#"{"pan":"ABCPR0000Q","name":"Asha Rao","email":"asha@example.in","mobile":"8123400000"}"#,
    );
    dep.exec(&format!(
        "UPDATE kyc_requests SET submitted_sealed = {} WHERE kid = '{}'",
        dep.blob(&legacy),
        kids[0]
    ))
    .await;
    let shown = json_of(&dep, OLD, &["kyc", "show", &kids[0], "--json"]);
    assert_eq!(shown["pan"], "XXXXXX000Q", "{shown}");

    // 7 customers' details, 7 requests' own copies, 7 links, 2 results, 2 sandbox
    // persons, 1 webhook secret, 1 stored reply.
    let before = 7 + 7 + 7 + 2 + 2 + 1 + 1;
    assert_eq!(
        status(&dep, OLD),
        (vec![("old".into(), "sealing", before - 1, 1)], 1)
    );

    // The old key cannot simply be dropped.
    let err = refused_serve(&dep, NEW);
    assert!(
        err.contains(&format!(
            "data key old is no longer in PAYCC_ENCRYPTION_KEY but still seals {before} values"
        )),
        "{err}"
    );
    let (ok, _, err) = run(&dep, NEW, &["kyc", "show", &kids[0]]);
    assert!(!ok && err.contains("data key old"), "{err}");
    // `keys status` still reports, to say what is missing.
    assert_eq!(
        status(&dep, NEW),
        (
            vec![
                ("new".into(), "sealing", 0, 0),
                ("old".into(), "removed", before - 1, 1)
            ],
            before
        )
    );

    // The new key first, on the serving node and for the rotation, which runs in small
    // batches while inits and reads go on.
    let both = format!("{NEW},{OLD}");
    let server = dep.start(&[("PAYCC_ENCRYPTION_KEY", &both), ("PAYCC_HASH_KEY", HASH)]);
    let load = {
        let (base, auth, merchant) = (server.base.clone(), auth.clone(), merchant.clone());
        let reads = approved.clone();
        tokio::spawn(async move {
            let http = http_client();
            let mut made = Vec::new();
            for n in 100..130 {
                let res = http
                    .post(format!("{base}/v1/service/paycc/init/kyc"))
                    .header("Authorization", &auth)
                    .body(person(n, &merchant).to_string())
                    .send()
                    .await
                    .unwrap();
                let reply = Reply::from_response(res).await;
                assert_eq!(reply.json["code"], "0x0200", "{}", reply.text);
                made.push(reply.json["data"]["kid"].as_str().unwrap().to_owned());
                let res = http
                    .get(format!(
                        "{base}/v1/service/paycc/kyc/status/{}",
                        reads[n % 2]
                    ))
                    .header("Authorization", &auth)
                    .send()
                    .await
                    .unwrap();
                let reply = Reply::from_response(res).await;
                assert_eq!(reply.json["code"], "0x0200", "{}", reply.text);
            }
            made
        })
    };
    let rotated = json_of(&dep, &both, &["keys", "rotate", "--batch", "2", "--json"]);
    kids.extend(load.await.unwrap());
    assert_eq!(rotated["keyId"], "new");
    assert_eq!(rotated["unopened"], json!([]));
    let moved =
        rotated["resealed"].as_i64().unwrap() + rotated["changedMeanwhile"].as_i64().unwrap();
    assert_eq!(moved, before, "{rotated}");
    let (rows, left) = status(&dep, &both);
    // Each init meanwhile: a customer's details, the request's copy, a link.
    let after = before + 30 * 3;
    assert_eq!(
        (rows, left),
        (
            vec![
                ("new".into(), "sealing", after, 0),
                ("old".into(), "configured", 0, 0)
            ],
            0
        )
    );
    // A second run finds nothing left.
    let again = json_of(&dep, &both, &["keys", "rotate", "--json"]);
    assert_eq!(
        (
            again["resealed"].as_i64(),
            again["changedMeanwhile"].as_i64()
        ),
        (Some(0), Some(0))
    );
    all_open(&dep, &both, &server, &auth, &kids, &approved).await;
    drop(server);

    // Now the old key may go: the start forgets it, and everything still opens.
    let server = dep.start(&[("PAYCC_ENCRYPTION_KEY", NEW), ("PAYCC_HASH_KEY", HASH)]);
    assert_eq!(
        status(&dep, NEW),
        (vec![("new".into(), "sealing", after, 0)], 0)
    );
    all_open(&dep, NEW, &server, &auth, &kids, &approved).await;
    let entries = json_of(&dep, NEW, &["audit", "list", "--json", "--limit", "1000"]);
    // Newest first: the server forgot the old key; the operator rotated twice.
    let acts: Vec<String> = entries
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("keys."))
        .map(|e| {
            let actor = e["actor"].as_str().unwrap();
            let actor = if actor.starts_with("cli:keyholder@") {
                "cli:keyholder"
            } else {
                actor
            };
            format!(
                "{actor} {} {}",
                e["action"].as_str().unwrap(),
                e["outcome"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        acts,
        [
            "paycc keys.retire key old seals nothing and is no longer configured: forgotten".to_owned(),
            "cli:keyholder keys.rotate done: 0 re-sealed under new, 0 rewritten meanwhile, 0 do not open".into(),
            "cli:keyholder keys.rotate started: 0 values to re-seal under new".into(),
            format!(
                "cli:keyholder keys.rotate done: {} re-sealed under new, {} rewritten meanwhile, 0 do not open",
                rotated["resealed"], rotated["changedMeanwhile"]
            ),
            format!("cli:keyholder keys.rotate started: {before} values to re-seal under new"),
        ]
    );
    let (verified, out, err) = run(&dep, NEW, &["audit", "verify"]);
    assert!(verified, "{out}{err}");

    // A result moved to another approved request does not open there.
    let (a, b) = (&approved[0], &approved[1]);
    dep.exec(&format!(
            "UPDATE kyc_requests SET result_sealed = (SELECT result_sealed FROM kyc_requests WHERE kid = '{a}') WHERE kid = '{b}'"
        ),
    )
    .await;
    server.status(&auth, b).await.assert_exact(
        500,
        r#"{"code":"0x0205","status":"SOMETHING_WENT_WRONG","message":"Something went wrong. Please try again later."}"#,
    );
    let expected = format!("the sealed kyc_requests.result_sealed of {b} does not open");
    assert!(
        server
            .log_once_it_holds(&expected)
            .await
            .contains(&expected)
    );
    assert_eq!(server.status(&auth, a).await.json["code"], "0x0200");

    // So do a customer's details moved to another customer; the log names neither the
    // PAN nor its keyed hash (the customer's row id).
    dep.exec(&format!(
        "UPDATE customers SET details_sealed = (SELECT c.details_sealed FROM customers c
           JOIN kyc_requests k ON k.customer_pk = c.pk WHERE k.kid = '{a}')
         WHERE pk = (SELECT customer_pk FROM kyc_requests WHERE kid = '{b}')"
    ))
    .await;
    let check = server
        .post(
            &auth,
            "/v1/service/paycc/customer",
            json!({"merchantCode": merchant, "pan": "ABCPR0001Q"}),
        )
        .await;
    check.assert_exact(
        500,
        r#"{"code":"0x0205","status":"SOMETHING_WENT_WRONG","message":"Something went wrong. Please try again later."}"#,
    );
    let expected = "the sealed customers.details_sealed of a customer does not open";
    let log = server.log_once_it_holds(expected).await;
    assert!(log.contains(expected), "{log}");
    let pan_hash = Keyring::from_config(NEW, Some(HASH))
        .unwrap()
        .lookup_hash(Lookup::Pan, &["ABCPR0001Q"]);
    assert!(!log.contains(&hex::encode(pan_hash)), "{log}");
    assert!(!log.contains("ABCPR0001Q"), "{log}");
}

on_both_backends!(rotation_reseals_everything_and_a_key_leaves_only_once_empty);
