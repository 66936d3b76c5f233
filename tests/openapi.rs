//! `GET /openapi.json` and `GET /docs` on a real node: the document is OpenAPI 3.1 and
//! names every public endpoint the node serves (a sandbox node: no provider webhook); what the server answers to probes of each documented
//! operation is a status the document lists for it, and the document's examples of the
//! answers that do not depend on data are the server's answers exactly.

mod common;
use common::deploy::Deployment;
use common::*;
use serde_json::{Value, json};

const UNKNOWN_KID: &str = "KID000000000000000AAAAAAAAAAAAAA";

async fn send(method: &str, url: &str, auth: Option<&str>, body: Option<Value>) -> Reply {
    let http = http_client();
    let mut req = http.request(method.to_uppercase().parse().unwrap(), url);
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    if let Some(b) = body {
        req = req.body(b.to_string());
    }
    Reply::from_response(req.send().await.unwrap()).await
}

/// The example the document gives for `status` of `method path`.
fn example(doc: &Value, path: &str, method: &str, status: u16) -> Value {
    doc["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]
        ["example"]
        .clone()
}

#[tokio::test]
async fn the_document_matches_the_server() {
    let dep = Deployment::new(Backend::Sqlite).await;
    let (_, auth, merchant) = dep.client_and_merchant();
    let node = dep.start(&[]);
    let res = get(format!("{}/openapi.json", node.base)).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let doc: Value = res.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        paths,
        [
            "/v1/sandbox/kyc/{kid}/complete",
            "/v1/service/paycc/customer",
            "/v1/service/paycc/init/kyc",
            "/v1/service/paycc/kyc/status/{kid}",
        ]
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["basic"],
        json!({"type": "http", "scheme": "basic", "description": "clientId and clientSecret"})
    );
    let init_params = &doc["paths"]["/v1/service/paycc/init/kyc"]["post"]["parameters"];
    assert_eq!(init_params[0]["name"], "Idempotency-Key");
    assert_eq!(init_params[0]["in"], "header");
    let event = &doc["components"]["schemas"]["CallbackEvent"]["properties"];
    assert!(event["data"].is_object(), "{}", doc["webhooks"]);
    assert!(doc["webhooks"]["kycEvent"]["post"]["requestBody"].is_object());

    // Probes of every documented operation: without credentials, and with an empty or
    // partial body. Each answer's status is one the document lists for it.
    let status_path = format!("/v1/service/paycc/kyc/status/{UNKNOWN_KID}");
    let complete_path = format!("/v1/sandbox/kyc/{UNKNOWN_KID}/complete");
    // (documented path, method, URL path, credentials, body)
    type Probe<'a> = (&'a str, &'a str, String, Option<&'a str>, Option<Value>);
    let probes: Vec<Probe> = vec![
        (
            "/v1/service/paycc/init/kyc",
            "post",
            "/v1/service/paycc/init/kyc".into(),
            None,
            Some(json!({})),
        ),
        (
            "/v1/service/paycc/init/kyc",
            "post",
            "/v1/service/paycc/init/kyc".into(),
            Some(&auth),
            Some(json!({})),
        ),
        (
            "/v1/service/paycc/init/kyc",
            "post",
            "/v1/service/paycc/init/kyc".into(),
            Some(&auth),
            Some(
                json!({"pan": "x", "name": "Asha Rao", "email": "a@example.in", "mobile": "8123450001", "merchantCode": merchant}),
            ),
        ),
        (
            "/v1/service/paycc/init/kyc",
            "post",
            "/v1/service/paycc/init/kyc".into(),
            Some(&auth),
            Some(
                json!({"pan": "ABCPR1234Q", "name": "Asha Rao", "email": "a@example.in", "mobile": "8123450001", "merchantCode": merchant}),
            ),
        ),
        (
            "/v1/service/paycc/kyc/status/{kid}",
            "get",
            status_path.clone(),
            None,
            None,
        ),
        (
            "/v1/service/paycc/kyc/status/{kid}",
            "get",
            status_path.clone(),
            Some(&auth),
            None,
        ),
        (
            "/v1/service/paycc/kyc/status/{kid}",
            "post",
            status_path.clone(),
            Some(&auth),
            None,
        ),
        (
            "/v1/service/paycc/customer",
            "post",
            "/v1/service/paycc/customer".into(),
            Some(&auth),
            Some(json!({})),
        ),
        (
            "/v1/service/paycc/customer",
            "get",
            "/v1/service/paycc/customer".into(),
            Some(&auth),
            Some(json!({"merchantCode": merchant, "pan": "ABCPR9999Q"})),
        ),
        (
            "/v1/sandbox/kyc/{kid}/complete",
            "post",
            complete_path,
            Some(&auth),
            Some(json!({"outcome": "approved"})),
        ),
    ];
    for (documented, method, url, auth, body) in probes {
        let reply = send(method, &format!("{}{url}", node.base), auth, body).await;
        let listed = &doc["paths"][documented][method]["responses"][reply.status.to_string()];
        assert!(
            listed.is_object(),
            "{method} {url} answered {} which the document does not list: {}",
            reply.status,
            reply.text
        );
    }

    // The examples that depend on no data are the server's own answers.
    let no_auth = send(
        "post",
        &format!("{}/v1/service/paycc/init/kyc", node.base),
        Some(&basic("PCCNOSUCH", "nope")),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        no_auth.json,
        example(&doc, "/v1/service/paycc/init/kyc", "post", 401)
    );
    let missing = send(
        "post",
        &format!("{}/v1/service/paycc/init/kyc", node.base),
        Some(&auth),
        Some(json!({"pan": "ABCPR1234Q", "email": "a@example.in", "mobile": "8123450001", "merchantCode": merchant})),
    )
    .await;
    assert_eq!(
        missing.json,
        example(&doc, "/v1/service/paycc/init/kyc", "post", 400)
    );
    let unknown = send(
        "get",
        &format!("{}{status_path}", node.base),
        Some(&auth),
        None,
    )
    .await;
    assert_eq!(
        unknown.json,
        example(&doc, "/v1/service/paycc/kyc/status/{kid}", "get", 404)
    );
    let nobody = send(
        "post",
        &format!("{}/v1/service/paycc/customer", node.base),
        Some(&auth),
        Some(json!({"merchantCode": merchant, "pan": "ABCPR9999Q"})),
    )
    .await;
    assert_eq!(
        nobody.json,
        example(&doc, "/v1/service/paycc/customer", "post", 404)
    );

    // The reference page: every endpoint, nothing fetched from elsewhere.
    let page = get(format!("{}/docs", node.base)).await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let html = page.text().await.unwrap();
    for p in paths {
        assert!(
            html.contains(&format!("<code>{p}</code>")),
            "{p} missing from /docs"
        );
    }
    assert!(html.contains("Idempotency-Key"));
    assert!(!html.contains("<script"), "the page runs no script");
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "{html}"
    );
}
