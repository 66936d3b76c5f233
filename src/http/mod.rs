//! The HTTP layer: routes, extractors and the envelope. Handlers turn requests into
//! domain requests, call the service, and turn its answer into one envelope.

mod admission;
mod cross_site;
mod customer;
mod envelope;
mod extract;
mod gateway;
mod kyc;
mod limits;
mod listener;
mod observe;
mod openapi;
mod ops;
mod reference;
mod sandbox;
mod webhooks;

pub use listener::serve;
pub use ops::router as ops_router;

use crate::config::RateArgs;
use crate::service::Service;
use axum::Router;
use axum::middleware;
use axum::routing::{get, post};
use limits::Limits;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;

#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    /// Customers reach us over https: cookies get `Secure`.
    pub public_https: bool,
    pub limits: Arc<Limits>,
}

pub fn router(
    service: Arc<Service>,
    public_url: &str,
    max_in_flight: u32,
    rates: RateArgs,
) -> Router {
    let state = AppState {
        service: service.clone(),
        public_https: public_url.starts_with("https://"),
        limits: Arc::new(Limits::new(rates)),
    };
    let mut api = Router::new()
        .route("/v1/service/paycc/init/kyc", post(kyc::init))
        .route(
            "/v1/service/paycc/kyc/status/{kid}",
            get(kyc::status).post(kyc::status),
        )
        .route(
            "/v1/service/paycc/customer",
            get(customer::check).post(customer::check),
        );
    let offers = service.provider_offers();
    if offers.simulated_journey {
        api = api.route("/v1/sandbox/kyc/{kid}/complete", post(sandbox::complete));
    }
    let mut api = api.route_layer(middleware::from_fn(cross_site::refuse_browsers));
    if offers.simulated_journey {
        api = api.merge(gateway::routes(state.clone()));
    }
    if offers.webhook_signature.is_some() {
        api = api.route(
            &format!("/v1/webhooks/{}", service.provider_name()),
            post(webhooks::receive),
        );
    }
    let reference = Arc::new(openapi::Reference::for_provider(
        &offers,
        service.provider_name(),
    ));
    let page = reference.clone();
    let router = api
        .route(
            "/openapi.json",
            get(move || async move { reference.document() }),
        )
        .route("/docs", get(move || async move { page.page() }))
        .route_layer(middleware::from_fn(observe::remember_route))
        .fallback(observe::not_found)
        .method_not_allowed_fallback(observe::method_not_allowed)
        .with_state(state)
        .layer(CatchPanicLayer::custom(observe::panic_response));
    // Sandbox answers look exactly like real ones; the header says they are not.
    let router = if offers.simulated_journey {
        router.layer(middleware::map_response(mark_sandbox))
    } else {
        router
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(max_in_flight as usize));
    router
        .layer(middleware::from_fn_with_state(slots, admission::admit))
        .layer(middleware::from_fn(observe::observe))
}

async fn mark_sandbox(mut res: axum::response::Response) -> axum::response::Response {
    res.headers_mut().insert(
        SANDBOX_HEADER,
        axum::http::HeaderValue::from_static("sandbox"),
    );
    res
}

/// Sent with every answer of a server running the sandbox provider.
pub const SANDBOX_HEADER: &str = "paycc-environment";
