//! Projects (creation, settings) and their secret keys.
//!
//! A secret key is `vx_sec_` + 40 random URL-safe characters from the OS CSPRNG. It is shown
//! once; only its SHA-256 hex digest (the lookup key) and its first 12 characters (for
//! display) are stored.

use rand::rngs::OsRng;
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::operator::{audit, Acting, OperatorAction};
use super::random_id;
use super::settings::{ProjectLimits, ProjectName, ProjectSettings};
use crate::clock::UnixMillis;
use crate::error::{OperatorError, ServiceError, StoreError};
use crate::sms::{default_countries, SmsCaps};
use crate::store::{KeyListing, Operator, Project, Store};
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

/// A created project and its secret key (shown once).
#[derive(Debug, Clone)]
pub struct CreatedProject {
    /// The project.
    pub project: Project,
    /// The plain secret key.
    pub secret_key: String,
}

/// Creates a project named `name` with default settings and a first key, owned by `op`.
pub async fn create_project(
    store: &Store,
    op: &Operator,
    name: &str,
) -> Result<CreatedProject, OperatorError> {
    let name = ProjectName::parse(name).map_err(|m| OperatorError::invalid("name", m))?;
    let settings = ProjectSettings {
        name: Some(name),
        ..ProjectSettings::default()
    };
    create_project_with(store, Some(op), settings).await
}

/// Creates a project with `settings` (a name, and the defaults for what is not given)
/// and a first key. An operator `owner` becomes its
/// owner and the creation is audited; without one (the CLI) it has no members yet.
pub async fn create_project_with(
    store: &Store,
    owner: Option<&Operator>,
    settings: ProjectSettings,
) -> Result<CreatedProject, OperatorError> {
    if settings.name.is_none() {
        return Err(OperatorError::invalid("name", "a project needs a name"));
    }
    let base = Project {
        id: random_id("prj_", 20),
        name: String::new(),
        allowed_origins: Vec::new(),
        callback_url: None,
        email_from: None,
        sms_countries: default_countries(),
        sms_caps: SmsCaps::default(),
        created_at: UnixMillis::now(),
    };
    let (project, limits) = settings.apply(&base, ProjectLimits::default());
    let key = generate_secret_key();
    store
        .create_owned_project(
            &project,
            &hash_key(&key),
            &key_prefix(&key),
            owner.map(|op| op.id.as_str()),
        )
        .await?;
    if limits != ProjectLimits::default() {
        store
            .set_project_limits(&project.id, limits.per_destination, limits.per_minute)
            .await?;
    }
    if let Some(op) = owner {
        let detail = format!(
            "created project “{}” with key {}…",
            project.name,
            key_prefix(&key)
        );
        audit(store, &project.id, op, "project.created", detail).await?;
    }
    Ok(CreatedProject {
        project,
        secret_key: key,
    })
}

/// Where a secret key stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// It works.
    Active,
    /// It works until its rotation overlap ends.
    Expiring,
    /// It no longer works.
    Revoked,
}

impl KeyState {
    /// The state at `now` of a key that stops (or stopped) working at `revoked_at`.
    pub fn at(revoked_at: Option<UnixMillis>, now: UnixMillis) -> KeyState {
        match revoked_at {
            None => KeyState::Active,
            Some(t) if t > now => KeyState::Expiring,
            Some(_) => KeyState::Revoked,
        }
    }

    /// `active`, `expiring` or `revoked`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::Expiring => "expiring",
            KeyState::Revoked => "revoked",
        }
    }
}

/// A project's key as listed (never the key itself), with its state now.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ListedKey {
    /// The stored key.
    #[serde(flatten)]
    pub key: KeyListing,
    /// Its state now.
    pub state: KeyState,
}

/// The project's keys, newest first, each with its state.
pub async fn keys(store: &Store, project_id: &str) -> Result<Vec<ListedKey>, StoreError> {
    let now = UnixMillis::now();
    Ok(store
        .key_listing(project_id)
        .await?
        .into_iter()
        .map(|key| ListedKey {
            state: KeyState::at(key.life.revoked_at, now),
            key,
        })
        .collect())
}

/// A project as the administrator lists it, with the display prefixes of its keys that
/// have no end set.
#[derive(Debug, Clone)]
pub struct ListedProject {
    /// The project.
    pub project: Project,
    /// Display prefixes of its [`KeyState::Active`] keys (no end set), newest first.
    pub active_key_prefixes: Vec<String>,
}

/// Every project but the console's own sign-in project (the server's, not an operator's),
/// oldest first (`project list`).
pub async fn list(store: &Store) -> Result<Vec<ListedProject>, StoreError> {
    let mut listed = Vec::new();
    for project in store.list_projects().await? {
        if project.id == crate::ids::CONSOLE_PROJECT_ID {
            continue;
        }
        let active_key_prefixes = keys(store, &project.id)
            .await?
            .into_iter()
            .filter(|k| k.state == KeyState::Active)
            .map(|k| k.key.key_prefix)
            .collect();
        listed.push(ListedProject {
            project,
            active_key_prefixes,
        });
    }
    Ok(listed)
}

/// Which keys `key revoke` revokes.
#[derive(Debug, Clone, Copy)]
pub enum Revoke<'a> {
    /// The keys with this display prefix.
    Prefix(&'a str),
    /// Every key of this project.
    Project(&'a str),
}

/// Revokes now the selected keys that still work (an overlap after a rotation is cut
/// short); returns how many (`key revoke`).
pub async fn revoke_keys(store: &Store, which: Revoke<'_>) -> Result<u64, StoreError> {
    let now = UnixMillis::now();
    match which {
        Revoke::Prefix(prefix) => store.revoke_keys_by_prefix(prefix, now).await,
        Revoke::Project(project) => store.revoke_project_keys(project, now).await,
    }
}

/// A project by id (the server's own callers, such as the console's internal project).
pub async fn get(store: &Store, id: &str) -> Result<Option<Project>, StoreError> {
    store.get_project(id).await
}

/// The project's rate-limit overrides.
pub async fn limits(store: &Store, project_id: &str) -> Result<ProjectLimits, StoreError> {
    let (per_destination, per_minute) = store.project_limits(project_id).await?;
    Ok(ProjectLimits {
        per_destination,
        per_minute,
    })
}

/// Applies `settings` to `project`, auditing what changed. Each changed part is its own
/// [`OperatorAction`], checked for every part before anything is written.
pub async fn update_settings(
    store: &Store,
    acting: Acting<'_>,
    project: &Project,
    settings: ProjectSettings,
) -> Result<Project, OperatorError> {
    let old_limits = limits(store, &project.id).await?;
    let (p, new_limits) = settings.apply(project, old_limits);
    let changes = changes(project, &p, old_limits, new_limits);
    // Every part first, then the writes: a refused part leaves the others unwritten too.
    for (action, _) in &changes {
        acting.require(*action)?;
    }
    if changes.is_empty() {
        return Ok(p);
    }
    if new_limits != old_limits {
        store
            .set_project_limits(&p.id, new_limits.per_destination, new_limits.per_minute)
            .await?;
    }
    if !store.update_project(&p).await? {
        return Err(OperatorError::NotFound);
    }
    if let Acting::Operator(op, _) = acting {
        let detail: Vec<String> = changes.into_iter().map(|(_, d)| d).collect();
        audit(store, &p.id, op, "settings.changed", detail.join("; ")).await?;
    }
    Ok(p)
}

/// `v`, or `default` when unset.
fn or_default<T: ToString>(v: Option<T>, default: &str) -> String {
    v.map_or_else(|| default.to_owned(), |n| n.to_string())
}

/// What changed, each with the action it needs and its audit line.
#[derive(Default)]
struct Changes(Vec<(OperatorAction, String)>);

impl Changes {
    fn note(&mut self, changed: bool, action: OperatorAction, line: impl FnOnce() -> String) {
        if changed {
            self.0.push((action, line()));
        }
    }
}

/// What changed from `old` to `new`.
fn changes(
    old: &Project,
    new: &Project,
    old_limits: ProjectLimits,
    new_limits: ProjectLimits,
) -> Vec<(OperatorAction, String)> {
    let mut c = Changes::default();
    c.note(
        new_limits != old_limits,
        OperatorAction::SetRateLimits,
        || {
            format!(
                "rate limits → {} per address, {} per minute",
                or_default(new_limits.per_destination, "default"),
                or_default(new_limits.per_minute, "default")
            )
        },
    );
    c.note(new.name != old.name, OperatorAction::Rename, || {
        format!("name “{}” → “{}”", old.name, new.name)
    });
    let callback = new.callback_url.as_deref();
    c.note(
        callback != old.callback_url.as_deref(),
        OperatorAction::SetCallbackUrl,
        || format!("default callback URL → {}", callback.unwrap_or("none")),
    );
    let origins = &new.allowed_origins;
    c.note(
        origins != &old.allowed_origins,
        OperatorAction::SetAllowedOrigins,
        || format!("allowed origins → {}", origins.join(", ")),
    );
    let sender = new.email_from.as_deref();
    c.note(
        sender != old.email_from.as_deref(),
        OperatorAction::SetSender,
        || format!("email sender → {}", sender.unwrap_or("server default")),
    );
    sms_changes(&mut c, old, new);
    c.0
}

/// The SMS part of [`changes`].
fn sms_changes(c: &mut Changes, old: &Project, new: &Project) {
    c.note(
        new.sms_countries != old.sms_countries,
        OperatorAction::SetSms,
        || {
            let list: Vec<_> = new.sms_countries.iter().map(Region::as_str).collect();
            let list = if list.is_empty() {
                "none".to_owned()
            } else {
                list.join(", ")
            };
            format!("SMS countries → {list}")
        },
    );
    let caps = new.sms_caps;
    c.note(caps != old.sms_caps, OperatorAction::SetSms, || {
        format!(
            "SMS caps → {} per country per hour, {} per hour, {} per day",
            or_default(caps.per_country_per_hour, "default"),
            or_default(caps.per_hour, "default"),
            or_default(caps.per_day, "default")
        )
    });
}

/// Revokes the project's active keys and issues a new one (the CLI's rotation, without
/// overlap); returns the new plain key.
pub async fn rotate_key(store: &Store, project_id: &str) -> Result<String, OperatorError> {
    let key = generate_secret_key();
    let now = UnixMillis::now();
    if store
        .rotate_key(project_id, &hash_key(&key), &key_prefix(&key), now, now)
        .await?
    {
        Ok(key)
    } else {
        Err(OperatorError::NotFound)
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
            if let Err(e) = store.touch_key(&stored, UnixMillis::now()).await {
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
