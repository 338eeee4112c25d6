//! The rows the store reads, decoded by `FromRow` on both backends, and the column lists
//! that select them. The lists are macros so that statements are `concat!`-ed into
//! `&'static str` at compile time: no SQL is built per request.

use sqlx::types::Json;

use super::Ts;
use crate::model::{AuthMethod, Session, User};

/// The `"user"` columns, unqualified (for `RETURNING`, which cannot use a table alias in
/// SQLite, and for a join where only the session's columns are aliased).
macro_rules! user_columns {
    () => {
        "id, email, phone_number, name, email_verified, phone_number_verified, metadata, \
         created_at, updated_at"
    };
}

/// The `"user"` columns of alias `u` (their result names are the plain column names).
macro_rules! user_columns_u {
    () => {
        "u.id, u.email, u.phone_number, u.name, u.email_verified, u.phone_number_verified, \
         u.metadata, u.created_at, u.updated_at"
    };
}

/// The `session` columns of alias `s`, renamed `s_*` so that they can sit beside the user's
/// in one row.
macro_rules! session_columns {
    () => {
        "s.id AS s_id, s.user_id AS s_user_id, s.token_hash AS s_token_hash, \
         s.expires_at AS s_expires_at, s.ip_address AS s_ip_address, \
         s.user_agent AS s_user_agent, s.created_at AS s_created_at, \
         s.auth_method AS s_auth_method, s.authenticated_at AS s_authenticated_at"
    };
}

pub(super) use {session_columns, user_columns, user_columns_u};

/// A `"user"` row.
#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    pub(super) id: String,
    email: Option<String>,
    phone_number: Option<String>,
    name: String,
    email_verified: bool,
    phone_number_verified: bool,
    metadata: Json<serde_json::Value>,
    created_at: Ts,
    updated_at: Ts,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.id,
            email: r.email,
            phone_number: r.phone_number,
            name: r.name,
            email_verified: r.email_verified,
            phone_number_verified: r.phone_number_verified,
            metadata: r.metadata.0,
            created_at: r.created_at.into(),
            updated_at: r.updated_at.into(),
        }
    }
}

/// A `session` row as [`session_columns!`] selects it.
#[derive(sqlx::FromRow)]
pub(super) struct SessionRow {
    #[sqlx(rename = "s_id")]
    id: String,
    #[sqlx(rename = "s_user_id")]
    user_id: String,
    #[sqlx(rename = "s_token_hash")]
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub token_hash: String,
    #[sqlx(rename = "s_expires_at")]
    expires_at: Ts,
    #[sqlx(rename = "s_ip_address")]
    ip_address: Option<String>,
    #[sqlx(rename = "s_user_agent")]
    user_agent: Option<String>,
    #[sqlx(rename = "s_created_at")]
    created_at: Ts,
    #[sqlx(rename = "s_auth_method")]
    auth_method: Option<String>,
    #[sqlx(rename = "s_authenticated_at")]
    authenticated_at: Option<Ts>,
}

impl From<SessionRow> for Session {
    /// The token itself is never stored: the caller that holds it fills it in.
    fn from(r: SessionRow) -> Self {
        Session {
            id: r.id,
            user_id: r.user_id,
            token: String::new(),
            expires_at: r.expires_at.into(),
            ip_address: r.ip_address,
            user_agent: r.user_agent,
            created_at: r.created_at.into(),
            auth_method: r.auth_method.as_deref().and_then(AuthMethod::parse),
            authenticated: r.authenticated_at.map(Into::into),
        }
    }
}

/// A session joined with its user: the hot path's one row (on SQLite; Postgres reads it
/// with [`session_user_pg`]).
#[cfg(feature = "sqlite")]
#[derive(sqlx::FromRow)]
pub(super) struct SessionUserRow {
    #[sqlx(flatten)]
    pub session: SessionRow,
    #[sqlx(flatten)]
    pub user: UserRow,
}

/// The hot path's row on Postgres ([`session_columns!`], then [`user_columns_u!`]), its
/// stored token hash beside it, decoded by position: `FromRow` looks each of the 18
/// columns up by name and checks its type, a third of an uncached check's own instructions
/// (`scripts/check-cost`). The statement that selects them is the one place that fixes
/// their order; a type that does not match still fails to decode.
#[cfg(feature = "postgres")]
pub(super) fn session_user_pg(
    row: &sqlx::postgres::PgRow,
) -> sqlx::Result<(User, Session, String)> {
    use sqlx::Row;
    let ts = |i: usize| row.try_get_unchecked::<Ts, _>(i).map(Into::into);
    let session = Session {
        id: row.try_get_unchecked(0)?,
        user_id: row.try_get_unchecked(1)?,
        token: String::new(),
        expires_at: ts(3)?,
        ip_address: row.try_get_unchecked(4)?,
        user_agent: row.try_get_unchecked(5)?,
        created_at: ts(6)?,
        auth_method: row
            .try_get_unchecked::<Option<&str>, _>(7)?
            .and_then(AuthMethod::parse),
        authenticated: row.try_get_unchecked::<Option<Ts>, _>(8)?.map(Into::into),
    };
    let user = User {
        id: row.try_get_unchecked(9)?,
        email: row.try_get_unchecked(10)?,
        phone_number: row.try_get_unchecked(11)?,
        name: row.try_get_unchecked(12)?,
        email_verified: row.try_get_unchecked(13)?,
        phone_number_verified: row.try_get_unchecked(14)?,
        metadata: row.try_get_unchecked::<Json<serde_json::Value>, _>(15)?.0,
        created_at: ts(16)?,
        updated_at: ts(17)?,
    };
    Ok((user, session, row.try_get_unchecked(2)?))
}
