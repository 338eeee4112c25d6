//! `POST /api/v1/otp/send` and `GET /api/v1/messages/{id}`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiPath, AuthProject, OptionalIdempotencyKey, SendJson};
use super::AppState;
use crate::provider::scrub;
use crate::service::MessageId;
use crate::store::Message;

/// Body of `POST /api/v1/otp/send`: what the futureauth SDKs send (every version since 0.4).
/// Unknown fields are ignored. The service relays nothing but a code or a link token, so a
/// leaked key cannot send free text.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Documentation only: the body is parsed as `futureauth_proto::Message`.
pub struct SendBody {
    /// `email` (a code by email), `sms` (a code by SMS) or `magic_link` (a link by email).
    #[schema(example = "email", pattern = "^(email|sms|magic_link)$")]
    pub channel: String,
    /// email, magic_link: a plain address (`local@domain.tld`, ≤ 254 bytes; trimmed and
    /// lower-cased). sms: E.164 exactly (`+` and 8–15 digits, no spaces) of a number that
    /// libphonenumber places in one of the project's SMS countries (default US, CA, GB, IE,
    /// DE, FR, NL, ES, IT, AU, NZ), else 422 `sms_country_not_allowed`.
    #[schema(example = "user@example.com")]
    pub destination: String,
    /// email, sms: the one-time code, 4–12 characters of `[a-z0-9]`. magic_link: the link
    /// token, 32–64 characters of `[A-Za-z0-9_-]`. Anything else: 422 `invalid_code`.
    #[schema(
        example = "a1b2c3",
        pattern = "^([a-z0-9]{4,12}|[A-Za-z0-9_-]{32,64})$"
    )]
    pub code: String,
    /// Accepted for compatibility but never displayed: messages show the project's registered name.
    pub project_name: Option<String>,
    /// magic_link only: link = `callback_url` + `?token=` (or `&token=`) + URL-encoded token.
    /// Must be http(s) with an origin allowed for the project.
    pub callback_url: Option<String>,
    /// magic_link only, used when `callback_url` is absent: a full link whose origin is allowed
    /// and whose single `token` query parameter equals `code`.
    pub link: Option<String>,
}

/// Answer of an accepted send.
#[derive(Debug, Serialize, ToSchema)]
pub struct SendResponse {
    /// Message id (`msg_…`).
    #[schema(example = "msg_3k9x0q2m5n7p1r4t6v8w0y2z")]
    pub id: String,
    /// `queued` for a new message; for an idempotent replay, the message's current status.
    #[schema(example = "queued")]
    pub status: String,
}

/// Delivery status of a message.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageResponse {
    /// Message id.
    pub id: String,
    /// `email`, `sms` or `magic_link`.
    pub channel: String,
    /// `queued`, `sent` or `failed`.
    pub status: String,
    /// Delivery attempts started.
    pub attempts: i64,
    /// The provider's reason of the last failure, or null. Credentials, keys and the
    /// destination are removed from it.
    pub error: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339, when the provider accepted it.
    pub sent_at: Option<String>,
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

impl From<Message> for MessageResponse {
    fn from(m: Message) -> Self {
        MessageResponse {
            status: m.status().as_str().to_owned(),
            id: m.id,
            channel: m.channel,
            attempts: m.attempts,
            error: m.last_error.as_deref().map(|e| scrub::scrub(e, &[])),
            created_at: rfc3339(m.created_at),
            sent_at: m.sent_at.map(rfc3339),
        }
    }
}

/// Queue a sign-in code or magic link for delivery.
///
/// Answers 202 once the message is durably written to the outbox; delivery happens in the
/// background (poll `GET /api/v1/messages/{id}`). With `Idempotency-Key`, a repeated request
/// returns the original message and never sends twice.
#[utoipa::path(
    post,
    path = "/api/v1/otp/send",
    tag = "delivery",
    request_body = SendBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "1–255 visible ASCII characters (else 400 `invalid_idempotency_key`); the same key from the same project returns the original message")),
    responses(
        (status = 202, description = "Queued", body = SendResponse),
        (status = 400, description = "Malformed JSON (`malformed_json`) or a bad `Idempotency-Key` (`invalid_idempotency_key`)", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked key (`invalid_api_key`)", body = ErrorBody),
        (status = 413, description = "Body over 16 KiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid request (`unknown_channel`, `invalid_destination`, `invalid_code`, `callback_not_allowed`, `callback_url_required`, `sms_country_not_allowed`, …)", body = ErrorBody),
        (status = 429, description = "Rate limited (`rate_limited`), see `Retry-After`", body = ErrorBody),
    ),
    security(("secret_key" = []))
)]
pub async fn send(
    State(state): State<AppState>,
    AuthProject(project): AuthProject,
    OptionalIdempotencyKey(idempotency_key): OptionalIdempotencyKey,
    SendJson(body): SendJson,
) -> Result<(StatusCode, Json<SendResponse>), ApiError> {
    let accepted = state
        .sender
        .send(&project, &body, idempotency_key.as_ref())
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(SendResponse {
            // A new message is reported `queued` even if a worker already sent it meanwhile.
            status: if accepted.replayed {
                accepted.message.status().as_str().to_owned()
            } else {
                "queued".to_owned()
            },
            id: accepted.message.id,
        }),
    ))
}

/// Delivery status of one of the project's messages.
#[utoipa::path(
    get,
    path = "/api/v1/messages/{id}",
    tag = "delivery",
    params(("id" = String, Path, description = "Message id: `msg_` and 24 characters of `[a-z0-9]`", pattern = "^msg_[a-z0-9]{24}$")),
    responses(
        (status = 200, description = "The message", body = MessageResponse),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
        (status = 404, description = "No such message in this project, or not a message id", body = ErrorBody),
    ),
    security(("secret_key" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    AuthProject(project): AuthProject,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<MessageResponse>, ApiError> {
    // Anything that is not one of our ids is simply not found; it never reaches SQL.
    let id = MessageId::parse(&id).ok_or_else(ApiError::not_found)?;
    let message = state.sender.status(&project, &id).await?;
    Ok(Json(message.into()))
}
