//! Every code snippet of the product documentation (`shared/spec/futureauth-spec.txt`),
//! verbatim, compiled against this crate and run: on a fresh Postgres database, with the
//! FutureAuth service played by a local fake. One test: it sets process environment.

mod common;

use std::sync::Arc;

use axum::{routing::get, Json, Router};
use futureauth::axum::AuthSession;
use futureauth::{FutureAuth, FutureAuthConfig, FutureAuthError, OtpChannel};
use serde_json::json;
use sqlx::PgPool;
use wiremock::{matchers::path, Mock, MockServer, ResponseTemplate};

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

// --- Snippet: setup ----------------------------------------------------------------
#[rustfmt::skip]
async fn setup_snippet() -> AnyResult<(PgPool, FutureAuth)> {
    let pool = PgPool::connect(&std::env::var("DATABASE_URL")?).await?; let auth = FutureAuth::new(pool.clone(), FutureAuthConfig { api_url: "https://future-auth.com".to_string(), secret_key: std::env::var("FUTUREAUTH_SECRET_KEY")?, project_name: "My App".to_string(), ..Default::default() }); // Creates user, session, verification tables (idempotent)
    auth.ensure_tables().await?;
    Ok((pool, auth))
}

// --- Snippet: router ---------------------------------------------------------------
// (the spec keeps `db` in the state for the app's own queries)
#[allow(dead_code)]
#[rustfmt::skip]
#[derive(Clone)] struct AppState { db: PgPool, auth: Arc<FutureAuth>, }
impl AsRef<Arc<FutureAuth>> for AppState {
    fn as_ref(&self) -> &Arc<FutureAuth> {
        &self.auth
    }
}

#[rustfmt::skip]
fn router_snippet(pool: PgPool, auth: FutureAuth) -> Router {
    let state = AppState { db: pool, auth: Arc::new(auth) }; let app = Router::new() .merge(futureauth::axum::auth_router(state.auth.clone())) .route("/api/me", get(me_handler)) .with_state(state);
    let _ = &app;
    app
}

#[rustfmt::skip]
async fn me_handler(auth: AuthSession) -> Json<serde_json::Value> { Json(serde_json::json!({ "id": auth.user.id, "email": auth.user.email })) }

// --- Snippet: sending --------------------------------------------------------------
#[rustfmt::skip]
async fn send_snippet(auth: &FutureAuth) -> AnyResult<()> {
    // Magic link (one-click email sign-in)
    auth.send_magic_link("user@example.com", "https://myapp.com/auth/verify").await?; // Email OTP
    auth.send_otp(OtpChannel::Email, "user@example.com").await?; // Phone OTP (SMS)
    auth.send_otp(OtpChannel::Phone, "+15551234567").await?;
    Ok(())
}

// --- Snippet: verifying ------------------------------------------------------------
#[rustfmt::skip]
async fn verify_otp_snippet(auth: &FutureAuth) -> AnyResult<()> {
    // Verify OTP
    let (user, session) = auth.verify_otp( "user@example.com", "a1b2c3", Some("127.0.0.1"), Some("Mozilla/5.0"), ).await?;
    let _ = (user, session);
    Ok(())
}

#[rustfmt::skip]
async fn verify_magic_link_snippet(auth: &FutureAuth, token: String) -> AnyResult<String> {
    // Verify magic link
    let (user, session) = auth.verify_magic_link( &token, Some("127.0.0.1"), Some("Mozilla/5.0"), ).await?; // Set cookie: name = "futureauth_session", value = session.token
    let _ = user;
    Ok(session.token)
}

// --- Snippet: sessions -------------------------------------------------------------
#[rustfmt::skip]
#[allow(clippy::needless_late_init)]
async fn session_snippet(auth: &FutureAuth, token: String) -> AnyResult<bool> {
    let authenticated;
    // Check session
    match auth.get_session(&token).await? { Some((user, session)) => { /* authenticated */ let _ = (user, session); authenticated = true; } None => { /* invalid/expired */ authenticated = false; } } // Sign out
    auth.revoke_session(&token).await?;
    Ok(authenticated)
}

#[tokio::test]
async fn the_spec_snippets_compile_and_behave_as_written() {
    // A fresh database for the spec's DATABASE_URL, and the service's secret key.
    let admin = PgPool::connect(&common::database_url())
        .await
        .expect("Postgres is required");
    let name = format!("fa_spec_{}", std::process::id());
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    let options: sqlx::postgres::PgConnectOptions = common::database_url().parse().unwrap();
    let url = format!(
        "postgres://{}@{}:{}/{name}",
        options.get_username(),
        options.get_host(),
        options.get_port()
    );
    std::env::set_var("DATABASE_URL", &url);
    std::env::set_var(
        "FUTUREAUTH_SECRET_KEY",
        "vx_sec_spec_test_0123456789abcdefghijkl",
    );

    let (pool, spec_auth) = setup_snippet().await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        tables,
        ["futureauth_rate_limit", "session", "user", "verification"]
    );

    // The router snippet serves the auth routes and a protected /api/me.
    let app = router_snippet(pool.clone(), spec_auth);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let me = reqwest::get(format!("{base}/api/me")).await.unwrap();
    assert_eq!(me.status(), 401);
    let session = reqwest::get(format!("{base}/api/auth/session"))
        .await
        .unwrap();
    assert_eq!(session.status(), 401);

    // The same code against a fake FutureAuth service instead of future-auth.com.
    let fake = MockServer::start().await;
    Mock::given(path("/api/v1/otp/send"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&fake)
        .await;
    let auth = FutureAuth::new(
        pool.clone(),
        FutureAuthConfig {
            api_url: fake.uri(),
            secret_key: std::env::var("FUTUREAUTH_SECRET_KEY").unwrap(),
            project_name: "My App".to_string(),
            ..Default::default()
        },
    );
    send_snippet(&auth).await.unwrap();
    let sent: Vec<serde_json::Value> = fake
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let channels: Vec<&str> = sent
        .iter()
        .map(|b| b["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["magic_link", "email", "sms"]);

    // "a1b2c3" is the spec's example code, not the one sent: the call says so, typed.
    let err = verify_otp_snippet(&auth).await.unwrap_err();
    assert!(
        matches!(
            err.downcast_ref::<FutureAuthError>(),
            Some(FutureAuthError::InvalidCode)
        ),
        "{err}"
    );

    let token = sent[0]["code"].as_str().unwrap().to_string();
    assert_eq!(
        sent[0]["link"],
        json!(format!("https://myapp.com/auth/verify?token={token}"))
    );
    let session_token = verify_magic_link_snippet(&auth, token).await.unwrap();
    assert!(
        session_snippet(&auth, session_token.clone()).await.unwrap(),
        "authenticated"
    );
    assert!(
        !session_snippet(&auth, session_token).await.unwrap(),
        "signed out"
    );

    pool.close().await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&admin)
        .await
        .unwrap();
}
