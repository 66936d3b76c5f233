//! A provider whose every call is counted and timed in the metrics (`paycc_provider_…`),
//! by call and outcome; whichever provider it wraps.

use super::{
    Applicant, KycProvider, Offers, ProviderError, ProviderResult, Session, SessionRequest,
    WebhookError, WebhookNotice,
};
use crate::metrics::{ProviderLabels, metrics};
use async_trait::async_trait;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

pub struct Measured(pub Arc<dyn KycProvider>);

impl Measured {
    async fn call<T>(
        &self,
        call: &'static str,
        run: impl Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        let started = Instant::now();
        let result = run.await;
        let labels = ProviderLabels {
            provider: self.0.name(),
            call,
            outcome: match &result {
                Ok(_) => "ok",
                Err(ProviderError::Timeout) => "timeout",
                Err(ProviderError::Paused { .. }) => "paused",
                Err(ProviderError::Unknown) => "unknown",
                Err(ProviderError::Failed(_)) => "error",
            },
        };
        let m = metrics();
        m.provider_seconds
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
        m.provider_calls.get_or_create(&labels).inc();
        result
    }
}

#[async_trait]
impl KycProvider for Measured {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn offers(&self) -> Offers {
        self.0.offers()
    }

    fn is_remote(&self) -> bool {
        self.0.is_remote()
    }

    async fn create_session(&self, req: &SessionRequest) -> Result<Session, ProviderError> {
        self.call("create", self.0.create_session(req)).await
    }

    async fn fetch_result(
        &self,
        kid: &str,
        applicant: &Applicant,
    ) -> Result<ProviderResult, ProviderError> {
        self.call("fetch", self.0.fetch_result(kid, applicant))
            .await
    }

    fn verify_webhook(
        &self,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<WebhookNotice, WebhookError> {
        self.0.verify_webhook(body, signature)
    }
}
