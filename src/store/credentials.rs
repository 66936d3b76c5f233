//! API clients and merchants kept in memory, so that a request does not look its
//! credentials up in the database. What is kept is what the database holds (the secret's
//! hash, not a verdict): the secret is checked on every request, and a failed
//! authentication is never kept, so no brute force skips the check.
//!
//! Revocation is bounded, not immediate. Every change to a client or a merchant moves
//! the database's `credentials_version` (by trigger, whichever process makes it); a
//! serving node polls it every `POLL` and forgets everything when it moved. A kept entry
//! is used only while the last poll that found the version unchanged began less than
//! `TRUSTED_FOR` ago; past that (a poll failing, or starved under load) every lookup goes
//! to the database. So a change committed at `t` is in force on every node by
//! `t + TRUSTED_FOR`, whatever happens to the polls.

use super::{ClientPk, ClientRecord, MerchantRecord, StoreResult};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How often a serving node asks whether credentials changed.
const POLL: Duration = Duration::from_millis(250);
/// How long a poll's answer vouches for what is kept: under the 1 s the operators are
/// promised, with room for the poll itself.
const TRUSTED_FOR: Duration = Duration::from_millis(750);
/// Past this many entries in a table it is emptied: clients and merchants are few, and
/// lookups of codes that exist are the only way in.
const MOST_KEPT: usize = 100_000;

#[derive(Default)]
pub struct Credentials {
    held: RwLock<Held>,
}

#[derive(Default)]
struct Held {
    /// The version everything kept was read at, and when a poll last found it current.
    vouched: Option<(i64, Instant)>,
    /// Moves whenever the tables are emptied, so that a lookup that raced a change does
    /// not keep what it read before it.
    generation: u64,
    clients: HashMap<String, ClientRecord>,
    merchants: HashMap<(ClientPk, String), MerchantRecord>,
}

/// What a lookup found kept: the entry, or the generation to keep its answer under.
enum Kept<V> {
    Hit(V),
    Miss(Option<u64>),
}

impl Credentials {
    /// The client with this id: kept, or read with `read` and kept when it exists.
    pub async fn client<Fut>(
        &self,
        client_id: &str,
        read: impl FnOnce() -> Fut,
    ) -> StoreResult<Option<ClientRecord>>
    where
        Fut: Future<Output = StoreResult<Option<ClientRecord>>>,
    {
        let kept = self.kept(|h| h.clients.get(client_id).cloned());
        self.through(kept, read, |h, found| {
            keep(&mut h.clients, client_id.to_owned(), found);
        })
        .await
    }

    /// The merchant with this code if the client owns it, kept or read with `read`.
    pub async fn merchant<Fut>(
        &self,
        client_pk: ClientPk,
        code: &str,
        read: impl FnOnce() -> Fut,
    ) -> StoreResult<Option<MerchantRecord>>
    where
        Fut: Future<Output = StoreResult<Option<MerchantRecord>>>,
    {
        let key = (client_pk, code.to_owned());
        let kept = self.kept(|h| h.merchants.get(&key).cloned());
        self.through(kept, read, |h, found| keep(&mut h.merchants, key, found))
            .await
    }

    async fn through<V: Clone, Fut>(
        &self,
        kept: Kept<V>,
        read: impl FnOnce() -> Fut,
        keep: impl FnOnce(&mut Held, V),
    ) -> StoreResult<Option<V>>
    where
        Fut: Future<Output = StoreResult<Option<V>>>,
    {
        let generation = match kept {
            Kept::Hit(found) => {
                crate::metrics::credentials_lookup(true);
                return Ok(Some(found));
            }
            Kept::Miss(generation) => generation,
        };
        crate::metrics::credentials_lookup(false);
        let found = read().await?;
        if let (Some(generation), Some(found)) = (generation, &found) {
            let mut held = write(&self.held);
            if held.generation == generation && held.trusted() {
                keep(&mut held, found.clone());
            }
        }
        Ok(found)
    }

    fn kept<V>(&self, get: impl FnOnce(&Held) -> Option<V>) -> Kept<V> {
        let held = read(&self.held);
        if !held.trusted() {
            return Kept::Miss(None);
        }
        match get(&held) {
            Some(found) => Kept::Hit(found),
            None => Kept::Miss(Some(held.generation)),
        }
    }

    /// A poll that began at `asked` found `version`.
    pub fn vouch(&self, version: i64, asked: Instant) {
        let mut held = write(&self.held);
        if held.vouched.is_none_or(|(was, _)| was != version) {
            held.forget();
        }
        held.vouched = Some((version, asked));
    }

    /// This process changed a client or a merchant: what is kept goes at once (other
    /// processes learn of it from the version).
    pub fn forget(&self) {
        write(&self.held).forget();
    }

    /// A poll failed: nothing kept can be vouched for.
    pub fn doubt(&self) {
        let mut held = write(&self.held);
        held.forget();
        held.vouched = None;
    }
}

impl Held {
    fn trusted(&self) -> bool {
        self.vouched
            .is_some_and(|(_, asked)| asked.elapsed() < TRUSTED_FOR)
    }

    fn forget(&mut self) {
        self.generation += 1;
        self.clients.clear();
        self.merchants.clear();
    }
}

fn keep<K: Eq + Hash, V>(table: &mut HashMap<K, V>, key: K, value: V) {
    if table.len() >= MOST_KEPT {
        table.clear();
    }
    table.insert(key, value);
}

/// Polls `version` every `POLL` for as long as the node serves, vouching for (or
/// doubting) what `credentials` keeps.
pub async fn keep_vouching<F, Fut>(credentials: Arc<Credentials>, version: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = StoreResult<i64>>,
{
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Said once per outage, not four times a second.
    let mut doubting = false;
    loop {
        tick.tick().await;
        let asked = Instant::now();
        match version().await {
            Ok(v) => {
                if std::mem::take(&mut doubting) {
                    tracing::info!("credentials version readable again; keeping credentials");
                }
                credentials.vouch(v, asked);
            }
            Err(e) => {
                if !std::mem::replace(&mut doubting, true) {
                    tracing::warn!(error = %e, "could not read the credentials version; looking credentials up per request");
                }
                credentials.doubt();
            }
        }
    }
}

fn read(held: &RwLock<Held>) -> std::sync::RwLockReadGuard<'_, Held> {
    held.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write(held: &RwLock<Held>) -> std::sync::RwLockWriteGuard<'_, Held> {
    held.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    fn client(secret: u8) -> ClientRecord {
        ClientRecord {
            pk: ClientPk(1),
            client_id: "PCC1".into(),
            name: "Acme".into(),
            secret_hash: vec![secret],
            active: true,
            rate_limit: None,
        }
    }

    async fn look(c: &Credentials, in_db: u8) -> u8 {
        c.client("PCC1", || async move { Ok(Some(client(in_db))) })
            .await
            .unwrap()
            .unwrap()
            .secret_hash[0]
    }

    #[tokio::test]
    async fn nothing_is_kept_until_a_poll_vouches() {
        let c = Credentials::default();
        assert_eq!(look(&c, 1).await, 1);
        assert_eq!(look(&c, 2).await, 2);
    }

    #[tokio::test]
    async fn kept_until_the_version_moves() {
        let c = Credentials::default();
        c.vouch(7, Instant::now());
        assert_eq!(look(&c, 1).await, 1);
        assert_eq!(look(&c, 2).await, 1, "kept");
        c.vouch(7, Instant::now());
        assert_eq!(look(&c, 3).await, 1, "same version: still kept");
        c.vouch(8, Instant::now());
        assert_eq!(look(&c, 4).await, 4, "moved: read again");
    }

    #[tokio::test]
    async fn an_old_vouch_or_a_failed_poll_sends_lookups_to_the_database() {
        let c = Credentials::default();
        c.vouch(1, Instant::now() - TRUSTED_FOR);
        assert_eq!(look(&c, 1).await, 1);
        assert_eq!(look(&c, 2).await, 2);
        c.vouch(1, Instant::now());
        assert_eq!(look(&c, 3).await, 3);
        c.doubt();
        assert_eq!(look(&c, 4).await, 4);
        assert_eq!(look(&c, 5).await, 5);
    }

    #[tokio::test]
    async fn a_read_that_raced_a_change_is_not_kept() {
        let c = Credentials::default();
        c.vouch(1, Instant::now());
        let stale = c.client("PCC1", || async {
            // The change lands while this read is out.
            c.vouch(2, Instant::now());
            Ok(Some(client(1)))
        });
        assert_eq!(stale.await.unwrap().unwrap().secret_hash, [1]);
        assert_eq!(look(&c, 2).await, 2, "the raced read was not kept");
    }

    #[tokio::test]
    async fn a_change_made_here_is_forgotten_at_once() {
        let c = Credentials::default();
        c.vouch(1, Instant::now());
        assert_eq!(look(&c, 1).await, 1);
        c.forget();
        assert_eq!(look(&c, 2).await, 2);
        assert_eq!(look(&c, 3).await, 2, "kept again, still vouched");
    }

    #[tokio::test]
    async fn absent_clients_and_errors_are_not_kept() {
        let c = Credentials::default();
        c.vouch(1, Instant::now());
        assert!(
            c.client("PCC1", || async { Ok(None) })
                .await
                .unwrap()
                .is_none()
        );
        let failed = c
            .client("PCC1", || async { Err(StoreError::Busy("test")) })
            .await;
        assert!(failed.is_err());
        assert_eq!(look(&c, 9).await, 9);
    }
}
