//! `Conn` on a SQLite connection. Statements run synchronously on the caller's thread (the
//! writer or a reader), so the operation's future is complete on its first poll.

use super::Ctx;
use crate::store::StoreResult;
use crate::store::db::{Arg, Conn, Decode, DecodeResult, Row, Statement};
use crate::store::schema::Dialect;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{CachedStatement, Connection, ToSql};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::{Future, ready};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

impl ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self {
            Arg::Int(Some(v)) => ToSqlOutput::Owned(Value::Integer(v)),
            Arg::Flag(v) => ToSqlOutput::Owned(Value::Integer(i64::from(v))),
            Arg::Text(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Arg::Bytes(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Blob(v)),
            Arg::Int(None) | Arg::Text(None) | Arg::Bytes(None) => ToSqlOutput::Owned(Value::Null),
            Arg::Ints(_) | Arg::Texts(_) | Arg::Blobs(_) => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    "SQLite has no arrays: a statement over many rows loops here".into(),
                ));
            }
        })
    }
}

/// A row read by column name. Decoders mostly read columns in the order the statement
/// lists them, so the column after the last one read is tried first, against names
/// kept per statement: asking SQLite for a column's name (a C string, checked as UTF-8)
/// for every read was 4% of a status read's instructions.
struct LiteRow<'a, 'stmt> {
    row: &'a rusqlite::Row<'stmt>,
    names: &'a [Box<str>],
    next: Cell<usize>,
}

impl LiteRow<'_, '_> {
    fn index(&self, column: &str) -> DecodeResult<usize> {
        let guess = self.next.get();
        let at = if self.names.get(guess).is_some_and(|n| &**n == column) {
            guess
        } else {
            self.names
                .iter()
                .position(|n| &**n == column)
                .ok_or_else(|| format!("no column {column}"))?
        };
        self.next.set(at + 1);
        Ok(at)
    }

    fn get<T: rusqlite::types::FromSql>(&self, column: &str) -> DecodeResult<T> {
        Ok(self.row.get(self.index(column)?)?)
    }
}

thread_local! {
    /// Each statement's column names, by the address of its (static) SQL text: every
    /// store thread runs the same few statements for its whole life.
    static COLUMN_NAMES: RefCell<HashMap<usize, Rc<[Box<str>]>>> = RefCell::default();
}

fn column_names(sql: &'static str, statement: &rusqlite::Statement<'_>) -> Rc<[Box<str>]> {
    COLUMN_NAMES.with(|cache| {
        cache
            .borrow_mut()
            .entry(sql.as_ptr() as usize)
            .or_insert_with(|| statement.column_names().map(Box::from).collect())
            .clone()
    })
}

impl Row for LiteRow<'_, '_> {
    fn int(&self, column: &str) -> DecodeResult<Option<i64>> {
        self.get(column)
    }
    fn text(&self, column: &str) -> DecodeResult<Option<String>> {
        self.get(column)
    }
    fn bytes(&self, column: &str) -> DecodeResult<Option<Vec<u8>>> {
        self.get(column)
    }
    fn flag(&self, column: &str) -> DecodeResult<bool> {
        self.get(column)
    }
}

/// Prepares (or takes from the connection's cache) a shared statement.
fn prepared<'c>(conn: &'c Connection, st: Statement<'_>) -> StoreResult<CachedStatement<'c>> {
    debug_assert!(
        placeholders_in_order(st.sql),
        "placeholders must first appear as $1, $2, …: {}",
        st.sql
    );
    conn.prepare_cached(st.sql).ctx(st.context)
}

impl Conn for Connection {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn changes(&mut self, st: Statement<'_>) -> impl Future<Output = StoreResult<u64>> + Send {
        let params = rusqlite::params_from_iter(st.args);
        let done = prepared(self, st).and_then(|mut s| s.execute(params).ctx(st.context));
        ready(done.map(|n| n as u64))
    }

    fn rows<T: Send + 'static>(
        &mut self,
        st: Statement<'_>,
        decode: Decode<T>,
    ) -> impl Future<Output = StoreResult<Vec<T>>> + Send {
        let context = st.context;
        let rows = prepared(self, st).and_then(|mut prepared| {
            let names = column_names(st.sql, &prepared);
            let mut rows = prepared
                .query(rusqlite::params_from_iter(st.args))
                .ctx(context)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().ctx(context)? {
                let row = LiteRow {
                    row,
                    names: &names,
                    next: Cell::new(0),
                };
                out.push(decode(&row).map_err(|e| crate::store::db::corrupt(context, e))?);
            }
            Ok(out)
        });
        ready(rows)
    }
}

/// Runs a store operation on a SQLite connection: it never waits, so one poll ends it.
pub(super) fn run_now<T>(operation: impl Future<Output = T>) -> T {
    let mut operation = std::pin::pin!(operation);
    match operation
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(value) => value,
        Poll::Pending => unreachable!("a SQLite store operation waited"),
    }
}

/// Whether `$1, $2, …` each first appear in that order, so that SQLite's numbering of
/// named parameters (by first appearance) matches their numbers.
fn placeholders_in_order(sql: &str) -> bool {
    let mut next = 1;
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let Ok(n) = digits.parse::<usize>() else {
            continue;
        };
        if n == next {
            next += 1;
        } else if n > next {
            return false;
        }
    }
    true
}
