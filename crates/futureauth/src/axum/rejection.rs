//! Errors as HTTP responses: `{"error": {"code": "...", "message": "..."}}`.

use axum::extract::rejection::JsonRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use futureauth_proto::{ErrorBody, RETRY_UNAVAILABLE_SECS};

use crate::error::{ErrorCode, FutureAuthError};

/// An error answer of the FutureAuth routes and extractor.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// An error with this code, at the code's status.
    ///
    /// ```
    /// use futureauth::{axum::ApiError, ErrorCode};
    /// let e = ApiError::from_code(ErrorCode::RateLimited, "slow down");
    /// assert_eq!(e.status().as_u16(), 429);
    /// assert_eq!(e.code(), "rate_limited");
    /// ```
    pub fn from_code(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(code.status(), code.as_str(), message)
    }

    pub(crate) fn unauthorized() -> Self {
        Self::from_code(
            ErrorCode::Unauthorized,
            "not signed in, or the session has ended",
        )
    }
}

impl From<FutureAuthError> for ApiError {
    fn from(e: FutureAuthError) -> Self {
        use FutureAuthError as E;
        let code = e.error_code();
        let message = match &e {
            // An outage is neither "signed out" nor a bug: say so, and when to come back.
            _ if e.is_unavailable() => {
                tracing::warn!(error = %e, "futureauth: database unavailable");
                "the database is unavailable, try again in a moment".to_string()
            }
            // Details of server-side failures go to the log, not to the client.
            E::Database(_) | E::Config(_) => {
                tracing::error!(error = %e, "futureauth: request failed");
                "internal error".to_string()
            }
            // Says what the operator must set; no secret in it.
            E::Misconfigured(_) => {
                tracing::error!(error = %e, "futureauth: request failed");
                e.to_string()
            }
            E::Delivery(_) => "the code could not be sent, try again later".to_string(),
            other => other.to_string(),
        };
        let retry_after = match &e {
            E::RateLimited { retry_after } => Some(retry_after.as_secs().max(1)),
            _ if e.is_unavailable() => Some(RETRY_UNAVAILABLE_SECS),
            _ => None,
        };
        Self {
            status: code.status(),
            // A refusal by the app's hook carries the app's own code.
            code: match &e {
                E::Refused { code, .. } => code,
                _ => code.as_str(),
            },
            message,
            retry_after,
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => Self::from_code(
                ErrorCode::UnsupportedMediaType,
                "send a JSON body with Content-Type: application/json",
            ),
            JsonRejection::JsonDataError(e) => {
                Self::from_code(ErrorCode::InvalidRequest, e.body_text())
            }
            JsonRejection::JsonSyntaxError(e) => {
                Self::from_code(ErrorCode::MalformedJson, e.body_text())
            }
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::from_code(ErrorCode::PayloadTooLarge, "the request body is too large")
            }
            // The body could not be read at all: as malformed as JSON gets.
            other => Self::from_code(ErrorCode::MalformedJson, other.body_text()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(ErrorBody::new(self.code, self.message));
        let mut response = (self.status, body).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body was never read, so the server drops this connection:
            // say so, or a keep-alive client sends its next request down a closing socket.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}
