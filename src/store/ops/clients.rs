//! API clients, their merchants and callback settings, and the database's own settings.

use super::rows;
use crate::store::backend::Access::{Read, Write};
use crate::store::backend::Backend;
use crate::store::db::{Conn, args};
use crate::store::*;
use async_trait::async_trait;

pub async fn pin_setting(
    c: &mut impl Conn,
    name: &str,
    value: &[u8],
    now: UnixMs,
) -> StoreResult<Vec<u8>> {
    c.execute(
        "keeping a setting",
        "INSERT INTO paycc_settings (name, value, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO NOTHING",
        args![name, value, now],
    )
    .await?;
    // A statement of its own: on PostgreSQL it sees the row of a node that won the insert.
    c.fetch_one(
        "reading a setting",
        "SELECT value AS b FROM paycc_settings WHERE name = $1",
        args![name],
        rows::bytes,
    )
    .await?
    .ok_or_else(|| StoreError::Corrupt(format!("the setting {name} was not kept")))
}

pub async fn create_client(
    c: &mut impl Conn,
    client_id: &str,
    name: &str,
    secret_hash: &[u8],
    now: UnixMs,
) -> StoreResult<()> {
    c.execute(
        "creating a client",
        "INSERT INTO api_clients (client_id, name, secret_hash, created_at) VALUES ($1, $2, $3, $4)",
        args![client_id, name, secret_hash, now],
    )
    .await
    .map(drop)
}

pub async fn set_client_secret(
    c: &mut impl Conn,
    client_id: &str,
    secret_hash: &[u8],
    now: UnixMs,
) -> StoreResult<bool> {
    let n = c
        .execute(
            "rotating a client secret",
            "UPDATE api_clients SET secret_hash = $1, secret_rotated_at = $2 WHERE client_id = $3",
            args![secret_hash, now, client_id],
        )
        .await?;
    Ok(n == 1)
}

pub async fn set_client_active(
    c: &mut impl Conn,
    client_id: &str,
    to: Switch,
) -> StoreResult<bool> {
    let n = c
        .execute(
            "switching a client",
            "UPDATE api_clients SET active = $1 WHERE client_id = $2",
            args![to == Switch::On, client_id],
        )
        .await?;
    Ok(n == 1)
}

statement!(
    FIND_CLIENT,
    "SELECT {} FROM api_clients a WHERE a.client_id = $1",
    rows::CLIENT_COLUMNS
);

pub async fn find_client(c: &mut impl Conn, client_id: &str) -> StoreResult<Option<ClientRecord>> {
    c.fetch_one(
        "reading a client",
        FIND_CLIENT.as_str(),
        args![client_id],
        rows::client_record,
    )
    .await
}

/// Moves with every change to a client or a merchant (migration 0014's triggers).
pub async fn credentials_version(c: &mut impl Conn) -> StoreResult<i64> {
    let n = c
        .fetch_one(
            "reading the credentials version",
            "SELECT version AS n FROM credentials_version WHERE id = 1",
            args![],
            rows::int,
        )
        .await?;
    n.ok_or_else(|| StoreError::Corrupt("the credentials version row is missing".into()))
}

pub async fn set_client_rate_limit(
    c: &mut impl Conn,
    client_id: &str,
    limit: Option<RateLimit>,
) -> StoreResult<bool> {
    let n = c
        .execute(
            "setting a client's rate limit",
            "UPDATE api_clients SET rate_per_second = $1, rate_burst = $2 WHERE client_id = $3",
            args![
                limit.map(|l| i64::from(l.per_second)),
                limit.map(|l| i64::from(l.burst)),
                client_id
            ],
        )
        .await?;
    Ok(n == 1)
}

pub async fn count_clients(c: &mut impl Conn) -> StoreResult<i64> {
    let n = c
        .fetch_one(
            "counting clients",
            "SELECT COUNT(*) AS n FROM api_clients",
            args![],
            rows::int,
        )
        .await?;
    Ok(n.unwrap_or(0))
}

/// `Ok(false)` when the client is unknown.
pub async fn create_merchant(
    c: &mut impl Conn,
    client_id: &str,
    code: &str,
    name: &str,
    now: UnixMs,
) -> StoreResult<bool> {
    let n = c
        .execute(
            "creating a merchant",
            "INSERT INTO merchants (code, client_pk, name, created_at)
             SELECT $1, pk, $2, $3 FROM api_clients WHERE client_id = $4",
            args![code, name, now, client_id],
        )
        .await?;
    Ok(n == 1)
}

statement!(
    LIST_MERCHANTS,
    "SELECT {} FROM merchants m JOIN api_clients a ON a.pk = m.client_pk ORDER BY m.pk",
    rows::MERCHANT_COLUMNS
);

pub async fn list_merchants(c: &mut impl Conn) -> StoreResult<Vec<MerchantRecord>> {
    c.fetch(
        "listing merchants",
        LIST_MERCHANTS.as_str(),
        args![],
        rows::merchant_record,
    )
    .await
}

statement!(
    MERCHANT_BY_CODE,
    "SELECT {} FROM merchants m JOIN api_clients a ON a.pk = m.client_pk WHERE m.code = $1",
    rows::MERCHANT_COLUMNS
);

pub async fn find_merchant(c: &mut impl Conn, code: &str) -> StoreResult<Option<MerchantRecord>> {
    c.fetch_one(
        "reading a merchant",
        MERCHANT_BY_CODE.as_str(),
        args![code],
        rows::merchant_record,
    )
    .await
}

pub async fn set_merchant_active(c: &mut impl Conn, code: &str, to: Switch) -> StoreResult<bool> {
    let n = c
        .execute(
            "switching a merchant",
            "UPDATE merchants SET active = $1 WHERE code = $2",
            args![to == Switch::On, code],
        )
        .await?;
    Ok(n == 1)
}

statement!(
    MERCHANT_OF_CLIENT,
    "SELECT {} FROM merchants m JOIN api_clients a ON a.pk = m.client_pk
         WHERE m.code = $1 AND m.client_pk = $2",
    rows::MERCHANT_COLUMNS
);

pub async fn merchant_of_client(
    c: &mut impl Conn,
    client_pk: ClientPk,
    code: &str,
) -> StoreResult<Option<MerchantRecord>> {
    c.fetch_one(
        "reading a merchant",
        MERCHANT_OF_CLIENT.as_str(),
        args![code, client_pk],
        rows::merchant_record,
    )
    .await
}

pub async fn client_callback(
    c: &mut impl Conn,
    client_id: &str,
) -> StoreResult<Option<ClientCallback>> {
    c.fetch_one(
        "reading a client's callback",
        "SELECT callback_url, callback_secret_sealed FROM api_clients WHERE client_id = $1",
        args![client_id],
        rows::client_callback,
    )
    .await
}

pub async fn set_client_callback(
    c: &mut impl Conn,
    client_id: &str,
    url: &str,
    secret_sealed: Option<&[u8]>,
) -> StoreResult<bool> {
    let n = c
        .execute(
            "setting a client's callback",
            "UPDATE api_clients SET callback_url = $1,
               callback_secret_sealed = COALESCE($2, callback_secret_sealed)
             WHERE client_id = $3",
            args![url, secret_sealed, client_id],
        )
        .await?;
    Ok(n == 1)
}

#[async_trait]
impl<B: Backend> Settings for B {
    async fn readiness(&self) -> StoreResult<()> {
        let found = self.schema_version().await?;
        let wanted = crate::store::schema::MIGRATIONS.len() as i64;
        if found < wanted {
            Err(StoreError::SchemaBehind { found, wanted })
        } else {
            Ok(())
        }
    }

    /// A write that changes nothing: on SQLite it commits after every write queued
    /// before it.
    async fn flush(&self) -> StoreResult<()> {
        self.run(Write, (), |_, ()| Box::pin(async { Ok(()) }))
            .await
    }

    async fn watch_credentials(&self) {
        let version = || self.run(Read, (), |c, ()| Box::pin(credentials_version(c)));
        crate::store::credentials::keep_vouching(self.credentials().clone(), version).await
    }

    async fn pin_setting(&self, name: &str, value: &[u8], now: UnixMs) -> StoreResult<Vec<u8>> {
        let args = (name.to_owned(), value.to_vec());
        self.run(Write, args, move |c, (name, value)| {
            Box::pin(pin_setting(c, name, value, now))
        })
        .await
    }
}

/// Runs a change to a client or a merchant: what this process keeps of them is forgotten
/// once it is made (other processes see it by the credentials version).
async fn changing<B: Backend, T>(
    store: &B,
    change: impl Future<Output = StoreResult<T>>,
) -> StoreResult<T> {
    let done = change.await;
    store.credentials().forget();
    done
}

#[async_trait]
impl<B: Backend> Clients for B {
    async fn create_client(
        &self,
        client_id: &str,
        name: &str,
        secret_hash: &[u8],
        now: UnixMs,
    ) -> StoreResult<()> {
        let args = (client_id.to_owned(), name.to_owned(), secret_hash.to_vec());
        self.run(Write, args, move |c, (id, name, hash)| {
            Box::pin(create_client(c, id, name, hash, now))
        })
        .await
    }

    async fn set_client_secret(
        &self,
        client_id: &str,
        secret_hash: &[u8],
        now: UnixMs,
    ) -> StoreResult<bool> {
        let args = (client_id.to_owned(), secret_hash.to_vec());
        changing(
            self,
            self.run(Write, args, move |c, (id, hash)| {
                Box::pin(set_client_secret(c, id, hash, now))
            }),
        )
        .await
    }

    async fn find_client(&self, client_id: &str) -> StoreResult<Option<ClientRecord>> {
        self.credentials()
            .client(client_id, || self.lookup_client(client_id))
            .await
    }

    async fn set_client_active(&self, client_id: &str, to: Switch) -> StoreResult<bool> {
        changing(
            self,
            self.run(Write, client_id.to_owned(), move |c, id| {
                Box::pin(set_client_active(c, id, to))
            }),
        )
        .await
    }

    async fn set_client_rate_limit(
        &self,
        client_id: &str,
        limit: Option<RateLimit>,
    ) -> StoreResult<bool> {
        changing(
            self,
            self.run(Write, client_id.to_owned(), move |c, id| {
                Box::pin(set_client_rate_limit(c, id, limit))
            }),
        )
        .await
    }

    async fn count_clients(&self) -> StoreResult<i64> {
        self.run(Read, (), |c, ()| Box::pin(count_clients(c))).await
    }

    async fn create_merchant(
        &self,
        client_id: &str,
        code: &str,
        name: &str,
        now: UnixMs,
    ) -> StoreResult<bool> {
        let args = (client_id.to_owned(), code.to_owned(), name.to_owned());
        self.run(Write, args, move |c, (id, code, name)| {
            Box::pin(create_merchant(c, id, code, name, now))
        })
        .await
    }

    async fn list_merchants(&self) -> StoreResult<Vec<MerchantRecord>> {
        self.run(Read, (), |c, ()| Box::pin(list_merchants(c)))
            .await
    }

    async fn find_merchant(&self, code: &str) -> StoreResult<Option<MerchantRecord>> {
        self.run(Read, code.to_owned(), |c, code| {
            Box::pin(find_merchant(c, code))
        })
        .await
    }

    async fn set_merchant_active(&self, code: &str, to: Switch) -> StoreResult<bool> {
        changing(
            self,
            self.run(Write, code.to_owned(), move |c, code| {
                Box::pin(set_merchant_active(c, code, to))
            }),
        )
        .await
    }

    async fn merchant_of_client(
        &self,
        client_pk: ClientPk,
        code: &str,
    ) -> StoreResult<Option<MerchantRecord>> {
        self.credentials()
            .merchant(client_pk, code, || self.lookup_merchant(client_pk, code))
            .await
    }

    async fn client_callback(&self, client_id: &str) -> StoreResult<Option<ClientCallback>> {
        self.run(Read, client_id.to_owned(), |c, id| {
            Box::pin(client_callback(c, id))
        })
        .await
    }

    async fn set_client_callback(
        &self,
        client_id: &str,
        url: &str,
        secret_sealed: Option<&[u8]>,
    ) -> StoreResult<bool> {
        let args = (
            client_id.to_owned(),
            url.to_owned(),
            secret_sealed.map(<[u8]>::to_vec),
        );
        self.run(Write, args, |c, (id, url, secret)| {
            Box::pin(set_client_callback(c, id, url, secret.as_deref()))
        })
        .await
    }
}
