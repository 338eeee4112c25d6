//! The whole HTTP API over loopback, against SQLite and Postgres (one suite, two backends).

mod common;

use std::collections::HashSet;

use base64::Engine;
use common::*;
use serde_json::{json, Value};

fn header<'a>(r: &'a wiremock::Request, name: &str) -> &'a str {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn setup(backend: Backend) -> (TestServer, Fakes, String, String) {
    let db = TestDb::new(backend).await;
    let fakes = Fakes::accepting().await;
    let store = db.store().await;
    let (project_id, key) = acme(&store).await;
    let server = TestServer::start(&db, &config(&db, &fakes)).await;
    (server, fakes, project_id, key)
}

async fn assert_error(
    resp: reqwest::Response,
    status: u16,
    code: &str,
) -> reqwest::header::HeaderMap {
    assert_eq!(resp.status().as_u16(), status);
    let headers = resp.headers().clone();
    let v: Value = resp.json().await.expect("JSON error body");
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    headers
}

async fn email_otp_is_delivered_through_resend(backend: Backend) {
    let (s, fakes, project_id, key) = setup(backend).await;
    let id = s
        .send_ok(
            &key,
            &json!({"channel": "email", "destination": "jane@example.com", "code": "a1b2c3", "project_name": "Evil Corp"}),
        )
        .await;
    assert!(id.starts_with("msg_"));
    let v = s.wait_final(&key, &id).await;
    assert_eq!(v["status"], "sent", "{v}");
    assert_eq!(v["channel"], "email");
    assert_eq!(v["attempts"], 1);
    assert!(v["error"].is_null());
    assert!(v["sent_at"].is_string() && v["created_at"].is_string());

    let emails = fakes.emails().await;
    assert_eq!(emails.len(), 1);
    let r = &emails[0];
    assert_eq!(header(r, "authorization"), format!("Bearer {RESEND_KEY}"));
    assert_eq!(header(r, "idempotency-key"), id);
    assert!(header(r, "content-type").starts_with("application/json"));
    let body: Value = serde_json::from_slice(&r.body).expect("json body");
    assert_eq!(body["from"], "FutureAuth Test <login@futureauth.test>");
    assert_eq!(body["to"], json!(["jane@example.com"]));
    for field in ["subject", "text", "html"] {
        let text = body[field].as_str().expect(field);
        assert!(text.contains("a1b2c3"), "{field}: {text}");
        assert!(text.contains("Acme"), "{field}: {text}");
        assert!(
            !text.contains("Evil Corp"),
            "{field} shows the request's project_name: {text}"
        );
    }

    // The code is gone from the database once sent; the destination is masked.
    let row = s.store().get_message_any(&id).await.unwrap().unwrap();
    assert!(row.payload.is_none());
    assert_eq!(row.destination, "ja***@example.com");
    assert!(!format!("{row:?}").contains("a1b2c3"));
    assert_eq!(row.project_id, project_id);
}

async fn sms_otp_is_delivered_through_twilio(backend: Backend) {
    let (s, fakes, _, key) = setup(backend).await;
    let id = s
        .send_ok(&key, &json!({"channel": "sms", "destination": "+12015550123", "code": "889911", "project_name": "Nope"}))
        .await;
    assert_eq!(s.wait_final(&key, &id).await["status"], "sent");
    let reqs = fakes.sms().await;
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(
        r.url.path(),
        format!("/2010-04-01/Accounts/{TWILIO_SID}/Messages.json")
    );
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{TWILIO_SID}:{TWILIO_TOKEN}"));
    assert_eq!(header(r, "authorization"), format!("Basic {basic}"));
    assert!(header(r, "content-type").starts_with("application/x-www-form-urlencoded"));
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&r.body).into_owned().collect();
    assert_eq!(form["To"], "+12015550123");
    assert_eq!(form["From"], TWILIO_FROM);
    assert!(
        form["Body"].contains("889911") && form["Body"].contains("Acme"),
        "{}",
        form["Body"]
    );
    assert!(!form["Body"].contains("Nope"));
    assert!(!form.contains_key("MessagingServiceSid"));
    let row = s.store().get_message_any(&id).await.unwrap().unwrap();
    assert!(row.payload.is_none());
    assert_eq!(row.destination, "+1201***23");
}

async fn magic_links_are_built_from_allowed_callbacks(backend: Backend) {
    let (s, fakes, _, key) = setup(backend).await;
    // What futureauth 0.6 sends: 43 characters of base64url.
    let token = "tok_ABCdef-123456789_tok_ABCdef-123456789xy";
    // 1. No callback in the request (how futureauth 0.4/0.5 clients call): the project default.
    let a = s
        .send_ok(&key, &json!({"channel": "magic_link", "destination": "a@example.com", "code": token, "project_name": "x"}))
        .await;
    // 2. callback_url with a query: `&token=`.
    let b = s
        .send_ok(
            &key,
            &json!({"channel": "magic_link", "destination": "b@example.com", "code": token, "callback_url": "http://localhost:3000/verify?next=%2Fhome"}),
        )
        .await;
    // 3. A full link whose token matches the code.
    let c = s
        .send_ok(
            &key,
            &json!({"channel": "magic_link", "destination": "c@example.com", "code": token, "link": format!("http://localhost:3000/m?token={token}")}),
        )
        .await;
    for id in [&a, &b, &c] {
        assert_eq!(s.wait_final(&key, id).await["status"], "sent");
    }
    let emails = fakes.emails().await;
    let text_for = |to: &str| -> String {
        emails
            .iter()
            .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
            .find(|b| b["to"][0] == to)
            .map(|b| b["text"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no email to {to}"))
    };
    assert!(text_for("a@example.com")
        .contains(&format!("https://app.acme.test/auth/magic?token={token}\n")));
    assert!(text_for("b@example.com").contains(&format!(
        "http://localhost:3000/verify?next=%2Fhome&token={token}\n"
    )));
    assert!(text_for("c@example.com").contains(&format!("http://localhost:3000/m?token={token}\n")));
    assert!(text_for("a@example.com").contains("Acme"));

    // Refusals: origin not allowed, non-http scheme, link token mismatch.
    let bad = [
        (
            json!({"callback_url": "https://evil.test/cb"}),
            "callback_not_allowed",
        ),
        (
            json!({"callback_url": "javascript:alert(1)"}),
            "callback_not_allowed",
        ),
        (
            json!({"callback_url": "https://app.acme.test.evil.test/cb"}),
            "callback_not_allowed",
        ),
        (
            json!({"link": format!("https://evil.test/m?token={token}")}),
            "callback_not_allowed",
        ),
        (
            json!({"link": "http://localhost:3000/m?token=somethingelse12345somethingelse12345"}),
            "invalid_link",
        ),
    ];
    for (extra, code) in bad {
        let mut body =
            json!({"channel": "magic_link", "destination": "d@example.com", "code": token});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        assert_error(s.send(&key, &body).await, 422, code).await;
    }
}

/// Login CSRF through the wire protocol: a callback (in the request or stored with the
/// project) that already carries a `token` parameter, in any letter case, would be mailed as
/// `?token=ATTACKER&token=REAL`. Refused with 422, nothing queued or sent; so are
/// credentials in the URL and a `link` with other than one `token`.
async fn a_callback_with_its_own_token_is_refused_and_sends_nothing(backend: Backend) {
    use futureauth_server::service::projects::{generate_secret_key, hash_key, key_prefix};
    let (s, fakes, project_id, key) = setup(backend).await;
    let token = "tok_ABCdef-123456789_tok_ABCdef-123456789xy";
    let refused = [
        (
            json!({"callback_url": "http://localhost:3000/cb?token=ATTACKER"}),
            "callback_not_allowed",
        ),
        (
            json!({"callback_url": "http://localhost:3000/cb?TOKEN=ATTACKER"}),
            "callback_not_allowed",
        ),
        (
            json!({"callback_url": "http://localhost:3000/cb?Token=ATTACKER"}),
            "callback_not_allowed",
        ),
        (
            json!({"callback_url": "http://localhost:3000/cb?a=1&%74oken=ATTACKER"}),
            "callback_not_allowed",
        ),
        (
            json!({"callback_url": "http://localhost:3000/cb?token"}),
            "callback_not_allowed",
        ),
        (
            json!({"callback_url": "http://user:pw@localhost:3000/cb"}),
            "callback_not_allowed",
        ),
        (
            json!({"callback_url": "http://user@localhost:3000/cb"}),
            "callback_not_allowed",
        ),
        (
            json!({"link": format!("http://localhost:3000/m?token=ATTACKER&token={token}")}),
            "invalid_link",
        ),
        (
            json!({"link": format!("http://localhost:3000/m?TOKEN=ATTACKER&token={token}")}),
            "invalid_link",
        ),
        (
            json!({"link": format!("http://localhost:3000/m?Token={token}")}),
            "invalid_link",
        ),
        (
            json!({"link": format!("http://user:pw@localhost:3000/m?token={token}")}),
            "callback_not_allowed",
        ),
    ];
    for (extra, code) in refused {
        let mut body =
            json!({"channel": "magic_link", "destination": "v@example.com", "code": token});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        assert_error(s.send(&key, &body).await, 422, code).await;
    }

    // A stored callback with a token: refused when it is set (CLI, management API) ...
    let argv = [
        "futureauth-server",
        "project",
        "create",
        "--name",
        "Evil",
        "--callback-url",
        "https://evil.test/cb?Token=ATTACKER",
    ];
    let cli = <futureauth_server::cli::Cli as clap::Parser>::try_parse_from(argv).unwrap();
    let err = futureauth_server::cli::run_admin(
        cli.command.as_ref().unwrap(),
        s.store(),
        &mut Vec::new(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("token parameter"), "{err}");
    let owner = owner_of(s.store(), &project_id).await;
    let op_token =
        futureauth_server::service::console::create_operator_token(s.store(), &owner, "t")
            .await
            .unwrap();
    for cb in [
        "https://app.acme.test/auth/magic?token=X",
        "https://app.acme.test/auth/magic?TOKEN=X",
    ] {
        let resp = s
            .http
            .patch(s.url(&format!("/api/v1/projects/{project_id}")))
            .bearer_auth(&op_token)
            .json(&json!({ "callback_url": cb }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 422, "{cb}");
    }
    let stored = s.store().get_project(&project_id).await.unwrap().unwrap();
    assert_eq!(
        stored.callback_url.as_deref(),
        Some("https://app.acme.test/auth/magic")
    );
    // ... and one stored before this rule is not used.
    let legacy_key = generate_secret_key();
    s.store()
        .create_owned_project(
            &futureauth_server::store::Project {
                id: "prj_legacytokencallback000".into(),
                name: "Legacy".into(),
                allowed_origins: vec!["https://app.acme.test".into()],
                callback_url: Some("https://app.acme.test/cb?token=ATTACKER".into()),
                email_from: None,
                sms_countries: futureauth_server::sms::default_countries(),
                sms_caps: Default::default(),
                created_at: futureauth_server::store::UnixMillis::from_millis(0),
            },
            &hash_key(&legacy_key),
            &key_prefix(&legacy_key),
            None,
        )
        .await
        .unwrap();
    assert_error(
        s.send(
            &legacy_key,
            &json!({"channel": "magic_link", "destination": "v@example.com", "code": token}),
        )
        .await,
        422,
        "callback_not_allowed",
    )
    .await;

    assert_eq!(s.store().count_messages(&project_id).await.unwrap(), 0);
    assert_eq!(
        s.store()
            .count_messages("prj_legacytokencallback000")
            .await
            .unwrap(),
        0
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(fakes.emails().await.is_empty());
}

/// The schema allows `"project_name": null`; it is a field never shown, so null is accepted
/// like an absent one (and a wrong type is still refused).
async fn project_name_null_is_accepted(backend: Backend) {
    let (s, fakes, _, key) = setup(backend).await;
    let id = s
        .send_ok(
            &key,
            &json!({"channel": "email", "destination": "jane@example.com", "code": "a1b2c3", "project_name": null}),
        )
        .await;
    assert_eq!(s.wait_final(&key, &id).await["status"], "sent");
    assert_eq!(fakes.emails().await.len(), 1);
    assert_error(
        s.send(
            &key,
            &json!({"channel": "email", "destination": "jane@example.com", "code": "a1b2c3", "project_name": 7}),
        )
        .await,
        422,
        "invalid_request",
    )
    .await;
}

async fn magic_link_without_any_callback_is_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fakes = Fakes::accepting().await;
    let store = db.store().await;
    let (_, key) = cli_create_project(&store, &["--name", "NoCallback"]).await;
    let s = TestServer::start(&db, &config(&db, &fakes)).await;
    let body = json!({"channel": "magic_link", "destination": "d@example.com", "code": "abcdefghijklmnopabcdefghijklmnopabcdefghijk"});
    assert_error(s.send(&key, &body).await, 422, "callback_url_required").await;
}

async fn bad_input_is_refused_and_writes_nothing(backend: Backend) {
    let (s, fakes, project_id, key) = setup(backend).await;
    let cases = [
        (
            json!({"channel": "pigeon", "destination": "a@example.com", "code": "123456"}),
            "unknown_channel",
        ),
        (
            json!({"channel": "email", "destination": "not-an-email", "code": "123456"}),
            "invalid_destination",
        ),
        (
            json!({"channel": "email", "destination": "a@example.com, b@example.com", "code": "123456"}),
            "invalid_destination",
        ),
        (
            json!({"channel": "email", "destination": "a@example.com", "code": "Buy cheap pills at http://spam"}),
            "invalid_code",
        ),
        (
            json!({"channel": "email", "destination": "a@example.com", "code": "12"}),
            "invalid_code",
        ),
        // Only what the SDKs generate: lower-case, at most 12 characters.
        (
            json!({"channel": "email", "destination": "a@example.com", "code": "A1B2C3"}),
            "invalid_code",
        ),
        (
            json!({"channel": "email", "destination": "a@example.com", "code": "abcdefghijklm"}),
            "invalid_code",
        ),
        (
            json!({"channel": "sms", "destination": "+12015550123", "code": "visitspamsite"}),
            "invalid_code",
        ),
        (
            json!({"channel": "magic_link", "destination": "a@example.com", "code": "abcdefghijklmnop"}),
            "invalid_code",
        ),
        (
            json!({"channel": "sms", "destination": "5551234567", "code": "123456"}),
            "invalid_destination",
        ),
        (
            json!({"channel": "sms", "destination": "+1555", "code": "123456"}),
            "invalid_destination",
        ),
        (
            json!({"channel": "sms", "destination": "+1 555 123 4567", "code": "123456"}),
            "invalid_destination",
        ),
        (
            json!({"channel": "sms", "destination": "+12015550123", "code": "a b c d"}),
            "invalid_code",
        ),
        (
            json!({"channel": "magic_link", "destination": "a@example.com", "code": "short"}),
            "invalid_code",
        ),
        (
            json!({"channel": "magic_link", "destination": "a@example.com", "code": "has spaces in the token!!"}),
            "invalid_code",
        ),
        // The code beside a link is a code too: no free text rides along in the email.
        (
            json!({"channel": "magic_link", "destination": "a@example.com", "code": "abcdefghijklmnopabcdefghijklmnopabcdefghijk", "link_code": "<a href=x>win</a>"}),
            "invalid_code",
        ),
        (
            json!({"channel": "magic_link", "destination": "a@example.com", "code": "abcdefghijklmnopabcdefghijklmnopabcdefghijk", "link_code": 424242}),
            "invalid_request",
        ),
        (
            json!({"destination": "a@example.com", "code": "123456"}),
            "invalid_request",
        ),
        (
            json!({"channel": "email", "code": "123456"}),
            "invalid_request",
        ),
        (
            json!({"channel": "email", "destination": "a@example.com"}),
            "invalid_request",
        ),
        (
            json!({"channel": "email", "destination": 42, "code": "123456"}),
            "invalid_request",
        ),
        (json!(["not", "an", "object"]), "invalid_request"),
        (
            json!(["email", "a@example.com", "123456"]),
            "invalid_request",
        ),
        (
            json!({"channel": "email", "destination": "a@example.com", "code": "123456", "project_name": ["x"]}),
            "invalid_request",
        ),
    ];
    for (body, code) in cases {
        let resp = s.send(&key, &body).await;
        assert_eq!(resp.status(), 422, "{body}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], code, "{body} → {v}");
    }

    let url = s.url("/api/v1/otp/send");
    // Malformed JSON → 400.
    let resp = s
        .http
        .post(&url)
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body("{\"channel\": \"email\",")
        .send()
        .await
        .unwrap();
    assert_error(resp, 400, "malformed_json").await;
    // Wrong content type → 415.
    let resp = s
        .http
        .post(&url)
        .bearer_auth(&key)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_error(resp, 415, "unsupported_media_type").await;
    let resp = s
        .http
        .post(&url)
        .bearer_auth(&key)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_error(resp, 415, "unsupported_media_type").await;
    // Body over 16 KiB → 413.
    let big = json!({"channel": "email", "destination": "a@example.com", "code": "123456", "project_name": "x".repeat(17 * 1024)});
    assert_error(s.send(&key, &big).await, 413, "payload_too_large").await;
    // Bad Idempotency-Key.
    let resp = s
        .http
        .post(&url)
        .bearer_auth(&key)
        .header("idempotency-key", "has space")
        .json(&json!({"channel": "email", "destination": "a@example.com", "code": "123456"}))
        .send()
        .await
        .unwrap();
    assert_error(resp, 400, "invalid_idempotency_key").await;

    assert_eq!(s.store().count_messages(&project_id).await.unwrap(), 0);
    assert!(fakes.emails().await.is_empty() && fakes.sms().await.is_empty());
}

async fn unknown_routes_and_methods_answer_json(backend: Backend) {
    let (s, _, _, _) = setup(backend).await;
    let resp = s.http.get(s.url("/nope")).send().await.unwrap();
    assert_error(resp, 404, "not_found").await;
    let resp = s.http.get(s.url("/api/v1/otp/send")).send().await.unwrap();
    assert_error(resp, 405, "method_not_allowed").await;
    let resp = s.http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp = s.http.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    // Dev outbox is off when providers are configured.
    let resp = s.http.get(s.url("/dev/outbox")).send().await.unwrap();
    assert_error(resp, 404, "not_found").await;
}

async fn keys_authenticate_and_can_be_revoked_and_rotated(backend: Backend) {
    let (s, _, project_id, key) = setup(backend).await;
    let body = json!({"channel": "email", "destination": "k@example.com", "code": "123456"});
    let url = s.url("/api/v1/otp/send");

    // Missing, malformed, wrong scheme, unknown.
    let resp = s.http.post(&url).json(&body).send().await.unwrap();
    assert_error(resp, 401, "invalid_api_key").await;
    let resp = s
        .http
        .post(&url)
        .header("authorization", format!("Basic {key}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_error(resp, 401, "invalid_api_key").await;
    assert_error(
        s.send("vx_sec_0000000000000000000000000000000000000000", &body)
            .await,
        401,
        "invalid_api_key",
    )
    .await;
    assert_error(s.send("garbage", &body).await, 401, "invalid_api_key").await;
    // Auth comes before body parsing: a bad key with malformed JSON is still 401.
    let resp = s
        .http
        .post(&url)
        .bearer_auth("nope")
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_error(resp, 401, "invalid_api_key").await;

    s.send_ok(&key, &body).await;

    // Rotate: the old key stops working, the new one works.
    let out = cli(
        s.store(),
        &[
            "futureauth-server",
            "key",
            "rotate",
            "--project",
            &project_id,
            "--json",
        ],
    )
    .await;
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    let new_key = v["secret_key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, key);
    assert!(new_key.starts_with("vx_sec_") && new_key.len() == 47);
    assert_error(s.send(&key, &body).await, 401, "invalid_api_key").await;
    let body2 = json!({"channel": "email", "destination": "k2@example.com", "code": "123456"});
    s.send_ok(&new_key, &body2).await;

    // Revoke by display prefix.
    let prefix: String = new_key.chars().take(12).collect();
    let out = cli(
        s.store(),
        &[
            "futureauth-server",
            "key",
            "revoke",
            "--key-prefix",
            &prefix,
        ],
    )
    .await;
    assert!(out.contains("Revoked 1"));
    assert_error(s.send(&new_key, &body2).await, 401, "invalid_api_key").await;

    // The list shows no active key any more.
    let out = cli(
        s.store(),
        &["futureauth-server", "project", "list", "--json"],
    )
    .await;
    let list: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(list[0]["id"], project_id.as_str());
    assert_eq!(list[0]["active_key_prefixes"], json!([]));
    assert_eq!(
        list[0]["sms_countries"],
        json!(["US", "CA", "GB", "IE", "DE", "FR", "NL", "ES", "IT", "AU", "NZ"])
    );
}

async fn messages_are_private_to_their_project(backend: Backend) {
    let (s, _, _, key) = setup(backend).await;
    let (_, other_key) = cli_create_project(s.store(), &["--name", "Other"]).await;
    let id = s
        .send_ok(
            &key,
            &json!({"channel": "email", "destination": "p@example.com", "code": "123456"}),
        )
        .await;
    let (code, v) = s.status(&other_key, &id).await;
    assert_eq!(code, 404, "{v}");
    assert_eq!(v["error"]["code"], "not_found");
    let (code, _) = s.status(&key, "msg_doesnotexist").await;
    assert_eq!(code, 404);
    // Bytes the database refuses never reach it: a NUL is a 404, not a 503.
    for bad in [
        "a%00b",
        "msg_%00",
        "msg_3k9x0q2m5n7p1r4t6v8w0y2%00",
        "%F0%28%8C%BC",
    ] {
        let resp = s
            .http
            .get(s.url(&format!("/api/v1/messages/{bad}")))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        assert!(status == 404 || status == 400, "{bad}: {status}");
        let v: Value = resp.json().await.unwrap();
        assert!(v["error"]["code"].is_string(), "{bad}: {v}");
    }
    let resp = s
        .http
        .get(s.url(&format!("/api/v1/messages/{id}")))
        .send()
        .await
        .unwrap();
    assert_error(resp, 401, "invalid_api_key").await;
    let (code, _) = s.status(&key, &id).await;
    assert_eq!(code, 200);
}

async fn idempotency_key_never_sends_twice(backend: Backend) {
    let (s, fakes, project_id, key) = setup(backend).await;
    let body = json!({"channel": "email", "destination": "i@example.com", "code": "555111"});
    let post = |k: &'static str, b: Value| {
        s.http
            .post(s.url("/api/v1/otp/send"))
            .bearer_auth(&key)
            .header("Idempotency-Key", k)
            .json(&b)
            .send()
    };
    let r1 = post("req-1", body.clone()).await.unwrap();
    assert_eq!(r1.status(), 202);
    let v1: Value = r1.json().await.unwrap();
    let id = v1["id"].as_str().unwrap().to_owned();
    assert_eq!(s.wait_final(&key, &id).await["status"], "sent");
    // Retried after delivery: same id, 202, nothing new sent.
    let r2 = post("req-1", body.clone()).await.unwrap();
    assert_eq!(r2.status(), 202);
    let v2: Value = r2.json().await.unwrap();
    assert_eq!(v2["id"], id.as_str());
    // The same key for a different request is refused.
    let other = json!({"channel": "email", "destination": "other@example.com", "code": "555111"});
    assert_error(
        post("req-1", other).await.unwrap(),
        422,
        "idempotency_key_reused",
    )
    .await;
    // Concurrent retries with a fresh key: still one message.
    let body3 = json!({"channel": "email", "destination": "i3@example.com", "code": "777111"});
    let (a, b) = tokio::join!(post("req-2", body3.clone()), post("req-2", body3.clone()));
    let (a, b): (Value, Value) = (
        a.unwrap().json().await.unwrap(),
        b.unwrap().json().await.unwrap(),
    );
    assert_eq!(a["id"], b["id"], "{a} {b}");
    assert_eq!(
        s.wait_final(&key, a["id"].as_str().unwrap()).await["status"],
        "sent"
    );

    assert_eq!(s.store().count_messages(&project_id).await.unwrap(), 2);
    let keys: Vec<String> = fakes
        .emails()
        .await
        .iter()
        .map(|r| header(r, "idempotency-key").to_owned())
        .collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_eq!(keys.iter().collect::<HashSet<_>>().len(), 2);
}

/// Two instances on one database, no secret configured: they share the fingerprint key kept
/// in the database, so a request retried on the other instance replays. An explicit
/// `--server-secret` still overrides that key.
async fn an_idempotency_key_retried_on_another_instance_replays(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fakes = Fakes::accepting().await;
    let store = db.store().await;
    let (project_id, key) = acme(&store).await;
    let cfg = config(&db, &fakes);
    assert!(cfg.server_secret.is_none());
    let a = TestServer::start(&db, &cfg).await;
    let b = TestServer::start(&db, &cfg).await;
    let post = |s: &TestServer, body: &Value| {
        s.http
            .post(s.url("/api/v1/otp/send"))
            .bearer_auth(&key)
            .header("Idempotency-Key", "retry-elsewhere")
            .json(body)
            .send()
    };
    let body = json!({"channel": "email", "destination": "i@example.com", "code": "555111"});
    let first = post(&a, &body).await.unwrap();
    assert_eq!(first.status(), 202);
    let id = first.json::<Value>().await.unwrap()["id"].clone();
    let retried = post(&b, &body).await.unwrap();
    assert_eq!(retried.status(), 202);
    assert_eq!(retried.json::<Value>().await.unwrap()["id"], id);
    // The key still tells a different request apart on the other instance.
    let other = json!({"channel": "email", "destination": "j@example.com", "code": "555111"});
    assert_error(
        post(&b, &other).await.unwrap(),
        422,
        "idempotency_key_reused",
    )
    .await;
    // An instance with its own configured secret computes other fingerprints.
    let mut own = cfg.clone();
    own.server_secret = Some("c".repeat(32).into());
    let c = TestServer::start(&db, &own).await;
    assert_error(
        post(&c, &body).await.unwrap(),
        422,
        "idempotency_key_reused",
    )
    .await;
    assert_eq!(store.count_messages(&project_id).await.unwrap(), 1);
}

async fn request_fingerprints_are_keyed_and_kept_only_with_an_idempotency_key(backend: Backend) {
    use hmac::Mac;
    use sha2::Digest;
    let db = TestDb::new(backend).await;
    let fakes = Fakes::accepting().await;
    let store = db.store().await;
    let (_, key) = acme(&store).await;
    let secret = "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t";
    let mut cfg = config(&db, &fakes);
    cfg.server_secret = Some(secret.into());
    let s = TestServer::start(&db, &cfg).await;
    let body = json!({"channel": "sms", "destination": "+12015550123", "code": "424242"});

    // Without an Idempotency-Key nothing derived from the number and code is kept.
    let plain = s.send_ok(&key, &body).await;
    let row = s.store().get_message_any(&plain).await.unwrap().unwrap();
    assert_eq!(row.request_hash, None);

    // With one, an HMAC keyed by the server secret, not a hash anyone can recompute.
    let resp = s
        .http
        .post(s.url("/api/v1/otp/send"))
        .bearer_auth(&key)
        .header("Idempotency-Key", "k-1")
        .json(&json!({"channel": "sms", "destination": "+12015550124", "code": "424242"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let row = s.store().get_message_any(&id).await.unwrap().unwrap();
    let stored = row
        .request_hash
        .expect("fingerprint kept with an idempotency key");
    let input = ["sms", "+12015550124", "424242", ""]
        .map(|p| format!("{p}\0"))
        .concat();
    assert_ne!(stored, hex::encode(sha2::Sha256::digest(input.as_bytes())));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    assert_eq!(stored, hex::encode(mac.finalize().into_bytes()));
}

async fn rate_limits_answer_429_with_retry_after(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fakes = Fakes::accepting().await;
    let store = db.store().await;
    let (project_id, key) = cli_create_project(
        &store,
        &[
            "--name",
            "Acme",
            "--sms-countries",
            "US,GB",
            "--sms-per-country-per-hour",
            "2",
        ],
    )
    .await;
    let mut cfg = config(&db, &fakes);
    cfg.limits.limit_per_destination = std::num::NonZeroU32::new(2).unwrap();
    cfg.limits.limit_per_project_per_minute = std::num::NonZeroU32::new(7).unwrap();
    let s = TestServer::start(&db, &cfg).await;

    // Per recipient: case and `+tag` do not make another mailbox.
    let e = |d: &str| json!({"channel": "email", "destination": d, "code": "123456"});
    s.send_ok(&key, &e("same@example.com")).await;
    s.send_ok(&key, &e("SAME@example.com")).await;
    let headers = assert_error(
        s.send(&key, &e("same+again@example.com")).await,
        429,
        "rate_limited",
    )
    .await;
    // A short throttle (default one minute), not a quota that keeps a user out for long.
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");

    // Per country, whatever the area code: two US numbers, then refused; GB still works.
    let sms = |d: &str| json!({"channel": "sms", "destination": d, "code": "123456"});
    s.send_ok(&key, &sms("+12015550101")).await;
    s.send_ok(&key, &sms("+12125550102")).await;
    let headers = assert_error(
        s.send(&key, &sms("+13105550103")).await,
        429,
        "rate_limited",
    )
    .await;
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry));
    s.send_ok(&key, &sms("+447400123456")).await;

    // Per project per minute: 5 accepted so far, two more are fine, then refused.
    s.send_ok(&key, &e("x1@example.com")).await;
    s.send_ok(&key, &e("x2@example.com")).await;
    let headers = assert_error(
        s.send(&key, &e("x3@example.com")).await,
        429,
        "rate_limited",
    )
    .await;
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));

    // Refused requests wrote nothing.
    assert_eq!(s.store().count_messages(&project_id).await.unwrap(), 7);
    // A second project is not affected by the first one's limits.
    let (_, key2) = cli_create_project(s.store(), &["--name", "Second"]).await;
    s.send_ok(&key2, &e("same@example.com")).await;
    s.send_ok(&key2, &sms("+13105550103")).await;
}

async fn sms_goes_only_to_the_project_countries(backend: Backend) {
    let (s, fakes, project_id, key) = setup(backend).await;
    let sms = |d: &str| json!({"channel": "sms", "destination": d, "code": "123456"});
    // +1 is not one country: the Caribbean NANP regions (premium-rate SMS pumping targets)
    // are their own regions, outside the default list; +1 555 is in no region at all.
    for (number, region) in [
        ("+18765550123", "JM"),
        ("+18095550123", "DO"),
        ("+18295550123", "DO"),
        ("+18495550123", "DO"),
        ("+12684641234", "AG"),
        ("+12464101234", "BB"),
        ("+15551234567", ""),
        ("+37060012345", "LT"),
    ] {
        let resp = s.send(&key, &sms(number)).await;
        assert_eq!(resp.status(), 422, "{number}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(
            v["error"]["code"], "sms_country_not_allowed",
            "{number}: {v}"
        );
        assert!(
            v["error"]["message"].as_str().unwrap().contains(region),
            "{number}: {v}"
        );
    }
    assert_eq!(s.store().count_messages(&project_id).await.unwrap(), 0);
    // The default countries include the US, Canada and the UK.
    for number in ["+12015550123", "+14165550123", "+447400123456"] {
        s.send_ok(&key, &sms(number)).await;
    }
    eventually(10, "three SMS at the fake Twilio", || async {
        fakes.sms().await.len() == 3
    })
    .await;

    // Per project: `project update` changes the list and the caps.
    let out = cli(
        s.store(),
        &[
            "futureauth-server",
            "project",
            "update",
            "--project",
            &project_id,
            "--sms-countries",
            "jm",
            "--sms-per-hour",
            "4",
        ],
    )
    .await;
    assert!(out.contains("SMS countries:   JM"), "{out}");
    s.send_ok(&key, &sms("+18765550123")).await;
    assert_error(
        s.send(&key, &sms("+12015550123")).await,
        422,
        "sms_country_not_allowed",
    )
    .await;
    // The project's hourly SMS cap (4: three US/CA/GB, one JM) is used up, whatever the country.
    assert_error(
        s.send(&key, &sms("+18765550124")).await,
        429,
        "rate_limited",
    )
    .await;
}

async fn projects_from_before_countries_keep_only_safe_nanp_regions(backend: Backend) {
    let (s, _, project_id, key) = setup(backend).await;
    // A project row as 0.5-era servers wrote it: prefixes, no countries.
    let sql = "UPDATE project SET sms_countries = NULL, sms_prefixes = '[\"+1\"]' WHERE id = $1";
    match backend {
        Backend::Sqlite => {
            use sqlx::Connection;
            let mut c = sqlx::SqliteConnection::connect(&s.db.url).await.unwrap();
            sqlx::query(sql)
                .bind(&project_id)
                .execute(&mut c)
                .await
                .unwrap();
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&s.db.url).await.unwrap();
            sqlx::query(sql)
                .bind(&project_id)
                .execute(&mut c)
                .await
                .unwrap();
        }
    }
    let sms = |d: &str| json!({"channel": "sms", "destination": d, "code": "123456"});
    s.send_ok(&key, &sms("+12015550123")).await;
    s.send_ok(&key, &sms("+14165550123")).await;
    assert_error(
        s.send(&key, &sms("+18765550123")).await,
        422,
        "sms_country_not_allowed",
    )
    .await;
    assert_error(
        s.send(&key, &sms("+447400123456")).await,
        422,
        "sms_country_not_allowed",
    )
    .await;
}

async fn openapi_docs_and_llms_txt_agree(backend: Backend) {
    let (s, _, _, _) = setup(backend).await;
    let resp = s
        .http
        .get(s.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let spec: Value = resp.json().await.unwrap();
    assert!(
        spec["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        spec["openapi"]
    );
    let spec_paths: HashSet<String> = spec["paths"].as_object().unwrap().keys().cloned().collect();
    let expected: HashSet<String> = [
        "/api/v1/otp/send",
        "/api/v1/messages/{id}",
        "/api/v1/openapi.json",
        // The management API (tests/console.rs).
        "/api/v1/projects",
        "/api/v1/projects/{id}",
        "/api/v1/projects/{id}/keys",
        "/api/v1/projects/{id}/keys/rotate",
        "/api/v1/projects/{id}/keys/{prefix}",
        "/api/v1/projects/{id}/deliveries",
        "/api/v1/projects/{id}/members",
        "/api/v1/projects/{id}/members/{email}",
        "/api/v1/projects/{id}/audit",
        "/api/v1/projects/{id}/templates",
        "/api/v1/projects/{id}/test-mode",
        "/api/v1/projects/{id}/webhook",
        "/api/v1/projects/{id}/webhook/rotate",
        "/api/v1/operator/tokens",
        "/api/v1/operator/tokens/{prefix}",
        // Provider status webhooks (tests/webhooks.rs).
        "/webhooks/resend",
        "/webhooks/twilio",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(spec_paths, expected);
    assert!(spec["paths"]["/api/v1/otp/send"]["post"]["responses"]["202"].is_object());
    assert!(spec["components"]["schemas"]["SendBody"].is_object());
    assert!(spec["components"]["securitySchemes"]["secret_key"].is_object());

    let resp = s.http.get(s.url("/llms.txt")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let llms = resp.text().await.unwrap();
    // Every /api/v1 and /webhooks path mentioned exists, and every documented path is
    // mentioned.
    let mentioned: HashSet<String> = ["/api/v1/", "/webhooks/"]
        .iter()
        .flat_map(|prefix| llms.match_indices(prefix))
        .map(|(i, _)| {
            llms[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "/_-.{}".contains(*c))
                .collect::<String>()
                .trim_end_matches('.')
                .to_owned()
        })
        .collect();
    assert_eq!(
        mentioned, spec_paths,
        "llms.txt and the OpenAPI document disagree"
    );
    for must in [
        "cargo add futureauth",
        "FutureAuth::new(",
        "FutureAuthConfig",
        "ensure_tables()",
        ".merge(futureauth::axum::auth_router(",
        "AuthSession",
        "credentials: \"include\"",
        "/api/auth/send-otp",
        "/api/auth/verify-otp",
        "/api/auth/send-magic-link",
        "/api/auth/verify-magic-link",
        "/api/auth/session",
        "/api/auth/sign-out",
    ] {
        assert!(llms.contains(must), "llms.txt lacks {must}");
    }

    // `/docs` is Swagger UI, served from the binary (vendored assets), reading the document.
    let resp = s.http.get(s.url("/docs")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.url().path(), "/docs/", "/docs redirects to /docs/");
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = resp.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "docs page must not load external assets"
    );
    let init = s
        .http
        .get(s.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("/api/v1/openapi.json"), "{init}");
    for asset in ["swagger-ui-bundle.js", "swagger-ui.css"] {
        let resp = s
            .http
            .get(s.url(&format!("/docs/{asset}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{asset}");
        assert!(resp.bytes().await.unwrap().len() > 10_000, "{asset}");
    }
}

async fn locale_picks_the_translation_and_defaults_to_english(backend: Backend) {
    let (s, fakes, _, key) = setup(backend).await;
    let send = |dest: &str, locale: Option<&str>| {
        let mut body = json!({"channel": "email", "destination": dest, "code": "482913"});
        if let Some(l) = locale {
            body["locale"] = json!(l);
        }
        body
    };
    let de = s
        .send_ok(&key, &send("de@example.com", Some("de-AT")))
        .await;
    // What a 0.5.1 client sends: no `locale` field.
    let en = s.send_ok(&key, &send("en@example.com", None)).await;
    let fr = s.send_ok(&key, &send("fr@example.com", Some("fr"))).await;
    for id in [&de, &en, &fr] {
        assert_eq!(s.wait_final(&key, id).await["status"], "sent");
    }
    assert_error(
        s.send(&key, &send("x@example.com", Some("de;q=0.9"))).await,
        422,
        "invalid_locale",
    )
    .await;
    let emails = fakes.emails().await;
    // Only this test's recipients: wiremock hands out pooled servers, so a server left over
    // from another test may still deliver to the same fake.
    let ours = [
        "de@example.com",
        "en@example.com",
        "fr@example.com",
        "x@example.com",
    ];
    let emails: Vec<_> = emails
        .into_iter()
        .filter(|r| {
            let to = serde_json::from_slice::<Value>(&r.body).unwrap()["to"].clone();
            ours.iter().any(|o| to == json!([o]))
        })
        .collect();
    assert_eq!(emails.len(), 3, "the refused send wrote nothing");
    let by_to = |to: &str| -> Value {
        emails
            .iter()
            .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
            .find(|b| b["to"] == json!([to]))
            .expect(to)
    };
    assert_eq!(
        by_to("de@example.com")["subject"],
        "482913 ist Ihr Anmeldecode für Acme"
    );
    assert!(by_to("de@example.com")["html"]
        .as_str()
        .unwrap()
        .contains("lang=\"de\""));
    assert_eq!(
        by_to("en@example.com")["subject"],
        "482913 is your Acme sign-in code"
    );
    // No French translation: English.
    assert_eq!(
        by_to("fr@example.com")["subject"],
        "482913 is your Acme sign-in code"
    );
}

async fn dev_outbox_keeps_messages_when_no_provider_is_configured(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let (_, key) = acme(&store).await;
    let cfg = outbox_config(&db);
    let s = TestServer::start(&db, &cfg).await;
    let id = s
        .send_ok(
            &key,
            &json!({"channel": "email", "destination": "dev@example.com", "code": "424242"}),
        )
        .await;
    let sms = s
        .send_ok(
            &key,
            &json!({"channel": "sms", "destination": "+447400123456", "code": "131313"}),
        )
        .await;
    let notice = s
        .send_ok(
            &key,
            &json!({"channel": "email", "destination": "old@example.com", "code": "",
                    "purpose": "address_change_notice", "new_address": "d***@example.com"}),
        )
        .await;
    assert_eq!(s.wait_final(&key, &id).await["status"], "sent");
    assert_eq!(s.wait_final(&key, &sms).await["status"], "sent");
    assert_eq!(s.wait_final(&key, &notice).await["status"], "sent");
    let v: Value = s
        .http
        .get(s.url("/dev/outbox"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let msgs = v["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3);
    let email = msgs
        .iter()
        .find(|m| m["id"] == id.as_str())
        .expect("email in outbox");
    assert_eq!(email["to"], "dev@example.com");
    assert!(email["text"].as_str().unwrap().contains("424242"));
    assert!(email.get("purpose").is_none(), "a sign-in names no purpose");
    // A notice: its purpose and masked address, no code.
    let n = msgs
        .iter()
        .find(|m| m["id"] == notice.as_str())
        .expect("notice in outbox");
    assert_eq!(n["purpose"], "address_change_notice");
    assert_eq!(n["new_address"], "d***@example.com");
    assert_eq!(n["code"], "");
    let resp = s.http.get(s.url("/dev/outbox")).send().await.unwrap();
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = resp.text().await.unwrap();
    assert!(html.contains("131313") && html.contains("Nothing is really sent"));
    assert!(
        html.contains("email (address_change_notice)")
            && html.contains("no code · new address d***@example.com"),
        "{html}"
    );

    // Only a loopback Host with our port: a DNS-rebinding page sends its own name.
    let port = s.server.addr.port();
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ] {
        let resp = s
            .http
            .get(s.url("/dev/outbox"))
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{host}");
    }
    for host in [
        format!("rebind.evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
        "localhost".to_owned(),
    ] {
        let resp = s
            .http
            .get(s.url("/dev/outbox"))
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{host}");
        let text = resp.text().await.unwrap();
        assert!(
            !text.contains("131313") && !text.contains("424242"),
            "{host}: {text}"
        );
    }

    // A client on the network that sends `Host: 127.0.0.1:<port>` is refused: what counts
    // is the socket peer. The same router, given the peer the server sees (tests/binary.rs
    // also connects over a real non-loopback address when the machine has one).
    let outbox_from = |peer: std::net::SocketAddr| {
        let app = futureauth_server::app(s.server.state.clone());
        let mut req = axum::http::Request::get("/dev/outbox")
            .header("host", format!("127.0.0.1:{port}"))
            .header("accept", "application/json")
            .body(axum::body::Body::empty())
            .unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        async move {
            let resp = tower::ServiceExt::oneshot(app, req).await.unwrap();
            let status = resp.status().as_u16();
            let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    for peer in ["127.0.0.1:50000", "[::1]:50000", "[::ffff:127.0.0.1]:50000"] {
        let (status, body) = outbox_from(peer.parse().unwrap()).await;
        assert_eq!(status, 200, "{peer}: {body}");
        assert!(body.contains("424242"));
    }
    for peer in [
        "192.0.2.7:50000",
        "10.0.0.5:41000",
        "[2001:db8::1]:50000",
        "[::ffff:10.0.0.5]:1",
    ] {
        let (status, body) = outbox_from(peer.parse().unwrap()).await;
        assert_eq!(status, 403, "{peer}: {body}");
        assert!(
            body.contains("forbidden_host") && !body.contains("424242"),
            "{body}"
        );
    }
    // Without connect info the peer is unknown: refused.
    let app = futureauth_server::app(s.server.state.clone());
    let req = axum::http::Request::get("/dev/outbox")
        .header("host", format!("127.0.0.1:{port}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = tower::ServiceExt::oneshot(app, req).await.unwrap();
    assert_eq!(resp.status(), 403);
}

/// Address-change messages say what they are (issue 21): a notice to the old address has no
/// code and names the new address masked; a code to the new address is worded as confirming
/// it, not as a sign-in; a notice with a code, a confirm without one, or free text in
/// `new_address` is refused and queues nothing; a body with no purpose (0.5) or with
/// `sign_in` renders exactly as before. Guards: `Content::parse`'s purpose checks and
/// `MaskedAddress::parse`.
async fn address_change_messages_say_what_they_are(backend: Backend) {
    let (s, fakes, project_id, key) = setup(backend).await;
    let notice = s
        .send_ok(
            &key,
            &json!({"channel": "email", "destination": "old@example.com", "code": "",
                    "purpose": "address_change_notice", "new_address": "+44 ****** 789"}),
        )
        .await;
    let sms_notice = s
        .send_ok(
            &key,
            &json!({"channel": "sms", "destination": "+12015550123", "code": "",
                    "purpose": "address_change_notice", "new_address": "a***@example.com"}),
        )
        .await;
    let confirm = s
        .send_ok(
            &key,
            &json!({"channel": "email", "destination": "new@example.com", "code": "k3x9qa",
                    "purpose": "confirm_address"}),
        )
        .await;
    let sms_confirm = s
        .send_ok(
            &key,
            &json!({"channel": "sms", "destination": "+12015550124", "code": "k3x9qb",
                    "purpose": "confirm_address"}),
        )
        .await;
    for id in [&notice, &sms_notice, &confirm, &sms_confirm] {
        assert_eq!(s.wait_final(&key, id).await["status"], "sent");
    }
    let emails: Vec<Value> = fakes
        .emails()
        .await
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let email_to = |to: &str| {
        emails
            .iter()
            .find(|b| b["to"][0] == to)
            .unwrap_or_else(|| panic!("no email to {to}"))
            .clone()
    };
    let n = email_to("old@example.com");
    assert_eq!(
        n["subject"],
        "A new address was requested for your Acme account"
    );
    for field in ["text", "html"] {
        let text = n[field].as_str().unwrap();
        assert!(
            text.contains("asked to use a new address:") && text.contains("+44 ****** 789"),
            "{field}: {text}"
        );
        assert!(!text.contains("code"), "a notice offers no code: {text}");
    }
    let c = email_to("new@example.com");
    assert_eq!(
        c["subject"],
        "k3x9qa is your code to confirm your new Acme email address"
    );
    for field in ["text", "html"] {
        let text = c[field].as_str().unwrap();
        assert!(text.contains("k3x9qa"), "{field}: {text}");
        assert!(
            text.contains("use this email address for your") && !text.contains("sign-in"),
            "{field}: {text}"
        );
    }
    let sms: Vec<std::collections::HashMap<String, String>> = fakes
        .sms()
        .await
        .iter()
        .map(|r| url::form_urlencoded::parse(&r.body).into_owned().collect())
        .collect();
    let body_to = |to: &str| {
        sms.iter()
            .find(|f| f["To"] == to)
            .unwrap_or_else(|| panic!("no SMS to {to}"))["Body"]
            .clone()
    };
    assert_eq!(
        body_to("+12015550123"),
        "Acme: someone signed in to your account asked to use a new address, a***@example.com. If it was not you, sign in and check your account. Nothing to enter."
    );
    assert_eq!(
        body_to("+12015550124"),
        "k3x9qb is your code to confirm this number for your Acme account. If you did not ask for it, ignore this message."
    );

    // Refused, and nothing queued or sent.
    let queued = s.store().count_messages(&project_id).await.unwrap();
    let sent = (fakes.emails().await.len(), fakes.sms().await.len());
    for (body, code) in [
        // A notice that carries a code: it would read as a sign-in code.
        (
            json!({"channel": "email", "destination": "old@example.com", "code": "123456",
                   "purpose": "address_change_notice", "new_address": "a***@example.com"}),
            "invalid_code",
        ),
        (
            json!({"channel": "sms", "destination": "+12015550123", "code": "123456",
                   "purpose": "address_change_notice", "new_address": "a***@example.com"}),
            "invalid_code",
        ),
        // A confirm (or sign-in) without a code.
        (
            json!({"channel": "email", "destination": "new@example.com", "code": "",
                   "purpose": "confirm_address"}),
            "invalid_code",
        ),
        (
            json!({"channel": "email", "destination": "new@example.com", "code": "", "purpose": "sign_in"}),
            "invalid_code",
        ),
        // A notice's new address is a mask, never free text or a whole address.
        (
            json!({"channel": "email", "destination": "old@example.com", "code": "",
                   "purpose": "address_change_notice", "new_address": "Win a prize at https://spam.example"}),
            "invalid_request",
        ),
        (
            json!({"channel": "email", "destination": "old@example.com", "code": "",
                   "purpose": "address_change_notice", "new_address": "ada@example.com"}),
            "invalid_request",
        ),
        (
            json!({"channel": "email", "destination": "old@example.com", "code": "",
                   "purpose": "address_change_notice"}),
            "invalid_request",
        ),
        (
            json!({"channel": "email", "destination": "new@example.com", "code": "a1b2c3",
                   "new_address": "a***@example.com"}),
            "invalid_request",
        ),
        (
            json!({"channel": "magic_link", "destination": "old@example.com", "code": "",
                   "purpose": "address_change_notice", "new_address": "a***@example.com"}),
            "invalid_request",
        ),
        (
            json!({"channel": "email", "destination": "new@example.com", "code": "a1b2c3",
                   "purpose": "password_reset"}),
            "invalid_request",
        ),
        // A notice by SMS is an SMS: the project's countries bind it too.
        (
            json!({"channel": "sms", "destination": "+18765550123", "code": "",
                   "purpose": "address_change_notice", "new_address": "a***@example.com"}),
            "sms_country_not_allowed",
        ),
    ] {
        assert_error(s.send(&key, &body).await, 422, code).await;
    }
    assert_eq!(s.store().count_messages(&project_id).await.unwrap(), queued);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!((fakes.emails().await.len(), fakes.sms().await.len()), sent);

    // A sign-in body with no purpose (0.4/0.5) and one that names `sign_in` render alike:
    // the sign-in wording, as before.
    let old = s
        .send_ok(
            &key,
            &json!({"channel": "email", "destination": "a05@example.com", "code": "a1b2c3"}),
        )
        .await;
    let named = s
        .send_ok(
            &key,
            &json!({"channel": "email", "destination": "a06@example.com", "code": "a1b2c3", "purpose": "sign_in"}),
        )
        .await;
    s.wait_final(&key, &old).await;
    s.wait_final(&key, &named).await;
    let emails: Vec<Value> = fakes
        .emails()
        .await
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let (a, b) = (
        emails
            .iter()
            .find(|b| b["to"][0] == "a05@example.com")
            .unwrap(),
        emails
            .iter()
            .find(|b| b["to"][0] == "a06@example.com")
            .unwrap(),
    );
    assert_eq!(a["subject"], "a1b2c3 is your Acme sign-in code");
    for field in ["subject", "text", "html"] {
        assert_eq!(a[field], b[field], "{field}");
    }
}

/// A confirm-address email can carry a link to the app's confirm page beside its code
/// (issue 21): `channel: magic_link`, `purpose: confirm_address`, `link_code` the code. The
/// email is the confirm-address one (not a sign-in), exactly; without `link_code` it is
/// refused and nothing is queued. Guards: `Content::parse`'s confirm-link rule and
/// `render`'s confirm-address branch for links.
async fn a_confirm_address_link_is_a_confirm_email_with_its_code(backend: Backend) {
    let (s, fakes, project_id, key) = setup(backend).await;
    let token = "tok_ABCdef-123456789_tok_ABCdef-123456789xy";
    let link = format!("http://localhost:3000/api/auth/confirm-identifier-change?token={token}");
    let id = s
        .send_ok(
            &key,
            &json!({"channel": "magic_link", "destination": "new@example.com", "code": token,
                    "link": link, "link_code": "k3x9qa", "purpose": "confirm_address"}),
        )
        .await;
    assert_eq!(s.wait_final(&key, &id).await["status"], "sent");
    let emails = fakes.emails().await;
    assert_eq!(emails.len(), 1);
    let e: Value = serde_json::from_slice(&emails[0].body).unwrap();
    assert_eq!(e["to"][0], "new@example.com");
    assert_eq!(
        e["subject"],
        "k3x9qa is your code to confirm your new Acme email address"
    );
    assert_eq!(
        e["text"],
        format!(
            "You asked to use this email address for your Acme account. To confirm it, enter this code:\n\n    k3x9qa\n\nOr open this link in the browser where you are signed in to Acme, and press Confirm:\n\n{link}\n\nIt expires in a few minutes. If you did not ask for this, ignore this email: nothing changes."
        )
    );
    let html = e["html"].as_str().unwrap();
    // HTML-escaped as the sign-in link's template escapes it (`/` as `&#x2f;`).
    let escaped = link.replace('/', "&#x2f;");
    assert!(
        html.contains("<strong>k3x9qa</strong>")
            && html.contains(&format!(
                "<a href=\"{escaped}\">Confirm this email address</a>"
            )),
        "{html}"
    );
    assert!(
        !html.contains("sign-in") && !html.contains("Sign in"),
        "{html}"
    );

    // Without the code beside it the link is refused, and nothing is queued or sent.
    let queued = s.store().count_messages(&project_id).await.unwrap();
    assert_error(
        s.send(
            &key,
            &json!({"channel": "magic_link", "destination": "new@example.com", "code": token,
                    "link": link, "purpose": "confirm_address"}),
        )
        .await,
        422,
        "invalid_code",
    )
    .await;
    assert_eq!(s.store().count_messages(&project_id).await.unwrap(), queued);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(fakes.emails().await.len(), 1);
}

async fn sms_fails_visibly_when_only_resend_is_configured(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fakes = Fakes::accepting().await;
    let store = db.store().await;
    let (_, key) = acme(&store).await;
    let mut cfg = config(&db, &fakes);
    cfg.providers.twilio.twilio_account_sid = None;
    cfg.providers.twilio.twilio_auth_token = None;
    cfg.providers.twilio.twilio_from_number = None;
    let s = TestServer::start(&db, &cfg).await;
    let id = s
        .send_ok(
            &key,
            &json!({"channel": "sms", "destination": "+12015550123", "code": "123456"}),
        )
        .await;
    let v = s.wait_final(&key, &id).await;
    assert_eq!(v["status"], "failed");
    assert!(
        v["error"].as_str().unwrap().contains("TWILIO_ACCOUNT_SID"),
        "{v}"
    );
    let email = s
        .send_ok(
            &key,
            &json!({"channel": "email", "destination": "ok@example.com", "code": "123456"}),
        )
        .await;
    assert_eq!(s.wait_final(&key, &email).await["status"], "sent");
    assert!(fakes.sms().await.is_empty());
    assert!(s
        .store()
        .get_message_any(&id)
        .await
        .unwrap()
        .unwrap()
        .payload
        .is_none());
}

async fn readyz_reports_an_unreachable_database(backend: Backend) {
    let (s, _, _, key) = setup(backend).await;
    assert_eq!(
        s.http.get(s.url("/readyz")).send().await.unwrap().status(),
        200
    );
    s.store().close().await;
    let resp = s.http.get(s.url("/readyz")).send().await.unwrap();
    assert_error(resp, 503, "database_unavailable").await;
    assert_eq!(
        s.http.get(s.url("/healthz")).send().await.unwrap().status(),
        200
    );
    // A send with the database gone is a JSON 503, not a panic or a plain-text 500.
    let body = json!({"channel": "email", "destination": "a@example.com", "code": "123456"});
    assert_error(s.send(&key, &body).await, 503, "storage_unavailable").await;
}

/// Every 503 the server sends carries `Retry-After`, whichever route built it: `/readyz`, a
/// send, and the management API (whose 503 once had none).
async fn every_503_carries_retry_after(backend: Backend) {
    let (s, _, project_id, key) = setup(backend).await;
    let owner = owner_of(s.store(), &project_id).await;
    let op_token =
        futureauth_server::service::console::create_operator_token(s.store(), &owner, "t")
            .await
            .unwrap();
    s.store().close().await;
    let readyz = s.http.get(s.url("/readyz")).send().await.unwrap();
    let body = json!({"channel": "email", "destination": "a@example.com", "code": "123456"});
    let send = s.send(&key, &body).await;
    let manage = s
        .http
        .get(s.url("/api/v1/projects"))
        .bearer_auth(&op_token)
        .send()
        .await
        .unwrap();
    for (what, resp, code) in [
        ("/readyz", readyz, "database_unavailable"),
        ("a send", send, "storage_unavailable"),
        ("the management API", manage, "storage_unavailable"),
    ] {
        let headers = assert_error(resp, 503, code).await;
        assert_eq!(
            headers.get("retry-after").and_then(|v| v.to_str().ok()),
            Some("2"),
            "{what}"
        );
    }
}

backend_tests!(
    readyz_reports_an_unreachable_database,
    every_503_carries_retry_after,
    email_otp_is_delivered_through_resend,
    sms_otp_is_delivered_through_twilio,
    magic_links_are_built_from_allowed_callbacks,
    magic_link_without_any_callback_is_refused,
    a_callback_with_its_own_token_is_refused_and_sends_nothing,
    project_name_null_is_accepted,
    bad_input_is_refused_and_writes_nothing,
    unknown_routes_and_methods_answer_json,
    keys_authenticate_and_can_be_revoked_and_rotated,
    messages_are_private_to_their_project,
    idempotency_key_never_sends_twice,
    an_idempotency_key_retried_on_another_instance_replays,
    request_fingerprints_are_keyed_and_kept_only_with_an_idempotency_key,
    rate_limits_answer_429_with_retry_after,
    sms_goes_only_to_the_project_countries,
    projects_from_before_countries_keep_only_safe_nanp_regions,
    openapi_docs_and_llms_txt_agree,
    locale_picks_the_translation_and_defaults_to_english,
    dev_outbox_keeps_messages_when_no_provider_is_configured,
    sms_fails_visibly_when_only_resend_is_configured,
    address_change_messages_say_what_they_are,
    a_confirm_address_link_is_a_confirm_email_with_its_code,
);
