//! `Conn` on a PostgreSQL connection (a pooled one, or the connection of a transaction).

use super::Ctx;
use crate::store::StoreResult;
use crate::store::db::{Arg, Conn, Decode, DecodeResult, Row, Statement, corrupt};
use crate::store::schema::Dialect;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{PgConnection, Postgres, Row as _};
use std::future::Future;

impl Row for PgRow {
    fn int(&self, column: &str) -> DecodeResult<Option<i64>> {
        // 32-bit columns (a face-match score) read as well as 64-bit ones.
        match self.try_get::<Option<i64>, _>(column) {
            Ok(v) => Ok(v),
            Err(_) => Ok(self.try_get::<Option<i32>, _>(column)?.map(i64::from)),
        }
    }
    fn text(&self, column: &str) -> DecodeResult<Option<String>> {
        Ok(self.try_get(column)?)
    }
    fn bytes(&self, column: &str) -> DecodeResult<Option<Vec<u8>>> {
        Ok(self.try_get(column)?)
    }
    fn flag(&self, column: &str) -> DecodeResult<bool> {
        Ok(self.try_get(column)?)
    }
}

fn bound<'q>(st: Statement<'q>) -> Query<'q, Postgres, PgArguments> {
    st.args
        .iter()
        .fold(sqlx::query(st.sql), |q, arg| match *arg {
            Arg::Int(v) => q.bind(v),
            Arg::Flag(v) => q.bind(v),
            Arg::Text(v) => q.bind(v),
            Arg::Bytes(v) => q.bind(v),
            Arg::Ints(v) => q.bind(v),
            Arg::Texts(v) => q.bind(v),
            Arg::Blobs(v) => q.bind(v),
        })
}

impl Conn for PgConnection {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn changes(&mut self, st: Statement<'_>) -> impl Future<Output = StoreResult<u64>> + Send {
        let query = bound(st);
        async move {
            let done = query.execute(&mut *self).await.ctx(st.context)?;
            Ok(done.rows_affected())
        }
    }

    fn rows<T: Send + 'static>(
        &mut self,
        st: Statement<'_>,
        decode: Decode<T>,
    ) -> impl Future<Output = StoreResult<Vec<T>>> + Send {
        let query = bound(st);
        async move {
            let rows = query.fetch_all(&mut *self).await.ctx(st.context)?;
            rows.iter()
                .map(|r| decode(r).map_err(|e| corrupt(st.context, e)))
                .collect()
        }
    }
}
