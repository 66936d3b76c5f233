//! The OpenAPI document checked against a real node by schemathesis, on both databases:
//! thousands of generated requests (valid and invalid, with and without credentials),
//! and not one server error, answer that violates the document, or undocumented status.
//! The document itself must pass openapi-spec-validator as OpenAPI 3.1. `scripts/test`
//! installs both from PyPI.

mod common;
use common::deploy::Deployment;
use common::*;
use serde_json::json;
use std::process::Command;

async fn schemathesis_finds_nothing(backend: Backend) {
    let ran = |c: &mut Command| c.output().is_ok_and(|o| o.status.success());
    let installed = ran(schemathesis().arg("--version"))
        && ran(Command::new("python3").args(["-c", "import openapi_spec_validator"]));
    if !installed {
        return skip_or_fail(
            Need::Schemathesis,
            "schemathesis or openapi-spec-validator is not installed (python3 -m pip install schemathesis openapi-spec-validator)",
        );
    }
    let dep = Deployment::new(backend).await;
    let (_, auth, merchant) = dep.client_and_merchant();
    // The run fails to authenticate on purpose, thousands of times, from one address.
    let node = dep.start(&[("PAYCC_AUTH_FAILURES", "1000000")]);
    let kid = node
        .init_kid(
            &auth,
            json!({"pan": "ABCPR1234Q", "name": "Asha Rao", "email": "asha@example.in",
                "mobile": "8123450001", "merchantCode": merchant}),
        )
        .await;
    node.approve(&auth, &kid).await;
    // The document is valid OpenAPI 3.1.
    let document = dep.path().join("openapi.json");
    let fetched = get(format!("{}/openapi.json", node.base)).await.unwrap();
    std::fs::write(&document, fetched.bytes().await.unwrap()).unwrap();
    let checked = Command::new("python3")
        .args(["-m", "openapi_spec_validator", "--schema", "3.1"])
        .arg(&document)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&checked.stdout);
    assert!(
        checked.status.success() && said.contains("OK"),
        "{said}{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    // Real values where the document cannot say which exist: an approved kid (every
    // answer's schema is met) and the caller's merchant.
    let config = dep.path().join("schemathesis.toml");
    std::fs::write(
        &config,
        format!("[parameters]\nkid = \"{kid}\"\n\"body.merchantCode\" = \"{merchant}\"\n"),
    )
    .unwrap();
    let out = schemathesis()
        .current_dir(dep.path())
        .args(["--config-file", config.to_str().unwrap(), "run"])
        .arg(format!("{}/openapi.json", node.base))
        .args(["-H", &format!("Authorization: {auth}")])
        // Every check but one: a request the document allows may still be refused for
        // what only the data decides (another client's merchant, a kid that ended).
        .args([
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
        ])
        .args([
            "--max-examples",
            "100",
            "--generation-deterministic",
            "--no-color",
        ])
        .output()
        .expect("schemathesis runs");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("passed"), "{report}");
    assert!(!node.stderr.lock().unwrap().contains("panic"));
}

/// schemathesis as pip installs it, whether or not its script is on the PATH.
fn schemathesis() -> Command {
    let mut c = Command::new("python3");
    c.args(["-m", "schemathesis.cli"]);
    c
}

on_both_backends!(schemathesis_finds_nothing);
