//! The JSON error response: `{"error": {"code": "snake_case", "message": "human text"}}`.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ErrorCode, ServiceError};

/// `Retry-After` (seconds) of a 503: short, since outages of the store are expected to be
/// fail-overs and restarts measured in seconds.
pub const RETRY_UNAVAILABLE_SECS: u64 = 2;

/// The message of a 403 `owners_only`, from the management API.
pub const OWNERS_ONLY: &str =
    "only the project's owners can manage keys, members, webhooks, test mode and deletion";

/// An HTTP error of the API; its status is its code's ([`ErrorCode::status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Machine-readable code, which also decides the HTTP status.
    pub code: ErrorCode,
    /// Human readable message.
    pub message: String,
    /// `Retry-After` seconds (429 and 503).
    pub retry_after: Option<u64>,
}

/// Error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Error detail.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable snake_case code, e.g. `invalid_api_key`, `unknown_channel`,
    /// `invalid_destination`, `invalid_code`, `callback_not_allowed`, `sms_country_not_allowed`,
    /// `rate_limited`, `malformed_json`, `invalid_request`, `payload_too_large`,
    /// `unsupported_media_type`, `not_found`, `storage_unavailable`, `overloaded` (all of
    /// them: the server's README, "Error codes").
    #[schema(example = "invalid_destination")]
    pub code: String,
    /// Human readable explanation.
    #[schema(example = "destination must be a plain email address such as user@example.com")]
    pub message: String,
}

impl ApiError {
    /// A new error, sent with its code's status.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 503 with `Retry-After`: a dependency (the database) or capacity is missing for now;
    /// the same request may succeed a moment later.
    pub fn unavailable(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            retry_after: Some(RETRY_UNAVAILABLE_SECS),
            ..ApiError::new(code, message)
        }
    }

    /// The HTTP status it is sent with.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// 404 for unknown routes and resources.
    pub fn not_found() -> ApiError {
        ApiError::new(ErrorCode::NotFound, "no such resource")
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> ApiError {
        match e {
            ServiceError::Validation { code, message } => ApiError::new(code, message),
            ServiceError::InvalidApiKey => ApiError::new(
                ErrorCode::InvalidApiKey,
                "missing, unknown or revoked secret key: send `Authorization: Bearer vx_sec_…`",
            ),
            ServiceError::RateLimited {
                scope,
                retry_after_secs,
            } => {
                crate::metrics::rate_limited(scope);
                ApiError {
                    code: ErrorCode::RateLimited,
                    message: format!(
                        "too many messages ({scope} limit); retry after {retry_after_secs} seconds"
                    ),
                    retry_after: Some(retry_after_secs),
                }
            }
            ServiceError::OwnersOnly => ApiError::new(ErrorCode::OwnersOnly, OWNERS_ONLY),
            ServiceError::NotFound => ApiError::not_found(),
            ServiceError::IdempotencyConflict => ApiError::new(
                ErrorCode::IdempotencyKeyReused,
                "this Idempotency-Key was already used for a different request",
            ),
            ServiceError::Store(e) => {
                tracing::error!(error = %e, "storage error");
                ApiError::unavailable(
                    ErrorCode::StorageUnavailable,
                    "the message store is unavailable; retry later",
                )
            }
            ServiceError::Template(e) => {
                tracing::error!(error = %e, "template error");
                ApiError::new(ErrorCode::InternalError, "internal error")
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        match &r {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "send the body as JSON with `Content-Type: application/json`",
            ),
            JsonRejection::JsonSyntaxError(_) => ApiError::new(
                ErrorCode::MalformedJson,
                format!("malformed JSON: {}", r.body_text()),
            ),
            JsonRejection::JsonDataError(_) => ApiError::new(
                ErrorCode::InvalidRequest,
                format!("invalid request body: {}", r.body_text()),
            ),
            _ if r.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                ErrorCode::PayloadTooLarge,
                "the request body is over the 16 KiB limit",
            ),
            _ => ApiError::new(ErrorCode::BadRequest, r.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> ApiError {
        ApiError::new(
            ErrorCode::InvalidPath,
            format!("invalid path parameter: {}", r.body_text()),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.as_str().to_owned(),
                message: self.message,
            },
        };
        let mut resp = (self.code.status(), Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}
