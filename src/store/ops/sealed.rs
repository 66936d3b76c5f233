//! Sealed values as a key rotation sees them: each sealed column walked in key order, a
//! batch at a time, values replaced only where the row still holds what was read, and
//! counted by the key that seals them. Which data keys this database has seen is kept
//! too, so a start cannot drop one that still seals something.

use super::rows;
use crate::domain::sealed::{customer_row, idempotency_row};
use crate::store::backend::Access::{Atomic, Read, Write};
use crate::store::backend::Backend;
use crate::store::db::{Arg, Columns, Conn, Decode, DecodeResult, Row, args};
use crate::store::*;
use async_trait::async_trait;

/// How the rows of a sealed column's table are told apart and ordered: by an integer,
/// a text, or an integer then a text. Every walk reads both halves of the cursor
/// (`key_int`, `key_text`); a key of one column fills the other with a constant.
#[derive(Clone, Copy)]
enum Key {
    Int(&'static str),
    Text(&'static str),
    Pair(&'static str, &'static str),
}

struct Spec {
    table: &'static str,
    column: &'static str,
    key: Key,
    /// The columns `decode` reads besides the key and the value.
    row_columns: &'static str,
    /// The value with its cursor and the id it is bound to (`domain::sealed`).
    decode: Decode<SealedValue>,
}

fn value(r: &dyn Row, row: String) -> DecodeResult<SealedValue> {
    Ok(SealedValue {
        cursor: SealedCursor {
            int: r.i64("key_int")?,
            text: r.string("key_text")?,
        },
        row,
        sealed: r.blob("sealed")?,
    })
}

fn spec(column: SealedColumn) -> Spec {
    let kyc = |column, decode| Spec {
        table: "kyc_requests",
        column,
        // Not the kid: a remote provider's kid replaces paycc's once, mid-walk maybe.
        key: Key::Text("reference"),
        row_columns: "kid, reference",
        decode,
    };
    let sandbox = |column| Spec {
        table: "sandbox_sessions",
        column,
        key: Key::Text("kid"),
        row_columns: "kid",
        decode: |r| value(r, r.string("kid")?),
    };
    match column {
        SealedColumn::CustomerDetails => Spec {
            table: "customers",
            column: "details_sealed",
            key: Key::Int("pk"),
            row_columns: "merchant_pk, pan_hash",
            decode: |r| value(r, customer_row(r.i64("merchant_pk")?, &r.blob("pan_hash")?)),
        },
        SealedColumn::KycSubmitted => kyc("submitted_sealed", |r| value(r, r.string("reference")?)),
        SealedColumn::KycUrl => kyc("url_sealed", |r| value(r, r.string("kid")?)),
        SealedColumn::KycResult => kyc("result_sealed", |r| value(r, r.string("kid")?)),
        SealedColumn::CallbackSecret => Spec {
            table: "api_clients",
            column: "callback_secret_sealed",
            key: Key::Int("pk"),
            row_columns: "client_id",
            decode: |r| value(r, r.string("client_id")?),
        },
        SealedColumn::IdempotentReply => Spec {
            table: "idempotency_keys",
            column: "reply_sealed",
            key: Key::Pair("client_pk", "idem_key"),
            row_columns: "client_pk, idem_key",
            decode: |r| {
                value(
                    r,
                    idempotency_row(r.i64("client_pk")?, &r.string("idem_key")?),
                )
            },
        },
        SealedColumn::SandboxSelfie => sandbox("selfie_sealed"),
        SealedColumn::SandboxPerson => sandbox("person_sealed"),
    }
}

impl Key {
    fn select(self) -> String {
        match self {
            Key::Int(c) => format!("{c} AS key_int, '' AS key_text"),
            Key::Text(c) => format!("CAST(0 AS BIGINT) AS key_int, {c} AS key_text"),
            Key::Pair(i, t) => format!("{i} AS key_int, {t} AS key_text"),
        }
    }

    fn order(self) -> String {
        match self {
            Key::Int(c) | Key::Text(c) => c.to_owned(),
            Key::Pair(i, t) => format!("{i}, {t}"),
        }
    }

    /// The key `op` (`>` or `=`) the cursor, its placeholders numbered from `first`;
    /// the next free number.
    fn condition(self, op: &str, first: usize) -> (String, usize) {
        match self {
            Key::Int(c) | Key::Text(c) => (format!("{c} {op} ${first}"), first + 1),
            Key::Pair(i, t) if op == "=" => (
                format!("{i} = ${first} AND {t} = ${}", first + 1),
                first + 2,
            ),
            Key::Pair(i, t) => (
                format!("({i}, {t}) {op} (${first}, ${})", first + 1),
                first + 2,
            ),
        }
    }

    /// The cursor's values for `condition`'s placeholders.
    fn args(self, at: &SealedCursor) -> Vec<Arg<'_>> {
        match self {
            Key::Int(_) => vec![Arg::from(at.int)],
            Key::Text(_) => vec![Arg::from(&at.text)],
            Key::Pair(..) => vec![Arg::from(at.int), Arg::from(&at.text)],
        }
    }
}

/// A value is there: an erased customer keeps an empty one.
fn present(column: &str) -> String {
    format!("{column} IS NOT NULL AND length({column}) > 0")
}

/// Each column's statements, made once.
struct Statements {
    spec: Spec,
    /// Values after the cursor that do not begin with the current prefix (measured by
    /// the prefix's own length: PostgreSQL takes no bigint where `substr` wants an int).
    batch: String,
    /// A new value where the row still holds the old one.
    replace: String,
    count_all: String,
    count_prefix: String,
}

static STATEMENTS: std::sync::LazyLock<Vec<Statements>> = std::sync::LazyLock::new(|| {
    SealedColumn::ALL
        .iter()
        .map(|&column| {
            let s = spec(column);
            let col = s.column;
            let (after, next) = s.key.condition(">", 1);
            let batch = format!(
                "SELECT {}, {}, {col} AS sealed FROM {} WHERE {after} AND {} AND substr({col}, 1, length(${next})) <> ${next}
                 ORDER BY {} LIMIT ${}",
                s.key.select(),
                s.row_columns,
                s.table,
                present(col),
                s.key.order(),
                next + 1,
            );
            let (same, next) = s.key.condition("=", 2);
            let replace = format!(
                "UPDATE {} SET {col} = $1 WHERE {same} AND {col} = ${next}",
                s.table
            );
            let count_all = format!("SELECT COUNT(*) AS n FROM {} WHERE {}", s.table, present(col));
            let count_prefix = format!("{count_all} AND substr({col}, 1, length($1)) = $1");
            Statements {
                spec: s,
                batch,
                replace,
                count_all,
                count_prefix,
            }
        })
        .collect()
});

fn statements(column: SealedColumn) -> &'static Statements {
    let i = SealedColumn::ALL
        .iter()
        .position(|&c| c == column)
        .expect("every column is in ALL");
    &STATEMENTS[i]
}

pub async fn batch(
    c: &mut impl Conn,
    column: SealedColumn,
    current: &[u8],
    after: &SealedCursor,
    limit: i64,
) -> StoreResult<Vec<SealedValue>> {
    let st = statements(column);
    let mut values = st.spec.key.args(after);
    values.push(Arg::from(current));
    values.push(Arg::from(limit));
    c.fetch(
        "reading sealed values to re-seal",
        &st.batch,
        &values,
        st.spec.decode,
    )
    .await
}

/// Writes each new value where its row still holds the old one; how many were written.
pub async fn replace(
    c: &mut impl Conn,
    column: SealedColumn,
    values: &[Resealed],
) -> StoreResult<u64> {
    let st = statements(column);
    let mut replaced = 0;
    for v in values {
        let mut values = vec![Arg::from(&v.new)];
        values.extend(st.spec.key.args(&v.cursor));
        values.push(Arg::from(&v.old));
        replaced += c
            .execute("replacing a sealed value", &st.replace, &values)
            .await?;
    }
    Ok(replaced)
}

/// Values of `column` that begin with `prefix` (all of them for an empty one).
pub async fn count(c: &mut impl Conn, column: SealedColumn, prefix: &[u8]) -> StoreResult<i64> {
    let st = statements(column);
    let counted = if prefix.is_empty() {
        c.fetch_one("counting sealed values", &st.count_all, args![], rows::int)
            .await?
    } else {
        c.fetch_one(
            "counting sealed values",
            &st.count_prefix,
            args![prefix],
            rows::int,
        )
        .await?
    };
    Ok(counted.unwrap_or_default())
}

#[async_trait]
impl<B: Backend> SealedValues for B {
    async fn sealed_batch(
        &self,
        column: SealedColumn,
        current: &[u8],
        after: &SealedCursor,
        limit: i64,
    ) -> StoreResult<Vec<SealedValue>> {
        let args = (current.to_vec(), after.clone());
        self.run(Read, args, move |c, (current, after)| {
            Box::pin(batch(c, column, current, after, limit))
        })
        .await
    }

    async fn replace_sealed(
        &self,
        column: SealedColumn,
        values: Vec<Resealed>,
    ) -> StoreResult<u64> {
        self.run(Atomic, values, move |c, values| {
            Box::pin(replace(c, column, values))
        })
        .await
    }

    async fn count_sealed(&self, column: SealedColumn, prefix: &[u8]) -> StoreResult<i64> {
        self.run(Read, prefix.to_vec(), move |c, prefix| {
            Box::pin(count(c, column, prefix))
        })
        .await
    }

    async fn data_keys(&self) -> StoreResult<Vec<String>> {
        self.run(Read, (), |c, ()| {
            Box::pin(c.fetch(
                "reading the noted data keys",
                "SELECT key_id FROM data_keys ORDER BY key_id",
                args![],
                |r| r.string("key_id"),
            ))
        })
        .await
    }

    async fn note_data_keys(&self, ids: Vec<String>, now: UnixMs) -> StoreResult<()> {
        self.run(Write, ids, move |c, ids| {
            Box::pin(async move {
                for id in ids {
                    c.execute(
                        "noting a data key",
                        "INSERT INTO data_keys (key_id, noted_at) VALUES ($1, $2)
                         ON CONFLICT (key_id) DO NOTHING",
                        args![id, now],
                    )
                    .await?;
                }
                Ok(())
            })
        })
        .await
    }

    async fn forget_data_key(&self, id: &str) -> StoreResult<()> {
        self.run(Write, id.to_owned(), |c, id| {
            Box::pin(async move {
                c.execute(
                    "forgetting a data key",
                    "DELETE FROM data_keys WHERE key_id = $1",
                    args![id],
                )
                .await
                .map(drop)
            })
        })
        .await
    }
}
