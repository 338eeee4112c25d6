//! Property test: arbitrary JSON bodies, header values and path segments thrown at every
//! route of `auth_router` (and an app route behind `csrf_layer`) over a real loopback
//! server, on Postgres and SQLite. No answer may be a 5xx and the server must never drop
//! a connection (a panicking handler does).
//!
//! The delivery is a quiet dev outbox, which never fails, so no 502 is expected either.
//! `PROPTEST_CASES` sets the number of cases (default 200); each case goes to every route.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::routing::{get, post};
use axum::{Json, Router};
use common::{Backend, TestDb};
use futureauth::axum::{auth_router, csrf_layer, AuthSession};
use futureauth::{FutureAuth, FutureAuthConfig};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};

/// Every route of the SDK, and an app route of its own behind the CSRF layer. The two
/// that end the session come last, so that the others see it live.
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/auth/send-otp"),
    ("POST", "/api/auth/verify-otp"),
    ("POST", "/api/auth/send-magic-link"),
    ("POST", "/api/auth/verify-magic-link"),
    ("GET", "/api/auth/session"),
    ("GET", "/api/auth/get-session"),
    ("GET", "/api/auth/sessions"),
    ("POST", "/api/auth/revoke-session"),
    ("POST", "/api/app/action"),
    ("GET", "/api/me"),
    ("POST", "/api/auth/sign-out"),
    ("POST", "/api/auth/sign-out-all"),
];

/// Longest header value sent.
const MAX_HEADER: usize = 2048;

/// The auth routes' body limit (16 KiB).
const BODY_LIMIT: usize = 16 * 1024;

/// The names of the threads that panicked (a handler panicking drops its connection).
/// Each backend's server runs on threads named after it.
static PANICKED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn record_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let name = std::thread::current().name().unwrap_or("").to_string();
        PANICKED
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(name);
        default(info);
    }));
}

fn server_panics(threads: &str) -> usize {
    let panicked = PANICKED.lock().unwrap_or_else(|p| p.into_inner());
    panicked.iter().filter(|n| n.as_str() == threads).count()
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

async fn me(auth: AuthSession) -> Json<Value> {
    Json(json!({ "id": auth.user.id }))
}

/// Stands for a live session token in generated header values; each case signs in anew,
/// because earlier cases may have signed the session out.
const SESSION: &str = "LIVE-SESSION-TOKEN";

/// A running app.
struct Target {
    base: String,
    auth: Arc<FutureAuth>,
    outbox: futureauth::delivery::DevOutbox,
    http: reqwest::Client,
}

impl Target {
    /// A new session of a new user (the `n`th), so that no limit of earlier cases applies.
    async fn sign_in(&self, n: u64) -> String {
        let email = format!("fuzz{n}@example.com");
        self.auth
            .send_otp(futureauth::OtpChannel::Email, &email)
            .await
            .unwrap();
        let code = common::code_for(&self.outbox, &email);
        let (_, session) = self
            .auth
            .verify_otp(&email, &code, None, None)
            .await
            .unwrap();
        session.token
    }
}

async fn start(db: &TestDb) -> Target {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = FutureAuthConfig {
        app_url: base.clone(),
        allowed_origins: vec!["https://spa.example".into()],
        // Loopback is a trusted proxy, so X-Forwarded-For is parsed too.
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        ..common::config()
    };
    let (auth, outbox) = db.auth(config).await;
    let auth = Arc::new(auth);
    let state = AppState { auth: auth.clone() };
    let own = Router::new()
        .route("/api/app/action", post(|_: AuthSession| async { "done" }))
        .layer(csrf_layer(auth.clone()));
    let app = Router::new()
        .merge(auth_router(auth.clone()))
        .route("/api/me", get(me))
        .merge(own)
        .with_state(state);
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    Target {
        base,
        auth,
        outbox,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // A connection the server closed (after a 413) must not be reused.
            .pool_max_idle_per_host(0)
            .build()
            .unwrap(),
    }
}

/// Text an attacker might send: anything, with NULs and control characters, plausible
/// identifiers and codes, and strings past the body limit.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        2 => "[a-z0-9@.+\\-]{0,24}",
        2 => Just("\0".to_string()),
        3 => "[a-z]{0,8}\0[a-z\\x00-\\x1f]{0,8}",
        1 => Just("ada@example.com".to_string()),
        1 => Just("+15551234567".to_string()),
        1 => Just("https://evil.example/steal?token=x".to_string()),
        1 => (0usize..40_000).prop_map(|n| "a".repeat(n)),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(text(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A body: an object with the routes' own field names holding arbitrary values, any JSON
/// value, or raw bytes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        Just("email"),
        Just("phone"),
        Just("code"),
        Just("token"),
        Just("id"),
        Just("callback_url"),
    ];
    prop_oneof![
        3 => prop::collection::btree_map(field.clone(), json_value(), 0..5)
            .prop_map(|m| serde_json::to_vec(&m).unwrap()),
        4 => prop::collection::btree_map(field, text(), 1..4)
            .prop_map(|m| serde_json::to_vec(&m).unwrap()),
        1 => json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => prop::collection::vec(any::<u8>(), 0..256),
    ]
}

/// A header value: arbitrary bytes (kept only if HTTP can carry them), or plausible ones.
fn header_value(plausible: Vec<String>) -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        2 => Just(None),
        2 => prop::sample::select(plausible).prop_map(|s| Some(s.into_bytes())),
        2 => prop::collection::vec(any::<u8>(), 0..80).prop_map(Some),
        2 => text().prop_map(|s| Some(s.into_bytes())),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    body: Vec<u8>,
    headers: Vec<(&'static str, Option<Vec<u8>>)>,
    segment: String,
}

fn case(target: &Target) -> impl Strategy<Value = Case> {
    let host = target.base.trim_start_matches("http://").to_string();
    let headers = (
        header_value(vec![host, "evil.example".into()]),
        header_value(vec![
            target.base.clone(),
            "https://evil.example".into(),
            "null".into(),
        ]),
        header_value(vec![
            format!("futureauth_session={SESSION}"),
            format!("a=1; futureauth_session={SESSION}x"),
            "futureauth_session=\"\0\"".into(),
        ]),
        header_value(vec![format!("Bearer {SESSION}"), "Bearer ".into()]),
        header_value(vec![
            "203.0.113.9, 10.0.0.1".into(),
            "::1, not-an-ip".into(),
        ]),
        header_value(vec!["Mozilla/5.0".into()]),
        header_value(vec!["application/json".into(), "text/plain".into()]),
        header_value(vec!["cross-site".into(), "same-origin".into()]),
    );
    let base = target.base.clone();
    (body(), headers, text(), any::<bool>()).prop_map(
        move |(
            body,
            (host, origin, cookie, authorization, xff, agent, content_type, site),
            segment,
            envelope,
        )| {
            // Half the cases come in a well-formed envelope (the app's own origin, JSON, a
            // live session), so that arbitrary bodies reach the handlers past the guards.
            let (origin, content_type, cookie) = if envelope {
                (
                    Some(base.clone().into_bytes()),
                    Some(b"application/json".to_vec()),
                    Some(format!("futureauth_session={SESSION}").into_bytes()),
                )
            } else {
                (origin, content_type, cookie)
            };
            Case {
                body,
                headers: vec![
                    ("host", host),
                    ("origin", origin),
                    ("cookie", cookie),
                    ("authorization", authorization),
                    ("x-forwarded-for", xff),
                    ("user-agent", agent),
                    ("content-type", content_type),
                    ("sec-fetch-site", site),
                ],
                segment,
            }
        },
    )
}

/// Sends one request; fails the case on a 5xx or a dropped connection.
async fn send(
    target: &Target,
    method: &str,
    path: &str,
    case: &Case,
    session: &str,
) -> Result<(), TestCaseError> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = target
        .http
        .request(method.clone(), format!("{}{path}", target.base));
    for (name, value) in &case.headers {
        let Some(value) = value else { continue };
        let mut value = replace(value, SESSION.as_bytes(), session.as_bytes());
        // hyper refuses oversized header sections before the app sees them (it closes the
        // connection); the app's own handling is what this test is about.
        value.truncate(MAX_HEADER);
        // Only what a client can put on the wire (no CR, LF or NUL).
        if let Ok(value) = reqwest::header::HeaderValue::from_bytes(&value) {
            request = request.header(*name, value);
        }
    }
    if method == reqwest::Method::POST {
        request = request.body(case.body.clone());
    }
    let response = match request.send().await {
        Ok(response) => response,
        // A body past the limit may be refused (413) before it is all sent, and the
        // connection closed: the client then sees a send error. Panics are caught below.
        Err(_) if method == reqwest::Method::POST && case.body.len() > BODY_LIMIT => return Ok(()),
        Err(e) => {
            let sent: Vec<_> = case
                .headers
                .iter()
                .filter_map(|(n, v)| {
                    let v = v.as_ref()?;
                    reqwest::header::HeaderValue::from_bytes(v).ok()?;
                    Some((n, String::from_utf8_lossy(v).into_owned()))
                })
                .collect();
            return Err(TestCaseError::fail(format!(
                "{method} {path}: no answer ({e:?}); headers sent {sent:?}"
            )));
        }
    };
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    prop_assert!(
        !status.is_server_error(),
        "{method} {path} answered {status}: {text}"
    );
    Ok(())
}

/// `bytes` with every `from` replaced by `to`.
fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        if rest.starts_with(from) {
            out.extend_from_slice(to);
            rest = &rest[from.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}

fn every_route_survives_arbitrary_input(backend: Backend) {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(record_panics);
    let threads = format!("fuzz-server-{backend:?}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(&threads)
        .enable_all()
        .build()
        .unwrap();
    let db = runtime.block_on(TestDb::new(backend));
    let target = runtime.block_on(start(&db));
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let signed_in = AtomicU64::new(0);
    let outcome = runner.run(&case(&target), |case| {
        runtime.block_on(async {
            let n = signed_in.fetch_add(1, Ordering::Relaxed);
            let session = target.sign_in(n).await;
            for (method, path) in ROUTES {
                send(&target, method, path, &case, &session).await?;
            }
            // The same input under a path segment of its own choosing.
            let segment: String = url::form_urlencoded::byte_serialize(case.segment.as_bytes())
                .collect::<String>()
                .chars()
                .take(2000)
                .collect();
            send(
                &target,
                "POST",
                &format!("/api/auth/{segment}"),
                &case,
                &session,
            )
            .await?;
            send(
                &target,
                "GET",
                &format!("/api/auth/{segment}"),
                &case,
                &session,
            )
            .await?;
            prop_assert_eq!(server_panics(&threads), 0, "a handler panicked");
            Ok(())
        })
    });
    runtime.block_on(db.cleanup());
    if let Err(e) = outcome {
        panic!("{e}");
    }
}

#[test]
fn every_route_survives_arbitrary_input_on_postgres() {
    every_route_survives_arbitrary_input(Backend::Postgres);
}

#[test]
fn every_route_survives_arbitrary_input_on_sqlite() {
    every_route_survives_arbitrary_input(Backend::Sqlite);
}
