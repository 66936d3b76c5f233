//! Keeping requests in step with a remote provider: webhooks as hints (each one makes
//! us re-read the provider's record; the body alone never changes a state), and a
//! reconciler for whatever a webhook missed.

use super::{ProviderSync, ServiceError, ServiceResult};
use crate::provider::{WebhookError, WebhookNotice};

/// How many requests one reconciler pass re-reads at most.
const RECONCILE_BATCH: i64 = 50;

#[derive(Debug, PartialEq, Eq)]
pub enum WebhookAck {
    Accepted,
    Duplicate,
}

impl ProviderSync {
    /// Verifies a provider webhook on its raw body, records its event id, and re-reads
    /// the request it names in the background, so the provider gets its 2xx at once.
    pub async fn webhook(
        &self,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<WebhookAck, WebhookFailure> {
        let notice = self.provider.verify_webhook(body, signature)?;
        let now = self.now_ms();
        if !self
            .store
            .record_webhook_event(self.provider.name(), &notice.event_id, now)
            .await
            .map_err(ServiceError::from)?
        {
            tracing::info!(event_id = %notice.event_id, "webhook redelivered; already handled");
            return Ok(WebhookAck::Duplicate);
        }
        tracing::info!(event_id = %notice.event_id, event = %notice.event, kid = ?notice.kid, "webhook accepted");
        let service = self.clone();
        tokio::spawn(async move { service.refresh_after_webhook(notice).await });
        Ok(WebhookAck::Accepted)
    }

    async fn refresh_after_webhook(&self, notice: WebhookNotice) {
        match notice.kid {
            Some(kid) => self.refresh_kid(&kid).await,
            None => {
                tracing::warn!(event_id = %notice.event_id, "webhook names no KYC request; ignored")
            }
        }
    }

    /// Re-reads one request from the provider; failures are logged, the reconciler retries.
    async fn refresh_kid(&self, kid: &str) {
        let record = match self.store.kyc(kid, None).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                return tracing::warn!(kid, "provider event for a request we do not know; ignored");
            }
            Err(e) => return tracing::warn!(kid, error = %e, "cannot read a request to refresh"),
        };
        if let Err(e) = self.refresh(&record).await {
            tracing::warn!(kid, error = %e, "refresh from the provider failed; the reconciler will retry");
        }
    }

    /// One reconciler pass: claims open requests not checked for a while (each claimed
    /// by one node only) and re-reads them. Returns how many were claimed.
    pub async fn reconcile_once(&self) -> ServiceResult<usize> {
        if !self.provider.is_remote() {
            return Ok(0);
        }
        let now = self.now_ms();
        let stale_before = now.minus(self.settings.reconcile_after);
        let kids = self
            .store
            .claim_for_recheck(self.provider.name(), stale_before, now, RECONCILE_BATCH)
            .await?;
        for kid in &kids {
            self.refresh_kid(kid).await;
        }
        Ok(kids.len())
    }
}

/// Why a webhook was not taken.
#[derive(Debug, thiserror::Error)]
pub enum WebhookFailure {
    #[error(transparent)]
    Refused(#[from] WebhookError),
    #[error(transparent)]
    Failed(#[from] ServiceError),
}
