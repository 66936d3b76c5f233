//! paycc as the benchmark runs it: the release binary, a fresh database, a client and a
//! merchant made with the CLI, and its peak memory read from the kernel.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_paycc");

/// A database and the settings every paycc command of one run shares.
pub struct Deployment {
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
    /// The paycc binary run: this build's, or another one to compare with.
    pub bin: PathBuf,
}

#[derive(Clone)]
pub struct Credentials {
    pub auth: String,
    pub merchant: String,
}

impl Deployment {
    fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.current_dir(&self.dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PAYCC_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    fn cli_json(&self, args: &[&str]) -> Value {
        let out = self.command().args(args).output().expect("paycc runs");
        assert!(
            out.status.success(),
            "paycc {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("paycc printed JSON")
    }

    pub fn credentials(&self) -> Credentials {
        std::fs::create_dir_all(&self.dir).expect("the deployment's folder");
        let client = self.cli_json(&["client", "create", "--name", "Bench partner", "--json"]);
        let id = client["clientId"].as_str().unwrap();
        let secret = client["clientSecret"].as_str().unwrap();
        // The benchmark measures paycc, not its rate limit.
        self.cli_json(&["client", "set-limit", id, "--per-second", "0", "--json"]);
        let merchant = self.cli_json(&[
            "merchant",
            "create",
            "--client",
            id,
            "--name",
            "Bench store",
            "--json",
        ]);
        Credentials {
            auth: format!("Basic {}", base64_encode(&format!("{id}:{secret}"))),
            merchant: merchant["merchantCode"].as_str().unwrap().to_owned(),
        }
    }

    /// `paycc serve` on a free port, with `extra` settings.
    pub fn serve(&self, extra: &[(&str, String)]) -> Server {
        let mut cmd = self.command();
        cmd.arg("serve")
            .env("PAYCC_LISTEN", "127.0.0.1:0")
            .env("PAYCC_OPS_LISTEN", "127.0.0.1:0")
            .envs(extra.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("paycc starts");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let base = loop {
            line.clear();
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "paycc exited before listening"
            );
            if let Some(addr) = line.trim().strip_prefix("paycc listening on ") {
                break addr.to_owned();
            }
        };
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Server { child, base }
    }
}

pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The most memory the process has held (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        peak_rss_kib(self.child.id())
    }

    /// CPU time paycc has used so far, user and system.
    pub fn cpu_time(&self) -> Duration {
        cpu_time(self.child.id())
    }
}

/// CPU time (user and system) process `pid` has used so far.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name in parentheses: utime and stime are the 12th and 13th
    // fields, in the kernel's USER_HZ ticks (100 per second on Linux).
    let ticks: u64 = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|t| t.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn base64_encode(s: &str) -> String {
    use base64::prelude::*;
    BASE64_STANDARD.encode(s)
}

/// A fresh SQLite deployment in `dir`.
pub fn sqlite(dir: &Path) -> Deployment {
    Deployment {
        dir: dir.to_owned(),
        env: vec![(
            "PAYCC_DATABASE_URL".into(),
            format!("sqlite://{}", dir.join("paycc.db").display()),
        )],
        bin: BIN.into(),
    }
}

/// A deployment on a fresh PostgreSQL database `url` names.
pub fn postgres(dir: &Path, url: &str) -> Deployment {
    let (data, hash) = paycc::crypto::Keyring::generate_dev();
    Deployment {
        dir: dir.to_owned(),
        env: vec![
            ("PAYCC_DATABASE_URL".into(), url.to_owned()),
            ("PAYCC_ENCRYPTION_KEY".into(), data),
            ("PAYCC_HASH_KEY".into(), hash),
        ],
        bin: BIN.into(),
    }
}

pub fn install_tls() {
    paycc::crypto::install_tls_provider();
}

/// What making the approved KYCs showed: their kids, the init and status reply sizes,
/// and how fast the sandbox completed them.
pub struct Approved {
    pub kids: Vec<String>,
    pub sizes: (usize, usize),
    /// Sandbox completions per second, `IN_FLIGHT` at a time: the hot write the
    /// wrk workloads leave out (issue 20 asks whether it matters).
    pub completions_per_s: f64,
}

/// Requests the setup keeps in flight, as many as wrk's connections.
pub const IN_FLIGHT: usize = 64;

/// `n` inits through the API, then the sandbox's completion of each as approved, each
/// phase with `IN_FLIGHT` requests at a time; the second is timed.
pub async fn approved_kycs(base: &str, creds: &Credentials, n: usize) -> Approved {
    let http = reqwest::Client::new();
    let inits = in_flight(0..n, |i| {
        let (http, auth) = (http.clone(), creds.auth.clone());
        let url = format!("{base}/v1/service/paycc/init/kyc");
        let body = format!(
            r#"{{"pan":"ZZZPZ{i:04}Z","name":"Asha Rao","email":"asha@example.in","mobile":"96{i:08}","merchantCode":"{}"}}"#,
            creds.merchant
        );
        async move {
            let init = post(&http, &url, &auth, body).await.text().await.unwrap();
            let kid = serde_json::from_str::<Value>(&init).unwrap()["data"]["kid"]
                .as_str()
                .unwrap_or_else(|| panic!("init failed: {init}"))
                .to_owned();
            (kid, init.len())
        }
    })
    .await;
    let init_bytes = inits[0].1;
    let kids: Vec<String> = inits.into_iter().map(|(kid, _)| kid).collect();
    let started = std::time::Instant::now();
    in_flight(kids.iter().cloned(), |kid| {
        let (http, auth) = (http.clone(), creds.auth.clone());
        let url = format!("{base}/v1/sandbox/kyc/{kid}/complete");
        async move {
            let done = post(
                &http,
                &url,
                &auth,
                r#"{"outcome":"approved","faceMatch":96}"#,
            )
            .await;
            assert!(done.status().is_success(), "{}", done.status());
        }
    })
    .await;
    let completions_per_s = n as f64 / started.elapsed().as_secs_f64();
    let status = http
        .get(format!("{base}/v1/service/paycc/kyc/status/{}", kids[0]))
        .header("Authorization", &creds.auth)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(status.starts_with(r#"{"code":"0x0200""#), "{status}");
    Approved {
        kids,
        sizes: (init_bytes, status.len()),
        completions_per_s,
    }
}

/// One authorized POST of the setup; it panics on a transport error.
async fn post(
    http: &reqwest::Client,
    url: &str,
    auth: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    http.post(url)
        .header("Authorization", auth)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Runs `job` for every item, `IN_FLIGHT` at a time; the outputs in no set order.
async fn in_flight<I, F, Fut, T>(items: I, mut job: F) -> Vec<T>
where
    I: IntoIterator,
    F: FnMut(I::Item) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut tasks = tokio::task::JoinSet::new();
    let mut out = Vec::new();
    for item in items {
        if tasks.len() == IN_FLIGHT {
            out.push(tasks.join_next().await.unwrap().unwrap());
        }
        tasks.spawn(job(item));
    }
    while let Some(done) = tasks.join_next().await {
        out.push(done.unwrap());
    }
    out
}

/// A database of the benchmark's own on the server `admin_url` names, dropped after.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

pub async fn fresh_postgres_database(admin_url: &str) -> Option<PgDatabase> {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(admin_url).await.ok()?;
    let name = format!("paycc_bench_{}", std::process::id());
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name}"
    )))
    .execute(&mut c)
    .await
    .ok()?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut c)
        .await
        .ok()?;
    let base = admin_url.rsplit_once('/').map_or(admin_url, |(b, _)| b);
    Some(PgDatabase {
        admin_url: admin_url.to_owned(),
        url: format!("{base}/{name}"),
        name,
    })
}

impl PgDatabase {
    pub async fn drop(self) {
        use sqlx::Connection;
        if let Ok(mut c) = sqlx::PgConnection::connect(&self.admin_url).await {
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await;
        }
    }
}
