//! Cross-site request forgery guard for the state-changing auth routes.
//!
//! A browser names the page that made a request in `Origin` (and `Sec-Fetch-Site`). A
//! request is let through when it comes from the app's own origin (the `Host` it was sent
//! to) or from one of `allowed_origins`; requests with neither header come from non-browser
//! clients, which cannot carry a victim's cookie, and pass. Bodies must also be JSON, which
//! a cross-site HTML form cannot send.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::rejection::ApiError;
use crate::config::parse_origin;
use crate::FutureAuth;

/// Middleware: rejects cross-site state-changing requests with 403.
pub(crate) async fn guard(
    State(auth): State<Arc<FutureAuth>>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    match check(request.headers(), &auth.config().allowed_origins) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

pub(crate) fn check(headers: &HeaderMap, allowed: &[String]) -> Result<(), ApiError> {
    let reject = |why: String| {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_site_request",
            why,
        ))
    };
    if let Some(origin) = headers.get(header::ORIGIN) {
        let Some(origin) = origin.to_str().ok().and_then(|o| parse_origin(o).ok()) else {
            return reject("the request's Origin is not allowed".to_string());
        };
        let listed = allowed
            .iter()
            .any(|a| parse_origin(a).is_ok_and(|a| a == origin));
        if listed || same_origin(&origin, headers) {
            return Ok(());
        }
        return reject(format!(
            "origin {origin} may not call this route; add it to FutureAuthConfig::allowed_origins"
        ));
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        None | Some("same-origin") | Some("none") => Ok(()),
        Some(other) => reject(format!("{other} request without Origin rejected")),
    }
}

/// Whether `origin` names the host the request was sent to.
fn same_origin(origin: &str, headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Ok(url) = url::Url::parse(origin) else {
        return false;
    };
    let Some(origin_host) = url.host_str() else {
        return false;
    };
    let origin_authority = match url.port() {
        Some(port) => format!("{origin_host}:{port}"),
        None => origin_host.to_string(),
    };
    let default_port = url.port_or_known_default().map(|p| format!(":{p}"));
    let host = host.to_ascii_lowercase();
    let host = match default_port {
        Some(p) if url.port().is_none() => {
            host.strip_suffix(&p).map(str::to_string).unwrap_or(host)
        }
        _ => host,
    };
    host == origin_authority
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        m
    }

    #[test]
    fn same_origin_passes() {
        assert!(check(
            &h(&[
                ("origin", "http://localhost:3000"),
                ("host", "localhost:3000")
            ]),
            &[]
        )
        .is_ok());
        assert!(check(
            &h(&[
                ("origin", "https://app.example"),
                ("host", "app.example:443")
            ]),
            &[]
        )
        .is_ok());
    }

    #[test]
    fn foreign_origin_is_rejected_unless_allowed() {
        let req = h(&[("origin", "https://evil.example"), ("host", "app.example")]);
        assert_eq!(
            check(&req, &[]).unwrap_err().status(),
            StatusCode::FORBIDDEN
        );
        assert!(check(&req, &["https://evil.example".to_string()]).is_ok());
        let null = h(&[("origin", "null"), ("host", "app.example")]);
        assert!(check(&null, &[]).is_err());
    }

    #[test]
    fn sec_fetch_site_without_origin() {
        assert!(check(&h(&[("sec-fetch-site", "cross-site")]), &[]).is_err());
        assert!(check(&h(&[("sec-fetch-site", "same-origin")]), &[]).is_ok());
        assert!(check(&h(&[]), &[]).is_ok());
    }
}
