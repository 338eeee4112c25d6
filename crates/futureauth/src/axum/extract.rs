//! The [`AuthSession`] and [`RecentAuthSession`] extractors, and the [`AuthState`] they take
//! from any app state.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
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
/// Your state must hand out the [`FutureAuth`] as an [`AuthState`]: implement
/// `AsRef<Arc<FutureAuth>>` for it, or axum's `FromRef` (see [`AuthState`]). Use
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

/// The [`FutureAuth`] the extractors of this module take from your app state, through axum's
/// [`FromRef`] (the way axum asks libraries to take their part of an app's state).
///
/// Two ways to hand it out. A state that implements `AsRef<Arc<FutureAuth>>` (the form of the
/// crate's examples) gets it with no further code:
///
/// ```
/// use std::sync::Arc;
/// use futureauth::FutureAuth;
///
/// #[derive(Clone)]
/// struct AppState { auth: Arc<FutureAuth> }
/// impl AsRef<Arc<FutureAuth>> for AppState {
///     fn as_ref(&self) -> &Arc<FutureAuth> { &self.auth }
/// }
/// ```
///
/// Any other state implements `FromRef` itself, e.g. one that keeps the `FutureAuth` beside
/// other parts, or one that already implements `AsRef<Arc<FutureAuth>>` for something else:
///
/// ```
/// use std::sync::Arc;
/// use axum::extract::FromRef;
/// use futureauth::axum::{AuthSession, AuthState};
/// use futureauth::FutureAuth;
///
/// #[derive(Clone)]
/// struct AppState { auth: Arc<FutureAuth>, name: String }
/// impl FromRef<AppState> for AuthState {
///     fn from_ref(state: &AppState) -> Self { AuthState(state.auth.clone()) }
/// }
///
/// async fn me(auth: AuthSession) -> String { auth.user.id }
/// let _ = axum::Router::<AppState>::new().route("/me", axum::routing::get(me));
/// ```
///
/// (`#[derive(FromRef)]` on a state with an `AuthState` field does the same.)
#[derive(Debug, Clone)]
pub struct AuthState(pub Arc<FutureAuth>);

/// The state form of the crate's examples (`impl AsRef<Arc<FutureAuth>> for AppState`).
impl<S: AsRef<Arc<FutureAuth>>> FromRef<S> for AuthState {
    fn from_ref(state: &S) -> Self {
        AuthState(state.as_ref().clone())
    }
}

impl std::ops::Deref for AuthState {
    type Target = FutureAuth;

    fn deref(&self) -> &FutureAuth {
        &self.0
    }
}

/// The session of a request's cookie or bearer token, if it is valid.
pub(crate) async fn lookup(
    headers: &HeaderMap,
    auth: &FutureAuth,
) -> Result<Option<AuthSession>, ApiError> {
    let Some((token, _)) = session_token(headers, &auth.config().cookie_name) else {
        return Ok(None);
    };
    // A cache hit answers here, before the lookup's future is built; the lookup runs boxed,
    // so that this future stays small to move (`scripts/check-cost`).
    if let Some((user, session)) = auth.cached_session(&token) {
        return Ok(Some(AuthSession { user, session }));
    }
    let found = Box::pin(auth.get_session(&token)).await?;
    Ok(found.map(|(user, session)| AuthSession { user, session }))
}

/// Implements an extractor for any app state that hands out the [`AuthState`] (the same
/// header on each; only the body differs).
macro_rules! from_auth_state {
    ($trait:ident for $ty:ty => $out:ty, |$parts:ident, $state:ident| $body:block) => {
        impl<S> $trait<S> for $ty
        where
            S: Send + Sync,
            AuthState: FromRef<S>,
        {
            type Rejection = ApiError;

            async fn from_request_parts(
                $parts: &mut Parts,
                $state: &S,
            ) -> Result<$out, Self::Rejection> {
                $body
            }
        }
    };
}

from_auth_state!(FromRequestParts for AuthSession => Self, |parts, state| {
    lookup(&parts.headers, &AuthState::from_ref(state))
        .await?
        .ok_or_else(ApiError::unauthorized)
});

from_auth_state!(OptionalFromRequestParts for AuthSession => Option<Self>, |parts, state| {
    lookup(&parts.headers, &AuthState::from_ref(state)).await
});

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

from_auth_state!(FromRequestParts for RecentAuthSession => Self, |parts, state| {
    let auth = <AuthSession as FromRequestParts<S>>::from_request_parts(parts, state).await?;
    AuthState::from_ref(state).require_recent_sign_in(&auth.session)?;
    Ok(Self(auth))
});
