//! Holding up under abuse (issue 17): requests from web pages, and what is refused
//! before anything is read or looked up.

mod common;
use common::*;

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

on_both_backends!(requests_from_web_pages_are_refused_before_credentials);
