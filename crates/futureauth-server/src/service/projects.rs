//! Projects and their secret keys.
//!
//! A secret key is `vx_sec_` + 40 random URL-safe characters from the OS CSPRNG. It is shown
//! once; only its SHA-256 hex digest (the lookup key) and its first 12 characters (for
//! display) are stored.

use rand::rngs::OsRng;
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{now_ms, random_id, validate};
use crate::error::{ServiceError, StoreError};
use crate::sms::{default_countries, SmsCaps};
use crate::store::{NewProject, Project, Store};
use futureauth_proto::Region;

/// Prefix of every secret key.
pub const SECRET_KEY_PREFIX: &str = "vx_sec_";
/// Length of the random part of a secret key.
pub const SECRET_KEY_RANDOM_LEN: usize = 40;
/// Length of the stored display prefix.
pub const KEY_DISPLAY_PREFIX_LEN: usize = 12;

/// A fresh secret key.
pub fn generate_secret_key() -> String {
    const URL_SAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = OsRng;
    let random: String = (0..SECRET_KEY_RANDOM_LEN)
        .map(|_| URL_SAFE[rng.gen_range(0..URL_SAFE.len())] as char)
        .collect();
    format!("{SECRET_KEY_PREFIX}{random}")
}

/// SHA-256 hex digest of a key: what is stored and looked up.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Display prefix of a key (first 12 characters).
pub fn key_prefix(key: &str) -> String {
    key.chars().take(KEY_DISPLAY_PREFIX_LEN).collect()
}

/// What an admin gives to create a project.
#[derive(Debug, Clone, Default)]
pub struct ProjectInput {
    /// Display name shown in every message.
    pub name: String,
    /// Default magic-link callback URL; its origin is allowed automatically.
    pub callback_url: Option<String>,
    /// Further allowed callback origins (any URL; only its origin is kept).
    pub allowed_origins: Vec<String>,
    /// Countries it may send SMS to (ISO codes such as `US`); empty means
    /// [`crate::sms::DEFAULT_SMS_COUNTRIES`].
    pub sms_countries: Vec<String>,
    /// Its own SMS caps (unset: the server's defaults).
    pub sms_caps: SmsCaps,
    /// Email sender for this project.
    pub email_from: Option<String>,
}

/// Why a project input was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Bad input; the message says what to change.
    #[error("{0}")]
    Invalid(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such project.
    #[error("no project with id `{0}`")]
    UnknownProject(String),
}

/// A created project and its secret key (shown once).
#[derive(Debug, Clone)]
pub struct CreatedProject {
    /// The project.
    pub project: Project,
    /// The plain secret key.
    pub secret_key: String,
}

/// Validates the input and creates the project with its first key.
pub async fn create_project(
    store: &Store,
    input: ProjectInput,
) -> Result<CreatedProject, AdminError> {
    let name = validate::project_name(&input.name)
        .map_err(|e| AdminError::Invalid(format!("--name: {e}")))?;
    let mut origins: Vec<String> = Vec::new();
    let callback_url = match input
        .callback_url
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(cb) => {
            let (url, origin) = validate::callback_url(cb)
                .map_err(|e| AdminError::Invalid(format!("--callback-url: {e}")))?;
            origins.push(origin);
            Some(url.to_string())
        }
        None => None,
    };
    for o in &input.allowed_origins {
        let origin = validate::origin(o.trim())
            .map_err(|e| AdminError::Invalid(format!("--allowed-origin: {e}")))?;
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    let sms_countries = if input.sms_countries.is_empty() {
        default_countries()
    } else {
        parse_countries(&input.sms_countries)?
    };
    check_caps(input.sms_caps)?;
    let email_from = input
        .email_from
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    if let Some(from) = &email_from {
        if from.chars().any(char::is_control)
            || !from.contains('@')
            || from.len() > 200
            || validate::mentions_console(from.split('<').next().unwrap_or(""))
        {
            return Err(AdminError::Invalid(
                "--email-from must be an address like `Acme <login@acme.com>` or `login@acme.com`"
                    .into(),
            ));
        }
    }
    let key = generate_secret_key();
    let new = NewProject {
        name,
        allowed_origins: origins,
        callback_url,
        email_from,
        sms_countries,
        sms_caps: input.sms_caps,
    };
    let project = store
        .create_project(
            &random_id("prj_", 20),
            &new,
            &hash_key(&key),
            &key_prefix(&key),
            now_ms(),
        )
        .await?;
    Ok(CreatedProject {
        project,
        secret_key: key,
    })
}

/// Parses `--sms-countries` values (`US`, `gb`, …), without duplicates.
fn parse_countries(raw: &[String]) -> Result<Vec<Region>, AdminError> {
    let mut out = Vec::new();
    for c in raw.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
        let r =
            Region::parse(c).map_err(|e| AdminError::Invalid(format!("--sms-countries: {e}")))?;
        if !out.contains(&r) {
            out.push(r);
        }
    }
    if out.is_empty() {
        return Err(AdminError::Invalid(
            "--sms-countries needs at least one country, e.g. US,CA".into(),
        ));
    }
    Ok(out)
}

fn check_caps(caps: SmsCaps) -> Result<(), AdminError> {
    for (flag, v) in [
        ("--sms-per-country-per-hour", caps.per_country_per_hour),
        ("--sms-per-hour", caps.per_hour),
        ("--sms-per-day", caps.per_day),
    ] {
        if v == Some(0) {
            return Err(AdminError::Invalid(format!("{flag} must be at least 1")));
        }
    }
    Ok(())
}

/// Changes to a project's SMS policy; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct SmsUpdate {
    /// New country list.
    pub countries: Option<Vec<String>>,
    /// New caps, each one only when set.
    pub caps: SmsCaps,
}

/// Applies `update` to the project's SMS countries and caps; returns the updated project.
pub async fn update_sms(
    store: &Store,
    project_id: &str,
    update: SmsUpdate,
) -> Result<Project, AdminError> {
    let unknown = || AdminError::UnknownProject(project_id.to_owned());
    let mut project = store.get_project(project_id).await?.ok_or_else(unknown)?;
    if let Some(countries) = &update.countries {
        project.sms_countries = parse_countries(countries)?;
    }
    check_caps(update.caps)?;
    let caps = &mut project.sms_caps;
    caps.per_country_per_hour = update
        .caps
        .per_country_per_hour
        .or(caps.per_country_per_hour);
    caps.per_hour = update.caps.per_hour.or(caps.per_hour);
    caps.per_day = update.caps.per_day.or(caps.per_day);
    if !store
        .update_project_sms(project_id, &project.sms_countries, project.sms_caps)
        .await?
    {
        return Err(unknown());
    }
    Ok(project)
}

/// Revokes the project's active keys and issues a new one; returns the new plain key.
pub async fn rotate_key(store: &Store, project_id: &str) -> Result<String, AdminError> {
    let key = generate_secret_key();
    if store
        .rotate_key(project_id, &hash_key(&key), &key_prefix(&key), now_ms())
        .await?
    {
        Ok(key)
    } else {
        Err(AdminError::UnknownProject(project_id.to_owned()))
    }
}

/// Whether two key hashes are equal, compared in constant time (for equal lengths; the
/// length of a SHA-256 hex digest is public).
pub fn key_hashes_match(stored: &str, computed: &str) -> bool {
    stored.as_bytes().ct_eq(computed.as_bytes()).into()
}

/// Stands in for the stored hash when no active key matched, so an unknown key and a revoked
/// key go through the same comparison as a valid one. No SHA-256 digest is all `x`.
const NO_KEY_HASH: &str = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

/// The project of a presented secret key, or [`ServiceError::InvalidApiKey`].
///
/// The key is looked up by its SHA-256 hash among the active keys (an unknown key and a
/// revoked key are both simply not found), then the stored hash is compared with the computed
/// one in constant time. Every refusal is the same error from the same final branch.
pub async fn authenticate(store: &Store, presented: &str) -> Result<Project, ServiceError> {
    if !presented.starts_with(SECRET_KEY_PREFIX) || presented.len() > 200 {
        return Err(ServiceError::InvalidApiKey);
    }
    let computed = hash_key(presented);
    let found = store
        .active_key_by_hash(&computed, crate::clock::UnixMillis::now())
        .await?;
    let (stored, project) = match found {
        Some((stored, project)) => (stored, Some(project)),
        None => (NO_KEY_HASH.to_owned(), None),
    };
    match (key_hashes_match(&stored, &computed), project) {
        (true, Some(project)) => {
            // "Last used" in the console; at most one write per key and minute.
            if let Err(e) = store.touch_key(&stored, now_ms()).await {
                tracing::warn!(error = %e, "cannot record key use");
            }
            Ok(project)
        }
        _ => Err(ServiceError::InvalidApiKey),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_documented_shape() {
        let k = generate_secret_key();
        assert!(k.starts_with("vx_sec_"));
        assert_eq!(k.len(), 47);
        assert!(k[7..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(k, generate_secret_key());
        assert_eq!(key_prefix(&k).len(), 12);
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn key_hashes_are_compared_exactly() {
        let h = hash_key("vx_sec_example");
        assert!(key_hashes_match(&h, &h.clone()));
        // Differs only in the last character / only in the first character.
        let mut last = h.clone();
        last.replace_range(63.., if h.ends_with('0') { "1" } else { "0" });
        assert!(!key_hashes_match(&h, &last));
        let mut first = h.clone();
        first.replace_range(..1, if h.starts_with('0') { "1" } else { "0" });
        assert!(!key_hashes_match(&h, &first));
        // A prefix, a different length, empty, and the unknown-key placeholder never match.
        assert!(!key_hashes_match(&h, &h[..63]));
        assert!(!key_hashes_match(&h[..32], &h));
        assert!(!key_hashes_match("", &h));
        assert!(!key_hashes_match(&h, ""));
        assert!(!key_hashes_match(NO_KEY_HASH, &h));
        assert_eq!(NO_KEY_HASH.len(), h.len());
    }
}
