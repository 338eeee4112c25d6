//! The SQL both backends share. Postgres and SQLite accept the same statements here
//! (`$n` parameters, upserts, `RETURNING`); they differ only in how a timestamp is stored,
//! in the schema and in the JSON merge, which each backend passes to [`sql_store!`].

/// User columns selected through the alias `u`.
pub(super) const USER_SELECT: &str =
    "u.id AS u_id, u.email AS u_email, u.phone_number AS u_phone_number, \
     u.name AS u_name, u.email_verified AS u_email_verified, \
     u.phone_number_verified AS u_phone_number_verified, u.metadata AS u_metadata, \
     u.created_at AS u_created_at, u.updated_at AS u_updated_at";

/// The same columns, for `RETURNING` (which cannot use a table alias in SQLite).
pub(super) const USER_RETURNING: &str =
    "id AS u_id, email AS u_email, phone_number AS u_phone_number, \
     name AS u_name, email_verified AS u_email_verified, \
     phone_number_verified AS u_phone_number_verified, metadata AS u_metadata, \
     created_at AS u_created_at, updated_at AS u_updated_at";

/// Session columns selected through the alias `s`.
pub(super) const SESSION_SELECT: &str =
    "s.id AS s_id, s.user_id AS s_user_id, s.token_hash AS s_token_hash, \
     s.expires_at AS s_expires_at, s.ip_address AS s_ip_address, s.user_agent AS s_user_agent, \
     s.created_at AS s_created_at";

/// `binding_hash` of the unbound row (a column in the unique key, so never NULL).
pub(super) const UNBOUND: &str = "";

/// Implements [`Store`](super::Store) for `$store` (a struct with a `pool` field).
///
/// `ts` is the column type of timestamps, `to_db`/`from_db` convert `DateTime<Utc>` to and
/// from it; `upgrade` runs after `schema` for steps plain SQL cannot express; `extra` holds
/// the backend's own methods (the JSON merge).
macro_rules! sql_store {
    (
        store = $store:ty,
        row = $row:ty,
        ts = $ts:ty,
        to_db = $to_db:path,
        from_db = $from_db:path,
        schema = $schema:expr,
        upgrade = $upgrade:path,
        extra = { $($extra:tt)* }
    ) => {
        use sqlx::Row as _;
        use $crate::store::sql_store::{SESSION_SELECT, UNBOUND, USER_RETURNING, USER_SELECT};
        use $crate::store::{sql_json, sql_text};

        fn user_from_row(row: &$row) -> Result<User> {
            Ok(User {
                id: row.try_get("u_id")?,
                email: row.try_get("u_email")?,
                phone_number: row.try_get("u_phone_number")?,
                name: row.try_get("u_name")?,
                email_verified: row.try_get("u_email_verified")?,
                phone_number_verified: row.try_get("u_phone_number_verified")?,
                metadata: row.try_get::<sqlx::types::Json<serde_json::Value>, _>("u_metadata")?.0,
                created_at: $from_db(row.try_get::<$ts, _>("u_created_at")?),
                updated_at: $from_db(row.try_get::<$ts, _>("u_updated_at")?),
            })
        }

        fn session_from_row(row: &$row) -> Result<(Session, String)> {
            let session = Session {
                id: row.try_get("s_id")?,
                user_id: row.try_get("s_user_id")?,
                token: String::new(),
                expires_at: $from_db(row.try_get::<$ts, _>("s_expires_at")?),
                ip_address: row.try_get("s_ip_address")?,
                user_agent: row.try_get("s_user_agent")?,
                created_at: $from_db(row.try_get::<$ts, _>("s_created_at")?),
            };
            Ok((session, row.try_get("s_token_hash")?))
        }

        #[async_trait::async_trait]
        impl Store for $store {
            async fn migrate(&self) -> Result<()> {
                sqlx::raw_sql($schema).execute(&self.pool).await?;
                $upgrade(&self.pool).await
            }

            async fn put_verification(&self, v: &NewVerification<'_>) -> Result<()> {
                sqlx::query(
                    "INSERT INTO verification (id, identifier, code_hash, expires_at, attempts, created_at, kind, binding_hash) \
                     VALUES ($1, $2, $3, $4, 0, $5, $6, $7) \
                     ON CONFLICT (identifier, kind, binding_hash) DO UPDATE SET id = excluded.id, \
                       code_hash = excluded.code_hash, expires_at = excluded.expires_at, \
                       attempts = 0, created_at = excluded.created_at",
                )
                .bind(&v.id)
                .bind(v.identifier)
                .bind(v.code_hash)
                .bind($to_db(v.expires_at))
                .bind($to_db(v.now))
                .bind(v.kind.as_str())
                .bind(v.binding_hash.unwrap_or(UNBOUND))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn delete_verification(&self, identifier: &str, kind: Kind, code_hash: &str) -> Result<()> {
                sqlx::query("DELETE FROM verification WHERE identifier = $1 AND kind = $2 AND code_hash = $3")
                    .bind(identifier)
                    .bind(kind.as_str())
                    .bind(code_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn reserve_guess(&self, identifier: &str, binding_hash: Option<&str>, now: DateTime<Utc>, max_attempts: u32) -> Result<Option<ReservedGuess>> {
                let row = sqlx::query(
                    "UPDATE verification SET attempts = attempts + 1 \
                     WHERE identifier = $1 AND kind = 'otp' AND binding_hash = $4 \
                       AND expires_at > $2 AND attempts < $3 \
                     RETURNING id, code_hash, attempts",
                )
                .bind(identifier)
                .bind($to_db(now))
                .bind(i32::try_from(max_attempts).unwrap_or(i32::MAX))
                .bind(binding_hash.unwrap_or(UNBOUND))
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| {
                    Ok(ReservedGuess {
                        id: r.try_get("id")?,
                        code_hash: r.try_get("code_hash")?,
                        attempts: r.try_get("attempts")?,
                    })
                })
                .transpose()
            }

            async fn code_state(&self, identifier: &str, binding_hash: Option<&str>) -> Result<Option<CodeState>> {
                let row = sqlx::query(
                    "SELECT expires_at, attempts FROM verification \
                     WHERE identifier = $1 AND kind = 'otp' AND binding_hash = $2",
                )
                    .bind(identifier)
                    .bind(binding_hash.unwrap_or(UNBOUND))
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|r| {
                    Ok(CodeState {
                        expires_at: $from_db(r.try_get::<$ts, _>("expires_at")?),
                        attempts: r.try_get("attempts")?,
                    })
                })
                .transpose()
            }

            async fn consume_verification(&self, id: &str) -> Result<bool> {
                let done = sqlx::query("DELETE FROM verification WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn take_magic_link(&self, token_hash: &str) -> Result<Option<(String, DateTime<Utc>)>> {
                let row = sqlx::query(
                    "DELETE FROM verification WHERE code_hash = $1 AND kind = 'magic_link' \
                     RETURNING identifier, expires_at",
                )
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| Ok((r.try_get("identifier")?, $from_db(r.try_get::<$ts, _>("expires_at")?))))
                    .transpose()
            }

            async fn upsert_verified_user(&self, identifier: &Identifier, new_id: &str, now: DateTime<Utc>) -> Result<User> {
                let (column, verified) = match identifier {
                    Identifier::Email(_) => ("email", "email_verified"),
                    Identifier::Phone(_) => ("phone_number", "phone_number_verified"),
                };
                // One statement: two first sign-ins of the same person at once make one user.
                let sql = format!(
                    "INSERT INTO \"user\" (id, {column}, name, {verified}, metadata, created_at, updated_at) \
                     VALUES ($1, $2, '', TRUE, '{{}}', $3, $3) \
                     ON CONFLICT ({column}) DO UPDATE SET {verified} = TRUE \
                     RETURNING {USER_RETURNING}"
                );
                let row = sqlx::query(&sql)
                    .bind(new_id)
                    .bind(identifier.as_str())
                    .bind($to_db(now))
                    .fetch_one(&self.pool)
                    .await?;
                user_from_row(&row)
            }

            async fn user_by_id(&self, id: &str) -> Result<Option<User>> {
                let sql = format!("SELECT {USER_SELECT} FROM \"user\" u WHERE u.id = $1");
                let row = sqlx::query(&sql).bind(sql_text(id)?).fetch_optional(&self.pool).await?;
                row.as_ref().map(user_from_row).transpose()
            }

            async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
                let sql = format!("SELECT {USER_SELECT} FROM \"user\" u WHERE u.email = $1");
                let row = sqlx::query(&sql).bind(sql_text(email)?).fetch_optional(&self.pool).await?;
                row.as_ref().map(user_from_row).transpose()
            }

            async fn user_by_phone(&self, phone: &str) -> Result<Option<User>> {
                let sql = format!("SELECT {USER_SELECT} FROM \"user\" u WHERE u.phone_number = $1");
                let row = sqlx::query(&sql).bind(sql_text(phone)?).fetch_optional(&self.pool).await?;
                row.as_ref().map(user_from_row).transpose()
            }

            async fn update_user_name(&self, id: &str, name: &str, now: DateTime<Utc>) -> Result<Option<User>> {
                let sql = format!("UPDATE \"user\" SET name = $2, updated_at = $3 WHERE id = $1 RETURNING {USER_RETURNING}");
                let row = sqlx::query(&sql)
                    .bind(sql_text(id)?)
                    .bind(sql_text(name)?)
                    .bind($to_db(now))
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(user_from_row).transpose()
            }

            async fn set_user_metadata(&self, id: &str, metadata: &serde_json::Value, now: DateTime<Utc>) -> Result<Option<User>> {
                let sql = format!("UPDATE \"user\" SET metadata = $2, updated_at = $3 WHERE id = $1 RETURNING {USER_RETURNING}");
                let row = sqlx::query(&sql)
                    .bind(sql_text(id)?)
                    .bind(sqlx::types::Json(sql_json(metadata)?))
                    .bind($to_db(now))
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(user_from_row).transpose()
            }

            async fn insert_session(&self, s: &NewSession<'_>) -> Result<()> {
                sqlx::query(
                    "INSERT INTO session (id, user_id, token_hash, expires_at, ip_address, user_agent, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&s.id)
                .bind(s.user_id)
                .bind(s.token_hash)
                .bind($to_db(s.expires_at))
                .bind(s.ip_address.map(sql_text).transpose()?)
                .bind(s.user_agent.map(sql_text).transpose()?)
                .bind($to_db(s.now))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn find_session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<(User, Session, String)>> {
                // Built once: this runs on every authenticated request.
                static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| format!(
                    "SELECT {SESSION_SELECT}, {USER_SELECT} FROM session s JOIN \"user\" u ON u.id = s.user_id \
                     WHERE s.token_hash = $1 AND s.expires_at > $2"
                ));
                let row = sqlx::query(SQL.as_str())
                    .bind(token_hash)
                    .bind($to_db(now))
                    .fetch_optional(&self.pool)
                    .await?;
                match row {
                    Some(row) => {
                        let (session, hash) = session_from_row(&row)?;
                        Ok(Some((user_from_row(&row)?, session, hash)))
                    }
                    None => Ok(None),
                }
            }

            async fn extend_session(&self, id: &str, expires_at: DateTime<Utc>) -> Result<()> {
                sqlx::query("UPDATE session SET expires_at = $2 WHERE id = $1 AND expires_at < $2")
                    .bind(id)
                    .bind($to_db(expires_at))
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn delete_session_by_hash(&self, token_hash: &str) -> Result<bool> {
                let done = sqlx::query("DELETE FROM session WHERE token_hash = $1")
                    .bind(token_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn delete_user_session(&self, user_id: &str, session_id: &str) -> Result<bool> {
                let done = sqlx::query("DELETE FROM session WHERE user_id = $1 AND id = $2")
                    .bind(sql_text(user_id)?)
                    .bind(sql_text(session_id)?)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn delete_user_sessions(&self, user_id: &str) -> Result<u64> {
                let done = sqlx::query("DELETE FROM session WHERE user_id = $1")
                    .bind(sql_text(user_id)?)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn list_sessions(&self, user_id: &str, now: DateTime<Utc>) -> Result<Vec<Session>> {
                let sql = format!(
                    "SELECT {SESSION_SELECT} FROM session s WHERE s.user_id = $1 AND s.expires_at > $2 \
                     ORDER BY s.created_at DESC"
                );
                let rows = sqlx::query(&sql)
                    .bind(sql_text(user_id)?)
                    .bind($to_db(now))
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(|r| session_from_row(r).map(|(s, _)| s)).collect()
            }

            async fn rate_limit_hit(&self, key: &str, now: i64, window: i64) -> Result<(i64, i64)> {
                // Every SET expression reads the old row, so both CASEs agree.
                let row = sqlx::query(
                    "INSERT INTO futureauth_rate_limit (key, window_end, count) VALUES ($1, $2 + $3, 1) \
                     ON CONFLICT (key) DO UPDATE SET \
                       count = CASE WHEN futureauth_rate_limit.window_end > $2 \
                               THEN futureauth_rate_limit.count + 1 ELSE 1 END, \
                       window_end = CASE WHEN futureauth_rate_limit.window_end > $2 \
                               THEN futureauth_rate_limit.window_end ELSE excluded.window_end END \
                     RETURNING count, window_end",
                )
                .bind(key)
                .bind(now)
                .bind(window)
                .fetch_one(&self.pool)
                .await?;
                Ok((i64::from(row.try_get::<i32, _>("count")?), row.try_get("window_end")?))
            }

            async fn rate_limit_reset(&self, key: &str) -> Result<()> {
                sqlx::query("DELETE FROM futureauth_rate_limit WHERE key = $1")
                    .bind(key)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn cleanup(&self, now: DateTime<Utc>, max_attempts: u32, limit: u32) -> Result<CleanupReport> {
                // Each statement deletes at most `limit` rows, so a write that tidies up on
                // the side costs a bounded amount however much has piled up.
                let limit = i64::from(limit);
                let sessions = sqlx::query(
                    "DELETE FROM session WHERE id IN \
                     (SELECT id FROM session WHERE expires_at <= $1 LIMIT $2)",
                )
                .bind($to_db(now))
                .bind(limit)
                .execute(&self.pool)
                .await?
                .rows_affected();
                let verifications = sqlx::query(
                    "DELETE FROM verification WHERE id IN \
                     (SELECT id FROM verification WHERE expires_at <= $1 OR attempts >= $2 LIMIT $3)",
                )
                .bind($to_db(now))
                .bind(i32::try_from(max_attempts).unwrap_or(i32::MAX))
                .bind(limit)
                .execute(&self.pool)
                .await?
                .rows_affected();
                let rate_limit_buckets = sqlx::query(
                    "DELETE FROM futureauth_rate_limit WHERE key IN \
                     (SELECT key FROM futureauth_rate_limit WHERE window_end <= $1 LIMIT $2)",
                )
                .bind(now.timestamp())
                .bind(limit)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(CleanupReport { sessions, verifications, rate_limit_buckets })
            }

            $($extra)*
        }
    };
}
