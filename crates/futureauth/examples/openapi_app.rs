//! A small app with `auth_router` and its OpenAPI document at `/openapi.json`, for
//! schema-based fuzzing of the SDK's routes (`scripts/schemathesis-sdk`).
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/scratch \
//!   cargo run -p futureauth --example openapi_app -- 127.0.0.1:3000
//! ```
//!
//! Codes and links go to the dev outbox, which prints them (stderr), so that a script can
//! sign in. `app_url` is the address it listens on, so
//! magic links without a `callback_url` open the built-in landing page. Rate limits are
//! raised so that a fuzzer's burst from one address is not all 429s. Passkeys are on (the
//! relying party is `localhost`, an allowed origin beside the IP address of `app_url`), so
//! that their routes are fuzzed too.

use std::sync::Arc;

use axum::{routing::get, Json, Router};
use futureauth::delivery::DevOutbox;
use futureauth::{FutureAuth, FutureAuthConfig, PasskeyConfig, RateLimit, RateLimits};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".to_string());
    let database_url = std::env::var("DATABASE_URL")
        .map_err(|_| "set DATABASE_URL to a Postgres database this app may fill")?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    let addr = listener.local_addr()?;
    let pool = futureauth::sqlx::PgPool::connect(&database_url).await?;
    let generous = RateLimit::new(100_000, std::time::Duration::from_secs(60));
    let config = FutureAuthConfig {
        app_url: format!("http://{addr}"),
        project_name: "OpenAPI app".to_string(),
        cookie_secure: false,
        allowed_origins: vec![format!("http://localhost:{}", addr.port())],
        passkeys: Some(PasskeyConfig {
            options_per_ip: generous,
            verify_per_ip: generous,
            ..PasskeyConfig::default()
        }),
        rate_limits: RateLimits {
            send_per_ip: generous,
            send_per_ipv6_48: generous,
            send_throttle: generous,
            send_per_identifier_per_client: generous,
            send_per_identifier: generous,
            verify_per_ip: generous,
            failed_verify_per_identifier: generous,
        },
        ..Default::default()
    };
    let auth = FutureAuth::new(pool, config).with_delivery(DevOutbox::new());
    auth.ensure_tables().await?;
    let app: Router = Router::new()
        .merge(futureauth::axum::auth_router(Arc::new(auth)))
        .route(
            "/openapi.json",
            get(|| async { Json(futureauth::axum::openapi()) }),
        );
    println!("listening on http://{addr}");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .await?;
    Ok(())
}
