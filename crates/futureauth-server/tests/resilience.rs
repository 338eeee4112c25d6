//! Degrading well, on SQLite and Postgres: load shedding, statement timeouts, outcomes kept
//! across a database hiccup, a provider down for a while, and the outbox's growth made
//! visible (`/readyz`) and bounded (`expired_in_queue`). Database trouble is made real by
//! a second connection holding a lock, never by mocking the store.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::*;
use futureauth_server::cleanup::{expire_queued, EXPIRED_IN_QUEUE};
use futureauth_server::clock::UnixMillis;
use futureauth_server::provider::{EmailMessage, Outgoing};
use futureauth_server::service::now_ms;
use futureauth_server::store::{EnqueueOutcome, MessageChannel, NewMessage};
use serde_json::{json, Value};
use sqlx::Connection;
use wiremock::matchers::{method, path};
use wiremock::{Mock, Request, ResponseTemplate};

/// A second connection holding a lock that blocks the service's writes: on Postgres an
/// `ACCESS EXCLUSIVE` lock on `table`, on SQLite the database's write lock.
enum Lock {
    Postgres(sqlx::PgConnection),
    Sqlite(sqlx::SqliteConnection),
}

impl Lock {
    async fn take(db: &TestDb, table: &str) -> Lock {
        match db.backend {
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
                sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
                sqlx::query(&format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                Lock::Postgres(conn)
            }
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
                sqlx::query("BEGIN IMMEDIATE")
                    .execute(&mut conn)
                    .await
                    .unwrap();
                Lock::Sqlite(conn)
            }
        }
    }

    async fn release(self) {
        match self {
            Lock::Postgres(mut c) => {
                sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
            }
            Lock::Sqlite(mut c) => {
                sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
            }
        }
    }
}

/// `POST /api/v1/otp/send` that gives up after 8 s, so a missing bound fails the test
/// instead of hanging it.
async fn send_within(s: &TestServer, key: &str, body: &Value) -> reqwest::Response {
    s.http
        .post(s.url("/api/v1/otp/send"))
        .bearer_auth(key)
        .json(body)
        .timeout(Duration::from_secs(8))
        .send()
        .await
        .expect("an answer within 8 s")
}

fn email(to: &str) -> Value {
    json!({"channel": "email", "destination": to, "code": "123456"})
}

fn idem(r: &Request) -> String {
    r.headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

async fn requests_over_the_bound_are_refused_at_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fakes = Fakes::accepting().await;
    let store = db.store().await;
    let (_, key) = acme(&store).await;
    let mut cfg = config(&db, &fakes);
    cfg.max_in_flight = std::num::NonZeroUsize::new(2).unwrap();
    cfg.database.db_acquire_timeout_ms = 10_000;
    cfg.database.db_statement_timeout_ms = 10_000;
    let s = TestServer::start(&db, &cfg).await;

    // Two sends stuck behind a lock fill the bound.
    let lock = Lock::take(&db, "rate_counter").await;
    let stuck: Vec<_> = (0..2)
        .map(|i| {
            let (http, url, key) = (s.http.clone(), s.url("/api/v1/otp/send"), key.clone());
            tokio::spawn(async move {
                http.post(url)
                    .bearer_auth(key)
                    .json(&email(&format!("stuck{i}@example.com")))
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let started = Instant::now();
    let resp = send_within(&s, &key, &email("third@example.com")).await;
    let took = started.elapsed();
    assert_eq!(resp.status(), 503);
    let retry_after = resp.headers().get("retry-after").cloned();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "overloaded", "{body}");
    assert!(retry_after.is_some(), "503 overloaded without Retry-After");
    assert!(
        took < Duration::from_millis(500),
        "refused at once, not queued: {took:?}"
    );
    // Probes are outside the bound.
    let health = s.http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    lock.release().await;
    for task in stuck {
        assert_eq!(task.await.unwrap(), 202);
    }
    s.send_ok(&key, &email("after@example.com")).await;
    assert_eq!(
        s.store()
            .count_messages(&acme_project(&s).await)
            .await
            .unwrap(),
        3,
        "the refused request wrote nothing"
    );
}

async fn acme_project(s: &TestServer) -> String {
    s.store().list_projects().await.unwrap()[0].id.clone()
}

async fn a_statement_stuck_on_a_lock_times_out_as_a_503(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fakes = Fakes::accepting().await;
    let store = db.store().await;
    let (_, key) = acme(&store).await;
    let mut cfg = config(&db, &fakes);
    cfg.database.db_statement_timeout_ms = 1_000;
    cfg.database.db_acquire_timeout_ms = 10_000;
    cfg.delivery.workers = std::num::NonZeroUsize::new(1).unwrap();
    let s = TestServer::start(&db, &cfg).await;

    let lock = Lock::take(&db, "rate_counter").await;
    let started = Instant::now();
    let resp = send_within(&s, &key, &email("slow@example.com")).await;
    let took = started.elapsed();
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "storage_unavailable", "{body}");
    // SQLite has one connection: the worker's claims and the start-up clean-up, stuck on the
    // same lock, may each hold it for one statement timeout before each of the request's
    // statements (the project's console overrides, then the enqueue), seen at up to 5 s
    // when the machine is busy. Without the statement timeout each of those waits is
    // SQLite's 5 s busy timeout instead, far beyond this bound.
    let bound = match backend {
        Backend::Postgres => Duration::from_millis(2_000),
        Backend::Sqlite => Duration::from_millis(7_000),
    };
    assert!(
        took < bound,
        "the statement timeout (1 s) ends the wait: {took:?}"
    );
    lock.release().await;
    s.send_ok(&key, &email("fast@example.com")).await;
}

async fn an_outcome_is_kept_until_the_database_takes_it(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fakes = Fakes::bare().await;
    Mock::given(method("POST"))
        .and(path("/emails"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "re_slow"}))
                .set_delay(Duration::from_millis(1_000)),
        )
        .mount(&fakes.resend)
        .await;
    let store = db.store().await;
    let (_, key) = acme(&store).await;
    let mut cfg = config(&db, &fakes);
    cfg.delivery.workers = std::num::NonZeroUsize::new(1).unwrap();
    cfg.delivery.lease_ms = 2_000;
    cfg.delivery.provider_timeout_ms = 1_500;
    cfg.database.db_statement_timeout_ms = 200;
    let s = TestServer::start(&db, &cfg).await;

    let id = s.send_ok(&key, &email("kept@example.com")).await;
    eventually(5, "the claim", || async {
        s.store()
            .get_message_any(&id)
            .await
            .unwrap()
            .unwrap()
            .attempts
            == 1
    })
    .await;
    // The provider accepts the message while the database refuses every write, for
    // longer than the lease.
    let lock = Lock::take(&db, "outbox").await;
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    lock.release().await;
    let v = s.wait_final(&key, &id).await;
    assert_eq!(v["status"], "sent", "{v}");
    assert_eq!(v["attempts"], 1, "{v}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        fakes.emails().await.len(),
        1,
        "the expired lease must not lead to a second send"
    );
}

async fn a_provider_outage_is_retried_with_backoff_and_sent_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fakes = Fakes::bare().await;
    // Resend answers 503 from its first call until the test ends the outage, and for at
    // least 1.5 s: measured from the provider's first call, not from the test's start, so a
    // slow start on a loaded machine cannot shorten the outage.
    let first_call: Arc<OnceLock<Instant>> = Arc::default();
    let up = Arc::new(AtomicBool::new(false));
    let (first, is_up) = (first_call.clone(), up.clone());
    Mock::given(method("POST"))
        .and(path("/emails"))
        .respond_with(move |_: &Request| {
            let t0 = *first.get_or_init(Instant::now);
            if is_up.load(Ordering::SeqCst) && t0.elapsed() >= OUTAGE {
                ResponseTemplate::new(200).set_body_json(json!({"id": "re_back"}))
            } else {
                ResponseTemplate::new(503).set_body_json(json!({"message": "down for maintenance"}))
            }
        })
        .mount(&fakes.resend)
        .await;
    let store = db.store().await;
    let (_, key) = acme(&store).await;
    let mut cfg = config(&db, &fakes);
    cfg.delivery.retry_base_ms = 100;
    cfg.delivery.max_attempts = std::num::NonZeroU32::new(10).unwrap();
    let s = TestServer::start(&db, &cfg).await;

    let ids: Vec<String> = futures_ids(&s, &key, 5).await;
    // While the provider is down, every message is retried and the status says so.
    eventually(
        10,
        "every message tried twice during the outage",
        || async {
            for id in &ids {
                let row = s.store().get_message_any(id).await.unwrap().unwrap();
                if row.attempts < 2 {
                    return false;
                }
            }
            true
        },
    )
    .await;
    let (_, v) = s.status(&key, &ids[0]).await;
    assert_eq!(v["status"], "queued", "{v}");
    assert!(v["attempts"].as_i64().unwrap() >= 2, "retried: {v}");
    let err = v["error"].as_str().unwrap_or("");
    assert!(err.contains("503"), "the provider's answer is visible: {v}");
    up.store(true, Ordering::SeqCst);

    for id in &ids {
        let v = s.wait_final(&key, id).await;
        assert_eq!(v["status"], "sent", "{v}");
        assert!(v["error"].is_null(), "{v}");
    }
    let outage = first_call.get().expect("the provider was called").elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut accepted: HashMap<String, usize> = HashMap::new();
    let mut tries: HashMap<String, usize> = HashMap::new();
    for r in fakes.emails().await {
        *tries.entry(idem(&r)).or_default() += 1;
    }
    // Count the calls per message from the attempts recorded by the server (the last
    // attempt is the accepted one).
    for id in &ids {
        let row = s.store().get_message_any(id).await.unwrap().unwrap();
        let n = tries.get(id).copied().unwrap_or(0);
        assert_eq!(
            i64::try_from(n).unwrap(),
            row.attempts,
            "every attempt reached the provider once: {id}"
        );
        assert!(n >= 2, "{id} was retried during the outage");
        accepted.insert(id.clone(), n);
    }
    // Backoff: with a 100 ms base, doubling, an outage of d makes about 2 + log2(d / 100 ms)
    // calls per message (6 for the 1.5 s outage on an idle machine), where retrying every
    // poll interval (50 ms) would make d / 50 ms (30 for 1.5 s).
    let doublings = (outage.as_millis() / 100).max(1).ilog2() as usize + 1;
    let total: usize = accepted.values().sum();
    assert!(
        total <= 5 * (2 + doublings),
        "backoff keeps the calls down: {total} over {outage:?}"
    );
}

/// How long the provider stays down, at least, from its first call.
const OUTAGE: Duration = Duration::from_millis(1_500);

async fn futures_ids(s: &TestServer, key: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(s.send_ok(key, &email(&format!("out{i}@example.com"))).await);
    }
    ids
}

async fn enqueue_aged(s: &TestServer, project_id: &str, age: Duration, n: usize) -> String {
    // A real message id (`msg_` + 24 of [a-z0-9]): the API parses ids before any lookup.
    let id = format!("msg_aged{n}{:0>19}", now_ms() % 10_i64.pow(12));
    let created = UnixMillis::now() - age;
    let outcome = s
        .store()
        .enqueue(
            &NewMessage {
                id: id.clone(),
                project_id: project_id.to_owned(),
                channel: MessageChannel::Email,
                destination: format!("aged{n}@example.com"),
                payload: serde_json::to_string(&Outgoing::Email(EmailMessage {
                    from: "a@futureauth.test".into(),
                    to: format!("aged{n}@example.com"),
                    subject: "code".into(),
                    text: "123456".into(),
                    html: "123456".into(),
                    request: None,
                }))
                .unwrap(),
                idempotency_key: None,
                request_hash: None,
                destination_hash: None,
                test: false,
            },
            &[],
            created,
        )
        .await
        .unwrap();
    assert!(matches!(outcome, EnqueueOutcome::Created(_)));
    id
}

async fn readyz_shows_the_queue_and_old_messages_expire(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fakes = Fakes::bare().await;
    Mock::given(method("POST"))
        .and(path("/emails"))
        .respond_with(ResponseTemplate::new(503).set_body_string("down"))
        .mount(&fakes.resend)
        .await;
    let store = db.store().await;
    let (project_id, key) = acme(&store).await;
    let mut cfg = config(&db, &fakes);
    cfg.delivery.retry_base_ms = 600_000;
    cfg.delivery.max_queue_age_secs = 600;
    let s = TestServer::start(&db, &cfg).await;

    let resp = s.http.get(s.url("/readyz")).send().await.unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["queue_depth"], 0, "{v}");
    assert!(v["oldest_queued_age_secs"].is_null(), "{v}");

    // Two messages stay queued (the provider is down; the next attempt is far away).
    let waiting = s.send_ok(&key, &email("wait1@example.com")).await;
    s.send_ok(&key, &email("wait2@example.com")).await;
    eventually(5, "first attempts", || async {
        fakes.emails().await.len() == 2
    })
    .await;
    // One was accepted 5 minutes ago.
    let old = enqueue_aged(&s, &project_id, Duration::from_secs(300), 1).await;
    let v: Value = s
        .http
        .get(s.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "ready", "{v}");
    assert_eq!(v["queue_depth"], 3, "{v}");
    let age = v["oldest_queued_age_secs"].as_i64().unwrap();
    assert!((300..310).contains(&age), "{v}");
    // The old one is still worth sending (300 s < 600 s): it is tried.
    eventually(5, "the old message tried", || async {
        fakes.emails().await.iter().any(|r| idem(r) == old)
    })
    .await;

    // A message accepted longer ago than the maximum queue age is failed, not sent.
    let sent_before = fakes.emails().await.len();
    let expired = enqueue_aged(&s, &project_id, Duration::from_secs(3_600), 2).await;
    let v = s.wait_final(&key, &expired).await;
    assert_eq!(v["status"], "failed", "{v}");
    assert!(
        v["error"].as_str().unwrap().starts_with(EXPIRED_IN_QUEUE),
        "{v}"
    );
    assert_eq!(
        fakes.emails().await.len(),
        sent_before,
        "an expired message is never handed to the provider"
    );
    let row = s.store().get_message_any(&expired).await.unwrap().unwrap();
    assert!(row.payload.is_none(), "the code is erased");
    assert!(!row.destination.contains("aged2@"), "{}", row.destination);

    // A queued message waiting for a retry is swept by the cleanup once too old.
    let later = UnixMillis::now() + Duration::from_secs(700);
    let n = expire_queued(s.store(), later, cfg.delivery.max_queue_age())
        .await
        .unwrap();
    assert_eq!(n, 3, "the three waiting messages");
    let v = s.wait_final(&key, &waiting).await;
    assert_eq!(v["status"], "failed", "{v}");
    assert!(
        v["error"].as_str().unwrap().starts_with(EXPIRED_IN_QUEUE),
        "{v}"
    );
    let v: Value = s
        .http
        .get(s.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["queue_depth"], 0, "{v}");
}

backend_tests!(
    requests_over_the_bound_are_refused_at_once,
    a_statement_stuck_on_a_lock_times_out_as_a_503,
    an_outcome_is_kept_until_the_database_takes_it,
    a_provider_outage_is_retried_with_backoff_and_sent_once,
    readyz_shows_the_queue_and_old_messages_expire,
);
