//! Operator actions behind the CLI: API clients, merchants, and a masked look at a KYC.

use super::audit::AuditAction;
use super::{Admin, ServiceError, ServiceResult};
use crate::domain::fields::{MerchantCode, Mobile, Pan};
use crate::domain::sealed::SealedColumn;
use crate::domain::state::KycState;
use crate::store::StoreError;
use crate::store::UnixMs;
use crate::store::{MerchantRecord, RateLimit, Switch, Transition};
use serde::Serialize;

/// Shown once: only the hash of the secret is kept.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: String,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ClientCredentials {{ client_id: {}, client_secret: *** }}",
            self.client_id
        )
    }
}

/// What `paycc kyc show` prints: ids, state and times in full, personal data masked.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KycSummary {
    pub kid: String,
    pub merchant_code: String,
    pub client_id: String,
    pub cust_id: String,
    pub provider: String,
    pub state: String,
    pub reason: Option<String>,
    /// The submitted details, masked; none once purged.
    pub pan: Option<String>,
    pub mobile: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub face_match: Option<u8>,
    /// Whether the verified PAN is the requested one, and the name similarity (0–100).
    pub pan_match: Option<bool>,
    pub name_match: Option<u8>,
    pub aadhaar: Option<String>,
    pub has_photo: bool,
    pub created_at: String,
    pub updated_at: String,
    pub expires_at: String,
    /// When its identity data was deleted (a tombstone since).
    pub purged_at: Option<String>,
}

/// An operator's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
}

const CLIENT_SECRET_PREFIX: &str = "pcsk_";

impl Admin {
    pub async fn create_client(&self, name: &str) -> ServiceResult<ClientCredentials> {
        let name = admin_name(name)?;
        let creds = ClientCredentials {
            client_id: format!("PCC{}", crate::crypto::random_alnum(13)),
            client_secret: crate::crypto::new_secret(CLIENT_SECRET_PREFIX),
        };
        let hash = self.keys.secret_hash(&creds.client_secret);
        self.changing_client(&creds.client_id, AuditAction::ClientCreate, "created")
            .create_client(&creds.client_id, name, &hash, self.now_ms())
            .await?;
        Ok(creds)
    }

    pub async fn rotate_client_secret(&self, client_id: &str) -> ServiceResult<ClientCredentials> {
        self.known_client(client_id).await?;
        let secret = crate::crypto::new_secret(CLIENT_SECRET_PREFIX);
        let hash = self.keys.secret_hash(&secret);
        let now = self.now_ms();
        self.changing_client(client_id, AuditAction::ClientRotateSecret, "rotated")
            .set_client_secret(client_id, &hash, now)
            .await?;
        Ok(ClientCredentials {
            client_id: client_id.to_owned(),
            client_secret: secret,
        })
    }

    /// Switches a client off (every call answers 0x0201) or on again.
    pub async fn set_client_active(&self, client_id: &str, to: Switch) -> ServiceResult<()> {
        self.known_client(client_id).await?;
        let (action, outcome) = match to {
            Switch::On => (AuditAction::ClientEnable, "enabled"),
            Switch::Off => (AuditAction::ClientDisable, "disabled"),
        };
        self.changing_client(client_id, action, outcome)
            .set_client_active(client_id, to)
            .await?;
        Ok(())
    }

    /// Gives a client a rate limit of its own (`None`: the node's default again); the
    /// nodes apply it from the client's next request.
    pub async fn set_client_rate_limit(
        &self,
        client_id: &str,
        limit: Option<RateLimit>,
    ) -> ServiceResult<()> {
        self.known_client(client_id).await?;
        let outcome = match limit {
            Some(l) => format!("{l}"),
            None => "default".into(),
        };
        self.changing_client(client_id, AuditAction::ClientSetLimit, &outcome)
            .set_client_rate_limit(client_id, limit)
            .await?;
        Ok(())
    }

    /// An operator's verdict on a KYC. Only one awaiting approval with a verified
    /// identity can be approved (the customer then carries it as verified); any open one
    /// can be rejected, and the reason is what a status read says.
    pub async fn decide_kyc(
        &self,
        kid: &str,
        decision: Decision,
        reason: &str,
    ) -> ServiceResult<KycSummary> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 || reason.chars().any(char::is_control)
        {
            return Err(ServiceError::Refused(
                "A reason must be 1-500 printable characters.".into(),
            ));
        }
        let r = self
            .store
            .kyc(kid, None)
            .await?
            .ok_or(ServiceError::NotFound("No such KYC request"))?;
        let state = r.state.as_of(r.expires_at, self.now_ms());
        let (to, stored_reason) = match decision {
            Decision::Approve if state != KycState::AwaitingApproval => {
                return Err(ServiceError::Conflict(format!(
                    "Only a KYC awaiting approval can be approved; this one is {state}."
                )));
            }
            Decision::Approve if r.result_sealed.is_none() => {
                return Err(ServiceError::Conflict(
                    "This KYC has no verified identity to approve: the provider has not returned one yet.".into(),
                ));
            }
            Decision::Approve => (
                KycState::Approved,
                format!("approved by an operator: {reason}"),
            ),
            Decision::Reject if !state.is_open() => {
                return Err(ServiceError::Conflict(format!(
                    "This KYC has already ended ({state})."
                )));
            }
            Decision::Reject => (KycState::Rejected, reason.to_owned()),
        };
        let entry = self
            .operator_entry(AuditAction::KycDecide, to.as_str())
            .about(&r.kid, &r.cust_id, &r.client_id);
        let audit = self.audit_note(vec![entry]);
        let after = self
            .move_kyc(Transition {
                reason: Some(stored_reason),
                audit: Some(audit),
                ..self.moving(&r.kid, to)
            })
            .await?;
        if after != to {
            return Err(ServiceError::Conflict(format!(
                "This KYC moved to {after} meanwhile; nothing was changed."
            )));
        }
        tracing::info!(kid = %r.kid, state = %to, "operator decided a KYC");
        self.kyc_summary(&r.kid).await
    }

    /// Creates a merchant under a client; without a code one like `MID123456789` is drawn.
    pub async fn create_merchant(
        &self,
        client_id: &str,
        name: &str,
        code: Option<&str>,
    ) -> ServiceResult<String> {
        let name = admin_name(name)?;
        let now = self.now_ms();
        let chosen = match code {
            Some(c) => {
                let parsed =
                    MerchantCode::parse(c).map_err(|r| ServiceError::Refused(r.0.to_owned()))?;
                if parsed.as_str().is_empty() {
                    return Err(ServiceError::Refused(
                        "The merchant code may not be empty.".into(),
                    ));
                }
                parsed.as_str().to_owned()
            }
            None => format!("MID{}", crate::crypto::random_digits(9)),
        };
        self.known_client(client_id).await?;
        match self
            .changing_client(client_id, AuditAction::MerchantCreate, &chosen)
            .create_merchant(client_id, &chosen, name, now)
            .await
        {
            Ok(true) => Ok(chosen),
            Ok(false) => Err(ServiceError::NotFound("No such API client")),
            Err(StoreError::Conflict(crate::store::Unique::MerchantCode)) => Err(
                ServiceError::Conflict(format!("Merchant code {chosen} is taken.")),
            ),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn list_merchants(&self) -> ServiceResult<Vec<MerchantRecord>> {
        Ok(self.store.list_merchants().await?)
    }

    pub async fn set_merchant_active(&self, code: &str, to: Switch) -> ServiceResult<()> {
        // Merchants are never deleted: one found now is changed below.
        let merchant = self
            .store
            .find_merchant(code)
            .await?
            .ok_or(ServiceError::NotFound("No such merchant"))?;
        let action = match to {
            Switch::On => AuditAction::MerchantActivate,
            Switch::Off => AuditAction::MerchantDeactivate,
        };
        self.changing_client(&merchant.client_id, action, code)
            .set_merchant_active(code, to)
            .await?;
        Ok(())
    }

    /// Once this returns, every write queued before it is durable.
    pub async fn flush(&self) -> ServiceResult<()> {
        Ok(self.store.flush().await?)
    }

    /// Whether the database answers and its schema is current, for `/readyz`: the
    /// short public reason, and the detail for the log.
    pub async fn readiness(&self) -> Result<(), (&'static str, String)> {
        self.store.readiness().await.map_err(|e| {
            let reason = match e {
                StoreError::SchemaBehind { .. } => "migrations pending",
                _ => "database unavailable",
            };
            (reason, e.to_string())
        })
    }

    /// `true` when the database has no API client yet (a fresh install).
    pub async fn is_empty(&self) -> ServiceResult<bool> {
        Ok(self.store.count_clients().await? == 0)
    }

    /// A KYC as an operator sees it (`kyc show`), recorded in the audit trail.
    pub async fn show_kyc(&self, kid: &str) -> ServiceResult<KycSummary> {
        let summary = self.kyc_summary(kid).await?;
        let entry = self.operator_entry(AuditAction::KycShow, "shown").about(
            &summary.kid,
            &summary.cust_id,
            &summary.client_id,
        );
        self.record_read(entry).await?;
        Ok(summary)
    }

    pub async fn kyc_summary(&self, kid: &str) -> ServiceResult<KycSummary> {
        let r = self
            .store
            .kyc(kid, None)
            .await?
            .ok_or(ServiceError::NotFound("No such KYC request"))?;
        let details = match r.purged_at {
            Some(_) => None,
            None => Some(self.submitted(&r)?),
        };
        let identity = match &r.result_sealed {
            Some(s) => Some(self.open_json::<crate::domain::kyc::KycIdentity>(
                SealedColumn::KycResult,
                &r.kid,
                s,
            )?),
            None => None,
        };
        Ok(KycSummary {
            kid: r.kid,
            merchant_code: r.merchant_code,
            client_id: r.client_id,
            cust_id: r.cust_id,
            provider: r.provider,
            state: r.state.to_string(),
            reason: r.reason,
            pan: details.as_ref().map(|d| {
                Pan::parse(&d.pan)
                    .map(|p| p.masked())
                    .unwrap_or_else(|_| "(unreadable)".into())
            }),
            mobile: details.as_ref().map(|d| {
                Mobile::parse(&d.mobile)
                    .map(|m| m.masked())
                    .unwrap_or_else(|_| "(unreadable)".into())
            }),
            name: details.as_ref().map(|d| initials(&d.name)),
            email: details.as_ref().map(|d| mask_email(&d.email)),
            face_match: identity.as_ref().map(|i| i.face_match),
            pan_match: identity.as_ref().and_then(|i| i.pan_match),
            name_match: identity.as_ref().and_then(|i| i.name_match),
            aadhaar: identity.as_ref().map(|i| i.aadhaar.clone()),
            has_photo: identity.as_ref().is_some_and(|i| !i.image.is_empty()),
            created_at: r.created_at.rfc3339(),
            updated_at: r.updated_at.rfc3339(),
            expires_at: r.expires_at.rfc3339(),
            purged_at: r.purged_at.map(UnixMs::rfc3339),
        })
    }
}

fn admin_name(name: &str) -> ServiceResult<&str> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ServiceError::Refused(
            "A name must be 1-200 printable characters.".into(),
        ));
    }
    Ok(name)
}

fn initials(name: &str) -> String {
    name.split_whitespace()
        .map(|w| format!("{}.", w.chars().next().unwrap_or('?')))
        .collect::<Vec<_>>()
        .join(" ")
}

fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => format!("{}***@{domain}", local.chars().next().unwrap_or('*')),
        None => "***".into(),
    }
}
