//! The lookups every request makes (client, merchant, KYC request), as the batched
//! queries `batch` runs over many requests' keys at once.

use super::Ctx;
use super::batch::Fetched;
use crate::store::db::{DecodeResult, Row};
use crate::store::ops::{rows, statement};
use crate::store::*;
use sqlx::PgConnection;
use sqlx::postgres::PgRow;

// The lookups that many requests make at once, each as one query over a batch of keys
// on the lookup's own connection (see `batch`). The keys come in as a joined `unnest`,
// not `= ANY($1)`: PostgreSQL's generic plan for the prepared `ANY` form scanned the
// table and compared every row with every key once the table had grown. The KYC lookup
// is one `LIMIT 1` subquery per key, which the planner cannot fold into a join: with
// fresh statistics it hashed the whole customers table for each batch instead of
// looking 64 customers up by key.
statement!(
    CLIENTS,
    "SELECT {} FROM unnest($1::TEXT[]) AS wanted (client_id) JOIN api_clients a USING (client_id)",
    rows::CLIENT_COLUMNS
);
// Codes are unique: at most one row per code, keyed by the client that owns it.
statement!(
    MERCHANTS,
    "SELECT {} FROM unnest($1::TEXT[]) AS wanted (code) JOIN merchants m USING (code)
         JOIN api_clients a ON a.pk = m.client_pk",
    rows::MERCHANT_COLUMNS
);
statement!(
    KYCS,
    "SELECT found.* FROM unnest($1::TEXT[]) AS wanted (kid) CROSS JOIN LATERAL (
           SELECT {} FROM kyc_requests k
           JOIN merchants m ON m.pk = k.merchant_pk
           JOIN api_clients a ON a.pk = m.client_pk
           JOIN customers c ON c.pk = k.customer_pk
           WHERE k.kid = wanted.kid LIMIT 1) AS found",
    rows::KYC_COLUMNS
);

pub(super) async fn clients(conn: PgConnection, ids: Vec<String>) -> Fetched<String, ClientRecord> {
    keyed(
        conn,
        CLIENTS.as_str(),
        ids,
        "reading clients",
        rows::keyed_client_record,
    )
    .await
}

pub(super) async fn merchants(
    conn: PgConnection,
    keys: Vec<(ClientPk, String)>,
) -> Fetched<(ClientPk, String), MerchantRecord> {
    let codes = keys.into_iter().map(|(_, code)| code).collect();
    keyed(
        conn,
        MERCHANTS.as_str(),
        codes,
        "reading merchants",
        rows::keyed_merchant_record,
    )
    .await
}

/// Each with the pk of the client whose merchant the request belongs to.
pub(super) async fn kycs(
    conn: PgConnection,
    kids: Vec<String>,
) -> Fetched<String, (ClientPk, KycRecord)> {
    keyed(conn, KYCS.as_str(), kids, "reading KYC requests", |r| {
        let (owner, record) = rows::owned_kyc_record(r)?;
        Ok((record.kid.clone(), (owner, record)))
    })
    .await
}

/// Runs a batched lookup whose only parameter is the keys, and keys each row it finds.
async fn keyed<K, V>(
    mut conn: PgConnection,
    sql: &'static str,
    keys: Vec<String>,
    context: &'static str,
    row: fn(&dyn Row) -> DecodeResult<(K, V)>,
) -> Fetched<K, V> {
    let found = match sqlx::query(sql)
        .bind(keys)
        .fetch_all(&mut conn)
        .await
        .ctx(context)
    {
        Ok(rows) => rows
            .iter()
            .map(|r: &PgRow| row(r).map_err(|e| crate::store::db::corrupt(context, e)))
            .collect(),
        Err(e) => Err(e),
    };
    (conn, found)
}
