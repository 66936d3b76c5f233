//! The accept loop, with the bounds a server on the internet needs: at most
//! `max_connections` open at once (past it, new connections wait in the kernel's
//! backlog), a request's head must arrive within `header_timeout` of its first byte, and
//! a connection with nothing in flight is closed after `idle_timeout`. Hyper's own
//! header timer also runs while a keep-alive connection is idle, so it would close idle
//! connections at the header timeout; both clocks are kept here instead, by watching the
//! connection's bytes and the requests it carries.

use crate::config::ConnectionArgs;
use axum::Router;
use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt;

/// Serves `router` on `listener` until `shutdown` resolves; then stops accepting, lets
/// each connection finish the request it is on, and returns once all are closed, or
/// once `limits.shutdown_grace` has passed (the rest are cut off).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionArgs,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections as usize));
    let (stopping, stop) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            // Out of file descriptors, or a connection reset before it was taken: the
            // loop goes on after a breath, so a burst cannot spin it.
            Err(e) => {
                tracing::warn!(error = %e, "could not accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (router, stop) = (router.clone(), stop.clone());
        tokio::spawn(async move {
            connection(stream, peer, router, limits, stop).await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    // Every connection holds a slot until it closes.
    let all_closed = slots.acquire_many(limits.max_connections);
    if tokio::time::timeout(limits.shutdown_grace, all_closed)
        .await
        .is_err()
    {
        let open = limits.max_connections as usize - slots.available_permits();
        tracing::warn!(
            open,
            "connections still busy when the shutdown grace ran out; cutting them off"
        );
    }
    Ok(())
}

/// Why a connection's watch ended it.
enum Verdict {
    /// Its request head did not arrive in time: dropped at once.
    SlowHead,
    /// Nothing in flight for too long: closed politely.
    Idle,
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ConnectionArgs,
    mut stop: watch::Receiver<bool>,
) {
    let activity = Arc::new(Mutex::new(Activity::new()));
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let activity = requests.clone();
        lock(&activity).started();
        let answered = router.clone().oneshot(req);
        async move {
            let res = answered.await;
            lock(&activity).ended();
            res
        }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(None);
    let mut conn = pin!(http.serve_connection(io, service));
    let verdict = tokio::select! {
        done = conn.as_mut() => {
            if let Err(e) = done {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            return;
        }
        verdict = watch_over(&activity, &limits) => verdict,
        _ = stop.wait_for(|stopping| *stopping) => Verdict::Idle,
    };
    if let Verdict::Idle = verdict {
        conn.as_mut().graceful_shutdown();
        // Still watched: a connection that never finishes its head would otherwise hold
        // a stop up for ever.
        tokio::select! {
            _ = conn.as_mut() => {}
            _ = watch_over(&activity, &limits) => {}
        }
    }
}

/// Waits until the connection breaks one of its time limits.
async fn watch_over(activity: &Mutex<Activity>, limits: &ConnectionArgs) -> Verdict {
    let tick = (limits.header_timeout.min(limits.idle_timeout) / 5)
        .clamp(Duration::from_millis(10), Duration::from_secs(1));
    loop {
        tokio::time::sleep(tick).await;
        let now = Instant::now();
        let a = lock(activity);
        if a.head_since
            .is_some_and(|since| now - since > limits.header_timeout)
        {
            return Verdict::SlowHead;
        }
        if a.in_flight == 0 && a.head_since.is_none() && now - a.last > limits.idle_timeout {
            return Verdict::Idle;
        }
    }
}

/// What a connection has been doing.
struct Activity {
    /// Its last byte in or out, or the end of its last request.
    last: Instant,
    /// When the bytes of a request whose head is not complete yet began to arrive.
    head_since: Option<Instant>,
    /// Requests handed to the router and not answered yet.
    in_flight: usize,
}

impl Activity {
    fn new() -> Self {
        Self {
            last: Instant::now(),
            head_since: None,
            in_flight: 0,
        }
    }

    fn started(&mut self) {
        self.in_flight += 1;
        self.head_since = None;
    }

    fn ended(&mut self) {
        self.in_flight -= 1;
        self.last = Instant::now();
    }

    fn read(&mut self) {
        self.last = Instant::now();
        // Bytes with nothing in flight start the next request's head. (Bytes of a body
        // left unread by an early answer count too: such a connection is closed at the
        // header timeout unless another request follows.)
        if self.in_flight == 0 && self.head_since.is_none() {
            self.head_since = Some(self.last);
        }
    }
}

fn lock(activity: &Mutex<Activity>) -> std::sync::MutexGuard<'_, Activity> {
    activity
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A connection's stream, noting when bytes come and go.
struct Watched {
    inner: TcpStream,
    activity: Arc<Mutex<Activity>>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            lock(&self.activity).read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            lock(&self.activity).last = Instant::now();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
