//! Requests/s of an authenticated `GET /api/me` (the `AuthSession` extractor: one indexed
//! query) against a bare handler doing one primary-key query on the same pool, measured
//! side by side in alternating rounds over loopback. Prints both rates and their ratio.
//!
//! ```sh
//! cargo bench -p futureauth@0.6.0 --bench session_check
//! ```
//! Uses `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`), in a schema of
//! its own that it drops at the end. Bounded: a fixed number of rounds of fixed length.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use futureauth::axum::{auth_router, AuthSession};
use futureauth::delivery::DevOutbox;
use futureauth::sqlx::{self, postgres::PgConnectOptions, PgPool};
use futureauth::{FutureAuth, FutureAuthConfig, OtpChannel};
use serde_json::{json, Value};

const ROUNDS: usize = 3;
const ROUND: Duration = Duration::from_secs(4);
const CLIENTS: usize = 16;

#[derive(Clone)]
struct AppState {
    db: PgPool,
    auth: Arc<FutureAuth>,
    user_id: String,
}

impl AsRef<Arc<FutureAuth>> for AppState {
    fn as_ref(&self) -> &Arc<FutureAuth> {
        &self.auth
    }
}

async fn me(auth: AuthSession) -> Json<Value> {
    Json(json!({ "id": auth.user.id, "email": auth.user.email }))
}

async fn baseline(State(state): State<AppState>) -> Json<Value> {
    let (id, email): (String, Option<String>) =
        sqlx::query_as("SELECT id, email FROM \"user\" WHERE id = $1")
            .bind(&state.user_id)
            .fetch_one(&state.db)
            .await
            .unwrap_or_default();
    Json(json!({ "id": id, "email": email }))
}

async fn rate(client: &reqwest::Client, url: &str, cookie: &str) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + ROUND;
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (client, url, cookie, done) = (
                client.clone(),
                url.to_string(),
                cookie.to_string(),
                done.clone(),
            );
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let r = client
                        .get(&url)
                        .header("cookie", &cookie)
                        .send()
                        .await
                        .expect("request");
                    assert_eq!(r.status(), 200);
                    r.bytes().await.expect("body");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("worker");
    }
    done.load(Ordering::Relaxed) as f64 / ROUND.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("fa_bench_{}", std::process::id());
    let admin = PgPool::connect(&url).await.expect("Postgres");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .expect("schema");
    let options: PgConnectOptions = url.parse().expect("DATABASE_URL");
    let db = sqlx::postgres::PgPoolOptions::new()
        .max_connections(10)
        .connect_with(options.options([("search_path", schema.as_str())]))
        .await
        .expect("pool");

    let outbox = DevOutbox::quiet();
    let config = FutureAuthConfig {
        cookie_secure: false,
        ..Default::default()
    };
    let auth = FutureAuth::new(db.clone(), config).with_delivery(outbox.clone());
    auth.ensure_tables().await.expect("tables");
    auth.send_otp(OtpChannel::Email, "bench@example.com")
        .await
        .expect("send");
    let code = outbox.latest_for("bench@example.com").expect("code").code;
    let (user, session) = auth
        .verify_otp("bench@example.com", &code, None, None)
        .await
        .expect("verify");
    let cookie = format!("futureauth_session={}", session.token);

    let state = AppState {
        db: db.clone(),
        auth: Arc::new(auth),
        user_id: user.id,
    };
    let app = Router::new()
        .merge(auth_router(state.auth.clone()))
        .route("/api/me", get(me))
        .route("/baseline", get(baseline))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .expect("client");
    // Warm up both paths (connections, statement caches).
    rate(&client, &format!("{base}/baseline"), &cookie).await;
    rate(&client, &format!("{base}/api/me"), &cookie).await;

    let (mut base_total, mut me_total) = (0.0, 0.0);
    println!(
        "{:>5}  {:>16}  {:>16}  {:>6}",
        "round", "baseline req/s", "/api/me req/s", "ratio"
    );
    for round in 1..=ROUNDS {
        let b = rate(&client, &format!("{base}/baseline"), &cookie).await;
        let m = rate(&client, &format!("{base}/api/me"), &cookie).await;
        base_total += b;
        me_total += m;
        println!("{round:>5}  {b:>16.0}  {m:>16.0}  {:>6.2}", m / b);
    }
    println!(
        "mean   {:>16.0}  {:>16.0}  {:>6.2}   (/api/me with AuthSession vs one primary-key query)",
        base_total / ROUNDS as f64,
        me_total / ROUNDS as f64,
        me_total / base_total
    );

    db.close().await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await
        .expect("drop");
}
