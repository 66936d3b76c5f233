//! A merchant's callback receiver on loopback: records every request it gets and
//! answers as the test scripts it (status, delay), then 200.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Default)]
struct Script {
    received: Vec<Received>,
    /// How the next requests are answered: status and delay before answering.
    answers: VecDeque<(u16, Duration)>,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    stop: Arc<tokio::sync::Notify>,
}

impl Receiver {
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    /// On a given address (to bring one back up where a URL already points).
    pub async fn start_on(addr: SocketAddr) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let script = Arc::new(Mutex::new(Script::default()));
        let stop = Arc::new(tokio::sync::Notify::new());
        let app = Router::new()
            .route("/hooks/kyc", post(receive))
            .with_state(script.clone());
        let addr = listener.local_addr().unwrap();
        let stopped = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stopped.notified().await })
                .await
        });
        Self { addr, script, stop }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks/kyc", self.addr)
    }

    /// Answers the next requests, in order, with these statuses and delays.
    pub fn answer(&self, answers: &[(u16, Duration)]) {
        self.script
            .lock()
            .unwrap()
            .answers
            .extend(answers.iter().copied());
    }

    pub fn received(&self) -> Vec<Received> {
        self.script.lock().unwrap().received.clone()
    }

    /// Waits (up to `within`) until `n` requests have arrived.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let got = self.received();
            if got.len() >= n || tokio::time::Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn stop(&self) {
        self.stop.notify_one();
    }
}

async fn receive(
    State(script): State<Arc<Mutex<Script>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let answer = {
        let mut s = script.lock().unwrap();
        s.received.push(Received { headers, body });
        s.answers.pop_front()
    };
    let (status, delay) = answer.unwrap_or((200, Duration::ZERO));
    tokio::time::sleep(delay).await;
    StatusCode::from_u16(status).unwrap()
}
