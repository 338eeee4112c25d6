//! The JSON error response: `{"error": {"code": "snake_case", "message": "human text"}}`.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// The envelope of every error answer, shared with the SDK: `ErrorBody` is also the
/// schema both OpenAPI documents name.
pub use futureauth_proto::{ErrorBody, ErrorDetail, RETRY_UNAVAILABLE_SECS};

use crate::error::{ErrorCode, ServiceError};

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
    /// `Retry-After` seconds: a 429's wait; a 503 without one is sent with
    /// [`RETRY_UNAVAILABLE_SECS`].
    pub retry_after: Option<u64>,
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
        let status = self.code.status();
        // Every 503 says when to come back, however it was built: the database or the
        // capacity is missing for now, not for good.
        let retry_after = self
            .retry_after
            .or((status == StatusCode::SERVICE_UNAVAILABLE).then_some(RETRY_UNAVAILABLE_SECS));
        let body = ErrorBody::new(self.code.as_str(), self.message);
        let mut resp = (status, Json(body)).into_response();
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code sent as 503 carries `Retry-After`, even when built without one (as the
    /// management API's and `/readyz`'s are): clients and load balancers retry on it.
    #[test]
    fn every_503_carries_retry_after() {
        let unavailable: Vec<_> = ErrorCode::ALL
            .iter()
            .filter(|c| c.status() == StatusCode::SERVICE_UNAVAILABLE)
            .collect();
        assert_eq!(unavailable.len(), 3, "{unavailable:?}");
        for &code in unavailable {
            for built in [ApiError::new(code, "x"), ApiError::unavailable(code, "x")] {
                let resp = built.into_response();
                assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
                assert_eq!(resp.headers()[header::RETRY_AFTER], "2", "{code}");
            }
        }
        let limited = ApiError {
            retry_after: Some(17),
            ..ApiError::new(ErrorCode::RateLimited, "x")
        };
        assert_eq!(limited.into_response().headers()[header::RETRY_AFTER], "17");
        let refused = ApiError::new(ErrorCode::InvalidRequest, "x").into_response();
        assert!(refused.headers().get(header::RETRY_AFTER).is_none());
    }
}
