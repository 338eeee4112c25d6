//! Extractors: bearer-key authentication and JSON bodies with JSON errors.

use axum::extract::{FromRequest, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::error::ApiError;
use super::AppState;
use crate::error::ServiceError;
use crate::service::projects;
use crate::store::Project;

/// The project authenticated by `Authorization: Bearer vx_sec_…`.
#[derive(Debug, Clone)]
pub struct AuthProject(pub Project);

impl FromRequestParts<AppState> for AuthProject {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ServiceError::InvalidApiKey)?;
        let (scheme, key) = header
            .trim()
            .split_once(' ')
            .ok_or(ServiceError::InvalidApiKey)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ServiceError::InvalidApiKey.into());
        }
        let project = projects::authenticate(&state.store, key.trim()).await?;
        Ok(AuthProject(project))
    }
}

/// `axum::Json` whose rejections are [`ApiError`]s (400 malformed, 413, 415, 422).
#[derive(Debug, Clone, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);
