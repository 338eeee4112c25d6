//! The `"user"` table.

use chrono::{DateTime, Utc};

use super::rows::{user_columns, UserRow};
use super::{fetch_optional, on_pool, sql_json, sql_text, Store, Ts};
use crate::error::Result;
use crate::identifier::Identifier;
use crate::model::User;

/// Finds or creates the user of a verified identifier in one statement, so two first
/// sign-ins of the same person at once make one user. `$column`/`$verified` name the
/// identifier's columns.
macro_rules! upsert_verified {
    ($column:literal, $verified:literal) => {
        concat!(
            "INSERT INTO \"user\" (id, ",
            $column,
            ", name, ",
            $verified,
            ", metadata, created_at, updated_at) VALUES ($1, $2, '', TRUE, '{}', $3, $3) \
             ON CONFLICT (",
            $column,
            ") DO UPDATE SET ",
            $verified,
            " = TRUE \
             RETURNING ",
            user_columns!()
        )
    };
}

#[cfg(feature = "sqlite")]
pub(super) use upsert_verified;

/// Sets the user's `$column` to `$2` and `updated_at` to `$3` (`$1`: the user's id).
macro_rules! set_user_column {
    ($column:literal) => {
        concat!(
            "UPDATE \"user\" SET ",
            $column,
            " = $2, updated_at = $3 WHERE id = $1 RETURNING ",
            user_columns!()
        )
    };
}

/// Selects the user whose `$column` is `$1`.
macro_rules! select_user_where {
    ($column:literal) => {
        concat!(
            "SELECT ",
            user_columns!(),
            " FROM \"user\" WHERE ",
            $column,
            " = $1"
        )
    };
}

/// A field of a user that [`Store::update_user`] sets.
#[derive(Debug, Clone, Copy)]
pub(crate) enum UserField<'a> {
    Name(&'a str),
    Metadata(&'a serde_json::Value),
}

impl Store {
    /// Finds or creates the user of a verified identifier and marks it verified.
    pub(crate) async fn upsert_verified_user(
        &self,
        identifier: &Identifier,
        new_id: &str,
        now: DateTime<Utc>,
    ) -> Result<User> {
        let sql = match identifier {
            Identifier::Email(_) => upsert_verified!("email", "email_verified"),
            Identifier::Phone(_) => upsert_verified!("phone_number", "phone_number_verified"),
        };
        let row: UserRow = on_pool!(self, conn => sqlx::query_as(sql)
            .bind(new_id)
            .bind(identifier.as_str())
            .bind(Ts(now))
            .fetch_one(&mut *conn)
            .await?);
        Ok(row.into())
    }

    pub(crate) async fn user_by_id(&self, id: &str) -> Result<Option<User>> {
        self.user_where(select_user_where!("id"), id).await
    }

    pub(crate) async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        self.user_where(select_user_where!("email"), email).await
    }

    pub(crate) async fn user_by_phone(&self, phone: &str) -> Result<Option<User>> {
        self.user_where(select_user_where!("phone_number"), phone)
            .await
    }

    /// The user a one-parameter `sql` selects.
    async fn user_where(&self, sql: &'static str, value: &str) -> Result<Option<User>> {
        let row: Option<UserRow> = fetch_optional!(self, sql, sql_text(value)?);
        Ok(row.map(User::from))
    }

    /// Sets a user's name or metadata, and `updated_at`.
    pub(crate) async fn update_user(
        &self,
        id: &str,
        field: UserField<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<User>> {
        let sql = match field {
            UserField::Name(_) => set_user_column!("name"),
            UserField::Metadata(_) => set_user_column!("metadata"),
        };
        let row: Option<UserRow> = on_pool!(self, conn => {
            let query = sqlx::query_as(sql).bind(sql_text(id)?);
            let query = match field {
                UserField::Name(name) => query.bind(sql_text(name)?),
                UserField::Metadata(metadata) => {
                    query.bind(sqlx::types::Json(sql_json(metadata)?))
                }
            };
            query.bind(Ts(now)).fetch_optional(&mut *conn).await?
        });
        Ok(row.map(User::from))
    }

    /// Shallow merge: top-level keys of `patch` replace those of the stored object.
    pub(crate) async fn merge_user_metadata(
        &self,
        id: &str,
        patch: &serde_json::Map<String, serde_json::Value>,
        now: DateTime<Utc>,
    ) -> Result<Option<User>> {
        let id = sql_text(id)?;
        Ok(on_pool!(self, conn =>
            postgres: super::postgres::merge_metadata(conn, id, patch, now).await?,
            sqlite: super::sqlite::merge_metadata(conn, id, patch, now).await?))
    }
}
