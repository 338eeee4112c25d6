//! The in-process load generator: `concurrency` client tasks on keep-alive connections, each
//! sending one request after the other until a deadline (or until the work runs out), every
//! latency recorded in a histogram.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use hdrhistogram::Histogram;

/// What one row of the table measured.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Successful requests.
    pub ok: u64,
    /// Requests that failed or got an unexpected status.
    pub failed: u64,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Latencies of successful requests, in microseconds.
    pub latency: Histogram<u64>,
}

impl Stats {
    pub fn empty() -> Self {
        Self {
            ok: 0,
            failed: 0,
            elapsed: Duration::ZERO,
            latency: new_histogram(),
        }
    }

    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn p50_ms(&self) -> f64 {
        self.latency.value_at_quantile(0.50) as f64 / 1000.0
    }

    pub fn p99_ms(&self) -> f64 {
        self.latency.value_at_quantile(0.99) as f64 / 1000.0
    }
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs to 60 s with 3 significant digits; these bounds are valid by construction.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("static histogram bounds")
}

/// Runs `request(i)` from `concurrency` tasks until `duration` has passed; `i` counts up
/// across tasks and `request` answers `Ok(false)` when there is no work left for `i`.
/// Requests answering `Err` count as failed. Every request started before the deadline is
/// finished and counted.
pub async fn run<F, Fut>(duration: Duration, concurrency: usize, request: F) -> Result<Stats>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<bool>> + Send,
{
    let request = Arc::new(request);
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.max(1) {
        let (request, next) = (request.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut stats = Stats::empty();
            while Instant::now() < deadline {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let sent = Instant::now();
                match request(i).await {
                    Ok(true) => {
                        stats.ok += 1;
                        let micros = sent.elapsed().as_micros().clamp(1, 60_000_000) as u64;
                        let _ = stats.latency.record(micros);
                    }
                    Ok(false) => break,
                    Err(_) => stats.failed += 1,
                }
            }
            stats
        }));
    }
    let mut total = Stats::empty();
    for task in tasks {
        let stats = task.await?;
        total.ok += stats.ok;
        total.failed += stats.failed;
        let _ = total.latency.add(&stats.latency);
    }
    total.elapsed = started.elapsed();
    if total.ok == 0 {
        bail!("no request succeeded ({} failed)", total.failed);
    }
    Ok(total)
}

/// A keep-alive HTTP client for `concurrency` tasks.
pub fn client(concurrency: usize) -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?)
}

/// Sends `request` and reads the body; true when the status is `expect`.
pub async fn expect(request: reqwest::RequestBuilder, expect: u16) -> Result<bool> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    response.bytes().await?;
    if status != expect {
        bail!("status {status}, expected {expect}");
    }
    Ok(true)
}
