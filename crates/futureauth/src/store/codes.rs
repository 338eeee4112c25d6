//! The `verification` table: one-time codes and magic links, stored as hashes.

use chrono::{DateTime, Utc};

use super::{on_pool, CodeState, Kind, NewVerification, Store, Ts};
use crate::error::Result;

/// `binding_hash` of the unbound row (a column in the unique key, so never NULL).
pub(super) const UNBOUND: &str = "";

impl Store {
    /// Stores a code or link, replacing (and so invalidating) the live one of its
    /// identifier, kind and binding; rows of other bindings are untouched.
    pub(crate) async fn put_verification(&self, v: &NewVerification<'_>) -> Result<()> {
        const SQL: &str = "INSERT INTO verification \
             (id, identifier, code_hash, expires_at, attempts, created_at, kind, binding_hash) \
             VALUES ($1, $2, $3, $4, 0, $5, $6, $7) \
             ON CONFLICT (identifier, kind, binding_hash) DO UPDATE SET id = excluded.id, \
               code_hash = excluded.code_hash, expires_at = excluded.expires_at, \
               attempts = 0, created_at = excluded.created_at";
        on_pool!(&self.db, pool => {
            sqlx::query(SQL)
                .bind(&v.id)
                .bind(v.identifier)
                .bind(v.code_hash)
                .bind(Ts(v.expires_at))
                .bind(Ts(v.now))
                .bind(v.kind.as_str())
                .bind(v.binding_hash.unwrap_or(UNBOUND))
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

    /// Deletes the magic link with this hash and returns its identifier and expiry.
    pub(crate) async fn take_magic_link(
        &self,
        token_hash: &str,
    ) -> Result<Option<(String, DateTime<Utc>)>> {
        const SQL: &str = "DELETE FROM verification WHERE code_hash = $1 AND kind = 'magic_link' \
             RETURNING identifier, expires_at";
        let row: Option<(String, Ts)> = on_pool!(&self.db, pool => sqlx::query_as(SQL)
            .bind(token_hash)
            .fetch_optional(pool)
            .await?);
        Ok(row.map(|(identifier, expires_at)| (identifier, expires_at.into())))
    }
}
