//! Cross-site request forgery guard, for the auth routes and the app's own
//! cookie-authenticated routes ([`csrf_layer`]).
//!
//! A browser names the page that made a request in `Origin` (and `Sec-Fetch-Site`). A
//! state-changing request (anything but GET, HEAD, OPTIONS) is let through when its
//! `Origin` is one the configuration trusts (`app_url`, `allowed_origins`), compared as a
//! value: scheme, host and port. Without `app_url`, the request's own `Host` counts (with
//! the scheme of `cookie_secure`, and over `http` too for a loopback `Host`, for local
//! development). Requests with neither header come from non-browser
//! clients, which cannot carry a victim's cookie, and pass. The auth routes also take only
//! JSON bodies, which a cross-site HTML form cannot send.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{header, HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use futureauth_proto::Origin;

use super::rejection::ApiError;
use crate::error::ErrorCode;
use crate::origins::TrustedOrigins;
use crate::FutureAuth;

/// The CSRF guard as a layer, for the app's own routes that act on the session cookie.
/// [`auth_router`](super::auth_router) already carries it.
///
/// ```
/// use std::sync::Arc;
/// use axum::{routing::post, Router};
/// use futureauth::axum::{csrf_layer, AuthSession};
/// use futureauth::FutureAuth;
///
/// #[derive(Clone)]
/// struct AppState { auth: Arc<FutureAuth> }
/// impl AsRef<Arc<FutureAuth>> for AppState {
///     fn as_ref(&self) -> &Arc<FutureAuth> { &self.auth }
/// }
///
/// async fn delete_account(auth: AuthSession) -> &'static str {
///     let _ = auth.user.id;
///     "deleted"
/// }
///
/// fn routes(state: AppState) -> Router {
///     Router::new()
///         .route("/api/account/delete", post(delete_account))
///         .layer(csrf_layer(state.auth.clone()))
///         .with_state(state)
/// }
/// ```
pub fn csrf_layer(auth: Arc<FutureAuth>) -> CsrfLayer {
    CsrfLayer { auth }
}

/// Rejects cross-site state-changing requests with `403 cross_site_request`; see
/// [`csrf_layer`].
#[derive(Clone)]
pub struct CsrfLayer {
    auth: Arc<FutureAuth>,
}

impl std::fmt::Debug for CsrfLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsrfLayer").finish_non_exhaustive()
    }
}

impl<S> tower_layer::Layer<S> for CsrfLayer {
    type Service = Csrf<S>;

    fn layer(&self, inner: S) -> Csrf<S> {
        Csrf {
            inner,
            auth: self.auth.clone(),
        }
    }
}

/// The service of [`CsrfLayer`].
#[derive(Clone)]
pub struct Csrf<S> {
    inner: S,
    auth: Arc<FutureAuth>,
}

impl<S> std::fmt::Debug for Csrf<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Csrf").finish_non_exhaustive()
    }
}

impl<S> tower_service::Service<Request> for Csrf<S>
where
    S: tower_service::Service<Request, Response = Response>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let safe = matches!(
            *request.method(),
            Method::GET | Method::HEAD | Method::OPTIONS
        );
        if safe {
            return Box::pin(self.inner.call(request));
        }
        let verdict = self
            .auth
            .origins()
            .map_err(ApiError::from)
            .and_then(|origins| {
                check(request.headers(), origins, self.auth.config().cookie_secure)
            });
        match verdict {
            Ok(()) => Box::pin(self.inner.call(request)),
            Err(e) => Box::pin(std::future::ready(Ok(e.into_response()))),
        }
    }
}

/// Whether a state-changing request may proceed. `https` says which scheme the app is
/// served with when `app_url` is not configured (taken from `cookie_secure`).
pub(crate) fn check(
    headers: &HeaderMap,
    origins: &TrustedOrigins,
    https: bool,
) -> Result<(), ApiError> {
    let reject = |why: String| Err(ApiError::from_code(ErrorCode::CrossSiteRequest, why));
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    // Browsers send `Origin: null` from pages with `Referrer-Policy: no-referrer` (the
    // magic-link landing page), and also from sandboxed frames and other opaque origins.
    // `Sec-Fetch-Site`, which no page can set, tells the first apart: only a request the
    // app's own page made says `same-origin`.
    if headers.get(header::ORIGIN).is_some_and(|o| o == "null") {
        return match fetch_site {
            Some("same-origin") => Ok(()),
            _ => reject("the request's Origin is not allowed".to_string()),
        };
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let Some(origin) = origin.to_str().ok().and_then(|o| Origin::parse(o).ok()) else {
            return reject("the request's Origin is not allowed".to_string());
        };
        if origins.trusts(&origin) {
            return Ok(());
        }
        if origins.app().is_none() && same_origin(&origin, headers, https) {
            return Ok(());
        }
        return reject(format!(
            "origin {origin} may not call this route; set FutureAuthConfig::app_url \
             (FUTUREAUTH_APP_URL) or add it to allowed_origins"
        ));
    }
    match fetch_site {
        None | Some("same-origin") | Some("none") => Ok(()),
        Some(other) => reject(format!("{other} request without Origin rejected")),
    }
}

/// Without `app_url`, the app's origin is the request's `Host` with the configured scheme;
/// and when that `Host` is a loopback name (`localhost`, `127.0.0.1`, `[::1]`, with its
/// port), the same origin over `http` too, so that the spec's
/// `FutureAuthConfig { ..Default::default() }` works from a page on `http://localhost:3000`
/// during development (`cookie_secure` is on by default, which would otherwise expect
/// `https://`).
///
/// `Host` is acceptable here, unlike for magic links: this check stops a cross-site page
/// that makes the *victim's browser* send the request, and such a page cannot choose the
/// `Host` that browser sends (it is the app's, or the cookie would not be attached). A
/// client that forges `Host` freely is not a browser and carries no victim's cookie. Nor
/// can a page elsewhere send a loopback `Host` with an `Origin` equal to it: only a page on
/// that loopback origin itself does. Setting `app_url` is still recommended: it also fixes
/// the scheme and port, and turns the loopback allowance off.
fn same_origin(origin: &Origin, headers: &HeaderMap, https: bool) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let own = |scheme: &str| Origin::parse(&format!("{scheme}://{host}")).ok();
    let configured = if https { "https" } else { "http" };
    if own(configured).is_some_and(|own| &own == origin) {
        return true;
    }
    own("http").is_some_and(|own| own.is_loopback() && &own == origin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FutureAuthConfig;
    use axum::http::HeaderValue;
    use axum::http::StatusCode;

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        m
    }

    fn origins(app: &str, allowed: &[&str]) -> TrustedOrigins {
        TrustedOrigins::from_config(&FutureAuthConfig {
            app_url: app.into(),
            allowed_origins: allowed.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn same_origin_without_app_url_uses_host_and_the_configured_scheme() {
        let none = origins("", &[]);
        let req = |o, host| h(&[("origin", o), ("host", host)]);
        assert!(check(
            &req("http://localhost:3000", "localhost:3000"),
            &none,
            false
        )
        .is_ok());
        assert!(check(&req("https://app.example", "app.example:443"), &none, true).is_ok());
        // The scheme counts: an http page may not act on an https app.
        assert!(check(&req("http://app.example", "app.example"), &none, true).is_err());
        assert!(check(&req("https://app.example", "app.example"), &none, false).is_err());
        // And so does the port.
        assert!(check(
            &req("http://localhost:3001", "localhost:3000"),
            &none,
            false
        )
        .is_err());
    }

    #[test]
    fn without_app_url_a_loopback_host_also_accepts_its_http_origin() {
        let none = origins("", &[]);
        let req = |o, host| h(&[("origin", o), ("host", host)]);
        for (origin, host) in [
            ("http://localhost:3000", "localhost:3000"),
            ("http://127.0.0.1:3000", "127.0.0.1:3000"),
            ("http://[::1]:3000", "[::1]:3000"),
            ("http://localhost", "localhost"),
        ] {
            assert!(check(&req(origin, host), &none, true).is_ok(), "{origin}");
        }
        // Only that same loopback origin: another port, a foreign page, or a non-loopback
        // Host over http are refused as before.
        for (origin, host) in [
            ("http://localhost:3001", "localhost:3000"),
            ("http://127.0.0.1:3000", "localhost:3000"),
            ("https://evil.example", "127.0.0.1:3000"),
            ("http://evil.example", "127.0.0.1:3000"),
            ("http://app.example", "app.example"),
            ("http://10.0.0.5:3000", "10.0.0.5:3000"),
        ] {
            assert!(check(&req(origin, host), &none, true).is_err(), "{origin}");
        }
        // With app_url set, the loopback allowance is off.
        let app = origins("https://app.example", &[]);
        assert!(check(&req("http://localhost:3000", "localhost:3000"), &app, true).is_err());
    }

    #[test]
    fn with_app_url_host_no_longer_counts() {
        let app = origins("https://app.example", &[]);
        let forged = h(&[("origin", "https://evil.example"), ("host", "evil.example")]);
        assert!(check(&forged, &app, true).is_err());
        let own = h(&[("origin", "https://app.example"), ("host", "10.0.0.5:8080")]);
        assert!(check(&own, &app, true).is_ok());
        let downgraded = h(&[("origin", "http://app.example")]);
        assert!(check(&downgraded, &app, true).is_err());
    }

    #[test]
    fn foreign_origin_is_rejected_unless_allowed() {
        let req = h(&[("origin", "https://evil.example"), ("host", "app.example")]);
        assert_eq!(
            check(&req, &origins("", &[]), true).unwrap_err().status(),
            StatusCode::FORBIDDEN
        );
        assert!(check(&req, &origins("", &["https://evil.example"]), true).is_ok());
        let null = h(&[("origin", "null"), ("host", "app.example")]);
        assert!(check(&null, &origins("", &[]), true).is_err());
        // An opaque origin passes only when the browser says the app's own page sent it.
        for (site, ok) in [
            ("same-origin", true),
            ("cross-site", false),
            ("same-site", false),
            ("none", false),
        ] {
            let null = h(&[
                ("origin", "null"),
                ("sec-fetch-site", site),
                ("host", "app.example"),
            ]);
            assert_eq!(
                check(&null, &origins("https://app.example", &[]), true).is_ok(),
                ok,
                "{site}"
            );
        }
    }

    #[test]
    fn sec_fetch_site_without_origin() {
        let none = origins("", &[]);
        assert!(check(&h(&[("sec-fetch-site", "cross-site")]), &none, true).is_err());
        assert!(check(&h(&[("sec-fetch-site", "same-site")]), &none, true).is_err());
        assert!(check(&h(&[("sec-fetch-site", "same-origin")]), &none, true).is_ok());
        assert!(check(&h(&[]), &none, true).is_ok());
    }
}
