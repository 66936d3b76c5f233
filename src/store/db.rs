//! What a store operation needs of a database, whichever it is: run a statement, fetch
//! rows and read their columns by name. Operations are written once against `Conn`
//! (`store/ops`); each backend provides it on its own connection, and keeps its own way
//! of running them (SQLite's writer batches, PostgreSQL's pool and transactions).
//!
//! SQL is written once with `$1, $2, …` placeholders, each first used in that order:
//! PostgreSQL binds them by number, SQLite (which takes `$1` as a named parameter,
//! numbered in order of first use) by position, and both then agree.

use super::schema::Dialect;
use super::{ClientPk, EventPk, MerchantPk, StoreError, StoreResult, UnixMs};
use crate::domain::state::KycState;
use std::future::Future;

pub type DecodeError = Box<dyn std::error::Error + Send + Sync>;
pub type DecodeResult<T> = Result<T, DecodeError>;

/// A value bound to a placeholder.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Int(Option<i64>),
    Text(Option<&'a str>),
    Bytes(Option<&'a [u8]>),
    Flag(bool),
    /// Arrays, for one statement over many rows through `unnest`: PostgreSQL only
    /// (SQLite has no arrays; its statements cost no round trip, so it loops).
    Ints(&'a [i64]),
    Texts(&'a [Option<&'a str>]),
    Blobs(&'a [&'a [u8]]),
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}

impl From<UnixMs> for Arg<'_> {
    fn from(v: UnixMs) -> Self {
        Arg::Int(Some(v.0))
    }
}

impl From<Option<UnixMs>> for Arg<'_> {
    fn from(v: Option<UnixMs>) -> Self {
        Arg::Int(v.map(|t| t.0))
    }
}

/// Row keys bind as the integers they are.
macro_rules! key_args {
    ($($key:ty),*) => {$(
        impl From<$key> for Arg<'_> {
            fn from(v: $key) -> Self {
                Arg::Int(Some(v.0))
            }
        }
    )*};
}
key_args!(ClientPk, MerchantPk, EventPk);

impl From<bool> for Arg<'_> {
    fn from(v: bool) -> Self {
        Arg::Flag(v)
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(Some(v))
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(Some(v))
    }
}

impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Arg::Text(v.as_deref())
    }
}

impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(v: &'a [u8]) -> Self {
        Arg::Bytes(Some(v))
    }
}

impl<'a> From<&'a Vec<u8>> for Arg<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Arg::Bytes(Some(v))
    }
}

impl<'a> From<&'a Option<Vec<u8>>> for Arg<'a> {
    fn from(v: &'a Option<Vec<u8>>) -> Self {
        Arg::Bytes(v.as_deref())
    }
}

impl<'a> From<Option<&'a [u8]>> for Arg<'a> {
    fn from(v: Option<&'a [u8]>) -> Self {
        Arg::Bytes(v)
    }
}

/// `args![a, b, …]`: the values for `$1, $2, …`.
macro_rules! args {
    ($($value:expr),* $(,)?) => {
        &[$($crate::store::db::Arg::from($value)),*]
    };
}
pub(crate) use args;

/// One result row, read by column name.
pub trait Row {
    fn int(&self, column: &str) -> DecodeResult<Option<i64>>;
    fn text(&self, column: &str) -> DecodeResult<Option<String>>;
    fn bytes(&self, column: &str) -> DecodeResult<Option<Vec<u8>>>;
    fn flag(&self, column: &str) -> DecodeResult<bool>;
}

/// Reads a column that is never NULL.
fn present<T>(column: &str, value: Option<T>) -> DecodeResult<T> {
    value.ok_or_else(|| format!("column {column} is NULL").into())
}

/// Typed reads over `Row`.
pub trait Columns: Row {
    fn i64(&self, column: &str) -> DecodeResult<i64> {
        present(column, self.int(column)?)
    }
    fn string(&self, column: &str) -> DecodeResult<String> {
        present(column, self.text(column)?)
    }
    fn blob(&self, column: &str) -> DecodeResult<Vec<u8>> {
        present(column, self.bytes(column)?)
    }
    fn at(&self, column: &str) -> DecodeResult<UnixMs> {
        self.i64(column).map(UnixMs)
    }
    fn at_opt(&self, column: &str) -> DecodeResult<Option<UnixMs>> {
        Ok(self.int(column)?.map(UnixMs))
    }
    fn state(&self, column: &str) -> DecodeResult<KycState> {
        let text = self.string(column)?;
        KycState::parse(&text).ok_or_else(|| format!("unknown KYC state {text:?}").into())
    }
}

impl<R: Row + ?Sized> Columns for R {}

/// A decoder of one row into a record.
pub type Decode<T> = fn(&dyn Row) -> DecodeResult<T>;

/// A statement to run: what it is for (in errors), its text and its values.
#[derive(Clone, Copy)]
pub struct Statement<'a> {
    pub context: &'static str,
    pub sql: &'static str,
    pub args: &'a [Arg<'a>],
}

/// A connection a store operation runs on; inside the caller's transaction when it has
/// one. Each database provides `changes` and `rows`; operations call the rest.
pub trait Conn {
    fn dialect(&self) -> Dialect;

    /// Runs a statement; how many rows it changed.
    fn changes(&mut self, st: Statement<'_>) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Every row a statement yields, decoded.
    fn rows<T: Send + 'static>(
        &mut self,
        st: Statement<'_>,
        decode: Decode<T>,
    ) -> impl Future<Output = StoreResult<Vec<T>>> + Send;

    /// Runs a statement; how many rows it changed.
    fn execute(
        &mut self,
        context: &'static str,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = StoreResult<u64>> + Send {
        self.changes(Statement { context, sql, args })
    }

    /// Every row the statement yields, decoded.
    fn fetch<T: Send + 'static>(
        &mut self,
        context: &'static str,
        sql: &'static str,
        args: &[Arg<'_>],
        decode: Decode<T>,
    ) -> impl Future<Output = StoreResult<Vec<T>>> + Send {
        self.rows(Statement { context, sql, args }, decode)
    }

    /// The first row, if any.
    fn fetch_one<T: Send + 'static>(
        &mut self,
        context: &'static str,
        sql: &'static str,
        args: &[Arg<'_>],
        decode: Decode<T>,
    ) -> impl Future<Output = StoreResult<Option<T>>> + Send {
        let rows = self.fetch(context, sql, args, decode);
        async move { Ok(rows.await?.into_iter().next()) }
    }
}

/// A unique rule a write can break, named for what it keeps unique.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unique {
    ClientId,
    MerchantCode,
    CustId,
    /// One customer per merchant and PAN.
    CustomerPan,
    Kid,
    Reference,
    /// One open request per identical init.
    OpenIdentical,
    EventId,
    Other,
}

/// (rule, PostgreSQL's constraint or index name, SQLite's `table.column, …`).
const UNIQUE_RULES: &[(Unique, &str, &str)] = &[
    (
        Unique::ClientId,
        "api_clients_client_id_key",
        "api_clients.client_id",
    ),
    (Unique::MerchantCode, "merchants_code_key", "merchants.code"),
    (Unique::CustId, "customers_cust_id_key", "customers.cust_id"),
    (
        Unique::CustomerPan,
        "customers_merchant_pk_pan_hash_key",
        "customers.merchant_pk, customers.pan_hash",
    ),
    (Unique::Kid, "kyc_requests_pkey", "kyc_requests.kid"),
    (
        Unique::Reference,
        "kyc_requests_reference_key",
        "kyc_requests.reference",
    ),
    (
        Unique::OpenIdentical,
        "kyc_requests_one_open_per_customer_fingerprint",
        "kyc_requests.customer_pk, kyc_requests.fingerprint",
    ),
    (
        Unique::EventId,
        "callback_events_event_id_key",
        "callback_events.event_id",
    ),
];

impl Unique {
    /// The rule PostgreSQL names by its constraint.
    pub fn from_postgres(constraint: Option<&str>) -> Self {
        UNIQUE_RULES
            .iter()
            .find(|(_, name, _)| Some(*name) == constraint)
            .map_or(Unique::Other, |(rule, _, _)| *rule)
    }

    /// The rule SQLite names by its columns (`UNIQUE constraint failed: t.a, t.b`).
    pub fn from_sqlite(columns: &str) -> Self {
        UNIQUE_RULES
            .iter()
            .find(|(_, _, cols)| *cols == columns)
            .map_or(Unique::Other, |(rule, _, _)| *rule)
    }
}

impl std::fmt::Display for Unique {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// A decode failure as a store error.
pub fn corrupt(context: &'static str, e: DecodeError) -> StoreError {
    StoreError::Corrupt(format!("{context}: {e}"))
}
