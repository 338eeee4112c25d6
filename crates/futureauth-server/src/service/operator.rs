//! Who may do what to a project: every action of the console and of the management API is
//! an [`OperatorAction`], and [`Role::may`] is the one table that answers it. The services
//! check it themselves ([`require`], [`authorize`]), so no edge (console form, JSON route)
//! can forget it.
//!
//! The rule: everything that decides where a code or link goes, who it appears to come
//! from, what it says or what it costs is the owners' (callback URL, allowed origins,
//! sender, SMS countries and caps, rate limits, templates, webhook, test mode, keys,
//! members, the name, deletion). Members read. The CLI is not an operator: it is the server's
//! administrator (it holds the database) and acts on any project, through the same
//! validation.

use super::ids::is_identifier;
use super::random_id;
use crate::clock::UnixMillis;
use crate::error::OperatorError;
use crate::store::{AuditEntry, Membership, Operator, Role, Store};

/// One thing an operator can do to a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperatorAction {
    /// See the project: settings, keys (prefixes), deliveries, members, audit log,
    /// templates, webhook URL, test mode.
    Read,
    /// Rename it (the name is in every message).
    Rename,
    /// Change the default magic-link callback URL (where links point).
    SetCallbackUrl,
    /// Change the allowed origins (where links may point).
    SetAllowedOrigins,
    /// Change the email sender (who mail appears to come from).
    SetSender,
    /// Change the SMS countries and caps (what SMS may cost).
    SetSms,
    /// Change the project's rate limits.
    SetRateLimits,
    /// Change the message wording.
    SetTemplates,
    /// Register, move, rotate or remove the project's webhook.
    ManageWebhook,
    /// Turn test mode on, change it or turn it off.
    ManageTestMode,
    /// Add a secret key.
    CreateKey,
    /// Rotate the secret keys.
    RotateKey,
    /// Revoke a secret key.
    RevokeKey,
    /// Add a member or change a member's role.
    InviteMember,
    /// Remove a member.
    RemoveMember,
    /// Delete the project.
    DeleteProject,
}

impl OperatorAction {
    /// Every action, for tables and tests.
    pub const ALL: [OperatorAction; 16] = [
        OperatorAction::Read,
        OperatorAction::Rename,
        OperatorAction::SetCallbackUrl,
        OperatorAction::SetAllowedOrigins,
        OperatorAction::SetSender,
        OperatorAction::SetSms,
        OperatorAction::SetRateLimits,
        OperatorAction::SetTemplates,
        OperatorAction::ManageWebhook,
        OperatorAction::ManageTestMode,
        OperatorAction::CreateKey,
        OperatorAction::RotateKey,
        OperatorAction::RevokeKey,
        OperatorAction::InviteMember,
        OperatorAction::RemoveMember,
        OperatorAction::DeleteProject,
    ];
}

impl Role {
    /// Whether this role may do `action`: owners everything, members only read.
    pub fn may(self, action: OperatorAction) -> bool {
        match (self, action) {
            (Role::Owner, _) => true,
            (Role::Member, OperatorAction::Read) => true,
            (Role::Member, _) => false,
        }
    }
}

/// Who changes a project: an operator through their membership (each change is checked
/// against their role and written to the project's audit log), or the server's
/// administrator on the command line (any project; not an operator, so not audited).
#[derive(Debug, Clone, Copy)]
pub enum Acting<'a> {
    /// A signed-in operator (console) or an operator token (management API).
    Operator(&'a Operator, &'a Membership),
    /// The CLI, which holds the database.
    Admin,
}

impl Acting<'_> {
    /// Refuses ([`OperatorError::OwnersOnly`]) what the operator's role may not do; the
    /// administrator may do everything.
    pub fn require(&self, action: OperatorAction) -> Result<(), OperatorError> {
        match self {
            Acting::Operator(_, m) => require(m, action),
            Acting::Admin => Ok(()),
        }
    }
}

/// Refuses ([`OperatorError::OwnersOnly`]) an action the membership's role may not do.
pub fn require(m: &Membership, action: OperatorAction) -> Result<(), OperatorError> {
    if m.role.may(action) {
        Ok(())
    } else {
        Err(OperatorError::OwnersOnly)
    }
}

/// `op`'s membership of the project if its role may do `action`. A stranger (not a member,
/// or no such project) gets [`OperatorError::NotFound`], so the project's existence is not
/// revealed; a member without the right [`OperatorError::OwnersOnly`].
pub async fn authorize(
    store: &Store,
    op: &Operator,
    project_id: &str,
    action: OperatorAction,
) -> Result<Membership, OperatorError> {
    if !is_identifier(project_id) {
        return Err(OperatorError::NotFound);
    }
    let m = store
        .membership(&op.id, project_id)
        .await?
        .ok_or(OperatorError::NotFound)?;
    require(&m, action)?;
    Ok(m)
}

/// Records an operator's action in the project's audit log.
pub(crate) async fn audit(
    store: &Store,
    project_id: &str,
    op: &Operator,
    action: &str,
    detail: String,
) -> Result<(), OperatorError> {
    store
        .audit(&AuditEntry {
            id: random_id("aud_", 20),
            project_id: project_id.to_owned(),
            actor: op.email.clone(),
            action: action.to_owned(),
            detail,
            created_at: UnixMillis::now(),
        })
        .await?;
    Ok(())
}

/// Audits the removal `action` when something was `removed` (a removal of nothing changes
/// nothing and is not audited); answers `removed`.
pub(crate) async fn audit_removal(
    store: &Store,
    m: &Membership,
    op: &Operator,
    action: &str,
    removed: bool,
) -> Result<bool, OperatorError> {
    if removed {
        audit(store, &m.project.id, op, action, String::new()).await?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_only_read_and_owners_do_everything() {
        for action in OperatorAction::ALL {
            assert!(Role::Owner.may(action), "{action:?}");
            assert_eq!(
                Role::Member.may(action),
                action == OperatorAction::Read,
                "{action:?}"
            );
        }
    }
}
