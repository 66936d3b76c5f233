//! Overload: requests sent open loop (each at its moment on a fixed schedule, whatever
//! the answers before it) at twice the rate paycc sustains, for init and for status,
//! against a fresh paycc with its default limits. What counts is what a partner sees: how
//! many succeed per second (goodput), how late the admitted ones are, and how fast the
//! refused ones (503 / 429) come back. Latency is measured from each request's scheduled
//! moment, so a client that falls behind is not hidden.
//!
//! The generator must not take the CPU paycc needs, or goodput measures the generator:
//! paycc is pinned to one core and this process to the other, capacity is measured closed
//! loop in that same arrangement, and requests go over raw HTTP/1.1 keep-alive
//! connections (a few µs each; reqwest cost more than a status read).

use super::paycc::{Credentials, Deployment, approved_kycs, cpu_time};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Connections of the open-loop client: twice paycc's default in-flight limit (2,048),
/// so paycc, not the client, decides what is refused.
const OPEN_LOOP_CONNECTIONS: usize = 4096;
/// Connections of the closed-loop capacity run.
const CLOSED_LOOP_CONNECTIONS: usize = 64;

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Init,
    Status,
}

pub struct Overload {
    pub kind: Kind,
    /// Successful answers per second closed loop, pinned as in the overload run.
    pub capacity_rps: f64,
    pub offered_rps: f64,
    pub goodput_rps: f64,
    pub admitted_p99: Duration,
    pub refused: usize,
    pub refused_p99: Duration,
    /// Share of its core the generator used while offering: near 1, it was the limit.
    pub generator_busy: f64,
    /// Neither a success nor a refusal (connection errors, other codes).
    pub errors: usize,
}

pub async fn run(dep: &Deployment, seconds: u64, max_in_flight: Option<u32>) -> Vec<Overload> {
    let creds = dep.credentials();
    let limit = max_in_flight.map(|n| ("PAYCC_MAX_IN_FLIGHT", n.to_string()));
    let server = dep.serve(limit.as_slice());
    let kids = approved_kycs(&server.base, &creds, 1000).await.kids;
    let target = Arc::new(Target {
        addr: server.base.trim_start_matches("http://").to_owned(),
        creds,
        kids,
    });
    let length = Duration::from_secs(seconds);
    pin(server.pid(), "0");
    pin(std::process::id(), "1");
    let mut runs = Vec::new();
    // Numbers new customers from here, so that no init repeats an earlier one.
    let mut customers = 0;
    target
        .closed_loop(Kind::Init, Duration::from_secs(2), &mut customers)
        .await;
    for kind in [Kind::Init, Kind::Status] {
        let capacity = target.closed_loop(kind, length, &mut customers).await;
        let rate = capacity * 2.0;
        let run = target
            .open_loop(kind, rate, length, &mut customers)
            .await
            .summary(kind, capacity, rate);
        eprintln!(
            "overload {kind:?}: capacity {capacity:.0}/s, offered {rate:.0}/s, goodput {:.0}/s, \
             refused {} (p99 {:?}), errors {}, generator busy {:.0}%",
            run.goodput_rps,
            run.refused,
            run.refused_p99,
            run.errors,
            run.generator_busy * 100.0
        );
        runs.push(run);
    }
    pin(std::process::id(), "0-1");
    runs
}

/// Confines every thread of `pid` (and those it starts later) to `cpus`.
fn pin(pid: u32, cpus: &str) {
    let ok = Command::new("taskset")
        .args(["--all-tasks", "--cpu-list", "--pid", cpus, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "taskset could not pin {pid} to {cpus}");
}

struct Target {
    addr: String,
    creds: Credentials,
    kids: Vec<String>,
}

enum Outcome {
    Admitted(Duration),
    Refused(Duration),
    Failed,
}

struct OpenLoopRun {
    goodput: f64,
    generator_busy: f64,
    admitted: Vec<Duration>,
    refused: Vec<Duration>,
    errors: usize,
}

impl OpenLoopRun {
    fn summary(mut self, kind: Kind, capacity_rps: f64, offered_rps: f64) -> Overload {
        Overload {
            kind,
            capacity_rps,
            offered_rps,
            goodput_rps: self.goodput,
            generator_busy: self.generator_busy,
            admitted_p99: p99(&mut self.admitted),
            refused: self.refused.len(),
            refused_p99: p99(&mut self.refused),
            errors: self.errors,
        }
    }
}

impl Target {
    /// Successful answers per second with `CLOSED_LOOP_CONNECTIONS` each sending its next
    /// request when the last is answered.
    async fn closed_loop(self: &Arc<Self>, kind: Kind, length: Duration, next: &mut usize) -> f64 {
        let began = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..CLOSED_LOOP_CONNECTIONS {
            let target = self.clone();
            // Each connection numbers its customers in its own range of a million.
            let first = *next + c * 1_000_000;
            tasks.spawn(async move {
                let mut wire = Wire::open(&target.addr).await.expect("connects");
                let mut ok = 0usize;
                for i in first.. {
                    if began.elapsed() >= length {
                        break;
                    }
                    if let Ok(200) = wire.exchange(&target.request(kind, i), &target.addr).await {
                        ok += 1;
                    }
                }
                ok
            });
        }
        let ok: usize = tasks.join_all().await.into_iter().sum();
        *next += CLOSED_LOOP_CONNECTIONS * 1_000_000;
        ok as f64 / began.elapsed().as_secs_f64()
    }

    /// Sends `rate` requests a second for `length`, each on an idle connection at its
    /// scheduled moment (or as soon as one is idle, which the latency then shows).
    async fn open_loop(
        self: &Arc<Self>,
        kind: Kind,
        rate: f64,
        length: Duration,
        next: &mut usize,
    ) -> OpenLoopRun {
        let (idle_tx, mut idle_rx) = mpsc::unbounded_channel();
        for _ in 0..OPEN_LOOP_CONNECTIONS {
            idle_tx
                .send(Wire::open(&self.addr).await.expect("connects"))
                .unwrap();
        }
        let total = (rate * length.as_secs_f64()) as usize;
        let began = Instant::now();
        let cpu_before = cpu_time(std::process::id());
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..total {
            let due = began + Duration::from_secs_f64(i as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
            let mut wire = idle_rx.recv().await.expect("the pool stays open");
            let request = self.request(kind, *next + i);
            let (target, idle) = (self.clone(), idle_tx.clone());
            tasks.spawn(async move {
                let answered = wire.exchange(&request, &target.addr).await;
                let took = due.elapsed();
                let _ = idle.send(wire);
                match answered {
                    Ok(200) => Outcome::Admitted(took),
                    Ok(429 | 503) => Outcome::Refused(took),
                    _ => Outcome::Failed,
                }
            });
        }
        *next += total;
        let (mut admitted, mut refused, mut errors) = (Vec::new(), Vec::new(), 0);
        while let Some(done) = tasks.join_next().await {
            match done.expect("a request task") {
                Outcome::Admitted(t) => admitted.push(t),
                Outcome::Refused(t) => refused.push(t),
                Outcome::Failed => errors += 1,
            }
        }
        let wall = began.elapsed();
        OpenLoopRun {
            goodput: admitted.len() as f64 / wall.as_secs_f64(),
            generator_busy: (cpu_time(std::process::id()) - cpu_before).as_secs_f64()
                / wall.as_secs_f64(),
            admitted,
            refused,
            errors,
        }
    }

    /// Request `i` of `kind`, as bytes on the wire. Every init is a new customer.
    fn request(&self, kind: Kind, i: usize) -> Vec<u8> {
        let auth = &self.creds.auth;
        match kind {
            Kind::Status => {
                let kid = &self.kids[i % self.kids.len()];
                format!(
                    "GET /v1/service/paycc/kyc/status/{kid} HTTP/1.1\r\nHost: paycc\r\n\
                     Authorization: {auth}\r\n\r\n"
                )
                .into_bytes()
            }
            Kind::Init => {
                let letter = |n: usize| (b'A' + (n % 26) as u8) as char;
                let pan = format!(
                    "O{}{}P{}{:04}{}",
                    letter(i / 6_760_000),
                    letter(i / 260_000),
                    letter(i / 10_000),
                    i % 10_000,
                    letter(i / 175_760_000)
                );
                let body = format!(
                    r#"{{"pan":"{pan}","name":"Asha Rao","email":"asha@example.in","mobile":"9{:09}","merchantCode":"{}"}}"#,
                    i % 1_000_000_000,
                    self.creds.merchant
                );
                format!(
                    "POST /v1/service/paycc/init/kyc HTTP/1.1\r\nHost: paycc\r\n\
                     Authorization: {auth}\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .into_bytes()
            }
        }
    }
}

/// One keep-alive HTTP/1.1 connection that sends a request and reads its answer, nothing
/// more: paycc's answers always carry a `Content-Length`.
struct Wire {
    stream: BufReader<TcpStream>,
    line: String,
    body: Vec<u8>,
}

impl Wire {
    async fn open(addr: &str) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream: BufReader::new(stream),
            line: String::new(),
            body: Vec::new(),
        })
    }

    /// Sends `request` and returns the answer's status. A connection the server closed
    /// (or that failed) is replaced by a new one for the next request.
    async fn exchange(&mut self, request: &[u8], addr: &str) -> std::io::Result<u16> {
        let answered = self.send(request).await;
        if !matches!(answered, Ok((_, true))) {
            *self = Self::open(addr).await?;
        }
        answered.map(|(status, _)| status)
    }

    /// The status, and whether the connection may carry another request.
    async fn send(&mut self, request: &[u8]) -> std::io::Result<(u16, bool)> {
        let bad =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
        self.stream.get_mut().write_all(request).await?;
        self.read_line().await?;
        let status = self
            .line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("no status line"))?;
        let (mut length, mut keep_alive) = (None, true);
        loop {
            self.read_line().await?;
            let Some((name, value)) = self.line.trim_end().split_once(':') else {
                break;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("connection") {
                keep_alive = !value.eq_ignore_ascii_case("close");
            }
        }
        let length = length.ok_or_else(|| bad("no Content-Length"))?;
        self.body.resize(length, 0);
        self.stream.read_exact(&mut self.body).await?;
        Ok((status, keep_alive))
    }

    async fn read_line(&mut self) -> std::io::Result<()> {
        self.line.clear();
        if self.stream.read_line(&mut self.line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
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
