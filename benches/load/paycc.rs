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
    /// The most memory the process has held (VmHWM), in KiB.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

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

/// `n` approved KYCs made through the API (init, then the sandbox completion), and the
/// sizes of one init reply and one approved status reply.
pub async fn approved_kycs(
    base: &str,
    creds: &Credentials,
    n: usize,
) -> (Vec<String>, (usize, usize)) {
    let http = reqwest::Client::new();
    let mut kids = Vec::with_capacity(n);
    let mut init_bytes = 0;
    for chunk in (0..n).collect::<Vec<_>>().chunks(64) {
        let mut tasks = tokio::task::JoinSet::new();
        for &i in chunk {
            let (http, base, auth, merchant) = (
                http.clone(),
                base.to_owned(),
                creds.auth.clone(),
                creds.merchant.clone(),
            );
            tasks.spawn(async move {
                let body = format!(
                    r#"{{"pan":"ZZZPZ{i:04}Z","name":"Asha Rao","email":"asha@example.in","mobile":"96{i:08}","merchantCode":"{merchant}"}}"#
                );
                let init = http
                    .post(format!("{base}/v1/service/paycc/init/kyc"))
                    .header("Authorization", &auth)
                    .body(body)
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                let kid = serde_json::from_str::<Value>(&init).unwrap()["data"]["kid"]
                    .as_str()
                    .unwrap_or_else(|| panic!("init failed: {init}"))
                    .to_owned();
                let done = http
                    .post(format!("{base}/v1/sandbox/kyc/{kid}/complete"))
                    .header("Authorization", &auth)
                    .body(r#"{"outcome":"approved","faceMatch":96}"#)
                    .send()
                    .await
                    .unwrap();
                assert!(done.status().is_success());
                (kid, init.len())
            });
        }
        while let Some(done) = tasks.join_next().await {
            let (kid, size) = done.unwrap();
            init_bytes = size;
            kids.push(kid);
        }
    }
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
    (kids, (init_bytes, status.len()))
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
