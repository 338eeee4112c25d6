//! Passkeys end to end: a real server on loopback, on Postgres and SQLite, and a software
//! authenticator of this test's own (P-256 keys, CBOR written by hand, no webauthn-rs), so
//! that every attack can be built byte by byte: another origin or RP ID, a replay, another
//! browser's challenge, another user's handle, a counter going backwards, no user
//! verification, malformed and huge JSON, and the rate limits.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::TestDb;
use futureauth::axum::auth_router;
use futureauth::delivery::DevOutbox;
use futureauth::{FutureAuth, FutureAuthConfig, PasskeyConfig, RateLimit};
use reqwest::header::{HeaderMap, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

mod authenticator;
use authenticator::*;

// ---------------------------------------------------------------------------------------
// The app and a browser-like client.
// ---------------------------------------------------------------------------------------

struct App {
    /// Where the client connects (loopback).
    base: String,
    /// The app's origin (`http://localhost:port`): the RP ID must be a domain name.
    origin: String,
    outbox: DevOutbox,
    db: TestDb,
    auth: Arc<FutureAuth>,
    http: reqwest::Client,
}

/// One browser: its cookies, kept by hand so that tests can move them between browsers.
#[derive(Clone, Default)]
struct Browser {
    cookies: Vec<(String, String)>,
}

impl Browser {
    fn header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            let pair = value.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(k, _)| k != name);
            if !value.is_empty() {
                self.cookies.push((name.to_string(), value.to_string()));
            }
        }
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.cookies
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

/// A JSON answer: status and body.
struct Answer {
    status: StatusCode,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    #[track_caller]
    fn ok(self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        self.body
    }

    #[track_caller]
    fn refused(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status.as_u16(), self.code()),
            (status, code),
            "{}",
            self.body
        );
    }
}

impl App {
    async fn start(db: TestDb, tweak: impl FnOnce(&mut PasskeyConfig)) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let origin = format!("http://localhost:{port}");
        let mut passkeys = PasskeyConfig::default();
        tweak(&mut passkeys);
        let config = FutureAuthConfig {
            cookie_secure: false,
            app_url: origin.clone(),
            passkeys: Some(passkeys),
            ..common::config()
        };
        let outbox = DevOutbox::quiet();
        let auth = Arc::new(db.auth_with(config, outbox.clone()).await);
        let app = auth_router(auth.clone());
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        Self {
            base: format!("http://127.0.0.1:{port}"),
            origin,
            outbox,
            db,
            auth,
            http: reqwest::Client::new(),
        }
    }

    /// POSTs `body` (raw bytes, sent as JSON) from `origin` in `browser`.
    async fn post_raw(
        &self,
        browser: &mut Browser,
        route: &str,
        body: Vec<u8>,
        origin: &str,
    ) -> Answer {
        let response = self
            .http
            .post(format!("{}{route}", self.base))
            .header("origin", origin)
            .header("content-type", "application/json")
            .header("cookie", browser.header())
            .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0")
            .body(body)
            .send()
            .await
            .unwrap();
        browser.keep(response.headers());
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text }));
        assert!(
            !status.is_server_error(),
            "{route} answered {status}: {body}"
        );
        Answer { status, body }
    }

    async fn post(&self, browser: &mut Browser, route: &str, body: Value) -> Answer {
        self.post_raw(browser, route, body.to_string().into_bytes(), &self.origin)
            .await
    }

    async fn get(&self, browser: &mut Browser, route: &str) -> Answer {
        let response = self
            .http
            .get(format!("{}{route}", self.base))
            .header("cookie", browser.header())
            .send()
            .await
            .unwrap();
        browser.keep(response.headers());
        Answer {
            status: response.status(),
            body: response.json().await.unwrap_or(Value::Null),
        }
    }

    /// Signs `browser` in by an email code; returns the user id.
    async fn sign_in_by_code(&self, browser: &mut Browser, email: &str) -> String {
        self.post(browser, "/api/auth/send-otp", json!({ "email": email }))
            .await
            .ok();
        let code = common::code_for(&self.outbox, email);
        let body = self
            .post(
                browser,
                "/api/auth/verify-otp",
                json!({ "email": email, "code": code }),
            )
            .await
            .ok();
        body["user"]["id"].as_str().unwrap().to_string()
    }

    /// Registers a passkey for the signed-in user of `browser`.
    async fn add_passkey(&self, browser: &mut Browser) -> (SoftKey, Value) {
        let options = self
            .post(browser, "/api/auth/passkey/register/options", json!({}))
            .await
            .ok();
        let (key, credential) = SoftKey::create(&options, &self.origin, &Tamper::default());
        let added = self
            .post(
                browser,
                "/api/auth/passkey/register",
                json!({ "credential": credential }),
            )
            .await
            .ok();
        (key, added["passkey"].clone())
    }

    async fn sign_in_options(&self, browser: &mut Browser) -> Value {
        self.post(browser, "/api/auth/passkey/options", json!({}))
            .await
            .ok()
    }

    async fn verify(&self, browser: &mut Browser, credential: &Value) -> Answer {
        self.post(
            browser,
            "/api/auth/passkey/verify",
            json!({ "credential": credential }),
        )
        .await
    }

    /// Signs in with `key` in a fresh browser (options, answer, verify).
    async fn sign_in_with(&self, key: &mut SoftKey, tamper: &Tamper) -> (Browser, Answer) {
        let mut browser = Browser::default();
        let options = self.sign_in_options(&mut browser).await;
        let answer = key.get(&options, &self.origin, tamper);
        let verified = self.verify(&mut browser, &answer).await;
        (browser, verified)
    }

    async fn count(&self, table: &str) -> i64 {
        self.db.count(table).await
    }
}

const SESSION: &str = "futureauth_session";

// ---------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------

/// Register after a code sign-in, sign out, sign in with the passkey (the same answer and
/// cookie as a code sign-in), list, rename, delete; then the code still signs in.
async fn register_sign_in_manage(db: TestDb) {
    let app = App::start(db, |_| {}).await;
    let mut laptop = Browser::default();
    let user_id = app.sign_in_by_code(&mut laptop, "ada@example.com").await;
    let (mut key, passkey) = app.add_passkey(&mut laptop).await;
    assert_eq!(
        passkey["name"], "Chrome on Linux",
        "named after the browser"
    );
    assert_eq!(passkey["transports"], json!(["internal"]));
    assert!(passkey["last_used_at"].is_null());
    assert!(
        app.db
            .strings("SELECT passkey FROM passkey")
            .await
            .iter()
            .all(|p| !p.contains("-----")),
        "no key material beyond the public key"
    );

    // Sign out, then in with the passkey.
    app.post(&mut laptop, "/api/auth/sign-out", json!({}))
        .await
        .ok();
    assert!(laptop.cookie(SESSION).is_none());
    let (mut browser, verified) = app.sign_in_with(&mut key, &Tamper::default()).await;
    let body = verified.ok();
    assert_eq!(body["user"]["id"], user_id.as_str());
    assert_eq!(body["user"]["email"], "ada@example.com");
    assert!(body["session"]["expires_at"].is_string());
    assert_eq!(body["session"]["auth_method"], "passkey", "{body}");
    assert!(body["session"]["authenticated_at"].is_string());
    assert!(
        body["session"].get("token").is_none(),
        "the token is in the cookie only"
    );
    let me = app.get(&mut browser, "/api/auth/session").await.ok();
    assert_eq!(me["user"]["id"], user_id.as_str());

    // Listed, used, renamed.
    let listed = app.get(&mut browser, "/api/auth/passkeys").await.ok();
    let passkeys = listed["passkeys"].as_array().unwrap();
    assert_eq!(passkeys.len(), 1);
    assert!(passkeys[0]["last_used_at"].is_string(), "{listed}");
    let id = passkeys[0]["id"].as_str().unwrap().to_string();
    let renamed = app
        .post(
            &mut browser,
            "/api/auth/passkey/rename",
            json!({ "id": id, "name": "  Work laptop " }),
        )
        .await
        .ok();
    assert_eq!(renamed["passkey"]["name"], "Work laptop");

    // Another user cannot rename or delete it.
    let mut eve = Browser::default();
    app.sign_in_by_code(&mut eve, "eve@example.com").await;
    app.post(
        &mut eve,
        "/api/auth/passkey/rename",
        json!({ "id": id, "name": "mine" }),
    )
    .await
    .refused(404, "passkey_not_found");
    app.post(&mut eve, "/api/auth/passkey/delete", json!({ "id": id }))
        .await
        .refused(404, "passkey_not_found");
    assert!(
        app.get(&mut eve, "/api/auth/passkeys").await.ok()["passkeys"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Deleted: the passkey signs nobody in; the code still does.
    app.post(
        &mut browser,
        "/api/auth/passkey/delete",
        json!({ "id": id }),
    )
    .await
    .ok();
    app.post(
        &mut browser,
        "/api/auth/passkey/delete",
        json!({ "id": id }),
    )
    .await
    .refused(404, "passkey_not_found");
    assert_eq!(app.count("passkey").await, 0);
    let (_, refused) = app.sign_in_with(&mut key, &Tamper::default()).await;
    refused.refused(400, "passkey_rejected");
    // (Through the SDK: the HTTP send to this address from here is throttled for 30 s.)
    app.auth
        .send_otp(futureauth::OtpChannel::Email, "ada@example.com")
        .await
        .unwrap();
    let code = common::code_for(&app.outbox, "ada@example.com");
    let (user, _) = app
        .auth
        .verify_otp("ada@example.com", &code, None, None)
        .await
        .unwrap();
    assert_eq!(user.id, user_id);
}

/// The same signed answer sent twice signs in once.
async fn replayed_assertion(db: TestDb) {
    let app = App::start(db, |_| {}).await;
    let mut browser = Browser::default();
    app.sign_in_by_code(&mut browser, "ada@example.com").await;
    let (mut key, _) = app.add_passkey(&mut browser).await;
    let mut fresh = Browser::default();
    let options = app.sign_in_options(&mut fresh).await;
    let answer = key.get(&options, &app.origin, &Tamper::default());
    app.verify(&mut fresh, &answer).await.ok();
    let sessions = app.count("session").await;
    app.verify(&mut fresh, &answer)
        .await
        .refused(400, "passkey_challenge_invalid");
    assert_eq!(app.count("session").await, sessions, "no second session");
    // Nor is a registration answer accepted twice.
    let options = app
        .post(
            &mut browser,
            "/api/auth/passkey/register/options",
            json!({}),
        )
        .await
        .ok();
    let (_, credential) = SoftKey::create(&options, &app.origin, &Tamper::default());
    let body = json!({ "credential": credential });
    app.post(&mut browser, "/api/auth/passkey/register", body.clone())
        .await
        .ok();
    app.post(&mut browser, "/api/auth/passkey/register", body)
        .await
        .refused(400, "passkey_challenge_invalid");
    assert_eq!(app.count("passkey").await, 2);
}

/// Answers made for another origin or another RP ID are refused, at registration and at
/// sign-in; the RP ID comes from `app_url`, not from the request's Host or Origin.
async fn other_origin_or_rp_id(db: TestDb) {
    let app = App::start(db, |_| {}).await;
    let mut browser = Browser::default();
    app.sign_in_by_code(&mut browser, "ada@example.com").await;
    let options = app
        .post(
            &mut browser,
            "/api/auth/passkey/register/options",
            json!({}),
        )
        .await
        .ok();
    assert_eq!(options["publicKey"]["rp"]["id"], "localhost");
    let attacks = [
        Tamper {
            origin: Some("https://evil.example".into()),
            ..Tamper::default()
        },
        Tamper {
            origin: Some("http://localhost:1".into()),
            ..Tamper::default()
        },
        Tamper {
            rp_id: Some("evil.example".into()),
            ..Tamper::default()
        },
        Tamper {
            no_uv: true,
            ..Tamper::default()
        },
    ];
    for tamper in &attacks {
        let options = app
            .post(
                &mut browser,
                "/api/auth/passkey/register/options",
                json!({}),
            )
            .await
            .ok();
        let (_, credential) = SoftKey::create(&options, &app.origin, tamper);
        app.post(
            &mut browser,
            "/api/auth/passkey/register",
            json!({ "credential": credential }),
        )
        .await
        .refused(400, "passkey_rejected");
    }
    assert_eq!(app.count("passkey").await, 0);

    let (mut key, _) = app.add_passkey(&mut browser).await;
    let sessions = app.count("session").await;
    for tamper in &attacks {
        let (_, verified) = app.sign_in_with(&mut key, tamper).await;
        verified.refused(400, "passkey_rejected");
    }
    assert_eq!(app.count("session").await, sessions);
    // A request naming another Host still gets this app's RP ID.
    let options = reqwest::Client::new()
        .post(format!("{}/api/auth/passkey/options", app.base))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(options["publicKey"]["rpId"], "localhost");
}

/// A challenge works only in the browser it was issued to (its binding cookie); in another
/// browser it is refused and left for its own browser.
async fn challenge_of_another_browser(db: TestDb) {
    let app = App::start(db, |_| {}).await;
    let mut browser = Browser::default();
    app.sign_in_by_code(&mut browser, "ada@example.com").await;
    let (mut key, _) = app.add_passkey(&mut browser).await;

    let mut victim = Browser::default();
    let options = app.sign_in_options(&mut victim).await;
    let answer = key.get(&options, &app.origin, &Tamper::default());
    let mut attacker = Browser::default();
    app.sign_in_options(&mut attacker).await; // a binding of its own
    app.verify(&mut attacker, &answer)
        .await
        .refused(400, "passkey_challenge_invalid");
    let mut no_cookie = Browser::default();
    app.verify(&mut no_cookie, &answer)
        .await
        .refused(400, "passkey_challenge_invalid");
    assert!(attacker.cookie(SESSION).is_none());
    app.verify(&mut victim, &answer).await.ok();
    assert!(victim.cookie(SESSION).is_some());

    // Registration likewise: another browser of the same user cannot finish it.
    let options = app
        .post(
            &mut browser,
            "/api/auth/passkey/register/options",
            json!({}),
        )
        .await
        .ok();
    let (_, credential) = SoftKey::create(&options, &app.origin, &Tamper::default());
    let mut same_user_elsewhere = Browser {
        cookies: vec![(SESSION.into(), browser.cookie(SESSION).unwrap())],
    };
    app.post(
        &mut same_user_elsewhere,
        "/api/auth/passkey/register",
        json!({ "credential": credential }),
    )
    .await
    .refused(400, "passkey_challenge_invalid");
}

/// An expired challenge is refused (and gone).
async fn expired_challenge(db: TestDb) {
    let app = App::start(db, |_| {}).await;
    let mut browser = Browser::default();
    app.sign_in_by_code(&mut browser, "ada@example.com").await;
    let (mut key, _) = app.add_passkey(&mut browser).await;
    let mut fresh = Browser::default();
    let options = app.sign_in_options(&mut fresh).await;
    let answer = key.get(&options, &app.origin, &Tamper::default());
    let hash = hex::encode(Sha256::digest(
        options["publicKey"]["challenge"].as_str().unwrap(),
    ));
    assert!(
        app.db
            .strings("SELECT state FROM passkey_challenge")
            .await
            .iter()
            .all(|s| !s.contains(options["publicKey"]["challenge"].as_str().unwrap())),
        "the challenge itself is not stored"
    );
    app.db
        .set_expiry(
            "passkey_challenge",
            "challenge_hash",
            &hash,
            chrono::Utc::now() - chrono::TimeDelta::seconds(1),
        )
        .await;
    app.verify(&mut fresh, &answer)
        .await
        .refused(400, "passkey_challenge_invalid");
    assert_eq!(app.count("passkey_challenge").await, 0);
}

/// A credential of user A presented with user B's handle signs nobody in.
async fn credential_with_another_users_handle(db: TestDb) {
    let app = App::start(db, |_| {}).await;
    let mut a = Browser::default();
    app.sign_in_by_code(&mut a, "ada@example.com").await;
    let (mut key_a, _) = app.add_passkey(&mut a).await;
    let mut b = Browser::default();
    app.sign_in_by_code(&mut b, "bob@example.com").await;
    let (key_b, _) = app.add_passkey(&mut b).await;
    assert_ne!(key_a.user_handle, key_b.user_handle);
    let sessions = app.count("session").await;
    let tamper = Tamper {
        user_handle: Some(key_b.user_handle.clone()),
        ..Tamper::default()
    };
    let (_, verified) = app.sign_in_with(&mut key_a, &tamper).await;
    verified.refused(400, "passkey_rejected");
    assert_eq!(app.count("session").await, sessions);
}

/// Registration needs a session, the browser's own challenge for that same user, and a
/// same-site request.
async fn registration_needs_session_and_same_site(db: TestDb) {
    let app = App::start(db, |_| {}).await;
    let mut anonymous = Browser::default();
    app.post(
        &mut anonymous,
        "/api/auth/passkey/register/options",
        json!({}),
    )
    .await
    .refused(401, "unauthorized");
    app.post(
        &mut anonymous,
        "/api/auth/passkey/register",
        json!({ "credential": {} }),
    )
    .await
    .refused(401, "unauthorized");
    app.get(&mut anonymous, "/api/auth/passkeys")
        .await
        .refused(401, "unauthorized");

    let mut browser = Browser::default();
    app.sign_in_by_code(&mut browser, "ada@example.com").await;
    let cross = app
        .post_raw(
            &mut browser,
            "/api/auth/passkey/register/options",
            b"{}".to_vec(),
            "https://evil.example",
        )
        .await;
    cross.refused(403, "cross_site_request");
    let options = app
        .post(
            &mut browser,
            "/api/auth/passkey/register/options",
            json!({}),
        )
        .await
        .ok();
    let (_, credential) = SoftKey::create(&options, &app.origin, &Tamper::default());
    let body = json!({ "credential": credential });
    app.post_raw(
        &mut browser,
        "/api/auth/passkey/register",
        body.to_string().into_bytes(),
        "https://evil.example",
    )
    .await
    .refused(403, "cross_site_request");
    // The same browser signed in as someone else cannot finish Ada's registration.
    app.post(&mut browser, "/api/auth/sign-out", json!({}))
        .await
        .ok();
    app.sign_in_by_code(&mut browser, "eve@example.com").await;
    app.post(&mut browser, "/api/auth/passkey/register", body)
        .await
        .refused(400, "passkey_challenge_invalid");
    assert_eq!(app.count("passkey").await, 0);
}

/// A signature counter that does not move forward (a cloned authenticator) is refused, and
/// the stored counter stays.
async fn counter_going_backwards(db: TestDb) {
    let app = App::start(db, |_| {}).await;
    let mut browser = Browser::default();
    app.sign_in_by_code(&mut browser, "ada@example.com").await;
    let (mut key, _) = app.add_passkey(&mut browser).await;
    let mut clone = key.clone();
    let at_five = Tamper {
        counter: Some(5),
        ..Tamper::default()
    };
    app.sign_in_with(&mut key, &at_five).await.1.ok();
    for counter in [3, 5] {
        let tamper = Tamper {
            counter: Some(counter),
            ..Tamper::default()
        };
        let (browser, verified) = app.sign_in_with(&mut clone, &tamper).await;
        verified.refused(400, "passkey_rejected");
        assert!(browser.cookie(SESSION).is_none());
    }
    assert_eq!(
        app.db
            .strings("SELECT CAST(counter AS TEXT) FROM passkey")
            .await,
        vec!["5".to_string()]
    );
    app.sign_in_with(&mut key, &Tamper::default()).await.1.ok();
}

/// Malformed, mistyped and huge JSON in every field of every passkey route: a 4xx JSON
/// error, and nothing written.
async fn malformed_and_huge_json(db: TestDb) {
    // Every body reaches the parser, not the rate limit.
    let app = App::start(db, |p| {
        p.verify_per_ip = RateLimit::new(10_000, std::time::Duration::from_secs(60));
    })
    .await;
    let mut browser = Browser::default();
    app.sign_in_by_code(&mut browser, "ada@example.com").await;
    let (mut key, passkey) = app.add_passkey(&mut browser).await;
    let options = app.sign_in_options(&mut browser).await;
    let good = key.get(&options, &app.origin, &Tamper::default());
    let reg_options = app
        .post(
            &mut browser,
            "/api/auth/passkey/register/options",
            json!({}),
        )
        .await
        .ok();
    let (_, good_reg) = SoftKey::create(&reg_options, &app.origin, &Tamper::default());
    let (passkeys, sessions) = (app.count("passkey").await, app.count("session").await);

    let huge = "A".repeat(20_000);
    let mut bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{".to_vec(),
        b"[]".to_vec(),
        b"null".to_vec(),
        b"{\"credential\": 1}".to_vec(),
        b"{\"credential\": \"x\"}".to_vec(),
        b"{\"credential\": {}}".to_vec(),
        format!("{{\"credential\": \"{huge}\"}}").into_bytes(),
        vec![0xff, 0xfe, 0x00],
    ];
    // Each field of a good answer replaced by wrong types, bad base64, bad inner JSON, NUL.
    for good in [&good, &good_reg] {
        for (field, value) in [
            ("id", json!(7)),
            ("rawId", json!("!!not base64!!")),
            ("type", json!(["public-key"])),
            ("response", json!("x")),
            ("extensions", json!("x")),
        ] {
            let mut bad = good.clone();
            bad[field] = value;
            bodies.push(json!({ "credential": bad }).to_string().into_bytes());
        }
        let fields: Vec<String> = good["response"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        for field in fields {
            for value in [
                json!(null),
                json!(12),
                json!("%%%"),
                json!(b64(b"not json or cbor")),
                json!(b64(b"{\"challenge\": \"\\u0000\"}")),
                json!(b64(&[0u8; 3000])),
            ] {
                if field == "transports" && value.is_null() {
                    continue; // optional: a registration without it is a good one
                }
                let mut bad = good.clone();
                bad["response"][field.as_str()] = value;
                bodies.push(json!({ "credential": bad }).to_string().into_bytes());
            }
        }
    }
    for route in [
        "/api/auth/passkey/verify",
        "/api/auth/passkey/register",
        "/api/auth/passkey/rename",
        "/api/auth/passkey/delete",
    ] {
        for body in &bodies {
            let answer = app
                .post_raw(&mut browser, route, body.clone(), &app.origin)
                .await;
            assert!(
                answer.status.is_client_error() && !answer.code().is_empty(),
                "{route} {:?}: {} {}",
                String::from_utf8_lossy(&body[..body.len().min(200)]),
                answer.status,
                answer.body
            );
        }
    }
    let id = passkey["id"].as_str().unwrap();
    for (route, body, status, code) in [
        (
            "/api/auth/passkey/rename",
            json!({ "id": id, "name": "x".repeat(65) }),
            422,
            "invalid_request",
        ),
        (
            "/api/auth/passkey/rename",
            json!({ "id": id, "name": "a\u{0}b" }),
            422,
            "invalid_request",
        ),
        (
            "/api/auth/passkey/rename",
            json!({ "id": id, "name": "  " }),
            422,
            "invalid_request",
        ),
        (
            "/api/auth/passkey/rename",
            json!({ "id": "\u{0}", "name": "n" }),
            422,
            "invalid_request",
        ),
        (
            "/api/auth/passkey/delete",
            json!({ "id": "\u{0}" }),
            422,
            "invalid_request",
        ),
        (
            "/api/auth/passkey/register",
            json!({ "credential": good_reg, "name": huge }),
            413,
            "payload_too_large",
        ),
    ] {
        app.post(&mut browser, route, body)
            .await
            .refused(status, code);
    }
    assert_eq!(app.count("passkey").await, passkeys, "no passkey written");
    assert_eq!(app.count("session").await, sessions, "no session written");
    let listed = app.get(&mut browser, "/api/auth/passkeys").await.ok();
    assert_eq!(listed["passkeys"][0]["name"], passkey["name"]);
}

/// The options and verify routes are rate limited per client IP.
async fn rate_limits(db: TestDb) {
    let window = std::time::Duration::from_secs(600);
    let app = App::start(db, |p| {
        p.options_per_ip = RateLimit::new(3, window);
        p.verify_per_ip = RateLimit::new(2, window);
    })
    .await;
    let mut browser = Browser::default();
    for _ in 0..3 {
        app.sign_in_options(&mut browser).await;
    }
    let limited = app
        .post(&mut browser, "/api/auth/passkey/options", json!({}))
        .await;
    limited.refused(429, "rate_limited");
    for _ in 0..2 {
        app.verify(&mut browser, &json!({}))
            .await
            .refused(422, "invalid_request");
    }
    app.verify(&mut browser, &json!({}))
        .await
        .refused(429, "rate_limited");
}

/// Deleting a user deletes their passkeys in the same transaction, on both backends and on
/// SQLite without foreign keys too; the passkey then signs nobody in.
async fn deleted_user(db: TestDb) {
    let app = App::start(db, |_| {}).await;
    let mut browser = Browser::default();
    let id = app.sign_in_by_code(&mut browser, "ada@example.com").await;
    let (mut key, _) = app.add_passkey(&mut browser).await;
    let mut other = Browser::default();
    app.sign_in_by_code(&mut other, "bob@example.com").await;
    let (mut bobs_key, _) = app.add_passkey(&mut other).await;
    app.auth.delete_user(&id).await.unwrap();
    assert_eq!(app.count("passkey").await, 1, "only Ada's passkey went");
    let (_, verified) = app.sign_in_with(&mut key, &Tamper::default()).await;
    verified.refused(400, "passkey_rejected");

    let bob = app
        .auth
        .get_user_by_email("bob@example.com")
        .await
        .unwrap()
        .unwrap();
    // SQLite with foreign keys off (sqlx switches them on; an app may not): the delete
    // itself removes the passkeys, not a cascade.
    if let TestDb::Sqlite { path, .. } = &app.db {
        let options = futureauth::sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .foreign_keys(false);
        let pool = futureauth::sqlx::SqlitePool::connect_with(options)
            .await
            .unwrap();
        let no_cascade = FutureAuth::new(pool.clone(), app.auth.config().clone());
        no_cascade.delete_user(&bob.id).await.unwrap();
        pool.close().await;
    } else {
        app.auth.delete_user(&bob.id).await.unwrap();
    }
    assert_eq!(app.count("passkey").await, 0, "Bob's passkey went with him");
    let (_, verified) = app.sign_in_with(&mut bobs_key, &Tamper::default()).await;
    verified.refused(400, "passkey_rejected");
    assert_eq!(app.count("session").await, 0);
}

/// A disabled user's passkey signs nobody in (as a code does not); enabled again, it does.
async fn disabled_user(db: TestDb) {
    let app = App::start(db, |_| {}).await;
    let mut browser = Browser::default();
    let id = app.sign_in_by_code(&mut browser, "ada@example.com").await;
    let (mut key, _) = app.add_passkey(&mut browser).await;
    app.auth.disable_user(&id, None).await.unwrap();
    let sessions = app.count("session").await;
    let (signed_out, verified) = app.sign_in_with(&mut key, &Tamper::default()).await;
    verified.refused(403, "user_disabled");
    assert!(signed_out.cookie(SESSION).is_none());
    assert_eq!(
        app.count("session").await,
        sessions,
        "no session left behind"
    );
    app.auth.enable_user(&id).await.unwrap();
    app.sign_in_with(&mut key, &Tamper::default()).await.1.ok();
}

/// The SDK methods without HTTP: the tables are made only when passkeys are configured, a
/// binding is required, and the options say what the issue asks (discoverable, UV
/// required, no attestation).
async fn sdk_surface(db: TestDb) {
    let plain = db.new_auth(common::config());
    plain.ensure_tables().await.unwrap();
    let err = plain
        .passkey_sign_in_options(&futureauth::RequestContext::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "misconfigured");
    let app = App::start(db, |_| {}).await;
    assert_eq!(app.count("passkey").await, 0);
    let err = app
        .auth
        .passkey_sign_in_options(&futureauth::RequestContext::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        "passkey_challenge_invalid",
        "a binding is needed"
    );
    let mut browser = Browser::default();
    app.sign_in_by_code(&mut browser, "ada@example.com").await;
    let options = app
        .post(
            &mut browser,
            "/api/auth/passkey/register/options",
            json!({}),
        )
        .await
        .ok();
    let pk = &options["publicKey"];
    assert_eq!(pk["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(pk["attestation"], "none");
    assert_eq!(pk["rp"]["name"], "Test App");
    let binding = browser.cookie("futureauth_session_passkey");
    assert!(binding.is_some(), "the binding cookie is set");
}

both_backends!(
    register_sign_in_manage,
    replayed_assertion,
    other_origin_or_rp_id,
    challenge_of_another_browser,
    expired_challenge,
    credential_with_another_users_handle,
    registration_needs_session_and_same_site,
    counter_going_backwards,
    malformed_and_huge_json,
    rate_limits,
    deleted_user,
    disabled_user,
    sdk_surface,
);

/// Without passkeys configured, no passkey table is made and no passkey route answers.
#[tokio::test]
async fn unconfigured_apps_have_no_passkey_tables_or_routes() {
    let db = TestDb::new(common::Backend::Sqlite).await;
    let auth = Arc::new(db.auth_with(common::config(), DevOutbox::quiet()).await);
    let tables = db
        .strings("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'passkey%'")
        .await;
    assert!(tables.is_empty(), "{tables:?}");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = auth_router(auth);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let status = reqwest::Client::new()
        .post(format!("{base}/api/auth/passkey/options"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::NOT_FOUND);
    db.cleanup().await;
}
