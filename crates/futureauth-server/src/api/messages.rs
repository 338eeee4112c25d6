//! `POST /api/v1/otp/send` and `GET /api/v1/messages/{id}`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use tracing::Instrument;
use utoipa::ToSchema;

use super::docs::errors;
use super::error::ApiError;
use super::extract::{ApiPath, AuthProject, OptionalIdempotencyKey, SendJson};
use super::AppState;
use crate::clock::UnixMillis;
use crate::provider::scrub;
use crate::service::send::SendRequest;
use crate::service::MessageId;
use crate::store::{Message, MessageEvent, MessageStatus};

/// Body of `POST /api/v1/otp/send`: what the futureauth SDKs send (every version since 0.4).
/// Unknown fields are ignored. The service relays nothing but a code, a link token or a
/// masked address, so a leaked key cannot send free text.
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
    /// token, 32–64 characters of `[A-Za-z0-9_-]`. An `address_change_notice`: the empty
    /// string (a notice carries no code). Anything else: 422 `invalid_code`.
    #[schema(
        example = "a1b2c3",
        pattern = "^([a-z0-9]{4,12}|[A-Za-z0-9_-]{32,64}|)$"
    )]
    pub code: String,
    /// Accepted for compatibility but never displayed: messages show the project's registered name.
    #[schema(example = "Acme")]
    pub project_name: Option<String>,
    /// magic_link only: link = `callback_url` + `?token=` (or `&token=`) + URL-encoded token.
    /// Must be http(s) with an origin allowed for the project.
    #[schema(example = "https://app.example.com/auth/callback")]
    pub callback_url: Option<String>,
    /// magic_link only, used when `callback_url` is absent: a full link whose origin is allowed
    /// and whose single `token` query parameter equals `code`.
    #[schema(example = "https://app.example.com/auth/callback?token=Zk3v9Qw2Lm8Rt5Yx1Cb7Np4H")]
    pub link: Option<String>,
    /// The recipient's language as a BCP 47 tag (e.g. from `Accept-Language`): the exact
    /// translation, else its base language, else English. Absent (older clients) = English.
    #[schema(
        example = "de-AT",
        min_length = 1,
        max_length = 35,
        pattern = r"^[A-Za-z][A-Za-z0-9_-]*$"
    )]
    pub locale: Option<String>,
    /// Why the message is sent, which decides its wording. Absent (0.4/0.5 clients) or
    /// `sign_in`: a sign-in code or link. `confirm_address` (email or sms): a code to a new
    /// address a signed-in user asked to change to, worded as confirming it.
    /// `address_change_notice` (email or sms): a notice to the user's current address that
    /// a new address was asked for, with an empty `code` and the new address masked in
    /// `new_address`; it has no code and nothing to click. A notice with a code, or a code
    /// message without one: 422 `invalid_code`; a purpose on the wrong channel: 422
    /// `invalid_request`. A project's own templates apply to sign-in messages only.
    #[schema(example = "confirm_address")]
    pub purpose: Option<SendPurpose>,
    /// `address_change_notice` only (else 422 `invalid_request`), and required there: the
    /// new address masked as the futureauth SDK writes it, `a***@example.com` (a letter,
    /// digit or `*`, `***@`, the domain) or `+44 ****** 789` (`+`, the country calling
    /// code, six stars, the last three digits). Nothing else is accepted, so no free text
    /// rides in a notice.
    #[schema(example = "a***@example.com", max_length = 260)]
    pub new_address: Option<String>,
}

/// The `purpose` of a send (see [`SendBody::purpose`]).
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // Documentation only: parsed as `futureauth_proto::Purpose`.
pub enum SendPurpose {
    /// A sign-in code or magic link (the default).
    SignIn,
    /// A code that confirms a new address.
    ConfirmAddress,
    /// A notice to the current address; no code.
    AddressChangeNotice,
}

/// Answer of an accepted send.
#[derive(Debug, Serialize, ToSchema)]
pub struct SendResponse {
    /// Message id (`msg_…`).
    #[schema(example = "msg_3k9x0q2m5n7p1r4t6v8w0y2z")]
    pub id: String,
    /// `queued` for a new message (`test` for a test destination of the project's test
    /// mode: never sent); for an idempotent replay, the message's current status.
    #[schema(example = "queued")]
    pub status: String,
    /// Only for a code to a test destination: the project's fixed test code, which the
    /// caller stores instead of the code it sent (the futureauth 0.6 SDK does), so that the
    /// test account signs in with it. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "424242")]
    pub test_code: Option<String>,
}

/// Delivery status of a message.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageResponse {
    /// Message id.
    #[schema(example = "msg_3k9x0q2m5n7p1r4t6v8w0y2z")]
    pub id: String,
    /// `email`, `sms` or `magic_link`.
    #[schema(example = "email")]
    pub channel: String,
    /// `queued`, then `sent` (the provider accepted it) or `failed` (we gave up); after
    /// `sent`, the provider's status webhooks move it on to `delivered`, `undelivered`,
    /// `bounced` or `complained` (marked as spam). It never moves back.
    #[schema(example = "delivered")]
    pub status: String,
    /// The provider's reason for the latest state after `sent` (bounce type, carrier
    /// error), or null.
    #[schema(example = "Permanent/General Mailbox does not exist")]
    pub status_reason: Option<String>,
    /// Delivery attempts started.
    #[schema(example = 1)]
    pub attempts: i64,
    /// The provider's reason of the last failure, or null. Credentials, keys and the
    /// destination are removed from it.
    #[schema(example = "resend: 422 invalid `to` address")]
    pub error: Option<String>,
    /// When the message was accepted, RFC 3339.
    #[schema(example = "2026-11-28T19:20:00.000Z")]
    pub created_at: String,
    /// RFC 3339, when the provider accepted it.
    #[schema(example = "2026-11-28T19:20:01.250Z")]
    pub sent_at: Option<String>,
    /// What the provider reported after accepting it, in the order it happened (also
    /// events that came late and so did not move `status`).
    pub events: Vec<MessageEventView>,
}

/// One provider status event of a message.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageEventView {
    /// `resend` or `twilio`.
    #[schema(example = "resend")]
    pub provider: String,
    /// The state it reported: `sent`, `delivered`, `undelivered`, `bounced` or `complained`.
    #[schema(example = "delivered")]
    pub state: String,
    /// The provider's reason, if any (bounce type, carrier error).
    #[schema(example = "Twilio error 30003: Unreachable destination handset")]
    pub reason: Option<String>,
    /// When it happened (the provider's time), RFC 3339.
    #[schema(example = "2026-11-28T19:20:03.000Z")]
    pub at: String,
}

impl From<MessageEvent> for MessageEventView {
    fn from(e: MessageEvent) -> Self {
        MessageEventView {
            provider: e.provider,
            state: e.state,
            reason: e.reason,
            at: e.occurred_at.to_rfc3339(),
        }
    }
}

impl From<Message> for MessageResponse {
    fn from(m: Message) -> Self {
        MessageResponse {
            status: m.status.as_str().to_owned(),
            id: m.id,
            channel: m.channel.to_string(),
            attempts: m.attempts,
            error: m.last_error.as_deref().map(|e| scrub::scrub(e, &[])),
            created_at: m.created_at.to_rfc3339(),
            sent_at: m.sent_at.map(UnixMillis::to_rfc3339),
            status_reason: m.status_reason,
            events: Vec::new(),
        }
    }
}

/// Queue a sign-in code or magic link for delivery.
///
/// Answers 202 once the message is durably written to the outbox; delivery happens in the
/// background (poll `GET /api/v1/messages/{id}`). With `Idempotency-Key`, a repeated request
/// returns the original message and never sends twice.
#[utoipa::path(post, path = "/api/v1/otp/send", tag = "delivery", security(("secret_key" = [])),
    request_body = SendBody,
    params(("Idempotency-Key" = Option<String>, Header,
        description = "1–255 visible ASCII characters (0x21–0x7E); the same key from the same project returns the original message and never sends twice",
        min_length = 1, max_length = 255, pattern = r"^[\x21-\x7E]+$", example = "signin-7f3a9c2e")),
    responses((status = 202, description = "Queued: durably written to the outbox", body = SendResponse), errors::InvalidApiKey, errors::SendRefused))]
pub async fn send(
    State(state): State<AppState>,
    AuthProject(project): AuthProject,
    OptionalIdempotencyKey(idempotency_key): OptionalIdempotencyKey,
    SendJson(body): SendJson,
) -> Result<(StatusCode, Json<SendResponse>), ApiError> {
    let span = tracing::info_span!("accept", project = %project.id, id = tracing::field::Empty);
    let request = SendRequest::parse(&project, &body)?;
    let accepted = state
        .sender
        .send(&project, &request, idempotency_key.as_ref())
        .instrument(span.clone())
        .await?;
    span.record("id", accepted.message.id.as_str());
    if !accepted.replayed {
        crate::metrics::accepted(accepted.message.channel);
        span.in_scope(|| tracing::info!(id = %accepted.message.id, "message accepted"));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(SendResponse {
            // A new message is reported `queued` even if a worker already sent it meanwhile.
            status: if accepted.replayed || accepted.message.status == MessageStatus::Test {
                accepted.message.status.as_str().to_owned()
            } else {
                "queued".to_owned()
            },
            test_code: accepted.test_code,
            id: accepted.message.id,
        }),
    ))
}

/// Delivery status of one of the project's messages.
///
/// `status` is `queued` until a provider accepts the message (`sent`) or delivery gives up
/// (`failed`, with the provider's reason in `error`); then the provider's status webhooks
/// move it on (`delivered`, `undelivered`, `bounced`, `complained`), listed in `events`.
#[utoipa::path(get, path = "/api/v1/messages/{id}", tag = "delivery", security(("secret_key" = [])),
    params(("id" = String, Path, description = "Message id: `msg_` and 24 characters of `[a-z0-9]`; anything else is 404", pattern = "^msg_[a-z0-9]{24}$", example = "msg_3k9x0q2m5n7p1r4t6v8w0y2z")),
    responses((status = 200, description = "The message and its delivery status", body = MessageResponse), errors::InvalidApiKey, errors::StatusRefused))]
pub async fn get(
    State(state): State<AppState>,
    AuthProject(project): AuthProject,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<MessageResponse>, ApiError> {
    // Anything that is not one of our ids is simply not found; it never reaches SQL.
    let id = MessageId::parse(&id).ok_or_else(ApiError::not_found)?;
    let message = state.sender.status(&project, &id).await?;
    let events = state
        .store
        .message_events(&message.id)
        .await
        .map_err(crate::error::ServiceError::from)?;
    let mut view = MessageResponse::from(message);
    view.events = events.into_iter().map(MessageEventView::from).collect();
    Ok(Json(view))
}
