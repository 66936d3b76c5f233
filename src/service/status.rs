//! What a partner reads of a request (`kyc/status`), and the expiry of requests nobody
//! finished.

use super::audit::AuditAction;
use super::{ApiClient, Core, ServiceResult, Status};
use crate::domain::kyc::KycIdentity;
use crate::domain::state::KycState;
use crate::store::KycRecord;

/// A request as a partner sees it.
#[derive(Debug, Clone)]
pub enum KycStatus {
    Pending {
        kid: String,
        state: KycState,
    },
    Approved {
        kid: String,
        identity: Box<KycIdentity>,
        cust_id: String,
    },
    Ended {
        kid: String,
        state: KycState,
        reason: String,
    },
    /// Ended, and its identity data deleted after its retention (or on request).
    Purged {
        kid: String,
        state: KycState,
    },
}

impl Core {
    /// The status of `record` as `client` reads it; a read that returns an identity is
    /// recorded before the answer leaves.
    pub(super) async fn status_read_by(
        &self,
        client: &ApiClient,
        record: &KycRecord,
    ) -> ServiceResult<KycStatus> {
        let status = self.status_of(record)?;
        if let KycStatus::Approved { kid, cust_id, .. } = &status {
            self.record_read(self.read_entry(client, AuditAction::StatusRead, kid, cust_id))
                .await?;
        }
        Ok(status)
    }
}

impl Status {
    pub async fn read(&self, client: &ApiClient, kid: &str) -> ServiceResult<KycStatus> {
        let mut record = self.owned_kyc(client, kid).await?;
        if self.is_stale(&record) {
            // Ask the provider, but never keep the caller waiting past the provider timeout:
            // on any failure the stored state is the answer.
            match tokio::time::timeout(self.settings.refresh_timeout, self.refresh(&record)).await {
                Ok(Ok(_)) => record = self.owned_kyc(client, kid).await?,
                Ok(Err(e)) => {
                    tracing::warn!(kid, error = %e, "could not refresh a stale request; answering from storage")
                }
                Err(_) => tracing::warn!(
                    kid,
                    "refreshing a stale request took too long; answering from storage"
                ),
            }
        }
        self.status_read_by(client, &record).await
    }

    /// Open at a remote provider and not heard of for longer than the configured age.
    fn is_stale(&self, r: &KycRecord) -> bool {
        let now = self.now_ms();
        let state = r.state.as_of(r.expires_at, now);
        let last = r.checked_at.unwrap_or(r.updated_at).max(r.updated_at);
        self.provider.is_remote()
            && state.is_open()
            && state != KycState::Created
            && now.since(last) > self.settings.stale_after
    }

    /// Marks requests whose link ran out as expired, and forgets what is past its
    /// retention (identity data of ended requests, idempotency keys, callback and webhook
    /// events, sandbox journeys); returns how many requests expired.
    pub async fn expire_due(&self) -> ServiceResult<usize> {
        self.purge_idempotency_keys().await?;
        self.purge_callbacks().await?;
        self.purge_past_retention().await?;
        let mut total = 0;
        loop {
            let n = self.store.expire_due(self.now_ms(), 500).await?;
            crate::metrics::entered(KycState::Expired.as_str(), n as u64);
            total += n;
            if n < 500 {
                if total > 0 {
                    self.callbacks_queued.notify_one();
                }
                return Ok(total);
            }
        }
    }
}
