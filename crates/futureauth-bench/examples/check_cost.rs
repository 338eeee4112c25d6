//! The CPU cost of one `GET /api/me`, in process (no socket, no HTTP parsing): the static
//! handler, the bench's bare handler (the token's hash and one indexed join), and the SDK's
//! `AuthSession` with and without the session cache. Run under
//! `valgrind --tool=callgrind`, the inclusive instruction count of the request function over
//! the requests served is the cost of one request; `scripts/check-cost` prints it for each
//! variant. Instruction counts do not depend on what else the machine is doing, so this
//! profiles the hot path on a busy machine too; the wrk bench measures its speed.
//!
//! `cargo run --release -p futureauth-bench --example check_cost -- <static|cached|uncached|bare> <requests>`

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use futureauth::axum::AuthSession;
use futureauth::delivery::{Delivery, DeliveryError, Message};
use futureauth::{FutureAuth, FutureAuthConfig, OtpChannel, SessionCacheConfig};
use serde_json::{json, Value};
use tower::ServiceExt;

// The bench's own bare handler, so that both measure the same code.
#[path = "../src/bare.rs"]
mod bare;

#[derive(Clone, Default)]
struct LastCode(Arc<std::sync::Mutex<String>>);

#[futureauth::async_trait]
impl Delivery for LastCode {
    async fn deliver(&self, message: &Message) -> Result<(), DeliveryError> {
        if let Ok(mut code) = self.0.lock() {
            *code = message.code.clone();
        }
        Ok(())
    }
}

#[derive(Clone)]
struct State(Arc<FutureAuth>);

impl AsRef<Arc<FutureAuth>> for State {
    fn as_ref(&self) -> &Arc<FutureAuth> {
        &self.0
    }
}

async fn static_me() -> Json<Value> {
    Json(json!({ "id": "static", "email": "static@example.com" }))
}

async fn sdk_me(auth: AuthSession) -> Json<Value> {
    Json(json!({ "id": auth.user.id, "email": auth.user.email }))
}

/// An app serving `/api/me` the `variant`'s way, and the cookie of a signed-in user.
/// With the SDK, the schema it made (dropped at the end).
async fn app(variant: &str) -> Result<(Router, String, Option<String>)> {
    if variant == "static" {
        let app = Router::new().route("/api/me", get(static_me));
        return Ok((app, "futureauth_session=none".into(), None));
    }
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let pool = sqlx::PgPool::connect(&url).await?;
    let schema = format!("check_cost_{}", std::process::id());
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&pool)
        .await?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .after_connect({
            let schema = schema.clone();
            move |conn, _| {
                let schema = schema.clone();
                Box::pin(async move {
                    sqlx::query(&format!("SET search_path TO {schema}"))
                        .execute(conn)
                        .await
                        .map(|_| ())
                })
            }
        })
        .connect(&url)
        .await?;
    let codes = LastCode::default();
    let config = FutureAuthConfig {
        cookie_secure: false,
        session_cache: (variant == "cached").then(SessionCacheConfig::default),
        code_secret: "futureauth-check-cost-secret-0123456789abcdef".into(),
        ..Default::default()
    };
    let auth = Arc::new(FutureAuth::new(pool.clone(), config).with_delivery(codes.clone()));
    auth.ensure_tables().await?;
    auth.send_otp(OtpChannel::Email, "cost@example.com").await?;
    let code = codes.0.lock().map(|c| c.clone()).unwrap_or_default();
    let (_, session) = auth
        .verify_otp("cost@example.com", &code, None, None)
        .await?;
    let app = if variant == "bare" {
        Router::new()
            .route("/api/me", get(bare::bare_me))
            .with_state(pool)
    } else {
        Router::new()
            .route("/api/me", get(sdk_me))
            .with_state(State(auth))
    };
    Ok((
        app,
        format!("futureauth_session={}", session.token),
        Some(schema),
    ))
}

async fn me(app: &Router, cookie: &str) -> Result<()> {
    let request = Request::get("/api/me")
        .header(header::COOKIE, cookie)
        .body(Body::empty())?;
    let response = app.clone().oneshot(request).await?;
    if response.status() != StatusCode::OK {
        bail!("GET /api/me answered {}", response.status());
    }
    axum::body::to_bytes(response.into_body(), usize::MAX).await?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let variant = args
        .next()
        .context("variant: static, cached, uncached or bare")?;
    let requests: u64 = args.next().context("request count")?.parse()?;
    let (app, cookie, schema) = app(&variant).await?;
    // Warm up: fills the cache once its listener is connected.
    for _ in 0..50 {
        me(&app, &cookie).await?;
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    for _ in 0..requests {
        me(&app, &cookie).await?;
    }
    if let Some(schema) = schema {
        let url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let pool = sqlx::PgPool::connect(&url).await?;
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&pool)
            .await?;
    }
    Ok(())
}
