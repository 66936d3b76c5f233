//! `Idempotency-Key` on init: the same key with the same request gives the stored reply
//! (same kid, no second provider request); with a different request, a refusal; while
//! the first is still running, "try again shortly". Keys are per API client.

use super::{ApiClient, Core, Init, InitReply, ServiceError, ServiceResult};
use crate::crypto::Lookup;
use crate::domain::fields::IdempotencyKey;
use crate::domain::request::InitKyc;
use crate::domain::sealed::{SealedColumn, idempotency_row};
use crate::store::{IdempotencyClaim, KeyState};
use serde::Deserialize;
use serde::Serialize;
use std::time::Duration;

/// A key whose first request has not answered within this is taken as abandoned (the
/// node died); longer than any init can run.
const ABANDONED_AFTER: Duration = Duration::from_secs(120);

#[derive(Serialize, Deserialize)]
struct StoredReply {
    kid: String,
    url: String,
}

impl Init {
    pub async fn open_once(
        &self,
        client: &ApiClient,
        req: InitKyc,
        key: Option<&IdempotencyKey>,
    ) -> ServiceResult<InitReply> {
        let Some(key) = key else {
            return self.open(client, req).await;
        };
        let now = self.now_ms();
        // The request as parsed: the same person written differently is the same request.
        let request_hash = self.keys.lookup_hash(
            Lookup::Idempotency,
            &[
                req.merchant_code.as_str(),
                req.pan.as_str(),
                req.name.as_str(),
                req.email.as_str(),
                req.mobile.as_str(),
                req.redirect_url.as_ref().map_or("", |u| u.as_str()),
            ],
        );
        let claim = IdempotencyClaim {
            client_pk: client.pk,
            key: key.as_str().to_owned(),
            request_hash,
            now,
            stale_before: now.minus(ABANDONED_AFTER),
        };
        let row = idempotency_row(client.pk.0, key.as_str());
        match self.store.claim_idempotency_key(&claim).await? {
            KeyState::Done(sealed) => {
                let stored: StoredReply =
                    self.open_json(SealedColumn::IdempotentReply, &row, &sealed)?;
                Ok(InitReply {
                    kid: stored.kid,
                    url: stored.url,
                })
            }
            KeyState::InFlight => Err(ServiceError::InFlight),
            KeyState::Mismatch => Err(ServiceError::Refused(
                "This Idempotency-Key was already used with a different request.".into(),
            )),
            KeyState::Taken => {
                let result = self.open(client, req).await;
                match &result {
                    Ok(reply) => {
                        let stored = StoredReply {
                            kid: reply.kid.clone(),
                            url: reply.url.clone(),
                        };
                        let sealed = self.seal_json(SealedColumn::IdempotentReply, &row, &stored);
                        self.store
                            .complete_idempotency_key(client.pk, key.as_str(), &sealed)
                            .await?;
                    }
                    // A failure is not remembered: a retry with the key may succeed.
                    Err(_) => {
                        self.store
                            .release_idempotency_key(client.pk, key.as_str())
                            .await?
                    }
                }
                result
            }
        }
    }
}

impl Core {
    /// Forgets keys older than their retention; part of the expiry pass.
    pub(super) async fn purge_idempotency_keys(&self) -> ServiceResult<usize> {
        Ok(self
            .store
            .purge_idempotency_keys(self.older_than(self.settings.idempotency_ttl))
            .await?)
    }
}
