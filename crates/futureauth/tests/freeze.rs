//! A frozen Postgres never hangs a request (issue 24). A private cluster (never the shared
//! one) is frozen with `SIGSTOP` on its own processes while requests are inside Postgres
//! (held there by a table lock) and while new ones arrive, then resumed with `SIGCONT`.
//!
//! Every request answers within the documented bound (`db_call_timeout`, plus a little for a
//! busy test machine) with `503 unavailable` and `Retry-After`: never 401 or 500, never a
//! hang. The app's pool is the README's production pool with `test_before_acquire(false)`,
//! so nothing rests on sqlx's idle-connection check. After the resume every session works
//! again at once (nobody signed out) and the pool has all its connections (the ones
//! abandoned at the deadline were discarded, not returned half-used).
//!
//! Remove the deadline (`db_call_timeout: None`) and the in-flight requests hang for the
//! whole freeze: the test's own client timeout then fails it, it never hangs CI.

mod common;
#[path = "../../futureauth-server/tests/pg_cluster/mod.rs"]
mod pg_cluster;

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::{Json, Router};
use futureauth::axum::{auth_router, AuthSession};
use futureauth::delivery::DevOutbox;
use futureauth::{FutureAuth, FutureAuthConfig, OtpChannel};
use pg_cluster::Cluster;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool};

/// The deadline under test: short, so that the test is quick.
const BOUND: Duration = Duration::from_secs(2);
/// What a loaded 2-core test machine may add to the bound (scheduling, HTTP).
const SLACK: Duration = Duration::from_millis(1500);
/// How long the cluster stays frozen: well past the bound, so a hung request shows.
const FREEZE: Duration = Duration::from_secs(10);
/// The test client's own limit: longer than the freeze, so a request that waits for the
/// resume is caught as too slow instead of hanging the test.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
const POOL_SIZE: u32 = 6;

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

/// The README's production pool, with the idle-connection check off.
async fn production_pool(url: &str) -> PgPool {
    let options = PgConnectOptions::from_str(url)
        .unwrap()
        .options([("statement_timeout", "5s")]);
    PgPoolOptions::new()
        .max_connections(POOL_SIZE)
        .acquire_timeout(Duration::from_secs(2))
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .unwrap()
}

/// One answer: status, `error.code`, whether `Retry-After` was set, how long it took.
#[derive(Debug)]
struct Answer {
    status: u16,
    code: String,
    retry_after: bool,
    took: Duration,
}

async fn get_me(http: &reqwest::Client, base: &str, token: &str) -> Answer {
    let started = Instant::now();
    let resp = http
        .get(format!("{base}/api/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("no answer within {CLIENT_TIMEOUT:?}: {e}"));
    answer(resp, started).await
}

async fn send_code(http: &reqwest::Client, base: &str, email: &str) -> Answer {
    let started = Instant::now();
    let resp = http
        .post(format!("{base}/api/auth/send-otp"))
        .json(&json!({ "email": email }))
        .send()
        .await
        .unwrap_or_else(|e| panic!("no answer within {CLIENT_TIMEOUT:?}: {e}"));
    answer(resp, started).await
}

async fn answer(resp: reqwest::Response, started: Instant) -> Answer {
    let status = resp.status().as_u16();
    let retry_after = resp.headers().contains_key("retry-after");
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        code: body["error"]["code"].as_str().unwrap_or("").to_string(),
        retry_after,
        took: started.elapsed(),
    }
}

fn assert_unavailable_in_time(what: &str, answers: &[Answer]) {
    for a in answers {
        assert_eq!(
            (a.status, a.code.as_str(), a.retry_after),
            (503, "unavailable", true),
            "{what}: {a:?}"
        );
        assert!(
            a.took <= BOUND + SLACK,
            "{what}: answered after {:?}, over the bound {BOUND:?} (+{SLACK:?}): {a:?}",
            a.took
        );
    }
}

async fn sign_in(auth: &FutureAuth, outbox: &DevOutbox, email: &str) -> String {
    auth.send_otp(OtpChannel::Email, email).await.unwrap();
    let code = common::code_for(outbox, email);
    auth.verify_otp(email, &code, None, None)
        .await
        .unwrap()
        .1
        .token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_frozen_postgres_answers_503_within_the_bound_and_recovers() {
    let cluster = Cluster::start();
    cluster.create_database("app");
    let url = cluster.url("app");
    let pool = production_pool(&url).await;
    let outbox = DevOutbox::quiet();
    let auth = FutureAuth::new(
        pool.clone(),
        FutureAuthConfig {
            db_call_timeout: Some(BOUND),
            ..common::config()
        },
    )
    .with_delivery(outbox.clone());
    auth.ensure_tables().await.unwrap();
    let mut tokens = Vec::new();
    for i in 0..4 {
        tokens.push(sign_in(&auth, &outbox, &format!("user{i}@example.org")).await);
    }
    let state = AppState {
        auth: Arc::new(auth),
    };
    let app = Router::new()
        .merge(auth_router(state.auth.clone()))
        .route("/api/me", get(me))
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
        .timeout(CLIENT_TIMEOUT)
        .build()
        .unwrap();
    for token in &tokens {
        assert_eq!(get_me(&http, &base, token).await.status, 200);
    }

    // Requests inside Postgres when it freezes: held there by a lock on the session table.
    let mut locker = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE session IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();
    let in_flight: Vec<_> = tokens
        .iter()
        .map(|t| {
            let (http, base, t) = (http.clone(), base.clone(), t.clone());
            tokio::spawn(async move { get_me(&http, &base, &t).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.freeze();
    let frozen_at = Instant::now();

    // New requests while frozen: sessions (idle pool connections that will never answer,
    // not checked before use) and sign-ins (writes).
    let mut arriving = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let (h, b, t) = (http.clone(), base.clone(), t.clone());
        arriving.push(tokio::spawn(async move { get_me(&h, &b, &t).await }));
        let (http, base) = (http.clone(), base.clone());
        arriving.push(tokio::spawn(async move {
            send_code(&http, &base, &format!("new{i}@example.org")).await
        }));
    }
    let mut in_flight_answers = Vec::new();
    for h in in_flight {
        in_flight_answers.push(h.await.unwrap());
    }
    let mut arriving_answers = Vec::new();
    for h in arriving {
        arriving_answers.push(h.await.unwrap());
    }
    assert_unavailable_in_time("in flight", &in_flight_answers);
    assert_unavailable_in_time("arriving", &arriving_answers);
    // A second wave, once every connection of the pool was given up on.
    let second: Vec<_> = tokens
        .iter()
        .map(|t| {
            let (http, base, t) = (http.clone(), base.clone(), t.clone());
            tokio::spawn(async move { get_me(&http, &base, &t).await })
        })
        .collect();
    let mut second_answers = Vec::new();
    for h in second {
        second_answers.push(h.await.unwrap());
    }
    let second = second_answers;
    assert_unavailable_in_time("second wave", &second);
    let slowest = in_flight_answers
        .iter()
        .chain(&arriving_answers)
        .chain(&second)
        .map(|a| a.took)
        .max()
        .unwrap();
    eprintln!(
        "frozen: {} requests answered 503 unavailable, slowest after {slowest:?} (bound {BOUND:?})",
        in_flight_answers.len() + arriving_answers.len() + second.len()
    );
    assert!(
        frozen_at.elapsed() < FREEZE,
        "the freeze must outlast every answer"
    );
    tokio::time::sleep(FREEZE.saturating_sub(frozen_at.elapsed())).await;
    cluster.thaw();
    let thawed = Instant::now();
    drop(locker);

    // Everybody still signed in, at once, over a pool that has all its connections back.
    let mut recovered = None;
    while thawed.elapsed() < Duration::from_secs(10) {
        if get_me(&http, &base, &tokens[0]).await.status == 200 {
            recovered = Some(thawed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let recovered = recovered.expect("requests succeed again within 10 s of the resume");
    eprintln!("recovered {recovered:?} after the resume");
    let wave: Vec<_> = (0..(POOL_SIZE as usize * 3))
        .map(|i| {
            let (http, base, t) = (http.clone(), base.clone(), tokens[i % tokens.len()].clone());
            tokio::spawn(async move { get_me(&http, &base, &t).await })
        })
        .collect();
    for h in wave {
        let a = h.await.unwrap();
        assert_eq!(a.status, 200, "after the resume: {a:?}");
    }
    assert!(
        pool.size() <= POOL_SIZE,
        "the pool stays within its size: {}",
        pool.size()
    );
    // A sign-in works end to end again.
    let a = send_code(&http, &base, "after@example.org").await;
    assert_eq!(a.status, 200, "{a:?}");
}

/// The SDK's futures stay `Send` through the bounded seam (an app spawns them; Axum needs
/// it): this only compiles if they are.
#[allow(dead_code)]
fn futures_are_send(auth: Arc<FutureAuth>) {
    fn spawnable<F: std::future::Future + Send>(_: F) {}
    spawnable(async move {
        let _ = auth.ensure_tables().await;
        let _ = auth.get_session("token").await;
        let _ = auth.send_otp(OtpChannel::Email, "a@example.org").await;
        let _ = auth.verify_otp("a@example.org", "123456", None, None).await;
        let _ = auth.cleanup_expired().await;
    });
}
