//! What operators do in the console and through the management API, free of HTTP: projects
//! with membership, keys (create, rotate with overlap, revoke), settings, members, the audit
//! log and operator tokens. Every mutation of a project is written to its audit log.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::OnceCell;

use super::ids::is_identifier;
pub(crate) use super::operator::audit;
use super::operator::{authorize, require, OperatorAction};
use super::projects::{generate_secret_key, hash_key, key_hashes_match, key_prefix};
use super::settings::FieldParser;
use super::templates::{self, CustomTemplates};
use super::{random_id, validate};
use crate::clock::UnixMillis;
use crate::error::StoreError;
use crate::store::{AuditEntry, Member, Membership, Operator, Role, Store, TokenListing};

/// Prefix of operator tokens (management API).
pub const OPERATOR_TOKEN_PREFIX: &str = "vx_op_";
/// Longest accepted key-rotation overlap: 30 days.
pub const MAX_OVERLAP_SECS: i64 = 30 * 86_400;

pub use super::projects::{
    create_project, create_project_with, keys, limits, update_settings, KeyState, ListedKey,
};
pub use crate::error::{FieldErrors, OperatorError};

/// Lower-cased, trimmed, checked email address.
pub fn normalize_email(raw: &str) -> Result<String, String> {
    let email = raw.trim().to_lowercase();
    validate::email(&email)
        .map_err(|_| "enter an email address such as you@example.com".to_owned())?;
    Ok(email)
}

/// Adds an operator (`futureauth-server operator add EMAIL`); idempotent.
pub async fn add_operator(store: &Store, email: &str) -> Result<Operator, OperatorError> {
    let email = normalize_email(email).map_err(|m| OperatorError::invalid("email", m))?;
    Ok(store
        .upsert_operator(&random_id("op_", 20), &email, UnixMillis::now())
        .await?)
}

/// Removes the operator with this address (`operator remove`); whether there was one.
pub async fn remove_operator(store: &Store, email: &str) -> Result<bool, OperatorError> {
    Ok(store.remove_operator(email).await?)
}

/// Every operator, oldest first (`operator list`).
pub async fn operators(store: &Store) -> Result<Vec<Operator>, OperatorError> {
    Ok(store.list_operators().await?)
}

/// The project as `op` sees it (any member may read), or [`OperatorError::NotFound`].
pub async fn membership(
    store: &Store,
    op: &Operator,
    project_id: &str,
) -> Result<Membership, OperatorError> {
    authorize(store, op, project_id, OperatorAction::Read).await
}

/// The operator a console user's verified email belongs to, if it is one (only operators
/// keep a console session).
pub async fn operator(store: &Store, email: &str) -> Result<Option<Operator>, OperatorError> {
    Ok(store.operator_by_email(email).await?)
}

/// The projects `op` is a member of, each with `op`'s role.
pub async fn projects(store: &Store, op: &Operator) -> Result<Vec<Membership>, OperatorError> {
    Ok(store.memberships(&op.id).await?)
}

/// The members of `m`'s project.
pub async fn members(store: &Store, m: &Membership) -> Result<Vec<Member>, OperatorError> {
    Ok(store.members(&m.project.id).await?)
}

/// The latest `limit` entries of `m`'s project's audit log, newest first.
pub async fn audit_log(
    store: &Store,
    m: &Membership,
    limit: i64,
) -> Result<Vec<AuditEntry>, OperatorError> {
    Ok(store.audit_log(&m.project.id, limit).await?)
}

/// The message templates of `m`'s project (`None` = the built-in text).
pub async fn templates(store: &Store, m: &Membership) -> Result<CustomTemplates, OperatorError> {
    Ok(store.project_templates(&m.project.id).await?)
}

/// `op`'s operator tokens, live and revoked, newest first (never the tokens themselves).
pub async fn operator_tokens(
    store: &Store,
    op: &Operator,
) -> Result<Vec<TokenListing>, OperatorError> {
    Ok(store.operator_tokens(&op.id).await?)
}

/// The message-templates form, as submitted (empty = the built-in text).
#[derive(Debug, Clone, Default)]
pub struct TemplatesInput {
    /// Email subject.
    pub email_subject: String,
    /// Email text.
    pub email_text: String,
    /// SMS text.
    pub sms_text: String,
}

impl TemplatesInput {
    /// The stored templates, for pre-filling the form.
    pub fn of(t: &CustomTemplates) -> TemplatesInput {
        TemplatesInput {
            email_subject: t.email_subject.clone().unwrap_or_default(),
            email_text: t.email_text.clone().unwrap_or_default(),
            sms_text: t.sms_text.clone().unwrap_or_default(),
        }
    }
}

/// Checks and saves a project's message templates (owners only), auditing the change.
pub async fn update_templates(
    store: &Store,
    op: &Operator,
    m: &Membership,
    input: &TemplatesInput,
) -> Result<CustomTemplates, OperatorError> {
    require(m, OperatorAction::SetTemplates)?;
    let parsed = input.parse().map_err(OperatorError::Invalid)?;
    let old = store.project_templates(&m.project.id).await?;
    if old != parsed {
        store.set_project_templates(&m.project.id, &parsed).await?;
        let detail = templates_changed(&old, &parsed);
        audit(store, &m.project.id, op, "templates.changed", detail).await?;
    }
    Ok(parsed)
}

impl TemplatesInput {
    /// The texts, each checked (empty = the built-in text); every bad one gets its message.
    fn parse(&self) -> Result<CustomTemplates, FieldErrors> {
        let mut f = FieldParser::default();
        let email_subject = f.field("email_subject", template(&self.email_subject, true));
        let email_text = f.field("email_text", template(&self.email_text, false));
        let sms_text = f.field("sms_text", template(&self.sms_text, false));
        let parsed = CustomTemplates {
            email_subject: email_subject.flatten(),
            email_text: email_text.flatten(),
            sms_text: sms_text.flatten(),
        };
        f.finish(Some(parsed))
    }
}

/// One message text: `None` when empty (the built-in text).
fn template(raw: &str, one_line: bool) -> Result<Option<String>, String> {
    let text = raw.trim().replace("\r\n", "\n");
    if text.is_empty() {
        return Ok(None);
    }
    if validate::mentions_console(&text) {
        return Err("may not name the server's own console".into());
    }
    templates::check(&text, one_line).map(|()| Some(text))
}

/// The audit line of a templates change.
fn templates_changed(old: &CustomTemplates, new: &CustomTemplates) -> String {
    let mut changed = Vec::new();
    for (name, a, b) in [
        ("email subject", &old.email_subject, &new.email_subject),
        ("email text", &old.email_text, &new.email_text),
        ("SMS text", &old.sms_text, &new.sms_text),
    ] {
        if a != b {
            changed.push(if b.is_some() {
                format!("{name} customised")
            } else {
                format!("{name} back to the built-in text")
            });
        }
    }
    changed.join("; ")
}

/// Deletes a project (owners only) once its name is typed exactly.
pub async fn delete_project(
    store: &Store,
    op: &Operator,
    m: &Membership,
    confirm: &str,
) -> Result<(), OperatorError> {
    require(m, OperatorAction::DeleteProject)?;
    if confirm.trim() != m.project.name {
        return Err(OperatorError::invalid(
            "confirm",
            format!("type the project name “{}” to confirm", m.project.name),
        ));
    }
    store.delete_project(&m.project.id).await?;
    tracing::info!(project = %m.project.id, operator = %op.email, "project deleted");
    Ok(())
}

/// Adds a key (owners only); returns the plain key, shown once.
pub async fn create_key(
    store: &Store,
    op: &Operator,
    m: &Membership,
) -> Result<String, OperatorError> {
    require(m, OperatorAction::CreateKey)?;
    let key = generate_secret_key();
    store
        .add_key(
            &m.project.id,
            &hash_key(&key),
            &key_prefix(&key),
            UnixMillis::now(),
        )
        .await?;
    audit(
        store,
        &m.project.id,
        op,
        "key.created",
        format!("created key {}…", key_prefix(&key)),
    )
    .await?;
    Ok(key)
}

/// Issues a new key; the project's other keys keep working for `overlap_secs` more
/// (0 = stop now). Owners only.
pub async fn rotate_key(
    store: &Store,
    op: &Operator,
    m: &Membership,
    overlap_secs: i64,
) -> Result<String, OperatorError> {
    require(m, OperatorAction::RotateKey)?;
    if !(0..=MAX_OVERLAP_SECS).contains(&overlap_secs) {
        return Err(OperatorError::invalid(
            "overlap",
            "the overlap must be between 0 seconds and 30 days",
        ));
    }
    let key = generate_secret_key();
    let now = UnixMillis::now();
    let old_until = now + std::time::Duration::from_secs(overlap_secs.unsigned_abs());
    let rotated = store
        .rotate_key(
            &m.project.id,
            &hash_key(&key),
            &key_prefix(&key),
            now,
            old_until,
        )
        .await?;
    if !rotated {
        // Deleted since the membership was read.
        return Err(OperatorError::NotFound);
    }
    audit(
        store,
        &m.project.id,
        op,
        "key.rotated",
        format!(
            "new key {}…; older keys stop working {}",
            key_prefix(&key),
            if overlap_secs == 0 {
                "now".to_owned()
            } else {
                format!("in {}", human_duration(overlap_secs))
            }
        ),
    )
    .await?;
    Ok(key)
}

/// `90` → `1 min 30 s`, `86400` → `1 day`.
pub fn human_duration(secs: i64) -> String {
    match secs {
        s if s % 86_400 == 0 => plural(s / 86_400, "day"),
        s if s % 3_600 == 0 => plural(s / 3_600, "hour"),
        s if s % 60 == 0 => plural(s / 60, "minute"),
        s => plural(s, "second"),
    }
}

fn plural(n: i64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// Revokes a key by display prefix now (owners only).
pub async fn revoke_key(
    store: &Store,
    op: &Operator,
    m: &Membership,
    prefix: &str,
) -> Result<(), OperatorError> {
    require(m, OperatorAction::RevokeKey)?;
    if !is_identifier(prefix) {
        return Err(OperatorError::NotFound);
    }
    let n = store
        .revoke_project_key(&m.project.id, prefix, UnixMillis::now())
        .await?;
    if n == 0 {
        return Err(OperatorError::NotFound);
    }
    audit(
        store,
        &m.project.id,
        op,
        "key.revoked",
        format!("revoked key {prefix}…"),
    )
    .await
}

/// Invites `email` into the project with `role` (owners only); the invitee becomes an
/// operator and sees the project when they sign in.
pub async fn invite(
    store: &Store,
    op: &Operator,
    m: &Membership,
    email: &str,
    role: &str,
) -> Result<Operator, OperatorError> {
    require(m, OperatorAction::InviteMember)?;
    let email = normalize_email(email).map_err(|e| OperatorError::invalid("email", e))?;
    let role = Role::parse(role)
        .ok_or_else(|| OperatorError::invalid("role", "choose owner or member"))?;
    let invitee = store
        .upsert_operator(&random_id("op_", 20), &email, UnixMillis::now())
        .await?;
    store
        .set_member(&m.project.id, &invitee.id, role, UnixMillis::now())
        .await?;
    audit(
        store,
        &m.project.id,
        op,
        "member.invited",
        format!("invited {email} as {}", role.as_str()),
    )
    .await?;
    Ok(invitee)
}

/// Removes a member (owners only). The last owner cannot be removed.
pub async fn remove_member(
    store: &Store,
    op: &Operator,
    m: &Membership,
    email: &str,
) -> Result<(), OperatorError> {
    require(m, OperatorAction::RemoveMember)?;
    let members = store.members(&m.project.id).await?;
    let target = members
        .iter()
        .find(|x| x.email == email.trim().to_lowercase())
        .ok_or(OperatorError::NotFound)?;
    let owners = members.iter().filter(|x| x.role == Role::Owner).count();
    if target.role == Role::Owner && owners == 1 {
        return Err(OperatorError::invalid(
            "email",
            "a project keeps at least one owner",
        ));
    }
    store
        .remove_member(&m.project.id, &target.operator_id)
        .await?;
    audit(
        store,
        &m.project.id,
        op,
        "member.removed",
        format!("removed {}", target.email),
    )
    .await
}

/// Creates an operator token for the management API; returns the plain token, shown once.
pub async fn create_operator_token(
    store: &Store,
    op: &Operator,
    name: &str,
) -> Result<String, OperatorError> {
    let name = validate::project_name(name).map_err(|m| OperatorError::invalid("name", m))?;
    let token = format!(
        "{OPERATOR_TOKEN_PREFIX}{}",
        &generate_secret_key()[super::projects::SECRET_KEY_PREFIX.len()..]
    );
    store
        .add_operator_token(
            &op.id,
            &hash_key(&token),
            &key_prefix(&token),
            &name,
            UnixMillis::now(),
        )
        .await?;
    Ok(token)
}

/// Revokes `op`'s live operator tokens with this prefix; [`OperatorError::NotFound`] if none.
pub async fn revoke_operator_token(
    store: &Store,
    op: &Operator,
    prefix: &str,
) -> Result<(), OperatorError> {
    let prefix = prefix.trim();
    if !is_identifier(prefix) {
        return Err(OperatorError::NotFound);
    }
    match store
        .revoke_operator_token(&op.id, prefix, UnixMillis::now())
        .await?
    {
        0 => Err(OperatorError::NotFound),
        _ => Ok(()),
    }
}

/// The operator of a presented `vx_op_…` token, or `None` (unknown, revoked or malformed
/// all look the same).
pub async fn authenticate_operator_token(
    store: &Store,
    presented: &str,
) -> Result<Option<Operator>, StoreError> {
    if !presented.starts_with(OPERATOR_TOKEN_PREFIX) || presented.len() > 200 {
        return Ok(None);
    }
    let computed = hash_key(presented);
    Ok(
        match store
            .operator_by_token_hash(&computed, UnixMillis::now())
            .await?
        {
            Some((stored, op)) if key_hashes_match(&stored, &computed) => Some(op),
            _ => None,
        },
    )
}

/// Keyed hash of a normalised destination, so the delivery log can be searched by exact
/// address without keeping the address in clear. The key is a server secret in the database.
#[derive(Debug, Clone, Default)]
pub struct DestinationHasher {
    key: std::sync::Arc<OnceCell<Vec<u8>>>,
}

impl DestinationHasher {
    /// Reads the key from the database (creating it the first time), once per process; every
    /// later call returns at once.
    pub async fn load(&self, store: &Store) -> Result<&[u8], StoreError> {
        let key = self
            .key
            .get_or_try_init(|| async {
                let hex_key = store.server_secret("destination_hash").await?;
                hex::decode(hex_key).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .await?;
        Ok(key)
    }

    /// The hash of `destination` (emails compared case-insensitively, spaces ignored).
    pub async fn hash(&self, store: &Store, destination: &str) -> Result<String, StoreError> {
        let key = self.load(store).await?;
        let normalised: String = destination
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_lowercase();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        mac.update(normalised.as_bytes());
        Ok(hex::encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(86_400), "1 day");
        assert_eq!(human_duration(7_200), "2 hours");
        assert_eq!(human_duration(90), "90 seconds");
    }
}
