//! In-process work in parallel, for what is not measured: seeding the sign-in codes.
//! `concurrency` tasks take the next index until the work runs out or a deadline passes.
//! (Every measured row is driven by `wrk`: an in-process client shares the runtime and the
//! cores with the servers and squeezes ratios toward 1.00, issue 22.)

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

/// How the work went.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    /// Items done.
    pub ok: u64,
    /// Items that failed.
    pub failed: u64,
}

/// Runs `work(i)` from `concurrency` tasks until `duration` has passed; `i` counts up across
/// tasks and `work` answers `Ok(false)` when there is nothing left for `i`. Items answering
/// `Err` count as failed.
pub async fn run<F, Fut>(duration: Duration, concurrency: usize, work: F) -> Result<Stats>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<bool>> + Send,
{
    let work = Arc::new(work);
    let next = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.max(1) {
        let (work, next) = (work.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut stats = Stats::default();
            while Instant::now() < deadline {
                match work(next.fetch_add(1, Ordering::Relaxed)).await {
                    Ok(true) => stats.ok += 1,
                    Ok(false) => break,
                    Err(_) => stats.failed += 1,
                }
            }
            stats
        }));
    }
    let mut total = Stats::default();
    for task in tasks {
        let stats = task.await?;
        total.ok += stats.ok;
        total.failed += stats.failed;
    }
    if total.ok == 0 {
        bail!("nothing succeeded ({} failed)", total.failed);
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
