//! The passkey routes under `/api/auth/passkey/` (feature `passkeys`), merged into
//! [`auth_router`](super::auth_router) when
//! [`FutureAuthConfig::passkeys`](crate::FutureAuthConfig::passkeys) is set.
//!
//! | route | body | answer |
//! |---|---|---|
//! | `POST /api/auth/passkey/register/options` | (signed in) | options for `navigator.credentials.create()` + binding cookie |
//! | `POST /api/auth/passkey/register` | `{"credential", "name"?}` (signed in) + binding cookie | `{"passkey"}` |
//! | `POST /api/auth/passkey/options` | | options for `navigator.credentials.get()` + binding cookie |
//! | `POST /api/auth/passkey/verify` | `{"credential"}` + binding cookie | `{"user", "session"}` + session cookie, as `verify-otp` |
//! | `GET /api/auth/passkeys` | (signed in) | `{"passkeys": [...]}` |
//! | `POST /api/auth/passkey/rename` | `{"id", "name"}` (signed in) | `{"passkey"}` |
//! | `POST /api/auth/passkey/delete` | `{"id"}` (signed in) | `{"ok": true}` |
//!
//! A challenge is bound to the browser that asked for it by an HttpOnly cookie that lives as
//! long as the challenge; the CSRF guard of `auth_router` refuses cross-site requests.

use std::sync::Arc;

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{extract::State, Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::answer::{current, ok, signed_in, with_cookie, Body};
use super::cookie::BindingCookie;
use super::rejection::ApiError;
use crate::{FutureAuth, OtpBinding, RequestContext};

/// The passkey routes (state: the `FutureAuth`).
pub(super) fn routes() -> Router<Arc<FutureAuth>> {
    Router::new()
        .route("/api/auth/passkey/register/options", post(register_options))
        .route("/api/auth/passkey/register", post(register))
        .route("/api/auth/passkey/options", post(sign_in_options))
        .route("/api/auth/passkey/verify", post(verify))
        .route("/api/auth/passkeys", get(list))
        .route("/api/auth/passkey/rename", post(rename))
        .route("/api/auth/passkey/delete", post(delete))
}

/// The answer of `navigator.credentials.create()` or `.get()`, and for a new passkey its
/// name.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(super) struct PasskeyAnswer {
    /// The `PublicKeyCredential` as JSON (`id`, `rawId`, `type`, `response` with base64url
    /// fields), as `PublicKeyCredential.toJSON()` gives it.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    credential: serde_json::Value,
    /// For a new passkey: its name (default: the browser and platform, e.g. "Chrome on
    /// macOS").
    #[serde(default)]
    name: Option<String>,
}

/// Which passkey, and its new name.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(super) struct RenamePasskey {
    id: String,
    name: String,
}

/// Which passkey.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(super) struct DeletePasskey {
    id: String,
}

/// The request's context with this browser's passkey binding: the one it holds, or a new
/// one (returned to be set as a cookie).
fn bound(
    auth: &FutureAuth,
    mut req: RequestContext,
    headers: &HeaderMap,
) -> (RequestContext, Option<OtpBinding>) {
    match BindingCookie::Passkey.read(headers, auth.config()) {
        Some(binding) => {
            req.binding = Some(binding);
            (req, None)
        }
        None => {
            let binding = OtpBinding::generate();
            req.binding = Some(binding.clone());
            (req, Some(binding))
        }
    }
}

/// `options` as the answer, with the binding cookie (set again, so it lives as long as the
/// new challenge).
fn options_answer(auth: &FutureAuth, options: serde_json::Value, req: &RequestContext) -> Response {
    let ttl = auth
        .config()
        .passkeys
        .as_ref()
        .map(|p| p.challenge_ttl)
        .unwrap_or_default();
    let cookie = req
        .binding
        .as_ref()
        .and_then(|b| BindingCookie::Passkey.set(auth.config(), b, ttl));
    with_cookie(Json(options).into_response(), cookie)
}

#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/auth/passkey/register/options", tag = "futureauth", responses((status = 200, description = "Options for `navigator.credentials.create({publicKey})` (under `publicKey`, binary fields base64url); sets the passkey binding cookie", body = Object), super::body::Rejected)))]
pub(super) async fn register_options(
    State(auth): State<Arc<FutureAuth>>,
    req: RequestContext,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user = current(&auth, &headers).await?.user;
    let (req, _) = bound(&auth, req, &headers);
    let options = auth.passkey_registration_options(&user, &req).await?;
    Ok(options_answer(&auth, options, &req))
}

#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/auth/passkey/register", tag = "futureauth", request_body = PasskeyAnswer, responses((status = 200, description = "The passkey was added", body = super::body::PasskeyAdded), super::body::Rejected)))]
pub(super) async fn register(
    State(auth): State<Arc<FutureAuth>>,
    mut req: RequestContext,
    headers: HeaderMap,
    Body(body): Body<PasskeyAnswer>,
) -> Result<Response, ApiError> {
    let user = current(&auth, &headers).await?.user;
    req.binding = BindingCookie::Passkey.read(&headers, auth.config());
    let passkey = auth
        .register_passkey(&user, &body.credential, body.name.as_deref(), &req)
        .await?;
    Ok(Json(json!({ "passkey": passkey })).into_response())
}

#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/auth/passkey/options", tag = "futureauth", responses((status = 200, description = "Options for `navigator.credentials.get({publicKey})` (discoverable: no address needed; use `mediation: \"conditional\"` for autofill); sets the passkey binding cookie", body = Object), super::body::Rejected)))]
pub(super) async fn sign_in_options(
    State(auth): State<Arc<FutureAuth>>,
    req: RequestContext,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (req, _) = bound(&auth, req, &headers);
    let options = auth.passkey_sign_in_options(&req).await?;
    Ok(options_answer(&auth, options, &req))
}

#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/auth/passkey/verify", tag = "futureauth", request_body = PasskeyAnswer, responses((status = 200, description = "Signed in; sets the session cookie", body = super::body::SignedIn), super::body::Rejected)))]
pub(super) async fn verify(
    State(auth): State<Arc<FutureAuth>>,
    mut req: RequestContext,
    headers: HeaderMap,
    Body(body): Body<PasskeyAnswer>,
) -> Result<Response, ApiError> {
    req.binding = BindingCookie::Passkey.read(&headers, auth.config());
    let (user, session) = auth.sign_in_with_passkey(&body.credential, &req).await?;
    Ok(signed_in(&auth, &headers, user, session))
}

#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/auth/passkeys", tag = "futureauth", responses((status = 200, description = "The signed-in user's passkeys, oldest first", body = super::body::PasskeyList), super::body::Rejected)))]
pub(super) async fn list(
    State(auth): State<Arc<FutureAuth>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user = current(&auth, &headers).await?.user;
    let passkeys = auth.list_passkeys(&user.id).await?;
    Ok(Json(json!({ "passkeys": passkeys })).into_response())
}

#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/auth/passkey/rename", tag = "futureauth", request_body = RenamePasskey, responses((status = 200, description = "Renamed", body = super::body::PasskeyAdded), super::body::Rejected)))]
pub(super) async fn rename(
    State(auth): State<Arc<FutureAuth>>,
    headers: HeaderMap,
    Body(body): Body<RenamePasskey>,
) -> Result<Response, ApiError> {
    let user = current(&auth, &headers).await?.user;
    let passkey = auth.rename_passkey(&user.id, &body.id, &body.name).await?;
    Ok(Json(json!({ "passkey": passkey })).into_response())
}

#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/auth/passkey/delete", tag = "futureauth", request_body = DeletePasskey, responses((status = 200, description = "Deleted; codes and links keep working", body = super::body::Ok), super::body::Rejected)))]
pub(super) async fn delete(
    State(auth): State<Arc<FutureAuth>>,
    headers: HeaderMap,
    Body(body): Body<DeletePasskey>,
) -> Result<Response, ApiError> {
    let user = current(&auth, &headers).await?.user;
    auth.delete_passkey(&user.id, &body.id).await?;
    Ok(ok().into_response())
}
