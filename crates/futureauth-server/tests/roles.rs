//! Every operator action × every role, over real HTTP on loopback, on SQLite and Postgres:
//! through the management API (`/api/v1/projects/…`, operator tokens) and through the
//! console's forms (`/dashboard/projects/…`, signed-in browsers). A member is refused
//! (403 `owners_only` / the "Owners only" page) and a stranger (an operator outside the
//! project) gets the same 404 as for a project that does not exist; in both cases nothing
//! is written, not even an audit entry. The owner then does the same request and it works,
//! so each refusal is the role rule's, not a bad request's.

mod common;

use std::time::Duration;

use common::*;
use futureauth_server::console::forms::SettingsForm;
use futureauth_server::service::console as ops;
use futureauth_server::service::operator::OperatorAction;
use futureauth_server::store::{Role, Store};
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

const OWNER: &str = "owner@acme.test";
const MEMBER: &str = "member@acme.test";
const STRANGER: &str = "stranger@elsewhere.test";
const TARGET: &str = "target@acme.test";

/// Everything an action could change, as one comparable string.
async fn state(store: &Store, id: &str) -> String {
    let project = store.get_project(id).await.unwrap();
    let limits = store.project_limits(id).await.unwrap();
    let templates = store.project_templates(id).await.unwrap();
    let hook = store
        .project_webhook(id)
        .await
        .unwrap()
        .map(|h| (h.url, h.secret.expose_secret().to_owned()));
    let mode = store.test_mode(id).await.unwrap();
    let keys: Vec<_> = store
        .key_listing(id)
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.key_prefix, k.life.revoked_at))
        .collect();
    let members: Vec<_> = store
        .members(id)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|m| (m.email, m.role))
        .collect();
    let audit = store.audit_log(id, 1000).await.unwrap_or_default().len();
    format!("{project:?}|{limits:?}|{templates:?}|{hook:?}|{mode:?}|{keys:?}|{members:?}|{audit}")
}

struct World {
    server: TestServer,
    fakes: Fakes,
    id: String,
    /// A key prefix the owner may revoke (made by the `CreateKey` step).
    spare_key: Option<String>,
}

async fn world(backend: Backend) -> World {
    let db = TestDb::new(backend).await;
    let fakes = Fakes::accepting().await;
    let store = db.store().await;
    let (id, _) = acme(&store).await;
    operator_of(&store, &id, OWNER, Role::Owner).await;
    operator_of(&store, &id, MEMBER, Role::Member).await;
    operator_of(&store, &id, TARGET, Role::Member).await;
    ops::add_operator(&store, STRANGER).await.unwrap();
    let server = TestServer::start(&db, &config(&db, &fakes)).await;
    World {
        server,
        fakes,
        id,
        spare_key: None,
    }
}

/// The actions that change something, in an order where each owner step leaves what the
/// next needs (a webhook to rotate, a key to revoke, …); deletion last.
const WRITES: [OperatorAction; 18] = [
    OperatorAction::Rename,
    OperatorAction::SetCallbackUrl,
    OperatorAction::SetAllowedOrigins,
    OperatorAction::SetSender,
    OperatorAction::SetSms,
    OperatorAction::SetSms, // the caps
    OperatorAction::SetRateLimits,
    OperatorAction::SetTemplates,
    OperatorAction::ManageWebhook, // register
    OperatorAction::ManageWebhook, // rotate the secret
    OperatorAction::ManageWebhook, // remove
    OperatorAction::ManageTestMode,
    OperatorAction::ManageTestMode, // off
    OperatorAction::CreateKey,
    OperatorAction::RevokeKey,
    OperatorAction::RotateKey,
    OperatorAction::InviteMember,
    OperatorAction::RemoveMember,
];

// ---------------------------------------------------------------- management API

async fn token(store: &Store, email: &str) -> String {
    let op = store.operator_by_email(email).await.unwrap().unwrap();
    ops::create_operator_token(store, &op, "roles test")
        .await
        .unwrap()
}

/// The `step`-th write of [`WRITES`] as a management API request.
fn api_call(w: &World, step: usize) -> (Method, String, Option<Value>) {
    let p = format!("/api/v1/projects/{}", w.id);
    let patch = |body: Value| (Method::PATCH, p.clone(), Some(body));
    match step {
        0 => patch(json!({"name": "Acme Renamed"})),
        1 => patch(json!({"callback_url": "https://evil.test/steal"})),
        2 => patch(json!({"allowed_origins": ["https://evil.test"]})),
        3 => patch(json!({"email_from": "Acme Security <security@evil.test>"})),
        4 => patch(json!({"sms_countries": ["US", "CU", "KP"]})),
        5 => patch(json!({"sms_per_day": 1000000})),
        6 => patch(json!({"limit_per_minute": 100000})),
        7 => (
            Method::PUT,
            format!("{p}/templates"),
            Some(json!({"email_subject": "{{ code }} urgent: confirm at evil.test"})),
        ),
        8 => (
            Method::PUT,
            format!("{p}/webhook"),
            Some(json!({"url": "https://evil.test/hook"})),
        ),
        9 => (Method::POST, format!("{p}/webhook/rotate"), None),
        10 => (Method::DELETE, format!("{p}/webhook"), None),
        11 => (
            Method::PUT,
            format!("{p}/test-mode"),
            Some(json!({
                "destinations": ["victim@example.com"], "code": "111111",
                "allow_in_production": true,
            })),
        ),
        12 => (Method::DELETE, format!("{p}/test-mode"), None),
        13 => (Method::POST, format!("{p}/keys"), None),
        14 => (
            Method::DELETE,
            format!(
                "{p}/keys/{}",
                w.spare_key.as_deref().unwrap_or("vx_sec_nokey")
            ),
            None,
        ),
        15 => (
            Method::POST,
            format!("{p}/keys/rotate"),
            Some(json!({"overlap_secs": 0})),
        ),
        16 => (
            Method::POST,
            format!("{p}/members"),
            Some(json!({"email": "mallory@evil.test", "role": "owner"})),
        ),
        17 => (Method::DELETE, format!("{p}/members/{TARGET}"), None),
        _ => unreachable!(),
    }
}

async fn api(w: &World, token: &str, call: &(Method, String, Option<Value>)) -> (u16, Value) {
    let mut req = w
        .server
        .http
        .request(call.0.clone(), w.server.url(&call.1))
        .bearer_auth(token);
    if let Some(body) = &call.2 {
        req = req.json(body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn every_api_route_checks_the_role(backend: Backend) {
    let mut w = world(backend).await;
    let store = w.server.store().clone();
    let (owner, member, stranger) = (
        token(&store, OWNER).await,
        token(&store, MEMBER).await,
        token(&store, STRANGER).await,
    );
    for action in OperatorAction::ALL {
        let covered = matches!(action, OperatorAction::Read | OperatorAction::DeleteProject)
            || WRITES.contains(&action);
        assert!(covered, "{action:?} has no step in this test");
    }
    // Reading: members as owners; strangers see nothing.
    for path in [
        "",
        "/keys",
        "/deliveries",
        "/members",
        "/audit",
        "/templates",
    ] {
        let call = (
            Method::GET,
            format!("/api/v1/projects/{}{path}", w.id),
            None,
        );
        assert_eq!(api(&w, &owner, &call).await.0, 200, "owner GET {path}");
        assert_eq!(api(&w, &member, &call).await.0, 200, "member GET {path}");
        let (status, body) = api(&w, &stranger, &call).await;
        assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")));
    }
    for (step, action) in WRITES.iter().enumerate() {
        let call = api_call(&w, step);
        let before = state(&store, &w.id).await;
        let (status, body) = api(&w, &member, &call).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (403, Some("owners_only")),
            "member {action:?} {call:?}: {body}"
        );
        assert_eq!(
            state(&store, &w.id).await,
            before,
            "member {action:?}: written"
        );
        let (status, body) = api(&w, &stranger, &call).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("not_found")),
            "stranger {action:?} {call:?}: {body}"
        );
        assert_eq!(
            state(&store, &w.id).await,
            before,
            "stranger {action:?}: written"
        );
        let (status, body) = api(&w, &owner, &call).await;
        assert!(
            (200..300).contains(&status),
            "owner {action:?} {call:?}: {status} {body}"
        );
        assert_ne!(
            state(&store, &w.id).await,
            before,
            "owner {action:?} changed nothing"
        );
        if *action == OperatorAction::CreateKey {
            w.spare_key = Some(body["key_prefix"].as_str().unwrap().to_owned());
        }
    }
    // Deletion last: refused for the member and the stranger, then the owner's.
    let call = (
        Method::DELETE,
        format!("/api/v1/projects/{}?confirm=Acme%20Renamed", w.id),
        None,
    );
    let before = state(&store, &w.id).await;
    assert_eq!(api(&w, &member, &call).await.0, 403);
    assert_eq!(api(&w, &stranger, &call).await.0, 404);
    assert_eq!(state(&store, &w.id).await, before);
    assert_eq!(api(&w, &owner, &call).await.0, 204);
    assert!(store.get_project(&w.id).await.unwrap().is_none());
}

// ---------------------------------------------------------------- console forms

/// A browser-like client: keeps cookies, sends the console's Origin on posts.
struct Browser {
    http: reqwest::Client,
    base: String,
}

impl Browser {
    async fn post(&self, path: &str, form: &[(String, String)]) -> (u16, String) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("origin", &self.base)
            .form(form)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    async fn csrf(&self) -> String {
        let (status, body) = self.get("/dashboard").await;
        assert_eq!(status, 200, "{body}");
        let start = body.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
        body[start..start + body[start..].find('"').unwrap()].to_owned()
    }
}

/// Signs `email` in to the console with the code the fake Resend receives.
async fn sign_in(w: &World, email: &str) -> Browser {
    let b = Browser {
        http: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        base: w.server.server.url(),
    };
    let (status, body) = b
        .post("/dashboard/login", &[("email".into(), email.into())])
        .await;
    assert!(status == 303 || status == 200, "{status} {body}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let code = loop {
        let found = w.fakes.emails().await.iter().rev().find_map(|r| {
            let body: Value = serde_json::from_slice(&r.body).ok()?;
            (body["to"] == json!([email])).then(|| {
                let subject = body["subject"].as_str().unwrap_or("");
                subject.split_whitespace().next().unwrap_or("").to_owned()
            })
        });
        if let Some(code) = found {
            break code;
        }
        assert!(std::time::Instant::now() < deadline, "no code for {email}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let (status, body) = b
        .post(
            "/dashboard/login/verify",
            &[("email".into(), email.into()), ("code".into(), code)],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    b
}

/// The project's settings form as it stands, with `field` set to `value`.
async fn settings_form(store: &Store, id: &str, field: &str, value: &str) -> Vec<(String, String)> {
    let project = store.get_project(id).await.unwrap().unwrap();
    let limits = ops::limits(store, id).await.unwrap();
    let current = serde_json::to_value(SettingsForm::of(&project, limits)).unwrap();
    let mut form: Vec<(String, String)> = current
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
        .collect();
    for (k, v) in form.iter_mut() {
        if k == field {
            *v = value.to_owned();
        }
    }
    form
}

/// The `step`-th write of [`WRITES`] as a console form post (without its CSRF token).
async fn console_call(w: &World, step: usize) -> (String, Vec<(String, String)>) {
    let store = w.server.store();
    let p = format!("/dashboard/projects/{}", w.id);
    let pairs = |v: &[(&str, &str)]| {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    let settings = |field: &'static str, value: &'static str| {
        let path = format!("{p}/settings");
        async move { (path, settings_form(store, &w.id, field, value).await) }
    };
    match step {
        0 => settings("name", "Acme Renamed").await,
        1 => settings("callback_url", "https://evil.test/steal").await,
        2 => settings("allowed_origins", "https://evil.test").await,
        3 => settings("email_from", "Acme Security <security@evil.test>").await,
        4 => settings("sms_countries", "US, CU, KP").await,
        5 => settings("sms_per_day", "1000000").await,
        6 => settings("limit_per_minute", "100000").await,
        7 => (
            format!("{p}/messages"),
            pairs(&[("email_subject", "{{ code }} urgent: confirm at evil.test")]),
        ),
        8 => (
            format!("{p}/integrations/webhook"),
            pairs(&[("url", "https://evil.test/hook")]),
        ),
        9 => (format!("{p}/integrations/webhook/rotate"), vec![]),
        10 => (format!("{p}/integrations/webhook/remove"), vec![]),
        11 => (
            format!("{p}/integrations/test-mode"),
            pairs(&[
                ("destinations", "victim@example.com"),
                ("code", "111111"),
                ("allow_in_production", "yes"),
            ]),
        ),
        12 => (format!("{p}/integrations/test-mode/off"), vec![]),
        13 => (format!("{p}/keys"), vec![]),
        14 => (
            format!("{p}/keys/revoke"),
            pairs(&[("prefix", w.spare_key.as_deref().unwrap_or("vx_sec_nokey"))]),
        ),
        15 => (format!("{p}/keys/rotate"), pairs(&[("overlap", "0")])),
        16 => (
            format!("{p}/members"),
            pairs(&[("email", "mallory@evil.test"), ("role", "owner")]),
        ),
        17 => (format!("{p}/members/remove"), pairs(&[("email", TARGET)])),
        _ => unreachable!(),
    }
}

async fn every_console_form_checks_the_role(backend: Backend) {
    let mut w = world(backend).await;
    let store = w.server.store().clone();
    let owner = sign_in(&w, OWNER).await;
    let member = sign_in(&w, MEMBER).await;
    let stranger = sign_in(&w, STRANGER).await;
    let tokens = (
        owner.csrf().await,
        member.csrf().await,
        stranger.csrf().await,
    );
    let with_csrf = |csrf: &str, form: &[(String, String)]| {
        let mut f = form.to_vec();
        f.push(("csrf".into(), csrf.to_owned()));
        f
    };
    // Reading: members see every page; strangers get the 404 page.
    for page in [
        "",
        "/settings",
        "/messages",
        "/members",
        "/audit",
        "/deliveries",
        "/integrations",
    ] {
        let path = format!("/dashboard/projects/{}{page}", w.id);
        assert_eq!(owner.get(&path).await.0, 200, "owner {path}");
        assert_eq!(member.get(&path).await.0, 200, "member {path}");
        assert_eq!(stranger.get(&path).await.0, 404, "stranger {path}");
    }
    // The member's settings and messages forms are shown read-only.
    let (_, settings) = member
        .get(&format!("/dashboard/projects/{}/settings", w.id))
        .await;
    assert!(settings.contains("<fieldset class=\"contents\" disabled>"));
    for (step, action) in WRITES.iter().enumerate() {
        let (path, form) = console_call(&w, step).await;
        let before = state(&store, &w.id).await;
        let (status, body) = member.post(&path, &with_csrf(&tokens.1, &form)).await;
        assert_eq!(status, 403, "member {action:?} {path}: {body}");
        assert!(body.contains("Owners only"), "{body}");
        assert_eq!(
            state(&store, &w.id).await,
            before,
            "member {action:?}: written"
        );
        let (status, body) = stranger.post(&path, &with_csrf(&tokens.2, &form)).await;
        assert_eq!(status, 404, "stranger {action:?} {path}: {body}");
        assert_eq!(
            state(&store, &w.id).await,
            before,
            "stranger {action:?}: written"
        );
        let (status, body) = owner.post(&path, &with_csrf(&tokens.0, &form)).await;
        assert!(
            status == 303 || status == 200 || status == 201,
            "owner {action:?} {path}: {status} {body}"
        );
        assert_ne!(
            state(&store, &w.id).await,
            before,
            "owner {action:?} changed nothing"
        );
        if *action == OperatorAction::CreateKey {
            let keys = store.key_listing(&w.id).await.unwrap();
            w.spare_key = Some(keys[0].key_prefix.clone());
        }
    }
    let path = format!("/dashboard/projects/{}/delete", w.id);
    let form = vec![("confirm".to_owned(), "Acme Renamed".to_owned())];
    let before = state(&store, &w.id).await;
    assert_eq!(
        member.post(&path, &with_csrf(&tokens.1, &form)).await.0,
        403
    );
    assert_eq!(
        stranger.post(&path, &with_csrf(&tokens.2, &form)).await.0,
        404
    );
    assert_eq!(state(&store, &w.id).await, before);
    assert_eq!(owner.post(&path, &with_csrf(&tokens.0, &form)).await.0, 303);
    assert!(store.get_project(&w.id).await.unwrap().is_none());
}

backend_tests!(
    every_api_route_checks_the_role,
    every_console_form_checks_the_role
);
