//! Merchant callbacks: each API client's URL and webhook secret, and the delivery of
//! the outbox the store fills in the same transactions as the state changes.

use super::audit::AuditAction;
use super::{Callbacks, Core, ServiceError, ServiceResult};
use crate::crypto::{new_webhook_secret, sign_callback};
use crate::delivery::CallbackSender;
use crate::domain::callback::{KycChange, callback_body};
use crate::domain::fields::CallbackUrl;
use crate::domain::sealed::SealedColumn;
use crate::store::{AttemptResult, CallbackAttempt, CallbackFilter, CallbackRecord, DueCallback};
use rand::RngExt;
use serde::Serialize;
use std::time::Duration;
use time::OffsetDateTime;

/// What `paycc client set-callback` reports. The secret is there only when it was
/// just made: it is shown once.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackSetup {
    pub client_id: String,
    pub callback_url: String,
    pub webhook_secret: Option<String>,
}

impl std::fmt::Debug for CallbackSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackSetup")
            .field("client_id", &self.client_id)
            .field("callback_url", &self.callback_url)
            .finish_non_exhaustive()
    }
}

impl Callbacks {
    /// Counts the outbox into the metrics (`paycc_callbacks_due`,
    /// `paycc_callback_oldest_due_seconds`); for each scrape.
    pub async fn measure_backlog(&self) -> ServiceResult<()> {
        let now = self.now_ms();
        let (due, oldest) = self.store.callback_backlog(now).await?;
        let m = crate::metrics::metrics();
        m.callbacks_due.set(due);
        m.callback_oldest_due_seconds
            .set(oldest.map_or(0, |at| now.since(at).as_secs() as i64));
        Ok(())
    }

    /// Points a client's callbacks at `url`. A secret is made when the client has none
    /// yet or `rotate` asks for a new one; otherwise the current one stays.
    pub async fn set(
        &self,
        client_id: &str,
        url: &str,
        rotate: bool,
    ) -> ServiceResult<CallbackSetup> {
        let url = CallbackUrl::parse(url).map_err(|r| ServiceError::Refused(r.0.to_owned()))?;
        let current = self
            .store
            .client_callback(client_id)
            .await?
            .ok_or(ServiceError::NotFound("No such API client"))?;
        let secret = (rotate || current.secret_sealed.is_none()).then(new_webhook_secret);
        let sealed = secret
            .as_ref()
            .map(|s| self.seal_bytes(SealedColumn::CallbackSecret, client_id, s.as_bytes()));
        let outcome = if secret.is_some() {
            "url set, new secret"
        } else {
            "url set"
        };
        self.changing_client(client_id, AuditAction::ClientSetCallback, outcome)
            .set_client_callback(client_id, url.as_str(), sealed.as_deref())
            .await?;
        Ok(CallbackSetup {
            client_id: client_id.to_owned(),
            callback_url: url.as_str().to_owned(),
            webhook_secret: secret,
        })
    }

    pub async fn list(
        &self,
        which: CallbackFilter,
        limit: i64,
    ) -> ServiceResult<Vec<CallbackRecord>> {
        Ok(self.store.list_callbacks(which, limit).await?)
    }

    /// Sends an event again (dead, failing or even delivered), with a fresh schedule.
    pub async fn retry(&self, event_id: &str) -> ServiceResult<()> {
        let now = self.now_ms();
        if !self.store.retry_callback(event_id.trim(), now).await? {
            return Err(ServiceError::NotFound("No such callback event"));
        }
        self.callbacks_queued.notify_one();
        Ok(())
    }

    /// Resolves when this node has queued a callback since the last call.
    pub async fn queued(&self) {
        self.callbacks_queued.notified().await;
    }

    /// Takes up to `limit` due callbacks for this node to send.
    pub async fn claim(&self, limit: usize) -> ServiceResult<Vec<DueCallback>> {
        let now = self.now_ms();
        let lease_until = now.plus(self.settings.callback_lease);
        Ok(self
            .store
            .claim_callbacks(
                now,
                lease_until,
                i64::from(self.settings.callback_per_client),
                limit as i64,
            )
            .await?)
    }

    /// One delivery attempt: sign, send, and record how it went.
    pub async fn deliver(
        &self,
        sender: &CallbackSender,
        due: DueCallback,
    ) -> ServiceResult<AttemptResult> {
        let attempt = due.attempts + 1;
        let outcome = self.attempt(sender, &due).await;
        let now = self.now_ms();
        let result = match &outcome {
            Ok(()) => AttemptResult::Delivered,
            Err(_) => match self.settings.callback_schedule.get(due.attempts as usize) {
                Some(wait) => AttemptResult::RetryAt(now.plus(jittered(*wait))),
                None => AttemptResult::Dead,
            },
        };
        crate::metrics::callback_attempt(result);
        match (&outcome, result) {
            (Ok(()), _) => {
                tracing::info!(event_id = %due.event_id, kid = %due.kid, attempt, "callback delivered")
            }
            (Err(why), AttemptResult::Dead) => {
                tracing::warn!(event_id = %due.event_id, kid = %due.kid, attempt, error = %why,
                    "callback failed for the last time; marked dead")
            }
            (Err(why), _) => {
                tracing::info!(event_id = %due.event_id, kid = %due.kid, attempt, error = %why,
                    "callback failed; will retry")
            }
        }
        self.store
            .finish_callback_attempt(&CallbackAttempt {
                pk: due.pk,
                result,
                error: outcome.err(),
                now,
            })
            .await?;
        Ok(result)
    }

    /// Sends the event; the error is the sentence kept for operators.
    async fn attempt(&self, sender: &CallbackSender, due: &DueCallback) -> Result<(), String> {
        let body = callback_body(&KycChange {
            kid: &due.kid,
            cust_id: &due.cust_id,
            merchant_code: &due.merchant_code,
            state: due.state,
        })
        .ok_or_else(|| format!("no event announces the state {}", due.state))?;
        let (Some(url), Some(sealed)) = (&due.callback.url, &due.callback.secret_sealed) else {
            return Err("the client has no callback URL and secret".into());
        };
        let secret = self
            .open_text(SealedColumn::CallbackSecret, &due.client_id, sealed)
            .map_err(|e| e.to_string())?;
        // The wire's own time: receivers check it against theirs.
        let timestamp = OffsetDateTime::now_utc().unix_timestamp();
        let signed = sign_callback(&secret, &due.event_id, timestamp, &body);
        let headers = [
            ("signature", signed.signature),
            ("webhook-id", due.event_id.clone()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signed.webhook_signature),
        ];
        sender
            .send(url, &headers, body)
            .await
            .map_err(|e| e.to_string())
    }
}

impl Core {
    /// Forgets finished events past their retention; part of the expiry pass.
    pub(super) async fn purge_callbacks(&self) -> ServiceResult<usize> {
        Ok(self
            .store
            .purge_callbacks(self.older_than(self.settings.callback_retention))
            .await?)
    }
}

/// `wait` ±20%, so the retries of many events failing together spread out.
fn jittered(wait: Duration) -> Duration {
    wait.mul_f64(rand::rng().random_range(0.8..=1.2))
}
