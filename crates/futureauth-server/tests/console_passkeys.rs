//! Operators' passkeys in the console (`/dashboard/login/passkey*`,
//! `/dashboard/account/passkeys*`) over loopback, on SQLite and Postgres, with a software
//! authenticator of this test's own (P-256 keys, CBOR written by hand, as the SDK's
//! tests/passkeys.rs): an operator adds a passkey and signs in with it; registration needs a
//! session, its CSRF token and the console's Origin; one operator cannot rename or delete
//! another's passkey; a challenge issued to one browser does not verify in another; a
//! removed or disabled operator's passkey signs nobody in; a console on no domain name
//! offers no passkeys.
//!
//! A loopback console is its relying party as `localhost` (browsers refuse passkeys on an
//! IP address), so these browsers talk to `http://localhost:<port>`.

mod common;

use std::time::Duration;

use common::*;
use futureauth_server::config::Config;
use serde_json::{json, Value};

const OWNER: &str = "owner@example.com";
const OTHER: &str = "other@example.com";

#[path = "../../futureauth/tests/authenticator/mod.rs"]
mod authenticator;
use authenticator::*;

// ---------------------------------------------------------------------------------------
// A browser: cookies, the console's Origin on every POST.
// ---------------------------------------------------------------------------------------

struct Browser {
    http: reqwest::Client,
    /// `http://localhost:<port>`: the origin passkeys work from.
    base: String,
}

struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }

    /// The `error.code` of a JSON refusal.
    fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

impl Browser {
    fn new(s: &TestServer) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: format!("http://localhost:{}", s.server.addr.port()),
        }
    }

    async fn answer(resp: reqwest::Response) -> Answer {
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Answer {
            status: resp.status().as_u16(),
            location,
            body: resp.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Answer {
        Self::answer(
            self.http
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn form(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        Self::answer(
            self.http
                .post(format!("{}{path}", self.base))
                .header("origin", &self.base)
                .form(form)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// POSTs JSON from `origin` with the CSRF header `csrf`, if any.
    async fn json_from(
        &self,
        origin: &str,
        path: &str,
        csrf: Option<&str>,
        body: &Value,
    ) -> Answer {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("origin", origin)
            .json(body);
        if let Some(csrf) = csrf {
            req = req.header("x-csrf-token", csrf);
        }
        Self::answer(req.send().await.unwrap()).await
    }

    async fn json(&self, path: &str, csrf: Option<&str>, body: &Value) -> Answer {
        self.json_from(&self.base.clone(), path, csrf, body).await
    }

    /// The session's CSRF token, from the passkeys page.
    async fn csrf(&self) -> String {
        let page = self.get("/dashboard/account/passkeys").await;
        assert_eq!(page.status, 200, "{}", page.body);
        between(&page.body, "data-csrf=\"", "\"").to_owned()
    }

    /// Adds a passkey for the signed-in operator; returns it (as the authenticator keeps
    /// it) and the server's answer.
    async fn add_passkey(&self, name: &str) -> (SoftKey, Value) {
        let csrf = self.csrf().await;
        let options = self
            .json(
                "/dashboard/account/passkeys/options",
                Some(&csrf),
                &json!({}),
            )
            .await;
        assert_eq!(options.status, 200, "{}", options.body);
        let (key, credential) = SoftKey::create(&options.json(), &self.base, &Tamper::default());
        let added = self
            .json(
                "/dashboard/account/passkeys",
                Some(&csrf),
                &json!({"credential": credential, "name": name}),
            )
            .await;
        assert_eq!(added.status, 200, "{}", added.body);
        (key, added.json()["passkey"].clone())
    }

    /// Signs in with `key`; the answer of the verify route.
    async fn passkey_sign_in(&self, key: &mut SoftKey) -> Answer {
        let options = self
            .json("/dashboard/login/passkey/options", None, &json!({}))
            .await;
        assert_eq!(options.status, 200, "{}", options.body);
        let credential = key.get(&options.json(), &self.base, &Tamper::default());
        self.json(
            "/dashboard/login/passkey",
            None,
            &json!({ "credential": credential }),
        )
        .await
    }

    /// Whether this browser has a console session.
    async fn signed_in(&self) -> bool {
        let page = self.get("/dashboard").await;
        match page.status {
            200 => true,
            303 => {
                assert_eq!(page.location.as_deref(), Some("/dashboard/login"));
                false
            }
            other => panic!("/dashboard answered {other}: {}", page.body),
        }
    }
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let i = s
        .find(start)
        .unwrap_or_else(|| panic!("`{start}` not in page: {s}"));
    let rest = &s[i + start.len()..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

/// The emails the fake Resend received for `to`, oldest first.
async fn emails_to(fakes: &Fakes, to: &str) -> Vec<Value> {
    fakes
        .emails()
        .await
        .iter()
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .filter(|b| b["to"] == json!([to]))
        .collect()
}

/// The sign-in code of the first email to `to` after the `before` it had already received.
async fn code_for(fakes: &Fakes, to: &str, before: usize) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(body) = emails_to(fakes, to).await.get(before) {
            let subject = body["subject"].as_str().unwrap_or("");
            return subject.split_whitespace().next().unwrap_or("").to_owned();
        }
        assert!(std::time::Instant::now() < deadline, "no email to {to}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn setup(backend: Backend) -> (TestServer, Fakes) {
    let db = TestDb::new(backend).await;
    let fakes = Fakes::accepting().await;
    let store = db.store().await;
    cli(&store, &["futureauth-server", "operator", "add", OWNER]).await;
    cli(&store, &["futureauth-server", "operator", "add", OTHER]).await;
    let server = TestServer::start(&db, &config(&db, &fakes)).await;
    (server, fakes)
}

/// A browser signed in by code as `email`.
async fn by_code(s: &TestServer, fakes: &Fakes, email: &str) -> Browser {
    let b = Browser::new(s);
    let before = emails_to(fakes, email).await.len();
    let sent = b.form("/dashboard/login", &[("email", email)]).await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let code = code_for(fakes, email, before).await;
    let done = b
        .form(
            "/dashboard/login/verify",
            &[("email", email), ("code", &code)],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(b.signed_in().await);
    b
}

/// `b`'s passkeys page.
async fn listed(b: &Browser) -> String {
    let page = b.get("/dashboard/account/passkeys").await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.body
}

// ---------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------

/// Sign in by code, add a passkey (the relying party is `localhost`, named "FutureAuth
/// Console"), then a fresh browser signs in with it into the same console session a code
/// gives; the page lists it as used; the sign-in page offers passkeys from localhost.
async fn an_operator_adds_a_passkey_and_signs_in_with_it(backend: Backend) {
    let (s, fakes) = setup(backend).await;
    let a = by_code(&s, &fakes, OWNER).await;
    assert!(listed(&a).await.contains("No passkey yet."));
    let csrf = a.csrf().await;
    let options = a
        .json(
            "/dashboard/account/passkeys/options",
            Some(&csrf),
            &json!({}),
        )
        .await;
    assert_eq!(options.status, 200, "{}", options.body);
    let pk = &options.json()["publicKey"];
    assert_eq!(pk["rp"]["id"], "localhost");
    assert_eq!(pk["rp"]["name"], "FutureAuth Console");
    assert_eq!(pk["user"]["name"], OWNER);
    let (mut key, passkey) = a.add_passkey("Work laptop").await;
    assert_eq!(passkey["name"], "Work laptop");
    let page = listed(&a).await;
    assert!(page.contains("value=\"Work laptop\""), "{page}");

    let fresh = Browser::new(&s);
    let login = fresh.get("/dashboard/login").await;
    assert!(
        login.body.contains(&format!(
            "data-passkey-origins=\"http:&#x2f;&#x2f;localhost:{}\"",
            s.server.addr.port()
        )),
        "the sign-in page offers passkeys on localhost: {}",
        login.body
    );
    assert!(!fresh.signed_in().await);
    let done = fresh.passkey_sign_in(&mut key).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.json()["redirect"], "/dashboard");
    assert!(
        fresh.signed_in().await,
        "the passkey opened a console session"
    );
    let page = listed(&fresh).await;
    assert!(page.contains(OWNER) && !page.contains(">never<"), "{page}");
    // Signing out ends it like any session.
    let csrf = fresh.csrf().await;
    let out = fresh.form("/dashboard/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert!(!fresh.signed_in().await);
}

/// Adding a passkey needs a console session, its CSRF token and the console's Origin;
/// each refusal is JSON and stores nothing.
async fn registration_needs_a_session_its_token_and_the_consoles_origin(backend: Backend) {
    let (s, fakes) = setup(backend).await;
    let stranger = Browser::new(&s);
    for path in [
        "/dashboard/account/passkeys/options",
        "/dashboard/account/passkeys",
    ] {
        let refused = stranger.json(path, None, &json!({"credential": {}})).await;
        assert_eq!(refused.status, 401, "{path}: {}", refused.body);
        assert_eq!(refused.code(), "unauthorized");
    }

    let a = by_code(&s, &fakes, OWNER).await;
    let csrf = a.csrf().await;
    // No token, or another session's.
    let b = by_code(&s, &fakes, OTHER).await;
    let other_csrf = b.csrf().await;
    for token in [None, Some(other_csrf.as_str()), Some("")] {
        let refused = a
            .json("/dashboard/account/passkeys/options", token, &json!({}))
            .await;
        assert_eq!(refused.status, 403, "{token:?}: {}", refused.body);
        assert_eq!(refused.code(), "cross_site_request");
    }
    // The right token from another site.
    let refused = a
        .json_from(
            "https://evil.example",
            "/dashboard/account/passkeys/options",
            Some(&csrf),
            &json!({}),
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.code(), "cross_site_request");

    // A good challenge, answered, but posted cross-site or without the token: not stored.
    let options = a
        .json(
            "/dashboard/account/passkeys/options",
            Some(&csrf),
            &json!({}),
        )
        .await;
    assert_eq!(options.status, 200, "{}", options.body);
    let (_, credential) = SoftKey::create(&options.json(), &a.base, &Tamper::default());
    let body = json!({ "credential": credential });
    let cross = a
        .json_from(
            "https://evil.example",
            "/dashboard/account/passkeys",
            Some(&csrf),
            &body,
        )
        .await;
    assert_eq!(cross.status, 403, "{}", cross.body);
    let tokenless = a.json("/dashboard/account/passkeys", None, &body).await;
    assert_eq!(tokenless.status, 403, "{}", tokenless.body);
    assert!(listed(&a).await.contains("No passkey yet."));
    // Malformed bodies are JSON 4xx, never 5xx.
    for bad in [
        json!({}),
        json!({"credential": "x"}),
        json!({"credential": {"id": 1}}),
    ] {
        let refused = a
            .json("/dashboard/account/passkeys", Some(&csrf), &bad)
            .await;
        assert!(
            (400..500).contains(&refused.status),
            "{bad}: {} {}",
            refused.status,
            refused.body
        );
        assert!(!refused.code().is_empty(), "{}", refused.body);
    }
    // The same answer, posted properly, is stored: the refusals above did not consume it.
    let ok = a
        .json("/dashboard/account/passkeys", Some(&csrf), &body)
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    // Sign-in from another site is refused too.
    let cross = stranger
        .json_from(
            "https://evil.example",
            "/dashboard/login/passkey/options",
            None,
            &json!({}),
        )
        .await;
    assert_eq!(cross.status, 403, "{}", cross.body);
    assert_eq!(cross.code(), "cross_site_request");
}

/// Operator A cannot rename or delete operator B's passkey: the same 404 as an unknown
/// id, and B's passkey keeps its name and still signs B in.
async fn an_operator_cannot_touch_another_operators_passkey(backend: Backend) {
    let (s, fakes) = setup(backend).await;
    let a = by_code(&s, &fakes, OWNER).await;
    let b = by_code(&s, &fakes, OTHER).await;
    let (_, a_passkey) = a.add_passkey("Key A").await;
    let (mut b_key, b_passkey) = b.add_passkey("Key B").await;
    let b_id = b_passkey["id"].as_str().unwrap();
    assert!(!listed(&a).await.contains(b_id), "A sees only A's passkeys");

    let csrf = a.csrf().await;
    let renamed = a
        .form(
            "/dashboard/account/passkeys/rename",
            &[("csrf", &csrf), ("id", b_id), ("name", "taken over")],
        )
        .await;
    assert_eq!(renamed.status, 404, "{}", renamed.body);
    let deleted = a
        .form(
            "/dashboard/account/passkeys/delete",
            &[("csrf", &csrf), ("id", b_id)],
        )
        .await;
    assert_eq!(deleted.status, 404, "{}", deleted.body);
    let unknown = a
        .form(
            "/dashboard/account/passkeys/delete",
            &[("csrf", &csrf), ("id", "no-such-passkey")],
        )
        .await;
    assert_eq!(unknown.status, 404);

    let page = listed(&b).await;
    assert!(
        page.contains(b_id) && page.contains("value=\"Key B\""),
        "{page}"
    );
    assert!(!page.contains("taken over"));
    let fresh = Browser::new(&s);
    let done = fresh.passkey_sign_in(&mut b_key).await;
    assert_eq!(
        done.status, 200,
        "B's passkey still signs B in: {}",
        done.body
    );

    // A's own: renamed (303, Post/Redirect/Get), a bad name refused, then deleted.
    let a_id = a_passkey["id"].as_str().unwrap();
    let renamed = a
        .form(
            "/dashboard/account/passkeys/rename",
            &[("csrf", &csrf), ("id", a_id), ("name", "Desk")],
        )
        .await;
    assert_eq!(renamed.status, 303, "{}", renamed.body);
    let shown = a.get(renamed.location.as_deref().unwrap()).await;
    assert!(shown.body.contains("Passkey renamed.") && shown.body.contains("value=\"Desk\""));
    let long = "x".repeat(65);
    let bad = a
        .form(
            "/dashboard/account/passkeys/rename",
            &[("csrf", &csrf), ("id", a_id), ("name", &long)],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    let no_token = a
        .form(
            "/dashboard/account/passkeys/delete",
            &[("csrf", "wrong"), ("id", a_id)],
        )
        .await;
    assert_eq!(no_token.status, 403);
    let deleted = a
        .form(
            "/dashboard/account/passkeys/delete",
            &[("csrf", &csrf), ("id", a_id)],
        )
        .await;
    assert_eq!(deleted.status, 303, "{}", deleted.body);
    assert!(listed(&a).await.contains("No passkey yet."));
}

/// A sign-in challenge belongs to the browser that asked for it: its answer, posted by
/// another browser, does not verify (nor consume it).
async fn options_from_another_browser_do_not_verify(backend: Backend) {
    let (s, fakes) = setup(backend).await;
    let a = by_code(&s, &fakes, OWNER).await;
    let (mut key, _) = a.add_passkey("Laptop").await;

    let victim = Browser::new(&s);
    let options = victim
        .json("/dashboard/login/passkey/options", None, &json!({}))
        .await;
    assert_eq!(options.status, 200);
    let credential = key.get(&options.json(), &victim.base, &Tamper::default());
    let body = json!({ "credential": credential });
    // Another browser with no binding, and one with a binding of its own.
    let thief = Browser::new(&s);
    let refused = thief.json("/dashboard/login/passkey", None, &body).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.code(), "passkey_challenge_invalid");
    let own = thief
        .json("/dashboard/login/passkey/options", None, &json!({}))
        .await;
    assert_eq!(own.status, 200);
    let refused = thief.json("/dashboard/login/passkey", None, &body).await;
    assert_eq!(
        refused.code(),
        "passkey_challenge_invalid",
        "{}",
        refused.body
    );
    assert!(!thief.signed_in().await);
    // In the browser that asked, the answer works, once.
    let done = victim.json("/dashboard/login/passkey", None, &body).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(victim.signed_in().await);
    let again = victim.json("/dashboard/login/passkey", None, &body).await;
    assert_eq!(again.status, 400, "a replay: {}", again.body);

    // A registration challenge, too: another session of the same operator cannot use it.
    let csrf = a.csrf().await;
    let reg = a
        .json(
            "/dashboard/account/passkeys/options",
            Some(&csrf),
            &json!({}),
        )
        .await;
    let (_, credential) = SoftKey::create(&reg.json(), &a.base, &Tamper::default());
    // (A second session of the same operator, opened with the passkey: a second code so
    // soon would be refused by the per-address limit.)
    let second = Browser::new(&s);
    let done = second.passkey_sign_in(&mut key).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let second_csrf = second.csrf().await;
    let refused = second
        .json(
            "/dashboard/account/passkeys",
            Some(&second_csrf),
            &json!({ "credential": credential }),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.code(), "passkey_challenge_invalid");
}

/// A removed operator's passkey signs nobody in (the console ends the SDK's new session);
/// a disabled user's is refused by the SDK.
async fn a_removed_or_disabled_operators_passkey_signs_nobody_in(backend: Backend) {
    let (s, fakes) = setup(backend).await;
    let a = by_code(&s, &fakes, OTHER).await;
    let (mut other_key, _) = a.add_passkey("Other's").await;
    let out = cli(
        s.store(),
        &["futureauth-server", "operator", "remove", OTHER],
    )
    .await;
    assert!(out.contains("removed"), "{out}");
    let b = Browser::new(&s);
    let refused = b.passkey_sign_in(&mut other_key).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.code(), "passkey_rejected");
    assert!(!b.signed_in().await);

    let owner = by_code(&s, &fakes, OWNER).await;
    let (mut owner_key, _) = owner.add_passkey("Owner's").await;
    // The console's users live in the server's database: disable the owner's there.
    let sdk = futureauth::FutureAuth::new(
        s.store().sdk_database(),
        futureauth::FutureAuthConfig::default(),
    );
    let user = sdk.get_user_by_email(OWNER).await.unwrap().unwrap();
    sdk.disable_user(&user.id, None).await.unwrap();
    let b = Browser::new(&s);
    let refused = b.passkey_sign_in(&mut owner_key).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.code(), "user_disabled");
    assert!(!b.signed_in().await);
}

/// A console reached on no domain name (here its public URL is an IP address) offers no
/// passkeys: no button, the routes answer a JSON 404, codes work as before.
async fn a_console_on_an_ip_address_offers_no_passkeys(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fakes = Fakes::accepting().await;
    let store = db.store().await;
    cli(&store, &["futureauth-server", "operator", "add", OWNER]).await;
    let config = Config {
        public_url: Some("http://127.0.0.1:9".into()),
        ..config(&db, &fakes)
    };
    let s = TestServer::start(&db, &config).await;
    let http = reqwest::Client::new();
    let login = http
        .get(s.url("/dashboard/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(login.contains("Email me a code") && !login.contains("passkey-sign-in"));
    let resp = http
        .post(s.url("/dashboard/login/passkey/options"))
        .header("origin", "http://127.0.0.1:9")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}

backend_tests!(
    an_operator_adds_a_passkey_and_signs_in_with_it,
    registration_needs_a_session_its_token_and_the_consoles_origin,
    an_operator_cannot_touch_another_operators_passkey,
    options_from_another_browser_do_not_verify,
    a_removed_or_disabled_operators_passkey_signs_nobody_in,
    a_console_on_an_ip_address_offers_no_passkeys,
);
