//! `GET /metrics`: Prometheus text format on its own listener, counters moving with traffic.
//!
//! One test runs both backends one after the other: the `metrics` recorder is global to the
//! process, so parallel tests would overwrite each other's queue gauges between set and render.

mod common;

use std::time::Duration;

use common::*;
use prometheus_parse::{Scrape, Value};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

async fn scrape(http: &reqwest::Client, addr: std::net::SocketAddr) -> Scrape {
    let resp = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = resp.text().await.unwrap();
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text format")
}

/// The value of the sample `name` whose labels include all of `labels` (0 when absent); for a
/// histogram, its observation count.
fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    s.samples
        .iter()
        .filter(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match &x.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets
                .iter()
                .find(|b| b.less_than.is_infinite())
                .map(|b| b.count)
                .unwrap_or(0.0),
            Value::Summary(_) => 0.0,
        })
        .sum()
}

async fn metrics_move_with_traffic_on(backend: Backend) {
    let db = TestDb::new(backend).await;
    // Resend answers after 1.5 s, so the first email waits (claimed, still `queued`) long
    // enough to be seen in the queue gauges.
    let fakes = Fakes::bare().await;
    Mock::given(method("POST"))
        .and(path("/emails"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "re_1"}))
                .set_delay(Duration::from_millis(1_500)),
        )
        .mount(&fakes.resend)
        .await;
    let store = db.store().await;
    let (_, key) = acme(&store).await;
    let mut cfg = config(&db, &fakes);
    cfg.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    cfg.limits.limit_per_destination = std::num::NonZeroU32::new(1).unwrap();
    // Twilio unreachable (a closed port), one attempt: the SMS fails at once.
    cfg.providers.twilio.twilio_api_url = "http://127.0.0.1:9".into();
    cfg.delivery.max_attempts = std::num::NonZeroU32::new(1).unwrap();

    let s = TestServer::start(&db, &cfg).await;
    let at = s.server.metrics_addr.expect("metrics listener");
    let public = s.http.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(
        public.status(),
        404,
        "metrics must not be on the public port"
    );
    let before = scrape(&s.http, at).await;
    let waiting = s
        .send_ok(
            &key,
            &json!({"channel": "email", "destination": "wait@example.com", "code": "111111"}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let queued = scrape(&s.http, at).await;
    assert_eq!(value(&queued, "futureauth_queue_depth", &[]), 1.0);
    assert!(value(&queued, "futureauth_queue_oldest_age_seconds", &[]) >= 1.0);
    let email = [("channel", "email")];
    assert!(
        value(&queued, "futureauth_messages_accepted_total", &email)
            >= value(&before, "futureauth_messages_accepted_total", &email) + 1.0
    );
    // A second message to the same address is refused by the per-destination limit.
    let refused = s
        .send(
            &key,
            &json!({"channel": "email", "destination": "wait@example.com", "code": "222222"}),
        )
        .await;
    assert_eq!(refused.status(), 429);

    // The email is sent, the SMS fails, the queue drains.
    assert_eq!(s.wait_final(&key, &waiting).await["status"], "sent");
    let sms = s
        .send_ok(
            &key,
            &json!({"channel": "sms", "destination": "+447400123456", "code": "333333"}),
        )
        .await;
    assert_eq!(s.wait_final(&key, &sms).await["status"], "failed");
    // The worker counts an outcome right after recording it: scrape until the SMS failure
    // shows (bounded), so a loaded machine cannot race the assertion.
    let failed = [("channel", "sms"), ("state", "failed")];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let after = loop {
        let after = scrape(&s.http, at).await;
        let moved = value(&after, "futureauth_messages_total", &failed)
            - value(&before, "futureauth_messages_total", &failed);
        if moved >= 1.0 || std::time::Instant::now() > deadline {
            break after;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(value(&after, "futureauth_queue_depth", &[]), 0.0);
    assert_eq!(
        value(&after, "futureauth_queue_oldest_age_seconds", &[]),
        0.0
    );
    let moved = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    assert!(
        moved(
            "futureauth_messages_total",
            &[("channel", "email"), ("state", "sent")]
        ) >= 1.0
    );
    assert!(
        moved(
            "futureauth_messages_total",
            &[("channel", "sms"), ("state", "failed")]
        ) >= 1.0
    );
    assert!(moved("futureauth_messages_accepted_total", &[("channel", "sms")]) >= 1.0);
    assert!(moved("futureauth_rate_limited_total", &[("scope", "destination")]) >= 1.0);
    assert!(
        moved(
            "futureauth_provider_request_duration_seconds",
            &[("provider", "resend"), ("result", "ok")]
        ) >= 1.0
    );
    assert!(
        moved(
            "futureauth_provider_errors_total",
            &[("provider", "twilio"), ("kind", "retryable")]
        ) >= 1.0
    );
}

#[tokio::test]
async fn metrics_move_with_traffic() {
    metrics_move_with_traffic_on(Backend::Sqlite).await;
    metrics_move_with_traffic_on(Backend::Postgres).await;
}
