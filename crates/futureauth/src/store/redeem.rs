//! Redeeming a one-time code: the sign-in hot path, in one round trip and one commit on
//! Postgres.
//!
//! A guess is first counted against the client's per-IP verify limit and then, unless that
//! refused it, against the address's failure ceiling; only if both allow it is the code
//! looked at. It then either consumes the live code (when its hash matches) or counts one
//! attempt against it, never both, and a consumed code becomes the user's session (unless
//! the user is disabled) and resets the failure ceiling, all in the same commit: a refused
//! or concurrent guess can never go uncounted, and a guess is never answered before its
//! count is durable. A code sent in a magic-link email (a row of its own, `link_hash`
//! naming its link) is looked at beside the unbound code, under the same failure ceiling,
//! and takes its link with it. A bound guess never reaches it: a binding is free to get, so
//! guesses made under one must not touch codes the ceiling protects. On Postgres that is one
//! statement of data-modifying CTEs; on SQLite, where a statement costs no round trip, the
//! same steps run in one transaction.
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

/// A rate-limit counter a guess counts against: its key, window (seconds) and the most
/// events the window allows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Counter<'a> {
    pub key: &'a str,
    pub window: i64,
    pub max: i64,
}

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
    /// The client's per-IP verify limit, counted first (`None`: the client IP is unknown).
    pub per_ip: Option<Counter<'a>>,
    /// The address's failure ceiling, counted unless the per-IP limit refused; a sign-in
    /// resets it (`None`: a bound guess, which it does not protect).
    pub failures: Option<Counter<'a>>,
    pub now: DateTime<Utc>,
}

/// What a guess came to.
#[derive(Debug, Default)]
pub(crate) struct Redeemed {
    /// The per-IP counter's count and window end (Unix seconds), when it was counted.
    pub per_ip: Option<(i64, i64)>,
    /// The failure ceiling's count (0 once a right guess reset it) and window end, when it
    /// was counted.
    pub failures: Option<(i64, i64)>,
    /// The guess consumed the code: its user, and whether the session was stored (`false`:
    /// the user is disabled).
    pub user: Option<(User, bool)>,
}

/// The conditions that pick the live code a guess is about (`$1` identifier, `$2` binding
/// hash, `$3` now, `$4` most attempts): shared by the look, the hit and the miss.
macro_rules! guess_target {
    () => {
        "identifier = $1 AND kind = 'otp' \
         AND (binding_hash = $2 OR ($2 = '' AND link_hash IS NOT NULL)) \
         AND expires_at > $3 AND attempts < $4"
    };
}

/// The Postgres statement: `$column`/`$verified` name the identifier's columns.
///
/// `a` counts the per-IP limit (`$12`, none when NULL) and `b` the failure ceiling (`$16`),
/// only if `a` allowed the guess: each `INSERT … ON CONFLICT DO UPDATE` locks its counter
/// and returns the count under that lock, so concurrent guesses are counted one by one.
/// The ceiling's reset on a right guess is folded into `b` (a statement cannot change one
/// row twice): `looked` looks at the code before the guess is counted, and `b` stores 0
/// instead of the count when the guess is right and allowed, or writes nothing when the
/// guess is right and the address has no failures counted (the common first sign-in: no
/// row to add, lock and then reset). `hit` and `miss` run only when both counters allow
/// the guess, and have opposite conditions on `code_hash`, so at most one of them touches
/// the code. Concurrent guesses queue on its row lock and re-check the conditions after the
/// winner commits: exactly one consumes it.
///
/// `looked` reads the statement's snapshot, so it can be stale only for a guess that was
/// right when the statement began: such a guess may reset the ceiling or go uncounted while
/// another right guess signs in, or while wrong guesses count failures beside it. It knew
/// the code, so it is no step of a brute force; every wrong guess is counted under the lock.
#[cfg(feature = "postgres")]
macro_rules! redeem_pg {
    ($column:literal, $verified:literal) => {
        concat!(
            "WITH a AS (INSERT INTO futureauth_rate_limit (key, window_end, count) \
               SELECT $12, $13 + $14, 1 WHERE $12 IS NOT NULL ",
            super::limits::count_event!("$13"),
            " RETURNING count, window_end), \
             looked AS (SELECT EXISTS (SELECT 1 FROM verification WHERE ",
            guess_target!(),
            " AND code_hash = $5) AS yes), \
             b AS (INSERT INTO futureauth_rate_limit (key, window_end, count) \
               SELECT $16, $13 + $17, CASE WHEN r.yes AND $18 >= 1 THEN 0 ELSE 1 END \
               FROM looked r \
               WHERE $16 IS NOT NULL AND NOT EXISTS (SELECT 1 FROM a WHERE a.count > $15) \
                 AND NOT (r.yes AND NOT EXISTS (SELECT 1 FROM futureauth_rate_limit \
                   WHERE key = $16 AND window_end > $13)) \
               ON CONFLICT (key) DO UPDATE SET \
                 count = CASE WHEN excluded.count = 0 AND (CASE WHEN \
                     futureauth_rate_limit.window_end > $13 \
                     THEN futureauth_rate_limit.count + 1 ELSE 1 END) <= $18 THEN 0 \
                   WHEN futureauth_rate_limit.window_end > $13 \
                   THEN futureauth_rate_limit.count + 1 ELSE 1 END, \
                 window_end = CASE WHEN futureauth_rate_limit.window_end > $13 \
                   THEN futureauth_rate_limit.window_end ELSE excluded.window_end END \
               RETURNING count, window_end), \
             go AS (SELECT NOT EXISTS (SELECT 1 FROM a WHERE a.count > $15) \
               AND NOT EXISTS (SELECT 1 FROM b WHERE b.count > $18) AS yes), \
             hit AS (DELETE FROM verification WHERE ",
            guess_target!(),
            " AND code_hash = $5 AND (SELECT yes FROM go) \
               RETURNING identifier, link_hash), \
             link AS (DELETE FROM verification \
               WHERE kind = 'magic_link' AND code_hash IN \
                 (SELECT link_hash FROM hit WHERE link_hash IS NOT NULL)), \
             miss AS (UPDATE verification SET attempts = attempts + 1 WHERE ",
            guess_target!(),
            " AND code_hash <> $5 AND (SELECT yes FROM go) \
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
            ", ",
            super::accounts::disabled!("", "$3"),
            " AS disabled), \
             s AS (INSERT INTO session \
               (id, user_id, token_hash, expires_at, ip_address, user_agent, created_at, \
                auth_method, authenticated_at) \
               SELECT $7, u.id, $8, $9, $10, $11, $3, 'otp', $3 FROM u WHERE NOT u.disabled \
               RETURNING id) \
             SELECT a.count AS ip_count, a.window_end AS ip_end, \
               b.count AS failures_count, b.window_end AS failures_end, u.*, \
               EXISTS (SELECT 1 FROM s) AS opened \
             FROM (SELECT 1) AS one LEFT JOIN a ON TRUE LEFT JOIN b ON TRUE LEFT JOIN u ON TRUE"
        )
    };
}

impl Store {
    /// Counts the guess `r` against its rate limits and, if they allow it, consumes the live
    /// code of `r.identifier` (with `r.binding_hash`) and opens `r.session` for its user when
    /// the guess matches, or counts a wrong guess against the code: one commit.
    pub(crate) async fn redeem_code(&self, r: &Redemption<'_>) -> Result<Redeemed> {
        let ip = r.session.ip_address.as_deref().map(sql_text).transpose()?;
        let ua = r.session.user_agent.as_deref().map(sql_text).transpose()?;
        let max = i32::try_from(r.max_attempts).unwrap_or(i32::MAX);
        let binding = r.binding_hash.unwrap_or(UNBOUND);
        Ok(on_pool!(self, conn =>
            postgres: {
                use sqlx::Row;
                let sql = match r.identifier {
                    Identifier::Email(_) => redeem_pg!("email", "email_verified"),
                    Identifier::Phone(_) => redeem_pg!("phone_number", "phone_number_verified"),
                };
                let (per_ip, failures) = (r.per_ip, r.failures);
                let row = sqlx::query(sql)
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
                    .bind(per_ip.map(|c| c.key))
                    .bind(r.now.timestamp())
                    .bind(per_ip.map_or(0, |c| c.window))
                    .bind(per_ip.map_or(0, |c| c.max))
                    .bind(failures.map(|c| c.key))
                    .bind(failures.map_or(0, |c| c.window))
                    .bind(failures.map_or(0, |c| c.max))
                    .fetch_one(&mut *conn)
                    .await?;
                let counted = |count: &str, end: &str| -> sqlx::Result<Option<(i64, i64)>> {
                    let count: Option<i32> = row.try_get(count)?;
                    let end: Option<i64> = row.try_get(end)?;
                    Ok(count.zip(end).map(|(c, e)| (i64::from(c), e)))
                };
                let user = match row.try_get::<Option<String>, _>("id")? {
                    Some(_) => Some((
                        <UserRow as sqlx::FromRow<_>>::from_row(&row)?.into(),
                        row.try_get::<bool, _>("opened")?,
                    )),
                    None => None,
                };
                Redeemed {
                    per_ip: counted("ip_count", "ip_end")?,
                    failures: counted("failures_count", "failures_end")?,
                    user,
                }
            },
            sqlite: redeem_sqlite(conn, r, max, binding, ip, ua).await?))
    }
}

/// The same steps as [`redeem_pg!`] in one SQLite transaction (SQLite has no
/// data-modifying CTEs; its single writer makes the steps atomic), in the CTE's order so
/// the two read side by side. The ceiling's reset is a step of its own here.
#[cfg(feature = "sqlite")]
async fn redeem_sqlite(
    conn: &mut sqlx::SqliteConnection,
    r: &Redemption<'_>,
    max: i32,
    binding: &str,
    ip: Option<&str>,
    ua: Option<&str>,
) -> Result<Redeemed> {
    const LINK: &str = "DELETE FROM verification WHERE kind = 'magic_link' AND code_hash = $1";
    const RESET: &str =
        "UPDATE futureauth_rate_limit SET count = 0 WHERE key = $1 RETURNING count, window_end";
    const DISABLED: &str = concat!(
        "SELECT COUNT(*) FROM \"user\" WHERE id = $1 AND ",
        super::accounts::disabled!("", "$2")
    );

    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let mut out = Redeemed::default();
    let now = r.now.timestamp();
    for (counter, per_ip) in [(r.per_ip, true), (r.failures, false)] {
        let Some(c) = counter else { continue };
        let (count, end): (i32, i64) = sqlx::query_as(super::limits::COUNT_EVENT)
            .bind(c.key)
            .bind(now)
            .bind(c.window)
            .fetch_one(tx.as_mut())
            .await?;
        let counted = Some((i64::from(count), end));
        if per_ip {
            out.per_ip = counted;
        } else {
            out.failures = counted;
        }
        if i64::from(count) > c.max {
            tx.commit().await?;
            return Ok(out);
        }
    }
    let Some(link_hash) = guess_sqlite(&mut tx, r, max, binding).await? else {
        tx.commit().await?;
        return Ok(out);
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
    let disabled: i64 = sqlx::query_scalar(DISABLED)
        .bind(&user.id)
        .bind(Ts(r.now))
        .fetch_one(tx.as_mut())
        .await?;
    let opened = disabled == 0;
    if opened {
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
    }
    if let Some(c) = r.failures {
        let (count, end): (i32, i64) = sqlx::query_as(RESET)
            .bind(c.key)
            .fetch_one(tx.as_mut())
            .await?;
        out.failures = Some((i64::from(count), end));
    }
    tx.commit().await?;
    out.user = Some((user.into(), opened));
    Ok(out)
}

/// The guess step of [`redeem_sqlite`]: consumes the right, live, unexhausted code (its
/// `link_hash`, if it came with a link) or counts a wrong guess (`None`).
#[cfg(feature = "sqlite")]
async fn guess_sqlite(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    r: &Redemption<'_>,
    max: i32,
    binding: &str,
) -> Result<Option<Option<String>>> {
    const HIT: &str = concat!(
        "DELETE FROM verification WHERE ",
        guess_target!(),
        " AND code_hash = $5 RETURNING id, link_hash"
    );
    const MISS: &str = concat!(
        "UPDATE verification SET attempts = attempts + 1 WHERE ",
        guess_target!(),
        " AND code_hash <> $5"
    );
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
