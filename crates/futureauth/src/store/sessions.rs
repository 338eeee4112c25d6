//! The `session` table. [`Store::find_session`] is the hot path: one indexed query per
//! authenticated request.

use chrono::{DateTime, Utc};

use super::accounts::disabled;
#[cfg(feature = "postgres")]
use super::rows::session_user_pg;
#[cfg(feature = "sqlite")]
use super::rows::SessionUserRow;
use super::rows::{session_columns, user_columns_u, SessionRow};
use super::{execute, fetch_optional, on_pool, sql_text, NewSession, Store, Ts};
use crate::error::Result;
use crate::model::{Session, User};

/// Stores a [`NewSession`] of user `$2`.
pub(super) const INSERT_SESSION: &str = "INSERT INTO session \
     (id, user_id, token_hash, expires_at, ip_address, user_agent, created_at, auth_method, \
      authenticated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $7)";

impl Store {
    pub(crate) async fn insert_session(&self, user_id: &str, s: &NewSession) -> Result<()> {
        execute!(
            self,
            INSERT_SESSION,
            &s.id,
            user_id,
            &s.token_hash,
            Ts(s.expires_at),
            s.ip_address.as_deref().map(sql_text).transpose()?,
            s.user_agent.as_deref().map(sql_text).transpose()?,
            Ts(s.now),
            s.method.as_str(),
        );
        Ok(())
    }

    /// The live session with this token hash, its user and the stored hash (for a
    /// constant-time comparison by the caller).
    pub(crate) async fn find_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(User, Session, String)>> {
        const SQL: &str = concat!(
            "SELECT ",
            session_columns!(),
            ", ",
            user_columns_u!(),
            " FROM session s JOIN \"user\" u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND NOT (",
            disabled!("u.", "$2"),
            ")"
        );
        Ok(on_pool!(self, conn =>
        postgres: sqlx::query(SQL)
            .bind(token_hash)
            .bind(Ts(now))
            .fetch_optional(&mut *conn)
            .await?
            .as_ref()
            .map(session_user_pg)
            .transpose()?,
        sqlite: sqlx::query_as::<_, SessionUserRow>(SQL)
            .bind(token_hash)
            .bind(Ts(now))
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| {
                let hash = r.session.token_hash.clone();
                (r.user.into(), r.session.into(), hash)
            })))
    }

    /// Moves a session's expiry forward (never backward).
    pub(crate) async fn extend_session(&self, id: &str, expires_at: DateTime<Utc>) -> Result<()> {
        const SQL: &str = "UPDATE session SET expires_at = $2 WHERE id = $1 AND expires_at < $2";
        execute!(self, SQL, id, Ts(expires_at));
        Ok(())
    }

    /// Deletes the session with this token hash; its user and id, if there was one.
    pub(crate) async fn end_session_by_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<(String, String)>> {
        const SQL: &str = "DELETE FROM session WHERE token_hash = $1 RETURNING user_id, id";
        Ok(fetch_optional!(self, SQL, token_hash))
    }

    pub(crate) async fn delete_user_session(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> Result<bool> {
        const SQL: &str = "DELETE FROM session WHERE user_id = $1 AND id = $2";
        let n = execute!(self, SQL, sql_text(user_id)?, sql_text(session_id)?);
        Ok(n > 0)
    }

    pub(crate) async fn delete_user_sessions(&self, user_id: &str) -> Result<u64> {
        const SQL: &str = "DELETE FROM session WHERE user_id = $1";
        Ok(execute!(self, SQL, sql_text(user_id)?))
    }

    /// A user's live sessions, newest first.
    pub(crate) async fn list_sessions(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>> {
        const SQL: &str = concat!(
            "SELECT ",
            session_columns!(),
            " FROM session s WHERE s.user_id = $1 AND s.expires_at > $2 \
             ORDER BY s.created_at DESC"
        );
        let rows: Vec<SessionRow> = on_pool!(self, conn => sqlx::query_as(SQL)
            .bind(sql_text(user_id)?)
            .bind(Ts(now))
            .fetch_all(&mut *conn)
            .await?);
        Ok(rows.into_iter().map(Session::from).collect())
    }
}
