//! The journey's protections, checked over plain HTTP: headers, the link token on every
//! post, cross-site form protection, and refused uploads.

mod common;
use common::*;
use paycc::store::Switch;
use reqwest::multipart::{Form, Part};

struct Journey {
    http: reqwest::Client,
    url: String,
    base: String,
    cookie: String,
    csrf: String,
}

/// Opens the link as a browser would, keeping the form-token cookie and field.
async fn open(app: &TestApp) -> Journey {
    open_for(app, PAN).await
}

/// `open` for a customer with this PAN.
async fn open_for(app: &TestApp, pan: &str) -> Journey {
    let mut body = app.init_body();
    body["pan"] = serde_json::json!(pan);
    let url = app.init(&body).await.json["data"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let http = common::http_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = http.get(&url).send().await.unwrap();
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = res.text().await.unwrap();
    let csrf = html
        .split(r#"name="csrf" value=""#)
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    Journey {
        http,
        base: app.base.clone(),
        url,
        cookie,
        csrf,
    }
}

impl Journey {
    fn post_url(&self, step: &str) -> String {
        let (path, query) = self.url.split_once('?').unwrap();
        format!("{path}/{step}?{query}")
    }

    async fn post(
        &self,
        step: &str,
        form: Form,
        cookie: Option<&str>,
        extra: Option<(&str, &str)>,
    ) -> reqwest::Response {
        let mut req = self.http.post(self.post_url(step)).multipart(form);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        if let Some((k, v)) = extra {
            req = req.header(k, v);
        }
        req.send().await.unwrap()
    }

    /// The consent form, ticked, with the cookie.
    async fn consent(&self) -> reqwest::Response {
        let form = self.form().text("agree", "on");
        self.post("consent", form, Some(&self.cookie), None).await
    }

    fn form(&self) -> Form {
        Form::new().text("csrf", self.csrf.clone())
    }

    async fn title(&self) -> String {
        let html = self
            .http
            .get(&self.url)
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        html.split("<title>")
            .nth(1)
            .unwrap()
            .split(" · ")
            .next()
            .unwrap()
            .to_owned()
    }
}

async fn pages_send_strict_security_headers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let j = open(&app).await;
    for url in [
        j.url.clone(),
        format!(
            "{}/gateway/login/KID000000000000000AAAAAAAAAAAAAA/REF1?token_id=x",
            j.base
        ),
    ] {
        let res = j.http.get(&url).send().await.unwrap();
        let h = res.headers();
        assert_eq!(h["content-type"], "text/html; charset=utf-8");
        assert_eq!(
            h["content-security-policy"],
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        );
        assert_eq!(h["cache-control"], "no-store");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["x-content-type-options"], "nosniff");
        let html = res.text().await.unwrap();
        assert!(
            !html.contains("<script>") && !html.contains("style="),
            "no inline script or style"
        );
    }
    assert!(j.cookie.starts_with("paycc_journey="));
    let res = j.http.get(&j.url).send().await.unwrap();
    let set = res.headers()["set-cookie"].to_str().unwrap();
    assert!(
        set.ends_with("; Path=/gateway; HttpOnly; SameSite=Strict"),
        "{set}"
    );
    let js = j
        .http
        .get(format!("{}/gateway/assets/journey.js", j.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
}

async fn posts_need_the_cookie_bound_form_token_and_a_same_site_origin(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let j = open(&app).await;
    let agree = || j.form().text("agree", "yes");
    let forbidden = [
        j.post("consent", agree(), None, None).await,
        j.post(
            "consent",
            Form::new()
                .text("csrf", "00".repeat(32))
                .text("agree", "yes"),
            Some(&j.cookie),
            None,
        )
        .await,
        j.post(
            "consent",
            agree(),
            Some("paycc_journey=ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ"),
            None,
        )
        .await,
        j.post(
            "consent",
            agree(),
            Some(&j.cookie),
            Some(("sec-fetch-site", "cross-site")),
        )
        .await,
    ];
    for res in forbidden {
        assert_eq!(res.status(), 403);
        assert!(res.text().await.unwrap().contains("This form has expired"));
    }
    assert_eq!(j.title().await, "Verify your identity", "nothing advanced");
    let ok = j
        .post(
            "consent",
            agree(),
            Some(&j.cookie),
            Some(("sec-fetch-site", "same-origin")),
        )
        .await;
    assert_eq!(ok.status(), 303);
    assert_eq!(ok.headers()["location"], j.url.trim_start_matches(&j.base));
    assert_eq!(j.title().await, "Sign in to DigiLocker");
}

async fn every_post_checks_the_link_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let j = open(&app).await;
    let forged = j
        .post_url("consent")
        .replace("token_id=GWT", "token_id=GWX");
    let res = j
        .http
        .post(forged)
        .header("cookie", &j.cookie)
        .multipart(j.form().text("agree", "yes"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let html = res.text().await.unwrap();
    assert!(html.contains("This link is not valid") && !html.contains("Test merchant"));
    assert_eq!(j.title().await, "Verify your identity");
}

/// A selfie post is answered before its upload is read when its link, its cookie or
/// its form token (the form's first field) is wrong: the upload is still owed when the
/// refusal comes.
async fn uploads_are_read_only_after_the_checks(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let j = open(&app).await;
    for step in ["consent", "digilocker", "share"] {
        let form = match step {
            "consent" => j.form().text("agree", "on"),
            "digilocker" => j.form().text("otp", "123456"),
            _ => j.form(),
        };
        assert_eq!(
            j.post(step, form, Some(&j.cookie), None).await.status(),
            303
        );
    }
    let selfie = j.post_url("selfie");
    let path = &selfie[j.base.len()..];
    let forged_link = path.replace("token_id=GWT", "token_id=GWX");
    let part = |name: &str, value: &str| {
        format!("--b\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
    };
    let photo_head = "--b\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"me.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n\u{ff}\u{d8}\u{ff}";
    let cookie = format!("Cookie: {}\r\n", j.cookie);
    for (what, path, cookie, body_start, status, says) in [
        (
            "a forged link",
            forged_link.as_str(),
            cookie.as_str(),
            part("csrf", &j.csrf),
            404,
            "This link is not valid",
        ),
        (
            "no cookie",
            path,
            "",
            part("csrf", &j.csrf),
            403,
            "This form has expired",
        ),
        (
            "a wrong form token",
            path,
            cookie.as_str(),
            part("csrf", "00"),
            403,
            "This form has expired",
        ),
        (
            "the photo before the form token",
            path,
            cookie.as_str(),
            String::new(),
            403,
            "This form has expired",
        ),
    ] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: paycc\r\n{cookie}Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 2000000\r\n\r\n"
        );
        let mut conn = raw::Stalled::send(
            &app.base,
            format!("{head}{body_start}{photo_head}").as_bytes(),
        )
        .await;
        let answer = conn
            .answer(std::time::Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("{what}: no answer while the upload is owed"));
        assert_eq!(raw::status_of(&answer), status, "{what}: {answer}");
        assert!(raw::body_of(&answer).contains(says), "{what}: {answer}");
    }
    assert_eq!(j.title().await, "Take a selfie", "nothing moved");
}

async fn stale_forms_do_not_skip_steps(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let j = open(&app).await;
    let res = j
        .post(
            "selfie",
            j.form().text("outcome", "approved").text("faceMatch", "99"),
            Some(&j.cookie),
            None,
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(j.title().await, "Verify your identity");
    // Not even started: only the consent moves a request to in_progress.
    let kid = j.url.split('/').nth(5).unwrap();
    assert_eq!(app.status(kid).await.json["data"]["state"], "pending");
}

async fn refused_uploads_keep_the_customer_on_the_selfie_step(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let j = open(&app).await;
    let cookie = Some(j.cookie.as_str());
    assert_eq!(
        j.post("consent", j.form().text("agree", "yes"), cookie, None)
            .await
            .status(),
        303
    );
    let bad_otp = j
        .post("digilocker", j.form().text("otp", "12345"), cookie, None)
        .await;
    assert_eq!(bad_otp.status(), 422);
    assert!(
        bad_otp
            .text()
            .await
            .unwrap()
            .contains("Enter the 6-digit code")
    );
    assert_eq!(
        j.post("digilocker", j.form().text("otp", "123456"), cookie, None)
            .await
            .status(),
        303
    );
    assert_eq!(j.post("share", j.form(), cookie, None).await.status(), 303);
    let selfie = |photo: Vec<u8>| {
        j.form()
            .text("outcome", "approved")
            .text("faceMatch", "90")
            .part(
                "photo",
                Part::bytes(photo)
                    .file_name("me.jpg")
                    .mime_str("image/jpeg")
                    .unwrap(),
            )
    };
    let png = j
        .post(
            "selfie",
            selfie(b"\x89PNG\r\n\x1a\nnot a jpeg".to_vec()),
            cookie,
            None,
        )
        .await;
    assert_eq!(png.status(), 422);
    assert!(
        png.text()
            .await
            .unwrap()
            .contains("The photo must be a JPEG picture of at most 2 MB.")
    );
    let mut huge = vec![0xFF, 0xD8, 0xFF];
    huge.resize(3 * 1024 * 1024, 0);
    let too_big = j.post("selfie", selfie(huge), cookie, None).await;
    assert_eq!(too_big.status(), 413);
    let bad_score = j
        .post(
            "selfie",
            j.form()
                .text("outcome", "approved")
                .text("faceMatch", "101"),
            cookie,
            None,
        )
        .await;
    assert_eq!(bad_score.status(), 422);
    assert_eq!(j.title().await, "Take a selfie");
    let kid = j.url.split('/').nth(5).unwrap();
    assert_eq!(app.status(kid).await.json["data"]["state"], "in_progress");
}

async fn looking_changes_nothing_and_consent_starts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // `open` has fetched the page once; a link-preview bot fetches it again.
    let j = open(&app).await;
    let kid = j.url.split('/').nth(5).unwrap().to_owned();
    assert_eq!(j.title().await, "Verify your identity");
    app.status(&kid).await.assert_exact(
        200,
        &format!(
            r#"{{"code":"0x0206","status":"PENDING","message":"Kyc is pending","data":{{"kid":"{kid}","state":"pending"}}}}"#
        ),
    );
    let res = j.consent().await;
    assert_eq!(res.status(), 303);
    assert_eq!(j.title().await, "Sign in to DigiLocker");
    assert_eq!(app.status(&kid).await.json["data"]["state"], "in_progress");
}

/// Walks a journey to the selfie step and finishes it with `fields`.
async fn finish_journey(j: &Journey, fields: &[(&'static str, &'static str)]) {
    let cookie = Some(j.cookie.as_str());
    for (step, form) in [
        ("consent", j.form().text("agree", "on")),
        ("digilocker", j.form().text("otp", "123456")),
        ("share", j.form()),
    ] {
        assert_eq!(
            j.post(step, form, cookie, None).await.status(),
            303,
            "{step}"
        );
    }
    let mut form = j.form();
    for (k, v) in fields {
        form = form.text(*k, *v);
    }
    assert_eq!(j.post("selfie", form, cookie, None).await.status(), 303);
}

async fn the_tester_can_make_digilocker_return_someone_else(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let j = open(&app).await;
    let kid = j.url.split('/').nth(5).unwrap().to_owned();
    finish_journey(
        &j,
        &[
            ("outcome", "approved"),
            ("faceMatch", "96"),
            ("otherPerson", "1"),
        ],
    )
    .await;
    let r = app.status(&kid).await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (200, Some("0x0202")),
        "{}",
        r.text
    );
    let reason = r.json["data"]["reason"].as_str().unwrap();
    assert!(
        reason
            .starts_with("identity mismatch: PAN differs from the requested one; name similarity "),
        "{reason}"
    );
    assert_eq!(j.title().await, "Verification unsuccessful");
    // Without the box, the same journey approves the requested person.
    let j = open_for(&app, "ABCPK7777Q").await;
    let kid = j.url.split('/').nth(5).unwrap().to_owned();
    finish_journey(&j, &[("outcome", "approved"), ("faceMatch", "96")]).await;
    let r = app.status(&kid).await;
    assert_eq!(r.json["code"], "0x0200", "{}", r.text);
    assert_eq!(
        (
            r.json["data"]["kyc"]["panMatch"].as_bool(),
            r.json["data"]["kyc"]["nameMatch"].as_u64()
        ),
        (Some(true), Some(100))
    );
}

async fn a_deactivated_merchants_links_open_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let j = open(&app).await;
    app.service
        .admin
        .set_merchant_active(&app.merchant, Switch::Off)
        .await
        .unwrap();
    let res = j.http.get(&j.url).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let html = res.text().await.unwrap();
    assert!(html.contains("This link is not valid") && !html.contains("Test merchant"));
    let res = j.consent().await;
    assert_eq!(res.status(), 404);
    app.service
        .admin
        .set_merchant_active(&app.merchant, Switch::On)
        .await
        .unwrap();
    assert_eq!(j.title().await, "Verify your identity");
}

on_both_backends!(
    looking_changes_nothing_and_consent_starts,
    the_tester_can_make_digilocker_return_someone_else,
    a_deactivated_merchants_links_open_nothing,
    pages_send_strict_security_headers,
    posts_need_the_cookie_bound_form_token_and_a_same_site_origin,
    every_post_checks_the_link_token,
    stale_forms_do_not_skip_steps,
    uploads_are_read_only_after_the_checks,
    refused_uploads_keep_the_customer_on_the_selfie_step,
);
