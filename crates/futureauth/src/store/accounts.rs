//! Accounts over their life: disabling, deleting, listing, and verified address changes
//! (pending changes are `verification` rows of kind `change_address`, keyed by the new
//! address and bound to the user who asked, so nobody else's guesses count against them).

use chrono::{DateTime, Utc};
use sqlx::Connection;

use super::codes::UNBOUND;
use super::rows::{user_columns, UserRow};
use super::{fetch_optional, on_pool, sql_text, Store, Ts};
use crate::error::{FutureAuthError, Result};
use crate::identifier::Identifier;
use crate::model::User;

/// A user is disabled while `disabled_at` is set and `disabled_until` is unset or later
/// than `$now`. `$p` names the table (`u.` or empty).
macro_rules! disabled {
    ($p:literal, $now:literal) => {
        concat!(
            $p,
            "disabled_at IS NOT NULL AND (",
            $p,
            "disabled_until IS NULL OR ",
            $p,
            "disabled_until > ",
            $now,
            ")"
        )
    };
}
pub(super) use disabled;

/// The `binding_hash` of a user's pending address change: it names the user.
pub(crate) fn change_binding(user_id: &str) -> String {
    format!("user:{user_id}")
}

/// What proves a pending address change: the code sent to the new address (a wrong one
/// counts an attempt), or the token of the link sent with it (256 bits: no attempts).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Proof<'a> {
    /// The code's hash and the attempt ceiling.
    Code(&'a str, u32),
    /// The link token's hash.
    Link(&'a str),
}

/// What confirming an address change did.
#[derive(Debug)]
pub(crate) enum Changed {
    /// The address is the user's now; the old one of that kind, if any.
    Done(User, Option<String>),
    /// The code was right but the address belongs to another account by now.
    Taken,
    /// Wrong, expired or exhausted code, or none: one attempt counted.
    Miss,
}

/// A page of [`Store::list_users`].
#[derive(Debug, Default)]
pub(crate) struct UserFilter<'a> {
    pub search: Option<&'a str>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub limit: i64,
    pub offset: i64,
}

/// `%s%` for LIKE, with LIKE's own characters escaped (`\` is the escape).
fn like_pattern(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('%');
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

// The statements of `confirm_change`: a right code, the link, or a wrong code.
const CHANGE_HIT: &str = "DELETE FROM verification WHERE identifier = $1 \
     AND kind = 'change_address' AND binding_hash = $2 AND expires_at > $3 \
     AND attempts < $4 AND code_hash = $5 RETURNING id";
// The link's row is the code's row: using either deletes it, so both are void.
// Only the asking user's row matches (`binding_hash`), so another account's
// session holding the link finds nothing and leaves the row alone.
const CHANGE_HIT_LINK: &str = "DELETE FROM verification WHERE identifier = $1 \
     AND kind = 'change_address' AND binding_hash = $2 AND expires_at > $3 \
     AND link_hash = $4 RETURNING id";
const CHANGE_MISS: &str = "UPDATE verification SET attempts = attempts + 1 \
     WHERE identifier = $1 AND kind = 'change_address' AND binding_hash = $2 \
     AND expires_at > $3 AND attempts < $4 AND code_hash <> $5";

/// The statements that read a user's current address of `new`'s kind and set `new` in its
/// place (verified), unless another account has it.
fn set_address_sql(new: &Identifier) -> (&'static str, &'static str) {
    macro_rules! set {
        ($column:literal, $verified:literal) => {
            (
                concat!("SELECT ", $column, " FROM \"user\" WHERE id = $1"),
                concat!(
                    "UPDATE \"user\" SET ",
                    $column,
                    " = $2, ",
                    $verified,
                    " = TRUE, updated_at = $3 WHERE id = $1 AND NOT EXISTS \
                     (SELECT 1 FROM \"user\" o WHERE o.",
                    $column,
                    " = $2 AND o.id <> $1) RETURNING ",
                    user_columns!()
                ),
            )
        };
    }
    match new {
        Identifier::Email(_) => set!("email", "email_verified"),
        Identifier::Phone(_) => set!("phone_number", "phone_number_verified"),
    }
}

impl Store {
    /// The user exists and is disabled at `now`.
    pub(crate) async fn user_disabled(&self, user_id: &str, now: DateTime<Utc>) -> Result<bool> {
        const SQL: &str = concat!(
            "SELECT COUNT(*) FROM \"user\" WHERE id = $1 AND ",
            disabled!("", "$2")
        );
        let n: i64 = on_pool!(self, conn => sqlx::query_scalar(SQL)
            .bind(sql_text(user_id)?)
            .bind(Ts(now))
            .fetch_one(&mut *conn)
            .await?);
        Ok(n > 0)
    }

    /// Disables (`at` set) or enables (`None`) a user and, when disabling, deletes their
    /// sessions in the same transaction. `false`: no such user.
    pub(crate) async fn set_disabled(
        &self,
        user_id: &str,
        at: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        const SET: &str = "UPDATE \"user\" SET disabled_at = $2, disabled_until = $3 WHERE id = $1";
        const END: &str = "DELETE FROM session WHERE user_id = $1";
        let user_id = sql_text(user_id)?;
        let found = on_pool!(self, conn => {
            let mut tx = conn.begin().await?;
            let n = sqlx::query(SET)
                .bind(user_id)
                .bind(at.map(Ts))
                .bind(until.map(Ts))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n > 0 && at.is_some() {
                sqlx::query(END).bind(user_id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            n > 0
        });
        Ok(found)
    }

    /// Deletes a user with their sessions, codes and links (those of their addresses and
    /// their pending address changes) in one transaction. The deleted user, if there was one.
    pub(crate) async fn delete_user(&self, user_id: &str) -> Result<Option<User>> {
        const USER: &str = concat!(
            "DELETE FROM \"user\" WHERE id = $1 RETURNING ",
            user_columns!()
        );
        const SESSIONS: &str = "DELETE FROM session WHERE user_id = $1";
        // The passkey table belongs to the store too (created only when passkeys are on).
        #[cfg(feature = "passkeys")]
        const PASSKEYS: &str = "DELETE FROM passkey WHERE user_id = $1";
        const CODES: &str = "DELETE FROM verification WHERE identifier IN ($1, $2) \
             OR (kind = 'change_address' AND binding_hash = $3)";
        let user_id = sql_text(user_id)?;
        let binding = change_binding(user_id);
        let deleted = on_pool!(self, conn => {
            let mut tx = conn.begin().await?;
            // Sessions first: SQLite does not cascade unless foreign keys are switched on.
            // (Passkeys, once configured, are deleted here too, in this transaction.)
            sqlx::query(SESSIONS).bind(user_id).execute(&mut *tx).await?;
            #[cfg(feature = "passkeys")]
            if self.passkeys {
                sqlx::query(PASSKEYS)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
            }
            let row: Option<UserRow> = sqlx::query_as(USER)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
            let user = row.map(User::from);
            if let Some(user) = &user {
                sqlx::query(CODES)
                    .bind(user.email.as_deref().unwrap_or(UNBOUND))
                    .bind(user.phone_number.as_deref().unwrap_or(UNBOUND))
                    .bind(&binding)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            user
        });
        Ok(deleted)
    }

    /// Users, newest first, whose email or phone contains `search` and created in the
    /// window.
    pub(crate) async fn list_users(&self, f: &UserFilter<'_>) -> Result<Vec<User>> {
        const SQL: &str = concat!(
            "SELECT ",
            user_columns!(),
            " FROM \"user\" WHERE ($1 IS NULL OR email LIKE $1 ESCAPE '\\' \
               OR phone_number LIKE $1 ESCAPE '\\') \
             AND ($2 IS NULL OR created_at >= $2) AND ($3 IS NULL OR created_at < $3) \
             ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5"
        );
        let pattern = f
            .search
            .map(|s| sql_text(s).map(|s| like_pattern(&s.trim().to_lowercase())))
            .transpose()?;
        let rows: Vec<UserRow> = on_pool!(self, conn => sqlx::query_as(SQL)
            .bind(pattern.as_deref())
            .bind(f.created_after.map(Ts))
            .bind(f.created_before.map(Ts))
            .bind(f.limit)
            .bind(f.offset)
            .fetch_all(&mut *conn)
            .await?);
        Ok(rows.into_iter().map(User::from).collect())
    }

    /// Spends the pending change of `user_id` to `new` if `proof` is its code (else counts
    /// one attempt) or its link, and then makes `new` the user's verified address, in one
    /// transaction. (Long because that one transaction runs on either backend's connection
    /// inside `on_pool!`: its steps read best in one place.)
    pub(crate) async fn confirm_change(
        &self,
        user_id: &str,
        new: &Identifier,
        proof: Proof<'_>,
        now: DateTime<Utc>,
    ) -> Result<Changed> {
        let (old_sql, set_sql) = set_address_sql(new);
        let user_id = sql_text(user_id)?;
        let binding = change_binding(user_id);
        Ok(on_pool!(self, conn => {
            let mut tx = conn.begin().await?;
            let hit: Option<String> = match proof {
                Proof::Code(code_hash, max) => {
                    let max = i32::try_from(max).unwrap_or(i32::MAX);
                    // The hit and the miss match the same row: the same five parameters.
                    macro_rules! guess {
                        ($query:expr) => {
                            $query
                                .bind(new.as_str())
                                .bind(&binding)
                                .bind(Ts(now))
                                .bind(max)
                                .bind(code_hash)
                        };
                    }
                    let hit = guess!(sqlx::query_scalar(CHANGE_HIT))
                        .fetch_optional(&mut *tx)
                        .await?;
                    if hit.is_none() {
                        guess!(sqlx::query(CHANGE_MISS)).execute(&mut *tx).await?;
                    }
                    hit
                }
                Proof::Link(link_hash) => {
                    sqlx::query_scalar(CHANGE_HIT_LINK)
                        .bind(new.as_str())
                        .bind(&binding)
                        .bind(Ts(now))
                        .bind(link_hash)
                        .fetch_optional(&mut *tx)
                        .await?
                }
            };
            if hit.is_none() {
                tx.commit().await?;
                return Ok(Changed::Miss);
            }
            let old: Option<Option<String>> = sqlx::query_scalar(old_sql)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
            let updated: std::result::Result<Option<UserRow>, sqlx::Error> =
                sqlx::query_as(set_sql)
                    .bind(user_id)
                    .bind(new.as_str())
                    .bind(Ts(now))
                    .fetch_optional(&mut *tx)
                    .await;
            let outcome = match updated {
                Ok(Some(row)) => Changed::Done(row.into(), old.flatten()),
                Ok(None) => Changed::Taken,
                // Another account took it between the check and the write.
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    tx.rollback().await?;
                    return Ok(Changed::Taken);
                }
                Err(e) => return Err(e.into()),
            };
            tx.commit().await?;
            outcome
        }))
    }

    /// The new address of `user_id`'s live pending change whose link has `link_hash`: read
    /// only (the confirm that follows spends it).
    pub(crate) async fn change_link_address(
        &self,
        user_id: &str,
        link_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>> {
        const SQL: &str = "SELECT identifier FROM verification WHERE kind = 'change_address' \
             AND binding_hash = $1 AND link_hash = $2 AND expires_at > $3";
        let binding = change_binding(sql_text(user_id)?);
        let found: Option<String> = on_pool!(self, conn => sqlx::query_scalar(SQL)
            .bind(&binding)
            .bind(link_hash)
            .bind(Ts(now))
            .fetch_optional(&mut *conn)
            .await?);
        Ok(found)
    }

    /// Removes the user's address of `kind`'s column, only while the other one remains, in
    /// one statement. `Ok(None)`: no such user; `Err(LastIdentifier)`: it is their only one.
    pub(crate) async fn remove_identifier(
        &self,
        user_id: &str,
        email: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<User>> {
        const EMAIL: &str = concat!(
            "UPDATE \"user\" SET email = NULL, email_verified = FALSE, updated_at = $2 \
             WHERE id = $1 AND phone_number IS NOT NULL RETURNING ",
            user_columns!()
        );
        const PHONE: &str = concat!(
            "UPDATE \"user\" SET phone_number = NULL, phone_number_verified = FALSE, \
             updated_at = $2 WHERE id = $1 AND email IS NOT NULL RETURNING ",
            user_columns!()
        );
        let sql = if email { EMAIL } else { PHONE };
        let row: Option<UserRow> = fetch_optional!(self, sql, sql_text(user_id)?, Ts(now));
        match row {
            Some(row) => Ok(Some(row.into())),
            None => match self.user_by_id(user_id).await? {
                Some(_) => Err(FutureAuthError::LastIdentifier),
                None => Ok(None),
            },
        }
    }
}
