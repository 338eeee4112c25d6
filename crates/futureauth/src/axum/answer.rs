//! How the auth routes read bodies and answer: the JSON body extractor, cookies on an
//! answer, the signed-in answer (with the token for clients that keep no cookies) and the
//! current session. Shared by the routes in `router` and `passkey`.

use axum::extract::rejection::JsonRejection;
use axum::extract::FromRequest;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::cookie::set_session;
use super::extract::{lookup, AuthSession};
use super::rejection::ApiError;
use crate::model::{Session, User};
use crate::{FutureAuth, OtpBinding};

/// `axum::Json` whose rejections are [`ApiError`]s.
pub(super) struct Body<T>(pub(super) T);

impl<T, S> FromRequest<S> for Body<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(Json::<T>::from_request(req, state).await?.0))
    }
}

pub(super) fn ok() -> Json<serde_json::Value> {
    Json(json!({ "ok": true }))
}

pub(super) fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// The request header by which a client that keeps no cookies (a native or mobile app, a
/// CLI) asks for the binding and the session token in the JSON answers.
pub(crate) const CLIENT_HEADER: &str = "x-futureauth-client";
/// The request header such a client sends its binding back in (instead of the cookie).
pub(crate) const BINDING_HEADER: &str = "x-futureauth-binding";

/// The client asked for values instead of cookies (`X-FutureAuth-Client: native`). A
/// browser page's script could send it too, but it then only sees the values its own
/// request creates: the cookies of other requests stay HttpOnly.
pub(super) fn is_native(headers: &HeaderMap) -> bool {
    headers
        .get(CLIENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("native"))
}

/// The binding a cookie-less client sends back in `X-FutureAuth-Binding`.
pub(super) fn header_binding(headers: &HeaderMap) -> Option<OtpBinding> {
    headers
        .get(BINDING_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| OtpBinding::parse(v.trim()))
}

/// `body` with `"binding"` added for a native client.
pub(super) fn with_binding(
    mut body: serde_json::Value,
    headers: &HeaderMap,
    binding: &OtpBinding,
) -> Json<serde_json::Value> {
    if is_native(headers) {
        body["binding"] = json!(binding.as_str());
    }
    Json(body)
}

pub(super) fn signed_in(
    auth: &FutureAuth,
    headers: &HeaderMap,
    user: User,
    session: Session,
) -> Response {
    let mut body = json!({ "user": user, "session": session });
    // The token itself, for `Authorization: Bearer`, only to a client that asked.
    if is_native(headers) {
        body["token"] = json!(session.token);
    }
    with_session(auth, body, &session)
}

/// `body` with the session cookie of `session`, never cached.
pub(super) fn with_session(
    auth: &FutureAuth,
    body: serde_json::Value,
    session: &Session,
) -> Response {
    let cookie = set_session(auth.config(), &session.token, session.expires_at);
    let mut response = with_cookie(Json(body).into_response(), cookie);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The signed-in user and session, for the routes below.
pub(super) async fn current(
    auth: &FutureAuth,
    headers: &HeaderMap,
) -> Result<AuthSession, ApiError> {
    lookup(headers, auth)
        .await?
        .ok_or_else(ApiError::unauthorized)
}
