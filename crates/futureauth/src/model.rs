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
