//! Typed errors of the service layers.
//!
//! [`ServiceError`] is what the send/lookup logic returns; the HTTP layer turns it into a
//! JSON error response (see `api::error`) whose code is an [`ErrorCode`]. [`StoreError`] is
//! the storage failure type.

use std::collections::BTreeMap;

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

/// Why an operator action was refused: the one error of the operator service (projects,
/// settings, keys, members, tokens), whichever face asked (the console, the management API,
/// the CLI). Each face presents it once.
#[derive(Debug, Error)]
pub enum OperatorError {
    /// Bad input, per field (field name → message).
    #[error("invalid input: {0:?}")]
    Invalid(FieldErrors),
    /// No such project, or not a member: both look the same.
    #[error("not found")]
    NotFound,
    /// A member tried what only owners may do.
    #[error("only project owners can do this")]
    OwnersOnly,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl OperatorError {
    /// Bad input in one field.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> OperatorError {
        OperatorError::Invalid(BTreeMap::from([(field, message.into())]))
    }
}

/// For the services that are also the delivery API's (`project_webhook`, `test_mode`): the
/// operator service's refusals in their error type, field errors as one `invalid_request`
/// message (`field: message; …`).
impl From<OperatorError> for ServiceError {
    fn from(e: OperatorError) -> Self {
        match e {
            OperatorError::Invalid(fields) => ServiceError::validation(
                ErrorCode::InvalidRequest,
                fields
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            OperatorError::NotFound => ServiceError::NotFound,
            OperatorError::OwnersOnly => ServiceError::OwnersOnly,
            OperatorError::Store(e) => ServiceError::Store(e),
        }
    }
}

/// Validation messages by field.
pub type FieldErrors = BTreeMap<&'static str, String>;
