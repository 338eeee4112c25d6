//! Operational routes: health, readiness and the dev outbox.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, Extensions, HeaderMap};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::error::ApiError;
use super::AppState;
use crate::clock::UnixMillis;
use crate::error::ErrorCode;

/// `GET /healthz`: the process is up (always 200).
pub async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// How long `/readyz` waits for the database: a probe must answer within a second even when
/// the database does not (the pool alone would wait its acquire timeout).
pub const READY_TIMEOUT: Duration = Duration::from_millis(800);

/// `GET /readyz`: 200 with the outbox's `queue_depth` and `oldest_queued_age_secs` when the
/// database answers within [`READY_TIMEOUT`], else 503 `database_unavailable` saying why.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let stats = match tokio::time::timeout(READY_TIMEOUT, state.store.queue_stats()).await {
        Ok(Ok(stats)) => stats,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            return not_ready(format!("the database does not answer: {e}"));
        }
        Err(_) => {
            tracing::warn!("readiness check timed out");
            return not_ready(format!(
                "the database did not answer within {} ms",
                READY_TIMEOUT.as_millis()
            ));
        }
    };
    let oldest_age_secs = stats
        .oldest_created_at
        .map(|created| UnixMillis::now().millis_since(created).max(0) / 1000);
    Json(json!({
        "status": "ready",
        "database": state.store.backend_name(),
        "queue_depth": stats.depth,
        "oldest_queued_age_secs": oldest_age_secs,
    }))
    .into_response()
}

fn not_ready(reason: String) -> Response {
    ApiError::unavailable(ErrorCode::DatabaseUnavailable, reason).into_response()
}

/// Whether `host` (the `Host` header) names this server on loopback: `localhost`,
/// `127.0.0.1` or `[::1]` with the listen port (without a port only when it is 80). A page on
/// another name that resolves to 127.0.0.1 (DNS rebinding) sends its own name and is refused.
pub fn is_loopback_host(host: &str, port: u16) -> bool {
    let (name, given_port) = match host.rsplit_once(':') {
        Some((name, p)) if !name.is_empty() && !p.contains(']') => (name, p.parse::<u16>().ok()),
        _ => (host, if port == 80 { Some(80) } else { None }),
    };
    given_port == Some(port)
        && (name.eq_ignore_ascii_case("localhost") || name == "127.0.0.1" || name == "[::1]")
}

/// The dev outbox page. minijinja escapes every value of an `.html` template: addresses and
/// texts are whatever the apps sent.
fn render_outbox(entries: &[crate::provider::OutboxEntry]) -> Result<String, minijinja::Error> {
    static PAGE: std::sync::LazyLock<Result<minijinja::Environment<'static>, minijinja::Error>> =
        std::sync::LazyLock::new(|| {
            let mut env = minijinja::Environment::new();
            env.add_template(
                "dev_outbox.html",
                include_str!("../../templates/dev_outbox.html"),
            )?;
            Ok(env)
        });
    let env = PAGE.as_ref().map_err(|e| {
        minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string())
    })?;
    env.get_template("dev_outbox.html")?
        .render(minijinja::context! { entries })
}

/// Whether the connection comes from this machine: the socket peer (never a header) is a
/// loopback address. No peer known (a router served without connect info): no.
pub fn is_loopback_peer(extensions: &Extensions) -> bool {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(peer)| peer.ip().to_canonical().is_loopback())
}

/// `GET /dev/outbox`: the last messages of the dev outbox; JSON for `Accept: application/json`,
/// else an HTML page. 404 when real providers are configured; 403 unless the client connects
/// from loopback (its socket address: a `Host` header proves nothing about where a request
/// comes from) and the `Host` is loopback with the listen port (so that a web page on another
/// name that resolves to 127.0.0.1 cannot read it through the operator's browser).
pub async fn dev_outbox(
    State(state): State<AppState>,
    extensions: Extensions,
    headers: HeaderMap,
) -> Response {
    let Some(outbox) = state.delivery.dev_outbox() else {
        return ApiError::not_found().into_response();
    };
    if !is_loopback_peer(&extensions) {
        return ApiError::new(
            ErrorCode::ForbiddenHost,
            "the dev outbox answers only to clients on this machine (a loopback connection)",
        )
        .into_response();
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if !host.is_some_and(|h| is_loopback_host(h, state.listen.port())) {
        return ApiError::new(
            ErrorCode::ForbiddenHost,
            format!(
                "the dev outbox answers only at http://127.0.0.1:{port}/dev/outbox or http://localhost:{port}/dev/outbox",
                port = state.listen.port()
            ),
        )
        .into_response();
    }
    let entries = outbox.entries();
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    if wants_json {
        return Json(json!({ "messages": entries })).into_response();
    }
    match render_outbox(&entries) {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot render the dev outbox");
            ApiError::new(
                ErrorCode::InternalError,
                "cannot render the dev outbox page",
            )
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{is_loopback_host, render_outbox};
    use crate::provider::outbox::bare_message;
    use crate::provider::OutboxEntry;

    #[test]
    fn the_outbox_page_escapes_what_apps_sent() {
        let html = render_outbox(&[OutboxEntry {
            message: futureauth_proto::Message {
                code: "123456".into(),
                project_name: "<i>p</i>".into(),
                ..bare_message(futureauth_proto::Channel::Email, "<b>x</b>@example.com")
            },
            sent_at: "2026-11-29T02:00:00Z".into(),
            id: "msg_1".into(),
            to: "<b>x</b>@example.com".into(),
            subject: Some("\"><script>alert(1)</script>".into()),
            text: "123456 & more".into(),
            at: "2026-11-29T02:00:00Z".into(),
        }])
        .unwrap();
        assert!(
            !html.contains("<script>alert") && !html.contains("<b>x"),
            "{html}"
        );
        assert!(html.contains("&lt;script&gt;") && html.contains("123456 &amp; more"));
        assert!(html.contains("Nothing is really sent"));
    }

    #[test]
    fn loopback_hosts() {
        for ok in [
            "localhost:8080",
            "LOCALHOST:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
        ] {
            assert!(is_loopback_host(ok, 8080), "{ok}");
        }
        assert!(is_loopback_host("localhost", 80));
        for bad in [
            "localhost",
            "localhost:8081",
            "evil.example:8080",
            "127.0.0.1.evil.example:8080",
            "localhost.evil.example:8080",
            "127.0.0.2:8080",
            "[::1]",
            ":8080",
            "0.0.0.0:8080",
            "",
        ] {
            assert!(!is_loopback_host(bad, 8080), "{bad}");
        }
    }
}
