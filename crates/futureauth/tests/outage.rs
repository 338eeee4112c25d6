//! The database gone (its pool closed) under a running app, on Postgres and SQLite: the auth
//! routes and the `AuthSession` extractor answer `503 {"error": {"code": "unavailable"}}`
//! with `Retry-After`, at once. An outage never reads as signed out (401, or `None` from
//! `Option<AuthSession>`), nor as a bare 500. (A real crashed cluster: `examples/demo/tests/chaos.rs`.)

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::{Json, Router};
use common::{Backend, TestDb};
use futureauth::axum::{auth_router, AuthSession};
use futureauth::{FutureAuth, FutureAuthConfig, OtpChannel};
use serde_json::{json, Value};

#[derive(Clone)]
struct AppState {
    auth: Arc<FutureAuth>,
}

impl AsRef<Arc<FutureAuth>> for AppState {
    fn as_ref(&self) -> &Arc<FutureAuth> {
        &self.auth
    }
}

async fn me(auth: AuthSession) -> Json<Value> {
    Json(json!({ "id": auth.user.id }))
}

async fn maybe(auth: Option<AuthSession>) -> String {
    auth.map_or_else(|| "anonymous".into(), |a| format!("user {}", a.user.id))
}

async fn outage_answers_unavailable(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (auth, outbox) = db.auth(FutureAuthConfig::default()).await;
    auth.send_otp(OtpChannel::Email, "ada@example.org")
        .await
        .unwrap();
    let code = outbox.latest_for("ada@example.org").unwrap().code;
    let (_, session) = auth
        .verify_otp("ada@example.org", &code, None, None)
        .await
        .unwrap();
    let state = AppState {
        auth: Arc::new(auth),
    };
    let app = Router::new()
        .merge(auth_router(state.auth.clone()))
        .route("/api/me", get(me))
        .route("/maybe", get(maybe))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let me_resp = http
        .get(format!("{base}/api/me"))
        .bearer_auth(&session.token)
        .send()
        .await
        .unwrap();
    assert_eq!(me_resp.status(), 200);

    match &db {
        TestDb::Postgres { pool, .. } => pool.close().await,
        TestDb::Sqlite { pool, .. } => pool.close().await,
    }

    let requests = [
        (
            "GET /api/me",
            http.get(format!("{base}/api/me"))
                .bearer_auth(&session.token),
        ),
        (
            "GET /maybe (Option<AuthSession>)",
            http.get(format!("{base}/maybe"))
                .bearer_auth(&session.token),
        ),
        (
            "GET /api/auth/session",
            http.get(format!("{base}/api/auth/session"))
                .bearer_auth(&session.token),
        ),
        (
            "POST /api/auth/send-otp",
            http.post(format!("{base}/api/auth/send-otp"))
                .json(&json!({ "email": "grace@example.org" })),
        ),
        (
            "POST /api/auth/sign-out",
            http.post(format!("{base}/api/auth/sign-out"))
                .bearer_auth(&session.token),
        ),
    ];
    for (what, request) in requests {
        let started = Instant::now();
        let resp = request.send().await.unwrap();
        let took = started.elapsed();
        let status = resp.status();
        let retry_after = resp.headers().get("retry-after").cloned();
        let body = resp.text().await.unwrap();
        assert_eq!(status, 503, "{what}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        assert_eq!(v["error"]["code"], "unavailable", "{what}: {body}");
        assert!(retry_after.is_some(), "{what}: no Retry-After");
        assert!(took < Duration::from_secs(1), "{what} took {took:?}");
    }
    // Without a session there is nothing to look up: signed out, as before.
    let anonymous = http.get(format!("{base}/maybe")).send().await.unwrap();
    assert_eq!(anonymous.text().await.unwrap(), "anonymous");
}

#[tokio::test]
async fn postgres_outage_answers_unavailable() {
    outage_answers_unavailable(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_outage_answers_unavailable() {
    outage_answers_unavailable(Backend::Sqlite).await;
}
