//! Hooks: the app's own code, called by FutureAuth at the moments of an account's life.
//!
//! Implement [`AuthHooks`] (every method has a default that does nothing) and install it
//! with [`FutureAuth::with_hooks`](crate::FutureAuth::with_hooks).
//!
//! - [`before_send`](AuthHooks::before_send) runs before anything is written or sent for a
//!   code or link, and may refuse it with a [`SendRefusal`]: the client gets `403` with the
//!   app's own error `code` (e.g. `email_domain_not_allowed`, `captcha_failed`).
//! - The event hooks ([`user_created`](AuthHooks::user_created),
//!   [`signed_in`](AuthHooks::signed_in), …) run **after** the change is committed, so a
//!   hook error can never leave a user half-created or half-deleted: the change stands, the
//!   error is logged (`tracing::error!`) and the caller still gets its answer. Keep them
//!   quick (they run on the request) and idempotent.
//!
//! ```
//! use futureauth::hooks::{AuthHooks, HookError, SendAttempt, SendRefusal};
//! use futureauth::{async_trait, User};
//!
//! struct OnlyOurDomain;
//!
//! #[async_trait]
//! impl AuthHooks for OnlyOurDomain {
//!     async fn before_send(&self, attempt: &SendAttempt<'_>) -> Result<(), SendRefusal> {
//!         if attempt.is_email() && !attempt.destination.ends_with("@example.com") {
//!             return Err(SendRefusal::new("email_domain_not_allowed", "use your work email"));
//!         }
//!         Ok(())
//!     }
//!
//!     async fn user_created(&self, user: &User) -> Result<(), HookError> {
//!         println!("welcome {}", user.id);
//!         Ok(())
//!     }
//! }
//! ```

use std::net::IpAddr;

use crate::identifier::Identifier;
use crate::model::{Session, User};

/// Why a send is happening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendPurpose {
    /// A sign-in code.
    SignInCode,
    /// A sign-in magic link.
    SignInLink,
    /// A code to verify a new address for a signed-in user (change or add).
    VerifyNewAddress,
}

/// A code or link about to be sent, as [`AuthHooks::before_send`] sees it.
#[derive(Debug)]
#[non_exhaustive]
pub struct SendAttempt<'a> {
    /// The normalised email or E.164 phone number.
    pub destination: &'a str,
    /// Why it is sent.
    pub purpose: SendPurpose,
    /// The asking client's IP address, if known.
    pub client_ip: Option<IpAddr>,
    /// What the front end sent for this check (the `X-FutureAuth-Hook-Token` header of the
    /// HTTP API, or [`RequestContext::hook_token`](crate::RequestContext::hook_token)), e.g.
    /// a CAPTCHA token.
    pub hook_token: Option<&'a str>,
    /// The signed-in user, for [`SendPurpose::VerifyNewAddress`].
    pub user_id: Option<&'a str>,
    pub(crate) is_email: bool,
}

impl SendAttempt<'_> {
    /// The destination is an email address (else an E.164 phone number).
    pub fn is_email(&self) -> bool {
        self.is_email
    }
}

/// A refusal by [`AuthHooks::before_send`]: nothing is written or sent, and the client gets
/// `403 {"error": {"code": <code>, "message": <message>}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRefusal {
    /// The app's own error code, e.g. `email_domain_not_allowed`.
    pub code: &'static str,
    /// A message for the person.
    pub message: String,
}

impl SendRefusal {
    /// A refusal with the app's `code` and a `message` for the person.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// An error of an event hook: logged, never undoing the change it was told about.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HookError(pub String);

/// Which address of a user changed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentifierChange {
    /// A new, verified address replaced `old` (or was added, when `old` is `None`).
    Set {
        /// The address before, if any.
        old: Option<Identifier>,
        /// The verified new address.
        new: Identifier,
    },
    /// The address was removed.
    Removed(Identifier),
}

/// The app's code, called by FutureAuth. Every method has a default that does nothing.
#[async_trait::async_trait]
pub trait AuthHooks: Send + Sync + 'static {
    /// Before a code or link is stored or sent; `Err` refuses it (nothing is written).
    async fn before_send(&self, attempt: &SendAttempt<'_>) -> Result<(), SendRefusal> {
        let _ = attempt;
        Ok(())
    }

    /// A user was created by their first sign-in (committed).
    async fn user_created(&self, user: &User) -> Result<(), HookError> {
        let _ = user;
        Ok(())
    }

    /// A user signed in (committed; the session exists).
    async fn signed_in(&self, user: &User, session: &Session) -> Result<(), HookError> {
        let _ = (user, session);
        Ok(())
    }

    /// A session was ended by its own sign-out.
    async fn signed_out(&self, user_id: &str, session_id: &str) -> Result<(), HookError> {
        let _ = (user_id, session_id);
        Ok(())
    }

    /// Sessions of a user were ended by a revoke (one, or all: `session_id` is `None`), a
    /// disable or an identifier change.
    async fn session_revoked(
        &self,
        user_id: &str,
        session_id: Option<&str>,
    ) -> Result<(), HookError> {
        let _ = (user_id, session_id);
        Ok(())
    }

    /// A user's email or phone changed (committed).
    async fn identifier_changed(
        &self,
        user: &User,
        change: &IdentifierChange,
    ) -> Result<(), HookError> {
        let _ = (user, change);
        Ok(())
    }

    /// A user and everything of theirs were deleted (committed).
    async fn user_deleted(&self, user: &User) -> Result<(), HookError> {
        let _ = user;
        Ok(())
    }
}

/// The hooks of an app that installed none.
#[derive(Debug, Default)]
pub(crate) struct NoHooks;

impl AuthHooks for NoHooks {}

/// Logs an event hook's error: the change it reports is already committed.
pub(crate) fn report(event: &'static str, result: Result<(), HookError>) {
    if let Err(e) = result {
        tracing::error!(event, error = %e, "futureauth: hook failed (the change stands)");
    }
}
