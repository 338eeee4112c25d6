//! The management API under `/api/v1/projects`: the console's actions as JSON, for
//! automation. Authenticated by an operator token (`Authorization: Bearer vx_op_…`, created
//! in the console or with the CLI), never by a project's `vx_sec_` delivery key. A project
//! the operator is not a member of answers 404, like an unknown one.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::docs::errors;
use super::error::ApiError;
use super::extract::{bearer, ApiJson, ApiPath, ApiQuery};
use super::AppState;
use crate::error::{ErrorCode, ServiceError};
use crate::error::{FieldErrors, OperatorError};
use crate::service::console as ops;
pub use crate::service::deliveries::DeliveryView;
use crate::service::deliveries::{self, DeliveryParams};
use crate::service::now_ms;
use crate::service::operator::Acting;
use crate::service::projects::key_prefix;
use crate::service::settings::{
    parse_callback, parse_countries, parse_origins, FieldParser, ProjectName, ProjectSettings,
    RateLimit, Sender, SmsCap,
};
use crate::service::{project_webhook, test_mode};
use crate::store::{Membership, Operator};

/// The operator authenticated by `Authorization: Bearer vx_op_…`.
#[derive(Debug, Clone)]
pub struct OperatorAuth(pub Operator);

fn unauthorized() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidOperatorToken,
        "missing, unknown or revoked operator token: send `Authorization: Bearer vx_op_…` (create one in the console under API tokens)",
    )
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "storage error");
    // With `Retry-After`, like the delivery API: the database may be back in seconds.
    ApiError::unavailable(
        ErrorCode::StorageUnavailable,
        "the database is unavailable; retry later",
    )
}

impl FromRequestParts<AppState> for OperatorAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(&parts.headers).ok_or_else(unauthorized)?;
        ops::authenticate_operator_token(&state.store, &token)
            .await
            .map_err(unavailable)?
            .map(OperatorAuth)
            .ok_or_else(unauthorized)
    }
}

/// A service's refusal as the management API answers it: storage failures like the other
/// management routes' (`unavailable`), everything else by its code.
fn managed(e: ServiceError) -> ApiError {
    match e {
        ServiceError::Store(e) => unavailable(e),
        e => e.into(),
    }
}

/// 204 when a removal found something to remove, else 404 `not_found`.
fn no_content_or_not_found(removed: bool) -> Result<StatusCode, ApiError> {
    removed
        .then_some(StatusCode::NO_CONTENT)
        .ok_or_else(ApiError::not_found)
}

/// The console services' refusals, answered as the management routes answer theirs.
impl From<OperatorError> for ApiError {
    fn from(e: OperatorError) -> ApiError {
        managed(ServiceError::from(e))
    }
}

/// The project of the path's `{id}` as the token's operator sees it: the one membership
/// check of every project route. Any member may read; each change then checks its own
/// [`OperatorAction`](crate::service::operator::OperatorAction) in the operator service. A
/// project the operator is not a member of answers 404, like an unknown one.
#[derive(Debug, Clone)]
pub struct ProjectMember {
    /// The operator of the token.
    pub op: Operator,
    /// The project and the operator's role in it.
    pub m: Membership,
}

impl FromRequestParts<AppState> for ProjectMember {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let OperatorAuth(op) = OperatorAuth::from_request_parts(parts, state).await?;
        let Path(ProjectIdPath { id }) = Path::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found())?;
        let m = ops::membership(&state.store, &op, &id).await?;
        Ok(ProjectMember { op, m })
    }
}

/// The `{id}` of every project route, as the OpenAPI document lists it (`params(ProjectIdPath)`);
/// [`ProjectMember`] is what reads it.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ProjectIdPath {
    /// Project id (`prj_…`)
    #[param(example = "prj_8h2k4m6p9r1t3v5x7z0b2d4f")]
    pub id: String,
}

/// A project as its member sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectView {
    /// `prj_…`.
    #[schema(example = "prj_8h2k4m6p9r1t3v5x7z0b2d4f")]
    pub id: String,
    /// Display name.
    #[schema(example = "Acme")]
    pub name: String,
    /// `owner` or `member`.
    #[schema(example = "owner")]
    pub role: String,
    /// Allowed magic-link origins.
    #[schema(example = json!(["https://app.example.com"]))]
    pub allowed_origins: Vec<String>,
    /// Default magic-link callback URL.
    #[schema(example = "https://app.example.com/auth/callback")]
    pub callback_url: Option<String>,
    /// Email sender (null = server default).
    #[schema(example = "Acme <login@acme.example>")]
    pub email_from: Option<String>,
    /// Countries (ISO 3166-1 alpha-2) the project may send SMS to.
    #[schema(example = json!(["US", "CA", "GB"]))]
    pub sms_countries: Vec<String>,
    /// SMS to one country per hour (null = the server default).
    #[schema(example = 100)]
    pub sms_per_country_per_hour: Option<u32>,
    /// SMS per hour, all countries (null = the server default).
    #[schema(example = 500)]
    pub sms_per_hour: Option<u32>,
    /// SMS per day, all countries (null = the server default).
    #[schema(example = 2000)]
    pub sms_per_day: Option<u32>,
    /// Epoch milliseconds.
    #[schema(example = 1764355200000_i64)]
    pub created_at: i64,
}

impl From<Membership> for ProjectView {
    fn from(m: Membership) -> Self {
        let p = m.project;
        ProjectView {
            id: p.id,
            name: p.name,
            role: m.role.as_str().into(),
            allowed_origins: p.allowed_origins,
            callback_url: p.callback_url,
            email_from: p.email_from,
            sms_countries: p
                .sms_countries
                .iter()
                .map(|r| r.as_str().to_owned())
                .collect(),
            sms_per_country_per_hour: p.sms_caps.per_country_per_hour,
            sms_per_hour: p.sms_caps.per_hour,
            sms_per_day: p.sms_caps.per_day,
            created_at: p.created_at.into(),
        }
    }
}

/// `POST /api/v1/projects` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateProjectBody {
    /// Display name (1–100 characters).
    #[schema(example = "Acme")]
    pub name: String,
}

/// A newly issued secret key: shown in this answer only.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretKeyView {
    /// Project id.
    #[schema(example = "prj_8h2k4m6p9r1t3v5x7z0b2d4f")]
    pub project_id: String,
    /// The `vx_sec_…` key; only its hash is stored.
    #[schema(example = "vx_sec_4f9a2c7e1b3d5f8a0c2e4b6d8f1a3c5e")]
    pub secret_key: String,
    /// Its display prefix (first 12 characters).
    #[schema(example = "vx_sec_4f9a2")]
    pub key_prefix: String,
}

/// Answer of `POST /api/v1/projects`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedProjectView {
    /// The project (the caller is its owner).
    pub project: ProjectView,
    /// Its first key.
    pub key: SecretKeyView,
}

/// `PATCH /api/v1/projects/{id}` body: fields left out keep their value.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateProjectBody {
    /// Display name.
    #[schema(example = "Acme")]
    pub name: Option<String>,
    /// Default callback URL; `""` removes it.
    #[schema(example = "https://app.example.com/auth/callback")]
    pub callback_url: Option<String>,
    /// Allowed origins (replaces the list).
    #[schema(example = json!(["https://app.example.com"]))]
    pub allowed_origins: Option<Vec<String>>,
    /// Email sender; `""` means the server default.
    #[schema(example = "Acme <login@acme.example>")]
    pub email_from: Option<String>,
    /// Messages per address per destination window (1–100000; 0 = the server default).
    #[schema(example = 5)]
    pub limit_per_destination: Option<i64>,
    /// Messages per minute for the project (1–100000; 0 = the server default).
    #[schema(example = 600)]
    pub limit_per_minute: Option<i64>,
    /// Countries SMS may go to, ISO 3166-1 alpha-2 (replaces the list; `[]` = no SMS).
    #[schema(example = json!(["US", "CA", "GB"]))]
    pub sms_countries: Option<Vec<String>>,
    /// SMS to one country per hour (1–1000000; 0 = the server default).
    #[schema(example = 100)]
    pub sms_per_country_per_hour: Option<i64>,
    /// SMS per hour, all countries (1–1000000; 0 = the server default).
    #[schema(example = 500)]
    pub sms_per_hour: Option<i64>,
    /// SMS per day, all countries (1–1000000; 0 = the server default).
    #[schema(example = 2000)]
    pub sms_per_day: Option<i64>,
}

impl UpdateProjectBody {
    /// The change, every given field parsed (each bad one named).
    fn parse(self) -> Result<ProjectSettings, FieldErrors> {
        let mut f = FieldParser::default();
        let (cap, limit) = (SmsCap::from_json, RateLimit::from_json);
        let patch = ProjectSettings {
            name: f.given("name", self.name, |v| ProjectName::parse(&v)),
            callback_url: f.given("callback_url", self.callback_url, |v| parse_callback(&v)),
            allowed_origins: f.given("allowed_origins", self.allowed_origins, |v| {
                parse_origins(v.iter().map(String::as_str))
            }),
            email_from: f.given("email_from", self.email_from, |v| Sender::parse(&v)),
            limit_per_destination: f.given(
                "limit_per_destination",
                self.limit_per_destination,
                limit,
            ),
            limit_per_minute: f.given("limit_per_minute", self.limit_per_minute, limit),
            sms_countries: f.given("sms_countries", self.sms_countries, |v| {
                parse_countries(v.iter().map(String::as_str))
            }),
            sms_per_country_per_hour: f.given(
                "sms_per_country_per_hour",
                self.sms_per_country_per_hour,
                cap,
            ),
            sms_per_hour: f.given("sms_per_hour", self.sms_per_hour, cap),
            sms_per_day: f.given("sms_per_day", self.sms_per_day, cap),
        };
        f.finish(Some(patch))
    }
}

/// When a key or operator token was made, last used, and stops working.
#[derive(Debug, Serialize, ToSchema)]
pub struct LifespanView {
    /// Epoch ms.
    #[schema(example = 1764355200000_i64)]
    pub created_at: i64,
    /// Epoch ms (minute precision), null if never used.
    #[schema(example = 1764355260000_i64)]
    pub last_used_at: Option<i64>,
    /// Epoch ms when it stops or stopped working (a key's is in the future during a
    /// rotation overlap); null while no end is set.
    #[schema(example = 1764441600000_i64)]
    pub revoked_at: Option<i64>,
}

impl From<crate::store::Lifespan> for LifespanView {
    fn from(l: crate::store::Lifespan) -> Self {
        LifespanView {
            created_at: l.created_at.into(),
            last_used_at: l.last_used_at.map(i64::from),
            revoked_at: l.revoked_at.map(i64::from),
        }
    }
}

/// A key as listed (never the key itself).
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    /// First 12 characters.
    #[schema(example = "vx_sec_4f9a2")]
    pub key_prefix: String,
    /// When it was made, last used, and stops working.
    #[serde(flatten)]
    pub life: LifespanView,
    /// `active`, `expiring` (rotation overlap) or `revoked`.
    #[schema(example = "active")]
    pub state: String,
}

/// `POST …/keys/rotate` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RotateBody {
    /// Seconds the previous keys keep working (0 to 2592000). Default 86400.
    #[schema(example = 86400)]
    pub overlap_secs: Option<i64>,
}

/// A page of deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    /// Matching messages in total.
    #[schema(example = 120)]
    pub total: i64,
    /// This page, newest first.
    pub items: Vec<DeliveryView>,
}

/// A member.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    /// Email.
    #[schema(example = "ops@example.com")]
    pub email: String,
    /// `owner` or `member`.
    #[schema(example = "member")]
    pub role: String,
    /// Epoch ms.
    #[schema(example = 1764355200000_i64)]
    pub added_at: i64,
}

/// `POST …/members` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct InviteBody {
    /// Email of the invitee.
    #[schema(example = "ops@example.com")]
    pub email: String,
    /// `owner` or `member` (default `member`).
    #[schema(example = "member")]
    pub role: Option<String>,
}

/// An audit log entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    /// Email of the operator who acted.
    #[schema(example = "ops@example.com")]
    pub actor: String,
    /// e.g. `key.created`, `key.rotated`, `key.revoked`, `settings.changed`, `member.invited`.
    #[schema(example = "key.rotated")]
    pub action: String,
    /// Detail (never a secret).
    #[schema(example = "overlap 86400 s")]
    pub detail: String,
    /// Epoch ms.
    #[schema(example = 1764355200000_i64)]
    pub created_at: i64,
}

/// Lists the operator's projects.
///
/// Every project the token's operator is a member or owner of.
#[utoipa::path(get, path = "/api/v1/projects", tag = "management",
    responses((status = 200, description = "The caller's projects with the caller's role", body = [ProjectView])))]
pub async fn list_projects(
    State(state): State<AppState>,
    OperatorAuth(op): OperatorAuth,
) -> Result<Json<Vec<ProjectView>>, ApiError> {
    let list = ops::projects(&state.store, &op).await?;
    Ok(Json(list.into_iter().map(ProjectView::from).collect()))
}

/// Creates a project owned by the caller, with its first key (shown once).
///
/// Store the `secret_key` of the answer at once: only its hash is kept.
#[utoipa::path(post, path = "/api/v1/projects", tag = "management",
    request_body = CreateProjectBody,
    responses((status = 201, description = "Created; the key is shown in this answer only", body = CreatedProjectView), errors::BodyRejected, errors::Invalid))]
pub async fn create_project(
    State(state): State<AppState>,
    OperatorAuth(op): OperatorAuth,
    ApiJson(body): ApiJson<CreateProjectBody>,
) -> Result<(StatusCode, Json<CreatedProjectView>), ApiError> {
    let created = ops::create_project(&state.store, &op, &body.name).await?;
    let key = SecretKeyView::new(&created.project.id, created.secret_key);
    let project = ProjectView::from(Membership {
        project: created.project,
        role: crate::store::Role::Owner,
    });
    Ok((
        StatusCode::CREATED,
        Json(CreatedProjectView { project, key }),
    ))
}

/// One project.
///
/// Its settings and the caller's role; 404 when the caller is not a member.
#[utoipa::path(get, path = "/api/v1/projects/{id}", tag = "management", params(ProjectIdPath),
    responses((status = 200, description = "The project", body = ProjectView), errors::NotFound))]
pub async fn get_project(
    ProjectMember { m, .. }: ProjectMember,
) -> Result<Json<ProjectView>, ApiError> {
    Ok(Json(m.into()))
}

/// Renames a project or changes its settings (owners).
///
/// Fields left out keep their value. Every change is written to the audit log. Members may
/// read the project but change nothing: 403 `owners_only`, nothing written.
#[utoipa::path(patch, path = "/api/v1/projects/{id}", tag = "management", params(ProjectIdPath),
    request_body = UpdateProjectBody,
    responses((status = 200, description = "The project after the change", body = ProjectView), errors::BodyRejected, errors::OwnersOnly, errors::NotFound, errors::Invalid))]
pub async fn update_project(
    State(state): State<AppState>,
    ProjectMember { op, m }: ProjectMember,
    ApiJson(body): ApiJson<UpdateProjectBody>,
) -> Result<Json<ProjectView>, ApiError> {
    let patch = body.parse().map_err(OperatorError::Invalid)?;
    let project =
        ops::update_settings(&state.store, Acting::Operator(&op, &m), &m.project, patch).await?;
    Ok(Json(
        Membership {
            project,
            role: m.role,
        }
        .into(),
    ))
}

/// Deletes a project (owners; `?confirm=` must be its exact name).
///
/// Its keys stop working at once; its messages, members and audit entries are removed.
#[utoipa::path(delete, path = "/api/v1/projects/{id}", tag = "management",
    params(ProjectIdPath, ("confirm" = String, Query, description = "The project's exact name", example = "Acme")),
    responses((status = 204, description = "Deleted with its keys, messages and members"), errors::OwnersOnly, errors::NotFound, errors::Invalid))]
pub async fn delete_project(
    State(state): State<AppState>,
    ProjectMember { op, m }: ProjectMember,
    Query(q): Query<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    let confirm = q.get("confirm").map(String::as_str).unwrap_or("");
    ops::delete_project(&state.store, &op, &m, confirm).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The project's keys (prefixes only).
///
/// Secret keys are stored as hashes, so only their display prefixes and states are listed.
#[utoipa::path(get, path = "/api/v1/projects/{id}/keys", tag = "management", params(ProjectIdPath),
    responses((status = 200, description = "The keys, newest first (prefixes only)", body = [KeyView]), errors::NotFound))]
pub async fn list_keys(
    State(state): State<AppState>,
    ProjectMember { m, .. }: ProjectMember,
) -> Result<Json<Vec<KeyView>>, ApiError> {
    let keys = ops::keys(&state.store, &m.project.id)
        .await
        .map_err(unavailable)?;
    Ok(Json(
        keys.into_iter()
            .map(|k| KeyView {
                state: k.state.as_str().into(),
                key_prefix: k.key.key_prefix,
                life: k.key.life.into(),
            })
            .collect(),
    ))
}

impl SecretKeyView {
    /// The answer that shows `key`, a new key of the project, once.
    fn new(project_id: &str, key: String) -> SecretKeyView {
        SecretKeyView {
            project_id: project_id.to_owned(),
            key_prefix: key_prefix(&key),
            secret_key: key,
        }
    }
}

fn secret(project_id: &str, key: String) -> (StatusCode, Json<SecretKeyView>) {
    (
        StatusCode::CREATED,
        Json(SecretKeyView::new(project_id, key)),
    )
}

/// Adds a key (owners); the secret is in this answer only.
///
/// The project's other keys keep working.
#[utoipa::path(post, path = "/api/v1/projects/{id}/keys", tag = "management", params(ProjectIdPath),
    responses((status = 201, description = "The new key, shown in this answer only", body = SecretKeyView), errors::OwnersOnly, errors::NotFound))]
pub async fn create_key(
    State(state): State<AppState>,
    ProjectMember { op, m }: ProjectMember,
) -> Result<(StatusCode, Json<SecretKeyView>), ApiError> {
    let key = ops::create_key(&state.store, &op, &m).await?;
    Ok(secret(&m.project.id, key))
}

/// Issues a new key; the previous ones keep working for `overlap_secs` (owners).
///
/// Deploy the new key within the overlap; the old keys are then `expiring`, later `revoked`.
#[utoipa::path(post, path = "/api/v1/projects/{id}/keys/rotate", tag = "management", params(ProjectIdPath),
    request_body = RotateBody,
    responses((status = 201, description = "The new key, shown in this answer only", body = SecretKeyView), errors::BodyRejected, errors::OwnersOnly, errors::NotFound, errors::Invalid))]
pub async fn rotate_key(
    State(state): State<AppState>,
    ProjectMember { op, m }: ProjectMember,
    ApiJson(body): ApiJson<RotateBody>,
) -> Result<(StatusCode, Json<SecretKeyView>), ApiError> {
    let key = ops::rotate_key(&state.store, &op, &m, body.overlap_secs.unwrap_or(86_400)).await?;
    Ok(secret(&m.project.id, key))
}

/// Revokes a key by its display prefix, now (owners).
///
/// Requests with the key answer 401 from now on.
#[utoipa::path(delete, path = "/api/v1/projects/{id}/keys/{prefix}", tag = "management",
    params(ProjectIdPath, ("prefix" = String, Path, description = "Key display prefix (its first 12 characters)", example = "vx_sec_4f9a2")),
    responses((status = 204, description = "Revoked: it stops working now"), errors::OwnersOnly, errors::NotFound, errors::Invalid))]
pub async fn revoke_key(
    State(state): State<AppState>,
    ProjectMember { op, m }: ProjectMember,
    ApiPath((_project, prefix)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    ops::revoke_key(&state.store, &op, &m, &prefix).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The delivery log, newest first, filtered.
///
/// Destinations are masked; filter by an exact destination to find one person's messages.
#[utoipa::path(get, path = "/api/v1/projects/{id}/deliveries", tag = "management",
    params(ProjectIdPath,
        ("channel" = Option<String>, Query, description = "`email`, `sms`, `magic_link` or `webhook` (the project's webhook events)", example = "email"),
        ("status" = Option<String>, Query, description = "`queued`, `sent` or `failed`", example = "failed"),
        ("from" = Option<i64>, Query, description = "Created at or after, epoch ms", example = 1764300000000_i64),
        ("until" = Option<i64>, Query, description = "Created before, epoch ms", example = 1764386400000_i64),
        ("destination" = Option<String>, Query, description = "Exact address (compared by keyed hash)", example = "jane@example.com"),
        ("limit" = Option<i64>, Query, description = "Page size, 1-200, default 50", example = 50),
        ("offset" = Option<i64>, Query, description = "Items to skip, default 0", example = 0)),
    responses((status = 200, description = "One page of the delivery log", body = DeliveryPage), errors::NotFound, errors::Invalid))]
pub async fn deliveries(
    State(state): State<AppState>,
    ProjectMember { m, .. }: ProjectMember,
    ApiQuery(params): ApiQuery<DeliveryParams>,
) -> Result<Json<DeliveryPage>, ApiError> {
    let query = params.parse(50).map_err(|errors| {
        let (field, message) = errors.into_iter().next().unwrap_or_default();
        ApiError::new(ErrorCode::InvalidRequest, format!("{field}: {message}"))
    })?;
    let hasher = state.sender.destination_hasher();
    let (items, total) = deliveries::deliveries(&state.store, hasher, &m.project.id, &query)
        .await
        .map_err(unavailable)?;
    Ok(Json(DeliveryPage { total, items }))
}

/// The project's members.
///
/// Operators who can see the project; owners can also manage keys, members and deletion.
#[utoipa::path(get, path = "/api/v1/projects/{id}/members", tag = "management", params(ProjectIdPath),
    responses((status = 200, description = "The members", body = [MemberView]), errors::NotFound))]
pub async fn list_members(
    State(state): State<AppState>,
    ProjectMember { m, .. }: ProjectMember,
) -> Result<Json<Vec<MemberView>>, ApiError> {
    let members = ops::members(&state.store, &m).await?;
    Ok(Json(
        members
            .into_iter()
            .map(|x| MemberView {
                email: x.email,
                role: x.role.as_str().into(),
                added_at: x.added_at.into(),
            })
            .collect(),
    ))
}

/// Invites an operator by email (owners).
///
/// The operator signs in to the console with that email; no invitation email is sent.
#[utoipa::path(post, path = "/api/v1/projects/{id}/members", tag = "management", params(ProjectIdPath),
    request_body = InviteBody,
    responses((status = 201, description = "Added as a member", body = MemberView), errors::BodyRejected, errors::OwnersOnly, errors::NotFound, errors::Invalid))]
pub async fn invite(
    State(state): State<AppState>,
    ProjectMember { op, m }: ProjectMember,
    ApiJson(body): ApiJson<InviteBody>,
) -> Result<(StatusCode, Json<MemberView>), ApiError> {
    let role = body.role.unwrap_or_else(|| "member".into());
    let invitee = ops::invite(&state.store, &op, &m, &body.email, &role).await?;
    Ok((
        StatusCode::CREATED,
        Json(MemberView {
            email: invitee.email,
            role,
            added_at: now_ms(),
        }),
    ))
}

/// Removes a member (owners; the last owner stays).
///
/// Their console sessions for this project stop at once.
#[utoipa::path(delete, path = "/api/v1/projects/{id}/members/{email}", tag = "management",
    params(ProjectIdPath, ("email" = String, Path, description = "Member email", example = "ops@example.com")),
    responses((status = 204, description = "Removed"), errors::OwnersOnly, errors::NotFound, errors::Invalid))]
pub async fn remove_member(
    State(state): State<AppState>,
    ProjectMember { op, m }: ProjectMember,
    ApiPath((_project, email)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    ops::remove_member(&state.store, &op, &m, &email).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The project's audit log, newest first (latest 500).
///
/// Who changed keys, settings, members and templates, and when; never a secret.
#[utoipa::path(get, path = "/api/v1/projects/{id}/audit", tag = "management", params(ProjectIdPath),
    responses((status = 200, description = "Audit entries, newest first", body = [AuditView]), errors::NotFound))]
pub async fn audit(
    State(state): State<AppState>,
    ProjectMember { m, .. }: ProjectMember,
) -> Result<Json<Vec<AuditView>>, ApiError> {
    let entries = ops::audit_log(&state.store, &m, 500).await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e| AuditView {
                actor: e.actor,
                action: e.action,
                detail: e.detail,
                created_at: e.created_at.into(),
            })
            .collect(),
    ))
}

/// A project's message templates (`null` = the built-in text).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TemplatesBody {
    /// Subject of the sign-in code email; must contain `{{ code }}`.
    #[schema(example = "{{ code }} is your {{ project }} sign-in code")]
    pub email_subject: Option<String>,
    /// Text of the sign-in code email (the HTML part is this text, escaped).
    #[schema(example = "Your {{ project }} sign-in code is {{ code }}. It expires soon.")]
    pub email_text: Option<String>,
    /// Text of the sign-in code SMS.
    #[schema(example = "{{ code }} is your {{ project }} code")]
    pub sms_text: Option<String>,
}

impl From<crate::service::templates::CustomTemplates> for TemplatesBody {
    fn from(t: crate::service::templates::CustomTemplates) -> Self {
        TemplatesBody {
            email_subject: t.email_subject,
            email_text: t.email_text,
            sms_text: t.sms_text,
        }
    }
}

/// The project's message templates.
///
/// `null` fields use the built-in wording.
#[utoipa::path(get, path = "/api/v1/projects/{id}/templates", tag = "management", params(ProjectIdPath),
    responses((status = 200, description = "The templates", body = TemplatesBody), errors::NotFound))]
pub async fn get_templates(
    State(state): State<AppState>,
    ProjectMember { m, .. }: ProjectMember,
) -> Result<Json<TemplatesBody>, ApiError> {
    Ok(Json(ops::templates(&state.store, &m).await?.into()))
}

/// Replaces the project's message templates (owners).
///
/// `null` or `""` means the built-in text. Only `{{ code }}` (required) and `{{ project }}`
/// are substituted.
#[utoipa::path(put, path = "/api/v1/projects/{id}/templates", tag = "management", params(ProjectIdPath),
    request_body = TemplatesBody,
    responses((status = 200, description = "The templates as saved", body = TemplatesBody), errors::BodyRejected, errors::OwnersOnly, errors::NotFound, errors::Invalid))]
pub async fn put_templates(
    State(state): State<AppState>,
    ProjectMember { op, m }: ProjectMember,
    ApiJson(body): ApiJson<TemplatesBody>,
) -> Result<Json<TemplatesBody>, ApiError> {
    let input = ops::TemplatesInput {
        email_subject: body.email_subject.unwrap_or_default(),
        email_text: body.email_text.unwrap_or_default(),
        sms_text: body.sms_text.unwrap_or_default(),
    };
    let saved = ops::update_templates(&state.store, &op, &m, &input).await?;
    Ok(Json(saved.into()))
}

// ---------------------------------------------------------------- project webhook

/// Where the server posts the project's message events.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookBody {
    /// `https://…` (plain `http` only to localhost, in development).
    #[schema(example = "https://app.example.com/hooks/futureauth")]
    pub url: String,
}

/// The project's webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    /// Where events are posted.
    #[schema(example = "https://app.example.com/hooks/futureauth")]
    pub url: String,
    /// The signing secret: only in the answer that created it (first registration or
    /// rotation); verify events with it (`futureauth::webhook::verify`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: Option<String>,
}

/// The project's webhook.
///
/// Its URL, never its secret; 404 `not_found` when the project has none.
#[utoipa::path(get, path = "/api/v1/projects/{id}/webhook", tag = "management", params(ProjectIdPath),
    responses((status = 200, description = "The webhook (never its secret)", body = WebhookView), errors::NotFound))]
pub async fn get_webhook(
    State(state): State<AppState>,
    ProjectMember { m, .. }: ProjectMember,
) -> Result<Json<WebhookView>, ApiError> {
    let hook = project_webhook::get(&state.store, &m)
        .await
        .map_err(managed)?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(WebhookView {
        url: hook.url,
        secret: None,
    }))
}

/// Registers or moves the project's webhook (owners only).
///
/// The server then posts signed events (`message.delivered`, `message.bounced`,
/// `message.undelivered`, `message.complained`, `message.sent`) through its durable outbox,
/// retried with backoff. The first registration answers the signing secret, once.
#[utoipa::path(put, path = "/api/v1/projects/{id}/webhook", tag = "management", params(ProjectIdPath),
    request_body = WebhookBody,
    responses((status = 200, description = "Saved; `secret` on the first registration only", body = WebhookView), errors::BodyRejected, errors::OwnersOnly, errors::NotFound, errors::Invalid))]
pub async fn put_webhook(
    State(state): State<AppState>,
    ProjectMember { op, m }: ProjectMember,
    ApiJson(body): ApiJson<WebhookBody>,
) -> Result<Json<WebhookView>, ApiError> {
    let (url, secret) = project_webhook::set(
        &state.store,
        &op,
        &m.project.id,
        &body.url,
        state.production,
    )
    .await
    .map_err(managed)?;
    Ok(Json(WebhookView {
        url: url.to_string(),
        secret,
    }))
}

/// A new signing secret for the project's webhook (owners only).
///
/// The old secret stops working at once, also for events still queued; the answer shows
/// the new one, once.
#[utoipa::path(post, path = "/api/v1/projects/{id}/webhook/rotate", tag = "management", params(ProjectIdPath),
    responses((status = 200, description = "The new secret, shown once", body = WebhookView), errors::OwnersOnly, errors::NotFound))]
pub async fn rotate_webhook(
    State(state): State<AppState>,
    ProjectMember { op, m }: ProjectMember,
) -> Result<Json<WebhookView>, ApiError> {
    let hook = project_webhook::rotate(&state.store, &op, &m.project.id)
        .await
        .map_err(managed)?;
    Ok(Json(WebhookView {
        url: hook.url,
        secret: Some(hook.secret.expose_secret().to_owned()),
    }))
}

/// Removes the project's webhook (owners only).
///
/// No more events are queued for it; events still queued fail.
#[utoipa::path(delete, path = "/api/v1/projects/{id}/webhook", tag = "management", params(ProjectIdPath),
    responses((status = 204, description = "Removed"), errors::OwnersOnly, errors::NotFound))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    ProjectMember { op, m }: ProjectMember,
) -> Result<StatusCode, ApiError> {
    let removed = project_webhook::remove(&state.store, &op, &m.project.id).await;
    no_content_or_not_found(removed.map_err(managed)?)
}

// ---------------------------------------------------------------- test mode

/// A project's test mode: sends to these destinations are logged as `test`, never sent, and
/// answered with the fixed code, which the futureauth 0.6 SDK then accepts for them only.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TestModeBody {
    /// Exact email addresses or E.164 numbers (1 to 20), e.g. an app-store reviewer's account.
    #[schema(example = json!(["review@example.com", "+12015550100"]))]
    pub destinations: Vec<String>,
    /// The fixed code: 4 to 12 lowercase letters or digits.
    #[schema(example = "424242")]
    pub code: String,
    /// Required on a production server: confirms that a known code may sign anybody into
    /// the listed accounts.
    #[serde(default)]
    #[schema(example = false)]
    pub allow_in_production: bool,
}

impl From<crate::store::TestMode> for TestModeBody {
    fn from(t: crate::store::TestMode) -> Self {
        TestModeBody {
            destinations: t.destinations,
            code: t.code,
            allow_in_production: t.allow_in_production,
        }
    }
}

/// The project's test mode.
///
/// Its destinations, fixed code and production confirmation; 404 `not_found` when test
/// mode is off.
#[utoipa::path(get, path = "/api/v1/projects/{id}/test-mode", tag = "management", params(ProjectIdPath),
    responses((status = 200, description = "Test mode is on", body = TestModeBody), errors::NotFound))]
pub async fn get_test_mode(
    State(state): State<AppState>,
    ProjectMember { m, .. }: ProjectMember,
) -> Result<Json<TestModeBody>, ApiError> {
    let mode = test_mode::get(&state.store, &m).await.map_err(managed)?;
    Ok(Json(mode.ok_or_else(ApiError::not_found)?.into()))
}

/// Turns test mode on, or replaces it (owners only).
///
/// For app-store review and CI: no message to these destinations reaches a provider, and
/// the SDK accepts the fixed code for them (and only them). On a production server it must
/// be confirmed with `allow_in_production` (422 `test_mode_in_production` otherwise).
#[utoipa::path(put, path = "/api/v1/projects/{id}/test-mode", tag = "management", params(ProjectIdPath),
    request_body = TestModeBody,
    responses((status = 200, description = "Test mode as saved (destinations normalised)", body = TestModeBody), errors::BodyRejected, errors::OwnersOnly, errors::NotFound, errors::Invalid))]
pub async fn put_test_mode(
    State(state): State<AppState>,
    ProjectMember { op, m }: ProjectMember,
    ApiJson(body): ApiJson<TestModeBody>,
) -> Result<Json<TestModeBody>, ApiError> {
    let input = test_mode::TestModeInput {
        destinations: body.destinations,
        code: body.code,
        allow_in_production: body.allow_in_production,
    };
    let mode = test_mode::enable(&state.store, &op, &m.project.id, &input, state.production)
        .await
        .map_err(managed)?;
    Ok(Json(mode.into()))
}

/// Turns test mode off (owners only).
///
/// Sends to the former test destinations are delivered normally again; 404 `not_found`
/// when test mode was off.
#[utoipa::path(delete, path = "/api/v1/projects/{id}/test-mode", tag = "management", params(ProjectIdPath),
    responses((status = 204, description = "Test mode is off"), errors::OwnersOnly, errors::NotFound))]
pub async fn delete_test_mode(
    State(state): State<AppState>,
    ProjectMember { op, m }: ProjectMember,
) -> Result<StatusCode, ApiError> {
    let disabled = test_mode::disable(&state.store, &op, &m.project.id).await;
    no_content_or_not_found(disabled.map_err(managed)?)
}

// ---------------------------------------------------------------- operator tokens

/// An operator token as listed (never the token itself).
#[derive(Debug, Serialize, ToSchema)]
pub struct OperatorTokenView {
    /// First 12 characters: what `DELETE /api/v1/operator/tokens/{prefix}` takes.
    #[schema(example = "vx_op_4f9a2c")]
    pub token_prefix: String,
    /// Label given at creation.
    #[schema(example = "CI deploys")]
    pub name: String,
    /// When it was made, last used, and revoked.
    #[serde(flatten)]
    pub life: LifespanView,
}

/// `POST /api/v1/operator/tokens` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateTokenBody {
    /// A label to recognise it by (1–100 characters).
    #[schema(example = "CI deploys")]
    pub name: String,
}

/// A newly issued operator token: shown in this answer only.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewOperatorTokenView {
    /// The `vx_op_…` token; only its hash is stored.
    #[schema(example = "vx_op_4f9a2c7e1b3d5f8a0c2e4b6d8f1a3c5e")]
    pub token: String,
    /// Its first 12 characters, as listed.
    #[schema(example = "vx_op_4f9a2c")]
    pub token_prefix: String,
    /// Its label.
    #[schema(example = "CI deploys")]
    pub name: String,
}

/// The calling operator's tokens.
///
/// Live and revoked, newest first; never the tokens themselves, only their prefixes.
#[utoipa::path(get, path = "/api/v1/operator/tokens", tag = "management",
    responses((status = 200, description = "Tokens, newest first", body = [OperatorTokenView])))]
pub async fn list_tokens(
    State(state): State<AppState>,
    OperatorAuth(op): OperatorAuth,
) -> Result<Json<Vec<OperatorTokenView>>, ApiError> {
    let tokens = ops::operator_tokens(&state.store, &op).await?;
    Ok(Json(
        tokens
            .into_iter()
            .map(|t| OperatorTokenView {
                token_prefix: t.token_prefix,
                name: t.name,
                life: t.life.into(),
            })
            .collect(),
    ))
}

/// Creates an operator token for the calling operator; the token is in this answer only.
///
/// A token acts as its operator, with the operator's memberships: no more, no less.
#[utoipa::path(post, path = "/api/v1/operator/tokens", tag = "management",
    request_body = CreateTokenBody,
    responses((status = 201, description = "The new token, shown once", body = NewOperatorTokenView), errors::BodyRejected, errors::Invalid))]
pub async fn create_token(
    State(state): State<AppState>,
    OperatorAuth(op): OperatorAuth,
    ApiJson(body): ApiJson<CreateTokenBody>,
) -> Result<(StatusCode, Json<NewOperatorTokenView>), ApiError> {
    let token = ops::create_operator_token(&state.store, &op, &body.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(NewOperatorTokenView {
            token_prefix: key_prefix(&token),
            name: body.name.trim().to_owned(),
            token,
        }),
    ))
}

/// Revokes one of the calling operator's tokens.
///
/// Every live token of the caller with this prefix stops working at once (the calling token
/// too, if it matches); another operator's prefix answers 404.
#[utoipa::path(delete, path = "/api/v1/operator/tokens/{prefix}", tag = "management",
    params(("prefix" = String, Path, description = "Token prefix as listed", example = "vx_op_4f9a2c")),
    responses((status = 204, description = "Revoked"), errors::NotFound))]
pub async fn revoke_token(
    State(state): State<AppState>,
    OperatorAuth(op): OperatorAuth,
    Path(prefix): Path<String>,
) -> Result<StatusCode, ApiError> {
    ops::revoke_operator_token(&state.store, &op, &prefix).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The management routes (merged into the API router).
pub fn routes() -> Router<AppState> {
    let p = "/api/v1/projects/{id}";
    Router::new()
        .route("/api/v1/projects", get(list_projects).post(create_project))
        .route(
            p,
            get(get_project)
                .patch(update_project)
                .delete(delete_project),
        )
        .route(&format!("{p}/keys"), get(list_keys).post(create_key))
        .route(&format!("{p}/keys/rotate"), post(rotate_key))
        .route(&format!("{p}/keys/{{prefix}}"), delete(revoke_key))
        .route(&format!("{p}/deliveries"), get(deliveries))
        .route(&format!("{p}/members"), get(list_members).post(invite))
        .route(&format!("{p}/members/{{email}}"), delete(remove_member))
        .route(&format!("{p}/audit"), get(audit))
        .route(
            &format!("{p}/templates"),
            get(get_templates).put(put_templates),
        )
        .route(
            &format!("{p}/webhook"),
            get(get_webhook).put(put_webhook).delete(delete_webhook),
        )
        .route(&format!("{p}/webhook/rotate"), post(rotate_webhook))
        .route(
            &format!("{p}/test-mode"),
            get(get_test_mode)
                .put(put_test_mode)
                .delete(delete_test_mode),
        )
        .route(
            "/api/v1/operator/tokens",
            get(list_tokens).post(create_token),
        )
        .route("/api/v1/operator/tokens/{prefix}", delete(revoke_token))
}
