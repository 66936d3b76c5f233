//! Idempotency-Keys: per API client, the request's hash and, once done, its sealed reply.

use crate::store::backend::Access::{Atomic, Write};
use crate::store::backend::Backend;
use crate::store::db::{Columns, Conn, DecodeResult, Row, args};
use crate::store::schema::Dialect;
use crate::store::*;
use async_trait::async_trait;

fn held(r: &dyn Row) -> DecodeResult<(Vec<u8>, Option<Vec<u8>>, UnixMs)> {
    Ok((
        r.blob("request_hash")?,
        r.bytes("reply_sealed")?,
        r.at("created_at")?,
    ))
}

/// Takes a key for a request (in the caller's transaction): a key never seen, or one
/// whose holder died before `stale_before` without a reply, is taken; otherwise what it
/// holds.
pub async fn claim(c: &mut impl Conn, k: &IdempotencyClaim) -> StoreResult<KeyState> {
    // A concurrent first use waits here (PostgreSQL) for the other insert to commit, then
    // sees its row.
    let taken = c
        .execute(
            "taking an idempotency key",
            "INSERT INTO idempotency_keys (client_pk, idem_key, request_hash, created_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            args![k.client_pk, &k.key, &k.request_hash, k.now],
        )
        .await?
        == 1;
    if taken {
        return Ok(KeyState::Taken);
    }
    let sql = match c.dialect() {
        Dialect::Sqlite => {
            "SELECT request_hash, reply_sealed, created_at FROM idempotency_keys
             WHERE client_pk = $1 AND idem_key = $2"
        }
        Dialect::Postgres => {
            "SELECT request_hash, reply_sealed, created_at FROM idempotency_keys
             WHERE client_pk = $1 AND idem_key = $2 FOR UPDATE"
        }
    };
    let (hash, reply, created) = c
        .fetch_one(
            "reading an idempotency key",
            sql,
            args![k.client_pk, &k.key],
            held,
        )
        .await?
        .ok_or_else(|| StoreError::Corrupt("a clashing idempotency key cannot be read".into()))?;
    Ok(match (hash == k.request_hash, reply) {
        (false, _) => KeyState::Mismatch,
        (true, Some(reply)) => KeyState::Done(reply),
        (true, None) if created < k.stale_before => {
            c.execute(
                "retaking an abandoned idempotency key",
                "UPDATE idempotency_keys SET created_at = $1 WHERE client_pk = $2 AND idem_key = $3",
                args![k.now, k.client_pk, &k.key],
            )
            .await?;
            KeyState::Taken
        }
        (true, None) => KeyState::InFlight,
    })
}

/// Stores the reply a taken key gives from now on.
pub async fn complete(
    c: &mut impl Conn,
    client_pk: ClientPk,
    key: &str,
    reply_sealed: &[u8],
) -> StoreResult<()> {
    c.execute(
        "storing an idempotent reply",
        "UPDATE idempotency_keys SET reply_sealed = $1 WHERE client_pk = $2 AND idem_key = $3",
        args![reply_sealed, client_pk, key],
    )
    .await
    .map(drop)
}

/// Gives a taken key back (the request failed in a way a retry may fix).
pub async fn release(c: &mut impl Conn, client_pk: ClientPk, key: &str) -> StoreResult<()> {
    c.execute(
        "releasing an idempotency key",
        "DELETE FROM idempotency_keys WHERE client_pk = $1 AND idem_key = $2 AND reply_sealed IS NULL",
        args![client_pk, key],
    )
    .await
    .map(drop)
}

/// Forgets keys created before `before`; how many.
pub async fn purge(c: &mut impl Conn, before: UnixMs) -> StoreResult<usize> {
    let n = c
        .execute(
            "purging idempotency keys",
            "DELETE FROM idempotency_keys WHERE created_at < $1",
            args![before],
        )
        .await?;
    Ok(n as usize)
}

#[async_trait]
impl<B: Backend> IdempotencyKeys for B {
    async fn claim_idempotency_key(&self, claim: &IdempotencyClaim) -> StoreResult<KeyState> {
        self.run(Atomic, claim.clone(), |c, k| Box::pin(self::claim(c, k)))
            .await
    }

    async fn complete_idempotency_key(
        &self,
        client_pk: ClientPk,
        key: &str,
        reply_sealed: &[u8],
    ) -> StoreResult<()> {
        let args = (key.to_owned(), reply_sealed.to_vec());
        self.run(Write, args, move |c, (key, reply)| {
            Box::pin(complete(c, client_pk, key, reply))
        })
        .await
    }

    async fn release_idempotency_key(&self, client_pk: ClientPk, key: &str) -> StoreResult<()> {
        self.run(Write, key.to_owned(), move |c, key| {
            Box::pin(release(c, client_pk, key))
        })
        .await
    }

    async fn purge_idempotency_keys(&self, before: UnixMs) -> StoreResult<usize> {
        self.run(Write, (), move |c, ()| Box::pin(purge(c, before)))
            .await
    }
}
