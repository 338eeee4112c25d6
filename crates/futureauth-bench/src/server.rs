//! The delivery server: accepted sends/s on Postgres (each `202` means durably queued) and
//! its memory. The server runs in a child process of its own (this binary, `server-child`),
//! so that its RSS is its own; a fake Resend in this process answers the deliveries.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use futureauth_server::service::projects::create_project_with;
use futureauth_server::service::settings::{ProjectName, ProjectSettings};
use futureauth_server::Config;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::wrk::{self, Script, WrkOptions, WrkRun};

/// The child: starts the server on `database_url` with Resend at `resend_url`, prints
/// `READY <url> <secret key>`, and runs until its stdin closes (the parent is done or gone).
pub async fn child(database_url: String, resend_url: String) -> Result<()> {
    let mut config = Config::default();
    config.database.database_url = Some(database_url.clone());
    config.providers.resend.resend_api_key = Some("re_bench".into());
    config.providers.resend.resend_api_url = resend_url;
    config.limits.limit_per_destination = NonZeroU32::MAX;
    config.limits.limit_per_project_per_minute = NonZeroU32::MAX;
    let store = futureauth_server::store::Store::connect(&database_url).await?;
    let settings = ProjectSettings {
        name: Some(ProjectName::parse("Bench").map_err(anyhow::Error::msg)?),
        ..ProjectSettings::default()
    };
    let created = create_project_with(&store, None, settings).await?;
    drop(store);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = futureauth_server::start(&config, listener).await?;
    println!("READY {} {}", server.url(), created.secret_key);
    let mut sink = Vec::new();
    tokio::io::stdin().read_to_end(&mut sink).await?;
    server.abort();
    Ok(())
}

/// The server's measurement.
pub struct ServerRun {
    /// One instance, driven by one wrk.
    pub one: WrkRun,
    /// Two instances on the same database, each driven by a wrk of its own, at once.
    pub two: [WrkRun; 2],
    pub idle_rss_kib: u64,
    pub peak_rss_kib: u64,
    /// Deliveries the fake Resend received during the one-instance run.
    pub delivered: u64,
    /// Deliveries once the row's last sends had up to 20 s more to arrive.
    pub delivered_after: u64,
    /// Of those, deliveries of a message delivered before (by its idempotency key).
    pub delivered_twice: u64,
}

fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// What the fake Resend received: every delivery, and the messages among them (by the
/// `Idempotency-Key` the server sends, the message id), so that one delivered twice shows.
#[derive(Default)]
struct Received {
    deliveries: AtomicU64,
    messages: std::sync::Mutex<HashSet<String>>,
}

impl Received {
    /// Deliveries so far, and how many of them were a message delivered before.
    fn counts(&self) -> (u64, u64) {
        let messages = self
            .messages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len() as u64;
        let deliveries = self.deliveries.load(Ordering::SeqCst);
        (deliveries, deliveries.saturating_sub(messages))
    }
}

async fn fake_resend() -> Result<(String, Arc<Received>)> {
    let received = Arc::new(Received::default());
    let log = received.clone();
    let app = Router::new().route(
        "/emails",
        post(move |headers: HeaderMap| {
            let key = headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            log.messages
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(key);
            log.deliveries.fetch_add(1, Ordering::SeqCst);
            async { Json(json!({ "id": "re_bench" })) }
        }),
    );
    Ok((crate::apps::serve(app).await?, received))
}

/// A server child on `database_url` delivering to `resend`: the process, its URL, its
/// project's secret key and its pid.
async fn start_child(database_url: &str, resend: &str) -> Result<(Child, String, String, u32)> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("server-child")
        .arg(database_url)
        .arg(resend)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().context("child pid")?;
    let (url, key) = ready_line(&mut child).await?;
    Ok((child, url, key, pid))
}

/// Closes the child's stdin, which ends it; kills it if it lingers.
async fn stop_child(mut child: Child) -> Result<()> {
    drop(child.stdin.take());
    if tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .is_err()
    {
        child.kill().await?;
    }
    Ok(())
}

/// Unique email sends to the server at `url` for `options.seconds`, by wrk; every answer
/// must be a 202.
async fn sends(url: &str, key: &str, prefix: &str, options: WrkOptions) -> Result<WrkRun> {
    let script = Script {
        name: "sends",
        source: wrk::SENDS_LUA,
        args: vec![key.to_string(), prefix.to_string()],
    };
    let run = wrk::run_script(
        url,
        &script,
        WrkOptions {
            threads: 1,
            ..options
        },
    )
    .await?;
    if run.failed() > 0 {
        bail!(
            "{} of {} sends were not accepted (or hit a socket error)",
            run.failed(),
            run.requests
        );
    }
    Ok(run)
}

async fn ready_line(child: &mut Child) -> Result<(String, String)> {
    let stdout = child.stdout.take().context("child stdout")?;
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(60),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .context("the server did not start within 60 s")??;
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next(), parts.next()) {
        (Some("READY"), Some(url), Some(key)) => Ok((url.to_string(), key.to_string())),
        _ => bail!("the server child said {line:?}"),
    }
}

/// Starts a server child on `database_url`, measures its idle RSS, drives it with wrk
/// for `options.seconds`, reads its peak RSS; then, once the first run's messages are
/// delivered (or 20 s have passed), starts a second instance on the same database and
/// drives both at once, a wrk each.
pub async fn measure(database_url: &str, options: WrkOptions) -> Result<ServerRun> {
    let (resend, received) = fake_resend().await?;
    let (first, url, key, pid) = start_child(database_url, &resend).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss_kib = status_kib(pid, "VmRSS:")?;
    let one = sends(&url, &key, "one-", options).await?;
    let peak_rss_kib = status_kib(pid, "VmHWM:")?;
    let (delivered, _) = received.counts();

    let drained = tokio::time::Instant::now() + Duration::from_secs(20);
    while received.counts().0 < one.requests && tokio::time::Instant::now() < drained {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (delivered_after, delivered_twice) = received.counts();
    let (second, url2, key2, _) = start_child(database_url, &resend).await?;
    let (a, b) = tokio::join!(
        sends(&url, &key, "two-a-", options),
        sends(&url2, &key2, "two-b-", options)
    );
    stop_child(first).await?;
    stop_child(second).await?;
    Ok(ServerRun {
        one,
        two: [a?, b?],
        idle_rss_kib,
        peak_rss_kib,
        delivered,
        delivered_after,
        delivered_twice,
    })
}
