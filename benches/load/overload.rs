//! Overload: requests sent open loop (each at its moment on a fixed schedule, whatever
//! the answers before it) at twice the rate paycc sustained closed loop, for init and for
//! status, against a fresh paycc with its default limits. What counts is what a partner
//! sees: how many succeed per second (goodput), how late the admitted ones are, and how
//! fast the refused ones (503 / 429) come back. Latency is measured from each request's
//! scheduled moment, so a client that falls behind is not hidden.

use super::paycc::{Credentials, Deployment, approved_kycs};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Requests the client keeps open at once: above paycc's default in-flight limit (2,048),
/// so paycc, not the client, decides what is refused.
const CLIENT_IN_FLIGHT: usize = 4096;

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Init,
    Status,
}

pub struct Overload {
    pub kind: Kind,
    pub offered_rps: f64,
    pub goodput_rps: f64,
    pub admitted_p99: Duration,
    pub refused: usize,
    pub refused_p99: Duration,
    /// Neither a success nor a refusal (connection errors, timeouts, other codes).
    pub errors: usize,
}

pub async fn run(dep: &Deployment, capacity: [(Kind, f64); 2], seconds: u64) -> Vec<Overload> {
    let creds = dep.credentials();
    let server = dep.serve(&[]);
    let (kids, _) = approved_kycs(&server.base, &creds, 1000).await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENT_IN_FLIGHT)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut runs = Vec::new();
    for (kind, sustained) in capacity {
        let rate = (sustained * 2.0).max(1.0);
        let target = Target {
            http: http.clone(),
            base: server.base.clone(),
            creds: creds.clone(),
            kids: Arc::new(kids.clone()),
        };
        runs.push(target.offer(kind, rate, Duration::from_secs(seconds)).await);
        eprintln!(
            "overload {kind:?}: offered {rate:.0}/s, goodput {:.0}/s",
            runs.last().unwrap().goodput_rps
        );
    }
    runs
}

struct Target {
    http: reqwest::Client,
    base: String,
    creds: Credentials,
    kids: Arc<Vec<String>>,
}

enum Outcome {
    Admitted(Duration),
    Refused(Duration),
    Failed,
}

impl Target {
    async fn offer(&self, kind: Kind, rate: f64, length: Duration) -> Overload {
        let room = Arc::new(Semaphore::new(CLIENT_IN_FLIGHT));
        let total = (rate * length.as_secs_f64()) as usize;
        let began = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..total {
            let due = began + Duration::from_secs_f64(i as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                tokio::time::sleep(wait).await;
            }
            let request = self.request(kind, i);
            let room = room.clone();
            tasks.spawn(async move {
                let _slot = room.acquire_owned().await.expect("never closed");
                let answered = request.send().await;
                let took = due.elapsed();
                match answered.map(|r| r.status().as_u16()) {
                    Ok(200) => Outcome::Admitted(took),
                    Ok(429 | 503) => Outcome::Refused(took),
                    _ => Outcome::Failed,
                }
            });
        }
        let (mut admitted, mut refused, mut errors) = (Vec::new(), Vec::new(), 0);
        while let Some(done) = tasks.join_next().await {
            match done.expect("a request task") {
                Outcome::Admitted(t) => admitted.push(t),
                Outcome::Refused(t) => refused.push(t),
                Outcome::Failed => errors += 1,
            }
        }
        let wall = began.elapsed().as_secs_f64();
        Overload {
            kind,
            offered_rps: rate,
            goodput_rps: admitted.len() as f64 / wall,
            admitted_p99: p99(&mut admitted),
            refused: refused.len(),
            refused_p99: p99(&mut refused),
            errors,
        }
    }

    fn request(&self, kind: Kind, i: usize) -> reqwest::RequestBuilder {
        let auth = ("Authorization", self.creds.auth.as_str());
        match kind {
            Kind::Status => {
                let kid = &self.kids[i % self.kids.len()];
                self.http
                    .get(format!("{}/v1/service/paycc/kyc/status/{kid}", self.base))
                    .header(auth.0, auth.1)
            }
            Kind::Init => {
                let body = format!(
                    r#"{{"pan":"OVLPA{:04}{}","name":"Asha Rao","email":"asha@example.in","mobile":"98{:08}","merchantCode":"{}"}}"#,
                    i % 10_000,
                    (b'Z' - (i / 10_000 % 26) as u8) as char,
                    i,
                    self.creds.merchant
                );
                self.http
                    .post(format!("{}/v1/service/paycc/init/kyc", self.base))
                    .header(auth.0, auth.1)
                    .header("Content-Type", "application/json")
                    .body(body)
            }
        }
    }
}

fn p99(times: &mut [Duration]) -> Duration {
    times.sort();
    let n = times.len();
    times
        .get(((n as f64 * 0.99) as usize).min(n.saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}
