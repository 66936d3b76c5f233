//! One list of migrations makes the same schema on both databases: after migrating, the
//! tables, their columns (name, kind, nullability, in order), primary keys, unique
//! constraints and named indexes (columns, uniqueness, partial predicate) are compared.
//! Databases are also brought up from an older version, as an upgrade does.

mod common;
use common::*;
use paycc::store::postgres::{PgSettings, PgStore};
use paycc::store::schema::{Dialect, MIGRATIONS};
use paycc::store::sqlite::SqliteStore;
use sqlx::Row;
use std::collections::BTreeMap;
use std::time::Duration;

/// A table as both catalogs can tell it.
#[derive(Debug, PartialEq, Eq, Default)]
struct Table {
    /// (name, kind, nullable), in column order.
    columns: Vec<(String, &'static str, bool)>,
    primary_key: Vec<String>,
    /// The column lists of unique constraints, sorted.
    unique: Vec<Vec<String>>,
    /// Named indexes: name → (columns, unique, the literals of a partial predicate).
    indexes: BTreeMap<String, (Vec<String>, bool, Vec<String>)>,
}

type Schema = BTreeMap<String, Table>;

/// SQLite spells 64-bit integers and booleans INTEGER; PostgreSQL BIGINT, INTEGER or
/// BOOLEAN. Both are one kind here.
fn kind(declared: &str) -> &'static str {
    match declared.to_ascii_lowercase().as_str() {
        "integer" | "bigint" | "boolean" => "int",
        "text" => "text",
        "blob" | "bytea" => "bytes",
        other => panic!("a column type no kind covers: {other}"),
    }
}

/// The quoted words of a partial index's predicate, sorted: `state IN ('a','b')` and
/// PostgreSQL's `state = ANY (ARRAY['a'::text, 'b'::text])` give the same.
fn literals(predicate: &str) -> Vec<String> {
    let mut words: Vec<String> = predicate
        .split('\'')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    words.sort();
    words
}

fn sqlite_schema(path: &std::path::Path) -> Schema {
    let db = rusqlite::Connection::open(path).unwrap();
    let strings = |sql: &str| -> Vec<String> {
        let mut st = db.prepare(sql).unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let mut schema = Schema::new();
    for table in strings(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    ) {
        let mut t = Table::default();
        let mut st = db.prepare(&format!("PRAGMA table_info({table})")).unwrap();
        let cols: Vec<(String, String, bool, i64)> = st
            .query_map([], |r| Ok((r.get(1)?, r.get(2)?, r.get(3)?, r.get(5)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut pk: Vec<(i64, String)> = Vec::new();
        for (name, declared, not_null, pk_position) in cols {
            if pk_position > 0 {
                pk.push((pk_position, name.clone()));
            }
            t.columns
                .push((name, kind(&declared), !not_null && pk_position == 0));
        }
        pk.sort();
        t.primary_key = pk.into_iter().map(|(_, c)| c).collect();
        let mut st = db.prepare(&format!("PRAGMA index_list({table})")).unwrap();
        let list: Vec<(String, bool, String)> = st
            .query_map([], |r| Ok((r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (index, unique, origin) in list {
            let columns = strings(&format!(
                "SELECT name FROM pragma_index_info('{index}') ORDER BY seqno"
            ));
            match origin.as_str() {
                "u" => t.unique.push(columns),
                "pk" => {}
                _ => {
                    let sql: String = db
                        .query_row(
                            "SELECT sql FROM sqlite_master WHERE name = ?1",
                            [&index],
                            |r| r.get(0),
                        )
                        .unwrap();
                    let predicate = sql.split_once(" WHERE ").map_or("", |(_, p)| p);
                    t.indexes
                        .insert(index, (columns, unique, literals(predicate)));
                }
            }
        }
        t.unique.sort();
        schema.insert(table, t);
    }
    schema
}

async fn postgres_schema(url: &str) -> Schema {
    let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap();
    let mut schema = Schema::new();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::TEXT FROM information_schema.tables
         WHERE table_schema = 'public' AND table_name <> 'paycc_migrations' ORDER BY table_name",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    for table in tables {
        let mut t = Table::default();
        let cols = sqlx::query(
            "SELECT column_name::TEXT AS name, data_type::TEXT AS type, is_nullable = 'YES' AS nullable
             FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1
             ORDER BY ordinal_position",
        )
        .bind(&table)
        .fetch_all(&mut c)
        .await
        .unwrap();
        for r in cols {
            let declared: String = r.get("type");
            t.columns
                .push((r.get("name"), kind(&declared), r.get("nullable")));
        }
        // Each index with its columns in order, whether it backs a constraint, and its
        // predicate.
        let indexes = sqlx::query(
            "SELECT i.relname::TEXT AS name, x.indisunique AS unique, x.indisprimary AS primary,
                    EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid) AS constraint,
                    COALESCE(pg_get_expr(x.indpred, x.indrelid), '') AS predicate,
                    ARRAY(SELECT a.attname::TEXT FROM unnest(x.indkey) WITH ORDINALITY AS k(attnum, n)
                          JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
                          ORDER BY k.n) AS columns
             FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
             JOIN pg_class tb ON tb.oid = x.indrelid
             WHERE tb.relname = $1",
        )
        .bind(&table)
        .fetch_all(&mut c)
        .await
        .unwrap();
        for r in indexes {
            let columns: Vec<String> = r.get("columns");
            if r.get::<bool, _>("primary") {
                t.primary_key = columns;
            } else if r.get::<bool, _>("constraint") {
                t.unique.push(columns);
            } else {
                let predicate: String = r.get("predicate");
                t.indexes.insert(
                    r.get("name"),
                    (columns, r.get("unique"), literals(&predicate)),
                );
            }
        }
        t.unique.sort();
        schema.insert(table, t);
    }
    schema
}

fn pg_settings() -> PgSettings {
    PgSettings {
        pool_size: 2,
        acquire_timeout: Duration::from_secs(5),
        call_timeout: Duration::from_secs(30),
    }
}

/// A SQLite database as an earlier release left it: the first `applied` migrations.
fn sqlite_at(path: &std::path::Path, applied: usize) -> rusqlite::Connection {
    let old = rusqlite::Connection::open(path).unwrap();
    for m in &MIGRATIONS[..applied] {
        old.execute_batch(&m.sql(Dialect::Sqlite)).unwrap();
    }
    old.execute_batch(&format!("PRAGMA user_version = {applied}"))
        .unwrap();
    old
}

/// The same on PostgreSQL, with the migrations recorded as `PgStore` records them.
async fn postgres_at(url: &str, applied: usize) -> sqlx::PgConnection {
    let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap();
    sqlx::raw_sql("CREATE TABLE paycc_migrations (version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        .execute(&mut c)
        .await
        .unwrap();
    for (i, m) in MIGRATIONS[..applied].iter().enumerate() {
        sqlx::raw_sql(sqlx::AssertSqlSafe(m.sql(Dialect::Postgres)))
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::query("INSERT INTO paycc_migrations (version) VALUES ($1)")
            .bind(i as i64 + 1)
            .execute(&mut c)
            .await
            .unwrap();
    }
    c
}

#[tokio::test]
async fn both_databases_get_the_same_schema() {
    let Some(_) = Backend::postgres() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("paycc.db");
    drop(SqliteStore::open(&path, 1).unwrap());
    let db = TestDb::create().await;
    drop(PgStore::open(&db.url, &pg_settings()).await.unwrap());
    let (lite, pg) = (sqlite_schema(&path), postgres_schema(&db.url).await);
    assert!(lite.len() >= 8, "{lite:#?}");
    for (name, table) in &lite {
        assert_eq!(Some(table), pg.get(name), "table {name}");
    }
    assert_eq!(
        lite.keys().collect::<Vec<_>>(),
        pg.keys().collect::<Vec<_>>()
    );
}

/// A database made by an earlier release (the first `applied` migrations) is brought up
/// to the same schema as a new one.
#[tokio::test]
async fn older_databases_are_brought_up_to_the_same_schema() {
    let Some(_) = Backend::postgres() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("fresh.db");
    drop(SqliteStore::open(&fresh, 1).unwrap());
    let want = sqlite_schema(&fresh);
    for applied in [4, MIGRATIONS.len() - 1] {
        let path = dir.path().join(format!("v{applied}.db"));
        drop(sqlite_at(&path, applied));
        drop(SqliteStore::open(&path, 1).unwrap());
        assert_eq!(sqlite_schema(&path), want, "SQLite from version {applied}");

        let db = TestDb::create().await;
        drop(postgres_at(&db.url, applied).await);
        drop(PgStore::open(&db.url, &pg_settings()).await.unwrap());
        assert_eq!(
            postgres_schema(&db.url).await,
            want,
            "PostgreSQL from version {applied}"
        );
    }
}

/// Requests stored before they kept their own submitted details get their customer's,
/// so every request reads after the upgrade. Rows are written at the version before.
#[tokio::test]
async fn requests_from_before_keep_their_customers_details() {
    let Some(_) = Backend::postgres() else {
        return;
    };
    let before = MIGRATIONS
        .iter()
        .position(|m| m.name == "0010_kyc_submitted")
        .unwrap();
    // One client, merchant, customer and request; $1 is the customer's sealed details.
    let rows = [
        "INSERT INTO api_clients (client_id, name, secret_hash, created_at) VALUES ('PCCA', 'P', $1, 0)",
        "INSERT INTO merchants (code, client_pk, name, created_at) SELECT 'MIDA', pk, 'S', 0 FROM api_clients",
        "INSERT INTO customers (cust_id, merchant_pk, pan_hash, mobile_hash, details_sealed, created_at, updated_at)
         SELECT 'CUST1', pk, $1, $1, $1, 0, 0 FROM merchants",
        "INSERT INTO kyc_requests (kid, reference, merchant_pk, customer_pk, provider, state, fingerprint, created_at, updated_at, expires_at)
         SELECT 'KID1', 'REF1', merchant_pk, pk, 'sandbox', 'pending', $1, 0, 0, 0 FROM customers",
    ];
    let details = b"sealed details".to_vec();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let old = sqlite_at(&path, before);
    for sql in rows {
        match sql.contains("$1") {
            true => old.execute(sql, [&details]),
            false => old.execute(sql, []),
        }
        .unwrap();
    }
    drop(old);
    drop(SqliteStore::open(&path, 1).unwrap());
    let kept: Vec<u8> = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT submitted_sealed FROM kyc_requests WHERE kid = 'KID1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kept, details, "SQLite");

    let db = TestDb::create().await;
    let mut c = postgres_at(&db.url, before).await;
    for sql in rows {
        sqlx::query(sql)
            .bind(&details)
            .execute(&mut c)
            .await
            .unwrap();
    }
    drop(PgStore::open(&db.url, &pg_settings()).await.unwrap());
    let kept: Vec<u8> = sqlx::query("SELECT submitted_sealed FROM kyc_requests WHERE kid = 'KID1'")
        .fetch_one(&mut c)
        .await
        .unwrap()
        .get(0);
    assert_eq!(kept, details, "PostgreSQL");
}
