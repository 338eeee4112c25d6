//! The opt-in session cache never serves a revoked session: two SDK instances (two pools,
//! as two processes would have) on one Postgres schema, both caching; a revoke on one is
//! refused by the other within a second, also after the listener's connection was killed
//! and came back. On SQLite (one process) the eviction is local.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use common::{code_for, config, database_url, TestDb};
use futureauth::axum::auth_router;
use futureauth::delivery::DevOutbox;
use futureauth::sqlx::{
    self,
    postgres::{PgConnectOptions, PgPoolOptions},
    PgPool,
};
use futureauth::{FutureAuth, FutureAuthConfig, OtpChannel, Session, SessionCacheConfig, User};
use rand::Rng;

/// Long enough that only an eviction, never the TTL, can end an entry during a test.
fn cached_config() -> FutureAuthConfig {
    FutureAuthConfig {
        session_cache: Some(SessionCacheConfig {
            ttl: Duration::from_secs(120),
            ..Default::default()
        }),
        cookie_secure: false,
        ..config()
    }
}

/// Two instances on one schema, each with its own pool named `app_name`.
struct Pair {
    db: TestDb,
    a: Arc<FutureAuth>,
    b: Arc<FutureAuth>,
    outbox: DevOutbox,
    pools: Vec<PgPool>,
    app_name: String,
}

impl Pair {
    async fn new() -> Self {
        let db = TestDb::postgres().await;
        let TestDb::Postgres { schema, .. } = &db else {
            unreachable!("postgres")
        };
        let app_name = format!("fa_cache_{:08x}", rand::thread_rng().gen::<u32>());
        let options: PgConnectOptions = database_url().parse().unwrap();
        let options = options
            .options([("search_path", schema.as_str())])
            .application_name(&app_name);
        let outbox = DevOutbox::quiet();
        let mut pools = Vec::new();
        let mut instances = Vec::new();
        for _ in 0..2 {
            let pool = PgPoolOptions::new()
                .max_connections(4)
                .connect_with(options.clone())
                .await
                .unwrap();
            let auth = FutureAuth::new(pool.clone(), cached_config()).with_delivery(outbox.clone());
            auth.ensure_tables().await.unwrap();
            pools.push(pool);
            instances.push(Arc::new(auth));
        }
        let b = instances.pop().unwrap();
        let a = instances.pop().unwrap();
        Self {
            db,
            a,
            b,
            outbox,
            pools,
            app_name,
        }
    }

    /// Signs `email` in on instance A.
    async fn sign_in(&self, email: &str) -> (User, Session) {
        self.a.send_otp(OtpChannel::Email, email).await.unwrap();
        let code = code_for(&self.outbox, email);
        self.a.verify_otp(email, &code, None, None).await.unwrap()
    }

    async fn rename_behind_the_cache(&self, user_id: &str, name: &str) {
        sqlx::query("UPDATE \"user\" SET name = $1 WHERE id = $2")
            .bind(name)
            .bind(user_id)
            .execute(&self.pools[0])
            .await
            .unwrap();
    }

    /// Waits until `auth` answers for `token` from its cache: a name changed by hand in the
    /// database is not seen. Panics after 5 s.
    async fn warm(&self, auth: &FutureAuth, token: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let (user, _) = auth.get_session(token).await.unwrap().expect("signed in");
            let marker = format!("renamed-{:08x}", rand::thread_rng().gen::<u32>());
            self.rename_behind_the_cache(&user.id, &marker).await;
            let (again, _) = auth.get_session(token).await.unwrap().expect("signed in");
            if again.name != marker {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the session cache never answered (is the listener connected?)");
    }

    /// Backend pids of the listener connections of this pair.
    async fn listener_pids(&self) -> HashSet<i32> {
        sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'",
        )
        .bind(&self.app_name)
        .fetch_all(&self.admin().await)
        .await
        .unwrap()
        .into_iter()
        .collect()
    }

    async fn admin(&self) -> PgPool {
        PgPool::connect(&database_url()).await.unwrap()
    }

    async fn cleanup(self) {
        drop((self.a, self.b));
        for pool in self.pools {
            pool.close().await;
        }
        self.db.cleanup().await;
    }
}

/// Polls until `auth` refuses `token`; fails the test after one second.
async fn refused_within_a_second(auth: &FutureAuth, token: &str) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(1) {
        if auth.get_session(token).await.unwrap().is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("a revoked session was still served from the other instance's cache after 1 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_session_on_one_instance_is_refused_by_the_other() {
    let pair = Pair::new().await;
    let (_, session) = pair.sign_in("one@example.com").await;
    pair.warm(&pair.a, &session.token).await;
    pair.warm(&pair.b, &session.token).await;

    pair.a.revoke_session(&session.token).await.unwrap();
    assert!(
        pair.a.get_session(&session.token).await.unwrap().is_none(),
        "the revoking instance refuses at once"
    );
    refused_within_a_second(&pair.b, &session.token).await;
    pair.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_user_session_and_revoke_all_reach_the_other_instance() {
    let pair = Pair::new().await;
    let (user, first) = pair.sign_in("two@example.com").await;
    let (_, second) = pair.sign_in("two@example.com").await;
    let (_, third) = pair.sign_in("two@example.com").await;
    for token in [&first.token, &second.token, &third.token] {
        pair.warm(&pair.b, token).await;
    }

    assert!(pair
        .a
        .revoke_user_session(&user.id, &first.id)
        .await
        .unwrap());
    refused_within_a_second(&pair.b, &first.token).await;
    assert!(
        pair.b.get_session(&second.token).await.unwrap().is_some(),
        "only that session ended"
    );

    pair.warm(&pair.b, &second.token).await;
    assert_eq!(pair.a.revoke_all_sessions(&user.id).await.unwrap(), 2);
    refused_within_a_second(&pair.b, &second.token).await;
    refused_within_a_second(&pair.b, &third.token).await;
    pair.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_still_reaches_the_other_instance_after_its_listener_reconnects() {
    let pair = Pair::new().await;
    let (_, session) = pair.sign_in("three@example.com").await;
    pair.warm(&pair.a, &session.token).await;
    pair.warm(&pair.b, &session.token).await;
    let old = pair.listener_pids().await;
    assert_eq!(old.len(), 2, "one listener per instance");

    let admin = pair.admin().await;
    for pid in &old {
        sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .execute(&admin)
            .await
            .unwrap();
    }
    // Both listeners come back on new connections.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = pair.listener_pids().await;
        if now.len() == 2 && now.is_disjoint(&old) {
            break;
        }
        assert!(Instant::now() < deadline, "the listeners did not reconnect");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The caches answer again, and a revoke on A still reaches B.
    pair.warm(&pair.a, &session.token).await;
    pair.warm(&pair.b, &session.token).await;
    pair.a.revoke_session(&session.token).await.unwrap();
    refused_within_a_second(&pair.b, &session.token).await;
    pair.cleanup().await;
}

#[derive(Clone)]
struct AppState {
    auth: Arc<FutureAuth>,
}

impl AsRef<Arc<FutureAuth>> for AppState {
    fn as_ref(&self) -> &Arc<FutureAuth> {
        &self.auth
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_over_http_reaches_the_other_instance() {
    let pair = Pair::new().await;
    let (_, session) = pair.sign_in("four@example.com").await;
    pair.warm(&pair.b, &session.token).await;

    let app = axum::Router::new()
        .merge(auth_router(pair.a.clone()))
        .with_state(AppState {
            auth: pair.a.clone(),
        });
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
    let response = reqwest::Client::new()
        .post(format!("{base}/api/auth/sign-out"))
        .header("cookie", format!("futureauth_session={}", session.token))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    refused_within_a_second(&pair.b, &session.token).await;
    pair.cleanup().await;
}

/// `AuthSession` answers a cache hit itself, before the database lookup is built: over
/// HTTP, the cached session answers only for its own token (cookie or bearer), whatever a
/// client sends beside it (a changed character, a suffix, 20 kB of it, nothing), and a
/// revoke on the other instance reaches that path within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_extractor_answers_from_the_cache_only_for_the_token_itself() {
    async fn me(auth: futureauth::axum::AuthSession) -> String {
        auth.user.name
    }
    let pair = Pair::new().await;
    let (user, session) = pair.sign_in("extract@example.com").await;
    pair.warm(&pair.b, &session.token).await;
    // The database now holds another name than the one cached: an answer from the cache
    // shows the cached name.
    let cached_name = pair
        .b
        .get_session(&session.token)
        .await
        .unwrap()
        .unwrap()
        .0
        .name;
    pair.rename_behind_the_cache(&user.id, "in-the-database")
        .await;

    let app = axum::Router::new()
        .route("/api/me", axum::routing::get(me))
        .with_state(AppState {
            auth: pair.b.clone(),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::new();
    let get = |header: &'static str, value: String| {
        http.get(format!("{base}/api/me"))
            .header(header, value)
            .send()
    };
    let cookie = |token: &str| format!("futureauth_session={token}");

    let by_cookie = get("cookie", cookie(&session.token)).await.unwrap();
    assert_eq!(by_cookie.status(), 200);
    assert_eq!(
        by_cookie.text().await.unwrap(),
        cached_name,
        "answered from the cache"
    );
    let by_bearer = get("authorization", format!("Bearer {}", session.token))
        .await
        .unwrap();
    assert_eq!(by_bearer.status(), 200);
    assert_eq!(by_bearer.text().await.unwrap(), cached_name);

    let mut changed = session.token.clone().into_bytes();
    let last = changed.len() - 1;
    changed[last] = if changed[last] == b'A' { b'B' } else { b'A' };
    let changed = String::from_utf8(changed).unwrap();
    let suffixed = format!("{}x", session.token);
    let huge = session.token.repeat(20_000 / session.token.len() + 1);
    for token in [changed.as_str(), suffixed.as_str(), huge.as_str(), ""] {
        let response = get("cookie", cookie(token)).await.unwrap();
        assert_eq!(response.status(), 401, "cookie of {} bytes", token.len());
        let response = get("authorization", format!("Bearer {token}"))
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "bearer of {} bytes", token.len());
    }

    pair.a.revoke_session(&session.token).await.unwrap();
    let started = Instant::now();
    loop {
        let status = get("cookie", cookie(&session.token))
            .await
            .unwrap()
            .status();
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a revoked session was still served by the extractor after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    pair.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_session_past_half_its_life_still_slides_in_the_database() {
    let pair = Pair::new().await;
    let (_, session) = pair.sign_in("five@example.com").await;
    pair.warm(&pair.b, &session.token).await;
    // Past half of the 30-day life: the check must extend it even though B cached it.
    let soon = Utc::now() + chrono::Duration::hours(1);
    pair.db.set_expiry("session", "id", &session.id, soon).await;
    // The expiry was shortened by hand, which no cache hears of: evict B's entry the way
    // the SDK does on any user change, so that B reads the row, then check twice.
    pair.b
        .update_user_name(&session.user_id, "slides")
        .await
        .unwrap();
    let (_, checked, extended) = pair
        .b
        .get_session_checked(&session.token)
        .await
        .unwrap()
        .expect("still signed in");
    assert!(extended, "a session past half its life is extended");
    let stored = pair.db.session_expiry(&session.id).await;
    assert!(stored > Utc::now() + chrono::Duration::days(29));
    assert_eq!(checked.expires_at.timestamp(), stored.timestamp());
    let (_, _, again) = pair
        .b
        .get_session_checked(&session.token)
        .await
        .unwrap()
        .expect("still signed in");
    assert!(!again, "extended once per half-life");
    pair.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_single_process_evicts_locally_on_every_revoke() {
    let db = TestDb::sqlite().await;
    let (auth, outbox) = db.auth(cached_config()).await;
    let mut tokens = Vec::new();
    let mut user_id = String::new();
    for _ in 0..4 {
        auth.send_otp(OtpChannel::Email, "six@example.com")
            .await
            .unwrap();
        let code = code_for(&outbox, "six@example.com");
        let (user, session) = auth
            .verify_otp("six@example.com", &code, None, None)
            .await
            .unwrap();
        user_id = user.id;
        tokens.push(session);
    }
    let TestDb::Sqlite { pool, .. } = &db else {
        unreachable!("sqlite")
    };
    // Served from the cache: a name changed by hand is not seen.
    for s in &tokens {
        auth.get_session(&s.token)
            .await
            .unwrap()
            .expect("signed in");
    }
    sqlx::query("UPDATE \"user\" SET name = 'behind'")
        .execute(pool)
        .await
        .unwrap();
    let (cached, _) = auth.get_session(&tokens[0].token).await.unwrap().unwrap();
    assert_ne!(cached.name, "behind", "the cache answered");

    auth.revoke_session(&tokens[0].token).await.unwrap();
    assert!(auth.get_session(&tokens[0].token).await.unwrap().is_none());
    assert!(auth
        .revoke_user_session(&user_id, &tokens[1].id)
        .await
        .unwrap());
    assert!(auth.get_session(&tokens[1].token).await.unwrap().is_none());
    assert_eq!(auth.revoke_all_sessions(&user_id).await.unwrap(), 2);
    assert!(auth.get_session(&tokens[2].token).await.unwrap().is_none());
    assert!(auth.get_session(&tokens[3].token).await.unwrap().is_none());
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_ttl_cache_fails_at_start_up() {
    let db = TestDb::sqlite().await;
    let auth = FutureAuth::new(
        match &db {
            TestDb::Sqlite { pool, .. } => pool.clone(),
            TestDb::Postgres { .. } => unreachable!("sqlite"),
        },
        FutureAuthConfig {
            session_cache: Some(SessionCacheConfig {
                ttl: Duration::ZERO,
                ..Default::default()
            }),
            ..config()
        },
    );
    let error = auth.ensure_tables().await.unwrap_err().to_string();
    assert!(error.contains("session_cache.ttl"), "{error}");
    db.cleanup().await;
}
