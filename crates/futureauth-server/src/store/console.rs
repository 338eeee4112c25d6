//! Storage of the console: operators, memberships, the audit log, operator tokens,
//! server secrets, key management with overlap, and the delivery log queries.

use std::sync::LazyLock;

use rand::RngCore;
use serde::Serialize;
use sqlx::Connection;

use super::sql::{Arg, BindArgs};
use super::{
    Backend, Message, MessageChannel, Project, ProjectRow, Store, INSERT_API_KEY, PROJECT_COLUMNS,
};
use crate::clock::UnixMillis;
use crate::error::StoreError;

/// A person who may sign in to the console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Operator {
    /// `op_…` identifier.
    pub id: String,
    /// Normalised (lower-case) email address.
    pub email: String,
    /// Creation time (epoch ms).
    pub created_at: UnixMillis,
}

/// An operator's role in a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manages keys, members and deletion.
    Owner,
    /// Sees the project, its deliveries and settings.
    Member,
}

impl Role {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Member => "member",
        }
    }

    /// Parses the stored (or submitted) form.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "owner" => Some(Role::Owner),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
}

/// A project as one operator sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Membership {
    /// The project.
    pub project: Project,
    /// The operator's role in it.
    pub role: Role,
}

/// A member of a project.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    /// Operator id.
    pub operator_id: String,
    /// Operator email.
    pub email: String,
    /// Role.
    pub role: Role,
    /// When they were added (epoch ms).
    pub added_at: UnixMillis,
}

/// One line of a project's audit log.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    /// `aud_…` identifier.
    pub id: String,
    /// Project.
    pub project_id: String,
    /// Email of the operator who acted.
    pub actor: String,
    /// What happened, e.g. `key.created`.
    pub action: String,
    /// Human-readable detail (never a secret).
    pub detail: String,
    /// When (epoch ms).
    pub created_at: UnixMillis,
}

/// When a credential (a secret key or an operator token) was made, last used, and stops
/// working: the lifetime both listings show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Lifespan {
    /// Creation time (epoch ms).
    pub created_at: UnixMillis,
    /// Last successful authentication (epoch ms, minute precision).
    pub last_used_at: Option<UnixMillis>,
    /// When it stops (or stopped) working (epoch ms); a key's is in the future during a
    /// rotation overlap.
    pub revoked_at: Option<UnixMillis>,
}

/// A secret key as the console lists it (never the key itself).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct KeyListing {
    /// First 12 characters.
    pub key_prefix: String,
    /// When it was made, last used, and stops working.
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub life: Lifespan,
}

/// An operator token as listed (never the token itself).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct TokenListing {
    /// First 12 characters.
    pub token_prefix: String,
    /// Label given at creation.
    pub name: String,
    /// When it was made, last used, and revoked.
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub life: Lifespan,
}

/// One finished delivery attempt of a message (the timeline of the console's detail page).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DeliveryAttempt {
    /// Attempt number (1 = first).
    pub attempt: i64,
    /// `sent`, `failed` (for good) or `retry` (failed, will retry).
    pub outcome: String,
    /// The provider's reason, if it failed.
    pub error: Option<String>,
    /// When the attempt ended (epoch ms).
    pub at: UnixMillis,
}

/// Filter of the delivery log.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// Only this channel.
    pub channel: Option<MessageChannel>,
    /// A [`MessageStatus`](super::MessageStatus) in its stored form.
    pub status: Option<String>,
    /// Created at or after (epoch ms).
    pub from: Option<i64>,
    /// Created before (epoch ms).
    pub until: Option<i64>,
    /// Keyed hash of the normalised destination.
    pub destination_hash: Option<String>,
}

/// Sends of one day, channel and status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct DailyCount {
    /// Days since the Unix epoch (UTC).
    pub day: i64,
    /// Channel.
    pub channel: String,
    /// Status.
    pub status: String,
    /// Number of messages.
    pub count: i64,
}

#[derive(sqlx::FromRow)]
struct MembershipRow {
    #[sqlx(flatten)]
    project: ProjectRow,
    role: String,
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    operator_id: String,
    email: String,
    role: String,
    created_at: UnixMillis,
}

fn role(s: &str) -> Result<Role, StoreError> {
    Role::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown role `{s}`")))
}

impl TryFrom<MembershipRow> for Membership {
    type Error = StoreError;
    fn try_from(r: MembershipRow) -> Result<Self, StoreError> {
        Ok(Membership {
            role: role(&r.role)?,
            project: Project::try_from(r.project)?,
        })
    }
}

/// `WHERE` clause and its parameters for the messages of `project_id` (`$1`) that match a
/// [`DeliveryFilter`].
fn delivery_where<'a>(project_id: &'a str, f: &'a DeliveryFilter) -> (String, Vec<Arg<'a>>) {
    let conditions: [(&str, Option<Arg<'_>>); 5] = [
        ("channel = ", f.channel.map(|c| c.as_str().into())),
        ("status = ", f.status.as_deref().map(Arg::from)),
        (
            "destination_hash = ",
            f.destination_hash.as_deref().map(Arg::from),
        ),
        ("created_at >= ", f.from.map(Arg::from)),
        ("created_at < ", f.until.map(Arg::from)),
    ];
    let mut sql = String::from("project_id = $1");
    let mut args = vec![Arg::from(project_id)];
    for (condition, arg) in conditions {
        if let Some(arg) = arg {
            args.push(arg);
            sql.push_str(&format!(" AND {condition}${}", args.len()));
        }
    }
    (sql, args)
}

/// A project's list columns as stored: allowed origins and SMS countries, as JSON.
fn project_lists(p: &Project) -> Result<(String, String), StoreError> {
    let origins = serde_json::to_string(&p.allowed_origins)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok((origins, super::countries_json(&p.sms_countries)))
}

/// Inserts a project row, SMS caps included, from [`project_args`].
const INSERT_PROJECT: &str = "INSERT INTO project (id, name, allowed_origins, callback_url,
         email_from, sms_prefixes, sms_countries, sms_per_country_per_hour, sms_per_hour,
         sms_per_day, created_at)
     VALUES ($9, $1, $2, $3, $4, '[]', $5, $6, $7, $8, $10)";

/// A project's values as [`INSERT_PROJECT`] binds them: `$1…$8` its settings (what
/// [`Store::update_project`] replaces), `$9` its id, `$10` its creation time. `lists` are
/// from [`project_lists`].
fn project_args<'a>(p: &'a Project, (origins, countries): &'a (String, String)) -> [Arg<'a>; 10] {
    [
        (&p.name).into(),
        origins.into(),
        (&p.callback_url).into(),
        (&p.email_from).into(),
        countries.into(),
        p.sms_caps.per_country_per_hour.into(),
        p.sms_caps.per_hour.into(),
        p.sms_caps.per_day.into(),
        (&p.id).into(),
        p.created_at.into(),
    ]
}

/// Adds a membership (`$1` project, `$2` operator, `$3` role, `$4` time), or changes the role.
const SET_MEMBER: &str = "INSERT INTO project_member (project_id, operator_id, role, created_at)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (project_id, operator_id) DO UPDATE SET role = excluded.role";

/// A project and an operator's role in it, as [`MembershipRow`] reads them.
static SELECT_MEMBERSHIP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {PROJECT_COLUMNS}, m.role FROM project p
         JOIN project_member m ON m.project_id = p.id"
    )
});

/// Records the use (`$1` the time) of the key or token of `table` whose `hash_column` is
/// `$2`, at most once a minute so that authenticating does not write on every call.
fn touch_sql(table: &str, hash_column: &str) -> String {
    format!(
        "UPDATE {table} SET last_used_at = $1 WHERE {hash_column} = $2
             AND (last_used_at IS NULL OR last_used_at < $1 - 60000)"
    )
}

/// The columns of [`Operator`].
const SELECT_OPERATOR: &str = "SELECT id, email, created_at FROM operator";

impl Store {
    /// A server-wide random secret (32 bytes, hex) named `name`, created on first use. All
    /// instances sharing the database read the same value.
    pub async fn server_secret(&self, name: &str) -> Result<String, StoreError> {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let fresh = hex::encode(bytes);
        let (value,): (String,) = with_pool!(self, conn => {
            sqlx::query(
                "INSERT INTO server_secret (name, value) VALUES ($1, $2)
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind_args(&[name.into(), fresh.as_str().into()])
            .execute(&mut *conn)
            .await?;
            sqlx::query_as("SELECT value FROM server_secret WHERE name = $1")
                .bind(name)
                .fetch_one(&mut *conn)
                .await?
        });
        Ok(value)
    }

    /// Adds an operator (or returns the existing one with this email).
    pub async fn upsert_operator(
        &self,
        id: &str,
        email: &str,
        now: UnixMillis,
    ) -> Result<Operator, StoreError> {
        let sql = format!("{SELECT_OPERATOR} WHERE email = $1");
        let op = with_pool!(self, conn => {
            sqlx::query(
                "INSERT INTO operator (id, email, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (email) DO NOTHING",
            )
            .bind_args(&[id.into(), email.into(), now.into()])
            .execute(&mut *conn)
            .await?;
            sqlx::query_as(&sql).bind(email).fetch_one(&mut *conn).await?
        });
        Ok(op)
    }

    /// The operator with this (normalised) email.
    pub async fn operator_by_email(&self, email: &str) -> Result<Option<Operator>, StoreError> {
        let sql = format!("{SELECT_OPERATOR} WHERE email = $1");
        self.fetch_optional(&sql, &[email.into()]).await
    }

    /// Removes an operator with their memberships and tokens; returns whether one existed.
    pub async fn remove_operator(&self, email: &str) -> Result<bool, StoreError> {
        let n = self
            .execute("DELETE FROM operator WHERE email = $1", &[email.into()])
            .await?;
        Ok(n == 1)
    }

    /// All operators, oldest first.
    pub async fn list_operators(&self) -> Result<Vec<Operator>, StoreError> {
        let sql = format!("{SELECT_OPERATOR} ORDER BY created_at, id");
        self.fetch_all(&sql, &[]).await
    }

    /// Projects the operator belongs to, oldest first.
    pub async fn memberships(&self, operator_id: &str) -> Result<Vec<Membership>, StoreError> {
        let sql = format!(
            "{} WHERE m.operator_id = $1 ORDER BY p.created_at, p.id",
            *SELECT_MEMBERSHIP
        );
        let rows: Vec<MembershipRow> = self.fetch_all(&sql, &[operator_id.into()]).await?;
        rows.into_iter().map(Membership::try_from).collect()
    }

    /// The project and the operator's role in it; `None` when the project does not exist
    /// or the operator is not a member (callers answer 404 to both).
    pub async fn membership(
        &self,
        operator_id: &str,
        project_id: &str,
    ) -> Result<Option<Membership>, StoreError> {
        let sql = format!(
            "{} WHERE m.operator_id = $1 AND p.id = $2",
            *SELECT_MEMBERSHIP
        );
        let row: Option<MembershipRow> = self
            .fetch_optional(&sql, &[operator_id.into(), project_id.into()])
            .await?;
        row.map(Membership::try_from).transpose()
    }

    /// Adds or changes a membership.
    pub async fn set_member(
        &self,
        project_id: &str,
        operator_id: &str,
        role: Role,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let args = [
            project_id.into(),
            operator_id.into(),
            role.as_str().into(),
            now.into(),
        ];
        self.execute(SET_MEMBER, &args).await?;
        Ok(())
    }

    /// Removes a membership; returns whether it existed.
    pub async fn remove_member(
        &self,
        project_id: &str,
        operator_id: &str,
    ) -> Result<bool, StoreError> {
        let n = self
            .execute(
                "DELETE FROM project_member WHERE project_id = $1 AND operator_id = $2",
                &[project_id.into(), operator_id.into()],
            )
            .await?;
        Ok(n == 1)
    }

    /// Members of a project, owners first.
    pub async fn members(&self, project_id: &str) -> Result<Vec<Member>, StoreError> {
        let rows: Vec<MemberRow> = self
            .fetch_all(
                "SELECT m.operator_id, o.email, m.role, m.created_at FROM project_member m
                 JOIN operator o ON o.id = m.operator_id WHERE m.project_id = $1
                 ORDER BY m.role DESC, m.created_at, o.email",
                &[project_id.into()],
            )
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(Member {
                    role: role(&r.role)?,
                    operator_id: r.operator_id,
                    email: r.email,
                    added_at: r.created_at,
                })
            })
            .collect()
    }

    /// Creates a project with its first key and its owner (if any: the CLI's projects start
    /// without members), atomically.
    pub async fn create_owned_project(
        &self,
        project: &Project,
        key_hash: &str,
        key_prefix: &str,
        owner_id: Option<&str>,
    ) -> Result<(), StoreError> {
        let lists = project_lists(project)?;
        let key = [
            key_hash.into(),
            key_prefix.into(),
            (&project.id).into(),
            project.created_at.into(),
        ];
        with_pool!(self, conn => {
            let mut tx = conn.begin().await?;
            sqlx::query(INSERT_PROJECT)
                .bind_args(&project_args(project, &lists))
                .execute(&mut *tx)
                .await?;
            sqlx::query(INSERT_API_KEY).bind_args(&key).execute(&mut *tx).await?;
            if let Some(owner_id) = owner_id {
                let owner = Role::Owner.as_str();
                sqlx::query(SET_MEMBER)
                    .bind_args(&[(&project.id).into(), owner_id.into(), owner.into(), project.created_at.into()])
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Creates a project without members or usable key (the console's own sign-in project),
    /// or updates its allowed origins if it exists.
    pub async fn upsert_internal_project(
        &self,
        project: &Project,
        key_hash: &str,
    ) -> Result<(), StoreError> {
        let lists = project_lists(project)?;
        let upsert = format!(
            "{INSERT_PROJECT} ON CONFLICT (id) DO UPDATE SET allowed_origins = excluded.allowed_origins,
                 callback_url = excluded.callback_url"
        );
        with_pool!(self, conn => {
            let mut tx = conn.begin().await?;
            sqlx::query(&upsert)
                .bind_args(&project_args(project, &lists))
                .execute(&mut *tx)
                .await?;
            // A revoked key nobody knows: `api_key` rows make the project look like any other.
            sqlx::query(
                "INSERT INTO api_key (key_hash, key_prefix, project_id, created_at, revoked_at)
                 VALUES ($1, 'vx_sec_none', $2, $3, $3) ON CONFLICT (key_hash) DO NOTHING",
            )
            .bind_args(&[key_hash.into(), (&project.id).into(), project.created_at.into()])
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Renames a project and replaces its delivery settings.
    pub async fn update_project(&self, p: &Project) -> Result<bool, StoreError> {
        let lists = project_lists(p)?;
        let n = self
            .execute(
                "UPDATE project SET name = $1, allowed_origins = $2, callback_url = $3, email_from = $4,
                     sms_countries = $5, sms_per_country_per_hour = $6, sms_per_hour = $7,
                     sms_per_day = $8
                 WHERE id = $9",
                // Everything but the creation time.
                &project_args(p, &lists)[..9],
            )
            .await;
        Ok(self.changed(n)? == 1)
    }

    /// Deletes a project with its keys, messages, members and audit log.
    pub async fn delete_project(&self, project_id: &str) -> Result<bool, StoreError> {
        let n = self
            .execute("DELETE FROM project WHERE id = $1", &[project_id.into()])
            .await;
        Ok(self.changed(n)? == 1)
    }

    /// Per-project rate limits (`None` = the server default).
    pub async fn project_limits(
        &self,
        project_id: &str,
    ) -> Result<(Option<i64>, Option<i64>), StoreError> {
        let row = self
            .fetch_optional(
                "SELECT per_destination, per_minute FROM project_limit WHERE project_id = $1",
                &[project_id.into()],
            )
            .await?;
        Ok(row.unwrap_or((None, None)))
    }

    /// Sets per-project rate limits.
    pub async fn set_project_limits(
        &self,
        project_id: &str,
        per_destination: Option<i64>,
        per_minute: Option<i64>,
    ) -> Result<(), StoreError> {
        let done = self.execute(
            "INSERT INTO project_limit (project_id, per_destination, per_minute) VALUES ($1, $2, $3)
             ON CONFLICT (project_id) DO UPDATE SET per_destination = excluded.per_destination,
                 per_minute = excluded.per_minute",
            &[project_id.into(), per_destination.into(), per_minute.into()],
        )
        .await;
        self.changed(done)?;
        Ok(())
    }

    /// Adds a key to a project (existing keys keep working).
    pub async fn add_key(
        &self,
        project_id: &str,
        key_hash: &str,
        key_prefix: &str,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let args = [
            key_hash.into(),
            key_prefix.into(),
            project_id.into(),
            now.into(),
        ];
        self.execute(INSERT_API_KEY, &args).await?;
        Ok(())
    }

    /// Revokes now the project's live keys with this display prefix; returns how many.
    pub async fn revoke_project_key(
        &self,
        project_id: &str,
        key_prefix: &str,
        now: UnixMillis,
    ) -> Result<u64, StoreError> {
        let done = self
            .execute(
                "UPDATE api_key SET revoked_at = $1 WHERE project_id = $2 AND key_prefix = $3
                 AND (revoked_at IS NULL OR revoked_at > $1)",
                &[now.into(), project_id.into(), key_prefix.into()],
            )
            .await;
        self.changed(done)
    }

    /// Keys of a project with last use, newest first.
    pub async fn key_listing(&self, project_id: &str) -> Result<Vec<KeyListing>, StoreError> {
        self.fetch_all(
            "SELECT key_prefix, created_at, last_used_at, revoked_at FROM api_key
             WHERE project_id = $1 ORDER BY created_at DESC, key_prefix",
            &[project_id.into()],
        )
        .await
    }

    /// Records a key's use, at most once a minute (so sends do not write on every call).
    pub async fn touch_key(&self, key_hash: &str, now: UnixMillis) -> Result<(), StoreError> {
        // Remembered here too, so that most uses send no statement at all.
        if !self.cache.should_touch(key_hash, now) {
            return Ok(());
        }
        self.execute(
            &touch_sql("api_key", "key_hash"),
            &[now.into(), key_hash.into()],
        )
        .await?;
        Ok(())
    }

    /// Appends to a project's audit log.
    pub async fn audit(&self, e: &AuditEntry) -> Result<(), StoreError> {
        let args = [
            (&e.id).into(),
            (&e.project_id).into(),
            (&e.actor).into(),
            (&e.action).into(),
            (&e.detail).into(),
            e.created_at.into(),
        ];
        self.execute(
            "INSERT INTO audit_log (id, project_id, actor, action, detail, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &args,
        )
        .await?;
        Ok(())
    }

    /// A project's audit log, newest first.
    pub async fn audit_log(
        &self,
        project_id: &str,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.fetch_all(
            "SELECT id, project_id, actor, action, detail, created_at FROM audit_log
             WHERE project_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
            &[project_id.into(), limit.into()],
        )
        .await
    }

    /// Creates an operator token (given as hash and display prefix).
    pub async fn add_operator_token(
        &self,
        operator_id: &str,
        token_hash: &str,
        token_prefix: &str,
        name: &str,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let args = [
            token_hash.into(),
            token_prefix.into(),
            operator_id.into(),
            name.into(),
            now.into(),
        ];
        self.execute(
            "INSERT INTO operator_token (token_hash, token_prefix, operator_id, name, created_at)
             VALUES ($1, $2, $3, $4, $5)",
            &args,
        )
        .await?;
        Ok(())
    }

    /// The stored hash and operator of a live operator token, recording its use.
    pub async fn operator_by_token_hash(
        &self,
        token_hash: &str,
        now: UnixMillis,
    ) -> Result<Option<(String, Operator)>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            token_hash: String,
            #[sqlx(flatten)]
            operator: Operator,
        }
        let row: Option<Row> = self
            .fetch_optional(
                "SELECT t.token_hash, o.id, o.email, o.created_at FROM operator_token t
                 JOIN operator o ON o.id = t.operator_id
                 WHERE t.token_hash = $1 AND t.revoked_at IS NULL",
                &[token_hash.into()],
            )
            .await?;
        if row.is_some() {
            let sql = touch_sql("operator_token", "token_hash");
            self.execute(&sql, &[now.into(), token_hash.into()]).await?;
        }
        Ok(row.map(|r| (r.token_hash, r.operator)))
    }

    /// An operator's tokens, newest first.
    pub async fn operator_tokens(
        &self,
        operator_id: &str,
    ) -> Result<Vec<TokenListing>, StoreError> {
        self.fetch_all(
            "SELECT token_prefix, name, created_at, last_used_at, revoked_at FROM operator_token
             WHERE operator_id = $1 ORDER BY created_at DESC",
            &[operator_id.into()],
        )
        .await
    }

    /// Revokes an operator's live tokens with this prefix; returns how many.
    pub async fn revoke_operator_token(
        &self,
        operator_id: &str,
        token_prefix: &str,
        now: UnixMillis,
    ) -> Result<u64, StoreError> {
        self.execute(
            "UPDATE operator_token SET revoked_at = $1 WHERE operator_id = $2 AND token_prefix = $3
                 AND revoked_at IS NULL",
            &[now.into(), operator_id.into(), token_prefix.into()],
        )
        .await
    }

    /// Records the end of a delivery attempt. The outcome is already stored on the message,
    /// so a failure here is logged, not returned.
    pub async fn record_attempt(
        &self,
        id: &str,
        attempt: i64,
        outcome: &str,
        error: Option<&str>,
        now: UnixMillis,
    ) {
        let args = [
            id.into(),
            attempt.into(),
            outcome.into(),
            error.into(),
            now.into(),
        ];
        let done = self
            .execute(
                "INSERT INTO delivery_attempt (message_id, attempt, outcome, error, at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (message_id, attempt) DO NOTHING",
                &args,
            )
            .await;
        if let Err(e) = done {
            tracing::warn!(error = %e, message = id, "cannot record the delivery attempt");
        }
    }

    /// The recorded attempts of a message, first first.
    pub async fn delivery_attempts(&self, id: &str) -> Result<Vec<DeliveryAttempt>, StoreError> {
        self.fetch_all(
            "SELECT attempt, outcome, error, at FROM delivery_attempt
             WHERE message_id = $1 ORDER BY attempt",
            &[id.into()],
        )
        .await
    }

    /// One page of a project's messages matching `filter`, newest first, and the total.
    pub async fn deliveries(
        &self,
        project_id: &str,
        filter: &DeliveryFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<Message>, i64), StoreError> {
        let (clause, args) = delivery_where(project_id, filter);
        let page_sql = format!(
            "SELECT * FROM outbox WHERE {clause} ORDER BY created_at DESC, id DESC LIMIT ${} OFFSET ${}",
            args.len() + 1,
            args.len() + 2
        );
        let count_sql = format!("SELECT COUNT(*) FROM outbox WHERE {clause}");
        let (rows, total) = with_pool!(self, conn => {
            let rows = sqlx::query_as(&page_sql)
                .bind_args(&args)
                .bind(limit)
                .bind(offset)
                .fetch_all(&mut *conn)
                .await?;
            let (total,): (i64,) =
                sqlx::query_as(&count_sql).bind_args(&args).fetch_one(&mut *conn).await?;
            (rows, total)
        });
        Ok((rows, total))
    }

    /// Messages per UTC day, channel and status since `from` (epoch ms).
    pub async fn daily_counts(
        &self,
        project_id: &str,
        from: UnixMillis,
    ) -> Result<Vec<DailyCount>, StoreError> {
        self.fetch_all(
            "SELECT created_at / 86400000 AS day, channel, status, COUNT(*) AS count FROM outbox
             WHERE project_id = $1 AND created_at >= $2
             GROUP BY created_at / 86400000, channel, status ORDER BY day, channel, status",
            &[project_id.into(), from.into()],
        )
        .await
    }
}

impl Store {
    /// The same pool, for the `futureauth` SDK that signs operators in to the console (its
    /// `"user"`, `session`, `verification`, `futureauth_rate_limit`, `passkey` and
    /// `passkey_challenge` tables do not clash with the server's).
    pub fn sdk_database(&self) -> futureauth::Database {
        match &self.backend {
            Backend::Postgres(pool) => pool.clone().into(),
            Backend::Sqlite(pool) => pool.clone().into(),
        }
    }
}

impl Store {
    /// A project's message templates (all `None` when never set).
    pub async fn project_templates(
        &self,
        project_id: &str,
    ) -> Result<super::CustomTemplates, StoreError> {
        let row = self
            .fetch_optional(
                "SELECT email_subject, email_text, sms_text FROM project_template
                 WHERE project_id = $1",
                &[project_id.into()],
            )
            .await?;
        Ok(row.unwrap_or_default())
    }

    /// Replaces a project's message templates.
    pub async fn set_project_templates(
        &self,
        project_id: &str,
        t: &super::CustomTemplates,
    ) -> Result<(), StoreError> {
        let args = [
            project_id.into(),
            (&t.email_subject).into(),
            (&t.email_text).into(),
            (&t.sms_text).into(),
        ];
        let done = self
            .execute(
                "INSERT INTO project_template (project_id, email_subject, email_text, sms_text)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (project_id) DO UPDATE SET email_subject = excluded.email_subject,
                 email_text = excluded.email_text, sms_text = excluded.sms_text",
                &args,
            )
            .await;
        self.changed(done)?;
        Ok(())
    }
}

/// What the console changes about a project's sends.
#[derive(Debug, Clone, Default)]
pub struct SendOverrides {
    /// Messages per address per window (`None` = server default).
    pub per_destination: Option<i64>,
    /// Messages per minute (`None` = server default).
    pub per_minute: Option<i64>,
    /// Message wording.
    pub templates: super::CustomTemplates,
    /// Test destinations and their fixed code, if test mode is on.
    pub test_mode: Option<super::TestMode>,
}

impl Store {
    /// A project's rate-limit, template and test-mode overrides in one query (the send
    /// path).
    pub async fn send_overrides(&self, project_id: &str) -> Result<SendOverrides, StoreError> {
        if let Some(hit) = self.cache.overrides(project_id) {
            return Ok(hit);
        }
        let ticket = self.cache.ticket();
        #[derive(sqlx::FromRow)]
        struct Row {
            per_destination: Option<i64>,
            per_minute: Option<i64>,
            #[sqlx(flatten)]
            templates: super::CustomTemplates,
            #[sqlx(flatten)]
            test_mode: super::test_mode::TestModeRow,
        }
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "SELECT l.per_destination, l.per_minute, t.email_subject, t.email_text, t.sms_text,
                     {}
                 FROM project p
                 LEFT JOIN project_limit l ON l.project_id = p.id
                 LEFT JOIN project_template t ON t.project_id = p.id
                 LEFT JOIN project_test_mode tm ON tm.project_id = p.id
                 WHERE p.id = $1",
                super::test_mode::TEST_MODE_COLUMNS
            )
        });
        let row: Option<Row> = self.fetch_optional(&SQL, &[project_id.into()]).await?;
        let Some(r) = row else {
            return Ok(SendOverrides::default());
        };
        let overrides = SendOverrides {
            per_destination: r.per_destination,
            per_minute: r.per_minute,
            templates: r.templates,
            test_mode: r.test_mode.into_test_mode()?,
        };
        self.cache
            .put_overrides(ticket, project_id, overrides.clone());
        Ok(overrides)
    }
}
