//! The magic-link landing page `auth_router` serves at
//! [`magic_link_path`](crate::FutureAuthConfig::magic_link_path).
//!
//! Mail scanners (Safe Links, Proofpoint, Mimecast) fetch every link in a message, with
//! `GET` or `HEAD`, sometimes several times. So opening the link never uses the token:
//! `GET`/`HEAD` answer a small confirmation page, and only the `POST` that page's button
//! sends signs in (then `303 See Other` to
//! [`after_sign_in_path`](crate::FutureAuthConfig::after_sign_in_path) with the session
//! cookie). The page:
//! - sends `Referrer-Policy: no-referrer` and `Cache-Control: no-store`, so the token in its
//!   URL leaks neither to other sites nor into caches;
//! - removes the token from the address bar (`history.replaceState`) at once;
//! - carries a strict `Content-Security-Policy` (no sources but its own nonce'd inline
//!   script and style, forms only to itself, never framed).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::cookie::{link_binding, set_session};
use super::rejection::ApiError;
use crate::token::generate_token;
use crate::{FutureAuth, RequestContext};

/// `GET`/`HEAD` of the landing path: the confirmation page. Never touches the token.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/auth/magic-link", tag = "futureauth", params(("token" = Option<String>, Query, description = "The link's token")), responses((status = 200, description = "The confirmation page (HTML); the token is not used. Also answers HEAD. The path is `FutureAuthConfig::magic_link_path`", content_type = "text/html", body = String), (status = 400, description = "The link has no token (HTML page)", content_type = "text/html", body = String))))]
pub(super) async fn landing(
    State(auth): State<Arc<FutureAuth>>,
    RawQuery(query): RawQuery,
) -> Response {
    let config = auth.config();
    let token = query
        .and_then(|q| form_value(q.as_bytes(), "token"))
        .map(|t| t.trim().to_string())
        // Only a token of the shape we issue gets a button; anything else is not a link of ours.
        .filter(|t| futureauth_proto::LinkToken::parse(t).is_ok());
    let nonce = generate_token();
    let Some(token) = token else {
        return page(
            StatusCode::BAD_REQUEST,
            &nonce,
            &config.project_name,
            "This sign-in link is incomplete",
            "<p>Open the link from the email again, or request a new one.</p>",
        );
    };
    let body = format!(
        "<p>Continue to sign in{to}.</p>\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"token\" value=\"{token}\">\
         <button type=\"submit\" id=\"sign-in\">Sign in</button></form>\
         <p class=\"small\">Didn't ask to sign in? Close this page; nothing happens.</p>",
        to = to_project(&config.project_name),
        action = escape(&config.magic_link_path),
        token = escape(&token),
    );
    page(
        StatusCode::OK,
        &nonce,
        &config.project_name,
        "Sign in",
        &body,
    )
}

/// `POST` of the landing path (`token=...`, form-encoded, from the page above): uses the
/// token, sets the session cookie and sends the browser on.
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/auth/magic-link", tag = "futureauth", request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`token=...`, as the confirmation page's form sends it"), responses((status = 303, description = "Signed in: the session cookie is set and `Location` is `FutureAuthConfig::after_sign_in_path`"), (status = 400, description = "Used, replaced or expired link (HTML page)", content_type = "text/html", body = String), (status = 403, description = "Cross-site request (`cross_site_request`, JSON)"), (status = 429, description = "Too many attempts (HTML page)", content_type = "text/html", body = String))))]
pub(super) async fn landing_post(
    State(auth): State<Arc<FutureAuth>>,
    mut req: RequestContext,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let config = auth.config();
    req.binding = link_binding(&headers, config);
    let token = form_value(&body, "token").unwrap_or_default();
    let nonce = generate_token();
    match auth.verify_magic_link_with(&token, &req).await {
        Ok((_, session)) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            let headers = response.headers_mut();
            if let Ok(location) = HeaderValue::from_str(&config.after_sign_in_path) {
                headers.insert(header::LOCATION, location);
            }
            if let Some(cookie) = set_session(config, &session.token, session.expires_at) {
                headers.append(header::SET_COOKIE, cookie);
            }
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            response
        }
        Err(e) => {
            let e = ApiError::from(e);
            let (title, hint) = match e.code() {
                "invalid_magic_link" => (
                    "This sign-in link no longer works",
                    "It was already used, or a newer one replaced it. Request a new link.",
                ),
                "magic_link_expired" => (
                    "This sign-in link has expired",
                    "Request a new link; links work for a short time only.",
                ),
                "magic_link_other_browser" => (
                    "Open this link in the browser you asked from",
                    "This app signs in only the browser that asked for the link. Open the link \
                     there, or request a new link in this browser.",
                ),
                "rate_limited" => (
                    "Too many attempts",
                    "Wait a few minutes, then open the link again.",
                ),
                _ => (
                    "Sign-in failed",
                    "Something went wrong on our side. Try again in a moment.",
                ),
            };
            page(
                e.status(),
                &nonce,
                &config.project_name,
                title,
                &format!("<p>{}</p>", escape(hint)),
            )
        }
    }
}

/// The first value of `name` in a form-encoded query or body.
fn form_value(form: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(form)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn to_project(project: &str) -> String {
    if project.is_empty() {
        String::new()
    } else {
        format!(" to {}", escape(project))
    }
}

/// A complete HTML page with the landing page's security headers.
fn page(status: StatusCode, nonce: &str, project: &str, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{title}{sep}{project}</title>\
         <style nonce=\"{nonce}\">{STYLE}</style></head>\
         <body><main><h1>{title}</h1>{body}</main>\
         <script nonce=\"{nonce}\">history.replaceState(null, \"\", location.pathname);</script>\
         </body></html>",
        title = escape(title),
        sep = if project.is_empty() { "" } else { " · " },
        project = escape(project),
    );
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f6f7f9;color:#1a1d21;\
margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}\
main{background:#fff;border:1px solid #e3e6ea;border-radius:12px;padding:32px;max-width:420px;\
width:calc(100% - 48px)}h1{font-size:1.4rem;margin:0 0 12px}\
button{font:inherit;font-weight:600;background:#1a56db;color:#fff;border:0;border-radius:8px;\
padding:10px 20px;cursor:pointer;width:100%}.small{color:#5b6470;font-size:.85rem}";

/// Escapes text for HTML element content and quoted attributes.
fn escape(text: &str) -> String {
    html_escape::encode_quoted_attribute(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup_and_quotes() {
        let raw = "\"><script>alert('x')</script>&";
        let out = escape(raw);
        assert!(!out.contains(['<', '>', '"', '\'']), "{out}");
        assert_eq!(html_escape::decode_html_entities(&out), raw);
    }
}
