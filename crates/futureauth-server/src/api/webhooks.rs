//! Provider status webhooks: `POST /webhooks/resend` (Svix-signed JSON) and
//! `POST /webhooks/twilio` (`X-Twilio-Signature` over our public URL and the form fields).
//!
//! Nothing here trusts the request until its signature checks out against a secret from
//! configuration; the URL Twilio signs is the configured public URL, never one rebuilt from
//! `Host` or `X-Forwarded-*`. An event for a message we don't know (yet) answers 404, so the
//! provider delivers it again later: its acceptance may still be on its way to our database.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::{IntoResponses, ToSchema};

use super::docs::errors;
use super::error::ApiError;
use super::AppState;
use crate::clock::UnixMillis;
use crate::error::ErrorCode;
use crate::metrics;
use crate::service::provider_events::{self, BadEvent, Parsed};
use crate::signature::{verify_twilio, SignatureError};
use crate::store::{EventRecorded, ProviderEvent};

/// What a webhook did.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookResponse {
    /// `recorded` (a new event; the message moved on, or keeps a later state), `duplicate`
    /// (this event was recorded before) or `ignored` (a kind of event that moves no state).
    #[schema(example = "recorded")]
    pub result: &'static str,
}

/// 200: the answer of every verified event.
#[derive(IntoResponses)]
#[response(status = 200, description = "Recorded, duplicate or ignored")]
#[allow(dead_code)] // Documentation only: `answer` builds the response.
pub struct Acknowledged(WebhookResponse);

/// The fields of Twilio's status callback that the server reads (form-encoded; Twilio sends
/// more, and its signature covers them all). Documentation only: the body is parsed as a
/// form after the signature check.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct TwilioStatusForm {
    /// The message's SID, as Twilio answered the send.
    #[serde(rename = "MessageSid")]
    #[schema(example = "SM1f0e8ae6ade43cb3c0ce4525424e404f")]
    pub message_sid: String,
    /// `queued`, `sent`, `delivered`, `read`, `undelivered`, `failed`, …
    #[serde(rename = "MessageStatus")]
    #[schema(example = "delivered")]
    pub message_status: String,
    /// Twilio's error code of an undelivered or failed message.
    #[serde(rename = "ErrorCode")]
    #[schema(example = "30003")]
    pub error_code: Option<String>,
}

fn not_configured(what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::WebhookNotConfigured,
        format!("{what} status webhooks are not configured on this server"),
    )
}

fn refused(e: SignatureError) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidSignature,
        format!("webhook signature refused: {e}"),
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The route's verification settings, once the request carries the signature headers
/// `names`: 401 when one is absent, checked before whether the route is configured (so a
/// request without them is refused alike on every server, as the OpenAPI document says),
/// then 404 when this server takes no status webhooks from `provider`.
fn configured<'a, T>(
    settings: &'a Option<T>,
    provider: &str,
    headers: &HeaderMap,
    names: &[&str],
) -> Result<&'a T, ApiError> {
    if let Some(missing) = names.iter().find(|n| header(headers, n).is_none()) {
        return Err(ApiError::new(
            ErrorCode::InvalidSignature,
            format!("webhook signature refused: no {missing} header"),
        ));
    }
    settings.as_ref().ok_or_else(|| not_configured(provider))
}

/// Receive a Resend status event.
///
/// Verified with `RESEND_WEBHOOK_SECRET` (Svix: `svix-id`, `svix-timestamp` within 5
/// minutes, `svix-signature`). `email.sent`, `email.delivered`, `email.bounced`,
/// `email.complained` and `email.failed` move the message (never back); others are
/// acknowledged and ignored.
#[utoipa::path(post, path = "/webhooks/resend", tag = "webhooks",
    responses(Acknowledged, errors::ResendRefused, errors::WebhookUnavailable),
    request_body(content = String, content_type = "application/json",
        description = "A Resend webhook event", example = json!({"type": "email.delivered", "created_at": "2026-11-29T01:00:00.000Z", "data": {"email_id": "4ef9a417-02e9-4d39-ad75-9611e0fcc33c"}})),
    params(
        ("svix-id" = String, Header, description = "The event's id", example = "msg_p5jXN8AQM9LWM0D4loKWxJek"),
        ("svix-timestamp" = String, Header, description = "Unix seconds; refused beyond 5 minutes from now", example = "1795914000"),
        ("svix-signature" = String, Header, description = "Space-separated `v1,<base64 HMAC-SHA256>`", example = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
    )
)]
pub async fn resend(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let svix = ["svix-id", "svix-timestamp", "svix-signature"];
    let secret = configured(&state.webhooks.resend, "Resend", &headers, &svix)?;
    let id = header(&headers, "svix-id");
    secret
        .verify(
            id,
            header(&headers, "svix-timestamp"),
            header(&headers, "svix-signature"),
            &body,
            UnixMillis::now().as_secs(),
        )
        .map_err(refused)?;
    let parsed = provider_events::resend(&body, id.unwrap_or_default(), UnixMillis::now());
    record(&state, parsed).await
}

/// Receive a Twilio status callback.
///
/// Verified with the Twilio auth token over `<FUTUREAUTH_PUBLIC_URL>/webhooks/twilio` and the
/// form fields (`X-Twilio-Signature`). `sent`, `delivered`/`read`, `undelivered`/`failed`
/// move the message (never back); earlier statuses are acknowledged and ignored.
#[utoipa::path(post, path = "/webhooks/twilio", tag = "webhooks",
    responses(Acknowledged, errors::TwilioRefused, errors::WebhookUnavailable),
    request_body(content = TwilioStatusForm, content_type = "application/x-www-form-urlencoded",
        description = "Twilio's status callback fields (Twilio sends more; all are signed)"),
    params(("X-Twilio-Signature" = String, Header, description = "Base64 HMAC-SHA1 of the URL and the sorted fields", example = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="))
)]
pub async fn twilio(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let hook = configured(
        &state.webhooks.twilio,
        "Twilio",
        &headers,
        &["x-twilio-signature"],
    )?;
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    verify_twilio(
        hook.auth_token.expose_secret(),
        &hook.url,
        &fields,
        header(&headers, "x-twilio-signature"),
    )
    .map_err(refused)?;
    record(&state, provider_events::twilio(&fields, UnixMillis::now())).await
}

/// Records a verified request's event: 400 `invalid_event` when it is none, 404
/// `unknown_message` when its message is not known (yet).
async fn record(state: &AppState, parsed: Result<Parsed, BadEvent>) -> Result<Response, ApiError> {
    let parsed = parsed.map_err(|e| ApiError::new(ErrorCode::InvalidEvent, e.to_string()))?;
    let event: ProviderEvent = match parsed {
        Parsed::Event(event) => event,
        Parsed::Ignored => return Ok(answer("ignored")),
    };
    let (id, recorded) = provider_events::record(&state.store, &event, UnixMillis::now()).await?;
    tracing::info!(
        message = id.as_deref().unwrap_or("-"),
        provider = event.provider,
        state = event.state.as_str(),
        ?recorded,
        "provider status event"
    );
    match recorded {
        EventRecorded::Moved | EventRecorded::Kept => {
            metrics::provider_event(event.provider, event.state.as_str());
            Ok(answer("recorded"))
        }
        EventRecorded::Duplicate => Ok(answer("duplicate")),
        EventRecorded::UnknownMessage => Err(ApiError::new(
            ErrorCode::UnknownMessage,
            "no message with this provider id",
        )),
    }
}

fn answer(result: &'static str) -> Response {
    (StatusCode::OK, Json(WebhookResponse { result })).into_response()
}
