//! Prometheus metrics, served at `GET /metrics` on the separate `--metrics-listen` address.
//!
//! Counters and the provider histogram are recorded where things happen (the send handler,
//! the worker, the rate limiter); the queue gauges are read from the store at scrape time,
//! so every instance reports the shared queue as it is now.
//!
//! Why a separate listener: the numbers show traffic volume and provider health, which the
//! public port (reachable by anyone who can send a request) need not reveal. Bind it to an
//! address only Prometheus reaches; it is off unless configured.

use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::service::now_ms;
use crate::store::{MessageChannel, Store};

/// Messages accepted, by `channel`.
pub const ACCEPTED: &str = "futureauth_messages_accepted_total";
/// Outcomes of delivery attempts, by `channel` and `state` (`sent`, `failed`, `retry`).
pub const OUTCOMES: &str = "futureauth_messages_total";
/// Provider call latency in seconds, by `provider`, `channel` and `result`.
pub const PROVIDER_SECONDS: &str = "futureauth_provider_request_duration_seconds";
/// Failed provider calls, by `provider`, `channel` and `kind` (`retryable`, `permanent`).
pub const PROVIDER_ERRORS: &str = "futureauth_provider_errors_total";
/// Sends refused by a rate limit, by `scope`.
pub const RATE_LIMITED: &str = "futureauth_rate_limited_total";
/// Provider status events recorded, by `provider` and `state`.
pub const PROVIDER_EVENTS: &str = "futureauth_provider_events_total";
/// Messages waiting in the outbox.
pub const QUEUE_DEPTH: &str = "futureauth_queue_depth";
/// Age in seconds of the oldest waiting message (0 when the queue is empty).
pub const QUEUE_OLDEST_AGE: &str = "futureauth_queue_oldest_age_seconds";

/// Buckets of the provider latency histogram (seconds): providers answer in tens to
/// hundreds of milliseconds; the provider timeout is 10 s.
const LATENCY_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide recorder's handle, installing the recorder on first use.
///
/// The `metrics` macros write to one global recorder, so several servers in one process
/// (tests) share the counters; each scrape still reads its own store's queue.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(PROVIDER_SECONDS.into()), LATENCY_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics stays empty");
        }
        describe();
        handle
    })
}

fn describe() {
    metrics::describe_counter!(ACCEPTED, "Messages accepted into the outbox");
    metrics::describe_counter!(OUTCOMES, "Delivery attempt outcomes (sent, failed, retry)");
    metrics::describe_histogram!(
        PROVIDER_SECONDS,
        metrics::Unit::Seconds,
        "Latency of provider calls"
    );
    metrics::describe_counter!(PROVIDER_ERRORS, "Failed provider calls");
    metrics::describe_counter!(RATE_LIMITED, "Sends refused by a rate limit");
    metrics::describe_counter!(
        PROVIDER_EVENTS,
        "Provider status events recorded (delivered, bounced, complained, ...)"
    );
    metrics::describe_gauge!(QUEUE_DEPTH, "Messages waiting in the outbox");
    metrics::describe_gauge!(
        QUEUE_OLDEST_AGE,
        metrics::Unit::Seconds,
        "Age of the oldest waiting message"
    );
}

/// A message was accepted on `channel`.
pub fn accepted(channel: MessageChannel) {
    metrics::counter!(ACCEPTED, "channel" => channel.as_str()).increment(1);
}

/// A delivery attempt ended in `state` (`sent`, `failed`, `retry`).
pub fn outcome(channel: MessageChannel, state: &'static str) {
    metrics::counter!(OUTCOMES, "channel" => channel.as_str(), "state" => state).increment(1);
}

/// A provider call took `elapsed` and ended with `result` (`ok`, `retryable`, `permanent`).
pub fn provider_call(
    provider: &'static str,
    channel: MessageChannel,
    elapsed: Duration,
    result: &'static str,
) {
    let channel = channel.as_str();
    metrics::histogram!(PROVIDER_SECONDS, "provider" => provider, "channel" => channel, "result" => result)
        .record(elapsed.as_secs_f64());
    if result != "ok" {
        metrics::counter!(PROVIDER_ERRORS, "provider" => provider, "channel" => channel, "kind" => result)
            .increment(1);
    }
}

/// A provider reported a new `state` of one of our messages.
pub fn provider_event(provider: &'static str, state: &'static str) {
    metrics::counter!(PROVIDER_EVENTS, "provider" => provider, "state" => state).increment(1);
}

/// A send was refused by the `scope` rate limit.
pub fn rate_limited(scope: &'static str) {
    metrics::counter!(RATE_LIMITED, "scope" => scope).increment(1);
}

/// The metrics router: `GET /metrics` only.
pub fn router(store: Store) -> Router {
    // Install early so counters recorded before the first scrape are kept.
    handle();
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(store)
}

/// `GET /metrics`: the queue gauges from the store, then everything in the text format.
/// A store that does not answer leaves the gauges at their last value.
async fn scrape(State(store): State<Store>) -> impl IntoResponse {
    let stats = tokio::time::timeout(Duration::from_secs(2), store.queue_stats()).await;
    match stats {
        Ok(Ok(stats)) => {
            metrics::gauge!(QUEUE_DEPTH).set(stats.depth as f64);
            let age_ms = stats
                .oldest_created_at
                .map(|t| now_ms().saturating_sub(t.into()).max(0))
                .unwrap_or(0);
            metrics::gauge!(QUEUE_OLDEST_AGE).set(age_ms as f64 / 1000.0);
        }
        _ => tracing::warn!("/metrics: queue statistics unavailable"),
    }
    let h = handle();
    h.run_upkeep();
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        h.render(),
    )
}
