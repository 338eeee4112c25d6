//! Typed errors of the service layers.
//!
//! [`ServiceError`] is what the send/lookup logic returns; the HTTP layer turns it into a
//! JSON error response (see `api::error`) whose code is an [`ErrorCode`]. [`StoreError`] is
//! the storage failure type.

use thiserror::Error;

mod code;

pub use code::ErrorCode;

/// A storage failure (database unreachable, constraint violation we did not expect, …).
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database driver failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Running the embedded migrations failed.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database did not answer within `--db-call-timeout` (a frozen or partitioned
    /// server, where its own `statement_timeout` cannot fire); the connection was discarded.
    #[error("the database did not answer within {} ms", .0.as_millis())]
    Timeout(std::time::Duration),
    /// A stored value could not be decoded (corrupt row).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
}

/// Why a request to the delivery API was refused or failed.
#[derive(Debug, Error)]
pub enum ServiceError {
    /// The request is well formed JSON but its content is not acceptable (HTTP 422).
    #[error("{message}")]
    Validation {
        /// Machine-readable code, e.g. [`ErrorCode::UnknownChannel`].
        code: ErrorCode,
        /// Human readable explanation.
        message: String,
    },
    /// Missing, unknown or revoked secret key (HTTP 401).
    #[error("missing, unknown or revoked API key")]
    InvalidApiKey,
    /// A rate limit was hit; retry after this many seconds (HTTP 429).
    #[error("rate limit exceeded ({scope}); retry after {retry_after_secs} s")]
    RateLimited {
        /// Which limit was hit (`destination`, `project`, `sms_prefix`).
        scope: &'static str,
        /// Seconds until the limit window resets.
        retry_after_secs: u64,
    },
    /// The acting operator is a member of the project, not an owner (HTTP 403).
    #[error("only the project's owners can do this")]
    OwnersOnly,
    /// The referenced resource does not exist for this project (HTTP 404).
    #[error("not found")]
    NotFound,
    /// The same `Idempotency-Key` was reused with a different request (HTTP 422).
    #[error("the Idempotency-Key was already used for a different request")]
    IdempotencyConflict,
    /// Storage failed (HTTP 500 / 503).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A message template failed to render (a bug; HTTP 500).
    #[error("template error: {0}")]
    Template(String),
}

impl ServiceError {
    /// Shorthand for a [`ServiceError::Validation`].
    pub fn validation(code: ErrorCode, message: impl Into<String>) -> Self {
        ServiceError::Validation {
            code,
            message: message.into(),
        }
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(e: sqlx::Error) -> Self {
        ServiceError::Store(StoreError::Database(e))
    }
}
