//! Data keys over their life: which values each key still seals, re-sealing everything
//! under the first key (`paycc keys rotate`), and the start check that keeps a key from
//! being dropped while anything still needs it.

use super::audit::AuditAction;
use super::{Admin, ServiceError, ServiceResult};
use crate::crypto::sealed_prefix;
use crate::domain::sealed::SealedColumn;
use crate::store::{Resealed, SealedCursor, SealedValue};
use serde::Serialize;
use std::collections::BTreeSet;

/// How many values one key seals.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct KeyUse {
    pub key_id: String,
    /// In PAYCC_ENCRYPTION_KEY now; the first one seals new values.
    pub configured: bool,
    pub sealing: bool,
    /// Values it seals, bound to their rows.
    pub values: i64,
    /// Values it seals from before rows were bound (re-sealing binds them).
    pub unbound: i64,
}

/// `paycc keys status`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct KeyStatus {
    pub keys: Vec<KeyUse>,
    /// Values under a key neither configured nor noted at any start.
    pub other_keys: i64,
    /// Values a rotation would re-seal: all but those under the first key, bound.
    pub to_reseal: i64,
}

/// Where a rotation stands, after each batch.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RotationProgress {
    pub column: &'static str,
    /// Re-sealed so far, in every column.
    pub resealed: u64,
    /// What needed re-sealing when the rotation began.
    pub of: i64,
}

/// What a rotation did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Rotation {
    pub key_id: String,
    pub resealed: u64,
    /// Rows paycc wrote again while the rotation ran: already under the first key.
    pub changed_meanwhile: u64,
    /// Values that do not open (damaged, or moved from another row), by column and
    /// row; they stay under their key.
    pub unopened: Vec<String>,
}

/// How the report names a value's row: its id where a log may carry it, else (a
/// customer's, keyed by an integer) by its table's key too, so an operator can find it.
fn named(column: SealedColumn, v: &SealedValue) -> String {
    match column.row_in_logs(&v.row) {
        shown if shown == v.row => shown.to_owned(),
        shown => format!("{shown} (row key {})", v.cursor.int),
    }
}

/// Values read and re-sealed per write: small, so the server's own writes never wait
/// long behind one.
pub const DEFAULT_BATCH: u32 = 200;

impl Admin {
    /// How many values each key seals, over every sealed column.
    pub async fn key_status(&self) -> ServiceResult<KeyStatus> {
        let configured = self.keys.key_ids();
        let noted = self.store.data_keys().await?;
        let ids: BTreeSet<&str> = configured
            .iter()
            .copied()
            .chain(noted.iter().map(String::as_str))
            .collect();
        let mut keys = Vec::new();
        let mut counted = 0;
        for id in ids {
            let (values, unbound) = (
                self.sealed_by(id, true).await?,
                self.sealed_by(id, false).await?,
            );
            counted += values + unbound;
            keys.push(KeyUse {
                key_id: id.to_owned(),
                configured: configured.contains(&id),
                sealing: configured[0] == id,
                values,
                unbound,
            });
        }
        keys.sort_by_key(|k| (!k.sealing, !k.configured, k.key_id.clone()));
        let mut all = 0;
        for column in SealedColumn::ALL {
            all += self.store.count_sealed(column, &[]).await?;
        }
        let current = keys.first().map_or(0, |k| k.values);
        Ok(KeyStatus {
            keys,
            other_keys: all - counted,
            to_reseal: all - current,
        })
    }

    /// Values key `id` seals, bound to their rows or not, in every column.
    async fn sealed_by(&self, id: &str, row_bound: bool) -> ServiceResult<i64> {
        let prefix = sealed_prefix(id, row_bound);
        let mut n = 0;
        for column in SealedColumn::ALL {
            n += self.store.count_sealed(column, &prefix).await?;
        }
        Ok(n)
    }

    /// Re-seals every value not under the first key, bound to its row, `batch` at a time,
    /// reporting after each. Safe while serving (a value paycc rewrote meanwhile is left
    /// as written) and after a crash (a second run finds only what is left).
    pub async fn rotate_keys(
        &self,
        batch: u32,
        mut progress: impl FnMut(&RotationProgress),
    ) -> ServiceResult<Rotation> {
        let key_id = self.keys.key_ids()[0].to_owned();
        let current = self.keys.current_prefix();
        let of = self.key_status().await?.to_reseal;
        self.record_rotation(&format!("started: {of} values to re-seal under {key_id}"))
            .await?;
        let mut done = Rotation {
            key_id,
            resealed: 0,
            changed_meanwhile: 0,
            unopened: Vec::new(),
        };
        for column in SealedColumn::ALL {
            let mut after = SealedCursor::FIRST;
            loop {
                let values = self
                    .store
                    .sealed_batch(column, &current, &after, i64::from(batch.max(1)))
                    .await?;
                let Some(last) = values.last() else { break };
                after = last.cursor.clone();
                let mut resealed = Vec::with_capacity(values.len());
                for v in values {
                    match self.keys.reseal(column.label(), &v.row, &v.sealed) {
                        Ok(Some(new)) => resealed.push(Resealed {
                            cursor: v.cursor,
                            old: v.sealed,
                            new,
                        }),
                        Ok(None) => {}
                        Err(e) => {
                            let row = named(column, &v);
                            tracing::error!(column = column.name(), row, error = %e, "a sealed value does not open; left as it is");
                            done.unopened.push(format!("{} of {row}", column.name()));
                        }
                    }
                }
                let tried = resealed.len() as u64;
                let replaced = self.store.replace_sealed(column, resealed).await?;
                done.resealed += replaced;
                done.changed_meanwhile += tried - replaced;
                progress(&RotationProgress {
                    column: column.name(),
                    resealed: done.resealed,
                    of,
                });
            }
        }
        self.record_rotation(&format!(
            "done: {} re-sealed under {}, {} rewritten meanwhile, {} do not open",
            done.resealed,
            done.key_id,
            done.changed_meanwhile,
            done.unopened.len()
        ))
        .await?;
        Ok(done)
    }

    /// The audit entry of a rotation's start or end.
    async fn record_rotation(&self, outcome: &str) -> ServiceResult<()> {
        let entry = self.operator_entry(AuditAction::KeysRotate, outcome);
        Ok(self
            .store
            .append_audit(self.audit_note(vec![entry]))
            .await?)
    }

    /// Notes the configured keys, and refuses a start without a key noted before that
    /// still seals a value; a noted key that seals nothing any more is forgotten.
    pub async fn admit_data_keys(&self) -> ServiceResult<()> {
        let configured = self.keys.key_ids();
        let noted = self.store.data_keys().await?;
        for id in &noted {
            if configured.contains(&id.as_str()) {
                continue;
            }
            let still = self.sealed_by(id, true).await? + self.sealed_by(id, false).await?;
            if still > 0 {
                return Err(ServiceError::Refused(format!(
                    "data key {id} is no longer in PAYCC_ENCRYPTION_KEY but still seals {still} values: put it back (after the first key), run `paycc keys rotate`, and remove it once `paycc keys status` shows it seals nothing"
                )));
            }
            self.store.forget_data_key(id).await?;
            let entry = self.operator_entry(
                AuditAction::KeysRetire,
                &format!("key {id} seals nothing and is no longer configured: forgotten"),
            );
            self.store
                .append_audit(self.audit_note(vec![entry]))
                .await?;
        }
        // Every command starts here: a write only when a key is new.
        let new: Vec<String> = configured
            .into_iter()
            .filter(|id| !noted.iter().any(|n| n == id))
            .map(str::to_owned)
            .collect();
        if !new.is_empty() {
            self.store.note_data_keys(new, self.now_ms()).await?;
        }
        Ok(())
    }
}
