//! The console (`/dashboard`) and the management API (`/api/v1/projects`) over loopback,
//! against SQLite and Postgres: operator sign-in through the server's own outbox (the fake
//! Resend receives the code), project isolation, CSRF and Origin checks, keys shown once,
//! rotation overlap, deliveries, settings, members and the audit log.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const OWNER: &str = "owner@example.com";
const OTHER: &str = "other@example.com";

/// A browser-like client: keeps cookies, sends the console's Origin on posts.
struct Browser {
    http: reqwest::Client,
    base: String,
}

struct Page {
    status: u16,
    location: Option<String>,
    set_cookie: Option<String>,
    body: String,
}

impl Browser {
    fn new(base: &str) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
        }
    }

    async fn page(resp: reqwest::Response) -> Page {
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (location, set_cookie) = (header("location"), header("set-cookie"));
        Page {
            status: resp.status().as_u16(),
            location,
            set_cookie,
            body: resp.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Page {
        Self::page(
            self.http
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// POSTs a form with the given Origin (None = no Origin header).
    async fn post_from(&self, origin: Option<&str>, path: &str, form: &[(&str, &str)]) -> Page {
        let mut req = self.http.post(format!("{}{path}", self.base)).form(form);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        Self::page(req.send().await.unwrap()).await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        self.post_from(Some(&self.base.clone()), path, form).await
    }

    /// GETs the page a form's 303 points to (Post/Redirect/Get).
    async fn follow(&self, page: &Page) -> Page {
        assert_eq!(page.status, 303, "{}", page.body);
        self.get(page.location.as_deref().expect("a Location"))
            .await
    }

    /// The same browser (same cookies) talking to another server.
    fn at(&self, base: &str) -> Browser {
        Browser {
            http: self.http.clone(),
            base: base.to_owned(),
        }
    }

    /// The CSRF token of the current session (from the projects page).
    async fn csrf(&self) -> String {
        let page = self.get("/dashboard").await;
        assert_eq!(page.status, 200, "{}", page.body);
        between(&page.body, "name=\"csrf\" value=\"", "\"").to_owned()
    }
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let i = s
        .find(start)
        .unwrap_or_else(|| panic!("`{start}` not in page"));
    let rest = &s[i + start.len()..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

/// The body of the latest email the fake Resend received for `to` (10 s deadline).
async fn last_email(fakes: &Fakes, to: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let found = fakes.emails().await.iter().rev().find_map(|r| {
            let body: Value = serde_json::from_slice(&r.body).ok()?;
            (body["to"] == json!([to])).then_some(body)
        });
        if let Some(body) = found {
            return body;
        }
        assert!(std::time::Instant::now() < deadline, "no email to {to}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The latest sign-in code the fake Resend received for `to`.
async fn code_for(fakes: &Fakes, to: &str) -> String {
    let body = last_email(fakes, to).await;
    let subject = body["subject"].as_str().unwrap_or("");
    subject.split_whitespace().next().unwrap_or("").to_owned()
}

async fn emails_to(fakes: &Fakes, to: &str) -> usize {
    fakes
        .emails()
        .await
        .iter()
        .filter(|r| serde_json::from_slice::<Value>(&r.body).is_ok_and(|b| b["to"] == json!([to])))
        .count()
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

async fn signed_in(s: &TestServer, fakes: &Fakes, email: &str) -> Browser {
    let b = Browser::new(&s.server.url());
    let sent = b.post("/dashboard/login", &[("email", email)]).await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let code = code_for(fakes, email).await;
    let done = b
        .post(
            "/dashboard/login/verify",
            &[("email", email), ("code", &code)],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    b
}

/// Creates a project in the console; returns (project id, secret key).
async fn create_project(b: &Browser, name: &str) -> (String, String) {
    let csrf = b.csrf().await;
    let page = b
        .post("/dashboard/projects", &[("csrf", &csrf), ("name", name)])
        .await;
    let page = b.follow(&page).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let key = between(
        &page.body,
        "id=\"secret\" class=\"secret mono\" readonly value=\"",
        "\"",
    );
    let id = between(&page.body, "href=\"/dashboard/projects/", "\"");
    (id.to_owned(), key.to_owned())
}

/// The create form offers, on a loopback console, the callback URL and origins of an app on
/// port 3000 (the demo's, as the root README's "Run your own server" says); a bad callback
/// is refused next to its field in words a person understands, and creates nothing; a good
/// one is the project's, with its origin and the other origins allowed, so magic links to
/// the app under both its names are accepted.
async fn the_create_form_offers_and_checks_the_callback_and_origins(backend: Backend) {
    let (s, fakes) = setup(backend).await;
    let a = signed_in(&s, &fakes, OWNER).await;
    // minijinja writes `/` in values as `&#x2f;`; a browser reads it back as `/`.
    let unescaped = |html: &str| html.replace("&#x2f;", "/");
    let page = a.get("/dashboard").await;
    assert!(
        unescaped(&page.body).contains("value=\"http://127.0.0.1:3000/api/auth/magic-link\""),
        "{}",
        page.body
    );
    assert!(unescaped(&page.body).contains(">http://localhost:3000</textarea>"));
    let csrf = a.csrf().await;
    let before = s.store().list_projects().await.unwrap().len();
    let refused = a
        .post(
            "/dashboard/projects",
            &[
                ("csrf", &csrf),
                ("name", "Cb App"),
                ("callback_url", "not a url"),
                ("allowed_origins", "http://localhost:3000"),
            ],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.body.contains("is not a full URL") && !refused.body.contains("relative URL"),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("value=\"not a url\""),
        "the typed value is kept"
    );
    assert_eq!(s.store().list_projects().await.unwrap().len(), before);

    let created = a
        .post(
            "/dashboard/projects",
            &[
                ("csrf", &csrf),
                ("name", "Cb App"),
                ("callback_url", "http://127.0.0.1:3000/api/auth/magic-link"),
                ("allowed_origins", "http://localhost:3000"),
            ],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.body);
    let created = a.follow(&created).await;
    assert_eq!(created.status, 200, "{}", created.body);
    let key = between(&created.body, "readonly value=\"", "\"").to_owned();
    assert!(
        unescaped(&created.body).contains(&format!(
            "FUTUREAUTH_API_URL={} FUTUREAUTH_SECRET_KEY={key} cargo run -p futureauth-demo",
            s.server.url()
        )),
        "the key page has the ready-to-paste demo command: {}",
        created.body
    );
    for origin in ["http://127.0.0.1:3000", "http://localhost:3000"] {
        let sent = s
            .send(
                &key,
                &json!({"channel": "magic_link", "destination": "ada@example.com",
                        "code": "V1StGXR8_Z5jdHi6B-myTV1StGXR8_Z5jdHi6B-myTabcdef",
                        "callback_url": format!("{origin}/api/auth/magic-link")}),
            )
            .await;
        assert_eq!(sent.status(), 202, "{origin}");
    }
    let elsewhere = s
        .send(
            &key,
            &json!({"channel": "magic_link", "destination": "bob@example.com",
                    "code": "V1StGXR8_Z5jdHi6B-myTV1StGXR8_Z5jdHi6B-myTabcdef",
                    "callback_url": "http://127.0.0.1:4000/api/auth/magic-link"}),
        )
        .await;
    assert_eq!(elsewhere.status(), 422);
}

async fn send_email(s: &TestServer, key: &str, to: &str) -> reqwest::Response {
    s.send(
        key,
        &json!({"channel": "email", "destination": to, "code": "123456"}),
    )
    .await
}

// ---------------------------------------------------------------- sign-in

async fn only_operators_sign_in_and_strangers_get_the_same_answer(backend: Backend) {
    let (s, fakes) = setup(backend).await;
    let b = Browser::new(&s.server.url());
    // `/` leads to the dashboard, which asks to sign in.
    assert_eq!(b.get("/").await.location.as_deref(), Some("/dashboard"));
    assert_eq!(
        b.get("/dashboard").await.location.as_deref(),
        Some("/dashboard/login")
    );

    let stranger = b
        .post("/dashboard/login", &[("email", "stranger@example.com")])
        .await;
    let operator = b.post("/dashboard/login", &[("email", OWNER)]).await;
    assert_eq!(
        stranger
            .location
            .as_deref()
            .map(|l| l.replace("stranger%40example.com", "X")),
        operator
            .location
            .as_deref()
            .map(|l| l.replace("owner%40example.com", "X")),
    );
    let (stranger, operator) = (b.follow(&stranger).await, b.follow(&operator).await);
    assert_eq!(stranger.status, 200);
    assert_eq!(operator.status, 200);
    assert_eq!(
        stranger.body.replace("stranger@example.com", "X"),
        operator.body.replace(OWNER, "X"),
        "the sign-in page must not reveal who is an operator"
    );
    let code = code_for(&fakes, OWNER).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(emails_to(&fakes, "stranger@example.com").await, 0);
    assert_eq!(emails_to(&fakes, OWNER).await, 1);

    // A stranger guessing gets the wrong-code answer; so does a wrong code.
    let wrong = b
        .post(
            "/dashboard/login/verify",
            &[("email", "stranger@example.com"), ("code", "abc123")],
        )
        .await;
    assert_eq!(wrong.status, 401);
    let wrong = b
        .post(
            "/dashboard/login/verify",
            &[("email", OWNER), ("code", "zzzzzz")],
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.set_cookie.is_none());

    let ok = b
        .post(
            "/dashboard/login/verify",
            &[("email", OWNER), ("code", &code)],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let cookie = ok.set_cookie.expect("session cookie");
    assert!(cookie.starts_with("futureauth_console="), "{cookie}");
    for part in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    // Plain-HTTP loopback: not Secure (else the browser would drop it).
    assert!(!cookie.contains("Secure"), "{cookie}");
    let home = b.get("/dashboard").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains(OWNER) && home.body.contains("No projects yet"));

    // Signing out ends the session on the server.
    let csrf = b.csrf().await;
    let out = b.post("/dashboard/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert_eq!(
        b.get("/dashboard").await.location.as_deref(),
        Some("/dashboard/login")
    );
}

async fn sign_in_is_rate_limited_per_address(backend: Backend) {
    let (s, fakes) = setup(backend).await;
    let b = Browser::new(&s.server.url());
    // The SDK throttles resends to one address from one client (one per 30 s), operator
    // or not; the throttled send answers as any other (it just sends nothing), so the
    // answer tells nobody who is an operator.
    for email in [OWNER, "stranger@example.com"] {
        let page = b.post("/dashboard/login", &[("email", email)]).await;
        assert_eq!(page.status, 303, "{}", page.body);
        let limited = b.post("/dashboard/login", &[("email", email)]).await;
        assert_eq!(limited.status, 303, "{email}");
        assert_eq!(limited.location, page.location);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        emails_to(&fakes, OWNER).await,
        1,
        "the second send was throttled"
    );
    let bad = b
        .post("/dashboard/login", &[("email", "not an email")])
        .await;
    assert_eq!(bad.status, 422);
    let garbage = b
        .post("/dashboard/login/verify", &[("email", "x"), ("code", "")])
        .await;
    assert!((400..500).contains(&garbage.status), "{}", garbage.status);
}

/// Lock-out: a stranger who knows an operator's address guesses wrong codes for it, more
/// than a code survives, from a client of their own. The operator's code is bound to their
/// browser, so it is neither spent nor replaced, and it signs them in.
async fn a_stranger_cannot_lock_an_operator_out(backend: Backend) {
    let (s, fakes) = setup(backend).await;
    let operator = Browser::new(&s.server.url());
    let sent = operator.post("/dashboard/login", &[("email", OWNER)]).await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let code = code_for(&fakes, OWNER).await;
    let stranger = Browser::new(&s.server.url());
    for _ in 0..8 {
        let wrong = stranger
            .post(
                "/dashboard/login/verify",
                &[("email", OWNER), ("code", "zzzzzz")],
            )
            .await;
        assert!((400..500).contains(&wrong.status), "{}", wrong.status);
    }
    let ok = operator
        .post(
            "/dashboard/login/verify",
            &[("email", OWNER), ("code", &code)],
        )
        .await;
    assert_eq!(ok.status, 303, "the operator still signs in: {}", ok.body);
}

async fn a_code_sent_by_one_instance_works_on_another(backend: Backend) {
    let (s, fakes) = setup(backend).await;
    // A second instance on the same database (a restart, or a second replica).
    let other = TestServer::start(&s.db, &config(&s.db, &fakes)).await;
    let first = Browser::new(&s.server.url());
    assert_eq!(
        first
            .post("/dashboard/login", &[("email", OWNER)])
            .await
            .status,
        303
    );
    let code = code_for(&fakes, OWNER).await;
    // The same browser (its code binding cookie) on the other instance.
    let second = first.at(&other.server.url());
    let ok = second
        .post(
            "/dashboard/login/verify",
            &[("email", OWNER), ("code", &code)],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(second.get("/dashboard").await.status, 200);
}

async fn a_removed_operator_is_signed_out_everywhere(backend: Backend) {
    let (s, fakes) = setup(backend).await;
    let b = signed_in(&s, &fakes, OTHER).await;
    let token = cli(
        s.store(),
        &["futureauth-server", "operator", "token", OTHER],
    )
    .await;
    assert_eq!(b.get("/dashboard").await.status, 200);
    let out = cli(
        s.store(),
        &["futureauth-server", "operator", "remove", OTHER],
    )
    .await;
    assert!(out.contains("removed"), "{out}");
    assert_eq!(
        b.get("/dashboard").await.location.as_deref(),
        Some("/dashboard/login")
    );
    let resp = s
        .http
        .get(s.url("/api/v1/projects"))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

async fn magic_link_signs_an_operator_in(backend: Backend) {
    let (s, fakes) = setup(backend).await;
    let b = Browser::new(&s.server.url());
    let sent = b
        .post("/dashboard/login", &[("email", OWNER), ("method", "link")])
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let check = b.follow(&sent).await;
    assert!(check.body.contains("Check your email"), "{}", check.body);
    let body = last_email(&fakes, OWNER).await;
    let text = body["text"].as_str().unwrap_or("");
    let start = text.find("http://").expect("a link in the email");
    let link = text[start..].split_whitespace().next().unwrap().to_owned();
    assert!(
        link.starts_with(&format!("{}/dashboard/auth/magic?token=", s.server.url())),
        "{link}"
    );
    let token = link.split("token=").nth(1).unwrap();
    // Opening the link only shows a button (scanners do not use the token)…
    let confirm = b.get(&format!("/dashboard/auth/magic?token={token}")).await;
    assert_eq!(confirm.status, 200);
    // …posting it signs in, once.
    let ok = b.post("/dashboard/auth/magic", &[("token", token)]).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(b.get("/dashboard").await.status, 200);
    let again = Browser::new(&s.server.url())
        .post("/dashboard/auth/magic", &[("token", token)])
        .await;
    assert_eq!(again.status, 401);
}

// ---------------------------------------------------------------- CSRF and isolation

async fn forms_need_the_session_csrf_token_and_the_console_origin(backend: Backend) {
    let (s, fakes) = setup(backend).await;
    let a = signed_in(&s, &fakes, OWNER).await;
    let other = signed_in(&s, &fakes, OTHER).await;
    let csrf = a.csrf().await;
    let other_csrf = other.csrf().await;
    assert_ne!(csrf, other_csrf);

    let refused = [
        a.post("/dashboard/projects", &[("name", "NoToken")]).await,
        a.post(
            "/dashboard/projects",
            &[("csrf", &other_csrf), ("name", "Foreign")],
        )
        .await,
        a.post_from(
            Some("https://evil.example"),
            "/dashboard/projects",
            &[("csrf", &csrf), ("name", "CrossSite")],
        )
        .await,
        a.post_from(
            None,
            "/dashboard/projects",
            &[("csrf", &csrf), ("name", "NoOrigin")],
        )
        .await,
        a.post_from(
            Some("null"),
            "/dashboard/projects",
            &[("csrf", &csrf), ("name", "NullOrigin")],
        )
        .await,
    ];
    for page in &refused {
        assert_eq!(page.status, 403, "{}", page.body);
    }
    // Sign-in forms are Origin-checked too (login CSRF).
    let cross = Browser::new(&s.server.url())
        .post_from(
            Some("https://evil.example"),
            "/dashboard/login",
            &[("email", OWNER)],
        )
        .await;
    assert_eq!(cross.status, 403);
    let op = s.store().operator_by_email(OWNER).await.unwrap().unwrap();
    assert!(s.store().memberships(&op.id).await.unwrap().is_empty());

    let ok = a
        .post("/dashboard/projects", &[("csrf", &csrf), ("name", "Good")])
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(s.store().memberships(&op.id).await.unwrap().len(), 1);
}

async fn another_projects_pages_and_api_answer_404(backend: Backend) {
    let (s, fakes) = setup(backend).await;
    let a = signed_in(&s, &fakes, OWNER).await;
    let b = signed_in(&s, &fakes, OTHER).await;
    let (a_id, a_key) = create_project(&a, "Alpha").await;
    let (b_id, _) = create_project(&b, "Beta").await;
    let msg = s
        .send_ok(
            &a_key,
            &json!({"channel": "email", "destination": "x@example.com", "code": "123456"}),
        )
        .await;

    for path in [
        format!("/dashboard/projects/{a_id}"),
        format!("/dashboard/projects/{a_id}/deliveries"),
        format!("/dashboard/projects/{a_id}/deliveries/{msg}"),
        format!("/dashboard/projects/{a_id}/settings"),
        format!("/dashboard/projects/{a_id}/members"),
        format!("/dashboard/projects/{a_id}/audit"),
        format!("/dashboard/projects/{a_id}/messages"),
        "/dashboard/projects/prj_doesnotexist".to_owned(),
    ] {
        let page = b.get(&path).await;
        assert_eq!(page.status, 404, "{path}");
        assert!(!page.body.contains("Alpha"), "{path}");
        assert_eq!(
            a.get(&path).await.status,
            if path.contains("doesnotexist") {
                404
            } else {
                200
            },
            "{path}"
        );
    }
    // B's own message id under A's project is 404 too (and the reverse).
    assert_eq!(
        b.get(&format!("/dashboard/projects/{b_id}/deliveries/{msg}"))
            .await
            .status,
        404
    );
    let csrf = b.csrf().await;
    for path in [
        "keys",
        "keys/rotate",
        "settings",
        "delete",
        "members",
        "messages",
    ] {
        let page = b
            .post(
                &format!("/dashboard/projects/{a_id}/{path}"),
                &[
                    ("csrf", &csrf),
                    ("overlap", "0"),
                    ("name", "Pwned"),
                    ("confirm", "Alpha"),
                    ("email", "x@example.com"),
                    ("role", "owner"),
                ],
            )
            .await;
        assert_eq!(page.status, 404, "{path}: {}", page.body);
    }
    assert_eq!(
        s.store().get_project(&a_id).await.unwrap().unwrap().name,
        "Alpha"
    );
    assert_eq!(s.store().key_listing(&a_id).await.unwrap().len(), 1);

    // The management API: B's token sees nothing of A's project.
    let store = s.store();
    let token = cli(store, &["futureauth-server", "operator", "token", OTHER]).await;
    let token = token.trim();
    for (method, path) in [
        ("GET", format!("/api/v1/projects/{a_id}")),
        ("GET", format!("/api/v1/projects/{a_id}/keys")),
        ("GET", format!("/api/v1/projects/{a_id}/deliveries")),
        ("GET", format!("/api/v1/projects/{a_id}/members")),
        ("GET", format!("/api/v1/projects/{a_id}/audit")),
        ("POST", format!("/api/v1/projects/{a_id}/keys")),
        ("DELETE", format!("/api/v1/projects/{a_id}?confirm=Alpha")),
    ] {
        let req = match method {
            "GET" => s.http.get(s.url(&path)),
            "POST" => s.http.post(s.url(&path)),
            _ => s.http.delete(s.url(&path)),
        };
        let resp = req.bearer_auth(token).send().await.unwrap();
        assert_eq!(resp.status(), 404, "{method} {path}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], "not_found");
    }
    let list: Value = s
        .http
        .get(s.url("/api/v1/projects"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], b_id.as_str());
}

// ---------------------------------------------------------------- keys

async fn a_secret_key_is_shown_once_and_works(backend: Backend) {
    let (s, fakes) = setup(backend).await;
    let a = signed_in(&s, &fakes, OWNER).await;
    let (id, key) = create_project(&a, "Acme Console").await;
    assert!(key.starts_with("vx_sec_") && key.len() == 47, "{key}");
    let id_for_send = s
        .send_ok(
            &key,
            &json!({"channel": "email", "destination": "jane@example.com", "code": "654321"}),
        )
        .await;
    s.wait_final(&key, &id_for_send).await;
    let prefix: String = key.chars().take(12).collect();
    for path in ["", "/deliveries", "/settings", "/members", "/audit"] {
        let page = a.get(&format!("/dashboard/projects/{id}{path}")).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(!page.body.contains(&key), "{path} shows the secret again");
    }
    let overview = a.get(&format!("/dashboard/projects/{id}")).await;
    assert!(overview.body.contains(&format!("{prefix}…")));
    assert!(
        !between(&overview.body, "id=\"keys\"", "</table>").contains("never"),
        "the key was used: last use is shown"
    );
    // A second key works next to the first; the page shows it once.
    let csrf = a.csrf().await;
    let page = a
        .post(
            &format!("/dashboard/projects/{id}/keys"),
            &[("csrf", &csrf)],
        )
        .await;
    let page = a.follow(&page).await;
    assert_eq!(page.status, 200);
    let key2 = between(&page.body, "readonly value=\"", "\"").to_owned();
    assert!(page.body.contains("only time the key is shown"));
    assert_eq!(send_email(&s, &key, "a@example.com").await.status(), 202);
    assert_eq!(send_email(&s, &key2, "b@example.com").await.status(), 202);
    // Revoking stops it at once.
    let prefix2: String = key2.chars().take(12).collect();
    let page = a
        .post(
            &format!("/dashboard/projects/{id}/keys/revoke"),
            &[("csrf", &csrf), ("prefix", &prefix2)],
        )
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(send_email(&s, &key2, "c@example.com").await.status(), 401);
    assert_eq!(send_email(&s, &key, "d@example.com").await.status(), 202);
}

/// The attack: a key rotated out with an overlap leaks; the operator revokes it from the
/// CLI (by its prefix, or every key of the project). Revoking must cut the overlap short
/// at once, not leave the leaked key working until the overlap ends.
async fn a_cli_revoke_cuts_a_rotation_overlap_short(backend: Backend) {
    let (s, fakes) = setup(backend).await;
    let a = signed_in(&s, &fakes, OWNER).await;
    let cli = |args: Vec<String>| {
        let store = s.store().clone();
        async move {
            let parsed = futureauth_server::cli::Cli::try_parse_checked_from(
                std::iter::once("futureauth-server".to_string()).chain(args),
            )
            .unwrap();
            let mut out = Vec::new();
            futureauth_server::cli::run_admin(parsed.command.as_ref().unwrap(), &store, &mut out)
                .await
                .unwrap();
            String::from_utf8(out).unwrap()
        }
    };
    let rotate_with_an_hour_of_overlap = |id: String| {
        let a = &a;
        async move {
            let csrf = a.csrf().await;
            let page = a
                .post(
                    &format!("/dashboard/projects/{id}/keys/rotate"),
                    &[("csrf", &csrf), ("overlap", "3600")],
                )
                .await;
            let page = a.follow(&page).await;
            assert_eq!(page.status, 200, "{}", page.body);
            between(&page.body, "readonly value=\"", "\"").to_owned()
        }
    };

    // By prefix: the leaked key stops at once; the new one keeps working.
    let (id, leaked) = create_project(&a, "Leaky").await;
    let new = rotate_with_an_hour_of_overlap(id.clone()).await;
    assert_eq!(
        send_email(&s, &leaked, "l1@example.com").await.status(),
        202
    );
    let prefix: String = leaked.chars().take(12).collect();
    let out = cli(vec![
        "key".into(),
        "revoke".into(),
        "--key-prefix".into(),
        prefix,
    ])
    .await;
    assert!(out.contains("Revoked 1"), "{out}");
    assert_eq!(
        send_email(&s, &leaked, "l2@example.com").await.status(),
        401
    );
    assert_eq!(send_email(&s, &new, "n1@example.com").await.status(), 202);

    // Every key of the project: the one in its overlap too.
    let (id, leaked) = create_project(&a, "Leakier").await;
    let new = rotate_with_an_hour_of_overlap(id.clone()).await;
    assert_eq!(
        send_email(&s, &leaked, "l3@example.com").await.status(),
        202
    );
    let out = cli(vec!["key".into(), "revoke".into(), "--project".into(), id]).await;
    assert!(out.contains("Revoked 2"), "{out}");
    assert_eq!(
        send_email(&s, &leaked, "l4@example.com").await.status(),
        401
    );
    assert_eq!(send_email(&s, &new, "n2@example.com").await.status(), 401);
}

async fn rotation_keeps_the_old_key_working_until_the_overlap_ends(backend: Backend) {
    let (s, fakes) = setup(backend).await;
    let a = signed_in(&s, &fakes, OWNER).await;
    let (id, old) = create_project(&a, "Rotating").await;
    let csrf = a.csrf().await;
    let page = a
        .post(
            &format!("/dashboard/projects/{id}/keys/rotate"),
            &[("csrf", &csrf), ("overlap", "2")],
        )
        .await;
    let page = a.follow(&page).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("keep working for 2 seconds"),
        "{}",
        page.body
    );
    let new = between(&page.body, "readonly value=\"", "\"").to_owned();
    assert_ne!(new, old);
    assert_eq!(send_email(&s, &old, "o1@example.com").await.status(), 202);
    assert_eq!(send_email(&s, &new, "n1@example.com").await.status(), 202);
    let overview = a.get(&format!("/dashboard/projects/{id}")).await;
    assert!(overview.body.contains("data-state=\"expiring\""));
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    assert_eq!(send_email(&s, &old, "o2@example.com").await.status(), 401);
    assert_eq!(send_email(&s, &new, "n2@example.com").await.status(), 202);

    // Without overlap the previous key stops at once; an overlap over 30 days is refused.
    let page = a
        .post(
            &format!("/dashboard/projects/{id}/keys/rotate"),
            &[("csrf", &csrf), ("overlap", "0")],
        )
        .await;
    let page = a.follow(&page).await;
    let newest = between(&page.body, "readonly value=\"", "\"").to_owned();
    assert_eq!(send_email(&s, &new, "n3@example.com").await.status(), 401);
    assert_eq!(
        send_email(&s, &newest, "n4@example.com").await.status(),
        202
    );
    for bad in ["9999999999", "-1", "soon"] {
        let page = a
            .post(
                &format!("/dashboard/projects/{id}/keys/rotate"),
                &[("csrf", &csrf), ("overlap", bad)],
            )
            .await;
        assert_eq!(page.status, 422, "{bad}");
    }
    let audit = a.get(&format!("/dashboard/projects/{id}/audit")).await;
    assert_eq!(audit.body.matches("key.rotated").count(), 2);
    assert!(audit.body.contains(OWNER));
}

// ---------------------------------------------------------------- deliveries

async fn deliveries_are_listed_masked_searchable_and_charted(backend: Backend) {
    let (s, fakes) = setup(backend).await;
    let a = signed_in(&s, &fakes, OWNER).await;
    let (id, key) = create_project(&a, "Deliveries").await;
    let jane = s
        .send_ok(
            &key,
            &json!({"channel": "email", "destination": "jane.doe@example.com", "code": "111111"}),
        )
        .await;
    s.send_ok(
        &key,
        &json!({"channel": "email", "destination": "bob@example.com", "code": "222222"}),
    )
    .await;
    s.wait_final(&key, &jane).await;

    let page = a.get(&format!("/dashboard/projects/{id}/deliveries")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("ja***@example.com"));
    assert!(
        !page.body.contains("jane.doe@example.com"),
        "destination shown in clear"
    );
    assert!(page.body.contains("2 messages"));
    // The chart has today's two emails.
    let chart = between(&page.body, "<svg", "</svg>");
    let counted: i64 = chart
        .split("data-count=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].parse::<i64>().unwrap())
        .sum();
    assert_eq!(counted, 2, "{chart}");

    // Exact-address search, case-insensitive, through the keyed hash only.
    let found = a
        .get(&format!(
            "/dashboard/projects/{id}/deliveries?destination=Jane.Doe%40example.com"
        ))
        .await;
    assert!(found.body.contains("1 message<"), "{}", found.body);
    assert!(found.body.contains(&jane));
    let none = a
        .get(&format!(
            "/dashboard/projects/{id}/deliveries?destination=jane%40example.com"
        ))
        .await;
    assert!(none.body.contains("0 messages"));
    let sent_only = a
        .get(&format!(
            "/dashboard/projects/{id}/deliveries?status=failed&channel=email"
        ))
        .await;
    assert!(sent_only.body.contains("0 messages"));
    let row = s.store().get_message_any(&jane).await.unwrap().unwrap();
    assert!(!format!("{row:?}").contains("jane.doe@example.com"));

    // Bad filters are 400 with the message next to the field, never 500.
    for q in [
        "status=lost",
        "channel=pigeon",
        "from=yesterday",
        "page=0",
        "page=x",
    ] {
        let bad = a
            .get(&format!("/dashboard/projects/{id}/deliveries?{q}"))
            .await;
        assert_eq!(bad.status, 400, "{q}");
        assert!(bad.body.contains("field-error"), "{q}");
    }

    let detail = a
        .get(&format!("/dashboard/projects/{id}/deliveries/{jane}"))
        .await;
    assert_eq!(detail.status, 200);
    assert!(detail.body.contains("Attempt 1: accepted by the provider"));
    assert!(detail.body.contains("id=\"timeline\""));
    assert!(!detail.body.contains("111111"), "the code is never shown");
    assert_eq!(
        a.get(&format!("/dashboard/projects/{id}/deliveries/msg_nope"))
            .await
            .status,
        404
    );
}

async fn the_delivery_log_is_paged(backend: Backend) {
    let (s, fakes) = setup(backend).await;
    let a = signed_in(&s, &fakes, OWNER).await;
    let (id, key) = create_project(&a, "Paged").await;
    for i in 0..27 {
        assert_eq!(
            send_email(&s, &key, &format!("p{i:02}@example.com"))
                .await
                .status(),
            202
        );
    }
    let rows = |body: &str| between(body, "<tbody>", "</tbody>").matches("<tr").count();
    let first = a.get(&format!("/dashboard/projects/{id}/deliveries")).await;
    assert!(first.body.contains("27 messages"));
    assert_eq!(rows(&first.body), 25);
    assert!(first.body.contains("Page 1 of 2"));
    // Newest first: the last send is on page 1, the first on page 2.
    assert!(first.body.contains("p2***@example.com"));
    let second = a
        .get(&format!("/dashboard/projects/{id}/deliveries?page=2"))
        .await;
    assert_eq!(rows(&second.body), 2);
    assert!(second.body.contains("p0***@example.com"));
    assert!(!second.body.contains("Older"));
    let beyond = a
        .get(&format!("/dashboard/projects/{id}/deliveries?page=9"))
        .await;
    assert_eq!(beyond.status, 200);
    assert!(beyond.body.contains("No deliveries"));
}

async fn the_delivery_timeline_shows_each_attempt_and_the_providers_reason(backend: Backend) {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};
    let db = TestDb::new(backend).await;
    let fakes = Fakes::bare().await;
    // Resend fails once with a 500, then accepts.
    Mock::given(method("POST"))
        .and(path("/emails"))
        .respond_with(ResponseTemplate::new(500).set_body_string("resend is having a moment"))
        .up_to_n_times(1)
        .mount(&fakes.resend)
        .await;
    Mock::given(method("POST"))
        .and(path("/emails"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "re_1"})))
        .mount(&fakes.resend)
        .await;
    let store = db.store().await;
    cli(&store, &["futureauth-server", "operator", "add", OWNER]).await;
    let s = TestServer::start(&db, &config(&db, &fakes)).await;
    let key = {
        let op = s.store().operator_by_email(OWNER).await.unwrap().unwrap();
        futureauth_server::service::console::create_project(s.store(), &op, "Retry")
            .await
            .unwrap()
    };
    let id = s
        .send_ok(
            &key.secret_key,
            &json!({"channel": "email", "destination": "r@example.com", "code": "333333"}),
        )
        .await;
    let done = s.wait_final(&key.secret_key, &id).await;
    assert_eq!(done["status"], "sent", "{done}");
    assert_eq!(done["attempts"], 2);
    // Sign in: the sign-in email goes through the (now healthy) fake too.
    let a = signed_in(&s, &fakes, OWNER).await;
    let page = a
        .get(&format!(
            "/dashboard/projects/{}/deliveries/{id}",
            key.project.id
        ))
        .await;
    assert_eq!(page.status, 200);
    let timeline = between(&page.body, "id=\"timeline\"", "</ol>");
    let first = timeline
        .find("Attempt 1: failed, will retry")
        .expect(timeline);
    let second = timeline
        .find("Attempt 2: accepted by the provider")
        .expect(timeline);
    assert!(first < second);
    assert!(
        timeline.contains("500"),
        "the provider's reason is shown: {timeline}"
    );
}

// ---------------------------------------------------------------- settings, members, deletion

async fn settings_errors_sit_next_to_their_field_and_changes_are_audited(backend: Backend) {
    let (s, fakes) = setup(backend).await;
    let a = signed_in(&s, &fakes, OWNER).await;
    let (id, key) = create_project(&a, "Settings").await;
    let csrf = a.csrf().await;
    let path = format!("/dashboard/projects/{id}/settings");
    let bad = a
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("name", "Settings"),
                ("callback_url", "javascript:alert(1)"),
                ("allowed_origins", ""),
                ("email_from", "nobody"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("id=\"error-callback_url\""));
    assert!(bad.body.contains("id=\"error-email_from\""));
    assert!(!bad.body.contains("id=\"error-name\""));
    assert!(
        bad.body.contains("javascript:alert(1)"),
        "the input is kept"
    );
    assert_eq!(
        s.store()
            .get_project(&id)
            .await
            .unwrap()
            .unwrap()
            .callback_url,
        None
    );

    let ok = a
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("name", "Settings Renamed"),
                ("callback_url", "https://app.example.com/auth/magic"),
                ("allowed_origins", "http://localhost:3000"),
                ("email_from", "Acme <login@acme.test>"),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let p = s.store().get_project(&id).await.unwrap().unwrap();
    assert_eq!(p.name, "Settings Renamed");
    assert_eq!(
        p.allowed_origins,
        ["https://app.example.com", "http://localhost:3000"]
    );
    // The settings take effect for sends: the callback origin is now allowed.
    let resp = s
        .send(&key, &json!({"channel": "magic_link", "destination": "m@example.com", "code": "tok_abcdefghijklmnop_0123456789ABCDEFGHIJ", "callback_url": "http://localhost:3000/cb"}))
        .await;
    assert_eq!(resp.status(), 202);
    let audit = a.get(&format!("/dashboard/projects/{id}/audit")).await;
    assert!(audit.body.contains("settings.changed"));
    assert!(audit.body.contains("Settings Renamed"));

    // Per-project rate limits: checked, and enforced on sends.
    let base = [
        ("csrf", csrf.as_str()),
        ("name", "Settings Renamed"),
        ("callback_url", "https://app.example.com/auth/magic"),
        ("allowed_origins", "http://localhost:3000"),
        ("email_from", ""),
    ];
    let mut bad = base.to_vec();
    bad.extend([("limit_per_destination", "0"), ("limit_per_minute", "lots")]);
    let page = a.post(&path, &bad).await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("id=\"error-limit_per_destination\""));
    assert!(page.body.contains("id=\"error-limit_per_minute\""));
    let mut good = base.to_vec();
    good.extend([("limit_per_destination", "2"), ("limit_per_minute", "")]);
    assert_eq!(a.post(&path, &good).await.status, 303);
    let shown = a.get(&path).await;
    assert!(shown.body.contains("name=\"limit_per_destination\" inputmode=\"numeric\" placeholder=\"3 (server default)\" value=\"2\""), "{}", shown.body);
    assert_eq!(
        send_email(&s, &key, "limited@example.com").await.status(),
        202
    );
    assert_eq!(
        send_email(&s, &key, "limited@example.com").await.status(),
        202
    );
    assert_eq!(
        send_email(&s, &key, "limited@example.com").await.status(),
        429
    );
    assert_eq!(
        send_email(&s, &key, "other@example.com").await.status(),
        202
    );
    let audit = a.get(&format!("/dashboard/projects/{id}/audit")).await;
    assert!(audit.body.contains("rate limits → 2 per address"));
}

async fn sms_countries_and_caps_are_edited_checked_and_enforced(backend: Backend) {
    let (s, fakes) = setup(backend).await;
    let a = signed_in(&s, &fakes, OWNER).await;
    let (id, key) = create_project(&a, "Texts").await;
    let csrf = a.csrf().await;
    let path = format!("/dashboard/projects/{id}/settings");
    let shown = a.get(&path).await;
    assert!(
        shown.body.contains("name=\"sms_countries\""),
        "{}",
        shown.body
    );
    assert!(
        shown.body.contains("US, CA, GB"),
        "the default list is shown"
    );
    let before = s.store().get_project(&id).await.unwrap().unwrap();
    let form = |countries: &'static str, per_hour: &'static str, per_day: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("name", "Texts".to_owned()),
            ("sms_countries", countries.to_owned()),
            ("sms_per_country_per_hour", String::new()),
            ("sms_per_hour", per_hour.to_owned()),
            ("sms_per_day", per_day.to_owned()),
        ]
    };
    let post = |f: Vec<(&'static str, String)>| {
        let a = &a;
        let path = &path;
        async move {
            let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            a.post(path, &f).await
        }
    };

    // Unknown countries, a zero, a NUL and a number past u32: each field says what is wrong,
    // nothing is written.
    let bad = post(form("US, XX", "0", "1\u{0}")).await;
    assert_eq!(bad.status, 422);
    for field in ["sms_countries", "sms_per_hour", "sms_per_day"] {
        assert!(
            bad.body.contains(&format!("id=\"error-{field}\"")),
            "{field}: {}",
            bad.body
        );
    }
    assert!(bad.body.contains("US, XX"), "the input is kept");
    assert!(
        !bad.body.contains('\0'),
        "a NUL is never echoed into the page"
    );
    let huge = post(form("GB", "4294967296", "")).await;
    assert_eq!(huge.status, 422);
    assert!(huge.body.contains("id=\"error-sms_per_hour\""));
    assert_eq!(s.store().get_project(&id).await.unwrap().unwrap(), before);

    // Saved: any case and separator, duplicates once.
    let ok = post(form("gb\nDE, de", "2", "")).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let p = s.store().get_project(&id).await.unwrap().unwrap();
    let countries: Vec<_> = p.sms_countries.iter().map(|r| r.as_str()).collect();
    assert_eq!(countries, ["GB", "DE"]);
    assert_eq!(p.sms_caps.per_hour, Some(2));
    assert_eq!(p.sms_caps.per_day, None);
    let audit = a.get(&format!("/dashboard/projects/{id}/audit")).await;
    assert!(
        audit.body.contains("SMS countries → GB, DE"),
        "{}",
        audit.body
    );
    assert!(audit.body.contains("2 per hour"), "{}", audit.body);

    // And enforced on sends: the US is gone, the hourly cap of 2 holds.
    let sms = |d: &str| json!({"channel": "sms", "destination": d, "code": "123456"});
    let us = s.send(&key, &sms("+12015550123")).await;
    assert_eq!(us.status(), 422);
    let v: Value = us.json().await.unwrap();
    assert_eq!(v["error"]["code"], "sms_country_not_allowed");
    for number in ["+447400123456", "+4915112345678"] {
        assert_eq!(s.send(&key, &sms(number)).await.status(), 202, "{number}");
    }
    assert_eq!(s.send(&key, &sms("+447400123457")).await.status(), 429);

    // Empty: no SMS at all.
    assert_eq!(post(form("", "", "")).await.status, 303);
    let p = s.store().get_project(&id).await.unwrap().unwrap();
    assert!(p.sms_countries.is_empty());
    assert_eq!(p.sms_caps, Default::default());
}

async fn a_project_words_its_own_messages(backend: Backend) {
    let (s, fakes) = setup(backend).await;
    let a = signed_in(&s, &fakes, OWNER).await;
    let (id, key) = create_project(&a, "Wording").await;
    let csrf = a.csrf().await;
    let path = format!("/dashboard/projects/{id}/messages");
    let page = a.get(&path).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"preview-sms\""));
    let bad = a
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("email_subject", "no code here"),
                (
                    "email_text",
                    "{{ code }} {% for i in range(9) %}x{% endfor %}",
                ),
                ("sms_text", "{{ code }} {{ secret_key }}"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422);
    for field in ["email_subject", "email_text", "sms_text"] {
        assert!(
            bad.body.contains(&format!("id=\"error-{field}\"")),
            "{field}"
        );
    }
    let ok = a
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("email_subject", "{{ project }} code: {{ code }}"),
                (
                    "email_text",
                    "Hello from {{ project }} <team>\n\nYour code is {{code}}.",
                ),
                ("sms_text", "{{ code }} — {{ project }}"),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let id_email = s
        .send_ok(
            &key,
            &json!({"channel": "email", "destination": "w@example.com", "code": "777777"}),
        )
        .await;
    let id_sms = s
        .send_ok(
            &key,
            &json!({"channel": "sms", "destination": "+12015550123", "code": "888888"}),
        )
        .await;
    s.wait_final(&key, &id_email).await;
    s.wait_final(&key, &id_sms).await;
    let email = last_email(&fakes, "w@example.com").await;
    assert_eq!(email["subject"], "Wording code: 777777");
    assert_eq!(
        email["text"],
        "Hello from Wording <team>\n\nYour code is 777777."
    );
    assert!(email["html"]
        .as_str()
        .unwrap()
        .contains("Hello from Wording &lt;team&gt;"));
    let sms = fakes.sms().await;
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&sms.last().unwrap().body)
            .into_owned()
            .collect();
    assert_eq!(form["Body"], "888888 — Wording");
    // Emptying a field brings the built-in text back.
    let reset = a
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("email_subject", ""),
                ("email_text", ""),
                ("sms_text", ""),
            ],
        )
        .await;
    assert_eq!(reset.status, 303);
    let again = s
        .send_ok(
            &key,
            &json!({"channel": "email", "destination": "w2@example.com", "code": "999999"}),
        )
        .await;
    s.wait_final(&key, &again).await;
    assert_eq!(
        last_email(&fakes, "w2@example.com").await["subject"],
        "999999 is your Wording sign-in code"
    );
    let audit = a.get(&format!("/dashboard/projects/{id}/audit")).await;
    assert!(audit.body.contains("templates.changed"));
    assert!(audit.body.contains("SMS text back to the built-in text"));
}

async fn members_see_the_project_but_only_owners_manage_it(backend: Backend) {
    let (s, fakes) = setup(backend).await;
    let a = signed_in(&s, &fakes, OWNER).await;
    let (id, _) = create_project(&a, "Team").await;
    let csrf = a.csrf().await;
    let invited = a
        .post(
            &format!("/dashboard/projects/{id}/members"),
            &[
                ("csrf", &csrf),
                ("email", "New.Person@Example.com"),
                ("role", "member"),
            ],
        )
        .await;
    assert_eq!(invited.status, 303, "{}", invited.body);
    let bad = a
        .post(
            &format!("/dashboard/projects/{id}/members"),
            &[
                ("csrf", &csrf),
                ("email", "not an email"),
                ("role", "member"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422);

    // The invitee becomes an operator, signs in and sees the project as a member.
    let m = signed_in(&s, &fakes, "new.person@example.com").await;
    let home = m.get("/dashboard").await;
    assert!(home.body.contains("Team"));
    let mcsrf = m.csrf().await;
    for path in ["keys", "keys/rotate", "delete", "members"] {
        let page = m
            .post(
                &format!("/dashboard/projects/{id}/{path}"),
                &[
                    ("csrf", &mcsrf),
                    ("overlap", "0"),
                    ("confirm", "Team"),
                    ("email", "x@example.com"),
                    ("role", "owner"),
                ],
            )
            .await;
        assert_eq!(page.status, 403, "{path}");
    }
    assert_eq!(s.store().key_listing(&id).await.unwrap().len(), 1);
    assert!(s.store().get_project(&id).await.unwrap().is_some());

    // Deleting needs the exact name.
    let wrong = a
        .post(
            &format!("/dashboard/projects/{id}/delete"),
            &[("csrf", &csrf), ("confirm", "team")],
        )
        .await;
    assert_eq!(wrong.status, 422);
    assert!(s.store().get_project(&id).await.unwrap().is_some());
    let audit = a.get(&format!("/dashboard/projects/{id}/audit")).await;
    assert!(audit.body.contains("member.invited"));
    assert!(audit.body.contains("new.person@example.com"));
    let gone = a
        .post(
            &format!("/dashboard/projects/{id}/delete"),
            &[("csrf", &csrf), ("confirm", "Team")],
        )
        .await;
    assert_eq!(gone.status, 303);
    assert!(s.store().get_project(&id).await.unwrap().is_none());
    assert_eq!(
        m.get(&format!("/dashboard/projects/{id}")).await.status,
        404
    );
}

// ---------------------------------------------------------------- management API

async fn the_consoles_own_project_is_listed_nowhere(backend: Backend) {
    let (s, fakes) = setup(backend).await;
    let a = signed_in(&s, &fakes, OWNER).await;
    create_project(&a, "Listed").await;
    assert!(
        s.store()
            .get_project("prj_console")
            .await
            .unwrap()
            .is_some(),
        "signing in created the console's project"
    );
    let json = cli(
        s.store(),
        &["futureauth-server", "project", "list", "--json"],
    )
    .await;
    let list: Value = serde_json::from_str(&json).unwrap();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "{json}");
    assert!(!ids.contains(&"prj_console"));
    let text = cli(s.store(), &["futureauth-server", "project", "list"]).await;
    assert!(
        text.contains("Listed") && !text.contains("prj_console"),
        "{text}"
    );
    let page = a.get("/dashboard").await;
    assert!(page.body.contains("Listed") && !page.body.contains("prj_console"));
}

async fn the_management_api_does_what_the_console_does(backend: Backend) {
    let (s, fakes) = setup(backend).await;
    let token = cli(
        s.store(),
        &[
            "futureauth-server",
            "operator",
            "token",
            OWNER,
            "--name",
            "ci",
        ],
    )
    .await;
    let token = token.trim().to_owned();
    assert!(token.starts_with("vx_op_"), "{token}");
    let api = |method: reqwest::Method, path: &str| {
        s.http.request(method, s.url(path)).bearer_auth(&token)
    };
    // No token, a delivery key or a garbage token: 401.
    let (_, delivery_key) = acme(s.store()).await;
    for auth in [None, Some(delivery_key.as_str()), Some("vx_op_nope")] {
        let mut req = s.http.get(s.url("/api/v1/projects"));
        if let Some(a) = auth {
            req = req.bearer_auth(a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], "invalid_operator_token");
    }

    let resp = api(reqwest::Method::POST, "/api/v1/projects")
        .json(&json!({"name": "Api Project"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    let id = created["project"]["id"].as_str().unwrap().to_owned();
    let key = created["key"]["secret_key"].as_str().unwrap().to_owned();
    assert_eq!(created["project"]["role"], "owner");
    assert_eq!(send_email(&s, &key, "api@example.com").await.status(), 202);

    let bad = api(reqwest::Method::POST, "/api/v1/projects")
        .json(&json!({"name": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let bad = api(reqwest::Method::POST, "/api/v1/projects")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let patched = api(reqwest::Method::PATCH, &format!("/api/v1/projects/{id}"))
        .json(&json!({"callback_url": "ftp://x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 422);
    let v: Value = patched.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("callback_url:"),
        "{v}"
    );
    let patched: Value = api(reqwest::Method::PATCH, &format!("/api/v1/projects/{id}"))
        .json(&json!({"allowed_origins": ["https://a.example.com"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(patched["allowed_origins"], json!(["https://a.example.com"]));
    assert_eq!(patched["name"], "Api Project");

    // SMS countries and caps: replaced, or refused whole with the field named.
    let patch = |body: Value| {
        api(reqwest::Method::PATCH, &format!("/api/v1/projects/{id}"))
            .json(&body)
            .send()
    };
    let sms: Value = patch(json!({"sms_countries": ["fr", "DE"], "sms_per_day": 50}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sms["sms_countries"], json!(["FR", "DE"]), "{sms}");
    assert_eq!(sms["sms_per_day"], 50);
    assert_eq!(sms["sms_per_hour"], Value::Null);
    assert_eq!(sms["allowed_origins"], json!(["https://a.example.com"]));
    for (body, status) in [
        (json!({"sms_countries": ["ZZ"]}), 422),
        (json!({"sms_countries": ["F\u{0}"]}), 422),
        (json!({"sms_countries": ["FR,DE"]}), 422),
        (json!({"sms_per_hour": -1}), 422),
        (json!({"sms_per_hour": 1_000_001}), 422),
        (json!({"sms_per_hour": "many"}), 422),
        (json!({"sms_countries": "FR"}), 422),
    ] {
        let resp = patch(body.clone()).await.unwrap();
        assert_eq!(resp.status(), status, "{body}");
        let v: Value = resp.json().await.unwrap();
        assert!(v["error"]["code"].is_string(), "{body}: {v}");
    }
    let unchanged = s.store().get_project(&id).await.unwrap().unwrap();
    let countries: Vec<_> = unchanged.sms_countries.iter().map(|r| r.as_str()).collect();
    assert_eq!(countries, ["FR", "DE"]);
    assert_eq!(unchanged.sms_caps.per_day, Some(50));
    let sms: Value = patch(json!({"sms_per_day": 0}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        sms["sms_per_day"],
        Value::Null,
        "0 restores the server default"
    );

    // Operator tokens: created (shown once), listed without the secret, revoked.
    let created = api(reqwest::Method::POST, "/api/v1/operator/tokens")
        .json(&json!({"name": "deploys"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let second = created["token"].as_str().unwrap().to_owned();
    assert!(second.starts_with("vx_op_") && second != token, "{created}");
    let listed: Value = api(reqwest::Method::GET, "/api/v1/operator/tokens")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    assert!(!listed.to_string().contains(&second));
    assert_eq!(listed[0]["name"], "deploys");
    let with_second = |path: &str| s.http.get(s.url(path)).bearer_auth(&second).send();
    assert_eq!(with_second("/api/v1/projects").await.unwrap().status(), 200);
    for (name, status) in [("", 422), ("x\u{0}", 422)] {
        let resp = api(reqwest::Method::POST, "/api/v1/operator/tokens")
            .json(&json!({"name": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "{name:?}");
    }
    let prefix = created["token_prefix"].as_str().unwrap();
    let revoke = |prefix: String| {
        api(
            reqwest::Method::DELETE,
            &format!("/api/v1/operator/tokens/{prefix}"),
        )
        .send()
    };
    assert_eq!(revoke(prefix.to_owned()).await.unwrap().status(), 204);
    assert_eq!(with_second("/api/v1/projects").await.unwrap().status(), 401);
    assert_eq!(revoke(prefix.to_owned()).await.unwrap().status(), 404);
    for hostile in ["%00", "vx_op_%00x", &"a".repeat(5000)] {
        let status = revoke(hostile.to_owned()).await.unwrap().status();
        assert!(status.is_client_error(), "{hostile}: {status}");
    }
    // Hostile project ids and key prefixes in paths: 4xx, never a database error.
    for path in [
        "/api/v1/projects/prj_%00".to_owned(),
        format!("/api/v1/projects/{id}/keys/vx_sec_%00"),
        format!("/api/v1/projects/{id}/members/a%00%40example.com"),
    ] {
        for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
            let status = api(method.clone(), &path).send().await.unwrap().status();
            assert!(status.is_client_error(), "{method} {path}: {status}");
        }
    }
    // The first token still works: revoking one token touches no other.
    assert_eq!(
        api(reqwest::Method::GET, "/api/v1/projects")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let rotated = api(
        reqwest::Method::POST,
        &format!("/api/v1/projects/{id}/keys/rotate"),
    )
    .json(&json!({"overlap_secs": 0}))
    .send()
    .await
    .unwrap();
    assert_eq!(rotated.status(), 201);
    let rotated: Value = rotated.json().await.unwrap();
    let new_key = rotated["secret_key"].as_str().unwrap();
    assert_eq!(send_email(&s, &key, "api2@example.com").await.status(), 401);
    assert_eq!(
        send_email(&s, new_key, "api3@example.com").await.status(),
        202
    );
    let keys: Value = api(reqwest::Method::GET, &format!("/api/v1/projects/{id}/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 2);
    assert!(!keys.to_string().contains(new_key));
    let prefix = rotated["key_prefix"].as_str().unwrap();
    let revoked = api(
        reqwest::Method::DELETE,
        &format!("/api/v1/projects/{id}/keys/{prefix}"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(revoked.status(), 204);
    assert_eq!(
        send_email(&s, new_key, "api4@example.com").await.status(),
        401
    );

    let page: Value = api(
        reqwest::Method::GET,
        &format!("/api/v1/projects/{id}/deliveries?destination=API%40example.com"),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(page["items"][0]["destination"], "ap***@example.com");
    let bad = api(
        reqwest::Method::GET,
        &format!("/api/v1/projects/{id}/deliveries?limit=0"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(bad.status(), 422);

    let invited = api(
        reqwest::Method::POST,
        &format!("/api/v1/projects/{id}/members"),
    )
    .json(&json!({"email": OTHER}))
    .send()
    .await
    .unwrap();
    assert_eq!(invited.status(), 201);
    let members: Value = api(
        reqwest::Method::GET,
        &format!("/api/v1/projects/{id}/members"),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(members.as_array().unwrap().len(), 2);
    // The member's own token cannot manage keys.
    let member_token = cli(
        s.store(),
        &["futureauth-server", "operator", "token", OTHER],
    )
    .await;
    let forbidden = s
        .http
        .post(s.url(&format!("/api/v1/projects/{id}/keys")))
        .bearer_auth(member_token.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403);
    let removed = api(
        reqwest::Method::DELETE,
        &format!("/api/v1/projects/{id}/members/{OTHER}"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(removed.status(), 204);

    let audit: Value = api(
        reqwest::Method::GET,
        &format!("/api/v1/projects/{id}/audit"),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "project.created",
        "settings.changed",
        "key.rotated",
        "key.revoked",
        "member.invited",
        "member.removed",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    assert!(
        !audit.to_string().contains(&key),
        "secrets in the audit log"
    );

    let bad = api(
        reqwest::Method::PUT,
        &format!("/api/v1/projects/{id}/templates"),
    )
    .json(&json!({"sms_text": "no code"}))
    .send()
    .await
    .unwrap();
    assert_eq!(bad.status(), 422);
    let put: Value = api(
        reqwest::Method::PUT,
        &format!("/api/v1/projects/{id}/templates"),
    )
    .json(&json!({"sms_text": "{{ code }} for {{ project }}"}))
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(put["sms_text"], "{{ code }} for {{ project }}");
    assert!(put["email_subject"].is_null());
    let got: Value = api(
        reqwest::Method::GET,
        &format!("/api/v1/projects/{id}/templates"),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(got, put);

    let wrong = api(
        reqwest::Method::DELETE,
        &format!("/api/v1/projects/{id}?confirm=nope"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(wrong.status(), 422);
    let deleted = api(
        reqwest::Method::DELETE,
        &format!("/api/v1/projects/{id}?confirm=Api%20Project"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        api(reqwest::Method::GET, &format!("/api/v1/projects/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // The OpenAPI document describes the management routes and the operator token.
    let doc: Value = s
        .http
        .get(s.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for p in [
        "/api/v1/projects",
        "/api/v1/projects/{id}/keys/rotate",
        "/api/v1/projects/{id}/deliveries",
    ] {
        assert!(doc["paths"][p].is_object(), "{p} missing");
    }
    assert!(doc["components"]["securitySchemes"]["operator_token"].is_object());
    let _ = fakes;
}

// ---------------------------------------------------------------- Post/Redirect/Get

/// Every state-changing form answers 303 to a page; reloading that page repeats nothing;
/// a new secret is on it once and gone on the next load.
async fn forms_redirect_and_a_reload_repeats_nothing(backend: Backend) {
    let (s, fakes) = setup(backend).await;
    let a = signed_in(&s, &fakes, OWNER).await;
    let op = s.store().operator_by_email(OWNER).await.unwrap().unwrap();
    let csrf = a.csrf().await;
    // Project created: the key is shown once, on GET …/keys.
    let created = a
        .post(
            "/dashboard/projects",
            &[("csrf", &csrf), ("name", "Reload")],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.body);
    let to = created.location.clone().unwrap();
    let id = to
        .strip_prefix("/dashboard/projects/")
        .and_then(|r| r.strip_suffix("/keys"))
        .unwrap()
        .to_owned();
    let shown = a.get(&to).await;
    assert_eq!(shown.status, 200);
    let key = between(&shown.body, "readonly value=\"", "\"").to_owned();
    assert!(key.starts_with("vx_sec_"), "{}", shown.body);
    let reload = a.get(&to).await;
    assert_eq!(
        reload.location.as_deref(),
        Some(&*format!("/dashboard/projects/{id}"))
    );
    assert!(!reload.body.contains(&key));
    assert_eq!(s.store().memberships(&op.id).await.unwrap().len(), 1);
    let store = s.store().clone();
    let keys = |id: String| {
        let store = store.clone();
        async move { store.key_listing(&id).await.unwrap().len() }
    };
    assert_eq!(keys(id.clone()).await, 1);

    // A key added, then a rotation without overlap: each once, the key shown once.
    for (path, form) in [
        (
            format!("/dashboard/projects/{id}/keys"),
            vec![("csrf", csrf.as_str())],
        ),
        (
            format!("/dashboard/projects/{id}/keys/rotate"),
            vec![("csrf", csrf.as_str()), ("overlap", "0")],
        ),
    ] {
        let before = keys(id.clone()).await;
        let posted = a.post(&path, &form).await;
        assert_eq!(posted.status, 303, "{path}: {}", posted.body);
        let to = posted.location.clone().unwrap();
        assert_eq!(to, format!("/dashboard/projects/{id}/keys"));
        let shown = a.get(&to).await;
        let new_key = between(&shown.body, "readonly value=\"", "\"").to_owned();
        assert!(new_key.starts_with("vx_sec_"));
        let again = a.get(&to).await;
        assert_eq!(again.status, 303);
        assert!(!again.body.contains(&new_key));
        assert_eq!(keys(id.clone()).await, before + 1, "{path} ran once");
        assert_eq!(
            send_email(&s, &new_key, "x@example.com").await.status(),
            202
        );
    }

    // An operator token: shown once on the account page.
    let posted = a
        .post(
            "/dashboard/account/tokens",
            &[("csrf", &csrf), ("name", "ci")],
        )
        .await;
    assert_eq!(posted.location.as_deref(), Some("/dashboard/account"));
    let shown = a.get("/dashboard/account").await;
    let token = between(&shown.body, "readonly value=\"", "\"").to_owned();
    assert!(token.starts_with("vx_op_"), "{}", shown.body);
    assert!(!a.get("/dashboard/account").await.body.contains(&token));
    assert_eq!(s.store().operator_tokens(&op.id).await.unwrap().len(), 1);
    let api = s
        .http
        .get(s.url("/api/v1/projects"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);

    // The webhook's signing secret: shown once, on registration and on rotation.
    let integrations = format!("/dashboard/projects/{id}/integrations");
    for (path, form) in [
        (
            format!("{integrations}/webhook"),
            vec![
                ("csrf", csrf.as_str()),
                ("url", "https://app.example.com/hook"),
            ],
        ),
        (
            format!("{integrations}/webhook/rotate"),
            vec![("csrf", csrf.as_str())],
        ),
    ] {
        let posted = a.post(&path, &form).await;
        assert_eq!(posted.status, 303, "{path}: {}", posted.body);
        let to = posted.location.clone().unwrap();
        let shown = a.get(&to).await;
        let secret = between(&shown.body, "<pre class=\"code\">", "<")
            .replace("&#x2f;", "/")
            .replace("&#x3d;", "=")
            .replace("&#x2b;", "+");
        assert!(secret.starts_with("whsec_"), "{}", shown.body);
        let stored = s.store().project_webhook(&id).await.unwrap().unwrap();
        use secrecy::ExposeSecret;
        assert_eq!(stored.secret.expose_secret(), secret);
        assert!(!a.get(&to).await.body.contains(&secret), "shown twice");
        assert_eq!(
            s.store()
                .project_webhook(&id)
                .await
                .unwrap()
                .unwrap()
                .secret
                .expose_secret(),
            secret,
            "a reload does not rotate again"
        );
    }

    // The other forms answer 303 too.
    let p = format!("/dashboard/projects/{id}");
    for (path, form) in [
        (format!("{p}/settings"), vec![("name", "Reloaded")]),
        (
            format!("{p}/messages"),
            vec![("email_subject", "{{ code }} for Reloaded")],
        ),
        (
            format!("{p}/members"),
            vec![("email", OTHER), ("role", "member")],
        ),
        (format!("{p}/members/remove"), vec![("email", OTHER)]),
        (
            format!("{p}/integrations/test-mode"),
            vec![
                ("destinations", "review@example.com"),
                ("code", "424242"),
                ("allow_in_production", "yes"),
            ],
        ),
        (format!("{p}/integrations/test-mode/off"), vec![]),
        (format!("{p}/integrations/webhook/remove"), vec![]),
    ] {
        let mut form = form;
        form.push(("csrf", &csrf));
        let posted = a.post(&path, &form).await;
        assert_eq!(posted.status, 303, "{path}: {}", posted.body);
        assert_eq!(a.follow(&posted).await.status, 200, "{path}");
    }

    // GET of an address that only takes a form is its page, never a 405; it does nothing.
    for path in [
        "/dashboard/projects".to_owned(),
        "/dashboard/logout".to_owned(),
        "/dashboard/account/tokens".to_owned(),
        "/dashboard/account/tokens/revoke".to_owned(),
        format!("{p}/keys/rotate"),
        format!("{p}/keys/revoke"),
        format!("{p}/delete"),
        format!("{p}/members/remove"),
        format!("{p}/integrations/webhook"),
        format!("{p}/integrations/webhook/rotate"),
        format!("{p}/integrations/webhook/remove"),
        format!("{p}/integrations/test-mode"),
        format!("{p}/integrations/test-mode/off"),
    ] {
        let page = a.get(&path).await;
        assert_eq!(page.status, 303, "{path}");
        assert_eq!(a.follow(&page).await.status, 200, "{path}");
    }
    assert_eq!(keys(id.clone()).await, 3, "no GET made a key");
    assert_eq!(
        a.get("/dashboard").await.status,
        200,
        "GET /dashboard/logout kept the session"
    );
    let delete = a
        .post(
            &format!("{p}/delete"),
            &[("csrf", &csrf), ("confirm", "Reloaded")],
        )
        .await;
    assert_eq!(delete.location.as_deref(), Some("/dashboard"));
    // The code page of the sign-in is a page too (GET of the verify address).
    let code_page = Browser::new(&s.server.url())
        .get("/dashboard/login/verify?email=owner%40example.com&method=code")
        .await;
    assert_eq!(code_page.status, 200);
    assert!(code_page.body.contains("name=\"code\""));
}

// ---------------------------------------------------------------- sign-in alike

/// Five sign-in attempts for an operator's address from five client addresses answer
/// exactly as five for a stranger's, although the operator's run into the server's
/// per-address limit: a limited send just sends nothing.
async fn sign_in_answers_alike_whatever_the_limits_did(backend: Backend) {
    let (s, fakes) = setup(backend).await;
    let attempts = |email: &'static str| {
        let base = s.server.url();
        async move {
            let mut answers = Vec::new();
            for i in 2..7u8 {
                let http = reqwest::Client::builder()
                    .local_address(std::net::IpAddr::from([127, 0, 0, i]))
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .unwrap();
                let resp = http
                    .post(format!("{base}/dashboard/login"))
                    .header("origin", &base)
                    .form(&[("email", email)])
                    .send()
                    .await
                    .unwrap();
                let location = resp
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .replace(&email.replace('@', "%40"), "X");
                let cookies: Vec<String> = resp
                    .headers()
                    .get_all("set-cookie")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .map(|c| c.split('=').next().unwrap_or("").to_owned())
                    .collect();
                let status = resp.status().as_u16();
                let body = resp.text().await.unwrap().replace(email, "X");
                answers.push((status, location, cookies, body));
            }
            answers
        }
    };
    let operator = attempts(OWNER).await;
    let stranger = attempts("stranger@example.com").await;
    assert_eq!(operator, stranger);
    assert_eq!(operator[0].0, 303);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = emails_to(&fakes, OWNER).await;
    assert!((1..5).contains(&sent), "the limit held: {sent} emails");
    assert_eq!(emails_to(&fakes, "stranger@example.com").await, 0);
}

// ---------------------------------------------------------------- __Host- cookies

fn set_cookies(resp: &reqwest::Response) -> Vec<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect()
}

/// Over https (the public URL), every console cookie carries the `__Host-` prefix (Secure,
/// Path=/, no Domain), and a cookie without it (planted by a sibling subdomain) is ignored.
async fn console_cookies_are_host_prefixed_over_https(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fakes = Fakes::accepting().await;
    let store = db.store().await;
    cli(&store, &["futureauth-server", "operator", "add", OWNER]).await;
    let origin = "https://console.example.test";
    let config = futureauth_server::config::Config {
        public_url: Some(origin.into()),
        ..config(&db, &fakes)
    };
    let s = TestServer::start(&db, &config).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let sent = http
        .post(s.url("/dashboard/login"))
        .header("origin", origin)
        .form(&[("email", OWNER)])
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 303);
    let binding = set_cookies(&sent)
        .into_iter()
        .find(|c| c.starts_with("__Host-futureauth_console_otp="))
        .expect("a __Host- binding cookie");
    for part in ["Secure", "Path=/", "HttpOnly"] {
        assert!(binding.contains(part), "{binding}");
    }
    assert!(!binding.contains("Domain"), "{binding}");
    let binding_pair = binding.split(';').next().unwrap().to_owned();
    let code = code_for(&fakes, OWNER).await;
    // The binding without its prefix (as a sibling could plant it) is not the binding.
    let unprefixed = binding_pair.trim_start_matches("__Host-").to_owned();
    let refused = http
        .post(s.url("/dashboard/login/verify"))
        .header("origin", origin)
        .header("cookie", &unprefixed)
        .form(&[("email", OWNER), ("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "an unprefixed binding was accepted");
    let done = http
        .post(s.url("/dashboard/login/verify"))
        .header("origin", origin)
        .header("cookie", &binding_pair)
        .form(&[("email", OWNER), ("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    let session = set_cookies(&done)
        .into_iter()
        .find(|c| c.starts_with("__Host-futureauth_console="))
        .expect("a __Host- session cookie");
    for part in ["Secure", "Path=/", "HttpOnly", "SameSite=Lax"] {
        assert!(session.contains(part), "{session}");
    }
    assert!(!session.contains("Domain"), "{session}");
    let pair = session.split(';').next().unwrap().to_owned();
    let token = pair.split_once('=').unwrap().1.to_owned();
    let with = |cookie: String| {
        http.get(s.url("/dashboard"))
            .header("cookie", cookie)
            .send()
    };
    assert_eq!(with(pair.clone()).await.unwrap().status(), 200);
    let planted = with(format!("futureauth_console={token}")).await.unwrap();
    assert_eq!(
        planted.status(),
        303,
        "an unprefixed session cookie was read"
    );
    assert_eq!(
        planted.headers()["location"].to_str().unwrap(),
        "/dashboard/login"
    );
}

// ---------------------------------------------------------------- the console's name

/// No project may be named like the console, nor make its mail read like the console's:
/// refused on create and rename, by the console, the management API and the CLI, and
/// nothing is written.
async fn no_project_can_pass_for_the_console(backend: Backend) {
    let (s, fakes) = setup(backend).await;
    let a = signed_in(&s, &fakes, OWNER).await;
    let op = s.store().operator_by_email(OWNER).await.unwrap().unwrap();
    let csrf = a.csrf().await;
    let token = futureauth_server::service::console::create_operator_token(s.store(), &op, "t")
        .await
        .unwrap();
    let names = [
        "FutureAuth Console",
        " futureauth   CONSOLE ",
        "FutureAuth",
        "Future-Auth",
    ];
    for name in names {
        let page = a
            .post("/dashboard/projects", &[("csrf", &csrf), ("name", name)])
            .await;
        assert_eq!(page.status, 422, "console accepted {name:?}");
        assert!(page.body.contains("reserved"), "{}", page.body);
        let resp = s
            .http
            .post(s.url("/api/v1/projects"))
            .bearer_auth(&token)
            .json(&json!({"name": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 422, "API accepted {name:?}");
        let cli = futureauth_server::cli::Cli::try_parse_checked_from([
            "futureauth-server",
            "project",
            "create",
            "--name",
            name,
        ])
        .unwrap();
        let mut out = Vec::new();
        let r =
            futureauth_server::cli::run_admin(cli.command.as_ref().unwrap(), s.store(), &mut out)
                .await;
        assert!(r.is_err(), "CLI accepted {name:?}");
    }
    assert!(s.store().memberships(&op.id).await.unwrap().is_empty());
    let listed = s.store().list_projects().await.unwrap();
    assert_eq!(
        listed.len(),
        1,
        "only the console's own project: {listed:?}"
    );
    assert_eq!(listed[0].id, "prj_console");
    // Rename, sender and wording of a real project are refused the same way.
    let (id, _) = create_project(&a, "Acme").await;
    let before = s.store().get_project(&id).await.unwrap();
    let templates_before = s.store().project_templates(&id).await.unwrap();
    for body in [
        json!({"name": "FutureAuth Console"}),
        json!({"email_from": "FutureAuth Console <login@acme.example>"}),
    ] {
        let resp = s
            .http
            .patch(s.url(&format!("/api/v1/projects/{id}")))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 422, "{body}");
    }
    let resp = s
        .http
        .put(s.url(&format!("/api/v1/projects/{id}/templates")))
        .bearer_auth(&token)
        .json(&json!({"email_subject": "{{ code }} is your FutureAuth Console sign-in code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    assert_eq!(s.store().get_project(&id).await.unwrap(), before);
    assert_eq!(
        s.store().project_templates(&id).await.unwrap(),
        templates_before
    );
}

// ---------------------------------------------------------------- keep-alive

/// One HTTP/1.1 response read from a raw connection (head and `Content-Length` body), or
/// `None` if the connection ended or nothing came within 2 s.
async fn read_response(tcp: &mut tokio::net::TcpStream) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return Some(text);
            }
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match tokio::time::timeout(left, tcp.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
}

/// A refusal answered before the body is read (the API's 401, the console's Origin 403)
/// does not break a keep-alive client that sends its body late: the answer says
/// `Connection: close`, or the next request on the connection is answered.
async fn a_refusal_before_the_body_keeps_keep_alive_working(backend: Backend) {
    use tokio::io::AsyncWriteExt;
    let (s, _fakes) = setup(backend).await;
    let addr = s.server.url().trim_start_matches("http://").to_owned();
    let body = r#"{"channel": "email", "destination": "a@example.com", "code": "123456"}"#;
    for (path, headers, status) in [
        (
            "/api/v1/otp/send",
            "Content-Type: application/json\r\n",
            "401",
        ),
        (
            "/dashboard/projects",
            "Origin: https://evil.example\r\nContent-Type: application/x-www-form-urlencoded\r\n",
            "403",
        ),
    ] {
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: {}\r\n\r\n",
            body.len()
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        let first = read_response(&mut tcp)
            .await
            .expect("an answer before the body");
        assert!(first.starts_with(&format!("HTTP/1.1 {status}")), "{first}");
        let closes = first
            .to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n");
        // The body arrives late, then the next request on the same connection.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = tcp.write_all(body.as_bytes()).await;
        let _ = tcp
            .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await;
        let second = read_response(&mut tcp).await;
        assert!(
            closes
                || second
                    .as_deref()
                    .is_some_and(|r| r.starts_with("HTTP/1.1 200")),
            "{path}: no `Connection: close` and the next request got {second:?}"
        );
    }
}

// ---------------------------------------------------------------- behind a proxy

/// Behind a trusted reverse proxy every request comes from the proxy's address: the console
/// counts its sign-in limits per forwarded client, so an attacker's many attempts from one
/// network do not lock out an operator coming from another address.
async fn an_attacker_behind_the_proxy_cannot_lock_operators_out(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fakes = Fakes::accepting().await;
    let store = db.store().await;
    cli(&store, &["futureauth-server", "operator", "add", OWNER]).await;
    let config = futureauth_server::config::Config {
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        ..config(&db, &fakes)
    };
    let s = TestServer::start(&db, &config).await;
    let b = Browser::new(&s.server.url());
    let login = |email: String, client: &'static str| {
        let (http, base) = (b.http.clone(), b.base.clone());
        async move {
            http.post(format!("{base}/dashboard/login"))
                .header("origin", &base)
                .header("x-forwarded-for", format!("{client}, 127.0.0.1"))
                .form(&[("email", email)])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // More attempts than one client may make, for random addresses, from one network.
    for i in 0..30 {
        let status = login(format!("random{i}@example.com"), "203.0.113.9").await;
        assert_eq!(status, 303);
    }
    // The attacker's own client is limited now: its attempt for the operator sends nothing.
    login(OWNER.into(), "203.0.113.9").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        emails_to(&fakes, OWNER).await,
        0,
        "the attacker's client was not limited"
    );
    // The operator, from another address behind the same proxy, still gets a code.
    assert_eq!(login(OWNER.into(), "198.51.100.7").await, 303);
    let code = code_for(&fakes, OWNER).await;
    assert!(!code.is_empty());
}

/// The CLI creates projects through the same settings service as the console and the API:
/// its SMS caps are stored (they used to be dropped on insert), and a bad flag is named.
async fn the_cli_creates_projects_with_their_sms_caps(backend: Backend) {
    let (s, _) = setup(backend).await;
    let (id, _) = cli_create_project(
        s.store(),
        &[
            "--name",
            "Capped",
            "--sms-countries",
            "us,JM",
            "--sms-per-country-per-hour",
            "3",
            "--sms-per-hour",
            "4",
            "--sms-per-day",
            "5",
        ],
    )
    .await;
    let p = s.store().get_project(&id).await.unwrap().unwrap();
    let countries: Vec<_> = p.sms_countries.iter().map(|r| r.as_str()).collect();
    assert_eq!(countries, ["US", "JM"]);
    assert_eq!(
        (
            p.sms_caps.per_country_per_hour,
            p.sms_caps.per_hour,
            p.sms_caps.per_day
        ),
        (Some(3), Some(4), Some(5))
    );
    let listed: Value = serde_json::from_str(
        &cli(
            s.store(),
            &["futureauth-server", "project", "list", "--json"],
        )
        .await,
    )
    .unwrap();
    let listed = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id.as_str())
        .unwrap();
    assert_eq!(listed["sms_per_day"], 5, "{listed}");
    // A flag the service refuses is named; a cap out of range is refused by clap.
    use futureauth_server::cli::{run_admin, Cli, ParseError};
    let create = |flag: &'static str, value: &'static str| {
        let argv = ["futureauth-server", "project", "create", "--name", "Bad"];
        Cli::try_parse_checked_from(argv.into_iter().chain([flag, value]))
    };
    for (flag, value) in [
        ("--email-from", "nobody"),
        ("--sms-per-country-per-hour", "0"),
    ] {
        let parsed = create(flag, value).unwrap();
        let run = run_admin(parsed.command.as_ref().unwrap(), s.store(), &mut Vec::new()).await;
        let err = run.unwrap_err().to_string();
        assert!(err.starts_with(&format!("{flag}: ")), "{err}");
    }
    for cap in ["0", "1000001"] {
        assert!(
            matches!(create("--sms-per-day", cap), Err(ParseError::Usage(_))),
            "{cap}"
        );
    }
}

/// `project create|update --sms-per-country-per-hour` shares its name with the server's global
/// default: a project created or updated without it must not pin (or be overwritten with) the
/// server's value, so that changing the server's default still reaches it.
async fn a_cli_project_follows_the_server_default_unless_given_its_own_cap(backend: Backend) {
    let (s, _) = setup(backend).await;
    let caps = |p: &futureauth_server::store::Project| {
        (
            p.sms_caps.per_country_per_hour,
            p.sms_caps.per_hour,
            p.sms_caps.per_day,
        )
    };
    let (plain, _) = cli_create_project(s.store(), &["--name", "Plain"]).await;
    let p = s.store().get_project(&plain).await.unwrap().unwrap();
    assert_eq!(caps(&p), (None, None, None), "nothing pinned on create");

    let (own, _) = cli_create_project(
        s.store(),
        &["--name", "Own", "--sms-per-country-per-hour", "3"],
    )
    .await;
    cli(
        s.store(),
        &[
            "futureauth-server",
            "project",
            "update",
            "--project",
            &own,
            "--sms-per-day",
            "5",
        ],
    )
    .await;
    let p = s.store().get_project(&own).await.unwrap().unwrap();
    assert_eq!(
        caps(&p),
        (Some(3), None, Some(5)),
        "an update keeps the cap"
    );
}

/// An outage is the 503 page, never "signed out", and says when to come back as the API does.
async fn an_outage_page_says_when_to_come_back(backend: Backend) {
    let (s, fakes) = setup(backend).await;
    let b = signed_in(&s, &fakes, OWNER).await;
    s.store().close().await;
    let resp = b
        .http
        .get(format!("{}/dashboard", b.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(
        resp.headers()["retry-after"],
        futureauth_proto::RETRY_UNAVAILABLE_SECS.to_string()
    );
    assert!(resp.text().await.unwrap().contains("Try again in a moment"));
}

backend_tests!(
    a_cli_project_follows_the_server_default_unless_given_its_own_cap,
    an_outage_page_says_when_to_come_back,
    only_operators_sign_in_and_strangers_get_the_same_answer,
    magic_link_signs_an_operator_in,
    a_removed_operator_is_signed_out_everywhere,
    a_code_sent_by_one_instance_works_on_another,
    sign_in_is_rate_limited_per_address,
    a_stranger_cannot_lock_an_operator_out,
    forms_need_the_session_csrf_token_and_the_console_origin,
    another_projects_pages_and_api_answer_404,
    a_secret_key_is_shown_once_and_works,
    rotation_keeps_the_old_key_working_until_the_overlap_ends,
    a_cli_revoke_cuts_a_rotation_overlap_short,
    deliveries_are_listed_masked_searchable_and_charted,
    the_delivery_log_is_paged,
    the_delivery_timeline_shows_each_attempt_and_the_providers_reason,
    settings_errors_sit_next_to_their_field_and_changes_are_audited,
    sms_countries_and_caps_are_edited_checked_and_enforced,
    members_see_the_project_but_only_owners_manage_it,
    a_project_words_its_own_messages,
    the_management_api_does_what_the_console_does,
    the_consoles_own_project_is_listed_nowhere,
    the_create_form_offers_and_checks_the_callback_and_origins,
    forms_redirect_and_a_reload_repeats_nothing,
    sign_in_answers_alike_whatever_the_limits_did,
    console_cookies_are_host_prefixed_over_https,
    no_project_can_pass_for_the_console,
    a_refusal_before_the_body_keeps_keep_alive_working,
    an_attacker_behind_the_proxy_cannot_lock_operators_out,
    the_cli_creates_projects_with_their_sms_caps,
);
