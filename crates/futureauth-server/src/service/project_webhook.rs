//! A project's own webhook: the URL checked once here, the signing secret made here. Every
//! change is an owner's, checked and written to the audit log here, for the console and the
//! management API alike.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;

use secrecy::SecretString;

use super::console::audit;
use super::operator::{audit_removal, authorize, OperatorAction};
use crate::clock::UnixMillis;
use crate::error::{ErrorCode, ServiceError};
use crate::provider::webhook::{is_internal, WebhookTarget};
use crate::store::{Membership, Operator, ProjectWebhook, Store};

/// Longest webhook URL accepted.
const MAX_URL: usize = 2048;

/// A new signing secret: `whsec_` and 32 random bytes in base64 (the Svix form).
pub fn new_secret() -> String {
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    format!("whsec_{}", STANDARD.encode(key))
}

/// The URL, if the server may post to it: `https`, no credentials in it; plain `http` only
/// to loopback in development; never an internal address literal in production (names are
/// checked again when they are resolved, at each delivery).
pub fn parse_url(raw: &str, production: bool) -> Result<url::Url, ServiceError> {
    let bad = |why: &str| ServiceError::validation(ErrorCode::InvalidWebhookUrl, why.to_string());
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > MAX_URL || futureauth_proto::has_control_chars(raw) {
        return Err(bad(
            "the webhook URL is an https:// address of at most 2048 characters",
        ));
    }
    let url = url::Url::parse(raw).map_err(|_| bad("the webhook URL is not a URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("the webhook URL may not carry credentials"));
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(bad("the webhook URL has no host")),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback && !production => {}
        _ => {
            return Err(bad(
                "the webhook URL must be https:// (plain http only to localhost, in development)",
            ))
        }
    }
    let literal = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
        _ => None,
    };
    if production && (loopback || literal.is_some_and(is_internal)) {
        return Err(bad("the webhook URL points into the server's own network"));
    }
    Ok(url)
}

/// The webhook of `m`'s project, if it has one.
pub async fn get(store: &Store, m: &Membership) -> Result<Option<ProjectWebhook>, ServiceError> {
    Ok(store.project_webhook(&m.project.id).await?)
}

/// Registers or moves the project's webhook as `op` (owners only; audited). Returns the URL
/// as stored and, for a first registration, the secret (the only time it is shown).
pub async fn set(
    store: &Store,
    op: &Operator,
    project_id: &str,
    raw_url: &str,
    production: bool,
) -> Result<(url::Url, Option<String>), ServiceError> {
    let project_id = &authorize(store, op, project_id, OperatorAction::ManageWebhook)
        .await?
        .project
        .id;
    let url = parse_url(raw_url, production)?;
    let existing = store.project_webhook(project_id).await?;
    let secret = new_secret();
    store
        .set_project_webhook(project_id, url.as_str(), &secret, false, UnixMillis::now())
        .await?;
    audit(store, project_id, op, "webhook.set", url.to_string()).await?;
    Ok((url, existing.is_none().then_some(secret)))
}

/// A new signing secret for the project's webhook, as `op` (owners only; audited); the old
/// one stops at once (events still queued are signed with the new one). Returns the webhook
/// with its new secret; [`ServiceError::NotFound`] when the project has none.
pub async fn rotate(
    store: &Store,
    op: &Operator,
    project_id: &str,
) -> Result<WebhookTarget, ServiceError> {
    let project_id = &authorize(store, op, project_id, OperatorAction::ManageWebhook)
        .await?
        .project
        .id;
    let existing = store
        .project_webhook(project_id)
        .await?
        .ok_or(ServiceError::NotFound)?;
    let secret = new_secret();
    store
        .set_project_webhook(project_id, &existing.url, &secret, true, UnixMillis::now())
        .await?;
    audit(store, project_id, op, "webhook.rotated", String::new()).await?;
    Ok(WebhookTarget {
        url: existing.url,
        secret: SecretString::from(secret),
    })
}

/// Removes the project's webhook, as `op` (owners only; audited). `false` when it had none:
/// nothing changed, nothing is audited.
pub async fn remove(store: &Store, op: &Operator, project_id: &str) -> Result<bool, ServiceError> {
    let m = authorize(store, op, project_id, OperatorAction::ManageWebhook).await?;
    let removed = store.clear_project_webhook(&m.project.id).await?;
    Ok(audit_removal(store, &m, op, "webhook.removed", removed).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(parse_url("https://app.example.com/hooks/futureauth", true).is_ok());
        assert!(parse_url("http://127.0.0.1:9000/hook", false).is_ok());
        for (raw, production) in [
            ("http://app.example.com/hook", false),
            ("http://127.0.0.1:9000/hook", true),
            ("https://127.0.0.1/hook", true),
            ("https://169.254.169.254/latest/meta-data", true),
            ("https://[::1]/hook", true),
            ("https://10.0.0.5/hook", true),
            ("https://user:pw@app.example.com/hook", false),
            ("ftp://app.example.com/hook", false),
            ("https://app.example.com/\0", false),
            ("not a url", false),
        ] {
            assert!(
                parse_url(raw, production).is_err(),
                "{raw} production={production}"
            );
        }
        assert!(new_secret().starts_with("whsec_") && new_secret() != new_secret());
    }
}
