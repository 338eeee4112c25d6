//! The shapes of what [`auth_router`](super::auth_router)'s routes answer (feature
//! `openapi`), as the OpenAPI document describes them: the handlers build their answers
//! with `json!`, so these types are read by the document only, hence no reader. Their own
//! module so that the router (which names them on each route) and the document (which
//! lists the routes) both look down at them, not at each other.
#![allow(dead_code)]

use utoipa::{IntoResponses, ToSchema};

use crate::model::{Session, User};

/// `{"error": {"code", "message"}}`: the envelope the server answers with too.
pub(super) use futureauth_proto::ErrorBody;

/// `{"ok": true}`.
#[derive(ToSchema)]
pub(super) struct Ok {
    /// Always `true`.
    #[schema(example = true)]
    ok: bool,
}

/// `{"ok": true, "revoked": n}`.
#[derive(ToSchema)]
pub(super) struct Revoked {
    /// Always `true`.
    #[schema(example = true)]
    ok: bool,
    /// How many sessions were signed out.
    #[schema(example = 3)]
    revoked: u64,
}

/// `{"ok": true, "match_number": "42"}`: a link was sent.
#[derive(ToSchema)]
pub(super) struct LinkSent {
    /// Always `true`.
    #[schema(example = true)]
    ok: bool,
    /// Show it: whoever opens the link on another device types it to sign this browser in.
    /// `null` for clients without the binding cookie.
    #[schema(example = "42")]
    match_number: Option<String>,
}

/// What `magic-link-status` answers.
#[derive(ToSchema)]
pub(super) struct LinkStatusBody {
    /// `waiting`, `signed_in` or `none`.
    #[schema(example = "waiting")]
    status: String,
    /// With `waiting`: the number to show.
    #[schema(example = "42")]
    match_number: Option<String>,
    /// With `signed_in`.
    user: Option<User>,
    /// With `signed_in` (the session cookie is set too).
    session: Option<Session>,
}

/// The signed-in user and the session.
#[derive(ToSchema)]
pub(super) struct SignedIn {
    user: User,
    session: Session,
}

/// `{"user": ...}`.
#[derive(ToSchema)]
pub(super) struct UserBody {
    user: User,
}

/// A session as listed, with whether it is the caller's own.
#[derive(ToSchema)]
pub(super) struct ListedSession {
    #[schema(inline)]
    #[serde(flatten)]
    session: Session,
    /// True for the session making this request.
    current: bool,
}

/// `{"sessions": [...]}`, newest first.
#[derive(ToSchema)]
pub(super) struct SessionList {
    sessions: Vec<ListedSession>,
}

/// `{"passkey": {...}}`: a passkey added or renamed.
#[cfg(feature = "passkeys")]
#[derive(ToSchema)]
pub(super) struct PasskeyAdded {
    passkey: crate::Passkey,
}

/// `{"passkeys": [...]}`, oldest first.
#[cfg(feature = "passkeys")]
#[derive(ToSchema)]
pub(super) struct PasskeyList {
    passkeys: Vec<crate::Passkey>,
}

/// The refusals every route may answer with.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub(super) enum Rejected {
    /// 400.
    #[response(
        status = 400,
        description = "Malformed JSON, or a wrong, expired or used code or link (`malformed_json`, `invalid_code`, `code_expired`, `too_many_attempts`, `invalid_magic_link`, `magic_link_expired`), or a passkey answer that is refused or whose challenge is not this browser's, used or expired (`passkey_rejected`, `passkey_challenge_invalid`)"
    )]
    BadRequest(#[to_schema] ErrorBody),
    /// 401.
    #[response(
        status = 401,
        description = "Not signed in, or the session has ended (`unauthorized`)"
    )]
    Unauthorized(#[to_schema] ErrorBody),
    /// 403.
    #[response(
        status = 403,
        description = "A cross-site browser request (`cross_site_request`), a link of another browser where same-browser links are required (`magic_link_other_browser`), a wrong approval number (`magic_link_number_mismatch`), a disabled account (`user_disabled`), a sign-in too old for deleting the account (`reauthentication_required`), or a send the app's hook refused (`send_refused` or the app's own code)"
    )]
    Forbidden(#[to_schema] ErrorBody),
    /// 404.
    #[response(
        status = 404,
        description = "No such session or passkey of this user (`session_not_found`, `passkey_not_found`)"
    )]
    NotFound(#[to_schema] ErrorBody),
    /// 409.
    #[response(
        status = 409,
        description = "The account's only address cannot be removed (`last_identifier`), or the verified new address belongs to another account (`identifier_taken`)"
    )]
    Conflict(#[to_schema] ErrorBody),
    /// 413.
    #[response(status = 413, description = "Body over 16 KiB (`payload_too_large`)")]
    TooLarge(#[to_schema] ErrorBody),
    /// 415.
    #[response(
        status = 415,
        description = "Not `Content-Type: application/json` (`unsupported_media_type`)"
    )]
    MediaType(#[to_schema] ErrorBody),
    /// 422.
    #[response(
        status = 422,
        description = "A missing or invalid field, email, phone or callback (`invalid_request`, `invalid_email`, `invalid_phone`, `callback_not_allowed`)"
    )]
    Invalid(#[to_schema] ErrorBody),
    /// 429.
    #[response(
        status = 429,
        description = "Rate limited (`rate_limited`); `Retry-After` says when to retry"
    )]
    RateLimited(#[to_schema] ErrorBody),
    /// 502.
    #[response(
        status = 502,
        description = "The code or link could not be delivered (`delivery_failed`)"
    )]
    Delivery(#[to_schema] ErrorBody),
    /// 503.
    #[response(
        status = 503,
        description = "The database is unavailable (`unavailable`); `Retry-After` says when to retry"
    )]
    Unavailable(#[to_schema] ErrorBody),
}
