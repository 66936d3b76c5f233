//! paycc in front of a slow provider: a Digio-compatible fake on loopback that answers
//! each create after 100 ms. 2,000 inits sent at the same instant show that none is lost
//! or refused; the same number sent at a steady 500/s shows what paycc itself adds to
//! the provider's time when it is not waiting for a free core.

use super::fake_digio::{self, FakeDigio, Mode};
use super::paycc::Deployment;
use std::time::{Duration, Instant};

pub const PROVIDER_DELAY: Duration = Duration::from_millis(100);

/// Inits per second in the paced phase: far below what paycc sustains, so the added
/// latency measured there is paycc's own work rather than waiting for a core.
pub const PACED_RATE: u32 = 500;

/// One phase: `sent` inits, each a new customer.
pub struct Phase {
    pub sent: usize,
    pub errors: usize,
    pub added_p50: Duration,
    pub added_p99: Duration,
    /// From the first request sent to the last answer.
    pub wall: Duration,
    /// paycc's CPU time (user + system) per init.
    pub cpu_per_init: Duration,
}

pub struct SlowRun {
    /// All sent at the same instant.
    pub burst: Phase,
    /// Sent at `PACED_RATE` per second.
    pub paced: Phase,
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
    let inits = Inits {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(in_flight)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        url: format!("{}/v1/service/paycc/init/kyc", server.base),
        auth: creds.auth.clone(),
        merchant: creds.merchant.clone(),
    };
    let cpu = || server.cpu_time();

    let before = cpu();
    let burst = inits.send(0, in_flight, None).await;
    let burst = burst.phase(cpu() - before);

    let before = cpu();
    let pace = Duration::from_secs(1) / PACED_RATE;
    let paced = inits.send(in_flight, in_flight, Some(pace)).await;
    let paced = paced.phase(cpu() - before);

    assert_eq!(
        fake.creates().len(),
        2 * in_flight,
        "one provider create per init"
    );
    SlowRun { burst, paced }
}

struct Inits {
    http: reqwest::Client,
    url: String,
    auth: String,
    merchant: String,
}

/// When one init of a phase is sent.
enum Start {
    /// Its moment in a steady pace.
    At(Instant),
    /// With all the others, once every one is ready.
    Together(std::sync::Arc<tokio::sync::Barrier>),
}

struct Sent {
    added: Vec<Duration>,
    errors: usize,
    wall: Duration,
}

impl Inits {
    /// Sends `count` inits numbered from `first`: all at once when `pace` is `None`,
    /// otherwise one every `pace` (open loop: a slow answer does not delay the next).
    async fn send(&self, first: usize, count: usize, pace: Option<Duration>) -> Sent {
        let together = std::sync::Arc::new(tokio::sync::Barrier::new(count));
        let began = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for i in first..first + count {
            let (http, url, auth) = (self.http.clone(), self.url.clone(), self.auth.clone());
            let start = match pace {
                Some(p) => Start::At(began + p * (i - first) as u32),
                None => Start::Together(together.clone()),
            };
            let body = format!(
                r#"{{"pan":"SLWPA{:04}{}","name":"Asha Rao","email":"asha@example.in","mobile":"97{:08}","merchantCode":"{}"}}"#,
                i % 10_000,
                (b'Z' - (i / 10_000) as u8) as char,
                i,
                self.merchant
            );
            tasks.spawn(async move {
                match start {
                    Start::At(at) => tokio::time::sleep_until(at.into()).await,
                    Start::Together(barrier) => {
                        barrier.wait().await;
                    }
                }
                let t = Instant::now();
                let reply = http
                    .post(&url)
                    .header("Authorization", auth)
                    .header("Content-Type", "application/json")
                    .body(body)
                    .send()
                    .await;
                let ok = match reply {
                    Ok(r) => {
                        r.status().is_success()
                            && r.text()
                                .await
                                .is_ok_and(|t| t.contains(r#""code":"0x0200""#))
                    }
                    Err(_) => false,
                };
                (ok, t.elapsed())
            });
        }
        let mut added = Vec::with_capacity(count);
        let mut errors = 0;
        while let Some(done) = tasks.join_next().await {
            let (ok, took) = done.expect("a request task");
            if ok {
                added.push(took.saturating_sub(PROVIDER_DELAY));
            } else {
                errors += 1;
            }
        }
        Sent {
            added,
            errors,
            wall: began.elapsed(),
        }
    }
}

impl Sent {
    fn phase(mut self, cpu: Duration) -> Phase {
        self.added.sort();
        let pct = |p: f64| {
            let n = self.added.len();
            self.added
                .get(((n as f64 * p) as usize).min(n.saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        let sent = self.added.len() + self.errors;
        Phase {
            sent,
            errors: self.errors,
            added_p50: pct(0.50),
            added_p99: pct(0.99),
            wall: self.wall,
            cpu_per_init: cpu / sent.max(1) as u32,
        }
    }
}
