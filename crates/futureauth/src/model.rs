//! The records FutureAuth keeps in your database.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A person who signed in at least once, by email or phone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    /// Random, URL-safe identifier.
    pub id: String,
    /// Normalised (trimmed, lower-case) email, if the user signed in by email.
    pub email: Option<String>,
    /// E.164 phone number, if the user signed in by phone.
    pub phone_number: Option<String>,
    /// Display name; empty until your app sets it.
    pub name: String,
    /// True once a code or link sent to `email` was used.
    pub email_verified: bool,
    /// True once a code sent to `phone_number` was used.
    pub phone_number_verified: bool,
    /// Free-form JSON owned by your app.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: serde_json::Value,
    /// When the user first signed in.
    pub created_at: DateTime<Utc>,
    /// Last change to this record.
    pub updated_at: DateTime<Utc>,
}

/// A signed-in device or browser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Session {
    /// Public identifier of the session (safe to show, e.g. in a device list).
    pub id: String,
    /// The user this session belongs to.
    pub user_id: String,
    /// The secret bearer token. Only filled right after sign-in (put it in the cookie);
    /// it is never stored (only its hash is) and never serialised.
    #[serde(skip)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub token: String,
    /// When the session stops working unless it is used again (sliding expiry).
    pub expires_at: DateTime<Utc>,
    /// Client IP at sign-in, if known.
    pub ip_address: Option<String>,
    /// Client `User-Agent` at sign-in, if known.
    pub user_agent: Option<String>,
    /// When the user signed in.
    pub created_at: DateTime<Utc>,
    /// How the user proved who they are when this session was opened; `None` for sessions
    /// opened before futureauth recorded it.
    #[serde(default)]
    pub auth_method: Option<AuthMethod>,
    /// When the user last proved who they are in this session (stored; `None` for sessions
    /// opened before futureauth recorded it). Read it with [`Session::authenticated_at`].
    #[serde(default, rename = "authenticated_at")]
    pub(crate) authenticated: Option<DateTime<Utc>>,
}

impl Session {
    /// When the user last proved who they are in this session: the sign-in, or
    /// [`created_at`](Self::created_at) for sessions made before this was recorded.
    /// Compare it with a window to ask for a fresh sign-in before a sensitive action.
    pub fn authenticated_at(&self) -> DateTime<Utc> {
        self.authenticated.unwrap_or(self.created_at)
    }

    /// Whether the user proved who they are in this session within `max_age` of now: ask
    /// for a fresh sign-in before a sensitive action when it is not.
    ///
    /// ```
    /// # fn check(session: &futureauth::Session) {
    /// use std::time::Duration;
    /// if !session.signed_in_within(Duration::from_secs(10 * 60)) {
    ///     // show "sign in again to continue"
    /// }
    /// # }
    /// ```
    pub fn signed_in_within(&self, max_age: std::time::Duration) -> bool {
        let max_age = chrono::TimeDelta::from_std(max_age).unwrap_or(chrono::TimeDelta::MAX);
        Utc::now().signed_duration_since(self.authenticated_at()) <= max_age
    }
}

/// How a session's user proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuthMethod {
    /// A one-time code sent by email or SMS.
    Otp,
    /// A magic link (or its approval from another device).
    MagicLink,
    /// A passkey (WebAuthn).
    Passkey,
}

impl AuthMethod {
    /// The value stored in `session.auth_method`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Otp => "otp",
            Self::MagicLink => "magic_link",
            Self::Passkey => "passkey",
        }
    }

    /// The method a stored value names; `None` for a value this version does not know.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "otp" => Some(Self::Otp),
            "magic_link" => Some(Self::MagicLink),
            "passkey" => Some(Self::Passkey),
            _ => None,
        }
    }
}

/// Where a one-time code is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtpChannel {
    /// By email.
    Email,
    /// By SMS to an E.164 phone number.
    #[serde(rename = "sms", alias = "phone")]
    Phone,
}

/// The wire channel a code to this kind of address travels on: the one place the SDK's
/// public name (the spec's `OtpChannel::Phone`) meets the protocol's (`sms`). Kept a type of
/// its own so `send_otp` cannot be handed a magic link.
impl From<OtpChannel> for futureauth_proto::Channel {
    fn from(c: OtpChannel) -> Self {
        match c {
            OtpChannel::Email => Self::Email,
            OtpChannel::Phone => Self::Sms,
        }
    }
}

/// What [`FutureAuth::cleanup_expired`](crate::FutureAuth::cleanup_expired) removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CleanupReport {
    /// Expired sessions deleted.
    pub sessions: u64,
    /// Expired codes and magic links deleted.
    pub verifications: u64,
    /// Stale rate-limit counters deleted.
    pub rate_limit_buckets: u64,
}

/// A magic link as the page that opens it may describe it
/// ([`FutureAuth::magic_link_request`](crate::FutureAuth::magic_link_request)): who asked,
/// and what the browser that opened it may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct LinkRequest {
    /// When the link was asked for.
    pub requested_at: DateTime<Utc>,
    /// When the link stops working.
    pub expires_at: DateTime<Utc>,
    /// The asking client's IP address, if known.
    pub ip_address: Option<String>,
    /// The asking browser in a few words ("Firefox on Linux"), from its `User-Agent`.
    pub device: Option<String>,
    /// The browser opening the link is the one that asked for it.
    pub same_browser: bool,
    /// Opened elsewhere, the link can sign in the browser that asked, once the person types
    /// the number that browser shows ([`FutureAuth::approve_magic_link`](crate::FutureAuth::approve_magic_link)).
    pub approvable: bool,
    /// The browser opening the link may be signed in by it: it is the one that asked, or the
    /// app does not require that
    /// ([`FutureAuthConfig::magic_link_same_browser`](crate::FutureAuthConfig::magic_link_same_browser)).
    pub sign_in_here: bool,
}

/// What the browser that asked for a magic link finds when it checks on it
/// ([`FutureAuth::magic_link_status`](crate::FutureAuth::magic_link_status)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LinkStatus {
    /// A link it asked for waits to be opened. Show `match_number`: whoever opens the link
    /// on another device must type it to sign this browser in.
    Waiting {
        /// Two digits, `10` to `99`.
        match_number: String,
    },
    /// A link it asked for was approved on another device: this browser is now signed in.
    SignedIn(Box<(User, Session)>),
    /// Nothing waits: no link, or it was used, expired or voided by a wrong number.
    Nothing,
}

/// A search of [`FutureAuth::list_users`](crate::FutureAuth::list_users): every field is
/// optional (`UserQuery::default()` lists everyone, newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserQuery {
    /// Part of an email or phone number (case-insensitive for email).
    pub search: Option<String>,
    /// Only users created at or after this.
    pub created_after: Option<DateTime<Utc>>,
    /// Only users created before this.
    pub created_before: Option<DateTime<Utc>>,
    /// Page size, 1 to [`UserQuery::MAX_LIMIT`]; default 50.
    pub limit: u32,
    /// Users to skip (the `next_offset` of the previous page).
    pub offset: u64,
}

impl UserQuery {
    /// The largest page.
    pub const MAX_LIMIT: u32 = 500;

    /// Users whose email or phone contains `search`.
    pub fn search(search: impl Into<String>) -> Self {
        Self {
            search: Some(search.into()),
            ..Self::default()
        }
    }

    /// Only users created in `[after, before)` (either end optional).
    pub fn created_between(
        mut self,
        after: Option<DateTime<Utc>>,
        before: Option<DateTime<Utc>>,
    ) -> Self {
        self.created_after = after;
        self.created_before = before;
        self
    }

    /// This page size and offset.
    pub fn page(mut self, limit: u32, offset: u64) -> Self {
        self.limit = limit;
        self.offset = offset;
        self
    }
}

impl Default for UserQuery {
    fn default() -> Self {
        Self {
            search: None,
            created_after: None,
            created_before: None,
            limit: 50,
            offset: 0,
        }
    }
}

/// A page of [`FutureAuth::list_users`](crate::FutureAuth::list_users).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct UserPage {
    /// The users of this page, newest first.
    pub users: Vec<User>,
    /// The `offset` of the next page; `None` on the last.
    pub next_offset: Option<u64>,
}
