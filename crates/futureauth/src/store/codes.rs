//! The `verification` table: one-time codes and magic links, stored as hashes.

use sqlx::Connection;

use super::{
    execute, fetch_optional, on_pool, CodeState, Kind, NewVerification, Store, TakenLink, Ts,
};
use crate::error::Result;

/// Deletes the code sent with a link (`$1`: the link's token hash): the two are one sign-in.
pub(super) const DELETE_LINK_CODE: &str =
    "DELETE FROM verification WHERE kind = 'otp' AND link_hash = $1";

/// `binding_hash` of the unbound row (a column in the unique key, so never NULL).
pub(super) const UNBOUND: &str = "";

impl Store {
    /// Stores a code or link, replacing (and so invalidating) the live one of its
    /// identifier, kind and binding; rows of other bindings are untouched.
    pub(crate) async fn put_verification(&self, v: &NewVerification<'_>) -> Result<()> {
        const SQL: &str = "INSERT INTO verification \
             (id, identifier, code_hash, expires_at, attempts, created_at, kind, binding_hash, \
              link_hash, requester_hash, requester_ip, requester_agent, match_number) \
             VALUES ($1, $2, $3, $4, 0, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (identifier, kind, binding_hash) DO UPDATE SET id = excluded.id, \
               code_hash = excluded.code_hash, expires_at = excluded.expires_at, \
               attempts = 0, created_at = excluded.created_at, link_hash = excluded.link_hash, \
               requester_hash = excluded.requester_hash, requester_ip = excluded.requester_ip, \
               requester_agent = excluded.requester_agent, \
               match_number = excluded.match_number, approved_at = NULL";
        execute!(
            self,
            SQL,
            &v.id,
            v.identifier,
            v.code_hash,
            Ts(v.expires_at),
            Ts(v.now),
            v.kind.as_str(),
            v.binding_hash.unwrap_or(UNBOUND),
            v.link_hash,
            v.requester.map(|r| r.hash),
            v.requester.and_then(|r| r.ip),
            v.requester.and_then(|r| r.agent),
            v.requester.map(|r| r.match_number),
        );
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
        execute!(self, SQL, identifier, kind.as_str(), code_hash);
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
        let row: Option<(Ts, i32)> =
            fetch_optional!(self, SQL, identifier, binding_hash.unwrap_or(UNBOUND));
        Ok(row.map(|(expires_at, attempts)| CodeState {
            expires_at: expires_at.into(),
            attempts,
        }))
    }

    /// Deletes the magic link with this hash, and the code sent with it, and returns the
    /// link's identifier and expiry.
    ///
    /// With `requester_hash` (same-browser links required), only the link that browser asked
    /// for is used; a live link of another browser (or of none) is left as it is.
    pub(crate) async fn take_magic_link(
        &self,
        token_hash: &str,
        requester_hash: Option<Option<&str>>,
    ) -> Result<TakenLink> {
        // An approved link is the asking browser's to take (`claim_approved_link`), not
        // the opener's.
        const ANY: &str = "DELETE FROM verification WHERE code_hash = $1 AND kind = 'magic_link' \
             AND approved_at IS NULL RETURNING identifier, expires_at";
        const OWN: &str = "DELETE FROM verification WHERE code_hash = $1 AND kind = 'magic_link' \
             AND approved_at IS NULL AND requester_hash = $2 RETURNING identifier, expires_at";
        const LIVE: &str = "SELECT COUNT(*) FROM verification WHERE code_hash = $1 \
             AND kind = 'magic_link' AND approved_at IS NULL";
        let requester = match requester_hash {
            None => None,
            Some(None) => Some(""),
            Some(Some(requester)) => Some(requester),
        };
        let row: Option<(String, Ts)> = on_pool!(self, conn => {
            let mut tx = conn.begin().await?;
            let row = match requester {
                None => sqlx::query_as(ANY).bind(token_hash).fetch_optional(&mut *tx).await?,
                // No binding cookie where one is required: nothing of it is used.
                Some("") => None,
                Some(requester) => sqlx::query_as(OWN)
                    .bind(token_hash)
                    .bind(requester)
                    .fetch_optional(&mut *tx)
                    .await?,
            };
            if row.is_some() {
                sqlx::query(DELETE_LINK_CODE).bind(token_hash).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            row
        });
        if let Some((identifier, expires_at)) = row {
            return Ok(TakenLink::Taken(identifier, expires_at.into()));
        }
        if requester_hash.is_none() {
            return Ok(TakenLink::Unknown);
        }
        let live: i64 = on_pool!(self, conn => sqlx::query_scalar(LIVE)
            .bind(token_hash)
            .fetch_one(&mut *conn)
            .await?);
        Ok(if live > 0 {
            TakenLink::OtherBrowser
        } else {
            TakenLink::Unknown
        })
    }

    /// Deletes the code sent with the magic link of this hash (its delivery failed).
    pub(crate) async fn delete_link_code(&self, token_hash: &str) -> Result<()> {
        execute!(self, DELETE_LINK_CODE, token_hash);
        Ok(())
    }
}
