//! paycc as separate processes, as an operator runs it: one folder, one database
//! (SQLite or a PostgreSQL database of the test's own), any number of nodes.

use super::{Backend, TestDb};
use paycc::crypto::Keyring;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_paycc");

/// A folder and a database that CLI commands and server nodes share.
pub struct Deployment {
    pub backend: Backend,
    pub dir: TempDir,
    pub db: Option<TestDb>,
    env: Vec<(String, String)>,
}

impl Deployment {
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut env = Vec::new();
        let db = match backend {
            Backend::Sqlite => {
                env.push((
                    "PAYCC_DATABASE_URL".into(),
                    format!("sqlite://{}", dir.path().join("paycc.db").display()),
                ));
                None
            }
            Backend::Postgres => {
                let db = TestDb::create().await;
                let (data, hash) = Keyring::generate_dev();
                env.push(("PAYCC_DATABASE_URL".into(), db.url.clone()));
                env.push(("PAYCC_ENCRYPTION_KEY".into(), data));
                env.push(("PAYCC_HASH_KEY".into(), hash));
                Some(db)
            }
        };
        Self {
            backend,
            dir,
            db,
            env,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `paycc` with only this deployment's settings in its environment.
    pub fn command(&self) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        ran(self.command().args(args))
    }

    /// Runs `sql` on the deployment's database, as someone with direct access would.
    pub async fn exec(&self, sql: &str) {
        match &self.db {
            None => {
                let db = rusqlite::Connection::open(self.path().join("paycc.db")).unwrap();
                db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
                db.execute_batch(sql).unwrap();
            }
            Some(db) => {
                let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
                    .await
                    .unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                    .execute(&mut c)
                    .await
                    .unwrap();
            }
        }
    }

    /// A blob literal in the deployment's SQL.
    pub fn blob(&self, bytes: &[u8]) -> String {
        match self.db {
            None => format!("X'{}'", hex::encode(bytes)),
            Some(_) => format!("'\\x{}'::bytea", hex::encode(bytes)),
        }
    }

    /// Points `client_id`'s callbacks at `url` with the CLI.
    pub fn set_callback(&self, client_id: &str, url: &str) {
        let (ok, _, err) = self.cli(&["client", "set-callback", client_id, "--url", url]);
        assert!(ok, "{err}");
    }

    /// A client and merchant made with the CLI: (clientId, Basic auth, merchantCode).
    pub fn client_and_merchant(&self) -> (String, String, String) {
        let json = |args: &[&str]| -> serde_json::Value {
            let (ok, out, err) = self.cli(args);
            assert!(ok, "{args:?}: {err}");
            serde_json::from_str(&out).unwrap()
        };
        let creds = json(&["client", "create", "--name", "Acme", "--json"]);
        let id = creds["clientId"].as_str().unwrap().to_owned();
        let auth = super::basic(&id, creds["clientSecret"].as_str().unwrap());
        let merchant = json(&[
            "merchant", "create", "--client", &id, "--name", "Shop", "--json",
        ]);
        let code = merchant["merchantCode"].as_str().unwrap().to_owned();
        (id, auth, code)
    }

    /// Starts a `paycc serve` node on free ports and waits until it listens.
    // The child is waited on by `Running`'s drop.
    #[allow(clippy::zombie_processes)]
    pub fn start(&self, extra: &[(&str, &str)]) -> Running {
        let mut cmd = self.command();
        cmd.arg("serve")
            .env("PAYCC_LISTEN", "127.0.0.1:0")
            .env("PAYCC_OPS_LISTEN", "127.0.0.1:0");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("paycc starts");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut banner = String::new();
        let mut base = None;
        loop {
            let mut line = String::new();
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "paycc exited before listening: {}",
                stderr.lock().unwrap()
            );
            banner.push_str(&line);
            if let Some(addr) = line.trim().strip_prefix("paycc listening on ") {
                base = Some(addr.to_owned());
            }
            if let Some(ops) = line.trim().strip_prefix("paycc ops listening on ") {
                std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
                let base = base.expect("the API address comes first");
                return Running {
                    child,
                    base,
                    ops: ops.to_owned(),
                    banner,
                    stderr,
                };
            }
        }
    }
}

/// Runs a command to its end: (succeeded, stdout, stderr).
pub fn ran(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("paycc runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub struct Running {
    pub child: Child,
    pub base: String,
    pub ops: String,
    /// Everything printed to stdout up to the listening lines.
    pub banner: String,
    pub stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Running {
    /// The status call for `kid`.
    pub async fn status(&self, auth: &str, kid: &str) -> super::Reply {
        let path = format!("/v1/service/paycc/kyc/status/{kid}");
        self.post(auth, &path, serde_json::json!({})).await
    }

    /// Approves a sandbox KYC as a tester does, without a browser.
    pub async fn approve(&self, auth: &str, kid: &str) {
        let path = format!("/v1/sandbox/kyc/{kid}/complete");
        let done = self
            .post(auth, &path, serde_json::json!({"outcome": "approved"}))
            .await;
        assert_eq!(done.json["code"], "0x0200", "{}", done.text);
    }

    /// Opens a KYC with this init body; returns its kid.
    pub async fn init_kid(&self, auth: &str, body: serde_json::Value) -> String {
        let r = self.post(auth, "/v1/service/paycc/init/kyc", body).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json["data"]["kid"].as_str().unwrap().to_owned()
    }

    /// Sends SIGTERM, as an orchestrator stops a node.
    pub fn terminate(&self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "could not signal {pid}");
    }

    /// How the node exited; the test fails if it still runs at `deadline`.
    pub async fn exit_by(&mut self, deadline: std::time::Instant) -> std::process::ExitStatus {
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still running; its log:\n{}",
                self.stderr.lock().unwrap()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The node's log once it holds `line` (or after 10 s without it): a log line may
    /// still be on its way through the pipe when the answer it goes with has arrived.
    pub async fn log_once_it_holds(&self, line: &str) -> String {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let log = self.stderr.lock().unwrap().clone();
            if log.contains(line) || tokio::time::Instant::now() > deadline {
                return log;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// A POST with a JSON body and Basic credentials, as a partner's backend sends it.
    /// A node that does not answer fails the test with its log.
    pub async fn post(&self, auth: &str, path: &str, body: serde_json::Value) -> super::Reply {
        let sent = super::http_client()
            .post(format!("{}{path}", self.base))
            .header("Authorization", auth)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await;
        match sent {
            Ok(res) => super::Reply::from_response(res).await,
            Err(e) => panic!(
                "paycc at {} does not answer ({e}); its log:\n{}",
                self.base,
                self.stderr.lock().unwrap()
            ),
        }
    }
}

/// A server process, killed when dropped so a failing test leaves none behind.
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn banner_value(banner: &str, key: &str) -> String {
    banner
        .lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("{key} not in {banner}"))
}
