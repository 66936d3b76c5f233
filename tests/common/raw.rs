//! Requests written byte by byte on a plain TCP connection, for what an HTTP client
//! library will not do: stop half-way through a body, or never finish the headers.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A connection that has sent `bytes` and keeps the rest of its request to itself.
pub struct Stalled {
    pub stream: TcpStream,
}

impl Stalled {
    pub async fn send(base: &str, bytes: &[u8]) -> Self {
        let addr = base.trim_start_matches("http://");
        let mut stream = TcpStream::connect(addr).await.expect("paycc accepts");
        stream.write_all(bytes).await.expect("the request goes out");
        Self { stream }
    }

    /// The answer paycc gives without the rest of the request (its status line, headers
    /// and as much body as came within `wait`), or `None` if it gave none.
    pub async fn answer(&mut self, wait: Duration) -> Option<String> {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Ok(Ok(0)) | Err(_) => break,
                Ok(Ok(n)) => {
                    got.extend_from_slice(&buf[..n]);
                    if complete(&got) {
                        break;
                    }
                }
                Ok(Err(_)) => break,
            }
        }
        (!got.is_empty()).then(|| String::from_utf8_lossy(&got).into_owned())
    }

    /// Whether paycc has closed the connection (within `wait`).
    pub async fn closed(&mut self, wait: Duration) -> bool {
        let mut buf = [0u8; 1024];
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }
}

/// Headers ended and, with a `content-length`, that much body arrived.
fn complete(got: &[u8]) -> bool {
    let text = String::from_utf8_lossy(got);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    });
    length.is_none_or(|n| body.len() >= n)
}

/// The status code of a raw answer.
pub fn status_of(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"))
}

/// The body of a raw answer.
pub fn body_of(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}
