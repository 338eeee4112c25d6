//! Durable delivery: retries, permanent failures, and crash/restart without loss or duplicates,
//! against SQLite and Postgres.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

fn idem(r: &wiremock::Request) -> String {
    r.headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

async fn retryable_errors_are_retried_until_sent(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fakes = Fakes::bare().await;
    // 500, then 429, then 200.
    Mock::given(method("POST"))
        .and(path("/emails"))
        .respond_with(ResponseTemplate::new(500).set_body_string("boom"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&fakes.resend)
        .await;
    Mock::given(method("POST"))
        .and(path("/emails"))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({"message": "slow down"})))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&fakes.resend)
        .await;
    Mock::given(method("POST"))
        .and(path("/emails"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "re_ok"})))
        .with_priority(3)
        .mount(&fakes.resend)
        .await;
    let store = db.store().await;
    let (_, key) = acme(&store).await;
    let s = TestServer::start(&db, &config(&db, &fakes)).await;

    let id = s
        .send_ok(
            &key,
            &json!({"channel": "email", "destination": "r@example.com", "code": "123456"}),
        )
        .await;
    let v = s.wait_final(&key, &id).await;
    assert_eq!(v["status"], "sent", "{v}");
    assert_eq!(v["attempts"], 3);
    assert!(v["error"].is_null());
    let reqs = fakes.emails().await;
    assert_eq!(reqs.len(), 3, "500, 429, then one successful delivery");
    assert!(
        reqs.iter().all(|r| idem(r) == id),
        "every attempt carries the message id as Idempotency-Key"
    );
    // Nothing more arrives later.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fakes.emails().await.len(), 3);
}

async fn permanent_errors_fail_at_once_with_the_reason(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fakes = Fakes::bare().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"code": 21211, "message": "The 'To' number +12015550199 is not a valid phone number.", "status": 400}),
        ))
        .mount(&fakes.twilio).await;
    let store = db.store().await;
    let (_, key) = acme(&store).await;
    let s = TestServer::start(&db, &config(&db, &fakes)).await;
    let id = s
        .send_ok(
            &key,
            &json!({"channel": "sms", "destination": "+12015550199", "code": "123456"}),
        )
        .await;
    let v = s.wait_final(&key, &id).await;
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(v["attempts"], 1);
    let err = v["error"].as_str().unwrap();
    assert!(
        err.contains("not a valid phone number") && err.contains("21211") && err.contains("400"),
        "{err}"
    );
    // The recipient is not repeated in the error the tenant reads.
    assert!(!err.contains("2015550199"), "{err}");
    assert!(v["sent_at"].is_null());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fakes.sms().await.len(), 1);
    let row = s.store().get_message_any(&id).await.unwrap().unwrap();
    assert!(
        row.payload.is_none(),
        "the code is erased after failure too"
    );
}

/// What providers may echo back in an error: credentials, keys, the recipient.
async fn provider_errors_are_scrubbed_before_they_are_stored(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fakes = Fakes::bare().await;
    let sid = "AC0123456789abcdef0123456789abcdef";
    let token = "0123456789abcdef0123456789abcdef";
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "code": 20003,
            "message": format!(
                "Authenticate: account {sid} / {TWILIO_SID} with token {token} ({TWILIO_TOKEN}) \
                 at https://{TWILIO_SID}:{TWILIO_TOKEN}@api.twilio.com refused for To=+12015550123 (12015550123)"
            ),
        })))
        .mount(&fakes.twilio)
        .await;
    Mock::given(method("POST"))
        .and(path("/emails"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "message": format!(
                "API key {RESEND_KEY} (re_AbCdEf123456_live) is invalid; header Authorization: Bearer {RESEND_KEY}; \
                 recipient Victim@Example.com"
            ),
        })))
        .mount(&fakes.resend)
        .await;
    let store = db.store().await;
    let (_, key) = acme(&store).await;
    let s = TestServer::start(&db, &config(&db, &fakes)).await;
    let sms = s
        .send_ok(
            &key,
            &json!({"channel": "sms", "destination": "+12015550123", "code": "123456"}),
        )
        .await;
    let email = s
        .send_ok(
            &key,
            &json!({"channel": "email", "destination": "victim@example.com", "code": "123456"}),
        )
        .await;
    for id in [&sms, &email] {
        let v = s.wait_final(&key, id).await;
        assert_eq!(v["status"], "failed", "{v}");
        let shown = v["error"].as_str().unwrap().to_owned();
        let stored = s
            .store()
            .get_message_any(id)
            .await
            .unwrap()
            .unwrap()
            .last_error
            .unwrap();
        for text in [&shown, &stored] {
            assert!(
                text.contains("[redacted]") && text.contains("HTTP 40"),
                "{text}"
            );
            for secret in [
                sid,
                token,
                TWILIO_SID,
                TWILIO_TOKEN,
                RESEND_KEY,
                "re_AbCdEf123456_live",
                "2015550123",
                "victim@example.com",
                "Victim@Example.com",
            ] {
                assert!(!text.contains(secret), "{secret} in {text}");
            }
        }
    }
}

/// A provider error carrying a NUL byte (which Postgres refuses in text) is stored, not
/// retried forever on a database error.
async fn provider_errors_with_nul_bytes_are_stored(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fakes = Fakes::bare().await;
    Mock::given(method("POST"))
        .and(path("/emails"))
        .respond_with(ResponseTemplate::new(400).set_body_string("bad\u{0}request"))
        .mount(&fakes.resend)
        .await;
    let store = db.store().await;
    let (_, key) = acme(&store).await;
    let s = TestServer::start(&db, &config(&db, &fakes)).await;
    let id = s
        .send_ok(
            &key,
            &json!({"channel": "email", "destination": "n@example.com", "code": "123456"}),
        )
        .await;
    let v = s.wait_final(&key, &id).await;
    assert_eq!(v["status"], "failed", "{v}");
    assert!(v["error"].as_str().unwrap().contains("bad request"), "{v}");
}

async fn retries_stop_after_max_attempts(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fakes = Fakes::bare().await;
    Mock::given(method("POST"))
        .and(path("/emails"))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({"message": "unavailable"})))
        .mount(&fakes.resend)
        .await;
    let store = db.store().await;
    let (_, key) = acme(&store).await;
    let mut cfg = config(&db, &fakes);
    cfg.delivery.max_attempts = std::num::NonZeroU32::new(3).unwrap();
    let s = TestServer::start(&db, &cfg).await;
    let id = s
        .send_ok(
            &key,
            &json!({"channel": "email", "destination": "m@example.com", "code": "123456"}),
        )
        .await;
    let v = s.wait_final(&key, &id).await;
    assert_eq!(v["status"], "failed");
    assert_eq!(v["attempts"], 3);
    let err = v["error"].as_str().unwrap();
    assert!(
        err.contains("gave up after 3 attempts") && err.contains("unavailable"),
        "{err}"
    );
    assert_eq!(fakes.emails().await.len(), 3);
}

async fn a_crash_mid_queue_loses_nothing_and_sends_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fakes = Fakes::bare().await;
    // A slow provider, so the crash happens with sends in flight.
    Mock::given(method("POST"))
        .and(path("/emails"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "re"}))
                .set_delay(Duration::from_millis(400)),
        )
        .mount(&fakes.resend)
        .await;
    let store = db.store().await;
    let (_, key) = acme(&store).await;
    let mut cfg = config(&db, &fakes);
    cfg.delivery.lease_ms = 2_500;
    cfg.limits.limit_per_project_per_minute = std::num::NonZeroU32::new(1000).unwrap();
    let first = TestServer::start(&db, &cfg).await;
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(
            first
                .send_ok(&key, &json!({"channel": "email", "destination": format!("u{i}@example.com"), "code": format!("{i}00000")}))
                .await,
        );
    }
    // Crash once the first sends are in flight and before the queue is drained.
    eventually(10, "first sends to reach the provider", || async {
        !fakes.emails().await.is_empty()
    })
    .await;
    first.server.abort();
    let delivered_before = fakes.emails().await.len();
    assert!(
        delivered_before < ids.len(),
        "the crash must happen mid-queue"
    );
    let mut queued = 0;
    for id in &ids {
        if first
            .store()
            .get_message_any(id)
            .await
            .unwrap()
            .unwrap()
            .status
            == futureauth_server::store::MessageStatus::Queued
        {
            queued += 1;
        }
    }
    assert!(
        queued > 0,
        "some messages must still be queued after the crash"
    );
    first.store().close().await;

    // A new instance on the same database finishes the queue.
    let second = TestServer::start(&db, &cfg).await;
    for id in &ids {
        assert_eq!(second.wait_final(&key, id).await["status"], "sent");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reqs = fakes.emails().await;
    let mut per_key: HashMap<String, usize> = HashMap::new();
    for r in &reqs {
        *per_key.entry(idem(r)).or_default() += 1;
    }
    let keys: HashSet<&String> = per_key.keys().collect();
    let expected: HashSet<&String> = ids.iter().collect();
    assert_eq!(
        keys, expected,
        "every message reached the provider, under its own id"
    );
    // Only sends that were in flight at the crash may be repeated (same Idempotency-Key, so
    // the provider delivers them once); with 2 workers that is at most 2.
    let repeated: usize = per_key.values().map(|n| n - 1).sum();
    assert!(repeated <= 2, "{per_key:?}");
    let bodies: Vec<Value> = reqs
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert!(bodies
        .iter()
        .all(|b| b["text"].as_str().unwrap().contains("00000")));
}

async fn concurrent_instances_share_the_queue_without_double_sends(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fakes = Fakes::accepting().await;
    let store = db.store().await;
    let (_, key) = acme(&store).await;
    let mut cfg = config(&db, &fakes);
    cfg.limits.limit_per_project_per_minute = std::num::NonZeroU32::new(1000).unwrap();
    let a = TestServer::start(&db, &cfg).await;
    let b = TestServer::start(&db, &cfg).await;
    let mut ids = Vec::new();
    for i in 0..12 {
        let s = if i % 2 == 0 { &a } else { &b };
        ids.push(s.send_ok(&key, &json!({"channel": "email", "destination": format!("c{i}@example.com"), "code": "123456"})).await);
    }
    for id in &ids {
        assert_eq!(a.wait_final(&key, id).await["status"], "sent");
    }
    let reqs = fakes.emails().await;
    assert_eq!(reqs.len(), ids.len(), "each message sent exactly once");
    let keys: HashSet<String> = reqs.iter().map(idem).collect();
    assert_eq!(keys.len(), ids.len());
}

async fn graceful_shutdown_finishes_in_flight_sends(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fakes = Fakes::bare().await;
    Mock::given(method("POST"))
        .and(path("/emails"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "re"}))
                .set_delay(Duration::from_millis(400)),
        )
        .mount(&fakes.resend)
        .await;
    let store = db.store().await;
    let (_, key) = acme(&store).await;
    let mut s = TestServer::start(&db, &config(&db, &fakes)).await;
    let id = s
        .send_ok(
            &key,
            &json!({"channel": "email", "destination": "g@example.com", "code": "123456"}),
        )
        .await;
    eventually(10, "the send to reach the provider", || async {
        !fakes.emails().await.is_empty()
    })
    .await;
    s.server.shutdown(Duration::from_secs(5)).await;
    let row = s.store().get_message_any(&id).await.unwrap().unwrap();
    assert_eq!(
        row.status.as_str(),
        "sent",
        "the in-flight send was finished, not abandoned"
    );
    assert!(
        s.http.get(s.url("/healthz")).send().await.is_err(),
        "no longer listening"
    );
}

async fn connection_errors_are_retryable(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fakes = Fakes::accepting().await;
    let store = db.store().await;
    let (_, key) = acme(&store).await;
    // A port with nothing listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut cfg = config(&db, &fakes);
    cfg.providers.resend.resend_api_url = dead_url;
    cfg.delivery.max_attempts = std::num::NonZeroU32::new(2).unwrap();
    let s = TestServer::start(&db, &cfg).await;
    let id = s
        .send_ok(
            &key,
            &json!({"channel": "email", "destination": "c@example.com", "code": "123456"}),
        )
        .await;
    let v = s.wait_final(&key, &id).await;
    assert_eq!(v["status"], "failed");
    assert_eq!(v["attempts"], 2, "retried once before giving up: {v}");
    let err = v["error"].as_str().unwrap();
    assert!(
        err.contains("gave up after 2 attempts") && err.contains("connection error"),
        "{err}"
    );
}

async fn twilio_messaging_service_replaces_from(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fakes = Fakes::accepting().await;
    let store = db.store().await;
    let (_, key) = acme(&store).await;
    let mut cfg = config(&db, &fakes);
    cfg.providers.twilio.twilio_messaging_service_sid = Some("MG_test".into());
    let s = TestServer::start(&db, &cfg).await;
    let id = s
        .send_ok(
            &key,
            &json!({"channel": "sms", "destination": "+447400123456", "code": "123456"}),
        )
        .await;
    assert_eq!(s.wait_final(&key, &id).await["status"], "sent");
    let reqs = fakes.sms().await;
    assert_eq!(reqs.len(), 1);
    let form: HashMap<String, String> = url::form_urlencoded::parse(&reqs[0].body)
        .into_owned()
        .collect();
    assert_eq!(
        form.get("MessagingServiceSid").map(String::as_str),
        Some("MG_test")
    );
    assert!(!form.contains_key("From"));
    assert_eq!(form["To"], "+447400123456");
}

backend_tests!(
    graceful_shutdown_finishes_in_flight_sends,
    connection_errors_are_retryable,
    twilio_messaging_service_replaces_from,
    retryable_errors_are_retried_until_sent,
    permanent_errors_fail_at_once_with_the_reason,
    retries_stop_after_max_attempts,
    provider_errors_are_scrubbed_before_they_are_stored,
    provider_errors_with_nul_bytes_are_stored,
    a_crash_mid_queue_loses_nothing_and_sends_once,
    concurrent_instances_share_the_queue_without_double_sends,
);
