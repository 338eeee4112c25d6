//! The error responses of the API, described once and listed by each operation.

// These types only describe responses to utoipa: nothing builds or reads them.
#![allow(dead_code)]

use utoipa::IntoResponses;

use crate::api::error::ErrorBody;

/// Declares response types for utoipa, one refusal per entry: `Variant = status:
/// "description" => example body,`, the way the SDK's `rejected!` declares its own.
/// Each type's field is `(#[to_schema] ErrorBody)` to inline the `ErrorBody` schema, or
/// `(ErrorBody)` to name it by reference.
macro_rules! refusals {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident $field:tt {
            $($variant:ident = $status:literal: $description:literal => $example:tt,)+
        }
    )*) => {$(
        $(#[doc = $doc])*
        #[derive(IntoResponses)]
        pub enum $name {$(
            #[doc = concat!(stringify!($status), ": ", $description)]
            #[response(status = $status, description = $description, example = json!($example))]
            $variant $field,
        )+}
    )*};
}

refusals! {
    /// 401: no valid operator token.
    Unauthorized(#[to_schema] ErrorBody) {
        Refused = 401: "Missing, unknown or revoked operator token (`invalid_operator_token`)"
            => {"error": {"code": "invalid_operator_token", "message": "missing, unknown or revoked operator token: send `Authorization: Bearer vx_op_…` (create one in the console under API tokens)"}},
    }

    /// 403: the action needs the project's owner role.
    OwnersOnly(#[to_schema] ErrorBody) {
        Refused = 403: "The caller is a member, not an owner (`owners_only`)"
            => {"error": {"code": "owners_only", "message": "only the project's owners can manage keys, members, webhooks, test mode and deletion"}},
    }

    /// 404: no such project for this operator, or no such key or member.
    NotFound(#[to_schema] ErrorBody) {
        Refused = 404: "No such project among the caller's, or no such key or member (`not_found`)"
            => {"error": {"code": "not_found", "message": "no such resource"}},
    }

    /// 422: a field is invalid.
    Invalid(#[to_schema] ErrorBody) {
        Refused = 422: "A field is missing or invalid (`invalid_request`; the message names the fields)"
            => {"error": {"code": "invalid_request", "message": "name: must be 1 to 100 characters"}},
    }

    /// 400, 413, 415: the body is not a JSON document the server reads.
    BodyRejected(#[to_schema] ErrorBody) {
        Malformed = 400: "Malformed JSON (`malformed_json`)"
            => {"error": {"code": "malformed_json", "message": "malformed JSON: expected value at line 1 column 1"}},
        TooLarge = 413: "Body over 16 KiB (`payload_too_large`)"
            => {"error": {"code": "payload_too_large", "message": "the request body is over the 16 KiB limit"}},
        NotJson = 415: "Not `Content-Type: application/json` (`unsupported_media_type`)"
            => {"error": {"code": "unsupported_media_type", "message": "send the body as JSON with `Content-Type: application/json`"}},
    }

    /// 503: the database is unavailable.
    Unavailable(#[to_schema] ErrorBody) {
        Refused = 503: "Database unavailable (`storage_unavailable`); retry after `Retry-After` seconds"
            => {"error": {"code": "storage_unavailable", "message": "the database is unavailable; retry later"}},
    }

    // ---------------------------------------------------------------- delivery API
    // Unlike the management API's above, these answers name the `ErrorBody` schema by reference
    // (no `#[to_schema]`), as the delivery and webhook routes always have.

    /// 401: no valid secret key.
    InvalidApiKey(ErrorBody) {
        Refused = 401: "Missing, unknown or revoked key (`invalid_api_key`)"
            => {"error": {"code": "invalid_api_key", "message": "missing, unknown or revoked secret key: send `Authorization: Bearer vx_sec_…`"}},
    }

    /// What `POST /api/v1/otp/send` refuses, besides a missing key.
    SendRefused(ErrorBody) {
        Malformed = 400: "Malformed JSON (`malformed_json`) or an `Idempotency-Key` that is not 1–255 visible ASCII characters (`invalid_idempotency_key`)"
            => {"error": {"code": "malformed_json", "message": "malformed JSON: expected value at line 1 column 1"}},
        TooLarge = 413: "Body over 16 KiB (`payload_too_large`)"
            => {"error": {"code": "payload_too_large", "message": "the request body is over the 16 KiB limit"}},
        NotJson = 415: "Not `application/json` (`unsupported_media_type`)"
            => {"error": {"code": "unsupported_media_type", "message": "send the body as JSON with `Content-Type: application/json`"}},
        Invalid = 422: "Invalid request: `unknown_channel`, `invalid_destination`, `invalid_code`, `callback_not_allowed`, `callback_url_required`, `invalid_link`, `sms_country_not_allowed`, `invalid_locale`, `idempotency_key_reused` (the key was used for a different request), `invalid_request` (a missing field or a field of the wrong type)"
            => {"error": {"code": "invalid_destination", "message": "destination must be a plain email address such as user@example.com"}},
        RateLimited = 429: "Rate limited (`rate_limited`); retry after `Retry-After` seconds"
            => {"error": {"code": "rate_limited", "message": "too many messages (destination limit); retry after 60 seconds"}},
        Unavailable = 503: "Database unavailable (`storage_unavailable`) or too many requests in flight (`overloaded`); retry after `Retry-After` seconds"
            => {"error": {"code": "storage_unavailable", "message": "the message store is unavailable; retry later"}},
    }

    /// What `GET /api/v1/messages/{id}` refuses, besides a missing key.
    StatusRefused(ErrorBody) {
        NotFound = 404: "No such message in this project, or not a message id (`not_found`)"
            => {"error": {"code": "not_found", "message": "no such resource"}},
        Unavailable = 503: "Database unavailable (`storage_unavailable`) or too many requests in flight (`overloaded`); retry after `Retry-After` seconds"
            => {"error": {"code": "overloaded", "message": "too many requests in flight; retry in a moment"}},
    }

    // ---------------------------------------------------------------- provider webhooks

    /// 503: the database is unavailable; the provider retries.
    WebhookUnavailable(ErrorBody) {
        Refused = 503: "Database unavailable (`storage_unavailable`)"
            => {"error": {"code": "storage_unavailable", "message": "the database is unavailable; retry in a moment"}},
    }

    /// What `POST /webhooks/resend` refuses.
    ResendRefused(ErrorBody) {
        NotAnEvent = 400: "Signed, but not an event (`invalid_event`)"
            => {"error": {"code": "invalid_event", "message": "not a Resend event"}},
        Unsigned = 401: "Missing, wrong or expired signature (`invalid_signature`); a missing signature header is refused so even where the route is not configured"
            => {"error": {"code": "invalid_signature", "message": "webhook signature refused: signature mismatch"}},
        Unknown = 404: "Signed, but not configured here (`webhook_not_configured`), or no message with this provider id yet (`unknown_message`; the provider retries)"
            => {"error": {"code": "unknown_message", "message": "no message with this provider id"}},
    }

    /// What `POST /webhooks/twilio` refuses.
    TwilioRefused(ErrorBody) {
        NotAnEvent = 400: "Signed, but not a status callback (`invalid_event`)"
            => {"error": {"code": "invalid_event", "message": "no MessageSid"}},
        Unsigned = 401: "Missing or wrong signature (`invalid_signature`); a missing signature header is refused so even where the route is not configured"
            => {"error": {"code": "invalid_signature", "message": "webhook signature refused: signature mismatch"}},
        Unknown = 404: "Signed, but not configured here (`webhook_not_configured`), or no message with this SID yet (`unknown_message`)"
            => {"error": {"code": "webhook_not_configured", "message": "Twilio status webhooks are not configured on this server"}},
    }
}
