//! Extractors: bearer-key authentication and JSON bodies with JSON errors.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum_extra::headers::authorization::Bearer;
use axum_extra::headers::{Authorization, HeaderMapExt};
use futureauth_proto::{Channel, Message};
use serde_json::Value;

use super::error::ApiError;
use super::AppState;
use crate::error::{ErrorCode, ServiceError};
use crate::service::{projects, IdempotencyKey};
use crate::store::Project;

/// The token of `Authorization: Bearer <token>`, trimmed, through the same typed header as
/// the SDK's session extractor (scheme case-insensitive); `None` without one.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .typed_get::<Authorization<Bearer>>()
        .map(|auth| auth.token().trim().to_owned())
}

/// The project authenticated by `Authorization: Bearer vx_sec_…`.
#[derive(Debug, Clone)]
pub struct AuthProject(pub Project);

impl FromRequestParts<AppState> for AuthProject {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = bearer(&parts.headers).ok_or(ServiceError::InvalidApiKey)?;
        let project = projects::authenticate(&state.store, &key).await?;
        Ok(AuthProject(project))
    }
}

/// `axum::Json` whose rejections are [`ApiError`]s (400 malformed, 413, 415, 422).
#[derive(Debug, Clone, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Path` whose rejections are [`ApiError`]s.
#[derive(Debug, Clone, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// `axum::extract::Query` whose rejections are [`ApiError`]s (422 `invalid_request`).
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| ApiQuery(v))
            .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e.body_text()))
    }
}

/// The body of `POST /api/v1/otp/send`, as the wire type the SDKs serialise: a JSON object
/// (422 `invalid_request` otherwise) whose `channel`, if a string, names a channel (422
/// `unknown_channel` otherwise).
#[derive(Debug, Clone)]
pub struct SendJson(pub Message);

impl<S: Send + Sync> FromRequest<S> for SendJson {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ApiJson(mut value) = ApiJson::<Value>::from_request(req, state).await?;
        let invalid = |m: String| ApiError::new(ErrorCode::InvalidRequest, m);
        let Some(fields) = value.as_object_mut() else {
            return Err(invalid("the body must be a JSON object".into()));
        };
        // The schema allows `"project_name": null` (the field is never shown): null is absent.
        if fields.get("project_name").is_some_and(Value::is_null) {
            fields.remove("project_name");
        }
        if let Some(channel) = value.get("channel").and_then(Value::as_str) {
            channel
                .parse::<Channel>()
                .map_err(|e| ApiError::new(ErrorCode::UnknownChannel, e.to_string()))?;
        }
        serde_json::from_value(value)
            .map(SendJson)
            .map_err(|e| invalid(format!("invalid request body: {e}")))
    }
}

/// The optional `Idempotency-Key` header: 1 to 255 visible ASCII characters, else 400
/// `invalid_idempotency_key`.
#[derive(Debug, Clone)]
pub struct OptionalIdempotencyKey(pub Option<IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for OptionalIdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(raw) = parts.headers.get("idempotency-key") else {
            return Ok(Self(None));
        };
        IdempotencyKey::parse(raw.as_bytes())
            .map(|k| Self(Some(k)))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidIdempotencyKey,
                    "Idempotency-Key must be 1 to 255 visible ASCII characters",
                )
            })
    }
}
