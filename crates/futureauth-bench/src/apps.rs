//! The variants, each an Axum app on loopback serving `GET /api/me` for a signed-in client.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use axum::http::{header, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use futureauth::axum::{auth_router, AuthSession};
use futureauth::delivery::{Delivery, DeliveryError, Message};
use futureauth::{FutureAuth, FutureAuthConfig, OtpChannel, SessionCacheConfig};
use serde_json::{json, Value};
use sqlx::PgPool;

/// A running app and the cookie of a signed-in user.
pub struct Target {
    pub base: String,
    pub cookie: String,
}

/// Serves `app` on a loopback port; returns its base URL.
pub async fn serve(app: Router) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let served = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
        if let Err(error) = served {
            eprintln!("bench app stopped: {error}");
        }
    });
    Ok(base)
}

// ---- static: the stack's ceiling ----

async fn static_me() -> Json<Value> {
    Json(json!({ "id": "static", "email": "static@example.com" }))
}

/// The same Axum stack answering `/api/me` with a fixed JSON body: no cookie check, no
/// database. Its rate is the most this machine, stack and load generator can show, so a
/// row near it is bounded by the stack, not by its own work.
pub async fn static_json(cookie: String) -> Result<Target> {
    let app = Router::new().route("/api/me", get(static_me));
    Ok(Target {
        base: serve(app).await?,
        cookie,
    })
}

// ---- bare: what any session check must at least do ----

/// The bare handler ([`crate::bare::bare_me`]) on `db`.
pub async fn bare(db: PgPool, cookie: String) -> Result<Target> {
    let app = Router::new()
        .route("/api/me", get(crate::bare::bare_me))
        .with_state(db);
    Ok(Target {
        base: serve(app).await?,
        cookie,
    })
}

// ---- this SDK ----

/// A delivery that keeps every code by destination (the dev outbox keeps only the last 100).
#[derive(Clone, Default)]
pub struct CodeBook(Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>);

impl CodeBook {
    pub fn code_for(&self, destination: &str) -> Result<String> {
        self.0
            .lock()
            .map_err(|_| anyhow!("code book poisoned"))?
            .get(destination)
            .cloned()
            .ok_or_else(|| anyhow!("no code for {destination}"))
    }
}

#[futureauth::async_trait]
impl Delivery for CodeBook {
    async fn deliver(&self, message: &Message) -> Result<(), DeliveryError> {
        if let Ok(mut codes) = self.0.lock() {
            codes.insert(message.destination.clone(), message.code.clone());
        }
        Ok(())
    }
}

#[derive(Clone)]
struct SdkState {
    auth: Arc<FutureAuth>,
}

impl AsRef<Arc<FutureAuth>> for SdkState {
    fn as_ref(&self) -> &Arc<FutureAuth> {
        &self.auth
    }
}

async fn sdk_me(auth: AuthSession) -> Json<Value> {
    Json(json!({ "id": auth.user.id, "email": auth.user.email }))
}

/// An SDK app (with or without the session cache) on `db`, its dev outbox and its
/// router: `/api/me` plus the auth routes. Loopback is a trusted proxy, so that the
/// sign-in storm can give each user its own `X-Forwarded-For` address.
pub async fn sdk(db: PgPool, cached: bool) -> Result<(Arc<FutureAuth>, CodeBook, String)> {
    let outbox = CodeBook::default();
    let config = FutureAuthConfig {
        cookie_secure: false,
        trusted_proxies: vec!["127.0.0.1/32".parse()?],
        session_cache: cached.then(SessionCacheConfig::default),
        code_secret: "futureauth-bench-code-secret-0123456789abcdef".into(),
        ..Default::default()
    };
    let auth = Arc::new(FutureAuth::new(db, config).with_delivery(outbox.clone()));
    auth.ensure_tables().await?;
    let app = Router::new()
        .merge(auth_router(auth.clone()))
        .route("/api/me", get(sdk_me))
        .with_state(SdkState { auth: auth.clone() });
    Ok((auth, outbox, serve(app).await?))
}

/// Signs `email` in through the SDK; returns the cookie.
pub async fn sdk_sign_in(auth: &FutureAuth, outbox: &CodeBook, email: &str) -> Result<String> {
    auth.send_otp(OtpChannel::Email, email).await?;
    let code = outbox.code_for(email)?;
    let (_, session) = auth.verify_otp(email, &code, None, None).await?;
    Ok(format!("futureauth_session={}", session.token))
}

// ---- futureauth 0.5.1 ----

#[derive(Clone)]
struct Sdk05State {
    auth: Arc<futureauth05::FutureAuth>,
}

impl AsRef<Arc<futureauth05::FutureAuth>> for Sdk05State {
    fn as_ref(&self) -> &Arc<futureauth05::FutureAuth> {
        &self.auth
    }
}

async fn sdk05_me(auth: futureauth05::axum::AuthSession) -> Json<Value> {
    Json(json!({ "id": auth.user.id, "email": auth.user.email }))
}

/// futureauth 0.5.1 on `db` (its own schema): `/api/me` with its extractor and its routes.
pub async fn sdk05(db: PgPool) -> Result<(Arc<futureauth05::FutureAuth>, String)> {
    let auth = futureauth05::FutureAuth::new(db, futureauth05::FutureAuthConfig::default());
    auth.ensure_tables().await?;
    let app = Router::new()
        .merge(futureauth05::axum::auth_router(auth.clone()))
        .route("/api/me", get(sdk05_me))
        .with_state(Sdk05State { auth: auth.clone() });
    Ok((auth, serve(app).await?))
}

/// Signs `email` in through 0.5.1 (a code stored directly: it has no dev delivery).
pub async fn sdk05_sign_in(auth: &futureauth05::FutureAuth, email: &str) -> Result<String> {
    auth.store_otp(email, "bench1", std::time::Duration::from_secs(600))
        .await?;
    let (_, session) = auth.verify_otp(email, "bench1", None, None).await?;
    Ok(format!("futureauth_session={}", session.token))
}

// ---- axum-login + tower-sessions with the sqlx Postgres store ----

mod login {
    use axum_login::{AuthUser, AuthnBackend, UserId};
    use sqlx::PgPool;

    #[derive(Clone)]
    pub struct User {
        pub id: String,
        pub email: String,
        auth_hash: Vec<u8>,
    }

    impl std::fmt::Debug for User {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("User").field("id", &self.id).finish()
        }
    }

    impl AuthUser for User {
        type Id = String;

        fn id(&self) -> String {
            self.id.clone()
        }

        fn session_auth_hash(&self) -> &[u8] {
            &self.auth_hash
        }
    }

    /// Users by id from the app's own table, as an axum-login app would keep them.
    #[derive(Clone)]
    pub struct Backend {
        pub db: PgPool,
    }

    impl AuthnBackend for Backend {
        type User = User;
        type Credentials = String;
        type Error = sqlx::Error;

        async fn authenticate(&self, user_id: String) -> Result<Option<User>, sqlx::Error> {
            self.get_user(&user_id).await
        }

        async fn get_user(&self, id: &UserId<Self>) -> Result<Option<User>, sqlx::Error> {
            let row: Option<(String, String, Vec<u8>)> =
                sqlx::query_as("SELECT id, email, auth_hash FROM bench_user WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.db)
                    .await?;
            Ok(row.map(|(id, email, auth_hash)| User {
                id,
                email,
                auth_hash,
            }))
        }
    }
}

type LoginSession = axum_login::AuthSession<login::Backend>;

async fn login_me(auth: LoginSession) -> Result<Json<Value>, StatusCode> {
    let user = auth.user.ok_or(StatusCode::UNAUTHORIZED)?;
    Ok(Json(json!({ "id": user.id, "email": user.email })))
}

async fn login_sign_in(mut auth: LoginSession, body: String) -> Result<StatusCode, StatusCode> {
    let user = auth
        .authenticate(body)
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
        .ok_or(StatusCode::UNAUTHORIZED)?;
    auth.login(&user)
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok(StatusCode::NO_CONTENT)
}

/// axum-login 0.18 over tower-sessions 0.14 and `tower-sessions-sqlx-store`'s
/// `PostgresStore`, 30-day inactivity expiry; a user signed in through `POST /login`.
pub async fn axum_login(db: PgPool, http: &reqwest::Client) -> Result<Target> {
    use axum_login::tower_sessions::{cookie::time::Duration, Expiry, SessionManagerLayer};
    use tower_sessions_sqlx_store::PostgresStore;

    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_user (id TEXT PRIMARY KEY, email TEXT NOT NULL, auth_hash BYTEA NOT NULL)",
    )
    .execute(&db)
    .await?;
    sqlx::query("INSERT INTO bench_user VALUES ('u1', 'login@example.com', $1)")
        .bind(rand::random::<[u8; 32]>().to_vec())
        .execute(&db)
        .await?;
    let store = PostgresStore::new(db.clone());
    store.migrate().await?;
    let sessions = SessionManagerLayer::new(store)
        .with_secure(false)
        .with_expiry(Expiry::OnInactivity(Duration::days(30)));
    let layer = axum_login::AuthManagerLayerBuilder::new(login::Backend { db }, sessions).build();
    let app = Router::new()
        .route("/api/me", get(login_me))
        .route("/login", post(login_sign_in))
        .layer(layer);
    let base = serve(app).await?;
    let response = http.post(format!("{base}/login")).body("u1").send().await?;
    let cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("axum-login set no cookie")?
        .to_string();
    Ok(Target { base, cookie })
}
