//! How a store call runs a statement: its `$1…$n` take [`Arg`]s, values either backend can
//! bind, so one call serves both; [`Store::execute`] and the `fetch_*` helpers run a single
//! statement under the store's deadline, and [`BindArgs`] binds the statements of a
//! transaction written out in `with_pool!`.

use sqlx::postgres::PgRow;
use sqlx::query::{Query, QueryAs};
use sqlx::sqlite::SqliteRow;
use sqlx::{Database, Encode, FromRow, Type};

use super::{Backend, Store, UnixMillis};
use crate::error::StoreError;

/// A value for one `$N` placeholder. The schema stores text and integers (times are epoch
/// milliseconds); one statement takes a boolean. `None` binds `NULL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Arg<'a> {
    /// A text value.
    Text(Option<&'a str>),
    /// A 64-bit integer.
    Int(Option<i64>),
    /// A boolean (Postgres types `CASE WHEN $n` by it).
    Bool(bool),
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

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::Text(v)
    }
}

impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Arg::Text(v.as_deref())
    }
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

/// An SMS cap: stored as an integer, `NULL` for none.
impl From<Option<u32>> for Arg<'_> {
    fn from(v: Option<u32>) -> Self {
        Arg::Int(v.map(i64::from))
    }
}

impl From<UnixMillis> for Arg<'_> {
    fn from(v: UnixMillis) -> Self {
        Arg::Int(Some(v.into()))
    }
}

impl From<bool> for Arg<'_> {
    fn from(v: bool) -> Self {
        Arg::Bool(v)
    }
}

/// A statement of either backend, plain or mapped to rows, that takes [`Arg`]s.
pub(super) trait BindArgs<'q, DB: Database>: Sized {
    /// Binds one more value.
    fn bind_value<T: 'q + Encode<'q, DB> + Type<DB>>(self, value: T) -> Self;

    /// Binds `args` to the next placeholders, in order.
    fn bind_args(self, args: &[Arg<'q>]) -> Self
    where
        Option<&'q str>: Encode<'q, DB> + Type<DB>,
        Option<i64>: Encode<'q, DB> + Type<DB>,
        bool: Encode<'q, DB> + Type<DB>,
    {
        args.iter().fold(self, |q, arg| match *arg {
            Arg::Text(v) => q.bind_value(v),
            Arg::Int(v) => q.bind_value(v),
            Arg::Bool(v) => q.bind_value(v),
        })
    }
}

impl<'q, DB: Database> BindArgs<'q, DB> for Query<'q, DB, DB::Arguments<'q>> {
    fn bind_value<T: 'q + Encode<'q, DB> + Type<DB>>(self, value: T) -> Self {
        self.bind(value)
    }
}

impl<'q, DB: Database, O> BindArgs<'q, DB> for QueryAs<'q, DB, O, DB::Arguments<'q>> {
    fn bind_value<T: 'q + Encode<'q, DB> + Type<DB>>(self, value: T) -> Self {
        self.bind(value)
    }
}

/// A row type (a struct deriving [`FromRow`], or a tuple) that both backends decode.
pub(super) trait Record:
    for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin
{
}

impl<T> Record for T where
    T: for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin
{
}

impl Store {
    /// Runs one statement; how many rows it changed.
    pub(super) async fn execute(&self, sql: &str, args: &[Arg<'_>]) -> Result<u64, StoreError> {
        Ok(with_pool!(self, conn => {
            sqlx::query(sql).bind_args(args).execute(&mut *conn).await?.rows_affected()
        }))
    }

    /// The one row a query returns; sqlx's `RowNotFound` if it returns none.
    pub(super) async fn fetch_one<T: Record>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<T, StoreError> {
        self.fetch_optional(sql, args)
            .await?
            .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }

    /// Runs `delete` (a `DELETE … WHERE project_id = $1` of one of a project's optional
    /// settings rows); whether there was one.
    pub(super) async fn delete_project_row(
        &self,
        delete: &str,
        project_id: &str,
    ) -> Result<bool, StoreError> {
        Ok(self.execute(delete, &[project_id.into()]).await? > 0)
    }

    /// The first row a query returns, if any.
    pub(super) async fn fetch_optional<T: Record>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Option<T>, StoreError> {
        Ok(with_pool!(self, conn => {
            sqlx::query_as(sql).bind_args(args).fetch_optional(&mut *conn).await?
        }))
    }

    /// Every row a query returns.
    pub(super) async fn fetch_all<T: Record>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Vec<T>, StoreError> {
        Ok(with_pool!(self, conn => {
            sqlx::query_as(sql).bind_args(args).fetch_all(&mut *conn).await?
        }))
    }
}
