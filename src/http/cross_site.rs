//! The partner API is for servers. A browser that holds a developer's Basic credentials
//! could otherwise be made to call it from any page (a `text/plain` form post needs no
//! preflight). Browsers always say where a request comes from, partner backends never
//! do, so a request that carries `Origin`, or `Sec-Fetch-Site` other than `none` or
//! `same-origin`, is refused before its credentials are looked at.

use super::envelope::{ApiError, Code};
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub async fn refuse_browsers(req: Request, next: Next) -> Response {
    if from_a_page(req.headers()) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            Code::Failure,
            "Requests from web pages are refused: call this API from your server.",
        )
        .into_response();
    }
    next.run(req).await
}

fn from_a_page(headers: &HeaderMap) -> bool {
    let fetch_site = headers
        .get("sec-fetch-site")
        .map(|v| v.as_bytes().to_ascii_lowercase());
    headers.contains_key("origin")
        || fetch_site.is_some_and(|site| site == b"cross-site" || site == b"same-site")
}
