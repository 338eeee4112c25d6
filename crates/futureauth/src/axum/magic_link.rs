//! The magic-link landing page, `/api/auth/magic-link`: scanner-proof by construction.
//!
//! Mail scanners (Safe Links, Proofpoint, Mimecast) and link previews open every link in a
//! message before the person does. Here `GET` and `HEAD` only show a page with a button and
//! never touch the token; only the `POST` that button sends consumes it. The page keeps the
//! token out of the `Referer` of anything it loads (`Referrer-Policy: no-referrer`; it loads
//! nothing), out of caches (`Cache-Control: no-store`) and out of the address bar (its one
//! script replaces the URL), runs no other script (a nonce CSP) and cannot be framed.

use std::sync::Arc;

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;

use super::cookie::set_session;
use crate::token::generate_token;
use crate::{FutureAuth, RequestContext};

/// Where the landing page lives; links point here unless the app names its own page.
pub const MAGIC_LINK_PATH: &str = "/api/auth/magic-link";

/// The token of a link, from its query string or the page's form.
#[derive(Debug, Deserialize)]
pub(super) struct LinkToken {
    #[serde(default)]
    token: String,
}

/// `GET`/`HEAD`: the confirmation page. Never reads or writes the database.
pub(super) async fn landing(
    State(auth): State<Arc<FutureAuth>>,
    query: Result<Query<LinkToken>, QueryRejection>,
) -> Response {
    let token = query.map(|q| q.0.token).unwrap_or_default();
    if !plausible(&token) {
        return page(
            &auth,
            StatusCode::BAD_REQUEST,
            "This sign-in link is incomplete",
            "Copy the whole link from the email, or ask for a new one.",
            None,
        );
    }
    page(
        &auth,
        StatusCode::OK,
        &format!("Sign in to {}", display_name(&auth)),
        "Press the button to finish signing in on this device. Nothing happens until you do.",
        Some(&token),
    )
}

/// `POST` from the page: consumes the token, sets the session cookie and sends the browser
/// to `magic_link_redirect`.
pub(super) async fn confirm(
    State(auth): State<Arc<FutureAuth>>,
    req: RequestContext,
    form: Result<Form<LinkToken>, FormRejection>,
) -> Response {
    let token = form.map(|f| f.0.token).unwrap_or_default();
    match auth.verify_magic_link_with(&token, &req).await {
        Ok((_, session)) => {
            let mut response = (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, auth.config().magic_link_redirect.clone())],
            )
                .into_response();
            if let Some(cookie) = set_session(auth.config(), &session.token, session.expires_at) {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            protect(response.headers_mut(), None);
            response
        }
        Err(e) if e.is_unavailable() => page(
            &auth,
            StatusCode::SERVICE_UNAVAILABLE,
            "Signing in is not possible right now",
            "Please try the link again in a moment.",
            None,
        ),
        Err(e) => {
            let (title, text) = match e.code() {
                "magic_link_expired" => (
                    "This sign-in link has expired",
                    "Ask for a new link; each one works for a short time only.",
                ),
                "rate_limited" => (
                    "Too many attempts",
                    "Please wait a few minutes before trying again.",
                ),
                _ => (
                    "This sign-in link has already been used",
                    "Each link works once. Ask for a new one.",
                ),
            };
            page(&auth, StatusCode::BAD_REQUEST, title, text, None)
        }
    }
}

/// A token of the shape we issue; anything else is not looked at.
fn plausible(token: &str) -> bool {
    futureauth_proto::LinkToken::parse(token).is_ok()
}

fn display_name(auth: &FutureAuth) -> String {
    let name = auth.config().project_name.trim();
    if name.is_empty() {
        "this app".to_string()
    } else {
        name.to_string()
    }
}

/// The security headers of every answer of the landing route; `nonce` allows the page's own
/// script and style.
fn protect(headers: &mut HeaderMap, nonce: Option<&str>) {
    let csp = match nonce {
        Some(n) => format!(
            "default-src 'none'; script-src 'nonce-{n}'; style-src 'nonce-{n}'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        ),
        None => "default-src 'none'; frame-ancestors 'none'; base-uri 'none'".to_string(),
    };
    let pairs = [
        (header::REFERRER_POLICY, "no-referrer".to_string()),
        (header::CACHE_CONTROL, "no-store".to_string()),
        (header::X_FRAME_OPTIONS, "DENY".to_string()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        (header::CONTENT_SECURITY_POLICY, csp),
    ];
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
}

fn page(
    auth: &FutureAuth,
    status: StatusCode,
    title: &str,
    text: &str,
    token: Option<&str>,
) -> Response {
    use html_escape::{encode_double_quoted_attribute as attr, encode_text as text_of};
    let nonce = generate_token();
    let form = token.map_or(String::new(), |token| {
        format!(
            r#"<form method="post" action="{MAGIC_LINK_PATH}"><input type="hidden" name="token" value="{}"><button type="submit" autofocus>Sign in</button></form>
<p class="small">Didn't ask to sign in to {}? Close this page; nothing will happen.</p>"#,
            attr(token),
            text_of(&display_name(auth)),
        )
    });
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">
<title>{title}</title>
<style nonce="{nonce}">body{{font:16px/1.5 system-ui,sans-serif;background:#f6f7f9;color:#111827;margin:0;display:grid;place-items:center;min-height:100vh}}main{{background:#fff;border:1px solid #e5e7eb;border-radius:12px;padding:32px;max-width:380px;margin:16px}}h1{{font-size:20px;margin:0 0 8px}}button{{font:inherit;font-weight:600;background:#4f46e5;color:#fff;border:0;border-radius:8px;padding:10px 18px;margin:12px 0;cursor:pointer;width:100%}}.small{{font-size:13px;color:#6b7280}}</style></head>
<body><main><h1>{title}</h1><p>{text}</p>{form}</main>
<script nonce="{nonce}">history.replaceState(null, "", location.pathname);</script></body></html>"#,
        title = text_of(title),
        text = text_of(text),
    );
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response();
    protect(response.headers_mut(), Some(&nonce));
    response
}
