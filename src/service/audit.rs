//! The audit trail: every read that returns a person's identity and every operator's
//! change is recorded (who, what, which kid, custId or client, which request, how it
//! ended), never the identity itself. Each entry is linked to the one before by a keyed
//! hash, so `verify` finds the first entry that was changed, removed or moved.

use super::{Admin, Core, ServiceError, ServiceResult};
use crate::crypto::{Keyring, Lookup};
use crate::store::{AuditEntry, AuditFilter, AuditLink, AuditNote, AuditRecord, Store};
use std::sync::Arc;

/// The actor of the server's own acts (retention).
pub const SERVER_ACTOR: &str = "paycc";

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    StatusRead,
    CustomerCheck,
    KycShow,
    KycDecide,
    KycPurge,
    ClientCreate,
    ClientRotateSecret,
    ClientDisable,
    ClientEnable,
    ClientSetLimit,
    ClientSetCallback,
    MerchantCreate,
    MerchantActivate,
    MerchantDeactivate,
    KeysRotate,
    KeysRetire,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StatusRead => "status.read",
            Self::CustomerCheck => "customer.check",
            Self::KycShow => "kyc.show",
            Self::KycDecide => "kyc.decide",
            Self::KycPurge => "kyc.purge",
            Self::ClientCreate => "client.create",
            Self::ClientRotateSecret => "client.rotate_secret",
            Self::ClientDisable => "client.disable",
            Self::ClientEnable => "client.enable",
            Self::ClientSetLimit => "client.set_limit",
            Self::ClientSetCallback => "client.set_callback",
            Self::MerchantCreate => "merchant.create",
            Self::MerchantActivate => "merchant.activate",
            Self::MerchantDeactivate => "merchant.deactivate",
            Self::KeysRotate => "keys.rotate",
            Self::KeysRetire => "keys.retire",
        }
    }
}

/// The keyed hash of entry `seq` over the previous entry's hash and its own fields. An
/// absent field and an empty one hash differently.
pub(super) fn audit_link(keys: Arc<Keyring>) -> AuditLink {
    Arc::new(move |prev: &[u8], seq: i64, e: &AuditEntry| {
        let optional = |v: &Option<String>| match v {
            Some(s) => format!("1{s}"),
            None => "0".to_owned(),
        };
        keys.lookup_hash(
            Lookup::Audit,
            &[
                &hex::encode(prev),
                &seq.to_string(),
                &e.at.0.to_string(),
                &e.actor,
                &e.action,
                &optional(&e.kid),
                &optional(&e.cust_id),
                &optional(&e.client_id),
                &optional(&e.request_id),
                &e.outcome,
            ],
        )
    })
}

impl Core {
    /// An entry by `actor`, now; the caller names what it concerns.
    pub(super) fn audit_entry(
        &self,
        actor: &str,
        action: AuditAction,
        outcome: &str,
    ) -> AuditEntry {
        AuditEntry {
            at: self.now_ms(),
            actor: actor.to_owned(),
            action: action.as_str().to_owned(),
            kid: None,
            cust_id: None,
            client_id: None,
            request_id: None,
            outcome: outcome.to_owned(),
        }
    }

    /// An entry by this process's operator (`cli:USER@HOST`).
    pub(super) fn operator_entry(&self, action: AuditAction, outcome: &str) -> AuditEntry {
        self.audit_entry(&self.settings.operator, action, outcome)
    }

    pub(super) fn audit_note(&self, entries: Vec<AuditEntry>) -> AuditNote {
        AuditNote {
            entries,
            link: self.audit_link.clone(),
        }
    }

    /// The store, every change through it recorded as `action` on `client_id` by this
    /// process's operator, in the change's own transaction.
    pub(super) fn changing_client(
        &self,
        client_id: &str,
        action: AuditAction,
        outcome: &str,
    ) -> Arc<dyn Store> {
        let mut entry = self.operator_entry(action, outcome);
        entry.client_id = Some(client_id.to_owned());
        self.store.clone().audited(self.audit_note(vec![entry]))
    }

    /// Clients are never deleted: one found now is there for the change that follows.
    pub(super) async fn known_client(&self, client_id: &str) -> ServiceResult<()> {
        match self.store.find_client(client_id).await? {
            Some(_) => Ok(()),
            None => Err(ServiceError::NotFound("No such API client")),
        }
    }

    /// An API client's read of the identity of `kid` (customer `cust_id`).
    pub(super) fn read_entry(
        &self,
        client: &super::ApiClient,
        action: AuditAction,
        kid: &str,
        cust_id: &str,
    ) -> AuditEntry {
        AuditEntry {
            request_id: client.request_id.clone(),
            ..self
                .audit_entry(&client.client_id, action, "identity returned")
                .about(kid, cust_id, &client.client_id)
        }
    }

    /// Records a read before its answer leaves: a crash loses no entry of a read that
    /// was answered.
    pub(super) async fn record_read(&self, entry: AuditEntry) -> ServiceResult<()> {
        Ok(self
            .store
            .append_audit(self.audit_note(vec![entry]))
            .await?)
    }
}

impl AuditEntry {
    /// The entry, naming the request, its customer and its API client.
    pub(super) fn about(self, kid: &str, cust_id: &str, client_id: &str) -> Self {
        Self {
            kid: Some(kid.to_owned()),
            cust_id: Some(cust_id.to_owned()),
            client_id: Some(client_id.to_owned()),
            ..self
        }
    }
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditCheck {
    /// Every entry links to the one before.
    Intact { entries: i64 },
    /// The first entry that does not: its number and what is wrong.
    Broken { seq: i64, problem: String },
}

/// Entries read per page while checking.
const VERIFY_PAGE: i64 = 1000;

impl Admin {
    pub async fn audit_list(&self, filter: &AuditFilter) -> ServiceResult<Vec<AuditRecord>> {
        Ok(self.store.audit_entries(filter).await?)
    }

    /// Walks the trail in order, recomputing each link.
    pub async fn audit_verify(&self) -> ServiceResult<AuditCheck> {
        let (mut prev, mut expected) = (Vec::new(), 1);
        loop {
            let page = self.store.audit_chain(expected - 1, VERIFY_PAGE).await?;
            let full = page.len() as i64 == VERIFY_PAGE;
            for r in page {
                if r.seq != expected {
                    return Ok(AuditCheck::Broken {
                        seq: expected,
                        problem: format!(
                            "entries {expected} to {} are missing: removed",
                            r.seq - 1
                        ),
                    });
                }
                if (self.audit_link)(&prev, r.seq, &r.entry) != r.chain {
                    return Ok(AuditCheck::Broken {
                        seq: r.seq,
                        problem: "its hash does not match: the entry was changed, or one \
                                  before it was removed or moved"
                            .into(),
                    });
                }
                prev = r.chain;
                expected += 1;
            }
            if !full {
                return Ok(AuditCheck::Intact {
                    entries: expected - 1,
                });
            }
        }
    }
}
