//! Approving a magic link from another device. The person who opens the link elsewhere
//! types the number the asking browser shows; only then is the link approved, and only the
//! asking browser (polling with its binding cookie) can turn it into a session. A wrong
//! number voids the link: there is no second guess.

use chrono::{DateTime, Utc};

use super::codes::DELETE_LINK_CODE;
use sqlx::Connection;

use super::{fetch_optional, on_pool, Store, Ts};
use crate::error::Result;

/// A live, unapproved magic link, as the page that opens it shows it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct LinkRequestRow {
    pub requester_hash: Option<String>,
    pub requester_ip: Option<String>,
    pub requester_agent: Option<String>,
    pub created_at: Ts,
    pub expires_at: Ts,
}

/// What [`Store::approve_magic_link`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Approval {
    /// The number matched: the link now waits for the asking browser.
    Approved,
    /// The number did not match: the link (and its code) are void.
    Mismatch,
    /// The link had expired (and is now deleted).
    Expired,
    /// No such live link, already used or approved, or not asked for by a browser.
    Unknown,
}

impl Store {
    /// The live, unapproved magic link with this token hash.
    pub(crate) async fn link_request(&self, token_hash: &str) -> Result<Option<LinkRequestRow>> {
        const SQL: &str = "SELECT requester_hash, requester_ip, requester_agent, created_at, \
             expires_at FROM verification \
             WHERE code_hash = $1 AND kind = 'magic_link' AND approved_at IS NULL";
        Ok(fetch_optional!(self, SQL, token_hash))
    }

    /// Approves the link with this token hash if `number` is the one its asking browser
    /// shows; otherwise voids it. One transaction, so two concurrent approvals cannot both
    /// win, and a wrong guess can never be followed by a right one.
    pub(crate) async fn approve_magic_link(
        &self,
        token_hash: &str,
        number: &str,
        now: DateTime<Utc>,
    ) -> Result<Approval> {
        const APPROVE: &str = "UPDATE verification SET approved_at = $3 \
             WHERE code_hash = $1 AND kind = 'magic_link' AND approved_at IS NULL \
               AND requester_hash IS NOT NULL AND expires_at > $3 AND match_number = $2 \
             RETURNING id";
        const VOID: &str = "DELETE FROM verification \
             WHERE code_hash = $1 AND kind = 'magic_link' AND approved_at IS NULL \
               AND requester_hash IS NOT NULL RETURNING expires_at";
        on_pool!(self, conn => {
            let mut tx = conn.begin().await?;
            let approved: Option<String> = sqlx::query_scalar(APPROVE)
                .bind(token_hash)
                .bind(number)
                .bind(Ts(now))
                .fetch_optional(&mut *tx)
                .await?;
            let outcome = if approved.is_some() {
                Approval::Approved
            } else {
                let voided: Option<Ts> = sqlx::query_scalar(VOID)
                    .bind(token_hash)
                    .fetch_optional(&mut *tx)
                    .await?;
                match voided {
                    None => Approval::Unknown,
                    Some(expires_at) if DateTime::<Utc>::from(expires_at) <= now => {
                        Approval::Expired
                    }
                    Some(_) => Approval::Mismatch,
                }
            };
            // The code sent in the same email is used up with its link.
            if outcome != Approval::Unknown {
                sqlx::query(DELETE_LINK_CODE).bind(token_hash).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(outcome)
        })
    }

    /// Deletes one live, approved link the browser with this binding asked for, and returns
    /// its identifier: that browser is to be signed in. Concurrent polls take it once.
    pub(crate) async fn claim_approved_link(
        &self,
        requester_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>> {
        const SQL: &str = "DELETE FROM verification WHERE id = (\
               SELECT id FROM verification WHERE requester_hash = $1 AND kind = 'magic_link' \
                 AND approved_at IS NOT NULL AND expires_at > $2 \
               ORDER BY approved_at LIMIT 1) \
             RETURNING identifier";
        let identifier = on_pool!(self, conn => sqlx::query_scalar(SQL)
            .bind(requester_hash)
            .bind(Ts(now))
            .fetch_optional(&mut *conn)
            .await?);
        Ok(identifier)
    }

    /// The number shown by the browser with this binding for its newest link still waiting
    /// to be opened or approved.
    pub(crate) async fn waiting_link(
        &self,
        requester_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>> {
        const SQL: &str = "SELECT match_number FROM verification \
             WHERE requester_hash = $1 AND kind = 'magic_link' AND approved_at IS NULL \
               AND expires_at > $2 AND match_number IS NOT NULL \
             ORDER BY created_at DESC LIMIT 1";
        let number: Option<Option<String>> = on_pool!(self, conn => sqlx::query_scalar(SQL)
            .bind(requester_hash)
            .bind(Ts(now))
            .fetch_optional(&mut *conn)
            .await?);
        Ok(number.flatten())
    }
}
