//! Redeeming a one-time code: the sign-in hot path, in one round trip on Postgres.
//!
//! A guess either consumes the live code (when its hash matches) or counts one attempt
//! against it, never both, and a consumed code becomes the user's session in the same
//! statement. A code sent in a magic-link email (a row of its own, `link_hash` naming its
//! link) is looked at beside the unbound code, under the same per-address failure ceiling,
//! and takes its link with it. A bound guess never reaches it: a binding is free to get, so
//! guesses made under one must not touch codes the ceiling protects. On Postgres that is one statement of data-modifying CTEs (one commit instead of
//! five); on SQLite, where a statement costs no round trip, the same steps run in one
//! transaction.
//!
//! The comparison `code_hash = $5` happens in the database. It compares two keyed hashes
//! (HMAC-SHA256 under the app's secret), so how long it takes tells a guesser nothing about
//! the code: they cannot choose a guess whose hash shares a prefix with the stored one.

use chrono::{DateTime, Utc};

use super::codes::UNBOUND;
use super::rows::{user_columns, UserRow};
#[cfg(feature = "sqlite")]
use super::sessions::INSERT_SESSION;
#[cfg(feature = "sqlite")]
use super::users::upsert_verified;
use super::{on_pool, sql_text, NewSession, Store, Ts};
use crate::error::Result;
use crate::identifier::Identifier;
use crate::model::User;
#[cfg(feature = "sqlite")]
use sqlx::Connection;

/// One guess at a one-time code and the session it opens if right.
#[derive(Debug)]
pub(crate) struct Redemption<'a> {
    pub identifier: &'a Identifier,
    /// Hash of the client's binding; `None` for the unbound code.
    pub binding_hash: Option<&'a str>,
    /// The keyed hash of the guess.
    pub code_hash: &'a str,
    pub max_attempts: u32,
    /// The id a new user gets (ignored when the user exists).
    pub new_user_id: &'a str,
    pub session: &'a NewSession,
    /// The failure counter a sign-in resets, if any.
    pub failures_key: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// The Postgres statement: `$column`/`$verified` name the identifier's columns.
///
/// `hit` and `miss` have opposite conditions on `code_hash`, so at most one of them
/// touches the row. Concurrent guesses queue on its row lock and re-check the conditions
/// after the winner commits: exactly one consumes it.
#[cfg(feature = "postgres")]
macro_rules! redeem_pg {
    ($column:literal, $verified:literal) => {
        concat!(
            "WITH hit AS (DELETE FROM verification \
               WHERE identifier = $1 AND kind = 'otp' \
                 AND (binding_hash = $2 OR ($2 = '' AND link_hash IS NOT NULL)) \
                 AND expires_at > $3 AND attempts < $4 AND code_hash = $5 \
               RETURNING identifier, link_hash), \
             link AS (DELETE FROM verification \
               WHERE kind = 'magic_link' AND code_hash IN \
                 (SELECT link_hash FROM hit WHERE link_hash IS NOT NULL)), \
             miss AS (UPDATE verification SET attempts = attempts + 1 \
               WHERE identifier = $1 AND kind = 'otp' \
                 AND (binding_hash = $2 OR ($2 = '' AND link_hash IS NOT NULL)) \
                 AND expires_at > $3 AND attempts < $4 AND code_hash <> $5 \
               RETURNING attempts), \
             u AS (INSERT INTO \"user\" (id, ",
            $column,
            ", name, ",
            $verified,
            ", metadata, created_at, updated_at) \
               SELECT $6, identifier, '', TRUE, '{}', $3, $3 FROM hit \
               ON CONFLICT (",
            $column,
            ") DO UPDATE SET ",
            $verified,
            " = TRUE RETURNING ",
            user_columns!(),
            "), \
             s AS (INSERT INTO session \
               (id, user_id, token_hash, expires_at, ip_address, user_agent, created_at, \
                auth_method, authenticated_at) \
               SELECT $7, u.id, $8, $9, $10, $11, $3, 'otp', $3 FROM u RETURNING id), \
             reset AS (DELETE FROM futureauth_rate_limit \
               WHERE key = $12 AND EXISTS (SELECT 1 FROM s)) \
             SELECT * FROM u"
        )
    };
}

impl Store {
    /// Consumes the live code of `r.identifier` (with `r.binding_hash`) and opens
    /// `r.session` for its user if the guess matches; otherwise counts the guess. `None`:
    /// not signed in (wrong, expired, exhausted or no code).
    pub(crate) async fn redeem_code(&self, r: &Redemption<'_>) -> Result<Option<User>> {
        let ip = r.session.ip_address.as_deref().map(sql_text).transpose()?;
        let ua = r.session.user_agent.as_deref().map(sql_text).transpose()?;
        let max = i32::try_from(r.max_attempts).unwrap_or(i32::MAX);
        let binding = r.binding_hash.unwrap_or(UNBOUND);
        let row: Option<UserRow> = on_pool!(self, conn =>
            postgres: {
                let sql = match r.identifier {
                    Identifier::Email(_) => redeem_pg!("email", "email_verified"),
                    Identifier::Phone(_) => redeem_pg!("phone_number", "phone_number_verified"),
                };
                sqlx::query_as(sql)
                    .bind(r.identifier.as_str())
                    .bind(binding)
                    .bind(Ts(r.now))
                    .bind(max)
                    .bind(r.code_hash)
                    .bind(r.new_user_id)
                    .bind(&r.session.id)
                    .bind(&r.session.token_hash)
                    .bind(Ts(r.session.expires_at))
                    .bind(ip)
                    .bind(ua)
                    .bind(r.failures_key)
                    .fetch_optional(&mut *conn)
                    .await?
            },
            sqlite: redeem_sqlite(conn, r, max, binding, ip, ua).await?);
        Ok(row.map(User::from))
    }
}

/// The same steps as [`redeem_pg!`] in one SQLite transaction (SQLite has no
/// data-modifying CTEs; its single writer makes the steps atomic), in the CTE's order so
/// the two read side by side.
#[cfg(feature = "sqlite")]
async fn redeem_sqlite(
    conn: &mut sqlx::SqliteConnection,
    r: &Redemption<'_>,
    max: i32,
    binding: &str,
    ip: Option<&str>,
    ua: Option<&str>,
) -> Result<Option<UserRow>> {
    const LINK: &str = "DELETE FROM verification WHERE kind = 'magic_link' AND code_hash = $1";
    const RESET: &str = "DELETE FROM futureauth_rate_limit WHERE key = $1";

    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let Some(link_hash) = guess_sqlite(&mut tx, r, max, binding).await? else {
        tx.commit().await?;
        return Ok(None);
    };
    if let Some(link_hash) = link_hash {
        sqlx::query(LINK)
            .bind(link_hash)
            .execute(tx.as_mut())
            .await?;
    }
    let upsert = match r.identifier {
        Identifier::Email(_) => upsert_verified!("email", "email_verified"),
        Identifier::Phone(_) => upsert_verified!("phone_number", "phone_number_verified"),
    };
    let user: UserRow = sqlx::query_as(upsert)
        .bind(r.new_user_id)
        .bind(r.identifier.as_str())
        .bind(Ts(r.now))
        .fetch_one(tx.as_mut())
        .await?;
    sqlx::query(INSERT_SESSION)
        .bind(&r.session.id)
        .bind(&user.id)
        .bind(&r.session.token_hash)
        .bind(Ts(r.session.expires_at))
        .bind(ip)
        .bind(ua)
        .bind(Ts(r.session.now))
        .bind(r.session.method.as_str())
        .execute(tx.as_mut())
        .await?;
    if let Some(key) = r.failures_key {
        sqlx::query(RESET).bind(key).execute(tx.as_mut()).await?;
    }
    tx.commit().await?;
    Ok(Some(user))
}

/// The first step of [`redeem_sqlite`]: consumes the right, live, unexhausted code (its
/// `link_hash`, if it came with a link) or counts a wrong guess (`None`).
#[cfg(feature = "sqlite")]
async fn guess_sqlite(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    r: &Redemption<'_>,
    max: i32,
    binding: &str,
) -> Result<Option<Option<String>>> {
    const HIT: &str = "DELETE FROM verification \
         WHERE identifier = $1 AND kind = 'otp' \
                 AND (binding_hash = $2 OR ($2 = '' AND link_hash IS NOT NULL)) \
           AND expires_at > $3 AND attempts < $4 AND code_hash = $5 RETURNING id, link_hash";
    const MISS: &str = "UPDATE verification SET attempts = attempts + 1 \
         WHERE identifier = $1 AND kind = 'otp' \
                 AND (binding_hash = $2 OR ($2 = '' AND link_hash IS NOT NULL)) \
           AND expires_at > $3 AND attempts < $4 AND code_hash <> $5";
    // The hit and the miss match the same row: the same five parameters.
    macro_rules! guess {
        ($query:expr) => {
            $query
                .bind(r.identifier.as_str())
                .bind(binding)
                .bind(Ts(r.now))
                .bind(max)
                .bind(r.code_hash)
        };
    }
    let hit: Option<(String, Option<String>)> = guess!(sqlx::query_as(HIT))
        .fetch_optional(tx.as_mut())
        .await?;
    if hit.is_none() {
        guess!(sqlx::query(MISS)).execute(tx.as_mut()).await?;
    }
    Ok(hit.map(|(_, link_hash)| link_hash))
}
