//! The one error type of the SDK.

use std::time::Duration;

use crate::delivery::DeliveryError;

/// Everything that can go wrong in FutureAuth.
///
/// Every variant has a stable machine-readable [`code`](FutureAuthError::code), which the
/// Axum integration sends to clients as `{"error": {"code": ..., "message": ...}}`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FutureAuthError {
    /// The database failed (connection lost, constraint, ...). When it is unreachable or too
    /// slow for now ([`is_unavailable`](FutureAuthError::is_unavailable)) the code is
    /// `unavailable` (HTTP 503 with `Retry-After`), else `internal_error` (HTTP 500).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    /// The database did not answer within
    /// [`FutureAuthConfig::db_call_timeout`](crate::FutureAuthConfig::db_call_timeout) (a
    /// frozen or partitioned server, where its own `statement_timeout` cannot fire). Code
    /// `unavailable` (HTTP 503 with `Retry-After`); the connection was discarded.
    #[error("the database did not answer within {} ms", .0.as_millis())]
    DatabaseTimeout(Duration),

    /// The code or link could not be delivered; no usable code was left behind.
    #[error("delivery failed: {0}")]
    Delivery(#[from] DeliveryError),

    /// Not a valid email address.
    #[error("invalid email address")]
    InvalidEmail,

    /// Not a valid phone number in international (E.164) form, such as `+15551234567`.
    #[error("invalid phone number: use international format, e.g. +15551234567")]
    InvalidPhone,

    /// The magic-link callback URL is not http(s) or points to an origin that is not allowed.
    #[error("callback URL not allowed: {0}")]
    CallbackNotAllowed(String),

    /// The code is wrong, or there is no pending code for this identifier.
    #[error("invalid code")]
    InvalidCode,

    /// The code was right once but has expired.
    #[error("code expired, request a new one")]
    CodeExpired,

    /// The code received too many wrong guesses and no longer works.
    #[error("too many wrong attempts, request a new code")]
    TooManyAttempts,

    /// The magic link is unknown or already used.
    #[error("invalid or already used magic link")]
    InvalidMagicLink,

    /// Same-browser links are required
    /// ([`FutureAuthConfig::magic_link_same_browser`](crate::FutureAuthConfig::magic_link_same_browser))
    /// and this link was asked for in another browser; it stays usable there.
    #[error("this sign-in link was requested in another browser: open it there, or request a new link here")]
    MagicLinkOtherBrowser,

    /// The magic link has expired.
    #[error("magic link expired, request a new one")]
    MagicLinkExpired,

    /// The number typed to approve a magic link from another device is not the one the
    /// asking browser shows; the link no longer works.
    #[error("that is not the number the other device shows; this sign-in link no longer works")]
    MagicLinkNumberMismatch,

    /// A rate limit was hit; try again after `retry_after`.
    #[error("too many requests, retry in {} s", retry_after.as_secs())]
    RateLimited {
        /// How long until the limit resets.
        retry_after: Duration,
    },

    /// No such user.
    #[error("user not found")]
    UserNotFound,

    /// The configuration can never work; the message says how to fix it.
    #[error("invalid FutureAuth configuration: {0}")]
    Config(String),

    /// This call needs configuration that is missing (e.g. magic links without `app_url`);
    /// the message names what to set. Unlike [`Config`](Self::Config) it is found only when
    /// the call is made, and its message is shown to clients.
    #[error("FutureAuth is not configured for this: {0}")]
    Misconfigured(String),

    /// An argument holds bytes the database refuses (such as NUL) or is not of the
    /// expected shape.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// The passkey's answer could not be verified: another site or origin, a bad signature,
    /// no user verification, a signature counter that went backwards (a cloned
    /// authenticator), an unknown or already registered credential, or a user that no
    /// longer exists. Why goes to the log, not to the client.
    #[error("the passkey could not be verified")]
    PasskeyRejected,

    /// The passkey challenge is unknown, used, expired, or was issued to another browser:
    /// start the ceremony again.
    #[error("this passkey request has expired or belongs to another browser: try again")]
    PasskeyChallengeInvalid,

    /// The signed-in user has no passkey with this id.
    #[error("no such passkey")]
    PasskeyNotFound,
    /// The user is disabled ([`FutureAuth::disable_user`](crate::FutureAuth::disable_user)):
    /// a correct code or link does not sign them in.
    #[error("this account is disabled")]
    UserDisabled,

    /// The action needs a recent sign-in; sign in again first.
    #[error("sign in again to do this")]
    ReauthenticationRequired,

    /// The user's last way to sign in cannot be removed.
    #[error("this is the account's only way to sign in: add another before removing it")]
    LastIdentifier,

    /// The new address was verified, but by now it belongs to another account. Only the
    /// person holding the address's code can see this.
    #[error("this address already belongs to another account")]
    IdentifierTaken,

    /// The app's [`AuthHooks::before_send`](crate::hooks::AuthHooks::before_send) refused to
    /// send; `code` and `message` are the app's own, shown to the client.
    #[error("{message}")]
    Refused {
        /// The app's error code (`[a-z0-9_]`, e.g. `email_domain_not_allowed`), the JSON
        /// `code` the client sees.
        code: &'static str,
        /// A message for the person.
        message: String,
    },
}

impl FutureAuthError {
    /// A stable, machine-readable error code (`snake_case`): [`error_code`](Self::error_code)
    /// as text.
    pub fn code(&self) -> &'static str {
        self.error_code().as_str()
    }

    /// The error's entry in the table of [`ErrorCode`]s.
    pub fn error_code(&self) -> ErrorCode {
        use ErrorCode as C;
        match self {
            Self::Database(_) if self.is_unavailable() => C::Unavailable,
            Self::Database(_) => C::InternalError,
            Self::DatabaseTimeout(_) => C::Unavailable,
            Self::Delivery(_) => C::DeliveryFailed,
            Self::InvalidEmail => C::InvalidEmail,
            Self::InvalidPhone => C::InvalidPhone,
            Self::CallbackNotAllowed(_) => C::CallbackNotAllowed,
            Self::InvalidCode => C::InvalidCode,
            Self::CodeExpired => C::CodeExpired,
            Self::TooManyAttempts => C::TooManyAttempts,
            Self::InvalidMagicLink => C::InvalidMagicLink,
            Self::MagicLinkOtherBrowser => C::MagicLinkOtherBrowser,
            Self::MagicLinkExpired => C::MagicLinkExpired,
            Self::MagicLinkNumberMismatch => C::MagicLinkNumberMismatch,
            Self::RateLimited { .. } => C::RateLimited,
            Self::UserNotFound => C::UserNotFound,
            Self::Config(_) => C::InvalidConfig,
            Self::Misconfigured(_) => C::Misconfigured,
            Self::InvalidInput(_) => C::InvalidRequest,
            Self::PasskeyRejected => C::PasskeyRejected,
            Self::PasskeyChallengeInvalid => C::PasskeyChallengeInvalid,
            Self::PasskeyNotFound => C::PasskeyNotFound,
            Self::UserDisabled => C::UserDisabled,
            Self::ReauthenticationRequired => C::ReauthenticationRequired,
            Self::LastIdentifier => C::LastIdentifier,
            Self::IdentifierTaken => C::IdentifierTaken,
            Self::Refused { .. } => C::SendRefused,
        }
    }
}

futureauth_proto::error_code_table! {
    /// Every error code the SDK answers with, in one table: the `code` of
    /// `{"error": {"code", "message"}}` from its routes and extractor, and of
    /// [`FutureAuthError::code`], with the HTTP status it is always sent with. The codes it
    /// shares with the FutureAuth server come from
    /// [`futureauth_proto::CommonCode`] (one name, one status for both); the README lists
    /// them all (checked by a test).
    ///
    /// ```
    /// use futureauth::ErrorCode;
    /// assert_eq!(ErrorCode::TooManyAttempts.as_str(), "too_many_attempts");
    /// assert!(ErrorCode::ALL.iter().any(|c| c.as_str() == "rate_limited"));
    /// assert_eq!(ErrorCode::RateLimited.status().as_u16(), 429);
    /// ```
    #[non_exhaustive]
    pub enum ErrorCode {
        // 400 here, 422 on the server: another condition there (`futureauth_proto::DIVERGENCES`).
        InvalidCode => "invalid_code", BAD_REQUEST, "The code is wrong, or no code is pending for this address.";
        CodeExpired => "code_expired", BAD_REQUEST, "The code was right but has expired: request a new one.";
        TooManyAttempts => "too_many_attempts", BAD_REQUEST, "The code had too many wrong guesses and no longer works: request a new one.";
        InvalidMagicLink => "invalid_magic_link", BAD_REQUEST, "The magic link is unknown or already used.";
        MagicLinkOtherBrowser => "magic_link_other_browser", FORBIDDEN, "The link was asked for in another browser and this app requires the same one; it still works there.";
        MagicLinkExpired => "magic_link_expired", BAD_REQUEST, "The magic link has expired: request a new one.";
        MagicLinkNumberMismatch => "magic_link_number_mismatch", FORBIDDEN, "The number typed to approve a link from another device is not the one that device shows; the link is void.";
        Unauthorized => "unauthorized", UNAUTHORIZED, "Not signed in, or the session has ended.";
        CrossSiteRequest => "cross_site_request", FORBIDDEN, "A state-changing request came from an origin the app does not trust.";
        UserNotFound => "user_not_found", NOT_FOUND, "No such user.";
        SessionNotFound => "session_not_found", NOT_FOUND, "The signed-in user has no session with this id.";
        InvalidEmail => "invalid_email", UNPROCESSABLE_ENTITY, "Not a valid email address.";
        InvalidPhone => "invalid_phone", UNPROCESSABLE_ENTITY, "Not a phone number in international (E.164) form, such as +15551234567.";
        InvalidConfig => "invalid_config", INTERNAL_SERVER_ERROR, "The configuration can never work; the log says how to fix it.";
        Misconfigured => "misconfigured", INTERNAL_SERVER_ERROR, "This call needs configuration that is missing; the message names what to set.";
        DeliveryFailed => "delivery_failed", BAD_GATEWAY, "The code or link could not be sent; nothing usable was left behind.";
        // The server's names differ (`futureauth_proto::DIVERGENCES`); the status and
        // `Retry-After` are the same.
        Unavailable => "unavailable", SERVICE_UNAVAILABLE, "The database is unreachable or too slow for now; `Retry-After` says when to try again.";
        PasskeyRejected => "passkey_rejected", BAD_REQUEST, "The passkey's answer could not be verified (another site, a bad signature, no user verification, a counter that went backwards, an unknown credential or user).";
        PasskeyChallengeInvalid => "passkey_challenge_invalid", BAD_REQUEST, "The passkey challenge is unknown, used, expired or was issued to another browser: start again.";
        PasskeyNotFound => "passkey_not_found", NOT_FOUND, "The signed-in user has no passkey with this id.";
        UserDisabled => "user_disabled", FORBIDDEN, "The account is disabled by the app: the right code or link does not sign it in.";
        ReauthenticationRequired => "reauthentication_required", FORBIDDEN, "The session's sign-in is older than `recent_auth_max_age`: sign in again, then retry.";
        LastIdentifier => "last_identifier", CONFLICT, "That address is the account's only way to sign in: add another first.";
        IdentifierTaken => "identifier_taken", CONFLICT, "The new address was verified but belongs to another account; nothing changed.";
        SendRefused => "send_refused", FORBIDDEN, "The app refused to send (its `before_send` hook); the JSON `code` is then the app's own code.";
    }
}

impl FutureAuthError {
    /// Whether this is the database being unreachable, overloaded or too slow for now (no
    /// connection within the pool's acquire timeout, a dropped connection, a statement
    /// timeout, a server shutting down, SQLite busy): the same request may succeed in a
    /// moment. Never a sign that a session or code is invalid.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Database(e) => database_unavailable(e),
            Self::DatabaseTimeout(_) => true,
            _ => false,
        }
    }
}

fn database_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| transient_code(&code)),
        _ => false,
    }
}

/// Postgres SQLSTATEs (five characters) of connection exceptions (`08`), insufficient
/// resources (`53`) and operator intervention (`57`: statement timeout, shutdown); SQLite
/// result codes (numbers) whose primary code is `SQLITE_BUSY` (5) or `SQLITE_LOCKED` (6).
fn transient_code(code: &str) -> bool {
    if code.len() == 5 {
        return ["08", "53", "57"]
            .iter()
            .any(|class| code.starts_with(class));
    }
    code.parse::<u32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
}

/// `Result` with [`FutureAuthError`].
pub type Result<T, E = FutureAuthError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_database_is_unavailable_not_internal() {
        let timed_out = FutureAuthError::Database(sqlx::Error::PoolTimedOut);
        assert!(timed_out.is_unavailable());
        assert_eq!(timed_out.code(), "unavailable");
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(FutureAuthError::Database(io.into()).code(), "unavailable");
        let bug = FutureAuthError::Database(sqlx::Error::RowNotFound);
        assert!(!bug.is_unavailable());
        assert_eq!(bug.code(), "internal_error");
        assert!(!FutureAuthError::InvalidCode.is_unavailable());
        let frozen = FutureAuthError::DatabaseTimeout(Duration::from_secs(6));
        assert!(frozen.is_unavailable());
        assert_eq!(frozen.code(), "unavailable");
    }

    #[test]
    fn transient_codes() {
        for code in [
            "08006", "57014", "57P01", "57P03", "53300", "5", "6", "517", "262",
        ] {
            assert!(transient_code(code), "{code}");
        }
        for code in ["23505", "42P01", "22001", "19", "2067", "1"] {
            assert!(!transient_code(code), "{code}");
        }
    }
}
