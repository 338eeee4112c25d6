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

/// Declares [`Rejected`]: one variant a status, each answered with an [`ErrorBody`] and
/// described as given (the error codes it may carry, in backticks).
macro_rules! rejected {
    ($($variant:ident = $status:literal: $description:literal,)*) => {
        /// The refusals every route may answer with.
        #[derive(IntoResponses)]
        pub(super) enum Rejected {
            $(
                #[doc = concat!(stringify!($status), ".")]
                #[response(status = $status, description = $description)]
                $variant(#[to_schema] ErrorBody),
            )*
        }
    };
}

rejected! {
    BadRequest = 400: "Malformed JSON, or a wrong, expired or used code or link (`malformed_json`, `invalid_code`, `code_expired`, `too_many_attempts`, `invalid_magic_link`, `magic_link_expired`), or a passkey answer that is refused or whose challenge is not this browser's, used or expired (`passkey_rejected`, `passkey_challenge_invalid`)",
    Unauthorized = 401: "Not signed in, or the session has ended (`unauthorized`)",
    Forbidden = 403: "A cross-site browser request (`cross_site_request`), a link of another browser where same-browser links are required (`magic_link_other_browser`), a wrong approval number (`magic_link_number_mismatch`), a disabled account (`user_disabled`), a sign-in too old for deleting the account (`reauthentication_required`), or a send the app's hook refused (`send_refused` or the app's own code)",
    NotFound = 404: "No such session or passkey of this user (`session_not_found`, `passkey_not_found`)",
    Conflict = 409: "The account's only address cannot be removed (`last_identifier`), or the verified new address belongs to another account (`identifier_taken`)",
    TooLarge = 413: "Body over 16 KiB (`payload_too_large`)",
    MediaType = 415: "Not `Content-Type: application/json` (`unsupported_media_type`)",
    Invalid = 422: "A missing or invalid field, email, phone or callback (`invalid_request`, `invalid_email`, `invalid_phone`, `callback_not_allowed`)",
    RateLimited = 429: "Rate limited (`rate_limited`); `Retry-After` says when to retry",
    Delivery = 502: "The code or link could not be delivered (`delivery_failed`)",
    Unavailable = 503: "The database is unavailable (`unavailable`); `Retry-After` says when to retry",
}
