//! Admission control: at most `PAYCC_MAX_IN_FLIGHT` requests are worked on at once.
//! Past it a request is refused at once (`0x0205`, 503, `Retry-After: 1`): under
//! overload a quick refusal, which a client retries, serves better than a queue whose
//! every request ends up late.

use super::envelope::busy;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use tokio::sync::Semaphore;

pub async fn admit(State(slots): State<Arc<Semaphore>>, req: Request, next: Next) -> Response {
    let Ok(_slot) = slots.try_acquire_owned() else {
        tracing::debug!("refused a request: too many in flight");
        crate::metrics::refused("in_flight");
        return busy().into_response();
    };
    next.run(req).await
}
