//! Errors as HTTP responses: `{"error": {"code": "...", "message": "..."}}`.

use axum::extract::rejection::JsonRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::error::FutureAuthError;

/// `Retry-After` (seconds) of `503 unavailable`: database fail-overs and restarts take seconds.
const RETRY_UNAVAILABLE_SECS: u64 = 2;

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

    pub(crate) fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "not signed in, or the session has ended",
        )
    }
}

impl From<FutureAuthError> for ApiError {
    fn from(e: FutureAuthError) -> Self {
        use FutureAuthError as E;
        let status = match &e {
            E::InvalidEmail | E::InvalidPhone | E::CallbackNotAllowed(_) | E::InvalidInput(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            E::InvalidCode
            | E::CodeExpired
            | E::TooManyAttempts
            | E::InvalidMagicLink
            | E::MagicLinkExpired => StatusCode::BAD_REQUEST,
            E::MagicLinkOtherBrowser => StatusCode::FORBIDDEN,
            E::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            E::UserNotFound => StatusCode::NOT_FOUND,
            E::Delivery(_) => StatusCode::BAD_GATEWAY,
            _ if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
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
            status,
            code: e.code(),
            message,
            retry_after,
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send a JSON body with Content-Type: application/json",
            ),
            JsonRejection::JsonDataError(e) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                e.body_text(),
            ),
            JsonRejection::JsonSyntaxError(e) => {
                Self::new(StatusCode::BAD_REQUEST, "malformed_json", e.body_text())
            }
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is too large",
            ),
            other => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                other.body_text(),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(serde_json::json!({
            "error": { "code": self.code, "message": self.message }
        }));
        let mut response = (self.status, body).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
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
