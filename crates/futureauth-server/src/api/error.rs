//! The JSON error response: `{"error": {"code": "snake_case", "message": "human text"}}`.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ServiceError;

/// `Retry-After` (seconds) of a 503: short, since outages of the store are expected to be
/// fail-overs and restarts measured in seconds.
pub const RETRY_UNAVAILABLE_SECS: u64 = 2;

/// An HTTP error of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code.
    pub code: &'static str,
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
    /// `unsupported_media_type`, `not_found`, `storage_unavailable`, `overloaded`.
    #[schema(example = "invalid_destination")]
    pub code: String,
    /// Human readable explanation.
    #[schema(example = "destination must be a plain email address such as user@example.com")]
    pub message: String,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 503 with `Retry-After`: a dependency (the database) or capacity is missing for now;
    /// the same request may succeed a moment later.
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            retry_after: Some(RETRY_UNAVAILABLE_SECS),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        }
    }

    /// 404 for unknown routes and resources.
    pub fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> ApiError {
        match e {
            ServiceError::Validation { code, message } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            }
            ServiceError::InvalidApiKey => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_api_key",
                "missing, unknown or revoked secret key: send `Authorization: Bearer vx_sec_…`",
            ),
            ServiceError::RateLimited {
                scope,
                retry_after_secs,
            } => {
                crate::metrics::rate_limited(scope);
                ApiError {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    code: "rate_limited",
                    message: format!(
                        "too many messages ({scope} limit); retry after {retry_after_secs} seconds"
                    ),
                    retry_after: Some(retry_after_secs),
                }
            }
            ServiceError::NotFound => ApiError::not_found(),
            ServiceError::IdempotencyConflict => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was already used for a different request",
            ),
            ServiceError::Store(e) => {
                tracing::error!(error = %e, "storage error");
                ApiError::unavailable(
                    "storage_unavailable",
                    "the message store is unavailable; retry later",
                )
            }
            ServiceError::Template(e) => {
                tracing::error!(error = %e, "template error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "internal error",
                )
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        match &r {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ),
            JsonRejection::JsonSyntaxError(_) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("malformed JSON: {}", r.body_text()),
            ),
            JsonRejection::JsonDataError(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                format!("invalid request body: {}", r.body_text()),
            ),
            _ if r.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is over the 16 KiB limit",
            ),
            _ => ApiError::new(StatusCode::BAD_REQUEST, "bad_request", r.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_path",
            format!("invalid path parameter: {}", r.body_text()),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}
