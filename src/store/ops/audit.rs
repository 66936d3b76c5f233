//! The audit trail: entries appended in order, each linked to the one before by the
//! keyed hash the service gives (`AuditLink`), and read back newest first or in order.

use crate::store::backend::Access::{Atomic, Read};
use crate::store::backend::{Args, Backend, Job, Operation, Run};
use crate::store::db::{Arg, Columns, Conn, DecodeResult, Row, args};
use crate::store::schema::Dialect;
use crate::store::*;
use async_trait::async_trait;
use std::future::Future;
use std::sync::{Arc, LazyLock};

/// The PostgreSQL advisory lock appends take in turn on every node (an arbitrary key of
/// paycc's own), so each links to the entry committed before it. SQLite's single
/// writer does the same.
const APPEND_LOCK: i64 = 0x7061_7963_635f_6175; // "paycc_au"

const COLUMNS: &str = "seq, at, actor, action, kid, cust_id, client_id, request_id, outcome, chain";

fn audit_record(r: &dyn Row) -> DecodeResult<AuditRecord> {
    Ok(AuditRecord {
        seq: r.i64("seq")?,
        entry: AuditEntry {
            at: r.at("at")?,
            actor: r.string("actor")?,
            action: r.string("action")?,
            kid: r.text("kid")?,
            cust_id: r.text("cust_id")?,
            client_id: r.text("client_id")?,
            request_id: r.text("request_id")?,
            outcome: r.string("outcome")?,
        },
        chain: r.blob("chain")?,
    })
}

fn last(r: &dyn Row) -> DecodeResult<(i64, Vec<u8>)> {
    Ok((r.i64("seq")?, r.blob("chain")?))
}

const INSERT: &str = "INSERT INTO audit_log (seq, at, actor, action, kid, cust_id, client_id, request_id, outcome, chain)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

// PostgreSQL takes all of an append's entries in one statement: a statement per entry
// was a round trip each, made while every other append waited on the lock, and capped
// status reads at ~5.5k a second.
const INSERT_ALL: &str = "INSERT INTO audit_log (seq, at, actor, action, kid, cust_id, client_id, request_id, outcome, chain)
     SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::TEXT[],
       $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::BYTEA[])";

/// Appends `note`'s entries after the last one, each linked to the one before.
pub async fn append(c: &mut impl Conn, note: &AuditNote) -> StoreResult<()> {
    if note.entries.is_empty() {
        return Ok(());
    }
    let dialect = c.dialect();
    if dialect == Dialect::Postgres {
        c.execute(
            "waiting for the audit trail",
            "SELECT pg_advisory_xact_lock($1)",
            args![APPEND_LOCK],
        )
        .await?;
    }
    let (end, mut chain) = c
        .fetch_one(
            "reading the end of the audit trail",
            "SELECT seq, chain FROM audit_log ORDER BY seq DESC LIMIT 1",
            args![],
            last,
        )
        .await?
        .unwrap_or((0, Vec::new()));
    let seqs: Vec<i64> = (end + 1..).take(note.entries.len()).collect();
    let chains: Vec<Vec<u8>> = note
        .entries
        .iter()
        .zip(&seqs)
        .map(|(e, &seq)| {
            chain = (note.link)(&chain, seq, e);
            chain.clone()
        })
        .collect();
    let context = "appending to the audit trail";
    if dialect == Dialect::Sqlite {
        for ((e, &seq), chain) in note.entries.iter().zip(&seqs).zip(&chains) {
            let row = args![
                seq,
                e.at,
                &e.actor,
                &e.action,
                &e.kid,
                &e.cust_id,
                &e.client_id,
                &e.request_id,
                &e.outcome,
                chain
            ];
            c.execute(context, INSERT, row).await?;
        }
        return Ok(());
    }
    let column = |field: fn(&AuditEntry) -> Option<&str>| -> Vec<Option<&str>> {
        note.entries.iter().map(field).collect()
    };
    let ats: Vec<i64> = note.entries.iter().map(|e| e.at.0).collect();
    let texts = [
        column(|e| Some(&e.actor)),
        column(|e| Some(&e.action)),
        column(|e| e.kid.as_deref()),
        column(|e| e.cust_id.as_deref()),
        column(|e| e.client_id.as_deref()),
        column(|e| e.request_id.as_deref()),
        column(|e| Some(&e.outcome)),
    ];
    let chains: Vec<&[u8]> = chains.iter().map(Vec::as_slice).collect();
    let mut values = vec![Arg::Ints(&seqs), Arg::Ints(&ats)];
    values.extend(texts.iter().map(|t| Arg::Texts(t)));
    values.push(Arg::Blobs(&chains));
    c.execute(context, INSERT_ALL, &values).await.map(drop)
}

/// The listing for each combination of filters (kid, client): placeholders numbered in
/// the order they appear, as SQLite wants.
static LISTS: LazyLock<[String; 4]> = LazyLock::new(|| {
    [(false, false), (false, true), (true, false), (true, true)].map(|(kid, client)| {
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        let mut conditions = Vec::new();
        if kid {
            conditions.push(format!("kid = {}", next()));
        }
        if client {
            conditions.push(format!("client_id = {}", next()));
        }
        conditions.push(format!("at >= {}", next()));
        format!(
            "SELECT {COLUMNS} FROM audit_log WHERE {} ORDER BY seq DESC LIMIT {}",
            conditions.join(" AND "),
            next()
        )
    })
});

pub async fn list(c: &mut impl Conn, f: &AuditFilter) -> StoreResult<Vec<AuditRecord>> {
    let sql = &LISTS[usize::from(f.kid.is_some()) * 2 + usize::from(f.client_id.is_some())];
    let mut values: Vec<Arg<'_>> = Vec::with_capacity(4);
    values.extend(f.kid.as_deref().map(Arg::from));
    values.extend(f.client_id.as_deref().map(Arg::from));
    values.push(Arg::from(f.since.unwrap_or(UnixMs(0))));
    values.push(Arg::from(f.limit));
    c.fetch("listing the audit trail", sql, &values, audit_record)
        .await
}

pub async fn chain(c: &mut impl Conn, after: i64, limit: i64) -> StoreResult<Vec<AuditRecord>> {
    static CHAIN: LazyLock<String> = LazyLock::new(|| {
        format!("SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2")
    });
    c.fetch(
        "reading the audit trail in order",
        CHAIN.as_str(),
        args![after, limit],
        audit_record,
    )
    .await
}

#[async_trait]
impl<B: Backend> AuditTrail for B {
    async fn append_audit(&self, note: AuditNote) -> StoreResult<()> {
        self.append_audit_alone(note).await
    }

    async fn audit_entries(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRecord>> {
        self.run(Read, filter.clone(), |c, f| Box::pin(list(c, f)))
            .await
    }

    async fn audit_chain(&self, after: i64, limit: i64) -> StoreResult<Vec<AuditRecord>> {
        self.run(Read, (), move |c, ()| Box::pin(chain(c, after, limit)))
            .await
    }
}

/// A backend whose every job also appends its note's entries, in the job's own
/// transaction (on SQLite, the same write of the writer's group commit): the change and
/// its record land together or not at all.
pub struct Audited<B> {
    inner: Arc<B>,
    note: AuditNote,
}

impl<B: Backend> Backend for Audited<B> {
    type Conn = B::Conn;

    fn submit<A: Args, T: Send + 'static, F: Operation<B::Conn, A, T>>(
        &self,
        Job { args, op, .. }: Job<A, F>,
    ) -> impl Future<Output = StoreResult<T>> + Send {
        let (op, note) = (Arc::new(op), self.note.clone());
        self.inner.run(Atomic, args, move |c, a| {
            let (op, note) = (op.clone(), note.clone());
            Box::pin(async move {
                let done = op(&mut *c, a).await?;
                append(c, &note).await?;
                Ok(done)
            })
        })
    }

    fn schema_version(&self) -> impl Future<Output = StoreResult<i64>> + Send {
        self.inner.schema_version()
    }

    fn credentials(&self) -> &Arc<crate::store::credentials::Credentials> {
        self.inner.credentials()
    }

    fn lookup_client(
        &self,
        client_id: &str,
    ) -> impl Future<Output = StoreResult<Option<ClientRecord>>> + Send {
        self.inner.lookup_client(client_id)
    }

    fn lookup_merchant(
        &self,
        client_pk: ClientPk,
        code: &str,
    ) -> impl Future<Output = StoreResult<Option<MerchantRecord>>> + Send {
        self.inner.lookup_merchant(client_pk, code)
    }

    fn lookup_kyc(
        &self,
        kid: &str,
    ) -> impl Future<Output = StoreResult<Option<(ClientPk, KycRecord)>>> + Send {
        self.inner.lookup_kyc(kid)
    }

    fn append_audit_alone(&self, note: AuditNote) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.append_audit_alone(note)
    }
}

/// `append` as a shared operation, for the backends' own runs.
pub fn append_op<'c, C: Conn + Send>(c: &'c mut C, note: &'c AuditNote) -> Run<'c, ()> {
    Box::pin(append(c, note))
}

impl<B: Backend> Audited<B> {
    pub fn wrap(inner: Arc<B>, note: AuditNote) -> Arc<dyn Store>
    where
        Self: Store,
    {
        Arc::new(Self { inner, note })
    }
}

/// Audited again: one wrapper with both notes' entries (a wrapper of a wrapper would be
/// a type without end).
impl<B: Backend> Store for Audited<B> {
    fn audited(self: Arc<Self>, mut note: AuditNote) -> Arc<dyn Store> {
        let mut entries = self.note.entries.clone();
        entries.append(&mut note.entries);
        Arc::new(Self {
            inner: self.inner.clone(),
            note: AuditNote {
                entries,
                link: note.link,
            },
        })
    }
}
