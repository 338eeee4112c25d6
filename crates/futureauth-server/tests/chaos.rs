//! Chaos: the server on its own private PostgreSQL cluster, which is crashed mid-traffic
//! (`pg_ctl stop -m immediate`) and started again. With the default pool timeouts, during
//! the outage every send answers `202` or `503 storage_unavailable` with `Retry-After`
//! within about 2 s, `/readyz` answers `503` within 1 s and `/healthz` `200`; after the
//! restart the service recovers by itself within seconds, and every message accepted
//! before, during or after the outage reaches the (fake) provider exactly once.
//!
//! Frozen instead of crashed (`SIGSTOP` on only that cluster's processes: sockets stay open,
//! nothing answers, `statement_timeout` cannot fire), with sends held inside Postgres by a
//! table lock when it freezes and new sends and management calls arriving during it: every
//! answer comes within `--db-call-timeout` with `503 storage_unavailable` and `Retry-After`,
//! never a hang, 401 or 500; after `SIGCONT` the workers resume by themselves and every
//! accepted message is delivered exactly once.

mod common;
mod pg_cluster;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use futureauth_server::store::{Store, StoreOptions};
use futureauth_server::Config;
use pg_cluster::Cluster;
use serde_json::{json, Value};
use tokio::net::TcpListener;

/// The bound on any answer of the delivery API while the database is down: the 2 s
/// acquire timeout plus scheduling slack on a busy 2-core machine.
const SEND_BOUND: Duration = Duration::from_millis(3_000);
/// The bound on `/readyz` (its own timeout is 800 ms).
const READY_BOUND: Duration = Duration::from_millis(1_000);
/// The bound on recovery after the database is back.
const RECOVERY_BOUND: Duration = Duration::from_secs(6);

/// One answer to `POST /api/v1/otp/send`.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    code: Option<String>,
    retry_after: Option<String>,
    id: Option<String>,
    latency: Duration,
}

async fn send_once(http: &reqwest::Client, url: &str, key: &str, n: usize) -> Answer {
    let started = Instant::now();
    let resp = http
        .post(format!("{url}/api/v1/otp/send"))
        .bearer_auth(key)
        .json(&json!({"channel": "email", "destination": format!("chaos{n}@example.com"), "code": "123456"}))
        .send()
        .await;
    let resp = match resp {
        Ok(r) => r,
        Err(e) => panic!(
            "request {n} got no answer after {:?}: {e}",
            started.elapsed()
        ),
    };
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        code: body["error"]["code"].as_str().map(str::to_owned),
        retry_after,
        id: body["id"].as_str().map(str::to_owned),
        latency: started.elapsed(),
    }
}

async fn get_timed(http: &reqwest::Client, url: &str) -> (u16, Value, Duration) {
    let started = Instant::now();
    let resp = http.get(url).send().await.expect("an answer");
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body, started.elapsed())
}

fn chaos_config(url: &str, fakes: &Fakes) -> Config {
    let db = TestDb {
        backend: Backend::Postgres,
        url: url.to_owned(),
    };
    let mut config = config(&db, fakes);
    // The production defaults of everything this test is about.
    let defaults = Config::default();
    config.database.db_acquire_timeout_ms = defaults.database.db_acquire_timeout_ms;
    config.database.db_statement_timeout_ms = defaults.database.db_statement_timeout_ms;
    config.delivery.lease_ms = defaults.delivery.lease_ms;
    config.delivery.provider_timeout_ms = defaults.delivery.provider_timeout_ms;
    config.limits.limit_per_project_per_minute = NonZeroU32::new(100_000).unwrap();
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_crash_gets_fast_honest_answers_and_loses_nothing() {
    let cluster = Cluster::start();
    cluster.create_database("server");
    let url = cluster.url("server");
    let fakes = Fakes::accepting().await;
    let store = Store::connect_with(&url, &StoreOptions::default())
        .await
        .expect("open the store");
    let (_, key) = acme(&store).await;
    store.close().await;
    let cfg = chaos_config(&url, &fakes);
    let server = futureauth_server::start(&cfg, TcpListener::bind("127.0.0.1:0").await.unwrap())
        .await
        .expect("start the server");
    let base = server.url();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();

    // Four clients send without pause for the whole test.
    let answers: Arc<Mutex<Vec<(Instant, Answer)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut senders = Vec::new();
    for client in 0..4 {
        let (http, base, key, answers, stop) = (
            http.clone(),
            base.clone(),
            key.clone(),
            answers.clone(),
            stop.clone(),
        );
        senders.push(tokio::spawn(async move {
            let mut n = client * 100_000;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let started = Instant::now();
                let a = send_once(&http, &base, &key, n).await;
                answers.lock().unwrap().push((started, a));
                n += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Crash the database mid-traffic.
    cluster.crash().await;
    let crashed_at = Instant::now();
    let mut ready_latencies = Vec::new();
    while crashed_at.elapsed() < Duration::from_secs(5) {
        let (status, body, latency) = get_timed(&http, &format!("{base}/readyz")).await;
        assert_eq!(status, 503, "readyz during the outage: {body}");
        assert_eq!(body["error"]["code"], "database_unavailable", "{body}");
        assert!(latency <= READY_BOUND, "readyz took {latency:?}: {body}");
        ready_latencies.push(latency);
        let (status, _, latency) = get_timed(&http, &format!("{base}/healthz")).await;
        assert_eq!(
            status, 200,
            "healthz is about the process, not the database"
        );
        assert!(
            latency <= Duration::from_millis(500),
            "healthz took {latency:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Bring it back: the service recovers by itself.
    cluster.restart().await;
    let restarted_at = Instant::now();
    let ready_after = loop {
        let (status, body, _) = get_timed(&http, &format!("{base}/readyz")).await;
        if status == 200 {
            assert_eq!(body["status"], "ready", "{body}");
            break restarted_at.elapsed();
        }
        assert!(
            restarted_at.elapsed() < RECOVERY_BOUND,
            "readyz still {status} {body} after {:?}",
            restarted_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let accepting_after = loop {
        let accepted = answers
            .lock()
            .unwrap()
            .iter()
            .any(|(started, a)| *started > restarted_at && a.status == 202);
        if accepted {
            break restarted_at.elapsed();
        }
        assert!(
            restarted_at.elapsed() < RECOVERY_BOUND,
            "no send accepted {:?} after the restart",
            restarted_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in senders {
        s.await.expect("sender task");
    }

    let answers = answers.lock().unwrap().clone();
    let during: Vec<&Answer> = answers
        .iter()
        .filter(|(started, _)| *started >= crashed_at && *started < restarted_at)
        .map(|(_, a)| a)
        .collect();
    for a in answers.iter().map(|(_, a)| a) {
        match a.status {
            202 => assert!(a.id.is_some(), "{a:?}"),
            503 => {
                assert_eq!(a.code.as_deref(), Some("storage_unavailable"), "{a:?}");
                assert!(a.retry_after.is_some(), "503 without Retry-After: {a:?}");
            }
            _ => panic!("only 202 and the documented 503 are allowed: {a:?}"),
        }
        assert!(
            a.latency <= SEND_BOUND,
            "an answer took {:?}: {a:?}",
            a.latency
        );
    }
    assert!(
        during.iter().filter(|a| a.status == 503).count() >= 4,
        "the outage was seen: {during:?}"
    );
    let max_503 = answers
        .iter()
        .filter(|(_, a)| a.status == 503)
        .map(|(_, a)| a.latency)
        .max()
        .unwrap_or_default();
    let max_ready = ready_latencies.iter().max().copied().unwrap_or_default();

    // Every accepted message reaches the provider exactly once.
    let accepted: Vec<String> = answers.iter().filter_map(|(_, a)| a.id.clone()).collect();
    assert!(
        accepted.len() >= 20,
        "traffic before and after: {}",
        accepted.len()
    );
    eventually(20, "every accepted message delivered", || async {
        let delivered = fakes.emails().await;
        let keys: std::collections::HashSet<String> = delivered
            .iter()
            .filter_map(|r| r.headers.get("idempotency-key"))
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        accepted.iter().all(|id| keys.contains(id))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut per_key: HashMap<String, usize> = HashMap::new();
    for r in fakes.emails().await {
        let k = r
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        *per_key.entry(k).or_default() += 1;
    }
    let twice: Vec<_> = per_key.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    for id in &accepted {
        let row = server
            .state
            .store
            .get_message_any(id)
            .await
            .unwrap()
            .expect("accepted message stored");
        assert_eq!(row.status.as_str(), "sent", "{id}: {row:?}");
    }
    eprintln!(
        "chaos numbers: {} sends ({} during the outage); slowest 503 {max_503:?}; slowest \
         readyz during the outage {max_ready:?}; readyz back {ready_after:?} and first send \
         accepted {accepting_after:?} after the restart; {} messages delivered once each",
        answers.len(),
        during.len(),
        accepted.len()
    );
}

/// The `--db-call-timeout` of the freeze test (short, so the test is quick).
const CALL_BOUND: Duration = Duration::from_secs(2);
/// What a loaded 2-core test machine may add to it.
const CALL_SLACK: Duration = Duration::from_millis(1_500);
/// How long the cluster stays frozen: several bounds, well under the 60 s lease.
const FREEZE: Duration = Duration::from_secs(10);

/// `GET /api/v1/projects` with an operator token: status, error code, `Retry-After`, time.
async fn list_projects(
    http: &reqwest::Client,
    base: &str,
    token: &str,
) -> (u16, Option<String>, bool, Duration) {
    let started = Instant::now();
    let resp = http
        .get(format!("{base}/api/v1/projects"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("no answer after {:?}: {e}", started.elapsed()));
    let status = resp.status().as_u16();
    let retry_after = resp.headers().contains_key("retry-after");
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let code = body["error"]["code"].as_str().map(str::to_owned);
    (status, code, retry_after, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_frozen_database_gets_bounded_answers_and_delivers_exactly_once() {
    let cluster = Cluster::start();
    cluster.create_database("server");
    let url = cluster.url("server");
    let fakes = Fakes::accepting().await;
    let store = Store::connect_with(&url, &StoreOptions::default())
        .await
        .expect("open the store");
    let (project_id, key) = acme(&store).await;
    let owner = owner_of(&store, &project_id).await;
    let op_token =
        futureauth_server::service::console::create_operator_token(&store, &owner, "chaos")
            .await
            .expect("operator token");
    store.close().await;
    let mut cfg = chaos_config(&url, &fakes);
    cfg.database.db_call_timeout = Some(CALL_BOUND);
    let server = futureauth_server::start(&cfg, TcpListener::bind("127.0.0.1:0").await.unwrap())
        .await
        .expect("start the server");
    let base = server.url();
    // Longer than the freeze: a request that waits for the resume fails the bound check
    // below instead of hanging the test.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    assert_eq!(list_projects(&http, &base, &op_token).await.0, 200);

    let answers: Arc<Mutex<Vec<(Instant, Answer)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut senders = Vec::new();
    for client in 0..4 {
        let (http, base, key, answers, stop) = (
            http.clone(),
            base.clone(),
            key.clone(),
            answers.clone(),
            stop.clone(),
        );
        senders.push(tokio::spawn(async move {
            let mut n = client * 100_000;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let started = Instant::now();
                let a = send_once(&http, &base, &key, n).await;
                answers.lock().unwrap().push((started, a));
                n += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Sends (and the workers' claims) held inside Postgres when it freezes.
    let mut locker = {
        use sqlx::Connection;
        sqlx::PgConnection::connect(&url).await.unwrap()
    };
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE outbox IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.freeze();
    let frozen_at = Instant::now();
    let mut manage = Vec::new();
    let mut ready_latencies = Vec::new();
    while frozen_at.elapsed() + CALL_BOUND + CALL_SLACK < FREEZE {
        manage.push(list_projects(&http, &base, &op_token).await);
        let (status, body, latency) = get_timed(&http, &format!("{base}/readyz")).await;
        assert_eq!(status, 503, "readyz while frozen: {body}");
        assert!(latency <= READY_BOUND, "readyz took {latency:?}: {body}");
        ready_latencies.push(latency);
        let (status, _, _) = get_timed(&http, &format!("{base}/healthz")).await;
        assert_eq!(status, 200, "healthz is about the process");
    }
    tokio::time::sleep(FREEZE.saturating_sub(frozen_at.elapsed())).await;
    cluster.thaw();
    let thawed_at = Instant::now();
    drop(locker);

    let ready_after = loop {
        let (status, body, _) = get_timed(&http, &format!("{base}/readyz")).await;
        if status == 200 {
            break thawed_at.elapsed();
        }
        assert!(
            thawed_at.elapsed() < RECOVERY_BOUND,
            "readyz still {status} {body} after {:?}",
            thawed_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let accepting_after = loop {
        let accepted = answers
            .lock()
            .unwrap()
            .iter()
            .any(|(started, a)| *started > thawed_at && a.status == 202);
        if accepted {
            break thawed_at.elapsed();
        }
        assert!(
            thawed_at.elapsed() < RECOVERY_BOUND,
            "no send accepted {:?} after the resume",
            thawed_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(list_projects(&http, &base, &op_token).await.0, 200);
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in senders {
        s.await.expect("sender task");
    }

    for (status, code, retry_after, took) in &manage {
        assert_eq!(
            (*status, code.as_deref(), *retry_after),
            (503, Some("storage_unavailable"), true),
            "management API while frozen"
        );
        assert!(
            *took <= CALL_BOUND + CALL_SLACK,
            "management call took {took:?}"
        );
    }
    assert!(!manage.is_empty());
    let answers = answers.lock().unwrap().clone();
    for a in answers.iter().map(|(_, a)| a) {
        match a.status {
            202 => assert!(a.id.is_some(), "{a:?}"),
            503 => {
                assert_eq!(a.code.as_deref(), Some("storage_unavailable"), "{a:?}");
                assert!(a.retry_after.is_some(), "503 without Retry-After: {a:?}");
            }
            _ => panic!("only 202 and the documented 503 are allowed: {a:?}"),
        }
        assert!(
            a.latency <= CALL_BOUND + CALL_SLACK,
            "an answer took {:?}, over the bound: {a:?}",
            a.latency
        );
    }
    // Sends that were inside Postgres (behind the lock) when it froze.
    let in_flight = answers
        .iter()
        .filter(|(started, a)| *started < frozen_at && *started + a.latency > frozen_at)
        .count();
    assert!(in_flight >= 1, "a send was in flight at the freeze");
    let during = answers
        .iter()
        .filter(|(started, _)| *started >= frozen_at && *started < thawed_at)
        .count();
    assert!(during >= 4, "sends arrived during the freeze: {during}");
    let slowest = answers
        .iter()
        .filter(|(_, a)| a.status == 503)
        .map(|(_, a)| a.latency)
        .chain(manage.iter().map(|m| m.3))
        .max()
        .unwrap_or_default();

    let accepted: Vec<String> = answers.iter().filter_map(|(_, a)| a.id.clone()).collect();
    assert!(
        accepted.len() >= 20,
        "traffic before and after: {}",
        accepted.len()
    );
    eventually(30, "every accepted message delivered", || async {
        let delivered = fakes.emails().await;
        let keys: std::collections::HashSet<String> = delivered
            .iter()
            .filter_map(|r| r.headers.get("idempotency-key"))
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        accepted.iter().all(|id| keys.contains(id))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut per_key: HashMap<String, usize> = HashMap::new();
    for r in fakes.emails().await {
        let k = r
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        *per_key.entry(k).or_default() += 1;
    }
    let twice: Vec<_> = per_key.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    for id in &accepted {
        let row = server
            .state
            .store
            .get_message_any(id)
            .await
            .unwrap()
            .expect("accepted message stored");
        assert_eq!(row.status.as_str(), "sent", "{id}: {row:?}");
    }
    eprintln!(
        "freeze numbers: {} sends ({in_flight} in flight at the freeze, {during} during it), {} \
         management calls; slowest 503 {slowest:?} (bound {CALL_BOUND:?}); slowest readyz {:?}; \
         readyz back {ready_after:?} and first send accepted {accepting_after:?} after the \
         resume; {} messages delivered once each",
        answers.len(),
        manage.len(),
        ready_latencies.iter().max().copied().unwrap_or_default(),
        accepted.len()
    );
}
