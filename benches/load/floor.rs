//! The floor: the least a server on this stack (tokio + axum) can do for the same
//! requests. It parses the init JSON into the same fields and answers envelopes of the
//! sizes paycc answers, with no auth, storage or crypto. paycc ÷ floor says how much of
//! the machine paycc's own work costs.

use axum::Router;
use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use std::sync::Arc;

/// Environment that tells a re-executed bench binary to be the floor server.
pub const ROLE: &str = "PAYCC_BENCH_FLOOR";
pub const INIT_BYTES: &str = "PAYCC_BENCH_FLOOR_INIT_BYTES";
pub const STATUS_BYTES: &str = "PAYCC_BENCH_FLOOR_STATUS_BYTES";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // parsed, as paycc parses it, and not used further
struct InitBody {
    pan: String,
    name: String,
    email: String,
    mobile: String,
    merchant_code: String,
}

/// Serves on 127.0.0.1:0 and prints `floor listening on ADDR`.
pub fn serve() {
    let size = |var: &str| -> usize {
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{var} must be set"))
    };
    let init_bytes = size(INIT_BYTES);
    let status_body: Arc<[u8]> = padded_envelope(size(STATUS_BYTES)).into();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let app = Router::new()
            .route(
                "/v1/service/paycc/init/kyc",
                post(move |body: Bytes| async move {
                    match serde_json::from_slice::<InitBody>(&body) {
                        Ok(_) => (
                            [(CONTENT_TYPE, "application/json")],
                            padded_envelope(init_bytes),
                        )
                            .into_response(),
                        Err(_) => axum::http::StatusCode::BAD_REQUEST.into_response(),
                    }
                }),
            )
            .route(
                "/v1/service/paycc/kyc/status/{kid}",
                get(move || {
                    let body = status_body.clone();
                    async move {
                        (
                            [(CONTENT_TYPE, "application/json")],
                            Bytes::from_owner(body),
                        )
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("floor listening on {}", listener.local_addr().unwrap());
        axum::serve(listener, app).await.unwrap();
    });
}

/// A success envelope of exactly `size` bytes (built per request, as a reply would be).
fn padded_envelope(size: usize) -> Vec<u8> {
    let head = br#"{"code":"0x0200","message":"Request Init","status":"SUCCESS","data":{"pad":""#;
    let tail = br#""}}"#;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(head);
    out.resize(size.saturating_sub(tail.len()).max(head.len()), b'x');
    out.extend_from_slice(tail);
    out
}
