//! The HTTP API end to end: a real server on loopback, the real HTTP delivery talking to a
//! local fake of the FutureAuth service (wiremock), on Postgres and SQLite.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use common::TestDb;
use futureauth::axum::{auth_router, csrf_layer, AuthSession};
use futureauth::{FutureAuth, FutureAuthConfig, RateLimit};
use reqwest::header::{HeaderMap, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "vx_sec_http_test_0123456789abcdefghijklmnopq";

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
    Json(json!({ "id": auth.user.id, "email": auth.user.email }))
}

/// A state-changing route of the app itself.
async fn rename(State(state): State<AppState>, auth: AuthSession) -> Json<Value> {
    let user = state
        .auth
        .update_user_name(&auth.user.id, "renamed")
        .await
        .unwrap();
    Json(json!({ "name": user.name }))
}

async fn maybe(auth: Option<AuthSession>) -> String {
    auth.map_or_else(
        || "anonymous".to_string(),
        |a| format!("user {}", a.user.id),
    )
}

/// The app under test, the fake delivery service, and a client that talks like a browser
/// on the app's own origin.
struct App {
    base: String,
    fake: MockServer,
    http: reqwest::Client,
}

impl App {
    async fn start(db: &TestDb, tweak: impl FnOnce(&mut FutureAuthConfig)) -> Self {
        Self::start_with_fake(
            db,
            tweak,
            ResponseTemplate::new(202).set_body_json(json!({"id": "msg_1", "status": "queued"})),
        )
        .await
    }

    async fn start_with_fake(
        db: &TestDb,
        tweak: impl FnOnce(&mut FutureAuthConfig),
        reply: ResponseTemplate,
    ) -> Self {
        let fake = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/v1/otp/send"))
            .and(header("authorization", format!("Bearer {KEY}").as_str()))
            .respond_with(reply)
            .mount(&fake)
            .await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut config = FutureAuthConfig {
            api_url: fake.uri(),
            secret_key: KEY.to_string(),
            project_name: "Test App".to_string(),
            app_url: base.clone(),
            ..Default::default()
        };
        tweak(&mut config);
        let auth = match db {
            TestDb::Postgres { pool, .. } => FutureAuth::new(pool.clone(), config),
            TestDb::Sqlite { pool, .. } => FutureAuth::new(pool.clone(), config),
        };
        auth.ensure_tables().await.unwrap();
        let state = AppState {
            auth: Arc::new(auth),
        };
        // An app route of its own that acts on the session cookie, behind the CSRF layer.
        let own = Router::new()
            .route("/api/app/rename", post(rename))
            .layer(csrf_layer(state.auth.clone()));
        let app = Router::new()
            .merge(auth_router(state.auth.clone()))
            .route("/api/me", get(me))
            .route("/maybe", get(maybe))
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
        Self {
            base,
            fake,
            http: reqwest::Client::new(),
        }
    }

    /// POST a JSON body from the app's own origin, optionally with a cookie.
    async fn post(&self, route: &str, body: Value, cookie: Option<&str>) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}{route}", self.base))
            .header("origin", &self.base)
            .json(&body);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send().await.unwrap()
    }

    async fn get(&self, route: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(format!("{}{route}", self.base));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send().await.unwrap()
    }

    /// Bodies the fake service received.
    async fn deliveries(&self) -> Vec<Value> {
        self.fake
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect()
    }

    async fn last_code(&self) -> String {
        self.deliveries().await.last().expect("a delivery")["code"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Sends a code to `email`, verifies it with the binding cookie the send set, returns
    /// the `name=value` session cookie.
    async fn sign_in(&self, email: &str) -> String {
        let sent = self
            .post("/api/auth/send-otp", json!({ "email": email }), None)
            .await;
        assert_eq!(sent.status(), 200);
        let binding = cookie_pair(sent.headers());
        let code = self.last_code().await;
        let response = self
            .post(
                "/api/auth/verify-otp",
                json!({ "email": email, "code": code }),
                Some(&binding),
            )
            .await;
        assert_eq!(response.status(), 200);
        cookie_pair(response.headers())
    }
}

fn set_cookie(headers: &HeaderMap) -> String {
    headers
        .get(SET_COOKIE)
        .expect("Set-Cookie")
        .to_str()
        .unwrap()
        .to_string()
}

fn cookie_pair(headers: &HeaderMap) -> String {
    set_cookie(headers).split(';').next().unwrap().to_string()
}

async fn error_code(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.expect("a JSON error body");
    let code = body["error"]["code"]
        .as_str()
        .expect("error.code")
        .to_string();
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "error.message: {body}"
    );
    (status, code)
}

async fn full_flow_send_verify_cookie_session_sign_out(db: TestDb) {
    let app = App::start(&db, |_| {}).await;
    let sent = app
        .post(
            "/api/auth/send-otp",
            json!({ "email": " Ada@Example.com" }),
            None,
        )
        .await;
    assert_eq!(sent.status(), 200);
    // The code is bound to this browser by a cookie that lives as long as the code.
    let raw = set_cookie(sent.headers());
    for flag in [
        "__Host-futureauth_session_otp=",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=600",
        "Secure",
    ] {
        assert!(raw.contains(flag), "{flag} missing in {raw}");
    }
    let binding = cookie_pair(sent.headers());
    assert_eq!(sent.json::<Value>().await.unwrap(), json!({ "ok": true }));

    let deliveries = app.deliveries().await;
    assert_eq!(deliveries.len(), 1);
    let d = &deliveries[0];
    assert_eq!(d["channel"], "email");
    assert_eq!(d["destination"], "ada@example.com");
    assert_eq!(d["project_name"], "Test App");
    assert_eq!(d["code"].as_str().unwrap().len(), 6);
    assert!(d.get("link").is_none());

    let verified = app
        .post(
            "/api/auth/verify-otp",
            json!({ "email": "ada@example.com", "code": d["code"] }),
            Some(&binding),
        )
        .await;
    assert_eq!(verified.status(), 200);
    assert_eq!(verified.headers()["cache-control"], "no-store");
    let cleared = verified.headers().get_all(SET_COOKIE).iter().any(|v| {
        v.to_str()
            .unwrap()
            .starts_with("__Host-futureauth_session_otp=;")
    });
    assert!(cleared, "the used binding cookie is deleted");
    let raw = set_cookie(verified.headers());
    for flag in [
        "futureauth_session=",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=2592000",
        "Secure",
    ] {
        assert!(raw.contains(flag), "{flag} missing in {raw}");
    }
    let cookie = cookie_pair(verified.headers());
    let token = cookie.trim_start_matches("futureauth_session=").to_string();
    let body: Value = verified.json().await.unwrap();
    assert_eq!(body["user"]["email"], "ada@example.com");
    assert!(
        body["session"].get("token").is_none(),
        "the token is only in the cookie"
    );

    let me: Value = app
        .get("/api/me", Some(&cookie))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "ada@example.com");
    for route in ["/api/auth/session", "/api/auth/get-session"] {
        let s = app.get(route, Some(&cookie)).await;
        assert_eq!(s.status(), 200, "{route}");
        assert!(
            s.headers().get(SET_COOKIE).is_none(),
            "a fresh session is not re-issued"
        );
        assert_eq!(
            s.json::<Value>().await.unwrap()["user"]["email"],
            "ada@example.com"
        );
    }
    let sessions: Value = app
        .get("/api/auth/sessions", Some(&cookie))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(sessions["sessions"][0]["current"], true);
    let bearer = app
        .http
        .get(format!("{}/api/me", app.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        bearer.status(),
        200,
        "Authorization: Bearer works for API clients"
    );
    assert!(app
        .get("/maybe", Some(&cookie))
        .await
        .text()
        .await
        .unwrap()
        .starts_with("user "));

    let out = app
        .post("/api/auth/sign-out", json!({}), Some(&cookie))
        .await;
    assert_eq!(out.status(), 200);
    assert!(set_cookie(out.headers()).contains("Max-Age=0"));
    let after = app.get("/api/me", Some(&cookie)).await;
    assert_eq!(
        error_code(after).await,
        (StatusCode::UNAUTHORIZED, "unauthorized".to_string())
    );
    assert_eq!(
        app.get("/api/auth/session", Some(&cookie)).await.status(),
        401
    );
    assert_eq!(
        app.get("/maybe", Some(&cookie)).await.text().await.unwrap(),
        "anonymous"
    );
    assert_eq!(app.get("/api/me", None).await.status(), 401);
}

async fn magic_links_over_http(db: TestDb) {
    let app = App::start(&db, |_| {}).await;
    let callback = format!("{}/auth/verify", app.base);
    let sent = app
        .post(
            "/api/auth/send-magic-link",
            json!({ "email": "ada@example.com", "callback_url": callback }),
            None,
        )
        .await;
    assert_eq!(sent.status(), 200);
    let d = app.deliveries().await.pop().unwrap();
    assert_eq!(d["channel"], "magic_link");
    assert_eq!(d["callback_url"], callback);
    let token = d["code"].as_str().unwrap();
    assert_eq!(d["link"], format!("{callback}?token={token}"));

    let verified = app
        .post(
            "/api/auth/verify-magic-link",
            json!({ "token": token }),
            None,
        )
        .await;
    assert_eq!(verified.status(), 200);
    let cookie = cookie_pair(verified.headers());
    assert_eq!(app.get("/api/me", Some(&cookie)).await.status(), 200);
    let again = app
        .post(
            "/api/auth/verify-magic-link",
            json!({ "token": token }),
            None,
        )
        .await;
    assert_eq!(
        error_code(again).await,
        (StatusCode::BAD_REQUEST, "invalid_magic_link".to_string())
    );

    // A link to another origin would hand the token to that origin.
    let evil = app
        .post(
            "/api/auth/send-magic-link",
            json!({ "email": "ada@example.com", "callback_url": "https://evil.example/cb" }),
            None,
        )
        .await;
    assert_eq!(
        error_code(evil).await,
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "callback_not_allowed".to_string()
        )
    );
    assert_eq!(app.deliveries().await.len(), 1);
}

async fn sms_codes_over_http(db: TestDb) {
    let app = App::start(&db, |_| {}).await;
    let sent = app
        .post(
            "/api/auth/send-otp",
            json!({ "phone": "+1 (555) 123-4567" }),
            None,
        )
        .await;
    assert_eq!(sent.status(), 200);
    let binding = cookie_pair(sent.headers());
    let d = app.deliveries().await.pop().unwrap();
    assert_eq!(
        (d["channel"].as_str(), d["destination"].as_str()),
        (Some("sms"), Some("+15551234567"))
    );
    let verified = app
        .post(
            "/api/auth/verify-otp",
            json!({ "phone": "+15551234567", "code": d["code"] }),
            Some(&binding),
        )
        .await;
    assert_eq!(verified.status(), 200);
    assert_eq!(
        verified.json::<Value>().await.unwrap()["user"]["phone_number"],
        "+15551234567"
    );
}

async fn a_failed_delivery_is_an_error_and_leaves_no_code(db: TestDb) {
    let app = App::start_with_fake(
        &db,
        |_| {},
        ResponseTemplate::new(500).set_body_string("provider down"),
    )
    .await;
    let sent = app
        .post(
            "/api/auth/send-otp",
            json!({ "email": "ada@example.com" }),
            None,
        )
        .await;
    assert_eq!(
        error_code(sent).await,
        (StatusCode::BAD_GATEWAY, "delivery_failed".to_string())
    );
    let code = app.last_code().await;
    let verify = app
        .post(
            "/api/auth/verify-otp",
            json!({ "email": "ada@example.com", "code": code }),
            None,
        )
        .await;
    assert_eq!(error_code(verify).await.1, "invalid_code");
    assert_eq!(db.count("verification").await, 0);
}

async fn bad_input_gets_a_clear_4xx_and_writes_nothing(db: TestDb) {
    let app = App::start(&db, |_| {}).await;
    let url = |route: &str| format!("{}{route}", app.base);
    let raw = |route: &str, content_type: &str, body: Vec<u8>| {
        app.http
            .post(url(route))
            .header("origin", &app.base)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    // A body over the limit is left unread and its connection dropped: the answer says so,
    // so that a keep-alive client does not send its next request down the closing socket.
    let too_large = raw(
        "/api/auth/send-otp",
        "application/json",
        vec![b' '; 100_000],
    )
    .await
    .unwrap();
    assert_eq!(too_large.headers()["connection"], "close");
    let cases: Vec<(reqwest::Response, StatusCode, &str)> = vec![
        (
            raw("/api/auth/send-otp", "application/json", b"{".to_vec())
                .await
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            raw(
                "/api/auth/send-otp",
                "application/json",
                b"{\"email\": \"\xff\xfe\"}".to_vec(),
            )
            .await
            .unwrap(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            raw("/api/auth/send-otp", "text/plain", b"email=a@b.co".to_vec())
                .await
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            raw(
                "/api/auth/send-otp",
                "application/json",
                vec![b' '; 100_000],
            )
            .await
            .unwrap(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            app.post("/api/auth/send-otp", json!({}), None).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            app.post("/api/auth/send-otp", json!({ "email": 5 }), None)
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            app.post(
                "/api/auth/send-otp",
                json!({ "email": "a@b.co", "phone": "+15551234567" }),
                None,
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            app.post(
                "/api/auth/send-otp",
                json!({ "email": "not-an-email" }),
                None,
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_email",
        ),
        (
            app.post(
                "/api/auth/send-otp",
                json!({ "email": "a@b.co\r\nBcc: x@y.z" }),
                None,
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_email",
        ),
        (
            app.post("/api/auth/send-otp", json!({ "phone": "555-1234" }), None)
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_phone",
        ),
        (
            app.post("/api/auth/verify-otp", json!({ "email": "a@b.co" }), None)
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            // No email. (No callback_url is fine: the link opens the landing page.)
            app.post(
                "/api/auth/send-magic-link",
                json!({ "callback_url": "https://app.example/cb" }),
                None,
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            app.post("/api/auth/verify-magic-link", json!({ "token": "" }), None)
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_magic_link",
        ),
        (
            app.post(
                "/api/auth/verify-magic-link",
                json!({ "token": "x".repeat(5000) }),
                None,
            )
            .await,
            StatusCode::BAD_REQUEST,
            "invalid_magic_link",
        ),
        (
            app.post("/api/auth/revoke-session", json!({ "id": "x" }), None)
                .await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
    ];
    for (i, (response, status, code)) in cases.into_iter().enumerate() {
        assert_eq!(
            error_code(response).await,
            (status, code.to_string()),
            "case {i}"
        );
    }
    assert!(app.deliveries().await.is_empty());
    for table in [
        "verification",
        "session",
        "\"user\"",
        "futureauth_rate_limit",
    ] {
        assert_eq!(db.count(table).await, 0, "{table} written by bad input");
    }
}

async fn cross_site_requests_are_rejected(db: TestDb) {
    let app = App::start(&db, |c| {
        c.allowed_origins = vec!["https://spa.example".into()]
    })
    .await;
    let cookie = app.sign_in("ada@example.com").await;
    let from = |origin: &'static str, route: &str| {
        app.http
            .post(format!("{}{route}", app.base))
            .header("origin", origin)
            .header("cookie", &cookie)
            .json(&json!({ "email": "x@example.com" }))
            .send()
    };
    let evil = from("https://evil.example", "/api/auth/send-otp")
        .await
        .unwrap();
    assert_eq!(
        error_code(evil).await,
        (StatusCode::FORBIDDEN, "cross_site_request".to_string())
    );
    let sign_out = from("https://evil.example", "/api/auth/sign-out")
        .await
        .unwrap();
    assert_eq!(sign_out.status(), 403);
    assert_eq!(
        app.get("/api/me", Some(&cookie)).await.status(),
        200,
        "a forged sign-out did nothing"
    );
    let no_origin = app
        .http
        .post(format!("{}/api/auth/sign-out-all", app.base))
        .header("sec-fetch-site", "cross-site")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(no_origin.status(), 403);
    assert_eq!(
        from("https://spa.example", "/api/auth/send-otp")
            .await
            .unwrap()
            .status(),
        200,
        "allowed origin"
    );
    assert_eq!(
        app.deliveries().await.len(),
        2,
        "only the sign-in and the allowed send were delivered"
    );
    let out = app
        .post("/api/auth/sign-out-all", json!({}), Some(&cookie))
        .await;
    assert_eq!(out.json::<Value>().await.unwrap()["revoked"], 1);
    assert_eq!(app.get("/api/me", Some(&cookie)).await.status(), 401);
}

async fn rate_limits_answer_429_with_retry_after(db: TestDb) {
    let app = App::start(&db, |c| {
        c.rate_limits.send_per_identifier = RateLimit::new(1, std::time::Duration::from_secs(300))
    })
    .await;
    assert_eq!(
        app.post(
            "/api/auth/send-otp",
            json!({ "email": "ada@example.com" }),
            None
        )
        .await
        .status(),
        200
    );
    let limited = app
        .post(
            "/api/auth/send-otp",
            json!({ "email": "ada@example.com" }),
            None,
        )
        .await;
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=300).contains(&retry), "{retry}");
    assert_eq!(
        error_code(limited).await,
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited".to_string())
    );
}

async fn send_answers_the_same_for_known_and_unknown_people(db: TestDb) {
    // Not the subject here: the resend throttle would answer the known address 429.
    let app = App::start(&db, |c| {
        c.rate_limits.send_throttle = RateLimit::new(10, std::time::Duration::from_secs(30))
    })
    .await;
    app.sign_in("known@example.com").await;
    let known = app
        .post(
            "/api/auth/send-otp",
            json!({ "email": "known@example.com" }),
            None,
        )
        .await;
    let unknown = app
        .post(
            "/api/auth/send-otp",
            json!({ "email": "unknown@example.com" }),
            None,
        )
        .await;
    assert_eq!(known.status(), unknown.status());
    assert_eq!(known.bytes().await.unwrap(), unknown.bytes().await.unwrap());
}

async fn forwarded_for_is_only_believed_from_trusted_proxies(db: TestDb) {
    for (trusted, expect_limited) in [
        (vec![], true),
        (vec!["127.0.0.1/32".parse().unwrap()], false),
    ] {
        let app = App::start(&db, |c| {
            c.rate_limits.send_per_ip = RateLimit::new(2, std::time::Duration::from_secs(300));
            c.trusted_proxies = trusted;
        })
        .await;
        let mut statuses = vec![];
        for i in 0..3 {
            let r = app
                .http
                .post(format!("{}/api/auth/send-otp", app.base))
                .header("x-forwarded-for", format!("203.0.113.{i}"))
                .json(&json!({ "email": format!("p{i}-{expect_limited}@example.com") }))
                .send()
                .await
                .unwrap();
            statuses.push(r.status().as_u16());
        }
        let expected = if expect_limited {
            vec![200, 200, 429]
        } else {
            vec![200, 200, 200]
        };
        assert_eq!(statuses, expected, "trusted proxy: {}", !expect_limited);
    }
}

async fn an_aged_session_gets_a_fresh_cookie(db: TestDb) {
    let app = App::start(&db, |c| c.cookie_secure = false).await;
    let cookie = app.sign_in("ada@example.com").await;
    let sessions: Value = app
        .get("/api/auth/sessions", Some(&cookie))
        .await
        .json()
        .await
        .unwrap();
    let id = sessions["sessions"][0]["id"].as_str().unwrap().to_string();
    db.set_expiry(
        "session",
        "id",
        &id,
        chrono::Utc::now() + chrono::TimeDelta::days(3),
    )
    .await;
    let s = app.get("/api/auth/session", Some(&cookie)).await;
    let reissued = set_cookie(s.headers());
    assert!(
        reissued.starts_with(&cookie) && reissued.contains("Max-Age=2592000"),
        "{reissued}"
    );
    assert!(
        !reissued.contains("Secure"),
        "cookie_secure = false for http://localhost"
    );
}

/// POST from a client that sets every header itself (a script, not a browser).
async fn forged(
    app: &App,
    route: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> reqwest::Response {
    let mut request = app.http.post(format!("{}{route}", app.base)).json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

async fn request_headers_never_widen_the_callback_list(db: TestDb) {
    let app = App::start(&db, |_| {}).await;
    let steal =
        json!({ "email": "victim@example.com", "callback_url": "https://evil.example/steal" });
    // The attack: Host and Origin both name the attacker's site, so they "match".
    let poisoned = forged(
        &app,
        "/api/auth/send-magic-link",
        &[("host", "evil.example"), ("origin", "https://evil.example")],
        steal.clone(),
    )
    .await;
    assert!(poisoned.status().is_client_error(), "{}", poisoned.status());
    // Without Origin (passes the CSRF guard, as any non-browser client does).
    let no_origin = forged(
        &app,
        "/api/auth/send-magic-link",
        &[("host", "evil.example")],
        steal,
    )
    .await;
    assert_eq!(
        error_code(no_origin).await,
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "callback_not_allowed".to_string()
        )
    );
    assert!(app.deliveries().await.is_empty(), "no link was sent");
    assert_eq!(db.count("verification").await, 0);
}

async fn a_callback_with_its_own_token_is_refused(db: TestDb) {
    let app = App::start(&db, |_| {}).await;
    for callback in [
        format!("{}/auth/verify?token=attackers-own-token", app.base),
        format!("{}/auth/verify?x=1&token=attackers-own-token", app.base),
        format!("{}/auth/verify?TOKEN=attackers-own-token", app.base),
        format!("{}/auth/verify?Token=attackers-own-token", app.base),
        format!(
            "http://user:pass@{}/auth/verify",
            &app.base["http://".len()..]
        ),
        format!("http://user@{}/auth/verify", &app.base["http://".len()..]),
    ] {
        let sent = app
            .post(
                "/api/auth/send-magic-link",
                json!({ "email": "victim@example.com", "callback_url": callback }),
                None,
            )
            .await;
        assert_eq!(
            error_code(sent).await,
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "callback_not_allowed".to_string()
            ),
            "{callback}"
        );
    }
    assert!(app.deliveries().await.is_empty());
}

async fn the_services_callback_refusal_is_a_422(db: TestDb) {
    // No origins configured: the service's per-project list decides, and says no.
    let refusal = ResponseTemplate::new(422).set_body_json(json!({
        "error": { "code": "callback_not_allowed", "message": "origin not allowed for this project" }
    }));
    let app = App::start_with_fake(&db, |c| c.app_url = String::new(), refusal).await;
    let sent = forged(
        &app,
        "/api/auth/send-magic-link",
        &[],
        json!({ "email": "victim@example.com", "callback_url": "https://evil.example/steal" }),
    )
    .await;
    assert_eq!(
        error_code(sent).await,
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "callback_not_allowed".to_string()
        )
    );
    assert_eq!(app.deliveries().await.len(), 1, "the service was asked");
    assert_eq!(db.count("verification").await, 0, "no token left behind");
}

async fn the_csrf_guard_compares_scheme_and_port(db: TestDb) {
    let app = App::start(&db, |_| {}).await;
    let cookie = app.sign_in("ada@example.com").await;
    let host = app.base["http://".len()..].to_string();
    let (ip, port) = host.rsplit_once(':').unwrap();
    let other_port: u16 = port.parse::<u16>().unwrap().wrapping_add(1);
    for origin in [
        format!("https://{host}"),
        format!("http://{ip}:{other_port}"),
        "https://evil.example".to_string(),
    ] {
        let response = app
            .http
            .post(format!("{}/api/auth/sign-out-all", app.base))
            .header("origin", &origin)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(response).await,
            (StatusCode::FORBIDDEN, "cross_site_request".to_string()),
            "{origin}"
        );
    }
    assert_eq!(app.get("/api/me", Some(&cookie)).await.status(), 200);
}

async fn without_app_url_the_guard_uses_host_and_the_configured_scheme(db: TestDb) {
    let plain = App::start(&db, |c| {
        c.app_url = String::new();
        c.cookie_secure = false;
    })
    .await;
    let cookie = plain.sign_in("ada@example.com").await;
    let from = |origin: String| {
        plain
            .http
            .post(format!("{}/api/auth/sign-out", plain.base))
            .header("origin", origin)
            .header("cookie", &cookie)
            .send()
    };
    let https = format!("https://{}", &plain.base["http://".len()..]);
    assert_eq!(from(https).await.unwrap().status(), 403, "scheme mismatch");
    assert_eq!(from(plain.base.clone()).await.unwrap().status(), 200);
}

/// The spec's `FutureAuthConfig { ..Default::default() }` (no app_url, secure cookies): a
/// page on http://127.0.0.1:PORT or http://localhost:PORT may POST, because its Host is a
/// loopback name; nothing else that was refused before passes.
async fn without_app_url_a_loopback_host_accepts_its_own_http_origin(db: TestDb) {
    let app = App::start(&db, |c| c.app_url = String::new()).await;
    let port = app.base.rsplit(':').next().unwrap().to_string();
    let send = |origin: String, host: String, email: &'static str| {
        app.http
            .post(format!("{}/api/auth/send-otp", app.base))
            .header("origin", origin)
            .header("host", host)
            .json(&json!({ "email": email }))
            .send()
    };
    let loopback = [
        ("127.0.0.1", "ada@example.com"),
        ("localhost", "bob@example.com"),
        ("[::1]", "cy@example.com"),
    ];
    for (name, email) in loopback {
        let origin = format!("http://{name}:{port}");
        let sent = send(origin.clone(), format!("{name}:{port}"), email)
            .await
            .unwrap();
        assert_eq!(sent.status(), 200, "{origin}");
    }
    let delivered = app.deliveries().await.len();
    assert_eq!(delivered, 3);
    let refused = [
        // A cross-site page, whatever the Host.
        (
            "https://evil.example".to_string(),
            format!("127.0.0.1:{port}"),
        ),
        (
            "http://evil.example".to_string(),
            format!("localhost:{port}"),
        ),
        // Another loopback origin than the Host's.
        (
            format!("http://localhost:{port}"),
            format!("127.0.0.1:{port}"),
        ),
        (
            format!("http://127.0.0.1:{}", port.parse::<u16>().unwrap() ^ 1),
            format!("127.0.0.1:{port}"),
        ),
        // A non-loopback Host over http: the configured scheme (https) still counts.
        (
            format!("http://app.example:{port}"),
            format!("app.example:{port}"),
        ),
        (
            format!("http://10.0.0.5:{port}"),
            format!("10.0.0.5:{port}"),
        ),
    ];
    for (origin, host) in refused {
        let sent = send(origin.clone(), host.clone(), "eve@example.com")
            .await
            .unwrap();
        assert_eq!(
            error_code(sent).await,
            (StatusCode::FORBIDDEN, "cross_site_request".to_string()),
            "{origin} with Host {host}"
        );
    }
    assert_eq!(
        app.deliveries().await.len(),
        delivered,
        "refused sends sent nothing"
    );
    assert_eq!(
        db.count("verification").await,
        3,
        "refused sends wrote nothing"
    );
}

async fn the_csrf_layer_guards_the_apps_own_routes(db: TestDb) {
    let app = App::start(&db, |_| {}).await;
    let cookie = app.sign_in("ada@example.com").await;
    let rename = |origin: &str| {
        app.http
            .post(format!("{}/api/app/rename", app.base))
            .header("origin", origin)
            .header("cookie", &cookie)
            .send()
    };
    let evil = rename("https://evil.example").await.unwrap();
    assert_eq!(
        error_code(evil).await,
        (StatusCode::FORBIDDEN, "cross_site_request".to_string())
    );
    assert!(
        db.strings("SELECT name FROM \"user\"").await == [""],
        "the forged request changed nothing"
    );
    let own = rename(&app.base).await.unwrap();
    assert_eq!(own.status(), 200);
    assert_eq!(db.strings("SELECT name FROM \"user\"").await, ["renamed"]);
}

async fn nul_bytes_get_a_4xx(db: TestDb) {
    let app = App::start(&db, |_| {}).await;
    let cookie = app.sign_in("ada@example.com").await;
    for body in [json!({ "id": "a\u{0}b" }), json!({ "id": "\u{0}" })] {
        let response = app
            .post("/api/auth/revoke-session", body, Some(&cookie))
            .await;
        let (status, code) = error_code(response).await;
        assert!(status.is_client_error(), "{status} {code}");
    }
    for body in [
        json!({ "email": "a\u{0}@example.com" }),
        json!({ "phone": "+15551234567\u{0}" }),
    ] {
        let (status, _) = error_code(app.post("/api/auth/send-otp", body, None).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    for body in [
        json!({ "email": "ada@example.com", "code": "a\u{0}" }),
        json!({ "token": "\u{0}" }),
    ] {
        let route = if body.get("token").is_some() {
            "/api/auth/verify-magic-link"
        } else {
            "/api/auth/verify-otp"
        };
        let (status, _) = error_code(app.post(route, body, None).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    assert_eq!(app.get("/api/me", Some(&cookie)).await.status(), 200);
}

/// POST from the app's origin as `client` (its cookie jar), from client address `from`
/// (the test server trusts loopback's `X-Forwarded-For`).
async fn post_as(
    app: &App,
    client: &reqwest::Client,
    from: &str,
    route: &str,
    body: Value,
) -> reqwest::Response {
    client
        .post(format!("{}{route}", app.base))
        .header("origin", &app.base)
        .header("x-forwarded-for", from)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn cookie_jar() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
}

/// Lock-out: while an attacker who knows the address hammers it from a dozen networks,
/// sending it codes (each voiding the last, before) and guessing wrong codes with and
/// without cookie jars of their own, the victim asks for a code in their browser and
/// signs in with it.
async fn the_victim_signs_in_while_an_attacker_hammers_their_address(db: TestDb) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    const VICTIM: &str = "ada@example.com";
    let app = Arc::new(
        App::start(&db, |c| {
            c.cookie_secure = false; // the cookie jars speak plain http to loopback
            c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        })
        .await,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    // The attacker's sends pause while the victim's is in flight, so that the victim's
    // code is the one delivery made meanwhile; guesses never pause.
    let gate = Arc::new(tokio::sync::RwLock::new(()));
    let attacker = tokio::spawn({
        let (app, stop, sent, gate) = (app.clone(), stop.clone(), sent.clone(), gate.clone());
        async move {
            let networks: Vec<String> = (1..=6)
                .map(|i| format!("203.0.113.{i}"))
                .chain((1..=6).map(|i| format!("2001:db8:{i}:{i}::1")))
                .chain((1..=6).map(|i| format!("2001:db8:1:{}::1", 100 + i))) // one /48
                .collect();
            let mut statuses = Vec::new();
            let mut round = 0;
            // At least two passes over its networks, the second into its own limits.
            while !stop.load(SeqCst) || round < 2 * networks.len() {
                let from = &networks[round % networks.len()];
                let jar = cookie_jar();
                let body = json!({ "email": VICTIM });
                let status = {
                    let _turn = gate.read().await;
                    post_as(&app, &jar, from, "/api/auth/send-otp", body)
                        .await
                        .status()
                };
                if status == 200 {
                    sent.fetch_add(1, SeqCst);
                }
                statuses.push(status.as_u16());
                let guess = json!({ "email": VICTIM, "code": "zzzzzz" });
                for client in [&jar, &jar, &jar, &app.http] {
                    let r = post_as(&app, client, from, "/api/auth/verify-otp", guess.clone());
                    statuses.push(r.await.status().as_u16());
                }
                round += 1;
            }
            statuses
        }
    });
    let wait_for_sends = |n: usize| {
        let sent = sent.clone();
        async move {
            while sent.load(SeqCst) < n {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
    };

    wait_for_sends(3).await;
    let victim = cookie_jar();
    let code = {
        let _alone = gate.write().await;
        let r = post_as(
            &app,
            &victim,
            "198.51.100.7",
            "/api/auth/send-otp",
            json!({ "email": VICTIM }),
        )
        .await;
        assert_eq!(r.status(), 200, "the victim's send goes through the attack");
        app.last_code().await
    };
    // The attacker's sends after the victim's used to void the victim's code.
    let after = sent.load(SeqCst) + 2;
    wait_for_sends(after).await;
    let verified = post_as(
        &app,
        &victim,
        "198.51.100.7",
        "/api/auth/verify-otp",
        json!({ "email": VICTIM, "code": code }),
    )
    .await;
    assert_eq!(
        verified.status(),
        200,
        "the victim signs in during the attack"
    );
    let session = victim
        .get(format!("{}/api/auth/session", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        session.json::<Value>().await.unwrap()["user"]["email"],
        VICTIM
    );

    stop.store(true, SeqCst);
    let statuses = attacker.await.unwrap();
    assert!(
        sent.load(SeqCst) >= 5,
        "the attacker's sends were delivered"
    );
    assert!(
        statuses.contains(&429),
        "the attacker hit the limits: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [200, 400, 429].contains(s)),
        "{statuses:?}"
    );
}

/// The browser's first language choice travels with each code and link to the service (the
/// wire's optional `locale`); without one, or with junk, the body is what 0.4/0.5 send.
async fn the_browsers_language_travels_with_the_message(db: TestDb) {
    let app = App::start(&db, |_| {}).await;
    let send = |route: &'static str, body: Value, language: Option<&'static str>| {
        let mut request = app
            .http
            .post(format!("{}{route}", app.base))
            .header("origin", &app.base)
            .json(&body);
        if let Some(language) = language {
            request = request.header("accept-language", language);
        }
        request.send()
    };
    // One address each: a second send to one address within seconds is throttled.
    let email = |n: u8| json!({ "email": format!("ada{n}@example.com") });
    let link =
        json!({ "email": "bob@example.com", "callback_url": format!("{}/auth/verify", app.base) });
    let cases = [
        (
            "/api/auth/send-otp",
            email(1),
            Some("fr;q=0.4, de-AT, de;q=0.9"),
            Some("de-AT"),
        ),
        (
            "/api/auth/send-magic-link",
            link,
            Some("de;q=0.9, en;q=0.5"),
            Some("de"),
        ),
        ("/api/auth/send-otp", email(2), None, None),
        (
            "/api/auth/send-otp",
            email(3),
            Some("<b>, *;q=1, de;q=7"),
            None,
        ),
    ];
    for (i, (route, body, language, expected)) in cases.into_iter().enumerate() {
        let sent = send(route, body, language).await.unwrap();
        assert_eq!(sent.status(), 200, "{route} {language:?}");
        let deliveries = app.deliveries().await;
        assert_eq!(deliveries.len(), i + 1);
        let d = deliveries.last().unwrap();
        assert_eq!(
            d.get("locale").and_then(Value::as_str),
            expected,
            "{language:?}: {d}"
        );
    }
}

/// A mail scanner opens every link first (GET and HEAD, several times): the link still
/// signs the person in afterwards, because only the POST from the landing page consumes it.
/// The page keeps the token out of referrers, caches and frames; a second POST fails.
async fn the_magic_link_landing_page_survives_scanners(db: TestDb) {
    let app = App::start(&db, |c| c.after_sign_in_path = "/welcome".into()).await;
    // No callback_url: the link opens this router's own landing page.
    let sent = app
        .post(
            "/api/auth/send-magic-link",
            json!({ "email": "ada@example.com" }),
            None,
        )
        .await;
    assert_eq!(sent.status(), 200);
    let d = app.deliveries().await.pop().unwrap();
    let link = d["link"].as_str().unwrap().to_owned();
    assert!(
        link.starts_with(&format!("{}/api/auth/magic-link?token=", app.base)),
        "{link}"
    );
    let token = d["code"].as_str().unwrap().to_owned();

    // The scanner, with no cookies and following nothing.
    let scanner = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for _ in 0..3 {
        let head = scanner.head(&link).send().await.unwrap();
        assert_eq!(head.status(), 200);
        let get = scanner.get(&link).send().await.unwrap();
        assert_eq!(get.status(), 200);
        assert!(
            get.headers().get("set-cookie").is_none(),
            "a GET signs nobody in"
        );
        let h = get.headers();
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["cache-control"], "no-store");
        assert_eq!(h["x-frame-options"], "DENY");
        let csp = h["content-security-policy"].to_str().unwrap().to_owned();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        let html = get.text().await.unwrap();
        assert!(
            html.contains("<form method=\"post\" action=\"/api/auth/magic-link\">"),
            "{html}"
        );
        assert!(
            html.contains("history.replaceState"),
            "the token leaves the address bar"
        );
    }
    // A page for a malformed token says so, and offers no button.
    let junk = scanner
        .get(format!(
            "{}/api/auth/magic-link?token=%3Cscript%3E",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(junk.status(), 400);
    assert!(!junk.text().await.unwrap().contains("<script>"));

    // The person presses the button: signed in, sent on to after_sign_in_path.
    let confirm = |token: String| {
        scanner
            .post(format!("{}/api/auth/magic-link", app.base))
            .header("origin", &app.base)
            .form(&[("token", token)])
            .send()
    };
    let pressed = confirm(token.clone()).await.unwrap();
    assert_eq!(pressed.status(), 303);
    assert_eq!(pressed.headers()["location"], "/welcome");
    let cookie = cookie_pair(pressed.headers());
    assert_eq!(app.get("/api/me", Some(&cookie)).await.status(), 200);
    // Once only.
    let again = confirm(token.clone()).await.unwrap();
    assert_eq!(again.status(), 400);
    assert!(again.headers().get("set-cookie").is_none());

    // A page on another site cannot post a link for the victim's browser (login CSRF).
    let fresh = app
        .post(
            "/api/auth/send-magic-link",
            json!({ "email": "eve@example.com" }),
            None,
        )
        .await;
    assert_eq!(fresh.status(), 200);
    let eve_token = app.deliveries().await.pop().unwrap()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let forged = scanner
        .post(format!("{}/api/auth/magic-link", app.base))
        .header("origin", "https://evil.example")
        .form(&[("token", eve_token.clone())])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(
        confirm(eve_token).await.unwrap().status(),
        303,
        "the refused post used nothing"
    );
}

/// Every link email carries a code too: either one finishes the same sign-in, and using one
/// uses up the other.
async fn a_links_code_finishes_the_same_sign_in(db: TestDb) {
    let app = App::start(&db, |_| {}).await;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let land = |token: &str| {
        browser
            .post(format!("{}/api/auth/magic-link", app.base))
            .header("origin", &app.base)
            .form(&[("token", token)])
            .send()
    };
    let send = |email: &'static str| {
        app.post("/api/auth/send-magic-link", json!({ "email": email }), None)
    };

    // The code (on the device that asked, or an app that cannot open links): then the link
    // is dead.
    assert_eq!(send("ada@example.com").await.status(), 200);
    let d = app.deliveries().await.pop().unwrap();
    let code = d["link_code"]
        .as_str()
        .expect("a code beside the link")
        .to_owned();
    let token = d["code"].as_str().unwrap().to_owned();
    let signed_in = app
        .post(
            "/api/auth/verify-otp",
            json!({ "email": "ada@example.com", "code": code }),
            None,
        )
        .await;
    assert_eq!(signed_in.status(), 200);
    let late = land(&token).await.unwrap();
    assert_eq!(late.status(), 400, "the link went with its code");
    assert!(late.headers().get("set-cookie").is_none());

    // The link: then the code is dead.
    assert_eq!(send("bob@example.com").await.status(), 200);
    let d = app.deliveries().await.pop().unwrap();
    let code = d["link_code"].as_str().unwrap().to_owned();
    let token = d["code"].as_str().unwrap().to_owned();
    assert_eq!(land(&token).await.unwrap().status(), 303);
    let late = app
        .post(
            "/api/auth/verify-otp",
            json!({ "email": "bob@example.com", "code": code }),
            None,
        )
        .await;
    assert_eq!(
        error_code(late).await,
        (StatusCode::BAD_REQUEST, "invalid_code".to_string()),
        "the code went with its link"
    );
}

/// A binding is free to get (any client can ask for a code to the victim's address), so
/// guesses made under one must never reach the code of someone's link email, which the
/// per-address failure ceiling protects: even its right value, sent with a stranger's
/// binding cookie, is refused and costs the person nothing.
async fn a_strangers_binding_cannot_reach_a_links_code(db: TestDb) {
    // Not the subject here: the resend throttle would refuse the stranger's send.
    let app = App::start(&db, |c| {
        c.rate_limits.send_throttle = RateLimit::new(10, std::time::Duration::from_secs(30))
    })
    .await;
    assert_eq!(
        app.post(
            "/api/auth/send-magic-link",
            json!({ "email": "ada@example.com" }),
            None
        )
        .await
        .status(),
        200
    );
    let code = app.deliveries().await.pop().unwrap()["link_code"]
        .as_str()
        .unwrap()
        .to_owned();
    // The stranger gets a binding by asking for a code to ada's address.
    let asked = app
        .post(
            "/api/auth/send-otp",
            json!({ "email": "ada@example.com" }),
            None,
        )
        .await;
    assert_eq!(asked.status(), 200);
    let binding = cookie_pair(asked.headers());
    for guess in ["000000", "111111", code.as_str()] {
        let tried = app
            .post(
                "/api/auth/verify-otp",
                json!({ "email": "ada@example.com", "code": guess }),
                Some(&binding),
            )
            .await;
        assert_eq!(
            error_code(tried).await,
            (StatusCode::BAD_REQUEST, "invalid_code".to_string()),
            "{guess}"
        );
    }
    // Ada, from her own device, without that cookie: her code works.
    let hers = app
        .post(
            "/api/auth/verify-otp",
            json!({ "email": "ada@example.com", "code": code }),
            None,
        )
        .await;
    assert_eq!(hers.status(), 200);
}

/// Checks the landing page's security headers and returns its body.
async fn landing_page(response: reqwest::Response) -> String {
    let h = response.headers().clone();
    let get = |name: &str| {
        h.get(name)
            .unwrap_or_else(|| panic!("{name} header"))
            .to_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(get("referrer-policy"), "no-referrer");
    assert_eq!(get("cache-control"), "no-store");
    assert_eq!(get("x-frame-options"), "DENY");
    assert!(get("content-type").starts_with("text/html"));
    let csp = get("content-security-policy");
    for part in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(part), "{part} in {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let nonce = csp
        .split("script-src 'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a script nonce")
        .to_string();
    let body = response.text().await.unwrap();
    // The one inline script carries the nonce and strips the token from the address bar.
    assert!(
        body.contains(&format!(
            "<script nonce=\"{nonce}\">history.replaceState(null, \"\", location.pathname);"
        )),
        "{body}"
    );
    assert_eq!(body.matches("<script").count(), 1, "{body}");
    body
}

async fn the_landing_page_survives_mail_scanners(db: TestDb) {
    let app = App::start(&db, |_| {}).await;
    let sent = app
        .post(
            "/api/auth/send-magic-link",
            json!({ "email": "ada@example.com" }),
            None,
        )
        .await;
    assert_eq!(sent.status(), 200);
    let d = app.deliveries().await.pop().unwrap();
    let landing = format!("{}/api/auth/magic-link", app.base);
    assert_eq!(d["callback_url"], landing);
    let token = d["code"].as_str().unwrap().to_string();
    let link = d["link"].as_str().unwrap().to_string();
    assert_eq!(link, format!("{landing}?token={token}"));

    // A scanner: plain GETs and HEADs, no cookies, no Origin, several times.
    let scanner = no_redirects();
    for _ in 0..3 {
        let page = scanner.get(&link).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.headers().get(SET_COOKIE).is_none());
        let body = landing_page(page).await;
        assert!(
            body.contains(&format!("name=\"token\" value=\"{token}\"")),
            "{body}"
        );
        assert!(body.contains("action=\"/api/auth/magic-link\""), "{body}");
        let head = scanner.head(&link).send().await.unwrap();
        assert_eq!(head.status(), 200);
        assert_eq!(head.headers()["referrer-policy"], "no-referrer");
    }

    // The person presses the button: the form POST signs in and goes on to the app.
    let post = |token: String| {
        no_redirects()
            .post(&landing)
            .header("origin", &app.base)
            .form(&[("token", token)])
            .send()
    };
    let signed_in = post(token.clone()).await.unwrap();
    assert_eq!(signed_in.status(), 303);
    assert_eq!(signed_in.headers()["location"], "/");
    assert_eq!(signed_in.headers()["cache-control"], "no-store");
    let cookie = cookie_pair(signed_in.headers());
    assert!(cookie.starts_with("futureauth_session="), "{cookie}");
    let me: Value = app
        .get("/api/me", Some(&cookie))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "ada@example.com");

    // Used once: a second POST gets an error page, no cookie.
    let again = post(token.clone()).await.unwrap();
    assert_eq!(again.status(), 400);
    assert!(again.headers().get(SET_COOKIE).is_none());
    let body = landing_page(again).await;
    assert!(body.contains("no longer works"), "{body}");

    // A cross-site form cannot post a token (CSRF guard).
    let forged = no_redirects()
        .post(&landing)
        .header("origin", "https://evil.example")
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);

    // A link without a token, or with markup in it, gets a harmless page.
    let bare = scanner.get(&landing).send().await.unwrap();
    assert_eq!(bare.status(), 400);
    landing_page(bare).await;
    let evil = scanner
        .get(&landing)
        .query(&[("token", "\"><script>alert(1)</script>")])
        .send()
        .await
        .unwrap();
    assert_eq!(evil.status(), 400, "not a token of ours: no button");
    let body = landing_page(evil).await;
    assert!(!body.contains("<script>alert"), "{body}");
}

async fn the_landing_path_and_destination_are_configurable(db: TestDb) {
    let app = App::start(&db, |c| {
        c.magic_link_path = "/api/auth/open".to_string();
        c.after_sign_in_path = "/home".to_string();
    })
    .await;
    app.post(
        "/api/auth/send-magic-link",
        json!({ "email": "ada@example.com" }),
        None,
    )
    .await;
    let d = app.deliveries().await.pop().unwrap();
    let link = d["link"].as_str().unwrap().to_string();
    assert!(link.starts_with(&format!("{}/api/auth/open?token=", app.base)));
    let page = reqwest::get(&link).await.unwrap();
    assert_eq!(page.status(), 200);
    let body = landing_page(page).await;
    assert!(body.contains("action=\"/api/auth/open\""), "{body}");
    let done = no_redirects()
        .post(format!("{}/api/auth/open", app.base))
        .header("origin", &app.base)
        .form(&[("token", d["code"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    assert_eq!(done.headers()["location"], "/home");
    // The default path is not served any more.
    assert_eq!(app.get("/api/auth/magic-link", None).await.status(), 404);
}

async fn without_app_url_a_link_needs_a_callback(db: TestDb) {
    let app = App::start(&db, |c| {
        c.app_url = String::new();
        c.cookie_secure = false;
    })
    .await;
    let sent = app
        .post(
            "/api/auth/send-magic-link",
            json!({ "email": "ada@example.com" }),
            None,
        )
        .await;
    assert_eq!(
        error_code(sent).await,
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request".to_string()
        )
    );
    assert!(app.deliveries().await.is_empty());
}

async fn same_browser_links_refuse_other_browsers(db: TestDb) {
    let app = App::start(&db, |c| c.magic_link_same_browser = true).await;
    let landing = format!("{}/api/auth/magic-link", app.base);
    // Asks for a link; returns the browser's binding cookie and the token.
    let ask = |email: &'static str, cookie: Option<String>| {
        let app = &app;
        async move {
            let sent = app
                .post(
                    "/api/auth/send-magic-link",
                    json!({ "email": email }),
                    cookie.as_deref(),
                )
                .await;
            assert_eq!(sent.status(), 200);
            let set = set_cookie(sent.headers());
            for attribute in [
                "Path=/",
                "HttpOnly",
                "SameSite=Lax",
                "Max-Age=900",
                "Secure",
            ] {
                assert!(
                    set.split("; ").any(|a| a == attribute),
                    "{attribute} in {set}"
                );
            }
            let d = app.deliveries().await.pop().unwrap();
            (
                cookie_pair(sent.headers()),
                d["code"].as_str().unwrap().to_string(),
            )
        }
    };
    let open = |token: String, cookie: Option<String>| {
        let mut request = no_redirects()
            .post(&landing)
            .header("origin", &app.base)
            .form(&[("token", token)]);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send()
    };
    let (asker, token) = ask("ada@example.com", None).await;
    assert!(
        asker.starts_with("__Host-futureauth_session_link="),
        "{asker}"
    );
    // Another browser asking gets its own binding.
    let (other, _) = ask("eve@example.com", None).await;
    assert_ne!(asker, other);

    // Opened without the cookie, or with another request's: refused, link left alone.
    let refused = open(token.clone(), None).await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.headers().get(SET_COOKIE).is_none());
    assert!(landing_page(refused)
        .await
        .contains("browser you asked from"));
    let refused = open(token.clone(), Some(other.clone())).await.unwrap();
    assert_eq!(refused.status(), 403);
    let json_refused = app
        .post(
            "/api/auth/verify-magic-link",
            json!({ "token": token }),
            Some(&other),
        )
        .await;
    assert_eq!(
        error_code(json_refused).await,
        (
            StatusCode::FORBIDDEN,
            "magic_link_other_browser".to_string()
        )
    );

    // The browser that asked signs in.
    let done = open(token.clone(), Some(asker.clone())).await.unwrap();
    assert_eq!(done.status(), 303);
    let session = cookie_pair(done.headers());
    assert_eq!(app.get("/api/me", Some(&session)).await.status(), 200);

    // The JSON route too, and a second link of the same browser keeps its binding.
    let (again, token2) = ask("ada2@example.com", Some(asker.clone())).await;
    assert_eq!(again, asker);
    let no_cookie = app
        .post(
            "/api/auth/verify-magic-link",
            json!({ "token": token2 }),
            None,
        )
        .await;
    assert_eq!(no_cookie.status(), 403);
    let ok = app
        .post(
            "/api/auth/verify-magic-link",
            json!({ "token": token2 }),
            Some(&asker),
        )
        .await;
    assert_eq!(ok.status(), 200);
}

async fn by_default_a_link_works_in_any_browser(db: TestDb) {
    let app = App::start(&db, |_| {}).await;
    let sent = app
        .post(
            "/api/auth/send-magic-link",
            json!({ "email": "ada@example.com" }),
            None,
        )
        .await;
    assert!(set_cookie(sent.headers()).starts_with("__Host-futureauth_session_link="));
    let token = app.last_code().await;
    let done = no_redirects()
        .post(format!("{}/api/auth/magic-link", app.base))
        .header("origin", &app.base)
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
}

/// A link opened on another device signs in the device that asked, and only once the person
/// types the number that device shows: a wrong number signs in neither and voids the link
/// (and its code) for good; the approving browser is never signed in, nor can it take the
/// approved link for itself.
async fn a_link_approved_elsewhere_signs_in_the_asking_browser(db: TestDb) {
    const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
    let app = App::start(&db, |_| {}).await;
    let landing = format!("{}/api/auth/magic-link", app.base);
    // The asking browser: a link for `email`; its binding cookie, number, token and code.
    let ask = |email: &'static str, cookie: Option<String>| {
        let app = &app;
        async move {
            let mut request = app
                .http
                .post(format!("{}/api/auth/send-magic-link", app.base))
                .header("origin", &app.base)
                .header("user-agent", FIREFOX)
                .json(&json!({ "email": email }));
            if let Some(cookie) = &cookie {
                request = request.header("cookie", cookie);
            }
            let sent = request.send().await.unwrap();
            assert_eq!(sent.status(), 200);
            let binding = cookie.unwrap_or_else(|| cookie_pair(sent.headers()));
            let body: Value = sent.json().await.unwrap();
            let number = body["match_number"].as_str().unwrap().to_string();
            assert!(
                number.len() == 2 && number.parse::<u8>().unwrap() >= 10,
                "{number}"
            );
            let d = app.deliveries().await.pop().unwrap();
            let token = d["code"].as_str().unwrap().to_string();
            let code = d["link_code"].as_str().unwrap().to_string();
            (binding, number, token, code)
        }
    };
    let status = |cookie: Option<String>| {
        let app = &app;
        async move {
            let response = app
                .post("/api/auth/magic-link-status", json!({}), cookie.as_deref())
                .await;
            assert_eq!(response.status(), 200);
            let session = response
                .headers()
                .get(SET_COOKIE)
                .map(|_| cookie_pair(response.headers()));
            let body: Value = response.json().await.unwrap();
            (body, session)
        }
    };
    // The other browser's form posts (no cookies of the asker's).
    let post = |fields: Vec<(&'static str, String)>| {
        no_redirects()
            .post(&landing)
            .header("origin", &app.base)
            .form(&fields)
            .send()
    };
    let approve = |token: String, number: String| {
        post(vec![
            ("token", token),
            ("action", "approve".into()),
            ("number", number),
        ])
    };
    let wrong = |number: &str| {
        let n: u8 = number.parse().unwrap();
        (if n == 99 { 10 } else { n + 1 }).to_string()
    };

    let (asker, number, token, code) = ask("ada@example.com", None).await;
    let (waiting, none) = status(Some(asker.clone())).await;
    assert_eq!(
        waiting,
        json!({ "status": "waiting", "match_number": number })
    );
    assert!(none.is_none());

    // Opened on another device: who asked, a number field, and "sign in here instead".
    let page = no_redirects()
        .get(format!("{landing}?token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = landing_page(page).await;
    for shown in [
        "Firefox on Linux",
        "127.0.0.1",
        "name=\"number\"",
        "Sign in here instead",
    ] {
        assert!(html.contains(shown), "{shown} in {html}");
    }
    assert!(
        !html.contains(&format!(">{number}<")),
        "the page never shows the number"
    );

    // A wrong number: nobody signed in, the link and its code are void, even for the right
    // number afterwards.
    let refused = approve(token.clone(), wrong(&number)).await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.headers().get(SET_COOKIE).is_none());
    assert!(landing_page(refused).await.contains("did not match"));
    assert_eq!(
        status(Some(asker.clone())).await.0,
        json!({ "status": "none" })
    );
    assert_eq!(
        approve(token.clone(), number.clone())
            .await
            .unwrap()
            .status(),
        400
    );
    let signed = post(vec![("token", token.clone())]).await.unwrap();
    assert_eq!(signed.status(), 400);
    let by_code = app
        .post(
            "/api/auth/verify-otp",
            json!({ "email": "ada@example.com", "code": code }),
            None,
        )
        .await;
    assert_eq!(error_code(by_code).await.1, "invalid_code");

    // A new link (another address: the first one's resend throttle holds), approved with
    // the right number.
    let (same, number, token, code) = ask("ann@example.com", Some(asker.clone())).await;
    assert_eq!(same, asker);
    let approved = approve(token.clone(), number.clone()).await.unwrap();
    assert_eq!(approved.status(), 200);
    assert!(
        approved.headers().get(SET_COOKIE).is_none(),
        "the approver is not signed in"
    );
    assert!(landing_page(approved)
        .await
        .contains("Go back to the device that asked"));
    // The approving browser cannot now take the link for itself, nor approve it again.
    assert_eq!(
        post(vec![("token", token.clone())]).await.unwrap().status(),
        400
    );
    assert_eq!(
        approve(token.clone(), number.clone())
            .await
            .unwrap()
            .status(),
        400
    );
    // Nobody else's poll gets it: no cookie, or another browser's binding.
    assert_eq!(status(None).await.0, json!({ "status": "none" }));
    let (stranger, ..) = ask("eve@example.com", None).await;
    assert_eq!(status(Some(stranger)).await.0["status"], "waiting");

    // The asking browser's poll signs it in, once.
    let (done, session) = status(Some(asker.clone())).await;
    assert_eq!(done["status"], "signed_in");
    assert_eq!(done["user"]["email"], "ann@example.com");
    let session = session.expect("the session cookie");
    let me = app.get("/api/me", Some(&session)).await;
    assert_eq!(me.status(), 200);
    assert_eq!(
        status(Some(asker.clone())).await.0,
        json!({ "status": "none" })
    );
    // Its code went with it.
    let by_code = app
        .post(
            "/api/auth/verify-otp",
            json!({ "email": "ann@example.com", "code": code }),
            None,
        )
        .await;
    assert_eq!(error_code(by_code).await.1, "invalid_code");
    // A number that is no number is a clear 422, and voids nothing.
    let (_, number, token, _) = ask("bob@example.com", None).await;
    for junk in [
        "4\u{0}".to_string(),
        "4".repeat(4_000),
        "-1".into(),
        "٤٢".into(),
    ] {
        let refused = approve(token.clone(), junk).await.unwrap();
        assert_eq!(refused.status(), 422);
        assert!(refused.headers().get(SET_COOKIE).is_none());
    }
    assert_eq!(approve(token, number).await.unwrap().status(), 200);
}

/// Where same-browser links are required, another browser may still approve the asking one
/// (the session goes to the browser that asked), but is offered no sign-in of its own.
async fn same_browser_links_may_still_be_approved_elsewhere(db: TestDb) {
    let app = App::start(&db, |c| c.magic_link_same_browser = true).await;
    let sent = app
        .post(
            "/api/auth/send-magic-link",
            json!({ "email": "ada@example.com" }),
            None,
        )
        .await;
    let asker = cookie_pair(sent.headers());
    let number = sent.json::<Value>().await.unwrap()["match_number"]
        .as_str()
        .unwrap()
        .to_string();
    let token = app.last_code().await;
    let page = no_redirects()
        .get(format!("{}/api/auth/magic-link?token={token}", app.base))
        .send()
        .await
        .unwrap();
    let html = landing_page(page).await;
    assert!(html.contains("name=\"number\""), "{html}");
    assert!(!html.contains("Sign in here instead"), "{html}");
    // The asking browser itself gets the plain button.
    let own = no_redirects()
        .get(format!("{}/api/auth/magic-link?token={token}", app.base))
        .header("cookie", &asker)
        .send()
        .await
        .unwrap();
    let html = landing_page(own).await;
    assert!(
        html.contains("id=\"sign-in\"") && !html.contains("name=\"number\""),
        "{html}"
    );

    let approved = no_redirects()
        .post(format!("{}/api/auth/magic-link", app.base))
        .header("origin", &app.base)
        .form(&[
            ("token", token),
            ("action", "approve".into()),
            ("number", number),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 200);
    let done = app
        .post("/api/auth/magic-link-status", json!({}), Some(&asker))
        .await;
    assert!(done.headers().get(SET_COOKIE).is_some());
    assert_eq!(done.json::<Value>().await.unwrap()["status"], "signed_in");
}

/// A browser that asked for a code, then for a link, types the link's code: asking for the
/// link ended its code binding (which would hide the unbound link code), so the code works.
async fn after_a_code_request_a_links_code_still_works(db: TestDb) {
    let app = App::start(&db, |_| {}).await;
    let asked = app
        .post(
            "/api/auth/send-otp",
            json!({ "email": "ada@example.com" }),
            None,
        )
        .await;
    let otp_binding = cookie_pair(asked.headers());
    let link = app
        .post(
            "/api/auth/send-magic-link",
            json!({ "email": "ann@example.com" }),
            Some(&otp_binding),
        )
        .await;
    let cleared: Vec<_> = link
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let name = otp_binding.split('=').next().unwrap();
    assert!(
        cleared
            .iter()
            .any(|c| c.starts_with(&format!("{name}=;")) && c.contains("Max-Age=0")),
        "{cleared:?}"
    );
    let code = app.deliveries().await.pop().unwrap()["link_code"]
        .as_str()
        .unwrap()
        .to_owned();
    // The browser no longer sends the cleared cookie.
    let signed_in = app
        .post(
            "/api/auth/verify-otp",
            json!({ "email": "ann@example.com", "code": code }),
            None,
        )
        .await;
    assert_eq!(signed_in.status(), 200);
}

/// A client that does not follow redirects (to see the landing POST's 303).
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

both_backends!(
    after_a_code_request_a_links_code_still_works,
    a_link_approved_elsewhere_signs_in_the_asking_browser,
    same_browser_links_may_still_be_approved_elsewhere,
    the_landing_page_survives_mail_scanners,
    the_landing_path_and_destination_are_configurable,
    without_app_url_a_link_needs_a_callback,
    same_browser_links_refuse_other_browsers,
    by_default_a_link_works_in_any_browser,
    a_strangers_binding_cannot_reach_a_links_code,
    a_links_code_finishes_the_same_sign_in,
    the_magic_link_landing_page_survives_scanners,
    the_browsers_language_travels_with_the_message,
    request_headers_never_widen_the_callback_list,
    a_callback_with_its_own_token_is_refused,
    the_services_callback_refusal_is_a_422,
    the_csrf_guard_compares_scheme_and_port,
    without_app_url_the_guard_uses_host_and_the_configured_scheme,
    without_app_url_a_loopback_host_accepts_its_own_http_origin,
    the_csrf_layer_guards_the_apps_own_routes,
    nul_bytes_get_a_4xx,
    full_flow_send_verify_cookie_session_sign_out,
    magic_links_over_http,
    sms_codes_over_http,
    a_failed_delivery_is_an_error_and_leaves_no_code,
    bad_input_gets_a_clear_4xx_and_writes_nothing,
    cross_site_requests_are_rejected,
    rate_limits_answer_429_with_retry_after,
    send_answers_the_same_for_known_and_unknown_people,
    forwarded_for_is_only_believed_from_trusted_proxies,
    an_aged_session_gets_a_fresh_cookie,
    the_victim_signs_in_while_an_attacker_hammers_their_address,
);
