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
use chrono::{DateTime, Utc};

use super::cookie::{set_session, BindingCookie};
use super::rejection::ApiError;
use crate::error::ErrorCode;
use crate::token::generate_token;
use crate::{FutureAuth, FutureAuthConfig, RequestContext};

/// `GET`/`HEAD` of the landing path: the confirmation page. Never uses the token; reads the
/// link to say who asked and what this browser may do:
/// - the browser that asked: a "Sign in" button;
/// - another browser: who asked (device, IP, time) and a form to sign in *that* browser by
///   typing the number it shows, plus "Sign in here instead" unless
///   [`magic_link_same_browser`](crate::FutureAuthConfig::magic_link_same_browser).
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/auth/magic-link", tag = "futureauth", params(("token" = Option<String>, Query, description = "The link's token")), responses((status = 200, description = "The confirmation page (HTML); the token is not used. Also answers HEAD. The path is `FutureAuthConfig::magic_link_path`", content_type = "text/html", body = String), (status = 400, description = "No token, or a link that no longer works (HTML page, no button)", content_type = "text/html", body = String))))]
pub(super) async fn landing(
    State(auth): State<Arc<FutureAuth>>,
    mut req: RequestContext,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let config = auth.config();
    let page = Page::of(config);
    let Some(token) = query_token(query) else {
        return page.incomplete(INCOMPLETE_SIGN_IN);
    };
    req.binding = BindingCookie::Link.read(&headers, config);
    let link = match auth.magic_link_request(&token, &req).await {
        Ok(Some(link)) => link,
        Ok(None) => return page.explain(StatusCode::BAD_REQUEST, ErrorCode::InvalidMagicLink),
        Err(e) => return page.error(e),
    };
    let forms = LinkForms {
        action: escape(&config.magic_link_path),
        token: escape(&token),
    };
    if link.same_browser || (!link.approvable && link.sign_in_here) {
        let body = format!(
            "<p>Continue to sign in{to}.</p>{form}\
             <p class=\"small\">Didn't ask to sign in? Close this page; nothing happens.</p>",
            to = to_project(&config.project_name),
            form = forms.sign_in("Sign in", "sign-in"),
        );
        return page.render(StatusCode::OK, "Sign in", &body);
    }
    if !link.approvable {
        return page.explain(StatusCode::OK, ErrorCode::MagicLinkOtherBrowser);
    }
    let body = forms.other_device(&link);
    page.render(StatusCode::OK, "Sign in on your other device?", &body)
}

/// The forms of the landing page, which post the link's token back to the landing path
/// (both already escaped).
struct LinkForms {
    action: String,
    token: String,
}

impl LinkForms {
    /// A form whose button (`label`, element `id`) signs in this browser.
    fn sign_in(&self, label: &str, id: &str) -> String {
        let LinkForms { action, token } = self;
        format!(
            "<form method=\"post\" action=\"{action}\">\
             <input type=\"hidden\" name=\"token\" value=\"{token}\">\
             <input type=\"hidden\" name=\"action\" value=\"sign_in\">\
             <button type=\"submit\" id=\"{id}\">{label}</button></form>"
        )
    }

    /// The body for a link opened in another browser than the one that asked: who asked,
    /// the form to approve that browser by its number, and "Sign in here instead" when the
    /// app allows it.
    fn other_device(&self, link: &crate::model::LinkRequest) -> String {
        let LinkForms { action, token } = self;
        let device = link.device.as_deref().unwrap_or("an unknown browser");
        let from = link
            .ip_address
            .as_deref()
            .map(|ip| format!(" at <b>{}</b>", escape(ip)))
            .unwrap_or_default();
        let here = if link.sign_in_here {
            format!(
                "<p class=\"or\">or</p>{}\
                 <p class=\"small\">Signs in this browser instead of the one that asked.</p>",
                self.sign_in("Sign in here instead", "sign-in-here")
            )
        } else {
            String::new()
        };
        format!(
            "<p>This link was requested on another device: <b>{device}</b>{from}, {when}.</p>\
             <p>To sign in <b>that</b> device, type the number it shows. Only do this if you asked \
             to sign in there just now: a wrong number cancels the link.</p>\
             <form method=\"post\" action=\"{action}\" class=\"approve\">\
             <input type=\"hidden\" name=\"token\" value=\"{token}\">\
             <input type=\"hidden\" name=\"action\" value=\"approve\">\
             <input name=\"number\" id=\"number\" inputmode=\"numeric\" autocomplete=\"off\" \
             pattern=\"[0-9]{{2}}\" maxlength=\"2\" required aria-label=\"The number the other \
             device shows\" placeholder=\"00\">\
             <button type=\"submit\" id=\"approve\">Sign in on that device</button></form>\
             {here}\
             <p class=\"small\">Didn't ask to sign in? Close this page; nothing happens.</p>",
            device = escape(device),
            when = escape(&ago(link.requested_at)),
        )
    }
}

/// `POST` of the landing path (form-encoded, from the page above): `action=sign_in` (the
/// default) uses the token, sets the session cookie and sends the browser on;
/// `action=approve` with `number` approves the link for the browser that asked and signs in
/// nobody here.
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/auth/magic-link", tag = "futureauth", request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`token=...` and `action=sign_in` (default), or `action=approve&number=NN`, as the confirmation page's forms send them"), responses((status = 303, description = "Signed in: the session cookie is set and `Location` is `FutureAuthConfig::after_sign_in_path`"), (status = 200, description = "Approved for the browser that asked (HTML page); nobody is signed in here", content_type = "text/html", body = String), (status = 400, description = "Used, replaced or expired link (HTML page)", content_type = "text/html", body = String), (status = 403, description = "Cross-site request (`cross_site_request`, JSON), or a wrong number (HTML page; the link is void)"), (status = 422, description = "An approval `number` that is not two digits (HTML page; nothing changes)", content_type = "text/html", body = String), (status = 429, description = "Too many attempts (HTML page)", content_type = "text/html", body = String))))]
pub(super) async fn landing_post(
    State(auth): State<Arc<FutureAuth>>,
    mut req: RequestContext,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let config = auth.config();
    let page = Page::of(config);
    req.binding = BindingCookie::Link.read(&headers, config);
    let token = form_value(&body, "token").unwrap_or_default();
    if form_value(&body, "action").as_deref() == Some("approve") {
        let number = form_value(&body, "number").unwrap_or_default();
        return match auth.approve_magic_link(&token, &number, &req).await {
            Ok(()) => page.render(
                StatusCode::OK,
                "Approved",
                "<p>Go back to the device that asked: it is signed in within a few seconds.</p>\
                 <p class=\"small\">This browser was not signed in. You can close this page.</p>",
            ),
            Err(e) => page.error(e),
        };
    }
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
        Err(e) => page.error(e),
    }
}

/// `GET`/`HEAD` of `/api/auth/confirm-identifier-change?token=...`, the link in a
/// confirm-address email: a page with a Confirm button. Reads nothing and changes nothing
/// (mail scanners open links).
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/auth/confirm-identifier-change", tag = "futureauth", params(("token" = Option<String>, Query, description = "The link's token")), responses((status = 200, description = "The confirmation page (HTML) with a Confirm button; nothing is used or changed. Also answers HEAD", content_type = "text/html", body = String), (status = 400, description = "No token, or not one of ours (HTML page, no button)", content_type = "text/html", body = String))))]
pub(super) async fn confirm_change_page(
    State(auth): State<Arc<FutureAuth>>,
    RawQuery(query): RawQuery,
) -> Response {
    let page = Page::of(auth.config());
    let Some(token) = query_token(query) else {
        return page.incomplete(INCOMPLETE_CHANGE);
    };
    let body = format!(
        "<p>Use this email address for your account{to}?</p>\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"token\" value=\"{token}\">\
         <button type=\"submit\" id=\"confirm\">Confirm</button></form>\
         <p class=\"small\">This works only in a browser signed in to the account that asked \
         for the change. Didn't ask? Close this page; nothing changes.</p>",
        to = to_project(page.project),
        action = escape(crate::flow::account::CONFIRM_CHANGE_PATH),
        token = escape(&token),
    );
    page.render(StatusCode::OK, "Confirm your new email address", &body)
}

/// `POST` of the confirm page: confirms the change only when this browser is signed in as
/// the user who asked (their session cookie). Signed out, or signed in as anyone else: a
/// page that says to sign in to the asking account first, and nothing changes.
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/auth/confirm-identifier-change", tag = "futureauth", request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`token=...`, as the confirmation page's form sends it, with the session cookie"), responses((status = 200, description = "Confirmed: the email address is the signed-in user's now (HTML page)", content_type = "text/html", body = String), (status = 400, description = "Used, replaced or expired link, or another account's change (HTML page; nothing changes)", content_type = "text/html", body = String), (status = 401, description = "Not signed in (HTML page; nothing changes)", content_type = "text/html", body = String), (status = 403, description = "Cross-site request (`cross_site_request`, JSON)"), (status = 409, description = "The address belongs to another account by now (HTML page; nothing changes)", content_type = "text/html", body = String), (status = 429, description = "Too many attempts (HTML page)", content_type = "text/html", body = String))))]
pub(super) async fn confirm_change_post(
    State(auth): State<Arc<FutureAuth>>,
    req: RequestContext,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let config = auth.config();
    let page = Page::of(config);
    let session = match super::extract::lookup(&headers, &auth).await {
        Ok(Some(session)) => session,
        Ok(None) => {
            return page.sign_in_first(
                StatusCode::UNAUTHORIZED,
                "Sign in to confirm",
                "This link confirms a new email address only in a browser signed in to the \
                 account that asked for it, and this browser is not signed in.",
            )
        }
        Err(_) => {
            return page.render(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again in a moment",
                "<p>Something went wrong on our side. Nothing was changed.</p>",
            )
        }
    };
    let token = form_value(&body, "token").unwrap_or_default();
    let confirmed = auth
        .confirm_identifier_change_link(&session.user.id, &token, &req)
        .await;
    page.change_confirmed(confirmed)
}

/// The title and advice of a sign-in link without a usable token.
const INCOMPLETE_SIGN_IN: (&str, &str) = (
    "This sign-in link is incomplete",
    "Open the link from the email again, or request a new one.",
);

/// The title and advice of a confirm-address link without a usable token.
const INCOMPLETE_CHANGE: (&str, &str) = (
    "This confirmation link is incomplete",
    "Open the link from the email again, or type the code it gives.",
);

/// "3 minutes ago", for a time a few minutes back (links live minutes).
fn ago(at: DateTime<Utc>) -> String {
    let minutes = (Utc::now() - at).num_minutes();
    match minutes {
        ..=0 => "just now".to_string(),
        1 => "1 minute ago".to_string(),
        2..=90 => format!("{minutes} minutes ago"),
        _ => format!("at {} UTC", at.format("%H:%M")),
    }
}

/// The first value of `name` in a form-encoded query or body.
fn form_value(form: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(form)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The `token` of a link's query, trimmed, if it has the shape of the tokens we issue: only
/// those get a button; anything else is not a link of ours.
fn query_token(query: Option<String>) -> Option<String> {
    query
        .and_then(|q| form_value(q.as_bytes(), "token"))
        .map(|t| t.trim().to_string())
        .filter(|t| futureauth_proto::LinkToken::parse(t).is_ok())
}

fn to_project(project: &str) -> String {
    if project.is_empty() {
        String::new()
    } else {
        format!(" to {}", escape(project))
    }
}

/// The landing page's HTML frame, with its security headers and a fresh CSP nonce.
struct Page<'a> {
    project: &'a str,
    /// The app's page to go back to (`after_sign_in_path`, on this same origin): where a
    /// person whose link failed asks for a new one.
    home: &'a str,
    nonce: String,
}

impl<'a> Page<'a> {
    /// A page of the app `config` describes, with a fresh nonce.
    fn of(config: &'a FutureAuthConfig) -> Self {
        Page {
            project: &config.project_name,
            home: &config.after_sign_in_path,
            nonce: generate_token(),
        }
    }

    /// The page of a change that this browser cannot confirm as it is: `why`, and to sign
    /// in to the asking account first.
    fn sign_in_first(&self, status: StatusCode, title: &str, why: &str) -> Response {
        self.render(
            status,
            title,
            &format!(
                "<p>{}</p><p>Sign in to the account that asked for the change, then open the \
                 link from the email again (or type the code it gives). Nothing was changed.</p>{}",
                escape(why),
                self.back_link()
            ),
        )
    }

    /// The page of a confirmed address change, or of why it was not made.
    fn change_confirmed(&self, confirmed: crate::Result<crate::User>) -> Response {
        match confirmed {
            Ok(user) => self.render(
                StatusCode::OK,
                "Email address confirmed",
                &format!(
                    "<p><b>{}</b> is your account's email address now.</p>{}",
                    escape(user.email.as_deref().unwrap_or_default()),
                    self.back_link()
                ),
            ),
            Err(crate::FutureAuthError::InvalidMagicLink) => self.sign_in_first(
                StatusCode::BAD_REQUEST,
                "This link does not work here",
                "It was already used (or its code was), replaced by a newer one, or it expired; \
                 or this browser is signed in to another account than the one that asked.",
            ),
            Err(crate::FutureAuthError::IdentifierTaken) => self.render(
                StatusCode::CONFLICT,
                "This address cannot be used",
                &format!(
                    "<p>It belongs to another account. Nothing was changed.</p>{}",
                    self.back_link()
                ),
            ),
            Err(e) => self.error(e),
        }
    }

    /// A page explaining why a link cannot be used (or approved).
    fn error(&self, e: crate::FutureAuthError) -> Response {
        let code = e.error_code();
        self.explain(ApiError::from(e).status(), code)
    }

    /// The page for `code`, what it means for the person holding the link.
    fn explain(&self, status: StatusCode, code: ErrorCode) -> Response {
        let (title, hint) = match code {
            ErrorCode::InvalidMagicLink => (
                "This sign-in link no longer works",
                "It was already used, replaced by a newer one, or it expired. Request a new \
                 link.",
            ),
            ErrorCode::MagicLinkExpired => (
                "This sign-in link has expired",
                "Request a new link; links work for a short time only.",
            ),
            ErrorCode::MagicLinkOtherBrowser => (
                "Open this link in the browser you asked from",
                "This app signs in only the browser that asked for the link. Open the link \
                 there, or request a new link in this browser.",
            ),
            ErrorCode::MagicLinkNumberMismatch => (
                "That number did not match",
                "For your safety this link no longer works, and nobody was signed in. If it \
                 was you who asked, request a new link.",
            ),
            ErrorCode::InvalidRequest => (
                "Type the number",
                "Go back and type the two-digit number the other device shows.",
            ),
            ErrorCode::UserDisabled => (
                "This account is disabled",
                "The app has disabled this account, so nobody was signed in. Contact the app's \
                 support if you think this is a mistake.",
            ),
            ErrorCode::RateLimited => (
                "Too many attempts",
                "Wait a few minutes, then open the link again.",
            ),
            _ => (
                "Sign-in failed",
                "Something went wrong on our side. Try again in a moment.",
            ),
        };
        self.render(
            status,
            title,
            &format!("<p>{}</p>{}", escape(hint), self.back_link()),
        )
    }

    /// Every dead end leads back to the app, where a new link is one click away.
    fn back_link(&self) -> String {
        let app = if self.project.is_empty() {
            "the app".to_string()
        } else {
            escape(self.project)
        };
        format!(
            "<p><a class=\"back\" id=\"back-to-app\" href=\"{}\">Back to {app}</a></p>",
            escape(self.home)
        )
    }

    /// The 400 page of a link without a usable token: `title` is text, `advice` a constant
    /// sentence (inserted as HTML).
    fn incomplete(&self, (title, advice): (&str, &str)) -> Response {
        let body = format!("<p>{advice}</p>{}", self.back_link());
        self.render(StatusCode::BAD_REQUEST, title, &body)
    }

    /// A complete page: `title` is text, `body` is HTML whose inserted values are escaped.
    fn render(&self, status: StatusCode, title: &str, body: &str) -> Response {
        let nonce = &self.nonce;
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
            sep = if self.project.is_empty() { "" } else { " · " },
            project = escape(self.project),
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
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f6f7f9;color:#1a1d21;\
margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}\
main{background:#fff;border:1px solid #e3e6ea;border-radius:12px;padding:32px;max-width:420px;\
width:calc(100% - 48px)}h1{font-size:1.4rem;margin:0 0 12px}\
button{font:inherit;font-weight:600;background:#1a56db;color:#fff;border:0;border-radius:8px;\
padding:10px 20px;cursor:pointer;width:100%}.small{color:#5b6470;font-size:.85rem}\
.approve{display:flex;gap:8px}.approve input{font:inherit;font-size:1.4rem;width:3.2em;\
text-align:center;border:1px solid #c4c9d0;border-radius:8px;letter-spacing:.1em}\
.or{text-align:center;color:#5b6470;margin:14px 0 10px}\
button#sign-in-here{background:#fff;color:#1a56db;border:1px solid #1a56db}\
a.back{display:block;text-align:center;font-weight:600;color:#fff;background:#1a56db;\
border-radius:8px;padding:10px 20px;text-decoration:none}";

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
