//! The audit trail, through the doors users use: reads of identity data over the API,
//! an operator's commands, and `paycc audit list` / `verify`, on both databases. Every
//! act leaves exactly one entry with the right actor; tampering with the table directly
//! is found and the first bad entry named.

mod common;
use common::deploy::{self, Deployment};
use common::*;
use serde_json::{Value, json};

/// A command run by the operator `auditor`.
fn cli(dep: &Deployment, args: &[&str]) -> (bool, String, String) {
    deploy::ran(dep.command().env("USER", "auditor").args(args))
}

fn json_of(dep: &Deployment, args: &[&str]) -> Value {
    let (ok, out, err) = cli(dep, args);
    assert!(ok, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap()
}

fn verify(dep: &Deployment) -> (bool, String) {
    let (ok, out, err) = cli(dep, &["audit", "verify"]);
    (ok, format!("{out}{err}").trim().to_owned())
}

async fn every_act_leaves_one_entry_and_tampering_is_found(backend: Backend) {
    let dep = Deployment::new(backend).await;
    let creds = json_of(&dep, &["client", "create", "--name", "Acme", "--json"]);
    let id = creds["clientId"].as_str().unwrap().to_owned();
    let auth = basic(&id, creds["clientSecret"].as_str().unwrap());
    let merchant = json_of(
        &dep,
        &[
            "merchant", "create", "--client", &id, "--name", "Shop", "--json",
        ],
    )["merchantCode"]
        .as_str()
        .unwrap()
        .to_owned();
    // Started with a client in the database: no demo client of the server's own.
    let server = dep.start(&[]);
    let pan = "ABCPR3001A";
    let body = json!({"pan": pan, "name": "Asha Rao", "email": "asha@example.in",
        "mobile": "8123450001", "merchantCode": merchant});
    let approved = server.init_kid(&auth, body.clone()).await;
    let done = server
        .post(
            &auth,
            &format!("/v1/sandbox/kyc/{approved}/complete"),
            json!({"outcome": "approved", "faceMatch": 97}),
        )
        .await;
    assert_eq!(done.json["code"], "0x0200", "{}", done.text);

    // Reads that return an identity, and one that does not.
    let http = http_client();
    let read = http
        .get(format!(
            "{}/v1/service/paycc/kyc/status/{approved}",
            server.base
        ))
        .header("Authorization", &auth)
        .header("x-request-id", "req-audit-1")
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let open = server
        .init_kid(
            &auth,
            json!({"pan": "ABCPR3002B", "name": "Ravi Kumar", "email": "ravi@example.in",
                "mobile": "8123450002", "merchantCode": merchant}),
        )
        .await;
    assert_eq!(server.status(&auth, &open).await.json["code"], "0x0206");
    let check = server
        .post(
            &auth,
            "/v1/service/paycc/customer",
            json!({"merchantCode": merchant, "pan": pan}),
        )
        .await;
    assert_eq!(check.json["data"]["digioKyc"], "1", "{}", check.text);

    // The operator's acts.
    for args in [
        vec!["kyc", "show", approved.as_str(), "--json"],
        vec!["client", "disable", id.as_str()],
        vec!["client", "enable", id.as_str()],
        vec!["client", "rotate-secret", id.as_str(), "--json"],
        vec!["client", "set-limit", id.as_str(), "--per-second", "50"],
        vec![
            "client",
            "set-callback",
            id.as_str(),
            "--url",
            "https://hooks.example/paycc",
        ],
        vec!["merchant", "deactivate", merchant.as_str()],
        vec!["merchant", "activate", merchant.as_str()],
        vec![
            "kyc",
            "decide",
            open.as_str(),
            "reject",
            "--reason",
            "erasure requested",
        ],
        vec!["purge", "--kid", open.as_str()],
    ] {
        let (ok, _, err) = cli(&dep, &args);
        assert!(ok, "{args:?}: {err}");
    }
    // Refused acts change nothing and record nothing.
    assert!(!cli(&dep, &["client", "disable", "PCCNOSUCHCLIENT"]).0);
    assert!(
        !cli(
            &dep,
            &["kyc", "decide", &approved, "reject", "--reason", "late"]
        )
        .0
    );

    let (ok, listed, err) = cli(&dep, &["audit", "list", "--json", "--limit", "100"]);
    assert!(ok, "{err}");
    for pii in [pan, "Asha", "asha@", "8123450001", "Ravi"] {
        assert!(!listed.contains(pii), "{pii} in the audit trail");
    }
    let mut entries: Vec<Value> = serde_json::from_str(&listed).unwrap();
    entries.reverse();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let operator = format!("cli:auditor@{}", host.trim());
    let summary: Vec<(i64, String, String, String, String)> = entries
        .iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap_or("-").to_owned();
            (
                e["seq"].as_i64().unwrap(),
                text("actor"),
                text("action"),
                text("kid"),
                text("outcome"),
            )
        })
        .collect();
    let row = |seq: i64, actor: &str, action: &str, kid: &str, outcome: &str| {
        (
            seq,
            actor.to_owned(),
            action.to_owned(),
            kid.to_owned(),
            outcome.to_owned(),
        )
    };
    assert_eq!(
        summary,
        [
            row(1, &operator, "client.create", "-", "created"),
            row(2, &operator, "merchant.create", "-", &merchant),
            // The sandbox's completion answers with the identity, as a status read does.
            row(3, &id, "status.read", &approved, "identity returned"),
            row(4, &id, "status.read", &approved, "identity returned"),
            row(5, &id, "customer.check", &approved, "identity returned"),
            row(6, &operator, "kyc.show", &approved, "shown"),
            row(7, &operator, "client.disable", "-", "disabled"),
            row(8, &operator, "client.enable", "-", "enabled"),
            row(9, &operator, "client.rotate_secret", "-", "rotated"),
            row(10, &operator, "client.set_limit", "-", "50/s,burst=100"),
            row(
                11,
                &operator,
                "client.set_callback",
                "-",
                "url set, new secret"
            ),
            row(12, &operator, "merchant.deactivate", "-", &merchant),
            row(13, &operator, "merchant.activate", "-", &merchant),
            row(14, &operator, "kyc.decide", &open, "rejected"),
            row(15, &operator, "kyc.purge", &open, "erased on request"),
        ]
    );
    assert_eq!(entries[3]["requestId"], "req-audit-1");
    assert!(
        entries.iter().all(|e| e["clientId"] == id.as_str()),
        "{listed}"
    );
    let for_kid = json_of(&dep, &["audit", "list", "--kid", &approved, "--json"]);
    let seqs: Vec<i64> = for_kid
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [6, 5, 4, 3]);
    // By client, and by time.
    let other = json_of(&dep, &["client", "create", "--name", "Other", "--json"])["clientId"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed_seqs = |args: &[&str]| -> Vec<i64> {
        let mut all = vec!["audit", "list", "--json", "--limit", "100"];
        all.extend_from_slice(args);
        json_of(&dep, &all)
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(
        listed_seqs(&["--client", &id]),
        (1..=15).rev().collect::<Vec<_>>()
    );
    assert_eq!(listed_seqs(&["--client", &other]), [16]);
    assert_eq!(listed_seqs(&["--since", "1h"]).len(), 16);
    assert_eq!(
        listed_seqs(&["--since", "2999-01-01T00:00:00Z"]),
        Vec::<i64>::new()
    );
    let (ok, _, err) = cli(&dep, &["audit", "list", "--since", "yesterday"]);
    assert!(!ok);
    assert!(
        err.contains("expected an RFC 3339 time or a duration like 24h, got \"yesterday\""),
        "{err}"
    );

    // Untouched, the trail checks out; every kind of tampering is found at its entry.
    assert_eq!(
        verify(&dep),
        (
            true,
            "audit trail intact: 16 entries, each linked to the one before".into()
        )
    );
    dep.exec("UPDATE audit_log SET outcome = 'nothing' WHERE seq = 3")
        .await;
    assert_eq!(
        verify(&dep),
        (false, "paycc: audit trail broken at entry 3: its hash does not match: the entry was changed, or one before it was removed or moved".into())
    );
    dep.exec("UPDATE audit_log SET outcome = 'identity returned' WHERE seq = 3")
        .await;
    assert!(verify(&dep).0);
    // Two entries swapped, numbers and all.
    dep.exec(
        "UPDATE audit_log SET seq = -1 WHERE seq = 6; UPDATE audit_log SET seq = 6 WHERE seq = 7;
         UPDATE audit_log SET seq = 7 WHERE seq = -1",
    )
    .await;
    assert!(
        verify(&dep)
            .1
            .contains("broken at entry 6: its hash does not match")
    );
    dep.exec(
        "UPDATE audit_log SET seq = -1 WHERE seq = 6; UPDATE audit_log SET seq = 6 WHERE seq = 7;
         UPDATE audit_log SET seq = 7 WHERE seq = -1",
    )
    .await;
    assert!(verify(&dep).0);
    dep.exec("DELETE FROM audit_log WHERE seq = 9").await;
    assert_eq!(
        verify(&dep),
        (
            false,
            "paycc: audit trail broken at entry 9: entries 9 to 9 are missing: removed".into()
        )
    );
}

on_both_backends!(every_act_leaves_one_entry_and_tampering_is_found);
