//! The operator session (the SDK's session in the `futureauth_console` cookie, named
//! `__Host-futureauth_console` over https), the CSRF token tied to it and the Origin check of
//! every form.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use futureauth::axum::{cookie_value, AuthSession};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::{Console, ConsoleSettings};
use crate::service::console as ops;
use crate::store::Operator;

/// A signed-in operator.
#[derive(Debug, Clone)]
pub struct Signed {
    /// Who.
    pub operator: Operator,
    /// The operator's user id in the console's own `futureauth` tables (their passkeys
    /// belong to it).
    pub user_id: String,
    /// The SDK session token (to sign out).
    pub token: String,
    /// The CSRF token every form of this session must carry.
    pub csrf: String,
    /// The operator's projects, for the project switcher of every project page.
    pub projects: Vec<ProjectLink>,
}

/// A project in the switcher: where it is and what it is called.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProjectLink {
    /// Project id.
    pub id: String,
    /// Display name.
    pub name: String,
}

/// The value of the console's session cookie, if any.
pub fn cookie_token(settings: &ConsoleSettings, headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, settings.session_cookie).map(str::to_owned)
}

/// The browser's code binding, if it sent one of the right shape.
pub fn binding(settings: &ConsoleSettings, headers: &HeaderMap) -> Option<futureauth::OtpBinding> {
    cookie_value(headers, settings.binding_cookie).and_then(futureauth::OtpBinding::parse)
}

/// `Set-Cookie` as the SDK sets its own: HttpOnly, SameSite=Lax, `Path=/` and no `Domain`
/// (what the `__Host-` prefix requires), Secure unless plain-HTTP loopback.
pub(super) fn set_cookie(
    settings: &ConsoleSettings,
    name: &'static str,
    value: &str,
    max_age: u64,
) -> HeaderValue {
    // Values are tokens and bindings of URL-safe characters: always a valid header.
    futureauth::axum::set_cookie(name, value, max_age, settings.cookie_secure)
        .unwrap_or_else(|| HeaderValue::from_static("futureauth_console=; Path=/; Max-Age=0"))
}

/// `Set-Cookie` for the code binding, as long as a code lives.
pub fn binding_cookie(settings: &ConsoleSettings, binding: &futureauth::OtpBinding) -> HeaderValue {
    set_cookie(settings, settings.binding_cookie, binding.as_str(), 600)
}

/// The browser's passkey binding, if it sent one of the right shape.
pub fn passkey_binding(
    settings: &ConsoleSettings,
    headers: &HeaderMap,
) -> Option<futureauth::OtpBinding> {
    cookie_value(headers, settings.passkey_cookie).and_then(futureauth::OtpBinding::parse)
}

/// `Set-Cookie` for the passkey binding, as long as a challenge lives (`max_age`), or with
/// `None` one that deletes it.
pub fn passkey_binding_cookie(
    settings: &ConsoleSettings,
    binding: Option<&futureauth::OtpBinding>,
    max_age: u64,
) -> HeaderValue {
    match binding {
        Some(b) => set_cookie(settings, settings.passkey_cookie, b.as_str(), max_age),
        None => set_cookie(settings, settings.passkey_cookie, "", 0),
    }
}

/// `Set-Cookie` for a new session or, with `None`, one that deletes it.
pub fn session_cookie(
    settings: &ConsoleSettings,
    token: Option<&str>,
    max_age: u64,
) -> HeaderValue {
    match token {
        Some(t) => set_cookie(settings, settings.session_cookie, t, max_age),
        None => set_cookie(settings, settings.session_cookie, "", 0),
    }
}

/// The CSRF token of a session: HMAC of its id under a server secret, so it is bound to the
/// session, unguessable, and needs no storage.
pub fn csrf_token(key: &[u8], session_id: &str) -> String {
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(b"console-csrf\0");
    mac.update(session_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Whether a state-changing request comes from one of the console's own origins. Browsers
/// always send `Origin` on form posts; a request without one is refused too.
pub fn origin_allowed(headers: &HeaderMap, settings: &ConsoleSettings) -> bool {
    headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|o| settings.origins.iter().any(|a| a == o.trim()))
}

impl Signed {
    /// Whether `submitted` is this session's CSRF token (compared in constant time).
    pub fn csrf_ok(&self, submitted: &str) -> bool {
        let ok: bool = submitted.as_bytes().ct_eq(self.csrf.as_bytes()).into();
        ok && !self.csrf.is_empty()
    }

    /// Refuses (403) a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, console: &Console, submitted: &str) -> Result<(), Response> {
        if self.csrf_ok(submitted) {
            Ok(())
        } else {
            Err(console.error_page(
                StatusCode::FORBIDDEN,
                "This form has expired",
                "The form was missing its security token or came from another page. Go back, reload and try again.",
            ))
        }
    }
}

impl FromRequestParts<Console> for Signed {
    type Rejection = Response;

    /// The SDK's [`AuthSession`] of the console's cookie, then the operator behind it. Pages
    /// answer as pages: signed out is a redirect to the sign-in page, an outage the 503 page.
    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Response> {
        // Several extractors of one request need the session: look it up once.
        if let Some(signed) = parts.extensions.get::<Signed>() {
            return Ok(signed.clone());
        }
        let to_login = || Redirect::to("/dashboard/login").into_response();
        // The console's session lives in its cookie only: `Authorization` (which the SDK
        // reads first) is set aside for the look-up, so the session found is the one
        // `token` names and sign-out ends.
        let authorization: Vec<HeaderValue> = parts
            .headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .cloned()
            .collect();
        parts.headers.remove(header::AUTHORIZATION);
        let found =
            <AuthSession as OptionalFromRequestParts<Console>>::from_request_parts(parts, console)
                .await;
        for value in authorization {
            parts.headers.append(header::AUTHORIZATION, value);
        }
        let found = found.map_err(|e| console.unavailable(e))?;
        let (Some(AuthSession { user, session }), Some(token)) =
            (found, cookie_token(console.settings(), &parts.headers))
        else {
            return Err(to_login());
        };
        let Some(email) = user.email else {
            return Err(to_login());
        };
        let operator = ops::operator(console.store(), &email)
            .await
            .map_err(|e| console.fail(e))?;
        let Some(operator) = operator else {
            return Err(to_login());
        };
        let projects = ops::projects(console.store(), &operator)
            .await
            .map_err(|e| console.fail(e))?
            .into_iter()
            .map(|m| ProjectLink {
                id: m.project.id,
                name: m.project.name,
            })
            .collect();
        let signed = Signed {
            csrf: csrf_token(console.csrf_key(), &session.id),
            user_id: user.id,
            operator,
            token,
            projects,
        };
        parts.extensions.insert(signed.clone());
        Ok(signed)
    }
}
