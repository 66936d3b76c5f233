//! paycc in front of a slow provider: a Digio-compatible fake on loopback that answers
//! each create after 100 ms, and 2,000 inits sent at once. What paycc adds on top of the
//! provider's time is its own cost under that load.

use super::fake_digio::{self, FakeDigio, Mode};
use super::paycc::Deployment;
use std::time::{Duration, Instant};

pub const PROVIDER_DELAY: Duration = Duration::from_millis(100);

pub struct SlowRun {
    pub in_flight: usize,
    pub errors: usize,
    pub added_p50: Duration,
    pub added_p99: Duration,
    pub wall: Duration,
}

pub async fn run(dep: &Deployment, in_flight: usize) -> SlowRun {
    let fake = FakeDigio::start().await;
    fake.create_mode(Mode::Slow(PROVIDER_DELAY));
    let settings = [
        ("PAYCC_PROVIDER", "digio".to_owned()),
        ("PAYCC_DIGIO_API_URL", fake.url.clone()),
        (
            "PAYCC_DIGIO_GATEWAY_URL",
            "https://gateway.digio.test".to_owned(),
        ),
        ("PAYCC_DIGIO_CLIENT_ID", fake_digio::CLIENT_ID.to_owned()),
        (
            "PAYCC_DIGIO_CLIENT_SECRET",
            fake_digio::CLIENT_SECRET.to_owned(),
        ),
        ("PAYCC_DIGIO_TEMPLATE", fake_digio::TEMPLATE.to_owned()),
        (
            "PAYCC_DIGIO_WEBHOOK_SECRET",
            fake_digio::WEBHOOK_SECRET.to_owned(),
        ),
    ];
    let creds = dep.credentials();
    let server = dep.serve(&settings);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(in_flight)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let url = format!("{}/v1/service/paycc/init/kyc", server.base);
    let start = tokio::sync::Barrier::new(in_flight);
    let start = std::sync::Arc::new(start);
    let began = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..in_flight {
        let (http, url, creds_auth, merchant, start) = (
            http.clone(),
            url.clone(),
            creds.auth.clone(),
            creds.merchant.clone(),
            start.clone(),
        );
        tasks.spawn(async move {
            let body = format!(
                r#"{{"pan":"SLWPA{:04}Z","name":"Asha Rao","email":"asha@example.in","mobile":"97{:08}","merchantCode":"{merchant}"}}"#,
                i, i
            );
            start.wait().await;
            let t = Instant::now();
            let reply = http
                .post(&url)
                .header("Authorization", creds_auth)
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await;
            let ok = match reply {
                Ok(r) => r.status().is_success() && r.text().await.is_ok_and(|t| t.contains(r#""code":"0x0200""#)),
                Err(_) => false,
            };
            (ok, t.elapsed())
        });
    }
    let mut added = Vec::with_capacity(in_flight);
    let mut errors = 0;
    while let Some(done) = tasks.join_next().await {
        let (ok, took) = done.expect("a request task");
        if ok {
            added.push(took.saturating_sub(PROVIDER_DELAY));
        } else {
            errors += 1;
        }
    }
    let wall = began.elapsed();
    added.sort();
    let pct = |p: f64| {
        added
            .get(((added.len() as f64 * p) as usize).min(added.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    assert_eq!(
        fake.creates().len(),
        in_flight,
        "one provider create per init"
    );
    SlowRun {
        in_flight,
        errors,
        added_p50: pct(0.50),
        added_p99: pct(0.99),
        wall,
    }
}
