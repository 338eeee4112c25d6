//! The HTTP API under `/api/auth/`.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::answer::{
    current, header_binding, is_native, ok, signed_in, with_binding, with_cookie, with_session,
    Body,
};
use super::cookie::{clear_session, session_token, set_session, BindingCookie, TokenSource};
use super::csrf;
use super::extract::AuthSession;
use super::rejection::ApiError;
use crate::error::ErrorCode;
use crate::model::{LinkStatus, OtpChannel};
use crate::RequestContext;
use crate::{FutureAuth, OtpBinding};

/// Largest request body the auth routes read.
const BODY_LIMIT: usize = 16 * 1024;

/// The auth routes, for `.merge()` into your router (they already start with `/api/auth/`).
///
/// | route | body | answer |
/// |---|---|---|
/// | `POST /api/auth/send-otp` | `{"email": ...}` or `{"phone": "+1..."}` | `{"ok": true}` + binding cookie |
/// | `POST /api/auth/verify-otp` | `{"email" or "phone", "code"}` + binding cookie | `{"user", "session"}` + cookie |
/// | `POST /api/auth/send-magic-link` | `{"email", "callback_url"?}` | `{"ok": true, "match_number"}` + binding cookie |
/// | `GET`/`HEAD /api/auth/magic-link?token=...` | | confirmation page; the token is NOT used |
/// | `POST /api/auth/magic-link` | form `token=...` (from that page) | `303` to `after_sign_in_path` + cookie |
/// | `POST /api/auth/magic-link` | form `token`, `action=approve`, `number` | approves the link for the browser that asked |
/// | `POST /api/auth/magic-link-status` | binding cookie | `{"status": "waiting", "match_number"}`, `"signed_in"` + cookie, or `"none"` |
/// | `POST /api/auth/verify-magic-link` | `{"token"}` | `{"user", "session"}` + cookie |
/// | `GET /api/auth/session` (alias `get-session`) | | `{"user", "session"}` or 401 |
/// | `POST /api/auth/sign-out` | | `{"ok": true}`, cookie cleared |
/// | `GET /api/auth/sessions` | | `{"sessions": [...]}` of the signed-in user |
/// | `POST /api/auth/revoke-session` | `{"id"}` | `{"ok": true}` |
/// | `POST /api/auth/sign-out-all` | | `{"ok": true, "revoked": n}`, cookie cleared |
/// | `POST /api/auth/change-identifier` | `{"email"}` or `{"phone"}` (new address) | `{"ok": true}`: a code went there, a notice to the old one |
/// | `POST /api/auth/verify-identifier-change` | `{"email" or "phone", "code"}` | `{"user"}` with the new address |
/// | `GET /api/auth/confirm-identifier-change?token=...` | | page with a Confirm button (the link in a confirm-address email, sent when `app_url` is set); changes nothing |
/// | `POST /api/auth/confirm-identifier-change` | form `token=...` (from that page) + session cookie | page: confirmed only for the signed-in user who asked; else says to sign in as that account, nothing changes |
/// | `POST /api/auth/remove-identifier` | `{"which": "email" or "phone"}` | `{"user"}`; `409 last_identifier` for the only one |
/// | `POST /api/auth/delete-account` | | `{"ok": true}`, cookie cleared; `403 reauthentication_required` if the sign-in is older than `recent_auth_max_age` |
///
/// Clients that keep no cookies (native and mobile apps, CLIs) send
/// `X-FutureAuth-Client: native`: `send-otp` and `send-magic-link` then also answer
/// `"binding"`, which the client sends back in the `X-FutureAuth-Binding` header on
/// `verify-otp` (and `magic-link-status`, `verify-magic-link`), and sign-ins answer
/// `"token"`, for `Authorization: Bearer`. Without the header the values stay in HttpOnly
/// cookies. A before-send value for the app's hooks (e.g. a CAPTCHA token) goes in
/// `X-FutureAuth-Hook-Token`.
///
/// A code sent here is bound to the client that asked, by an HttpOnly cookie that lives as
/// long as the code ([`FutureAuth::send_otp_with`] with a binding): nobody else can replace it or spend
/// its attempts, so knowing someone's address is not enough to lock them out.
///
/// A link opened in another browser than the one that asked offers to sign in the asking
/// browser: the person types the two-digit `match_number` that browser shows (from
/// `send-magic-link` or `magic-link-status`); the asking browser, polling
/// `magic-link-status`, then receives the session. A wrong number voids the link.
///
/// Magic links without a `callback_url` point at the landing page
/// ([`FutureAuthConfig::magic_link_path`](crate::FutureAuthConfig::magic_link_path), default
/// `/api/auth/magic-link`, on `app_url`). Opening it (`GET`/`HEAD`, as mail scanners do, any
/// number of times) never uses the token; only the page's button (`POST`) signs in. Apps
/// with their own page keep `POST /api/auth/verify-magic-link` and must likewise never use
/// the token on `GET`.
///
/// Errors are `{"error": {"code", "message"}}` with a 4xx status (429 carries
/// `Retry-After`). State-changing routes reject cross-site browser requests.
pub fn auth_router<S>(auth: Arc<FutureAuth>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    // `validate` keeps a bad path out; should an unvalidated config get here, the default
    // path keeps the router from panicking.
    let landing_path = match &auth.config().magic_link_path {
        p if crate::config::is_plain_path(p)
            && p.starts_with("/api/auth/")
            && !crate::config::AUTH_ROUTES.contains(&p.as_str()) =>
        {
            p.clone()
        }
        _ => "/api/auth/magic-link".to_string(),
    };
    let router = Router::new()
        .route(
            &landing_path,
            get(super::magic_link::landing).post(super::magic_link::landing_post),
        )
        .route("/api/auth/send-otp", post(send_otp))
        .route("/api/auth/verify-otp", post(verify_otp))
        .route("/api/auth/send-magic-link", post(send_magic_link))
        .route("/api/auth/verify-magic-link", post(verify_magic_link))
        .route("/api/auth/magic-link-status", post(magic_link_status))
        .route("/api/auth/session", get(session))
        .route("/api/auth/get-session", get(session))
        .route("/api/auth/sign-out", post(sign_out))
        .route("/api/auth/sessions", get(list_sessions))
        .route("/api/auth/revoke-session", post(revoke_session))
        .route("/api/auth/sign-out-all", post(sign_out_all))
        .route("/api/auth/change-identifier", post(change_identifier))
        .route(
            "/api/auth/verify-identifier-change",
            post(verify_identifier_change),
        )
        .route(
            crate::flow::account::CONFIRM_CHANGE_PATH,
            get(super::magic_link::confirm_change_page)
                .post(super::magic_link::confirm_change_post),
        )
        .route("/api/auth/remove-identifier", post(remove_identifier))
        .route("/api/auth/delete-account", post(delete_account));
    // The passkey routes answer only when passkeys are configured.
    #[cfg(feature = "passkeys")]
    let router = match auth.config().passkeys {
        Some(_) => router.merge(super::passkey::routes()),
        None => router,
    };
    router
        .layer(csrf::csrf_layer(auth.clone()))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(auth)
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(super) struct SendOtp {
    email: Option<String>,
    phone: Option<String>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(super) struct VerifyOtp {
    email: Option<String>,
    phone: Option<String>,
    code: String,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(super) struct SendMagicLink {
    email: String,
    /// The page the link opens; default: the landing page `auth_router` serves.
    #[serde(default)]
    callback_url: Option<String>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(super) struct VerifyMagicLink {
    token: String,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(super) struct RevokeSession {
    id: String,
}

/// Exactly one of `email` and `phone`.
fn pick(email: Option<String>, phone: Option<String>) -> Result<(OtpChannel, String), ApiError> {
    match (email, phone) {
        (Some(email), None) => Ok((OtpChannel::Email, email)),
        (None, Some(phone)) => Ok((OtpChannel::Phone, phone)),
        _ => Err(ApiError::from_code(
            ErrorCode::InvalidRequest,
            "send exactly one of \"email\" and \"phone\"",
        )),
    }
}

/// Sends a code bound to this browser: the binding cookie it already holds (so Resend
/// replaces its own code) or a new one, set on the answer.
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/auth/send-otp", tag = "futureauth", request_body = SendOtp, responses((status = 200, description = "Code sent, or silently not (the same answer for unknown addresses); sets the binding cookie", body = super::body::Ok), super::body::Rejected)))]
pub(super) async fn send_otp(
    State(auth): State<Arc<FutureAuth>>,
    mut req: RequestContext,
    headers: HeaderMap,
    Body(body): Body<SendOtp>,
) -> Result<Response, ApiError> {
    let (channel, destination) = pick(body.email, body.phone)?;
    let binding = BindingCookie::Otp
        .read(&headers, auth.config())
        .or_else(|| header_binding(&headers))
        .unwrap_or_else(OtpBinding::generate);
    req.binding = Some(binding.clone());
    auth.send_otp_with(channel, &destination, &req).await?;
    Ok(with_cookie(
        with_binding(json!({ "ok": true }), &headers, &binding).into_response(),
        BindingCookie::Otp.set(auth.config(), &binding, auth.config().otp_ttl),
    ))
}

/// Checks the code of this browser's binding; without a binding cookie (a client that keeps
/// no cookies), the unbound code.
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/auth/verify-otp", tag = "futureauth", request_body = VerifyOtp, responses((status = 200, description = "Signed in; sets the session cookie", body = super::body::SignedIn), super::body::Rejected)))]
pub(super) async fn verify_otp(
    State(auth): State<Arc<FutureAuth>>,
    mut req: RequestContext,
    headers: HeaderMap,
    Body(body): Body<VerifyOtp>,
) -> Result<Response, ApiError> {
    let (_, identifier) = pick(body.email, body.phone)?;
    req.binding = BindingCookie::Otp
        .read(&headers, auth.config())
        .or_else(|| header_binding(&headers));
    let (user, session) = auth.verify_otp_with(&identifier, &body.code, &req).await?;
    Ok(with_cookie(
        signed_in(&auth, &headers, user, session),
        BindingCookie::Otp.clear(auth.config()),
    ))
}

#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/auth/send-magic-link", tag = "futureauth", request_body = SendMagicLink, responses((status = 200, description = "Link sent, or silently not; sets the link binding cookie", body = super::body::LinkSent), super::body::Rejected)))]
pub(super) async fn send_magic_link(
    State(auth): State<Arc<FutureAuth>>,
    mut req: RequestContext,
    headers: HeaderMap,
    Body(body): Body<SendMagicLink>,
) -> Result<Response, ApiError> {
    let callback = match body.callback_url {
        Some(callback) => callback,
        None => {
            let app = auth.config().app_url.trim_end_matches('/');
            if app.is_empty() {
                return Err(ApiError::from_code(
                    ErrorCode::InvalidRequest,
                    "send \"callback_url\", or set FutureAuthConfig::app_url so that links \
                     point at the built-in landing page",
                ));
            }
            format!("{app}{}", auth.config().magic_link_path)
        }
    };
    // The link is bound to this browser: the binding it already holds (so its earlier links
    // stay its own) or a new one.
    let binding = BindingCookie::Link
        .read(&headers, auth.config())
        .or_else(|| header_binding(&headers))
        .unwrap_or_else(OtpBinding::generate);
    req.binding = Some(binding.clone());
    let match_number = auth
        .send_bound_magic_link(&body.email, &callback, &req)
        .await?;
    let body = json!({ "ok": true, "match_number": match_number });
    let response = with_cookie(
        with_binding(body, &headers, &binding).into_response(),
        BindingCookie::Link.set(auth.config(), &binding, auth.config().magic_link_ttl),
    );
    // The code in the link's email is checked on the unbound path (a bound guess never
    // reaches it), so this browser's code binding, from a code it asked for before, would
    // hide it: the newest request wins.
    Ok(match BindingCookie::Otp.read(&headers, auth.config()) {
        Some(_) => with_cookie(response, BindingCookie::Otp.clear(auth.config())),
        None => response,
    })
}

/// For the browser that asked for a magic link (its link binding cookie): signs it in once
/// another device approved the link, else says whether one waits and the number to show.
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/auth/magic-link-status", tag = "futureauth", responses((status = 200, description = "`{\"status\": \"waiting\", \"match_number\": \"42\"}` while a link waits (show the number), `{\"status\": \"signed_in\", \"user\", \"session\"}` with the session cookie once it was approved on another device, else `{\"status\": \"none\"}`", body = super::body::LinkStatusBody), super::body::Rejected)))]
pub(super) async fn magic_link_status(
    State(auth): State<Arc<FutureAuth>>,
    mut req: RequestContext,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    req.binding = BindingCookie::Link
        .read(&headers, auth.config())
        .or_else(|| header_binding(&headers));
    Ok(match auth.magic_link_status(&req).await? {
        LinkStatus::SignedIn(signed_in) => {
            let (user, session) = *signed_in;
            let mut body = json!({ "status": "signed_in", "user": user, "session": session });
            if is_native(&headers) {
                body["token"] = json!(session.token);
            }
            with_session(&auth, body, &session)
        }
        LinkStatus::Waiting { match_number } => {
            Json(json!({ "status": "waiting", "match_number": match_number })).into_response()
        }
        _ => Json(json!({ "status": "none" })).into_response(),
    })
}

#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/auth/verify-magic-link", tag = "futureauth", request_body = VerifyMagicLink, responses((status = 200, description = "Signed in; sets the session cookie", body = super::body::SignedIn), super::body::Rejected)))]
pub(super) async fn verify_magic_link(
    State(auth): State<Arc<FutureAuth>>,
    mut req: RequestContext,
    headers: HeaderMap,
    Body(body): Body<VerifyMagicLink>,
) -> Result<Response, ApiError> {
    req.binding = BindingCookie::Link
        .read(&headers, auth.config())
        .or_else(|| header_binding(&headers));
    let (user, session) = auth.verify_magic_link_with(&body.token, &req).await?;
    Ok(signed_in(&auth, &headers, user, session))
}

/// The signed-in user; re-issues the cookie when the session slid forward.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/auth/session", tag = "futureauth", responses((status = 200, description = "The signed-in user and session (also at `/api/auth/get-session`)", body = super::body::SignedIn), super::body::Rejected)))]
pub(super) async fn session(
    State(auth): State<Arc<FutureAuth>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (token, source) =
        session_token(&headers, &auth.config().cookie_name).ok_or_else(ApiError::unauthorized)?;
    let (user, session, extended) = auth
        .get_session_checked(&token)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let cookie = (extended && source == TokenSource::Cookie)
        .then(|| set_session(auth.config(), &token, session.expires_at))
        .flatten();
    Ok(with_cookie(
        Json(json!({ "user": user, "session": session })).into_response(),
        cookie,
    ))
}

#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/auth/sign-out", tag = "futureauth", responses((status = 200, description = "Signed out; the cookie is cleared", body = super::body::Ok), super::body::Rejected)))]
pub(super) async fn sign_out(
    State(auth): State<Arc<FutureAuth>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some((token, _)) = session_token(&headers, &auth.config().cookie_name) {
        auth.revoke_session(&token).await?;
    }
    Ok(with_cookie(
        ok().into_response(),
        clear_session(auth.config()),
    ))
}

#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/auth/sessions", tag = "futureauth", responses((status = 200, description = "The signed-in user's live sessions", body = super::body::SessionList), super::body::Rejected)))]
pub(super) async fn list_sessions(
    State(auth): State<Arc<FutureAuth>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let AuthSession {
        user,
        session: current,
    } = current(&auth, &headers).await?;
    let sessions: Vec<_> = auth
        .list_sessions(&user.id)
        .await?
        .into_iter()
        .map(|s| {
            let mut v = json!(s);
            v["current"] = json!(s.id == current.id);
            v
        })
        .collect();
    Ok(Json(json!({ "sessions": sessions })).into_response())
}

#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/auth/revoke-session", tag = "futureauth", request_body = RevokeSession, responses((status = 200, description = "That session is signed out", body = super::body::Ok), super::body::Rejected)))]
pub(super) async fn revoke_session(
    State(auth): State<Arc<FutureAuth>>,
    headers: HeaderMap,
    Body(body): Body<RevokeSession>,
) -> Result<Response, ApiError> {
    let user = current(&auth, &headers).await?.user;
    if !auth.revoke_user_session(&user.id, &body.id).await? {
        return Err(ApiError::from_code(
            ErrorCode::SessionNotFound,
            "no such session",
        ));
    }
    Ok(ok().into_response())
}

#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/auth/sign-out-all", tag = "futureauth", responses((status = 200, description = "Every session of the user is signed out; the cookie is cleared", body = super::body::Revoked), super::body::Rejected)))]
pub(super) async fn sign_out_all(
    State(auth): State<Arc<FutureAuth>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user = current(&auth, &headers).await?.user;
    let revoked = auth.revoke_all_sessions(&user.id).await?;
    let body = Json(json!({ "ok": true, "revoked": revoked }));
    Ok(with_cookie(
        body.into_response(),
        clear_session(auth.config()),
    ))
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(super) struct ChangeIdentifier {
    /// The new email (exactly one of `email` and `phone`).
    email: Option<String>,
    /// The new phone number, E.164.
    phone: Option<String>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(super) struct VerifyIdentifierChange {
    /// The new email (exactly one of `email` and `phone`).
    email: Option<String>,
    /// The new phone number, E.164.
    phone: Option<String>,
    /// The code sent to the new address.
    code: String,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(super) struct RemoveIdentifier {
    /// `email` or `phone` (`sms` works too).
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "phone"))]
    which: OtpChannel,
}

/// Sends a code to the signed-in user's new address and a notice to the old one.
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/auth/change-identifier", tag = "futureauth", request_body = ChangeIdentifier, responses((status = 200, description = "A code went to the new address (the same answer when it belongs to another account), a notice to the old one", body = super::body::Ok), super::body::Rejected)))]
pub(super) async fn change_identifier(
    State(auth): State<Arc<FutureAuth>>,
    req: RequestContext,
    headers: HeaderMap,
    Body(body): Body<ChangeIdentifier>,
) -> Result<Response, ApiError> {
    let user = current(&auth, &headers).await?.user;
    let (channel, new) = pick(body.email, body.phone)?;
    let new = normalized(channel, &new)?;
    auth.request_identifier_change(&user.id, &new, &req).await?;
    Ok(ok().into_response())
}

/// Confirms the change with the code sent to the new address.
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/auth/verify-identifier-change", tag = "futureauth", request_body = VerifyIdentifierChange, responses((status = 200, description = "The address is the user's now", body = super::body::UserBody), super::body::Rejected)))]
pub(super) async fn verify_identifier_change(
    State(auth): State<Arc<FutureAuth>>,
    req: RequestContext,
    headers: HeaderMap,
    Body(body): Body<VerifyIdentifierChange>,
) -> Result<Response, ApiError> {
    let user = current(&auth, &headers).await?.user;
    let (channel, new) = pick(body.email, body.phone)?;
    let new = normalized(channel, &new)?;
    let user = auth
        .confirm_identifier_change(&user.id, &new, &body.code, &req)
        .await?;
    Ok(Json(json!({ "user": user })).into_response())
}

/// Removes the user's email or phone while the other remains.
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/auth/remove-identifier", tag = "futureauth", request_body = RemoveIdentifier, responses((status = 200, description = "Removed", body = super::body::UserBody), super::body::Rejected)))]
pub(super) async fn remove_identifier(
    State(auth): State<Arc<FutureAuth>>,
    headers: HeaderMap,
    Body(body): Body<RemoveIdentifier>,
) -> Result<Response, ApiError> {
    let user = current(&auth, &headers).await?.user;
    let user = auth.remove_identifier(&user.id, body.which).await?;
    Ok(Json(json!({ "user": user })).into_response())
}

/// Deletes the signed-in user's account after a recent sign-in.
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/auth/delete-account", tag = "futureauth", responses((status = 200, description = "The account and everything of it are deleted; the cookie is cleared", body = super::body::Ok), super::body::Rejected)))]
pub(super) async fn delete_account(
    State(auth): State<Arc<FutureAuth>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let session = current(&auth, &headers).await?.session;
    auth.delete_account(&session).await?;
    Ok(with_cookie(
        ok().into_response(),
        clear_session(auth.config()),
    ))
}

/// The address of `channel`, normalised (so an email reads as one and a phone as one).
fn normalized(channel: OtpChannel, raw: &str) -> Result<String, ApiError> {
    Ok(match channel {
        OtpChannel::Email => crate::normalize_email(raw)?,
        OtpChannel::Phone => crate::normalize_phone(raw)?,
    })
}
