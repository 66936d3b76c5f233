//! The sandbox journey in a real browser: headless Chromium driven through
//! chromedriver (the README's test command installs it; without it these fail unless
//! `PAYCC_TEST_SKIP=browser`). Set `PAYCC_SCREENSHOTS=docs/screenshots` to refresh the
//! README's pictures.

mod common;
use base64::prelude::*;
use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    // One browser at a time: several Chromiums on two cores make page loads slow
    // enough to trip the waits.
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

static ONE_BROWSER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// chromedriver runs in a process group of its own, with the Chromium it starts:
/// killing the group leaves no browser behind, even when a test fails half-way.
impl Drop for Browser {
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &group])
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn chromedriver() -> Option<std::path::PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("chromedriver"))
        .find(|p| p.is_file());
    on_path.or_else(|| {
        Some("/usr/bin/chromedriver".into()).filter(|p: &std::path::PathBuf| p.is_file())
    })
}

/// A fresh headless Chromium (a phone when `width` is below 500, emulated, since a
/// desktop window cannot be that narrow), or `None` when it is not installed and the
/// user opted out of browser tests (otherwise the test fails).
async fn browser(width: u32, height: u32) -> Option<Browser> {
    browser_with(width, height, &[]).await
}

async fn browser_with(width: u32, height: u32, extra_args: &[&str]) -> Option<Browser> {
    let Some(driver_bin) = chromedriver() else {
        skip_or_fail(
            Need::Browser,
            "chromedriver is not installed (the README's test command installs chromium and chromium-driver)",
        );
        return None;
    };
    let turn = ONE_BROWSER_AT_A_TIME.lock().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = Command::new(driver_bin)
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let profile = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    let mut options = json!({
            "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--no-first-run", format!("--user-data-dir={}", profile.path().display()),
                     format!("--window-size={},{}", width.max(800), height)]
    });
    for arg in extra_args {
        options["args"].as_array_mut().unwrap().push(json!(arg));
    }
    if width < 500 {
        options["mobileEmulation"] = json!({"deviceMetrics": {"width": width, "height": height, "pixelRatio": 2.0, "touch": true}});
    }
    caps.insert("goog:chromeOptions".into(), options);
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let client = loop {
        let attempt = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&url)
            .await;
        match attempt {
            Ok(c) => break c,
            // chromedriver takes a moment to listen.
            Err(_) if started.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("chromedriver session: {e}"),
        }
    };
    Some(Browser {
        client,
        driver,
        _profile: profile,
        _turn: turn,
    })
}

/// Waits for the page title to start with `expected` (navigation after a submit).
async fn wait_title(c: &Client, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let title = c.title().await.unwrap_or_default();
        if title.starts_with(expected) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "waited for title {expected:?}, page shows {title:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Types `keys` into the element (WebDriver key codes allowed, e.g. `\u{E007}` for Enter).
async fn type_into(c: &Client, css: &str, keys: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .send_keys(keys)
        .await
        .unwrap();
}

async fn submit(c: &Client) {
    click(c, "form button[type=submit]").await;
}

async fn shot(c: &Client, name: &str) {
    if let Ok(dir) = std::env::var("PAYCC_SCREENSHOTS") {
        std::fs::create_dir_all(&dir).unwrap();
        let png = c.screenshot().await.unwrap();
        std::fs::write(std::path::Path::new(&dir).join(format!("{name}.png")), png).unwrap();
    }
}

/// Basic accessibility checks on the current page: a language, one h1, a label for every
/// field, alt text, no horizontal scrolling, and text contrast of at least 4.5:1.
async fn check_page(c: &Client) {
    let report = c
        .execute(
            r#"
const problems = [];
if (!document.documentElement.lang) problems.push('no lang');
if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one h1');
for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
  if (!el.labels || el.labels.length === 0) problems.push('unlabelled ' + (el.name || el.id));
}
for (const img of document.querySelectorAll('img')) if (!img.hasAttribute('alt')) problems.push('img without alt');
if (document.documentElement.scrollWidth > window.innerWidth + 1) problems.push('horizontal scroll ' + document.documentElement.scrollWidth + '>' + window.innerWidth);
const lum = (rgb) => { const c = rgb.match(/\d+(\.\d+)?/g).slice(0, 3).map(Number).map(v => v / 255).map(v => v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4)); return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]; };
const bg = (el) => { for (let e = el; e; e = e.parentElement) { const b = getComputedStyle(e).backgroundColor; const a = b.match(/[\d.]+/g); if (a && (a.length < 4 || Number(a[3]) > 0)) return b; } return 'rgb(255,255,255)'; };
for (const el of document.querySelectorAll('p, li, label, button, a, dt, dd, h1, h2, legend, span')) {
  if (!el.offsetParent || !el.textContent.trim()) continue;
  const s = getComputedStyle(el); if (parseFloat(s.opacity) < 1) continue;
  const l1 = lum(s.color), l2 = lum(bg(el));
  const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
  if (ratio < 4.5) problems.push('contrast ' + ratio.toFixed(2) + ' on ' + el.tagName + ': ' + el.textContent.trim().slice(0, 30));
}
return problems;
"#,
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        report,
        json!([]),
        "accessibility problems on {:?}",
        c.title().await
    );
}

async fn page_text(c: &Client) -> String {
    c.find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Consent → DigiLocker sign-in → share: leaves the browser on the selfie step; the
/// README's screenshots come from the run with `screenshots` set.
async fn through_to_selfie(c: &Client, url: &str, screenshots: bool) {
    let step_shot = |name: &'static str| async move {
        if screenshots {
            shot(c, name).await;
        }
    };
    c.goto(url).await.unwrap();
    wait_title(c, "Verify your identity").await;
    check_page(c).await;
    step_shot("1-consent").await;
    click(c, "#agree").await;
    submit(c).await;
    wait_title(c, "Sign in to DigiLocker").await;
    check_page(c).await;
    assert!(page_text(c).await.contains("XXXXXX2345"));
    step_shot("2-digilocker").await;
    type_into(c, "#otp", "123456").await;
    submit(c).await;
    wait_title(c, "Share your documents").await;
    check_page(c).await;
    let text = page_text(c).await;
    assert!(
        text.contains("xxxxxxxx") && text.contains("XXXXXX234L") && text.contains("SANJAY KUMAR"),
        "{text}"
    );
    assert!(!text.contains(PAN), "the full PAN is not shown");
    step_shot("3-share").await;
    submit(c).await;
    wait_title(c, "Take a selfie").await;
    check_page(c).await;
}

#[tokio::test]
async fn approve_with_an_uploaded_selfie() {
    let Some(b) = browser(1280, 900).await else {
        return;
    };
    let c = &b.client;
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (kid, url) = app.open_link(&app.init_body()).await;

    c.goto(&url).await.unwrap();
    wait_title(c, "Verify your identity").await;
    // Looking changes nothing (link previews open links too); consenting starts it,
    // visible to the partner at once.
    assert_eq!(app.status(&kid).await.json["data"]["state"], "pending");
    through_to_selfie(c, &url, true).await;
    assert_eq!(app.status(&kid).await.json["data"]["state"], "in_progress");
    shot(c, "4-selfie").await;

    let fixture = std::fs::canonicalize("tests/fixtures/selfie.jpg").unwrap();
    c.find(Locator::Css("#photo"))
        .await
        .unwrap()
        .send_keys(fixture.to_str().unwrap())
        .await
        .unwrap();
    let face = c.find(Locator::Css("#faceMatch")).await.unwrap();
    face.clear().await.unwrap();
    face.send_keys("93").await.unwrap();
    submit(c).await;
    wait_title(c, "Verification complete").await;
    check_page(c).await;
    assert!(page_text(c).await.contains("You can close this page."));
    shot(c, "5-done").await;

    let status = app.status(&kid).await;
    assert_eq!(
        (status.json["code"].as_str(), status.json["status"].as_str()),
        (Some("0x0200"), Some("SUCCESS")),
        "{}",
        status.text
    );
    let kyc = &status.json["data"]["kyc"];
    assert_eq!(kyc["faceMatch"], 93);
    assert_eq!(
        kyc["image"],
        BASE64_STANDARD.encode(std::fs::read(&fixture).unwrap()),
        "the selfie taken is the picture returned"
    );
    let customer = app
        .customer(&json!({"merchantCode": app.merchant, "pan": PAN}))
        .await;
    assert_eq!(customer.json["data"]["digioKyc"], "1");

    // After the end the link shows the outcome, never the form again.
    c.goto(&url).await.unwrap();
    wait_title(c, "Verification complete").await;
    assert!(c.find(Locator::Css("form")).await.is_err());
}

#[tokio::test]
async fn reject_and_return_to_the_merchant() {
    let Some(b) = browser(1280, 900).await else {
        return;
    };
    let c = &b.client;
    let app = TestApp::spawn(Backend::Sqlite).await;
    // The merchant's own site, on another origin.
    let merchant = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let merchant_url = format!(
        "http://{}/kyc/return?order=77",
        merchant.local_addr().unwrap()
    );
    tokio::spawn(async move {
        let app = axum::Router::new().route(
            "/kyc/return",
            axum::routing::get(|| async {
                axum::response::Html(
                    "<!doctype html><title>Merchant</title><p>back at the shop</p>",
                )
            }),
        );
        axum::serve(merchant, app).await.unwrap();
    });
    let mut body = app.init_body();
    body["redirectUrl"] = json!(merchant_url);
    let init = app.init(&body).await;
    let (kid, url) = (
        init.json["data"]["kid"].as_str().unwrap().to_owned(),
        init.json["data"]["url"].as_str().unwrap().to_owned(),
    );
    through_to_selfie(c, &url, false).await;
    click(c, "#outcome-rejected").await;
    let face = c.find(Locator::Css("#faceMatch")).await.unwrap();
    face.clear().await.unwrap();
    face.send_keys("12").await.unwrap();
    submit(c).await;
    wait_title(c, "Merchant").await;
    let landed = c.current_url().await.unwrap();
    assert_eq!(
        landed.as_str(),
        format!("{merchant_url}&kid={kid}&status=rejected")
    );
    app.status(&kid).await.assert_exact(
        200,
        &format!(r#"{{"code":"0x0202","status":"FAILURE","message":"Kyc rejected","data":{{"kid":"{kid}","state":"rejected","reason":"Rejected in the sandbox (face match 12%)."}}}}"#),
    );
    // Coming back shows the outcome with the way back to the merchant.
    c.goto(&url).await.unwrap();
    wait_title(c, "Verification unsuccessful").await;
    let back = c
        .find(Locator::Css("a.button"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap();
    assert_eq!(
        back.as_deref(),
        Some(format!("{merchant_url}&kid={kid}&status=rejected").as_str())
    );
}

/// Opens a new link, goes to the selfie step, ticks the tester control `control` and
/// submits, waiting for the page titled `ends`; returns the kid.
async fn finish_with(c: &Client, app: &TestApp, control: &str, ends: &str) -> String {
    let (kid, url) = app.open_link(&app.init_body()).await;
    through_to_selfie(c, &url, false).await;
    click(c, control).await;
    submit(c).await;
    wait_title(c, ends).await;
    kid
}

#[tokio::test]
async fn leave_pending_for_review_with_the_generated_picture() {
    let Some(b) = browser(1280, 900).await else {
        return;
    };
    let c = &b.client;
    let app = TestApp::spawn(Backend::Sqlite).await;
    let kid = finish_with(c, &app, "#outcome-pending", "Submitted for review").await;
    let status = app.status(&kid).await;
    assert_eq!(
        (
            status.json["code"].as_str(),
            status.json["data"]["state"].as_str()
        ),
        (Some("0x0206"), Some("awaiting_approval"))
    );
    // A reviewer's verdict (here the tester helper) then approves it with the generated picture.
    let approved = app.complete(&kid, "approved", 90).await;
    assert!(
        approved.json["data"]["kyc"]["image"]
            .as_str()
            .unwrap()
            .starts_with("/9j/")
    );
}

#[tokio::test]
async fn digilocker_returning_someone_else_is_refused() {
    let Some(b) = browser(1280, 900).await else {
        return;
    };
    let c = &b.client;
    let app = TestApp::spawn(Backend::Sqlite).await;
    let kid = finish_with(c, &app, "#other-person", "Verification unsuccessful").await;
    check_page(c).await;
    let status = app.status(&kid).await;
    assert_eq!(
        (
            status.json["code"].as_str(),
            status.json["data"]["state"].as_str()
        ),
        (Some("0x0202"), Some("rejected"))
    );
    assert!(
        status.json["data"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("identity mismatch: PAN differs from the requested one"),
        "{}",
        status.text
    );
    let customer = app
        .customer(&json!({"merchantCode": app.merchant, "pan": PAN}))
        .await;
    assert_eq!(customer.json["data"]["digioKyc"], "0");
}

#[tokio::test]
async fn forged_token_shows_nothing_of_the_customer() {
    let Some(b) = browser(1280, 900).await else {
        return;
    };
    let c = &b.client;
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (kid, url) = app.open_link(&app.init_body()).await;
    // Change the token's last symbol to a different one.
    let last = if url.ends_with('X') { 'Y' } else { 'X' };
    let forged = format!("{}{last}", &url[..url.len() - 1]);
    for bad in [
        forged,
        url.replace("REF", "REX"),
        url.split('?').next().unwrap().to_string(),
    ] {
        c.goto(&bad).await.unwrap();
        wait_title(c, "This link is not valid").await;
        check_page(c).await;
        let html = c.source().await.unwrap();
        for secret in ["Test merchant", "Sanjay", "SANJAY", "2345", "<form"] {
            assert!(!html.contains(secret), "{secret} shown on a forged link");
        }
    }
    shot(c, "error-invalid-link").await;
    assert_eq!(
        app.status(&kid).await.json["data"]["state"],
        "pending",
        "a forged link opens nothing"
    );
}

#[tokio::test]
async fn an_expired_link_shows_an_expiry_page() {
    let Some(b) = browser(1280, 900).await else {
        return;
    };
    let c = &b.client;
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Options {
            kyc_ttl: Duration::from_secs(3600),
            ..Options::default()
        },
    )
    .await;
    let url = app.init(&app.init_body()).await.json["data"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    app.clock.advance(Duration::from_secs(3600));
    c.goto(&url).await.unwrap();
    wait_title(c, "This link has expired").await;
    let html = c.source().await.unwrap();
    for secret in ["Test merchant", "Sanjay", "2345", "<form"] {
        assert!(!html.contains(secret), "{secret} shown on an expired link");
    }
}

#[tokio::test]
async fn a_phone_can_leave_and_resume_by_keyboard() {
    let Some(b) = browser(360, 740).await else {
        return;
    };
    let c = &b.client;
    let app = TestApp::spawn(Backend::Sqlite).await;
    let url = app.init(&app.init_body()).await.json["data"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    c.goto(&url).await.unwrap();
    wait_title(c, "Verify your identity").await;
    let width: Value = c.execute("return window.innerWidth", vec![]).await.unwrap();
    assert!(
        width.as_u64().unwrap() <= 400,
        "a phone-sized viewport: {width}"
    );
    check_page(c).await;
    shot(c, "phone-1-consent").await;
    // Keyboard only: Space ticks the box, Enter submits.
    type_into(c, "#agree", " ").await;
    type_into(c, "form button[type=submit]", "\u{E007}").await;
    wait_title(c, "Sign in to DigiLocker").await;
    check_page(c).await;
    // A wrong code is refused on the page, with the field kept usable.
    c.execute(
        "document.getElementById('otp').removeAttribute('pattern')",
        vec![],
    )
    .await
    .unwrap();
    type_into(c, "#otp", "12ab56\u{E007}").await;
    wait_title(c, "Sign in to DigiLocker").await;
    let alert = c
        .wait()
        .for_element(Locator::Css("#form-error"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        alert,
        "Enter the 6-digit code (any six digits in the sandbox)."
    );
    shot(c, "phone-2-digilocker-error").await;
    // Leave half-way and come back: the journey resumes at the same step.
    c.goto("about:blank").await.unwrap();
    c.goto(&url).await.unwrap();
    wait_title(c, "Sign in to DigiLocker").await;
    type_into(c, "#otp", "654321\u{E007}").await;
    wait_title(c, "Share your documents").await;
    check_page(c).await;
    shot(c, "phone-3-share").await;
    submit(c).await;
    wait_title(c, "Take a selfie").await;
    check_page(c).await;
    shot(c, "phone-4-selfie").await;
}

#[tokio::test]
async fn the_camera_path_captures_a_selfie() {
    // Chromium's built-in fake camera stands in for a webcam; permission is granted.
    let args = [
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
    ];
    let Some(b) = browser_with(1280, 900, &args).await else {
        return;
    };
    let c = &b.client;
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (kid, url) = app.open_link(&app.init_body()).await;
    through_to_selfie(c, &url, false).await;
    click(c, "#camera-start").await;
    let capture = c.find(Locator::Css("#camera-capture")).await.unwrap();
    c.wait()
        .for_element(Locator::Css("#camera-capture:not([disabled])"))
        .await
        .unwrap();
    capture.click().await.unwrap();
    let status = c
        .wait()
        .for_element(Locator::Css("#selfie-preview:not([hidden])"))
        .await;
    assert!(status.is_ok(), "the captured picture is previewed");
    submit(c).await;
    wait_title(c, "Verification complete").await;
    let image = app.status(&kid).await.json["data"]["kyc"]["image"]
        .as_str()
        .unwrap()
        .to_owned();
    let jpeg = BASE64_STANDARD.decode(&image).unwrap();
    assert!(jpeg.starts_with(&[0xFF, 0xD8, 0xFF]), "a JPEG");
    let generated = BASE64_STANDARD.encode(std::fs::read("assets/sandbox-selfie.jpg").unwrap());
    assert_ne!(
        image, generated,
        "the camera picture, not the generated one"
    );
}

/// The API reference page (`/docs`) in a browser: readable (the same accessibility
/// checks as the journey) and every endpoint there.
#[tokio::test]
async fn the_api_reference_reads_in_a_browser() {
    let Some(b) = browser(1280, 900).await else {
        return;
    };
    let c = &b.client;
    let app = TestApp::spawn(Backend::Sqlite).await;
    c.goto(&format!("{}/docs", app.base)).await.unwrap();
    wait_title(c, "paycc").await;
    check_page(c).await;
    let text = page_text(c).await;
    for endpoint in [
        "POST /v1/service/paycc/init/kyc",
        "GET /v1/service/paycc/kyc/status/{kid}",
        "POST /v1/service/paycc/customer",
        "POST /v1/sandbox/kyc/{kid}/complete",
        "POST (callback) kycEvent",
    ] {
        assert!(
            text.contains(endpoint),
            "{endpoint} missing from /docs:\n{text}"
        );
    }
    assert!(text.contains("Idempotency-Key"));
    assert!(text.contains("Record fetched successful."));
    shot(c, "api-reference").await;
}
