//! Passkeys (WebAuthn), with the `passkeys` feature: a signed-in user adds a passkey, then
//! signs in with it (by a button, or by the browser's autofill), and lists, renames and
//! deletes their passkeys. Codes and links stay the way in and the way back: deleting every
//! passkey leaves them working.
//!
//! `webauthn-rs` is the relying party: it checks the RP ID, the origin, the signature, user
//! verification and the signature counter. FutureAuth keeps the ceremony's challenge hashed,
//! single-use, short-lived and bound to the browser that asked (like codes, through a
//! binding in [`RequestContext::binding`]), ties each credential to its user, and opens the
//! same kind of session a code does.
//!
//! Configure it with [`FutureAuthConfig::passkeys`](crate::FutureAuthConfig::passkeys); the
//! `passkey` and `passkey_challenge` tables are then created by
//! [`FutureAuth::ensure_tables`]. With `axum-integration`, [`auth_router`](crate::axum::auth_router)
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

pub use config::PasskeyConfig;
pub(crate) use config::RelyingParty;
pub(crate) use flow::MAX_NAME_LEN;

use crate::error::{FutureAuthError, Result};
use crate::model::{Session, User};
use crate::{FutureAuth, RequestContext};
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

/// The passkey methods of the facade.
impl FutureAuth {
    /// The relying party, or why passkeys are not available.
    fn relying_party(&self) -> Result<&RelyingParty> {
        match &self.relying_party {
            Ok(Some(rp)) => Ok(rp),
            Ok(None) => Err(FutureAuthError::Misconfigured(
                "passkeys are not configured: set FutureAuthConfig::passkeys".to_string(),
            )),
            Err(e) => Err(FutureAuthError::Config(e.clone())),
        }
    }

    /// Options for `navigator.credentials.create()` (the JSON of WebAuthn's
    /// `PublicKeyCredentialCreationOptions`, under `publicKey`), to add a passkey to the
    /// signed-in `user`: a discoverable credential, user verification required, no
    /// attestation, the user's passkeys excluded.
    ///
    /// `req.binding` is required: the challenge works only with the same binding, for
    /// [`FutureAuthConfig::passkeys`](crate::FutureAuthConfig::passkeys)' `challenge_ttl`,
    /// once. Counted against the options limit of the client IP.
    pub async fn passkey_registration_options(
        &self,
        user: &User,
        req: &RequestContext,
    ) -> Result<serde_json::Value> {
        let rp = self.relying_party()?;
        flow::register_options(&self.ctx(), rp, user, req, Utc::now()).await
    }

    /// Verifies what `navigator.credentials.create()` answered (`credential`, the
    /// `PublicKeyCredential` as JSON with base64url fields) to
    /// [`passkey_registration_options`](Self::passkey_registration_options) for the same
    /// `user` and `req.binding`, and stores the passkey under `name` (at most 64 bytes;
    /// without one, the browser and platform of `req.user_agent`, e.g. "Chrome on macOS").
    ///
    /// Fails with [`FutureAuthError::PasskeyChallengeInvalid`] if the challenge is not this
    /// browser's, was used or has expired, and [`FutureAuthError::PasskeyRejected`] if the
    /// answer is not valid for this app's RP ID and origins or the credential is already
    /// registered.
    pub async fn register_passkey(
        &self,
        user: &User,
        credential: &serde_json::Value,
        name: Option<&str>,
        req: &RequestContext,
    ) -> Result<Passkey> {
        let rp = self.relying_party()?;
        let row = flow::register(&self.ctx(), rp, user, credential, name, req, Utc::now()).await?;
        Ok(row.into())
    }

    /// Options for `navigator.credentials.get()` to sign in with a discoverable passkey
    /// (the browser offers the passkeys it has for this site; no address is asked first).
    /// Use them with `mediation: "conditional"` for autofill in the email field, or from a
    /// button. `req.binding` is required, as for registration.
    pub async fn passkey_sign_in_options(&self, req: &RequestContext) -> Result<serde_json::Value> {
        let rp = self.relying_party()?;
        let options = flow::sign_in_options(&self.ctx(), rp, req, Utc::now()).await;
        self.tidy().await;
        options
    }

    /// Verifies what `navigator.credentials.get()` answered (`credential`) to
    /// [`passkey_sign_in_options`](Self::passkey_sign_in_options) with the same
    /// `req.binding`, and opens a session for the passkey's user, like
    /// [`verify_otp_with`](Self::verify_otp_with) does.
    ///
    /// Refused ([`FutureAuthError::PasskeyRejected`]) when the credential is unknown, the
    /// user handle is not its owner's, the signature, RP ID, origin or user verification is
    /// wrong, or the signature counter did not move forward (a cloned authenticator).
    pub async fn sign_in_with_passkey(
        &self,
        credential: &serde_json::Value,
        req: &RequestContext,
    ) -> Result<(User, Session)> {
        let rp = self.relying_party()?;
        let signed_in = flow::sign_in(&self.ctx(), rp, credential, req, Utc::now()).await;
        self.tidy().await;
        signed_in
    }

    /// A user's passkeys, oldest first.
    pub async fn list_passkeys(&self, user_id: &str) -> Result<Vec<Passkey>> {
        self.relying_party()?;
        let rows = self.store.list_passkeys(user_id).await?;
        Ok(rows.into_iter().map(Passkey::from).collect())
    }

    /// Renames one of a user's passkeys (`name`: 1 to 64 bytes of printable text);
    /// [`FutureAuthError::PasskeyNotFound`] if the user has no passkey `passkey_id`.
    pub async fn rename_passkey(
        &self,
        user_id: &str,
        passkey_id: &str,
        name: &str,
    ) -> Result<Passkey> {
        self.relying_party()?;
        let name = name.trim();
        if name.is_empty() || name.len() > MAX_NAME_LEN || name.chars().any(char::is_control) {
            return Err(FutureAuthError::InvalidInput(format!(
                "a passkey name is 1 to {MAX_NAME_LEN} bytes of printable text"
            )));
        }
        self.store
            .rename_passkey(user_id, passkey_id, name)
            .await?
            .map(Passkey::from)
            .ok_or(FutureAuthError::PasskeyNotFound)
    }

    /// Deletes one of a user's passkeys; [`FutureAuthError::PasskeyNotFound`] if the user
    /// has no passkey `passkey_id`. Codes and links keep working without any passkey.
    pub async fn delete_passkey(&self, user_id: &str, passkey_id: &str) -> Result<()> {
        self.relying_party()?;
        if self.store.delete_passkey(user_id, passkey_id).await? {
            Ok(())
        } else {
            Err(FutureAuthError::PasskeyNotFound)
        }
    }
}
