//! The `verification` table: one-time codes and magic links, stored as hashes.

use chrono::{DateTime, Utc};

use super::{on_pool, CodeState, Kind, NewVerification, ReservedGuess, Store, TakenLink, Ts};
use crate::error::Result;

/// `binding_hash` of the unbound row (a column in the unique key, so never NULL).
const UNBOUND: &str = "";

impl Store {
    /// Stores a code or link, replacing (and so invalidating) the live one of its
    /// identifier, kind and binding; rows of other bindings are untouched.
    pub(crate) async fn put_verification(&self, v: &NewVerification<'_>) -> Result<()> {
        const SQL: &str = "INSERT INTO verification \
             (id, identifier, code_hash, expires_at, attempts, created_at, kind, binding_hash, \
              requester_hash) \
             VALUES ($1, $2, $3, $4, 0, $5, $6, $7, $8) \
             ON CONFLICT (identifier, kind, binding_hash) DO UPDATE SET id = excluded.id, \
               code_hash = excluded.code_hash, expires_at = excluded.expires_at, \
               attempts = 0, created_at = excluded.created_at, \
               requester_hash = excluded.requester_hash";
        on_pool!(&self.db, pool => {
            sqlx::query(SQL)
                .bind(&v.id)
                .bind(v.identifier)
                .bind(v.code_hash)
                .bind(Ts(v.expires_at))
                .bind(Ts(v.now))
                .bind(v.kind.as_str())
                .bind(v.binding_hash.unwrap_or(UNBOUND))
                .bind(v.requester_hash)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Deletes a code or link if it is still the one with this hash.
    pub(crate) async fn delete_verification(
        &self,
        identifier: &str,
        kind: Kind,
        code_hash: &str,
    ) -> Result<()> {
        const SQL: &str =
            "DELETE FROM verification WHERE identifier = $1 AND kind = $2 AND code_hash = $3";
        on_pool!(&self.db, pool => {
            sqlx::query(SQL)
                .bind(identifier)
                .bind(kind.as_str())
                .bind(code_hash)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Atomically counts one guess against the live, unexpired code of `identifier` with
    /// this binding (`None`: the unbound code), if it has fewer than `max_attempts` guesses.
    pub(crate) async fn reserve_guess(
        &self,
        identifier: &str,
        binding_hash: Option<&str>,
        now: DateTime<Utc>,
        max_attempts: u32,
    ) -> Result<Option<ReservedGuess>> {
        const SQL: &str = "UPDATE verification SET attempts = attempts + 1 \
             WHERE identifier = $1 AND kind = 'otp' AND binding_hash = $4 \
               AND expires_at > $2 AND attempts < $3 \
             RETURNING id, code_hash, attempts";
        Ok(on_pool!(&self.db, pool => sqlx::query_as(SQL)
            .bind(identifier)
            .bind(Ts(now))
            .bind(i32::try_from(max_attempts).unwrap_or(i32::MAX))
            .bind(binding_hash.unwrap_or(UNBOUND))
            .fetch_optional(pool)
            .await?))
    }

    /// The one-time code of `identifier` with this binding, if any.
    pub(crate) async fn code_state(
        &self,
        identifier: &str,
        binding_hash: Option<&str>,
    ) -> Result<Option<CodeState>> {
        const SQL: &str = "SELECT expires_at, attempts FROM verification \
             WHERE identifier = $1 AND kind = 'otp' AND binding_hash = $2";
        let row: Option<(Ts, i32)> = on_pool!(&self.db, pool => sqlx::query_as(SQL)
            .bind(identifier)
            .bind(binding_hash.unwrap_or(UNBOUND))
            .fetch_optional(pool)
            .await?);
        Ok(row.map(|(expires_at, attempts)| CodeState {
            expires_at: expires_at.into(),
            attempts,
        }))
    }

    /// Deletes a verification row; true for exactly one caller.
    pub(crate) async fn consume_verification(&self, id: &str) -> Result<bool> {
        const SQL: &str = "DELETE FROM verification WHERE id = $1";
        let done = on_pool!(&self.db, pool => sqlx::query(SQL).bind(id).execute(pool).await?
            .rows_affected());
        Ok(done == 1)
    }

    /// Deletes the magic link with this hash and returns its identifier and expiry.
    ///
    /// With `requester_hash` (same-browser links required), only the link that browser asked
    /// for is used; a live link of another browser (or of none) is left as it is.
    pub(crate) async fn take_magic_link(
        &self,
        token_hash: &str,
        requester_hash: Option<Option<&str>>,
    ) -> Result<TakenLink> {
        const ANY: &str = "DELETE FROM verification WHERE code_hash = $1 AND kind = 'magic_link' \
             RETURNING identifier, expires_at";
        const OWN: &str = "DELETE FROM verification WHERE code_hash = $1 AND kind = 'magic_link' \
             AND requester_hash = $2 RETURNING identifier, expires_at";
        const LIVE: &str =
            "SELECT COUNT(*) FROM verification WHERE code_hash = $1 AND kind = 'magic_link'";
        let row: Option<(String, Ts)> = match requester_hash {
            None => on_pool!(&self.db, pool => sqlx::query_as(ANY)
                .bind(token_hash)
                .fetch_optional(pool)
                .await?),
            Some(None) => None,
            Some(Some(requester)) => on_pool!(&self.db, pool => sqlx::query_as(OWN)
                .bind(token_hash)
                .bind(requester)
                .fetch_optional(pool)
                .await?),
        };
        if let Some((identifier, expires_at)) = row {
            return Ok(TakenLink::Taken(identifier, expires_at.into()));
        }
        if requester_hash.is_none() {
            return Ok(TakenLink::Unknown);
        }
        let live: i64 = on_pool!(&self.db, pool => sqlx::query_scalar(LIVE)
            .bind(token_hash)
            .fetch_one(pool)
            .await?);
        Ok(if live > 0 {
            TakenLink::OtherBrowser
        } else {
            TakenLink::Unknown
        })
    }
}
