//! Retention: an ended request's identity data is deleted once `PAYCC_RETENTION` has
//! passed (or at once, on a data subject's erasure request), leaving a tombstone; the
//! provider's webhook events and the sandbox's journeys go after their own retention.

use super::admin::KycSummary;
use super::audit::{AuditAction, SERVER_ACTOR};
use super::{Admin, Core, ServiceError, ServiceResult};
use crate::store::PurgeOutcome;

/// Requests purged per transaction, so one pass never holds the writer for long.
const PURGE_BATCH: i64 = 500;

impl Core {
    /// Part of the expiry pass.
    pub(super) async fn purge_past_retention(&self) -> ServiceResult<usize> {
        let now = self.now_ms();
        let ended_before = self.older_than(self.settings.retention);
        let audit = self.audit_note(vec![self.audit_entry(
            SERVER_ACTOR,
            AuditAction::KycPurge,
            "retention",
        )]);
        let mut purged = 0;
        loop {
            let n = self
                .store
                .purge_ended_kycs(ended_before, now, PURGE_BATCH, audit.clone())
                .await?;
            purged += n;
            if (n as i64) < PURGE_BATCH {
                break;
            }
        }
        if purged > 0 {
            tracing::info!(
                purged,
                "identity data of requests past their retention deleted"
            );
        }
        self.store
            .purge_webhook_events(self.older_than(self.settings.webhook_retention))
            .await?;
        self.store
            .purge_sandbox_sessions(self.older_than(self.settings.sandbox_retention))
            .await?;
        Ok(purged)
    }
}

impl Admin {
    /// Deletes one ended request's identity data now (an erasure request); what stays.
    /// A request already purged answers the same.
    pub async fn purge_kyc(&self, kid: &str) -> ServiceResult<KycSummary> {
        let audit = self.audit_note(vec![
            self.operator_entry(AuditAction::KycPurge, "erased on request"),
        ]);
        match self.store.purge_kyc(kid, self.now_ms(), audit).await? {
            PurgeOutcome::Purged => {
                tracing::info!(kid, "identity data of a request deleted on request");
            }
            PurgeOutcome::AlreadyPurged => {}
            PurgeOutcome::StillOpen(state) => {
                return Err(ServiceError::Refused(format!(
                    "KYC {kid} is still open ({state}); only an ended one is purged. End it first: \
                     paycc kyc decide {kid} reject --reason \"erasure requested\""
                )));
            }
            PurgeOutcome::Unknown => return Err(ServiceError::NotFound("No such KYC request")),
        }
        self.kyc_summary(kid).await
    }
}
