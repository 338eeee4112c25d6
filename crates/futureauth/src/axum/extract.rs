//! The [`AuthSession`] and [`RecentAuthSession`] extractors.

use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;

use super::cookie::session_token;
use super::rejection::ApiError;
use crate::model::{Session, User};
use crate::FutureAuth;

/// The signed-in user of a request, from the session cookie or an
/// `Authorization: Bearer` token. Rejects with `401 {"error": {"code": "unauthorized", ...}}`,
/// or `503 {"error": {"code": "unavailable", ...}}` with `Retry-After` while the database
/// is unreachable: an outage never reads as signed out (nor as signed in), and
/// `Option<AuthSession>` rejects the same way instead of answering `None`.
///
/// Your state must give access to the [`FutureAuth`] through `AsRef<Arc<FutureAuth>>`. Use
/// `Option<AuthSession>` for routes that also serve signed-out visitors.
///
/// ```
/// use axum::Json;
/// use futureauth::axum::AuthSession;
///
/// async fn me(auth: AuthSession) -> Json<serde_json::Value> {
///     Json(serde_json::json!({ "id": auth.user.id, "email": auth.user.email }))
/// }
///
/// async fn home(auth: Option<AuthSession>) -> String {
///     match auth {
///         Some(auth) => format!("hello {}", auth.user.id),
///         None => "hello stranger".to_string(),
///     }
/// }
/// ```
#[derive(Debug, Clone)]
pub struct AuthSession {
    /// The signed-in user.
    pub user: User,
    /// The session (its `token` field is empty).
    pub session: Session,
}

/// The session of a request's cookie or bearer token, if it is valid.
pub(crate) async fn lookup(
    headers: &HeaderMap,
    auth: &FutureAuth,
) -> Result<Option<AuthSession>, ApiError> {
    let Some((token, _)) = session_token(headers, &auth.config().cookie_name) else {
        return Ok(None);
    };
    let found = auth.get_session(&token).await?;
    Ok(found.map(|(user, session)| AuthSession { user, session }))
}

impl<S> FromRequestParts<S> for AuthSession
where
    S: Send + Sync + AsRef<Arc<FutureAuth>>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        lookup(&parts.headers, state.as_ref())
            .await?
            .ok_or_else(ApiError::unauthorized)
    }
}

impl<S> OptionalFromRequestParts<S> for AuthSession
where
    S: Send + Sync + AsRef<Arc<FutureAuth>>,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        lookup(&parts.headers, state.as_ref()).await
    }
}

/// An [`AuthSession`] whose user proved who they are within
/// [`recent_auth_max_age`](crate::FutureAuthConfig::recent_auth_max_age) (default 10
/// minutes): for sensitive actions such as changing payout details. An older sign-in is
/// rejected with `403 {"error": {"code": "reauthentication_required", ...}}`: sign in again
/// (by code, link or passkey), then retry. No session is `401`, as for [`AuthSession`].
///
/// ```
/// use futureauth::axum::RecentAuthSession;
///
/// async fn change_payout(RecentAuthSession(auth): RecentAuthSession) -> String {
///     format!("payout details of {} may change", auth.user.id)
/// }
/// ```
#[derive(Debug, Clone)]
pub struct RecentAuthSession(pub AuthSession);

impl<S> FromRequestParts<S> for RecentAuthSession
where
    S: Send + Sync + AsRef<Arc<FutureAuth>>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = <AuthSession as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        state.as_ref().require_recent_sign_in(&auth.session)?;
        Ok(Self(auth))
    }
}
