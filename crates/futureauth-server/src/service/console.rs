//! What operators do in the console and through the management API, free of HTTP: projects
//! with membership, keys (create, rotate with overlap, revoke), settings, members, the audit
//! log and operator tokens. Every mutation of a project is written to its audit log.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::OnceCell;

use super::ids::is_identifier;
use super::operator::{authorize, require, OperatorAction};
use super::projects::{generate_secret_key, hash_key, key_hashes_match, key_prefix};
use super::templates::{self, CustomTemplates};
use super::{now_ms, random_id, validate};
use crate::error::{ErrorCode, ServiceError, StoreError};
use crate::store::{AuditEntry, Membership, Operator, Project, Role, Store};
use futureauth_proto::Region;

/// Prefix of operator tokens (management API).
pub const OPERATOR_TOKEN_PREFIX: &str = "vx_op_";
/// Longest accepted key-rotation overlap: 30 days.
pub const MAX_OVERLAP_SECS: i64 = 30 * 86_400;

/// Why a console action was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// Bad input, per form field (field name → message).
    #[error("invalid input: {0:?}")]
    Invalid(FieldErrors),
    /// No such project, or not a member: both look the same.
    #[error("not found")]
    NotFound,
    /// A member tried what only owners may do.
    #[error("only project owners can do this")]
    OwnersOnly,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Validation messages by form field.
pub type FieldErrors = BTreeMap<&'static str, String>;

fn invalid(field: &'static str, message: impl Into<String>) -> ConsoleError {
    ConsoleError::Invalid(BTreeMap::from([(field, message.into())]))
}

/// Lower-cased, trimmed, checked email address.
pub fn normalize_email(raw: &str) -> Result<String, String> {
    let email = raw.trim().to_lowercase();
    validate::email(&email)
        .map_err(|_| "enter an email address such as you@example.com".to_owned())?;
    Ok(email)
}

/// Adds an operator (`futureauth-server operator add EMAIL`); idempotent.
pub async fn add_operator(store: &Store, email: &str) -> Result<Operator, ConsoleError> {
    let email = normalize_email(email).map_err(|m| invalid("email", m))?;
    Ok(store
        .upsert_operator(&random_id("op_", 20), &email, now_ms())
        .await?)
}

/// The project as `op` sees it (any member may read), or [`ConsoleError::NotFound`].
pub async fn membership(
    store: &Store,
    op: &Operator,
    project_id: &str,
) -> Result<Membership, ConsoleError> {
    authorize(store, op, project_id, OperatorAction::Read).await
}

/// For the services that are also the delivery API's (`project_webhook`, `test_mode`): the
/// console's refusals in their error type, field errors as one `invalid_request` message.
impl From<ConsoleError> for ServiceError {
    fn from(e: ConsoleError) -> Self {
        match e {
            ConsoleError::Invalid(fields) => ServiceError::validation(
                ErrorCode::InvalidRequest,
                fields
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            ConsoleError::NotFound => ServiceError::NotFound,
            ConsoleError::OwnersOnly => ServiceError::OwnersOnly,
            ConsoleError::Store(e) => ServiceError::Store(e),
        }
    }
}

/// Records an operator's action in the project's audit log.
pub(crate) async fn audit(
    store: &Store,
    project_id: &str,
    op: &Operator,
    action: &str,
    detail: String,
) -> Result<(), ConsoleError> {
    store
        .audit(&AuditEntry {
            id: random_id("aud_", 20),
            project_id: project_id.to_owned(),
            actor: op.email.clone(),
            action: action.to_owned(),
            detail,
            created_at: now_ms(),
        })
        .await?;
    Ok(())
}

fn check_name(raw: &str) -> Result<String, String> {
    validate::project_name(raw)
}

/// A created project and its first secret key (shown once).
#[derive(Debug, Clone)]
pub struct NewProjectKey {
    /// The project.
    pub project: Project,
    /// The plain secret key.
    pub secret_key: String,
}

/// Creates a project owned by `op`, with default settings and a first key.
pub async fn create_project(
    store: &Store,
    op: &Operator,
    name: &str,
) -> Result<NewProjectKey, ConsoleError> {
    let input = NewProjectInput {
        name: name.to_owned(),
        ..NewProjectInput::default()
    };
    create_project_with(store, op, &input).await
}

/// The console's "New project" form: a name and, optionally, where magic links may point.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct NewProjectInput {
    /// Display name.
    pub name: String,
    /// Default magic-link callback URL (empty = none); its origin is allowed.
    pub callback_url: String,
    /// More allowed origins, one per line or comma-separated.
    pub allowed_origins: String,
}

/// Creates a project owned by `op` with its callback URL and allowed origins checked like
/// the settings form's (each bad field gets its own message), and a first key.
pub async fn create_project_with(
    store: &Store,
    op: &Operator,
    input: &NewProjectInput,
) -> Result<NewProjectKey, ConsoleError> {
    let base = Project {
        id: random_id("prj_", 20),
        name: String::new(),
        allowed_origins: Vec::new(),
        callback_url: None,
        email_from: None,
        sms_countries: crate::sms::default_countries(),
        sms_caps: Default::default(),
        created_at: now_ms(),
    };
    // One validation for the create form and the settings form.
    let settings = SettingsInput {
        name: input.name.clone(),
        callback_url: input.callback_url.clone(),
        allowed_origins: input.allowed_origins.clone(),
        ..SettingsInput::of(&base, ProjectLimits::default())
    };
    let (project, _) = validate_settings(&base, &settings).map_err(ConsoleError::Invalid)?;
    let key = generate_secret_key();
    store
        .create_owned_project(&project, &hash_key(&key), &key_prefix(&key), &op.id)
        .await?;
    audit(
        store,
        &project.id,
        op,
        "project.created",
        format!(
            "created project “{}” with key {}…",
            project.name,
            key_prefix(&key)
        ),
    )
    .await?;
    Ok(NewProjectKey {
        project,
        secret_key: key,
    })
}

/// The settings form / PATCH body, as submitted (also what the form shows again next to
/// its errors).
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct SettingsInput {
    /// Display name.
    pub name: String,
    /// Default magic-link callback URL (empty = none).
    pub callback_url: String,
    /// Allowed origins, one per line or comma-separated.
    pub allowed_origins: String,
    /// Email sender (empty = server default).
    pub email_from: String,
    /// Messages per address per window (empty = server default).
    pub limit_per_destination: String,
    /// Messages per minute for the project (empty = server default).
    pub limit_per_minute: String,
    /// Countries SMS may go to: ISO 3166-1 alpha-2 codes separated by commas, spaces or lines
    /// (empty = no SMS).
    pub sms_countries: String,
    /// SMS to one country per hour (empty = server default).
    pub sms_per_country_per_hour: String,
    /// SMS per hour, all countries (empty = server default).
    pub sms_per_hour: String,
    /// SMS per day, all countries (empty = server default).
    pub sms_per_day: String,
}

/// Per-project rate limits (`None` = the server's default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProjectLimits {
    /// Messages to one address per destination window.
    pub per_destination: Option<i64>,
    /// Messages per minute.
    pub per_minute: Option<i64>,
}

/// Most countries one project may list (there are about 250).
const MAX_SMS_COUNTRIES: usize = 300;

/// The SMS countries field: distinct ISO regions, in the order given.
fn parse_countries(raw: &str) -> Result<Vec<Region>, String> {
    let mut regions = Vec::new();
    for code in raw
        .split([',', ' ', '\n', '\r', '\t'])
        .filter(|s| !s.is_empty())
    {
        let region = Region::parse(code).map_err(|e| format!("{e} (ISO 3166-1 alpha-2)"))?;
        if !regions.contains(&region) {
            regions.push(region);
        }
        if regions.len() > MAX_SMS_COUNTRIES {
            return Err(format!("at most {MAX_SMS_COUNTRIES} countries"));
        }
    }
    Ok(regions)
}

/// A number field that may be left empty for the server's default: `None` when empty,
/// else a whole number from 1 to `max`.
fn parse_optional<T>(raw: &str, max: T) -> Result<Option<T>, String>
where
    T: std::str::FromStr + PartialOrd + From<u8> + std::fmt::Display,
{
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    match raw.parse::<T>() {
        Ok(n) if n >= T::from(1) && n <= max => Ok(Some(n)),
        _ => Err(format!(
            "a whole number from 1 to {max}, or empty for the server default"
        )),
    }
}

/// An SMS cap field: empty for the server default, else 1 to 1,000,000.
fn parse_cap(raw: &str) -> Result<Option<u32>, String> {
    parse_optional(raw, 1_000_000)
}

/// A rate-limit field: empty for the server default, else 1 to 100,000.
fn parse_limit(raw: &str) -> Result<Option<i64>, String> {
    parse_optional(raw, 100_000)
}

impl SettingsInput {
    /// The input as it may be shown back in the form: control characters (a NUL, an escape)
    /// are dropped, line breaks kept. Validation still sees what was sent.
    pub fn printable(&self) -> SettingsInput {
        let mut shown = self.clone();
        for field in [
            &mut shown.name,
            &mut shown.callback_url,
            &mut shown.allowed_origins,
            &mut shown.email_from,
            &mut shown.limit_per_destination,
            &mut shown.limit_per_minute,
            &mut shown.sms_countries,
            &mut shown.sms_per_country_per_hour,
            &mut shown.sms_per_hour,
            &mut shown.sms_per_day,
        ] {
            field.retain(|c| !c.is_control() || c == '\n');
        }
        shown
    }
}

impl SettingsInput {
    /// The current settings of `p`, for pre-filling the form.
    pub fn of(p: &Project, limits: ProjectLimits) -> SettingsInput {
        let show = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
        SettingsInput {
            name: p.name.clone(),
            callback_url: p.callback_url.clone().unwrap_or_default(),
            allowed_origins: p.allowed_origins.join("\n"),
            email_from: p.email_from.clone().unwrap_or_default(),
            limit_per_destination: show(limits.per_destination),
            limit_per_minute: show(limits.per_minute),
            sms_countries: p
                .sms_countries
                .iter()
                .map(Region::as_str)
                .collect::<Vec<_>>()
                .join(", "),
            sms_per_country_per_hour: show_cap(p.sms_caps.per_country_per_hour),
            sms_per_hour: show_cap(p.sms_caps.per_hour),
            sms_per_day: show_cap(p.sms_caps.per_day),
        }
    }
}

fn show_cap(v: Option<u32>) -> String {
    v.map(|n| n.to_string()).unwrap_or_default()
}

/// Checks settings; every bad field gets its own message.
pub fn validate_settings(
    base: &Project,
    input: &SettingsInput,
) -> Result<(Project, ProjectLimits), FieldErrors> {
    let mut errors = FieldErrors::new();
    let mut limits = ProjectLimits::default();
    match parse_limit(&input.limit_per_destination) {
        Ok(v) => limits.per_destination = v,
        Err(m) => {
            errors.insert("limit_per_destination", m);
        }
    }
    match parse_limit(&input.limit_per_minute) {
        Ok(v) => limits.per_minute = v,
        Err(m) => {
            errors.insert("limit_per_minute", m);
        }
    }
    let mut p = base.clone();
    match parse_countries(&input.sms_countries) {
        Ok(v) => p.sms_countries = v,
        Err(m) => {
            errors.insert("sms_countries", m);
        }
    }
    for (field, raw, cap) in [
        (
            "sms_per_country_per_hour",
            &input.sms_per_country_per_hour,
            &mut p.sms_caps.per_country_per_hour,
        ),
        (
            "sms_per_hour",
            &input.sms_per_hour,
            &mut p.sms_caps.per_hour,
        ),
        ("sms_per_day", &input.sms_per_day, &mut p.sms_caps.per_day),
    ] {
        match parse_cap(raw) {
            Ok(v) => *cap = v,
            Err(m) => {
                errors.insert(field, m);
            }
        }
    }
    match check_name(&input.name) {
        Ok(n) => p.name = n,
        Err(m) => {
            errors.insert("name", m);
        }
    }
    let mut origins: Vec<String> = Vec::new();
    for raw in input
        .allowed_origins
        .split(['\n', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match validate::origin(raw) {
            Ok(o) if !origins.contains(&o) => origins.push(o),
            Ok(_) => {}
            Err(e) => {
                errors.insert("allowed_origins", e);
                break;
            }
        }
    }
    if origins.len() > 20 {
        errors.insert("allowed_origins", "at most 20 origins".into());
    }
    let cb = input.callback_url.trim();
    p.callback_url = if cb.is_empty() {
        None
    } else {
        match validate::callback_url(cb) {
            Ok((url, origin)) => {
                if !origins.contains(&origin) {
                    origins.insert(0, origin);
                }
                Some(url.to_string())
            }
            Err(e) => {
                errors.insert("callback_url", e);
                None
            }
        }
    };
    p.allowed_origins = origins;
    let from = input.email_from.trim();
    p.email_from = if from.is_empty() {
        None
    } else if from.chars().any(char::is_control) || !from.contains('@') || from.len() > 200 {
        errors.insert(
            "email_from",
            "use an address like `Acme <login@acme.com>` or `login@acme.com`".into(),
        );
        None
    } else if validate::mentions_console(from.split('<').next().unwrap_or("")) {
        errors.insert(
            "email_from",
            "the sender name is reserved for the server's own console".into(),
        );
        None
    } else {
        Some(from.to_owned())
    };
    if errors.is_empty() {
        Ok((p, limits))
    } else {
        Err(errors)
    }
}

/// The project's rate-limit overrides.
pub async fn limits(store: &Store, project_id: &str) -> Result<ProjectLimits, StoreError> {
    let (per_destination, per_minute) = store.project_limits(project_id).await?;
    Ok(ProjectLimits {
        per_destination,
        per_minute,
    })
}

/// Saves settings, auditing what changed. Each changed part is its own
/// [`OperatorAction`] (owners only): checked before anything is written.
pub async fn update_settings(
    store: &Store,
    op: &Operator,
    m: &Membership,
    input: &SettingsInput,
) -> Result<Project, ConsoleError> {
    let (p, new_limits) = validate_settings(&m.project, input).map_err(ConsoleError::Invalid)?;
    let old = &m.project;
    let old_limits = limits(store, &p.id).await?;
    let mut changes: Vec<(OperatorAction, String)> = Vec::new();
    if new_limits != old_limits {
        let show = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_else(|| "default".into());
        changes.push((
            OperatorAction::SetRateLimits,
            format!(
                "rate limits → {} per address, {} per minute",
                show(new_limits.per_destination),
                show(new_limits.per_minute)
            ),
        ));
    }
    if p.name != old.name {
        changes.push((
            OperatorAction::Rename,
            format!("name “{}” → “{}”", old.name, p.name),
        ));
    }
    if p.callback_url != old.callback_url {
        changes.push((
            OperatorAction::SetCallbackUrl,
            format!(
                "default callback URL → {}",
                p.callback_url.as_deref().unwrap_or("none")
            ),
        ));
    }
    if p.allowed_origins != old.allowed_origins {
        changes.push((
            OperatorAction::SetAllowedOrigins,
            format!("allowed origins → {}", p.allowed_origins.join(", ")),
        ));
    }
    if p.email_from != old.email_from {
        changes.push((
            OperatorAction::SetSender,
            format!(
                "email sender → {}",
                p.email_from.as_deref().unwrap_or("server default")
            ),
        ));
    }
    if p.sms_countries != old.sms_countries {
        let list: Vec<_> = p.sms_countries.iter().map(Region::as_str).collect();
        changes.push((
            OperatorAction::SetSms,
            format!(
                "SMS countries → {}",
                if list.is_empty() {
                    "none".to_owned()
                } else {
                    list.join(", ")
                }
            ),
        ));
    }
    if p.sms_caps != old.sms_caps {
        let show = |v: Option<u32>| v.map(|n| n.to_string()).unwrap_or_else(|| "default".into());
        changes.push((
            OperatorAction::SetSms,
            format!(
                "SMS caps → {} per country per hour, {} per hour, {} per day",
                show(p.sms_caps.per_country_per_hour),
                show(p.sms_caps.per_hour),
                show(p.sms_caps.per_day)
            ),
        ));
    }
    // Every part first, then the writes: a refused part leaves the others unwritten too.
    for (action, _) in &changes {
        require(m, *action)?;
    }
    if changes.is_empty() {
        return Ok(p);
    }
    if new_limits != old_limits {
        store
            .set_project_limits(&p.id, new_limits.per_destination, new_limits.per_minute)
            .await?;
    }
    store.update_project(&p).await?;
    let detail: Vec<String> = changes.into_iter().map(|(_, d)| d).collect();
    audit(store, &p.id, op, "settings.changed", detail.join("; ")).await?;
    Ok(p)
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
) -> Result<CustomTemplates, ConsoleError> {
    require(m, OperatorAction::SetTemplates)?;
    let mut errors = FieldErrors::new();
    let mut parsed = CustomTemplates::default();
    for (field, raw, one_line, slot) in [
        (
            "email_subject",
            &input.email_subject,
            true,
            &mut parsed.email_subject,
        ),
        (
            "email_text",
            &input.email_text,
            false,
            &mut parsed.email_text,
        ),
        ("sms_text", &input.sms_text, false, &mut parsed.sms_text),
    ] {
        let text = raw.trim().replace("\r\n", "\n");
        if text.is_empty() {
            continue;
        }
        if validate::mentions_console(&text) {
            errors.insert(field, "may not name the server's own console".into());
            continue;
        }
        match templates::check(&text, one_line) {
            Ok(()) => *slot = Some(text),
            Err(e) => {
                errors.insert(field, e);
            }
        }
    }
    if !errors.is_empty() {
        return Err(ConsoleError::Invalid(errors));
    }
    let old = store.project_templates(&m.project.id).await?;
    if old != parsed {
        store.set_project_templates(&m.project.id, &parsed).await?;
        let mut changed = Vec::new();
        for (name, a, b) in [
            ("email subject", &old.email_subject, &parsed.email_subject),
            ("email text", &old.email_text, &parsed.email_text),
            ("SMS text", &old.sms_text, &parsed.sms_text),
        ] {
            if a != b {
                changed.push(if b.is_some() {
                    format!("{name} customised")
                } else {
                    format!("{name} back to the built-in text")
                });
            }
        }
        audit(
            store,
            &m.project.id,
            op,
            "templates.changed",
            changed.join("; "),
        )
        .await?;
    }
    Ok(parsed)
}

/// Deletes a project (owners only) once its name is typed exactly.
pub async fn delete_project(
    store: &Store,
    op: &Operator,
    m: &Membership,
    confirm: &str,
) -> Result<(), ConsoleError> {
    require(m, OperatorAction::DeleteProject)?;
    if confirm.trim() != m.project.name {
        return Err(invalid(
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
) -> Result<String, ConsoleError> {
    require(m, OperatorAction::CreateKey)?;
    let key = generate_secret_key();
    store
        .add_key(&m.project.id, &hash_key(&key), &key_prefix(&key), now_ms())
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
) -> Result<String, ConsoleError> {
    require(m, OperatorAction::RotateKey)?;
    if !(0..=MAX_OVERLAP_SECS).contains(&overlap_secs) {
        return Err(invalid(
            "overlap",
            "the overlap must be between 0 seconds and 30 days",
        ));
    }
    let key = generate_secret_key();
    let now = now_ms();
    store
        .rotate_key_with_overlap(
            &m.project.id,
            &hash_key(&key),
            &key_prefix(&key),
            now,
            now + overlap_secs * 1000,
        )
        .await?;
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
) -> Result<(), ConsoleError> {
    require(m, OperatorAction::RevokeKey)?;
    if !is_identifier(prefix) {
        return Err(ConsoleError::NotFound);
    }
    let n = store
        .revoke_project_key(&m.project.id, prefix, now_ms())
        .await?;
    if n == 0 {
        return Err(ConsoleError::NotFound);
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
) -> Result<Operator, ConsoleError> {
    require(m, OperatorAction::InviteMember)?;
    let email = normalize_email(email).map_err(|e| invalid("email", e))?;
    let role = Role::parse(role).ok_or_else(|| invalid("role", "choose owner or member"))?;
    let invitee = store
        .upsert_operator(&random_id("op_", 20), &email, now_ms())
        .await?;
    store
        .set_member(&m.project.id, &invitee.id, role, now_ms())
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
) -> Result<(), ConsoleError> {
    require(m, OperatorAction::RemoveMember)?;
    let members = store.members(&m.project.id).await?;
    let target = members
        .iter()
        .find(|x| x.email == email.trim().to_lowercase())
        .ok_or(ConsoleError::NotFound)?;
    let owners = members.iter().filter(|x| x.role == Role::Owner).count();
    if target.role == Role::Owner && owners == 1 {
        return Err(invalid("email", "a project keeps at least one owner"));
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
) -> Result<String, ConsoleError> {
    let name = check_name(name).map_err(|m| invalid("name", m))?;
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
            now_ms(),
        )
        .await?;
    Ok(token)
}

/// Revokes `op`'s live operator tokens with this prefix; [`ConsoleError::NotFound`] if none.
pub async fn revoke_operator_token(
    store: &Store,
    op: &Operator,
    prefix: &str,
) -> Result<(), ConsoleError> {
    let prefix = prefix.trim();
    if !is_identifier(prefix) {
        return Err(ConsoleError::NotFound);
    }
    match store
        .revoke_operator_token(&op.id, prefix, now_ms())
        .await?
    {
        0 => Err(ConsoleError::NotFound),
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
        match store.operator_by_token_hash(&computed, now_ms()).await? {
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

    fn project() -> Project {
        Project {
            id: "prj_x".into(),
            name: "Acme".into(),
            allowed_origins: vec![],
            callback_url: None,
            email_from: None,
            sms_countries: crate::sms::default_countries(),
            sms_caps: Default::default(),
            created_at: 0,
        }
    }

    #[test]
    fn settings_errors_are_per_field() {
        let input = SettingsInput {
            name: " ".into(),
            callback_url: "javascript:alert(1)".into(),
            allowed_origins: "https://ok.example.com\nftp://x".into(),
            email_from: "nobody".into(),
            limit_per_destination: "0".into(),
            limit_per_minute: "many".into(),
            sms_countries: "US, XX".into(),
            sms_per_country_per_hour: "0".into(),
            sms_per_hour: "4294967296".into(),
            sms_per_day: "1\0".into(),
        };
        let errors = validate_settings(&project(), &input).unwrap_err();
        let fields: Vec<_> = errors.keys().copied().collect();
        assert_eq!(
            fields,
            [
                "allowed_origins",
                "callback_url",
                "email_from",
                "limit_per_destination",
                "limit_per_minute",
                "name",
                "sms_countries",
                "sms_per_country_per_hour",
                "sms_per_day",
                "sms_per_hour"
            ]
        );
    }

    #[test]
    fn callback_origin_is_allowed_automatically() {
        let input = SettingsInput {
            name: "Acme 2".into(),
            callback_url: "https://App.acme.com/auth/cb".into(),
            allowed_origins: "http://localhost:3000, http://localhost:3000".into(),
            email_from: "Acme <login@acme.com>".into(),
            limit_per_destination: " 3 ".into(),
            limit_per_minute: "".into(),
            sms_countries: "gb,DE\nde  fr".into(),
            sms_per_country_per_hour: "".into(),
            sms_per_hour: " 50 ".into(),
            sms_per_day: "".into(),
        };
        let (p, limits) = validate_settings(&project(), &input).unwrap();
        let countries: Vec<_> = p.sms_countries.iter().map(Region::as_str).collect();
        assert_eq!(countries, ["GB", "DE", "FR"]);
        assert_eq!(
            p.sms_caps,
            crate::sms::SmsCaps {
                per_country_per_hour: None,
                per_hour: Some(50),
                per_day: None
            }
        );
        assert_eq!(limits.per_destination, Some(3));
        assert_eq!(limits.per_minute, None);
        assert_eq!(
            p.allowed_origins,
            ["https://app.acme.com", "http://localhost:3000"]
        );
        assert_eq!(
            p.callback_url.as_deref(),
            Some("https://app.acme.com/auth/cb")
        );
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(86_400), "1 day");
        assert_eq!(human_duration(7_200), "2 hours");
        assert_eq!(human_duration(90), "90 seconds");
    }
}
