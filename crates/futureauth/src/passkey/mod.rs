//! Passkeys (WebAuthn), with the `passkeys` feature: a signed-in user adds a passkey, then
//! signs in with it (by a button, or by the browser's autofill), and lists, renames and
//! deletes their passkeys. Codes and links stay the way in and the way back: deleting every
//! passkey leaves them working.
//!
//! `webauthn-rs` is the relying party: it checks the RP ID, the origin, the signature, user
//! verification and the signature counter. FutureAuth keeps the ceremony's challenge hashed,
//! single-use, short-lived and bound to the browser that asked (like codes, through a
//! binding in [`RequestContext::binding`](crate::RequestContext::binding)), ties each credential to its user, and opens the
//! same kind of session a code does.
//!
//! Configure it with [`FutureAuthConfig::passkeys`](crate::FutureAuthConfig::passkeys); the
//! `passkey` and `passkey_challenge` tables are then created by
//! [`FutureAuth::ensure_tables`](crate::FutureAuth::ensure_tables). With `axum-integration`, [`auth_router`](crate::axum::auth_router)
//! serves the ceremony under `/api/auth/passkey/`.
//!
//! ```no_run
//! # async fn run(auth: futureauth::FutureAuth, user: futureauth::User, credential: serde_json::Value, answer: serde_json::Value) -> futureauth::Result<()> {
//! use futureauth::{OtpBinding, RequestContext};
//!
//! // The browser's binding: keep it in an HttpOnly cookie between the two requests.
//! let req = RequestContext { binding: Some(OtpBinding::generate()), ..Default::default() };
//!
//! // Registration, for a signed-in user: options for navigator.credentials.create() ...
//! let options = auth.passkey_registration_options(&user, &req).await?;
//! // ... and what the browser answered.
//! let passkey = auth.register_passkey(&user, &credential, Some("Laptop"), &req).await?;
//!
//! // Sign-in: options for navigator.credentials.get(), then its answer.
//! let options = auth.passkey_sign_in_options(&req).await?;
//! let (user, session) = auth.sign_in_with_passkey(&answer, &req).await?;
//! # let _ = (options, passkey, user, session); Ok(()) }
//! ```

mod config;
mod flow;
pub(crate) mod store;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use crate::config::PasskeyConfig;
pub(crate) use config::RelyingParty;
pub(crate) use flow::{register, register_options, sign_in, sign_in_options, MAX_NAME_LEN};

use crate::error::{FutureAuthError, Result};
use store::PasskeyRow;

/// One of a user's passkeys, as the user may see it (no key material).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct Passkey {
    /// Its id (not the WebAuthn credential id), for renaming and deleting.
    pub id: String,
    /// Its name: given at registration, else the browser and platform that made it.
    pub name: String,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// When it last signed in, if ever.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Whether it may be synced to other devices (a multi-device passkey).
    pub backup_eligible: bool,
    /// Whether it was synced (backed up) when it last signed in.
    pub backup_state: bool,
    /// How the browser reached the authenticator (`internal`, `hybrid`, `usb`, ...).
    pub transports: Vec<String>,
}

impl From<PasskeyRow> for Passkey {
    fn from(r: PasskeyRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            created_at: r.created_at.into(),
            last_used_at: r.last_used_at.map(Into::into),
            backup_eligible: r.backup_eligible,
            backup_state: r.backup_state,
            transports: r
                .transports
                .unwrap_or_default()
                .split(',')
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }
}

/// A passkey's new name, trimmed: 1 to [`MAX_NAME_LEN`] bytes of printable text.
pub(crate) fn parse_name(name: &str) -> Result<&str> {
    let name = name.trim();
    if name.is_empty() || name.len() > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(FutureAuthError::InvalidInput(format!(
            "a passkey name is 1 to {MAX_NAME_LEN} bytes of printable text"
        )));
    }
    Ok(name)
}
