//! Accounts over their whole life, over real HTTP on loopback, on Postgres and SQLite:
//! verified address changes (with a notice to the old address), a second way in, removing
//! one, deleting an account after a recent sign-in, disabling users (cache included),
//! hooks, the admin listing, and clients that keep no cookies. Each test is also an attack
//! test: it fails when the guard it names is removed.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use common::{code_for, TestDb};
use futureauth::axum::{auth_router, AuthSession, RecentAuthSession};
use futureauth::delivery::{Channel, DevOutbox, Purpose};
use futureauth::hooks::{AuthHooks, HookError, IdentifierChange, SendAttempt, SendRefusal};
use futureauth::{
    async_trait, AuthMethod, FutureAuth, FutureAuthConfig, OtpChannel, Session, SessionCacheConfig,
    User, UserQuery,
};
use reqwest::header::{HeaderMap, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};

const ADA: &str = "ada@example.com";
const BOB: &str = "bob@example.com";
const NEW: &str = "ada.new@example.com";
const PHONE: &str = "+15551234567";

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

/// An app's sensitive action: only after a recent sign-in.
async fn sensitive(RecentAuthSession(auth): RecentAuthSession) -> Json<Value> {
    Json(json!({ "id": auth.user.id }))
}

/// The app on loopback with a dev outbox, and a client on the app's own origin.
struct App {
    base: String,
    auth: Arc<FutureAuth>,
    outbox: DevOutbox,
    http: reqwest::Client,
}

impl App {
    async fn start(db: &TestDb, hooks: Option<Recorder>) -> Self {
        Self::start_with(db, hooks, |_| {}).await
    }

    async fn start_with(
        db: &TestDb,
        hooks: Option<Recorder>,
        tweak: impl FnOnce(&mut FutureAuthConfig),
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut config = FutureAuthConfig {
            app_url: base.clone(),
            cookie_secure: false,
            session_cache: Some(SessionCacheConfig {
                ttl: Duration::from_secs(120),
                ..Default::default()
            }),
            ..common::config()
        };
        // Many sends to one address from one client in a second: the limits are not the
        // subject here (tests/http.rs has them).
        let many = futureauth::RateLimit {
            max: 10_000,
            window: Duration::from_secs(60),
        };
        config.rate_limits.send_throttle = many;
        config.rate_limits.send_per_identifier_per_client = many;
        config.rate_limits.send_per_identifier = many;
        config.rate_limits.send_per_ip = many;
        tweak(&mut config);
        let outbox = DevOutbox::quiet();
        let mut auth = db.new_auth(config).with_delivery(outbox.clone());
        if let Some(hooks) = hooks {
            auth = auth.with_hooks(hooks);
        }
        auth.ensure_tables().await.unwrap();
        let auth = Arc::new(auth);
        let app = Router::new()
            .merge(auth_router(auth.clone()))
            .route("/api/me", get(me))
            .route("/api/sensitive", get(sensitive))
            .with_state(AppState { auth: auth.clone() });
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
            auth,
            outbox,
            http: reqwest::Client::new(),
        }
    }

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

    async fn me(&self, cookie: &str) -> StatusCode {
        self.http
            .get(format!("{}/api/me", self.base))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// Signs in by code with the binding cookie; the `name=value` session cookie.
    async fn sign_in(&self, field: &str, to: &str) -> String {
        let sent = self
            .post("/api/auth/send-otp", json!({ field: to }), None)
            .await;
        assert_eq!(sent.status(), 200);
        let binding = cookie_pair(sent.headers());
        let code = code_for(&self.outbox, to);
        let response = self
            .post(
                "/api/auth/verify-otp",
                json!({ field: to, "code": code }),
                Some(&binding),
            )
            .await;
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        cookie_pair(response.headers())
    }

    async fn user(&self, email: &str) -> Option<User> {
        self.auth.get_user_by_email(email).await.unwrap()
    }

    /// Messages the outbox holds for `to`.
    fn sent_to(&self, to: &str) -> usize {
        self.outbox
            .messages()
            .iter()
            .filter(|e| e.message.destination == to)
            .count()
    }
}

fn cookie_pair(headers: &HeaderMap) -> String {
    headers
        .get(SET_COOKIE)
        .expect("Set-Cookie")
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

/// The code of the last confirm-address message to `to`: with `app_url` set, an email's
/// goes as a link email that carries the code in `link_code`.
fn confirm_code(outbox: &DevOutbox, to: &str) -> String {
    let m = outbox
        .latest_for(to)
        .unwrap_or_else(|| panic!("no message to {to}"));
    m.link_code.unwrap_or(m.code)
}

async fn error_code(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.expect("a JSON error body");
    (status, body["error"]["code"].as_str().unwrap().to_string())
}

/// Changing an email: a code goes to the new address and a notice to the old one; nothing
/// changes until the code is confirmed; a wrong code (an address one does not control)
/// changes nothing and runs out; sessions stay; the new address then signs in to the same
/// account. Guards: the code comparison and attempt ceiling of `confirm_change`.
async fn changing_email_needs_the_code_sent_to_the_new_address(db: TestDb) {
    let app = App::start(&db, None).await;
    let cookie = app.sign_in("email", ADA).await;
    let ada = app.user(ADA).await.unwrap();
    let (before_new, before_old) = (app.sent_to(NEW), app.sent_to(ADA));
    let r = app
        .post(
            "/api/auth/change-identifier",
            json!({ "email": NEW }),
            Some(&cookie),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.sent_to(NEW),
        before_new + 1,
        "a code to the new address"
    );
    assert_eq!(app.sent_to(ADA), before_old + 1, "a notice to the old one");
    // The notice is a notice: no code (nothing to type, nothing that signs in), the new
    // address masked. The code to the new address says it confirms an address.
    let notice = app.outbox.latest_for(ADA).unwrap();
    assert_eq!(notice.purpose, Some(Purpose::AddressChangeNotice));
    assert_eq!(notice.code, "", "a notice carries no code");
    assert_eq!(notice.new_address.as_deref(), Some("a***@example.com"));
    assert_eq!(notice.channel, Channel::Email);
    let to_new = app.outbox.latest_for(NEW).unwrap();
    assert_eq!(to_new.purpose, Some(Purpose::ConfirmAddress));
    assert_eq!(to_new.new_address, None);
    assert!(!to_new.code.is_empty());
    let code = confirm_code(&app.outbox, NEW);
    assert_eq!(
        app.user(ADA).await.unwrap().id,
        ada.id,
        "nothing changed yet"
    );

    // Someone who does not control NEW guesses: every guess fails and counts.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let r = app
            .post(
                "/api/auth/verify-identifier-change",
                json!({ "email": NEW, "code": wrong }),
                Some(&cookie),
            )
            .await;
        assert_eq!(
            error_code(r).await,
            (StatusCode::BAD_REQUEST, "invalid_code".into())
        );
    }
    // The ceiling is reached: even the right code no longer works.
    let r = app
        .post(
            "/api/auth/verify-identifier-change",
            json!({ "email": NEW, "code": code }),
            Some(&cookie),
        )
        .await;
    assert_eq!(r.status(), 400, "the attempts ran out");
    assert!(app.user(NEW).await.is_none());

    // A fresh request, confirmed with its code.
    app.post(
        "/api/auth/change-identifier",
        json!({ "email": NEW }),
        Some(&cookie),
    )
    .await;
    let code = confirm_code(&app.outbox, NEW);
    let r = app
        .post(
            "/api/auth/verify-identifier-change",
            json!({ "email": NEW, "code": code }),
            Some(&cookie),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["user"]["email"], NEW);
    assert_eq!(body["user"]["id"], json!(ada.id));
    assert!(app.user(ADA).await.is_none(), "the old address is free");
    assert_eq!(app.me(&cookie).await, 200, "sessions stay");
    let again = app.sign_in("email", NEW).await;
    assert_eq!(app.me(&again).await, 200);
    assert_eq!(app.user(NEW).await.unwrap().id, ada.id);
}

/// Email change by link: the confirm-address email carries a link (and the code) to a page
/// whose GET changes nothing; its POST confirms only in a browser signed in as the user who
/// asked: signed out or signed in as another user (the attack: Bob asks to move HIS account
/// to Ada's address and gets Ada to click) changes nothing. The link is single use, and the
/// link and the code are one pending change: using either voids the other. Guards: the
/// `binding_hash` (the asking user) in `change_link_address` and `confirm_change`'s link
/// delete, and the shared row.
async fn an_email_change_link_confirms_only_for_the_signed_in_asker(db: TestDb) {
    let app = App::start(&db, None).await;
    let cookie = app.sign_in("email", ADA).await;
    let bob_cookie = app.sign_in("email", BOB).await;
    let (ada, bob) = (app.user(ADA).await.unwrap(), app.user(BOB).await.unwrap());
    let ask = |to: &'static str| {
        app.post(
            "/api/auth/change-identifier",
            json!({ "email": to }),
            Some(&cookie),
        )
    };
    assert_eq!(ask(NEW).await.status(), 200);
    let m = app.outbox.latest_for(NEW).unwrap();
    assert_eq!(m.channel, Channel::MagicLink);
    assert_eq!(m.purpose, Some(Purpose::ConfirmAddress));
    let link = m.link.clone().expect("a link");
    let path = "/api/auth/confirm-identifier-change";
    assert_eq!(link, format!("{}{path}?token={}", app.base, m.code));
    assert!(m.link_code.is_some(), "the code travels with the link");
    let token = m.code.clone();

    // GET (a mail scanner, or the person) only shows the button, whoever opens it.
    for who in [None, Some(&bob_cookie), Some(&cookie)] {
        let mut r = app.http.get(&link);
        if let Some(c) = who {
            r = r.header("cookie", c);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("id=\"confirm\""));
    }
    assert!(app.user(NEW).await.is_none(), "GET changes nothing");

    let confirm = |cookie: Option<String>, token: String| {
        let mut r = app
            .http
            .post(format!("{}{path}", app.base))
            .header("origin", &app.base)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}"));
        if let Some(c) = cookie {
            r = r.header("cookie", c);
        }
        async move { r.send().await.unwrap() }
    };
    // Signed out: a page that says to sign in; nothing changes.
    let r = confirm(None, token.clone()).await;
    assert_eq!(r.status(), 401);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Sign in to the account that asked"));
    // Signed in as another user: nothing changes, for either account.
    let r = confirm(Some(bob_cookie.clone()), token.clone()).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("Nothing was changed"));
    assert!(app.user(NEW).await.is_none());
    assert_eq!(app.user(BOB).await.unwrap().id, bob.id);
    assert_eq!(app.user(ADA).await.unwrap().id, ada.id);
    // Cross-site: refused by the CSRF layer.
    let r = app
        .http
        .post(format!("{}{path}", app.base))
        .header("origin", "https://evil.example")
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(app.user(NEW).await.is_none());

    // The asker, signed in: confirmed.
    let r = confirm(Some(cookie.clone()), token.clone()).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains(NEW));
    assert_eq!(app.user(NEW).await.unwrap().id, ada.id);
    assert!(app.user(ADA).await.is_none());
    assert_eq!(app.me(&cookie).await, 200, "sessions stay");
    // Replay: used.
    assert_eq!(confirm(Some(cookie.clone()), token).await.status(), 400);
    // The code of the same change is void now.
    let r = app
        .post(
            "/api/auth/verify-identifier-change",
            json!({ "email": NEW, "code": m.link_code.unwrap() }),
            Some(&cookie),
        )
        .await;
    assert_eq!(
        error_code(r).await,
        (StatusCode::BAD_REQUEST, "invalid_code".into())
    );

    // And the reverse: confirmed by code, the link is void.
    const THIRD: &str = "ada.third@example.com";
    assert_eq!(ask(THIRD).await.status(), 200);
    let m = app.outbox.latest_for(THIRD).unwrap();
    let r = app
        .post(
            "/api/auth/verify-identifier-change",
            json!({ "email": THIRD, "code": m.link_code.clone().unwrap() }),
            Some(&cookie),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(confirm(Some(cookie.clone()), m.code).await.status(), 400);
    assert_eq!(app.user(THIRD).await.unwrap().id, ada.id);

    // Without app_url there is no link to build: the code alone, as an email code.
    let plain = App::start_with(&db, None, |c| c.app_url = String::new()).await;
    let c = plain.sign_in("email", "cy@example.com").await;
    plain
        .post(
            "/api/auth/change-identifier",
            json!({ "email": "cy.new@example.com" }),
            Some(&c),
        )
        .await;
    let m = plain.outbox.latest_for("cy.new@example.com").unwrap();
    assert_eq!(
        (m.channel, m.link, m.link_code),
        (Channel::Email, None, None)
    );
}

/// Enumeration: asking to change to an address of another account answers exactly as for
/// a free one and sends the same messages; confirming (only possible with that address's
/// code) changes nothing. Guard: no "taken" check before sending, and the NOT EXISTS /
/// unique key on confirm.
async fn the_change_answer_does_not_reveal_a_taken_address(db: TestDb) {
    let app = App::start(&db, None).await;
    let cookie = app.sign_in("email", ADA).await;
    app.sign_in("email", BOB).await;
    let bob = app.user(BOB).await.unwrap();
    let ask = |to: &'static str| {
        app.post(
            "/api/auth/change-identifier",
            json!({ "email": to }),
            Some(&cookie),
        )
    };
    let (notices, to_bob, to_free) = (app.sent_to(ADA), app.sent_to(BOB), app.sent_to(NEW));
    let taken = ask(BOB).await;
    let free = ask(NEW).await;
    assert_eq!(taken.status(), free.status());
    assert_eq!(
        taken.text().await.unwrap(),
        free.text().await.unwrap(),
        "the same answer"
    );
    assert_eq!(app.sent_to(BOB) - to_bob, app.sent_to(NEW) - to_free);
    assert_eq!(app.sent_to(ADA) - notices, 2, "a notice each time");

    // Taking over Bob's address with his code (were it leaked): nothing changes.
    let code = confirm_code(&app.outbox, BOB);
    let r = app
        .post(
            "/api/auth/verify-identifier-change",
            json!({ "email": BOB, "code": code }),
            Some(&cookie),
        )
        .await;
    assert_eq!(
        error_code(r).await,
        (StatusCode::CONFLICT, "identifier_taken".into())
    );
    assert_eq!(app.user(BOB).await.unwrap().id, bob.id);
    assert!(app.user(ADA).await.is_some());
}

/// A second way in: Ada adds a phone (the code goes to the phone, the notice to her
/// email), then signs in by either; removing one works only while the other remains.
/// Adding someone else's phone fails. Guards: the `AND email/phone IS NOT NULL` of
/// `remove_identifier`, and the binding that names the asking user on a pending change.
async fn a_second_way_in_and_removing_one_while_another_remains(db: TestDb) {
    let app = App::start(&db, None).await;
    let cookie = app.sign_in("email", ADA).await;
    let ada = app.user(ADA).await.unwrap();
    let notices = app.sent_to(ADA);
    let r = app
        .post(
            "/api/auth/change-identifier",
            json!({ "phone": PHONE }),
            Some(&cookie),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.sent_to(ADA),
        notices + 1,
        "the notice goes to the email"
    );
    let notice = app.outbox.latest_for(ADA).unwrap();
    assert_eq!(
        (
            notice.purpose,
            notice.code.as_str(),
            notice.new_address.as_deref()
        ),
        (
            Some(Purpose::AddressChangeNotice),
            "",
            Some("+1 ****** 567")
        ),
        "an email notice naming the phone masked"
    );
    let to_phone = app.outbox.latest_for(PHONE).unwrap();
    assert_eq!(
        (to_phone.channel, to_phone.purpose),
        (Channel::Sms, Some(Purpose::ConfirmAddress))
    );
    let code = code_for(&app.outbox, PHONE);

    // Bob, signed in, cannot spend Ada's pending change with the code he intercepted.
    let bob_cookie = app.sign_in("email", BOB).await;
    let r = app
        .post(
            "/api/auth/verify-identifier-change",
            json!({ "phone": PHONE, "code": code }),
            Some(&bob_cookie),
        )
        .await;
    assert_eq!(r.status(), 400, "a pending change is the asker's own");
    assert!(app.auth.get_user_by_phone(PHONE).await.unwrap().is_none());

    let r = app
        .post(
            "/api/auth/verify-identifier-change",
            json!({ "phone": PHONE, "code": code }),
            Some(&cookie),
        )
        .await;
    assert_eq!(r.status(), 200);
    let by_phone = app.sign_in("phone", PHONE).await;
    assert_eq!(app.me(&by_phone).await, 200);
    assert_eq!(
        app.auth.get_user_by_phone(PHONE).await.unwrap().unwrap().id,
        ada.id
    );
    assert_eq!(app.user(ADA).await.unwrap().id, ada.id, "email still works");

    // Bob tries to take over Ada's account by adding her phone: the code goes to Ada's
    // phone, and confirming with it would be refused anyway.
    app.post(
        "/api/auth/change-identifier",
        json!({ "phone": PHONE }),
        Some(&bob_cookie),
    )
    .await;
    let r = app
        .post(
            "/api/auth/verify-identifier-change",
            json!({ "phone": PHONE, "code": code_for(&app.outbox, PHONE) }),
            Some(&bob_cookie),
        )
        .await;
    assert_eq!(r.status(), 409);

    let r = app
        .post(
            "/api/auth/remove-identifier",
            json!({ "which": "email" }),
            Some(&cookie),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(app.user(ADA).await.is_none());
    let r = app
        .post(
            "/api/auth/remove-identifier",
            json!({ "which": "phone" }),
            Some(&cookie),
        )
        .await;
    assert_eq!(
        error_code(r).await,
        (StatusCode::CONFLICT, "last_identifier".into())
    );
    let ada_now = app.auth.get_user(&ada.id).await.unwrap().unwrap();
    assert_eq!(ada_now.phone_number.as_deref(), Some(PHONE));
}

/// Deleting one's account: refused with an old sign-in (nothing deleted), allowed after a
/// fresh one, and then the user, their sessions, codes and pending changes are gone in one
/// go while Bob is untouched. Guard: the `recent_auth_max_age` check.
async fn deleting_an_account_needs_a_recent_sign_in_and_takes_everything(db: TestDb) {
    let app = App::start(&db, None).await;
    let old = app.sign_in("email", ADA).await;
    let bob_cookie = app.sign_in("email", BOB).await;
    let ada = app.user(ADA).await.unwrap();
    // Signed in an hour ago (before the session is first looked up, and so cached).
    db.set_time(
        "session",
        "authenticated_at",
        "user_id",
        &ada.id,
        chrono::Utc::now() - chrono::TimeDelta::hours(1),
    )
    .await;
    // A pending change and a pending code of Ada's.
    app.post(
        "/api/auth/change-identifier",
        json!({ "email": NEW }),
        Some(&old),
    )
    .await;
    app.post("/api/auth/send-otp", json!({ "email": ADA }), None)
        .await;
    let r = app
        .post("/api/auth/delete-account", json!({}), Some(&old))
        .await;
    assert_eq!(
        error_code(r).await,
        (StatusCode::FORBIDDEN, "reauthentication_required".into())
    );
    assert!(app.user(ADA).await.is_some(), "nothing deleted");

    let fresh = app.sign_in("email", ADA).await;
    let (_, session) = app
        .auth
        .get_session(fresh.split('=').nth(1).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(session.auth_method, Some(AuthMethod::Otp));
    app.post(
        "/api/auth/change-identifier",
        json!({ "email": NEW }),
        Some(&fresh),
    )
    .await;
    let r = app
        .post("/api/auth/delete-account", json!({}), Some(&fresh))
        .await;
    assert_eq!(r.status(), 200);
    assert!(app.user(ADA).await.is_none());
    assert_eq!(app.me(&fresh).await, 401);
    assert_eq!(app.me(&old).await, 401);
    let left = db
        .strings(&format!(
            "SELECT id FROM session WHERE user_id = '{}' \
             UNION ALL SELECT id FROM verification WHERE identifier IN ('{ADA}', '{NEW}')",
            ada.id
        ))
        .await;
    assert!(left.is_empty(), "left behind: {left:?}");
    assert_eq!(app.me(&bob_cookie).await, 200, "Bob is untouched");
    assert!(app.user(BOB).await.is_some());
}

/// Disabling: sessions end at once, also a cached one, also on another instance (Postgres);
/// sends answer as for anyone; the right code and a magic link are refused with
/// `user_disabled`; enabling lets the user back in. Guards: the sign-in refusal in
/// `session::finish`, the cache eviction of `disable_user`, the lookup's disabled filter.
async fn a_disabled_user_cannot_sign_in_or_keep_a_session(db: TestDb) {
    let app = App::start(&db, None).await;
    let cookie = app.sign_in("email", ADA).await;
    let token = cookie.split('=').nth(1).unwrap().to_string();
    let ada = app.user(ADA).await.unwrap();
    // A second instance on the same database with its own cache.
    let other = Arc::new(
        db.new_auth(app.auth.config().clone())
            .with_delivery(app.outbox.clone()),
    );
    other.ensure_tables().await.unwrap();
    // Both instances answer from their caches (on Postgres once their listeners are up).
    warm(&db, &app.auth, &token).await;
    if db.backend() == common::Backend::Postgres {
        warm(&db, &other, &token).await;
    }
    assert_eq!(app.me(&cookie).await, 200);

    app.auth.disable_user(&ada.id, None).await.unwrap();
    assert!(app.auth.is_user_disabled(&ada.id).await.unwrap());
    assert_eq!(app.me(&cookie).await, 401, "the cached session ended");
    if db.backend() == common::Backend::Postgres {
        let mut ended = false;
        for _ in 0..50 {
            if other.get_session(&token).await.unwrap().is_none() {
                ended = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ended, "the other instance's cached session ended");
    }

    // Sends answer as for anyone; the right code is refused clearly.
    let sent = app
        .post("/api/auth/send-otp", json!({ "email": ADA }), None)
        .await;
    assert_eq!(sent.status(), 200);
    assert_eq!(sent.text().await.unwrap(), r#"{"ok":true}"#);
    let binding = {
        let r = app
            .post("/api/auth/send-otp", json!({ "email": ADA }), None)
            .await;
        cookie_pair(r.headers())
    };
    let r = app
        .post(
            "/api/auth/verify-otp",
            json!({ "email": ADA, "code": code_for(&app.outbox, ADA) }),
            Some(&binding),
        )
        .await;
    assert_eq!(
        error_code(r).await,
        (StatusCode::FORBIDDEN, "user_disabled".into())
    );
    app.auth
        .send_magic_link(ADA, &format!("{}/cb", app.base))
        .await
        .unwrap();
    let token_link = code_for(&app.outbox, ADA);
    let r = app
        .post(
            "/api/auth/verify-magic-link",
            json!({ "token": token_link }),
            None,
        )
        .await;
    assert_eq!(
        error_code(r).await,
        (StatusCode::FORBIDDEN, "user_disabled".into())
    );
    // The landing page's button explains it too.
    app.auth
        .send_magic_link(ADA, &format!("{}/api/auth/magic-link", app.base))
        .await
        .unwrap();
    let page = app
        .http
        .post(format!("{}/api/auth/magic-link", app.base))
        .header("origin", &app.base)
        .form(&[("token", code_for(&app.outbox, ADA))])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 403);
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("This account is disabled"));
    assert_eq!(db.count("session").await, 0, "no session left behind");

    // A session row of a disabled user (say, of a sign-in racing the disable) does not
    // authenticate: the lookup skips disabled users.
    let race = "race-session-token-0123456789abcdefghijklmnopqrstuv";
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(race.as_bytes()));
    let (expires, now) = match db.backend() {
        common::Backend::Postgres => ("NOW() + INTERVAL '1 day'".to_string(), "NOW()".to_string()),
        common::Backend::Sqlite => {
            let now = chrono::Utc::now().timestamp_millis();
            ((now + 86_400_000).to_string(), now.to_string())
        }
    };
    db.exec(&format!(
        "INSERT INTO session (id, user_id, token_hash, expires_at, created_at) \
         VALUES ('race', '{}', '{hash}', {expires}, {now})",
        ada.id
    ))
    .await;
    assert!(app.auth.get_session(race).await.unwrap().is_none());
    db.exec("DELETE FROM session WHERE id = 'race'").await;

    app.auth.enable_user(&ada.id).await.unwrap();
    let back = app.sign_in("email", ADA).await;
    assert_eq!(app.me(&back).await, 200);

    // Disabled until a time in the past is not disabled.
    app.auth
        .disable_user(
            &ada.id,
            Some(chrono::Utc::now() - chrono::TimeDelta::minutes(1)),
        )
        .await
        .unwrap();
    assert!(!app.auth.is_user_disabled(&ada.id).await.unwrap());
    let until = chrono::Utc::now() + chrono::TimeDelta::hours(1);
    app.auth.disable_user(&ada.id, Some(until)).await.unwrap();
    assert!(app.auth.is_user_disabled(&ada.id).await.unwrap());
}

/// Waits until `auth` answers for `token` from its cache: a name changed behind its back in
/// the database is not seen. Panics after 5 s.
async fn warm(db: &TestDb, auth: &FutureAuth, token: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut n = 0;
    while std::time::Instant::now() < deadline {
        let (user, _) = auth.get_session(token).await.unwrap().expect("signed in");
        n += 1;
        let marker = format!("behind-the-cache-{n}");
        db.exec(&format!(
            "UPDATE \"user\" SET name = '{marker}' WHERE id = '{}'",
            user.id
        ))
        .await;
        let (again, _) = auth.get_session(token).await.unwrap().expect("signed in");
        if again.name != marker {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the session cache never answered");
}

/// What the hooks heard, and which of them fail.
#[derive(Clone, Default)]
struct Recorder {
    events: Arc<Mutex<Vec<String>>>,
    fail_events: bool,
}

impl Recorder {
    fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }

    fn push(&self, event: String) -> Result<(), HookError> {
        self.events.lock().unwrap().push(event);
        if self.fail_events {
            return Err(HookError("the app's hook failed".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl AuthHooks for Recorder {
    async fn before_send(&self, attempt: &SendAttempt<'_>) -> Result<(), SendRefusal> {
        if attempt.destination.ends_with("@blocked.example") {
            return Err(SendRefusal::new(
                "email_domain_not_allowed",
                "use your work email",
            ));
        }
        if attempt.hook_token == Some("bad-captcha") {
            return Err(SendRefusal::new("captcha_failed", "try the CAPTCHA again"));
        }
        Ok(())
    }

    async fn user_created(&self, user: &User) -> Result<(), HookError> {
        self.push(format!(
            "created {}",
            user.email.clone().unwrap_or_default()
        ))
    }

    async fn signed_in(&self, user: &User, _session: &Session) -> Result<(), HookError> {
        self.push(format!(
            "signed_in {}",
            user.email.clone().unwrap_or_default()
        ))
    }

    async fn signed_out(&self, _user_id: &str, _session_id: &str) -> Result<(), HookError> {
        self.push("signed_out".into())
    }

    async fn identifier_changed(
        &self,
        _user: &User,
        change: &IdentifierChange,
    ) -> Result<(), HookError> {
        self.push(match change {
            IdentifierChange::Set { new, .. } => format!("changed {new}"),
            IdentifierChange::Removed(old) => format!("removed {old}"),
            _ => "other".into(),
        })
    }

    async fn user_deleted(&self, user: &User) -> Result<(), HookError> {
        self.push(format!(
            "deleted {}",
            user.email.clone().unwrap_or_default()
        ))
    }
}

/// `before_send` refuses with the app's own code before anything is written or sent; the
/// event hooks hear each event once. Guard: `check_send` runs before the code is stored.
async fn hooks_hear_events_and_before_send_can_refuse(db: TestDb) {
    let hooks = Recorder::default();
    let app = App::start(&db, Some(hooks.clone())).await;
    let r = app
        .post(
            "/api/auth/send-otp",
            json!({ "email": "eve@blocked.example" }),
            None,
        )
        .await;
    assert_eq!(
        error_code(r).await,
        (StatusCode::FORBIDDEN, "email_domain_not_allowed".into())
    );
    let r = app
        .http
        .post(format!("{}/api/auth/send-magic-link", app.base))
        .header("origin", &app.base)
        .header("x-futureauth-hook-token", "bad-captcha")
        .json(&json!({ "email": ADA }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(r).await,
        (StatusCode::FORBIDDEN, "captcha_failed".into())
    );
    assert_eq!(db.count("verification").await, 0, "nothing written");
    assert!(app.outbox.messages().is_empty(), "nothing sent");

    let cookie = app.sign_in("email", ADA).await;
    app.sign_in("email", ADA).await;
    app.post(
        "/api/auth/change-identifier",
        json!({ "email": NEW }),
        Some(&cookie),
    )
    .await;
    app.post(
        "/api/auth/verify-identifier-change",
        json!({ "email": NEW, "code": confirm_code(&app.outbox, NEW) }),
        Some(&cookie),
    )
    .await;
    app.post("/api/auth/sign-out", json!({}), Some(&cookie))
        .await;
    let user = app.user(NEW).await.unwrap();
    app.auth.delete_user(&user.id).await.unwrap();
    assert_eq!(
        hooks.events(),
        [
            format!("created {ADA}"),
            format!("signed_in {ADA}"),
            format!("signed_in {ADA}"),
            format!("changed {NEW}"),
            "signed_out".to_string(),
            format!("deleted {NEW}"),
        ]
    );
}

/// A failing hook never leaves half-written state: the user it reports on is whole (created
/// with a session that works; deleted with nothing left).
async fn a_failing_hook_leaves_no_half_written_state(db: TestDb) {
    let hooks = Recorder {
        fail_events: true,
        ..Default::default()
    };
    let app = App::start(&db, Some(hooks.clone())).await;
    let cookie = app.sign_in("email", ADA).await;
    assert_eq!(app.me(&cookie).await, 200, "created whole, signed in");
    let ada = app.user(ADA).await.unwrap();
    let deleted = app.auth.delete_user(&ada.id).await.unwrap();
    assert_eq!(deleted.id, ada.id);
    assert!(app.user(ADA).await.is_none());
    assert_eq!(db.count("session").await, 0, "deleted whole");
    assert_eq!(db.count("\"user\"").await, 0);
    assert!(hooks.events().contains(&format!("deleted {ADA}")));
}

/// A client without cookies: `X-FutureAuth-Client: native` gets the binding as a value,
/// sends it back in `X-FutureAuth-Binding`, and gets a Bearer token. Without the header no
/// value is shown; a different client's binding does not reach the code. Guard: the bound
/// code lookup (binding hash) and `is_native`.
async fn a_native_client_signs_in_without_cookies(db: TestDb) {
    let app = App::start(&db, None).await;
    let native = |route: &str| {
        app.http
            .post(format!("{}{route}", app.base))
            .header("x-futureauth-client", "native")
    };
    let browser = app
        .post("/api/auth/send-otp", json!({ "email": ADA }), None)
        .await;
    let body: Value = browser.json().await.unwrap();
    assert!(body.get("binding").is_none(), "a browser never sees it");

    let sent: Value = native("/api/auth/send-otp")
        .json(&json!({ "email": ADA }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let binding = sent["binding"].as_str().expect("the binding").to_string();
    let code = code_for(&app.outbox, ADA);

    // Another client: its own binding, or none, does not reach this code.
    let thief: Value = native("/api/auth/send-otp")
        .json(&json!({ "email": BOB }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for other in [Some(thief["binding"].as_str().unwrap()), None] {
        let mut r = native("/api/auth/verify-otp").json(&json!({ "email": ADA, "code": code }));
        if let Some(other) = other {
            r = r.header("x-futureauth-binding", other);
        }
        assert_eq!(r.send().await.unwrap().status(), 400);
    }

    let signed: Value = native("/api/auth/verify-otp")
        .header("x-futureauth-binding", &binding)
        .json(&json!({ "email": ADA, "code": code }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = signed["token"].as_str().expect("a bearer token");
    let me = app
        .http
        .get(format!("{}/api/auth/session", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["user"]["email"], ADA);
    assert!(me.get("token").is_none());
}

/// Every new route refuses a cross-site browser request and changes nothing.
async fn the_new_routes_refuse_cross_site_requests(db: TestDb) {
    let app = App::start(&db, None).await;
    let cookie = app.sign_in("email", ADA).await;
    app.sign_in("phone", PHONE).await;
    for (route, body) in [
        ("/api/auth/change-identifier", json!({ "email": NEW })),
        (
            "/api/auth/verify-identifier-change",
            json!({ "email": NEW, "code": "123456" }),
        ),
        ("/api/auth/remove-identifier", json!({ "which": "email" })),
        ("/api/auth/delete-account", json!({})),
    ] {
        let r = app
            .http
            .post(format!("{}{route}", app.base))
            .header("origin", "https://evil.example")
            .header("cookie", &cookie)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(r).await,
            (StatusCode::FORBIDDEN, "cross_site_request".into()),
            "{route}"
        );
    }
    assert!(app.user(ADA).await.is_some());
    assert_eq!(app.sent_to(NEW), 0);
    assert_eq!(app.me(&cookie).await, 200);
}

/// Bad input to the new routes is a 4xx JSON error and writes nothing; not signed in is 401.
async fn bad_input_to_the_new_routes_is_a_4xx(db: TestDb) {
    let app = App::start(&db, None).await;
    let cookie = app.sign_in("email", ADA).await;
    for (route, body, want) in [
        (
            "/api/auth/change-identifier",
            json!({ "email": "not-an-email" }),
            "invalid_email",
        ),
        (
            "/api/auth/change-identifier",
            json!({ "phone": "555" }),
            "invalid_phone",
        ),
        (
            "/api/auth/change-identifier",
            json!({ "email": NEW, "phone": PHONE }),
            "invalid_request",
        ),
        (
            "/api/auth/change-identifier",
            json!({ "email": "a\u{0}@x.example" }),
            "invalid_email",
        ),
        (
            "/api/auth/verify-identifier-change",
            json!({ "email": NEW }),
            "invalid_request",
        ),
        (
            "/api/auth/remove-identifier",
            json!({ "which": "fax" }),
            "invalid_request",
        ),
    ] {
        let r = app.post(route, body.clone(), Some(&cookie)).await;
        let (status, code) = error_code(r).await;
        assert!(status.is_client_error(), "{route} {body}: {status}");
        assert_eq!(code, want, "{route} {body}");
    }
    let r = app.post("/api/auth/delete-account", json!({}), None).await;
    assert_eq!(
        error_code(r).await,
        (StatusCode::UNAUTHORIZED, "unauthorized".into())
    );
    assert_eq!(db.count("\"user\"").await, 1);
    assert_eq!(app.sent_to(NEW), 0);
}

/// The admin listing: search by email or phone, the created window, pages; a user's
/// sessions, revoke, disable and delete through the same API.
async fn admins_list_and_search_users_a_page_at_a_time(db: TestDb) {
    let app = App::start(&db, None).await;
    for i in 0..7 {
        app.auth
            .send_otp(OtpChannel::Email, &format!("user{i}@example.com"))
            .await
            .unwrap();
        let to = format!("user{i}@example.com");
        app.auth
            .verify_otp(&to, &code_for(&app.outbox, &to), None, None)
            .await
            .unwrap();
    }
    app.sign_in("phone", PHONE).await;
    let all = app.auth.list_users(&UserQuery::default()).await.unwrap();
    assert_eq!(all.users.len(), 8);
    assert_eq!(all.next_offset, None);
    assert_eq!(
        all.users[0].phone_number.as_deref(),
        Some(PHONE),
        "newest first"
    );

    let page = app
        .auth
        .list_users(&UserQuery::default().page(3, 0))
        .await
        .unwrap();
    assert_eq!(page.users.len(), 3);
    assert_eq!(page.next_offset, Some(3));
    let last = app
        .auth
        .list_users(&UserQuery::default().page(3, 6))
        .await
        .unwrap();
    assert_eq!(last.users.len(), 2);
    assert_eq!(last.next_offset, None);

    let found = app
        .auth
        .list_users(&UserQuery::search("USER3@"))
        .await
        .unwrap();
    assert_eq!(found.users.len(), 1);
    assert_eq!(found.users[0].email.as_deref(), Some("user3@example.com"));
    let by_phone = app
        .auth
        .list_users(&UserQuery::search("555123"))
        .await
        .unwrap();
    assert_eq!(by_phone.users.len(), 1);
    // LIKE's own characters are literal.
    let none = app.auth.list_users(&UserQuery::search("%")).await.unwrap();
    assert!(none.users.is_empty());
    let future = app
        .auth
        .list_users(
            &UserQuery::default()
                .created_between(Some(chrono::Utc::now() + chrono::TimeDelta::hours(1)), None),
        )
        .await
        .unwrap();
    assert!(future.users.is_empty());
    let past = app
        .auth
        .list_users(&UserQuery::default().created_between(None, Some(chrono::Utc::now())))
        .await
        .unwrap();
    assert_eq!(past.users.len(), 8);

    let user = &found.users[0];
    let sessions = app.auth.list_sessions(&user.id).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert!(app
        .auth
        .revoke_user_session(&user.id, &sessions[0].id)
        .await
        .unwrap());
    app.auth.delete_user(&user.id).await.unwrap();
    assert!(matches!(
        app.auth.delete_user(&user.id).await,
        Err(futureauth::FutureAuthError::UserNotFound)
    ));
    assert!(matches!(
        app.auth.disable_user("nobody", None).await,
        Err(futureauth::FutureAuthError::UserNotFound)
    ));
}

/// An app's own sensitive route behind `RecentAuthSession`: a fresh sign-in passes, a
/// session whose sign-in is older than `recent_auth_max_age` is refused with 403
/// `reauthentication_required` (still signed in for everything else), no session is a 401.
/// Guard: `FutureAuth::require_recent_sign_in` in the extractor.
async fn sensitive_routes_need_a_recent_sign_in(db: TestDb) {
    let app = App::start(&db, None).await;
    let old = app.sign_in("email", ADA).await;
    let ada = app.user(ADA).await.unwrap();
    // Signed in an hour ago (before the session is first looked up, and so cached).
    db.set_time(
        "session",
        "authenticated_at",
        "user_id",
        &ada.id,
        chrono::Utc::now() - chrono::TimeDelta::hours(1),
    )
    .await;
    let get = |cookie: Option<String>| {
        let mut request = app.http.get(format!("{}/api/sensitive", app.base));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send()
    };
    let r = get(Some(old.clone())).await.unwrap();
    assert_eq!(
        error_code(r).await,
        (StatusCode::FORBIDDEN, "reauthentication_required".into())
    );
    assert_eq!(app.me(&old).await, StatusCode::OK, "still signed in");
    let (_, session) = app
        .auth
        .get_session(old.split('=').nth(1).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(!session.signed_in_within(Duration::from_secs(10 * 60)));
    assert!(session.signed_in_within(Duration::from_secs(2 * 3600)));

    let fresh = app.sign_in("email", ADA).await;
    let r = get(Some(fresh)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["id"], json!(ada.id));
    let r = get(None).await.unwrap();
    assert_eq!(
        error_code(r).await,
        (StatusCode::UNAUTHORIZED, "unauthorized".into())
    );
}

both_backends!(
    sensitive_routes_need_a_recent_sign_in,
    changing_email_needs_the_code_sent_to_the_new_address,
    an_email_change_link_confirms_only_for_the_signed_in_asker,
    the_change_answer_does_not_reveal_a_taken_address,
    a_second_way_in_and_removing_one_while_another_remains,
    deleting_an_account_needs_a_recent_sign_in_and_takes_everything,
    a_disabled_user_cannot_sign_in_or_keep_a_session,
    hooks_hear_events_and_before_send_can_refuse,
    a_failing_hook_leaves_no_half_written_state,
    a_native_client_signs_in_without_cookies,
    the_new_routes_refuse_cross_site_requests,
    bad_input_to_the_new_routes_is_a_4xx,
    admins_list_and_search_users_a_page_at_a_time,
);
