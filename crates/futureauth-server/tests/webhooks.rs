//! Provider status webhooks on SQLite and Postgres: signed events from a local client move a
//! message's state forward and never back, redelivered events are recorded once, and
//! unsigned, forged, replayed or mis-addressed requests change nothing.

mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::*;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

/// The Svix signing key the test configures (`whsec_` + its base64).
const SVIX_KEY: &[u8] = b"futureauth-webhook-test-key-0123";
/// The public URL the test configures; Twilio signs the callback URL under it.
const PUBLIC_URL: &str = "https://auth.example.test";

fn now_secs() -> i64 {
    futureauth_server::service::now_ms() / 1000
}

/// What Svix (Resend) sends: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`.
fn svix_signature(key: &[u8], id: &str, ts: i64, body: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{id}.{ts}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// What Twilio sends: base64 HMAC-SHA1 of the URL and the fields sorted by name.
fn twilio_signature(token: &str, url: &str, fields: &[(&str, &str)]) -> String {
    let mut sorted = fields.to_vec();
    sorted.sort();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

struct Env {
    s: TestServer,
    key: String,
    fakes: Fakes,
}

async fn start(backend: Backend, webhooks: bool) -> Env {
    let db = TestDb::new(backend).await;
    let fakes = Fakes::accepting().await;
    let store = db.store().await;
    let (_, key) = acme(&store).await;
    let mut cfg = config(&db, &fakes);
    if webhooks {
        cfg.providers.resend.resend_webhook_secret =
            Some(format!("whsec_{}", STANDARD.encode(SVIX_KEY)).into());
        cfg.public_url = Some(PUBLIC_URL.into());
    }
    let s = TestServer::start(&db, &cfg).await;
    Env { s, key, fakes }
}

impl Env {
    async fn resend(&self, headers: &[(&str, String)], body: &str) -> (u16, Value) {
        let mut request = self
            .s
            .http
            .post(self.s.url("/webhooks/resend"))
            .header("content-type", "application/json")
            .body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let resp = request.send().await.unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    /// A correctly signed Resend event with Svix id `event_id`, sent `age` seconds late.
    async fn signed_resend(&self, event_id: &str, age: i64, body: &Value) -> (u16, Value) {
        let body = body.to_string();
        let ts = now_secs() - age;
        let headers = [
            ("svix-id", event_id.to_owned()),
            ("svix-timestamp", ts.to_string()),
            (
                "svix-signature",
                svix_signature(SVIX_KEY, event_id, ts, &body),
            ),
        ];
        self.resend(&headers, &body).await
    }

    async fn twilio(&self, fields: &[(&str, &str)], signature: &str) -> (u16, Value) {
        let resp = self
            .s
            .http
            .post(self.s.url("/webhooks/twilio"))
            .header("x-twilio-signature", signature)
            .form(fields)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    async fn message(&self, id: &str) -> Value {
        let (code, v) = self.s.status(&self.key, id).await;
        assert_eq!(code, 200, "{v}");
        v
    }
}

fn event(kind: &str, email_id: &str, at: &str, extra: Value) -> Value {
    let mut data = json!({ "email_id": email_id, "to": ["ada@example.com"] });
    if let (Some(data), Some(extra)) = (data.as_object_mut(), extra.as_object()) {
        data.extend(extra.clone());
    }
    json!({ "type": kind, "created_at": at, "data": data })
}

async fn resend_events_move_a_message_forward_only(backend: Backend) {
    let env = start(backend, true).await;
    let body = json!({"channel": "email", "destination": "ada@example.com", "code": "123456"});
    let id = env.s.send_ok(&env.key, &body).await;
    let sent = env.s.wait_final(&env.key, &id).await;
    assert_eq!(sent["status"], "sent", "{sent}");
    // The fake Resend answered `{"id": "re_1"}`: its events name the message by that id.
    let delivered = event(
        "email.delivered",
        "re_1",
        "2026-11-29T01:00:02.000Z",
        json!({}),
    );

    // Forgeries change nothing: no signature, a wrong key, a replay from 10 minutes ago.
    let body_text = delivered.to_string();
    let (code, v) = env.resend(&[], &body_text).await;
    assert_eq!(
        (code, v["error"]["code"].clone()),
        (401, json!("invalid_signature")),
        "{v}"
    );
    let ts = now_secs();
    let forged = [
        ("svix-id", "evt_forged".to_owned()),
        ("svix-timestamp", ts.to_string()),
        (
            "svix-signature",
            svix_signature(b"not-the-key", "evt_forged", ts, &body_text),
        ),
    ];
    assert_eq!(env.resend(&forged, &body_text).await.0, 401);
    let (code, v) = env.signed_resend("evt_replayed", 600, &delivered).await;
    assert_eq!(
        code, 401,
        "a signed event older than the tolerance is a replay: {v}"
    );
    let m = env.message(&id).await;
    assert_eq!(m["status"], "sent");
    assert_eq!(m["events"], json!([]));

    // Delivered, then the same event again (a redelivery): recorded once.
    let (code, v) = env.signed_resend("evt_1", 0, &delivered).await;
    assert_eq!((code, v["result"].clone()), (200, json!("recorded")), "{v}");
    let (code, v) = env.signed_resend("evt_1", 0, &delivered).await;
    assert_eq!(
        (code, v["result"].clone()),
        (200, json!("duplicate")),
        "{v}"
    );
    let m = env.message(&id).await;
    assert_eq!(m["status"], "delivered", "{m}");
    assert_eq!(m["events"].as_array().unwrap().len(), 1, "{m}");

    // Marked as spam, then a bounce that happened earlier arrives late: kept in the
    // history, but the message does not move back.
    let complained = event(
        "email.complained",
        "re_1",
        "2026-11-29T01:05:00.000Z",
        json!({}),
    );
    assert_eq!(env.signed_resend("evt_2", 0, &complained).await.0, 200);
    let bounced = event(
        "email.bounced",
        "re_1",
        "2026-11-29T01:00:01.000Z",
        json!({"bounce": {"message": "Mailbox full", "type": "Transient", "subType": "MailboxFull"}}),
    );
    assert_eq!(env.signed_resend("evt_3", 0, &bounced).await.0, 200);
    let m = env.message(&id).await;
    assert_eq!(m["status"], "complained", "{m}");
    let states: Vec<&str> = m["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        ["bounced", "delivered", "complained"],
        "in the order they happened"
    );
    assert_eq!(
        m["events"][0]["reason"],
        "Transient/MailboxFull Mailbox full"
    );
    assert_eq!(m["events"][0]["at"], "2026-11-29T01:00:01.000Z");

    // Events that move nothing, and events we cannot use.
    let opened = event(
        "email.opened",
        "re_1",
        "2026-11-29T01:06:00.000Z",
        json!({}),
    );
    let (code, v) = env.signed_resend("evt_4", 0, &opened).await;
    assert_eq!((code, v["result"].clone()), (200, json!("ignored")), "{v}");
    let unknown = event(
        "email.delivered",
        "re_unknown",
        "2026-11-29T01:06:00.000Z",
        json!({}),
    );
    let (code, v) = env.signed_resend("evt_5", 0, &unknown).await;
    assert_eq!(
        (code, v["error"]["code"].clone()),
        (404, json!("unknown_message")),
        "{v}"
    );
    let (code, v) = env
        .signed_resend("evt_6", 0, &json!(["not", "an", "event"]))
        .await;
    assert_eq!(
        (code, v["error"]["code"].clone()),
        (400, json!("invalid_event")),
        "{v}"
    );
    assert_eq!(
        env.message(&id).await["events"].as_array().unwrap().len(),
        3
    );

    // A delivered message is finished: the retention clean-up takes it and its history.
    let store = env.s.store();
    let removed = store
        .delete_finished_messages(
            futureauth_server::clock::UnixMillis::now() + std::time::Duration::from_millis(1),
            100,
        )
        .await
        .unwrap();
    assert_eq!(removed, 1);
    assert!(store.message_events(&id).await.unwrap().is_empty());
}

async fn twilio_callbacks_are_checked_against_the_configured_url(backend: Backend) {
    let env = start(backend, true).await;
    let body = json!({"channel": "sms", "destination": "+12015550199", "code": "123456"});
    let id = env.s.send_ok(&env.key, &body).await;
    assert_eq!(env.s.wait_final(&env.key, &id).await["status"], "sent");
    // Twilio was told where to report: our configured public URL.
    let sms = env.fakes.sms().await;
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&sms[0].body)
        .into_owned()
        .collect();
    let callback = format!("{PUBLIC_URL}/webhooks/twilio");
    assert!(
        form.contains(&("StatusCallback".to_owned(), callback.clone())),
        "{form:?}"
    );

    let fields = [("MessageSid", "SM1"), ("MessageStatus", "delivered")];
    // Signed for the URL the request itself names (what a forger controls with `Host`):
    // refused, only the configured URL counts.
    let from_request = env.s.url("/webhooks/twilio");
    let (code, _) = env
        .twilio(
            &fields,
            &twilio_signature(TWILIO_TOKEN, &from_request, &fields),
        )
        .await;
    assert_eq!(code, 401);
    let (code, _) = env
        .twilio(
            &fields,
            &twilio_signature("another-token", &callback, &fields),
        )
        .await;
    assert_eq!(code, 401);
    assert_eq!(env.message(&id).await["status"], "sent");

    let (code, v) = env
        .twilio(&fields, &twilio_signature(TWILIO_TOKEN, &callback, &fields))
        .await;
    assert_eq!((code, v["result"].clone()), (200, json!("recorded")), "{v}");
    // A later failure report from the carrier moves it on, with Twilio's reason.
    let failed = [
        ("MessageSid", "SM1"),
        ("MessageStatus", "undelivered"),
        ("ErrorCode", "30003"),
    ];
    let (code, _) = env
        .twilio(&failed, &twilio_signature(TWILIO_TOKEN, &callback, &failed))
        .await;
    assert_eq!(code, 200);
    let m = env.message(&id).await;
    assert_eq!(m["status"], "undelivered", "{m}");
    assert_eq!(m["status_reason"], "Twilio error 30003");
}

/// An unconfigured route first checks the signature headers it requires (401 without them,
/// as on a configured server), then answers 404 `webhook_not_configured`.
async fn unconfigured_webhooks_are_not_found(backend: Backend) {
    let env = start(backend, false).await;
    let (code, v) = env.resend(&[], "{}").await;
    assert_eq!(
        (code, v["error"]["code"].clone()),
        (401, json!("invalid_signature"))
    );
    assert!(
        v["error"]["message"].as_str().unwrap().contains("svix-id"),
        "{v}"
    );
    let signed = [
        ("svix-id", "msg_1".to_owned()),
        ("svix-timestamp", now_secs().to_string()),
        ("svix-signature", "v1,AAAA".to_owned()),
    ];
    let (code, v) = env.resend(&signed[1..], "{}").await;
    assert_eq!(
        (code, v["error"]["code"].clone()),
        (401, json!("invalid_signature"))
    );
    let (code, v) = env.resend(&signed, "{}").await;
    assert_eq!(
        (code, v["error"]["code"].clone()),
        (404, json!("webhook_not_configured"))
    );
    let resp = env
        .s
        .http
        .post(env.s.url("/webhooks/twilio"))
        .form(&[("MessageSid", "SM1")])
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        (status, v["error"]["code"].clone()),
        (401, json!("invalid_signature"))
    );
    let (code, v) = env.twilio(&[("MessageSid", "SM1")], "x").await;
    assert_eq!(
        (code, v["error"]["code"].clone()),
        (404, json!("webhook_not_configured"))
    );
}

/// The project's own webhook hears of each move, signed as `futureauth::webhook::verify`
/// checks, through the durable outbox: an event whose delivery was cut off by a crash is
/// delivered by the next server, with the same event id; a rotated secret signs from then on
/// and the old one no longer verifies.
async fn project_webhooks_are_signed_and_survive_a_restart(backend: Backend) {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let db = TestDb::new(backend).await;
    let fakes = Fakes::accepting().await;
    let store = db.store().await;
    let (project_id, key) = acme(&store).await;
    let app = MockServer::start().await;
    // The first delivery hangs until the server that sends it is gone.
    Mock::given(method("POST"))
        .and(path("/hooks/futureauth"))
        .respond_with(ResponseTemplate::new(200).set_delay(std::time::Duration::from_secs(30)))
        .up_to_n_times(1)
        .mount(&app)
        .await;
    Mock::given(method("POST"))
        .and(path("/hooks/futureauth"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&app)
        .await;
    let url = format!("{}/hooks/futureauth", app.uri());
    let owner = owner_of(&store, &project_id).await;
    let (_, secret) =
        futureauth_server::service::project_webhook::set(&store, &owner, &project_id, &url, false)
            .await
            .unwrap();
    let secret = secret.expect("a first registration gets a secret");

    let mut cfg = config(&db, &fakes);
    cfg.providers.resend.resend_webhook_secret =
        Some(format!("whsec_{}", STANDARD.encode(SVIX_KEY)).into());
    cfg.delivery.lease_ms = 2_500;
    let first = Env {
        s: TestServer::start(&db, &cfg).await,
        key: key.clone(),
        fakes,
    };
    let body = json!({"channel": "email", "destination": "ada@example.com", "code": "123456"});
    let id = first.s.send_ok(&key, &body).await;
    assert_eq!(first.s.wait_final(&key, &id).await["status"], "sent");
    let delivered = event(
        "email.delivered",
        "re_1",
        "2026-11-29T01:00:02.000Z",
        json!({}),
    );
    assert_eq!(first.signed_resend("evt_d", 0, &delivered).await.0, 200);
    let received = |n: usize| {
        let app = &app;
        async move { app.received_requests().await.unwrap_or_default().len() >= n }
    };
    eventually(10, "the first delivery reaches the app", || received(1)).await;
    // Crash while the app has not answered: the event stays queued under its lease.
    first.s.server.abort();
    let second = TestServer::start(&db, &cfg).await;
    eventually(15, "the next server delivers it again", || received(2)).await;

    let requests = app.received_requests().await.unwrap();
    let ids: Vec<&str> = requests
        .iter()
        .map(|r| r.headers.get("webhook-id").unwrap().to_str().unwrap())
        .collect();
    assert_eq!(ids[0], ids[1], "a redelivery carries the same event id");
    let verify = standard_webhooks_verify;
    let event_seen = verify(&secret, &requests[1]).expect("signed with the project's secret");
    assert_eq!(event_seen["type"], "message.delivered");
    assert_eq!(event_seen["data"]["message_id"], id.as_str());
    assert_eq!(event_seen["data"]["channel"], "email");
    assert!(verify(&new_whsec(), &requests[1]).is_err());
    // Keyed with the decoded secret, not with the `whsec_…` text (which independent
    // verifiers never use).
    let mut text_keyed = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    let r = &requests[1];
    let h = |n: &str| r.headers.get(n).unwrap().to_str().unwrap().to_owned();
    text_keyed.update(
        format!(
            "{}.{}.{}",
            h("webhook-id"),
            h("webhook-timestamp"),
            String::from_utf8_lossy(&r.body)
        )
        .as_bytes(),
    );
    assert_ne!(
        h("webhook-signature"),
        format!("v1,{}", STANDARD.encode(text_keyed.finalize().into_bytes()))
    );

    // Rotation: the next event is signed with the new secret only.
    let rotated = futureauth_server::service::project_webhook::rotate(&store, &owner, &project_id)
        .await
        .unwrap()
        .secret
        .expose_secret()
        .to_owned();
    let env = Env {
        s: second,
        key,
        fakes: Fakes::bare().await,
    };
    let complained = event(
        "email.complained",
        "re_1",
        "2026-11-29T01:05:00.000Z",
        json!({}),
    );
    assert_eq!(env.signed_resend("evt_c", 0, &complained).await.0, 200);
    eventually(10, "the complaint reaches the app", || received(3)).await;
    let requests = app.received_requests().await.unwrap();
    let last = requests.last().unwrap();
    assert_eq!(
        verify(&rotated, last).unwrap()["type"],
        "message.complained"
    );
    assert!(
        verify(&secret, last).is_err(),
        "the old secret no longer verifies"
    );
    // A redelivered provider event moves nothing, so it queues no second project event.
    assert_eq!(env.signed_resend("evt_c", 0, &complained).await.0, 200);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(app.received_requests().await.unwrap().len(), 3);

    // The delivery log filters by the channel it lists these events under.
    let token = cli(
        env.s.store(),
        &["futureauth-server", "operator", "token", "owner@acme.test"],
    )
    .await;
    let log = |channel: &str| {
        env.s
            .http
            .get(env.s.url(&format!(
                "/api/v1/projects/{project_id}/deliveries?channel={channel}"
            )))
            .bearer_auth(token.trim())
            .send()
    };
    let resp = log("webhook").await.unwrap();
    assert_eq!(resp.status(), 200);
    let page: Value = resp.json().await.unwrap();
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{page}");
    assert!(items.iter().all(|m| m["channel"] == "webhook"), "{page}");
    let page: Value = log("email").await.unwrap().json().await.unwrap();
    assert!(page["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["channel"] == "email"));
    assert_eq!(log("fax").await.unwrap().status(), 422);
}

/// A new `whsec_` secret (another project's).
fn new_whsec() -> String {
    futureauth_server::service::project_webhook::new_secret()
}

/// An independent Standard Webhooks verifier (as the spec and PyPI `standardwebhooks` do
/// it): HMAC-SHA256 keyed with the base64-decoded bytes after `whsec_`, over
/// `id.timestamp.body`; one of the space-separated `v1,` signatures must match. The event.
fn standard_webhooks_verify(secret: &str, r: &wiremock::Request) -> Result<Value, String> {
    let h = |n: &str| {
        r.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .ok_or(format!("no {n}"))
    };
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").ok_or("not whsec_")?)
        .map_err(|e| e.to_string())?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.", h("webhook-id")?, h("webhook-timestamp")?).as_bytes());
    mac.update(&r.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    if !h("webhook-signature")?.split(' ').any(|s| s == expected) {
        return Err("signature mismatch".into());
    }
    serde_json::from_slice(&r.body).map_err(|e| e.to_string())
}

backend_tests!(
    project_webhooks_are_signed_and_survive_a_restart,
    resend_events_move_a_message_forward_only,
    twilio_callbacks_are_checked_against_the_configured_url,
    unconfigured_webhooks_are_not_found,
);

/// A real delivery, checked by an independent Standard Webhooks implementation: PyPI
/// `standardwebhooks`, in the Python that `FUTUREAUTH_INTEROP_PYTHON` names
/// (`scripts/test` installs it into a venv under `target/` and runs this test with
/// `--ignored`). A tampered body must fail there too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PyPI standardwebhooks: scripts/test runs it with FUTUREAUTH_INTEROP_PYTHON"]
async fn a_real_delivery_verifies_with_pypi_standardwebhooks() {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let python = std::env::var("FUTUREAUTH_INTEROP_PYTHON")
        .expect("FUTUREAUTH_INTEROP_PYTHON: a Python with `standardwebhooks` installed");

    let db = TestDb::new(Backend::Sqlite).await;
    let fakes = Fakes::accepting().await;
    let store = db.store().await;
    let (project_id, key) = acme(&store).await;
    let app = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&app)
        .await;
    let owner = owner_of(&store, &project_id).await;
    let (_, secret) = futureauth_server::service::project_webhook::set(
        &store,
        &owner,
        &project_id,
        &format!("{}/hook", app.uri()),
        false,
    )
    .await
    .unwrap();
    let secret = secret.expect("secret");
    let mut cfg = config(&db, &fakes);
    cfg.providers.resend.resend_webhook_secret =
        Some(format!("whsec_{}", STANDARD.encode(SVIX_KEY)).into());
    let env = Env {
        s: TestServer::start(&db, &cfg).await,
        key: key.clone(),
        fakes,
    };
    let body = json!({"channel": "email", "destination": "ada@example.com", "code": "123456"});
    let id = env.s.send_ok(&key, &body).await;
    assert_eq!(env.s.wait_final(&key, &id).await["status"], "sent");
    let delivered = event(
        "email.delivered",
        "re_1",
        "2026-11-29T01:00:02.000Z",
        json!({}),
    );
    assert_eq!(env.signed_resend("evt_py", 0, &delivered).await.0, 200);
    let app_ref = &app;
    eventually(10, "the event reaches the app", || async move {
        !app_ref
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    })
    .await;
    let request = app.received_requests().await.unwrap().remove(0);
    let headers: serde_json::Map<String, Value> =
        ["webhook-id", "webhook-timestamp", "webhook-signature"]
            .iter()
            .map(|n| {
                let v = request.headers.get(*n).unwrap().to_str().unwrap();
                (n.to_string(), Value::from(v))
            })
            .collect();
    let body = String::from_utf8(request.body.clone()).unwrap();
    let verify = |body: &str| {
        let input = json!({"secret": secret, "headers": headers, "body": body}).to_string();
        let mut child = std::process::Command::new(&python)
            .args([
                "-c",
                "import json, sys\n\
                 from standardwebhooks.webhooks import Webhook\n\
                 d = json.load(sys.stdin)\n\
                 print(json.dumps(Webhook(d['secret']).verify(d['body'], d['headers'])))",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run the interop Python");
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = verify(&body);
    assert!(
        out.status.success(),
        "standardwebhooks refused a real delivery: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["type"], "message.delivered");
    assert_eq!(seen["data"]["message_id"], id.as_str());
    let tampered = body.replace("delivered", "bounced");
    assert!(
        !verify(&tampered).status.success(),
        "a tampered body verifies"
    );
}
