//! The error responses of the API, described once and listed by each operation.

// These types only describe responses to utoipa: nothing builds or reads them.
#![allow(dead_code)]

use utoipa::IntoResponses;

use crate::api::error::ErrorBody;

/// 401: no valid operator token.
#[derive(IntoResponses)]
#[response(status = 401, description = "Missing, unknown or revoked operator token (`invalid_operator_token`)",
    example = json!({"error": {"code": "invalid_operator_token", "message": "missing, unknown or revoked operator token: send `Authorization: Bearer vx_op_…` (create one in the console under API tokens)"}}))]
pub struct Unauthorized(#[to_schema] pub ErrorBody);

/// 403: the action needs the project's owner role.
#[derive(IntoResponses)]
#[response(status = 403, description = "The caller is a member, not an owner (`owners_only`)",
    example = json!({"error": {"code": "owners_only", "message": "only the project's owners can manage keys, members, webhooks, test mode and deletion"}}))]
pub struct OwnersOnly(#[to_schema] pub ErrorBody);

/// 404: no such project for this operator, or no such key or member.
#[derive(IntoResponses)]
#[response(status = 404, description = "No such project among the caller's, or no such key or member (`not_found`)",
    example = json!({"error": {"code": "not_found", "message": "no such resource"}}))]
pub struct NotFound(#[to_schema] pub ErrorBody);

/// 422: a field is invalid.
#[derive(IntoResponses)]
#[response(status = 422, description = "A field is missing or invalid (`invalid_request`; the message names the fields)",
    example = json!({"error": {"code": "invalid_request", "message": "name: must be 1 to 100 characters"}}))]
pub struct Invalid(#[to_schema] pub ErrorBody);

/// 400, 413, 415: the body is not a JSON document the server reads.
#[derive(IntoResponses)]
pub enum BodyRejected {
    /// 400: not valid JSON.
    #[response(status = 400, description = "Malformed JSON (`malformed_json`)",
        example = json!({"error": {"code": "malformed_json", "message": "malformed JSON: expected value at line 1 column 1"}}))]
    Malformed(#[to_schema] ErrorBody),
    /// 413: over the body limit.
    #[response(status = 413, description = "Body over 16 KiB (`payload_too_large`)",
        example = json!({"error": {"code": "payload_too_large", "message": "the request body is over the 16 KiB limit"}}))]
    TooLarge(#[to_schema] ErrorBody),
    /// 415: not `application/json`.
    #[response(status = 415, description = "Not `Content-Type: application/json` (`unsupported_media_type`)",
        example = json!({"error": {"code": "unsupported_media_type", "message": "send the body as JSON with `Content-Type: application/json`"}}))]
    NotJson(#[to_schema] ErrorBody),
}

/// 503: the database is unavailable.
#[derive(IntoResponses)]
#[response(status = 503, description = "Database unavailable (`storage_unavailable`); retry after `Retry-After` seconds",
    example = json!({"error": {"code": "storage_unavailable", "message": "the database is unavailable; retry later"}}))]
pub struct Unavailable(#[to_schema] pub ErrorBody);

// ---------------------------------------------------------------- delivery API
// Unlike the management API's above, these answers name the `ErrorBody` schema by reference
// (no `#[to_schema]`), as the delivery and webhook routes always have.

/// 401: no valid secret key.
#[derive(IntoResponses)]
#[response(status = 401, description = "Missing, unknown or revoked key (`invalid_api_key`)",
    example = json!({"error": {"code": "invalid_api_key", "message": "missing, unknown or revoked secret key: send `Authorization: Bearer vx_sec_…`"}}))]
pub struct InvalidApiKey(pub ErrorBody);

/// What `POST /api/v1/otp/send` refuses, besides a missing key.
#[derive(IntoResponses)]
pub enum SendRefused {
    /// 400: not JSON, or a bad `Idempotency-Key`.
    #[response(status = 400, description = "Malformed JSON (`malformed_json`) or an `Idempotency-Key` that is not 1–255 visible ASCII characters (`invalid_idempotency_key`)",
        example = json!({"error": {"code": "malformed_json", "message": "malformed JSON: expected value at line 1 column 1"}}))]
    Malformed(ErrorBody),
    /// 413: over the body limit.
    #[response(status = 413, description = "Body over 16 KiB (`payload_too_large`)",
        example = json!({"error": {"code": "payload_too_large", "message": "the request body is over the 16 KiB limit"}}))]
    TooLarge(ErrorBody),
    /// 415: not `application/json`.
    #[response(status = 415, description = "Not `application/json` (`unsupported_media_type`)",
        example = json!({"error": {"code": "unsupported_media_type", "message": "send the body as JSON with `Content-Type: application/json`"}}))]
    NotJson(ErrorBody),
    /// 422: a field is invalid.
    #[response(status = 422, description = "Invalid request: `unknown_channel`, `invalid_destination`, `invalid_code`, `callback_not_allowed`, `callback_url_required`, `invalid_link`, `sms_country_not_allowed`, `invalid_locale`, `idempotency_key_reused` (the key was used for a different request), `invalid_request` (a missing field or a field of the wrong type)",
        example = json!({"error": {"code": "invalid_destination", "message": "destination must be a plain email address such as user@example.com"}}))]
    Invalid(ErrorBody),
    /// 429: over a rate limit.
    #[response(status = 429, description = "Rate limited (`rate_limited`); retry after `Retry-After` seconds",
        example = json!({"error": {"code": "rate_limited", "message": "too many messages (destination limit); retry after 60 seconds"}}))]
    RateLimited(ErrorBody),
    /// 503: the database or the capacity is missing for now.
    #[response(status = 503, description = "Database unavailable (`storage_unavailable`) or too many requests in flight (`overloaded`); retry after `Retry-After` seconds",
        example = json!({"error": {"code": "storage_unavailable", "message": "the message store is unavailable; retry later"}}))]
    Unavailable(ErrorBody),
}

/// What `GET /api/v1/messages/{id}` refuses, besides a missing key.
#[derive(IntoResponses)]
pub enum StatusRefused {
    /// 404: no such message in the project.
    #[response(status = 404, description = "No such message in this project, or not a message id (`not_found`)",
        example = json!({"error": {"code": "not_found", "message": "no such resource"}}))]
    NotFound(ErrorBody),
    /// 503: the database or the capacity is missing for now.
    #[response(status = 503, description = "Database unavailable (`storage_unavailable`) or too many requests in flight (`overloaded`); retry after `Retry-After` seconds",
        example = json!({"error": {"code": "overloaded", "message": "too many requests in flight; retry in a moment"}}))]
    Unavailable(ErrorBody),
}

// ---------------------------------------------------------------- provider webhooks

/// 503: the database is unavailable; the provider retries.
#[derive(IntoResponses)]
#[response(status = 503, description = "Database unavailable (`storage_unavailable`)",
    example = json!({"error": {"code": "storage_unavailable", "message": "the database is unavailable; retry in a moment"}}))]
pub struct WebhookUnavailable(pub ErrorBody);

/// What `POST /webhooks/resend` refuses.
#[derive(IntoResponses)]
pub enum ResendRefused {
    /// 400: signed, but not an event.
    #[response(status = 400, description = "Signed, but not an event (`invalid_event`)",
        example = json!({"error": {"code": "invalid_event", "message": "not a Resend event"}}))]
    NotAnEvent(ErrorBody),
    /// 401: the signature is missing, wrong or expired.
    #[response(status = 401, description = "Missing, wrong or expired signature (`invalid_signature`); a missing signature header is refused so even where the route is not configured",
        example = json!({"error": {"code": "invalid_signature", "message": "webhook signature refused: signature mismatch"}}))]
    Unsigned(ErrorBody),
    /// 404: not configured here, or the message is not known yet.
    #[response(status = 404, description = "Signed, but not configured here (`webhook_not_configured`), or no message with this provider id yet (`unknown_message`; the provider retries)",
        example = json!({"error": {"code": "unknown_message", "message": "no message with this provider id"}}))]
    Unknown(ErrorBody),
}

/// What `POST /webhooks/twilio` refuses.
#[derive(IntoResponses)]
pub enum TwilioRefused {
    /// 400: signed, but not a status callback.
    #[response(status = 400, description = "Signed, but not a status callback (`invalid_event`)",
        example = json!({"error": {"code": "invalid_event", "message": "no MessageSid"}}))]
    NotAnEvent(ErrorBody),
    /// 401: the signature is missing or wrong.
    #[response(status = 401, description = "Missing or wrong signature (`invalid_signature`); a missing signature header is refused so even where the route is not configured",
        example = json!({"error": {"code": "invalid_signature", "message": "webhook signature refused: signature mismatch"}}))]
    Unsigned(ErrorBody),
    /// 404: not configured here, or the message is not known yet.
    #[response(status = 404, description = "Signed, but not configured here (`webhook_not_configured`), or no message with this SID yet (`unknown_message`)",
        example = json!({"error": {"code": "webhook_not_configured", "message": "Twilio status webhooks are not configured on this server"}}))]
    Unknown(ErrorBody),
}
