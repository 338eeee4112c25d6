//! Chaos: the demo app on its own private PostgreSQL cluster, crashed while a user is
//! signed in (`pg_ctl stop -m immediate`) and started again. During the outage `/api/me`
//! (the `AuthSession` extractor), `/api/auth/session` and sign-in answer
//! `503 {"error": {"code": "unavailable"}}` with `Retry-After` within about 2 s: never
//! "signed out" (401), never a bare 500, never a hang. After the restart the same session
//! works again within seconds, without signing in again.

mod common;
#[path = "../../../crates/futureauth-server/tests/pg_cluster/mod.rs"]
mod pg_cluster;

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use futureauth::delivery::DevOutbox;
use futureauth_demo::{build_app, serve, DemoConfig, DemoDatabase};
use pg_cluster::Cluster;
use serde_json::{json, Value};

/// Bound on any answer while the database is down: the demo pool's 2 s acquire timeout
/// plus scheduling slack on a busy machine.
const OUTAGE_BOUND: Duration = Duration::from_millis(3_000);
/// Bound on recovery after the database is back.
const RECOVERY_BOUND: Duration = Duration::from_secs(6);

async fn sign_in(api: &common::Api, outbox: &DevOutbox, email: &str) -> Result<()> {
    api.post_ok("/api/auth/send-otp", &json!({ "email": email }))
        .await?;
    let code = outbox
        .latest_for(email)
        .context("no code in the outbox")?
        .code;
    api.post_ok(
        "/api/auth/verify-otp",
        &json!({ "email": email, "code": code }),
    )
    .await?;
    Ok(())
}

/// Status, error code, `Retry-After` and latency of one request.
async fn probe(request: reqwest::RequestBuilder) -> Result<(u16, Value, bool, Duration)> {
    let started = Instant::now();
    let resp = request.send().await.context("no answer")?;
    let status = resp.status().as_u16();
    let retry_after = resp.headers().contains_key("retry-after");
    let body = resp.json().await.unwrap_or(Value::Null);
    Ok((status, body, retry_after, started.elapsed()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_demo_answers_unavailable_during_a_database_crash_and_recovers() -> Result<()> {
    let cluster = Cluster::start();
    cluster.create_database("app");
    // Exactly what `DATABASE_URL=postgres://… cargo run -p futureauth-demo` builds.
    let demo = build_app(DemoConfig::dev(DemoDatabase::Url(cluster.url("app")))).await?;
    let outbox = demo.outbox.clone().context("dev outbox")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(serve(demo.router, listener));

    let api = common::Api::new(&base)?;
    sign_in(&api, &outbox, "ada@example.org").await?;
    let me = api.get_json("/api/me").await?;
    let user_id = me["user"]["id"].clone();

    cluster.crash().await;
    let crashed_at = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut rounds = 0;
    while crashed_at.elapsed() < Duration::from_secs(4) {
        let checks = [
            ("GET /api/me", api.get(format!("{base}/api/me"))),
            (
                "GET /api/auth/session",
                api.get(format!("{base}/api/auth/session")),
            ),
            (
                "POST /api/auth/send-otp",
                api.post(format!("{base}/api/auth/send-otp"))
                    .header("origin", &base)
                    .json(&json!({ "email": "grace@example.org" })),
            ),
            (
                "POST /api/auth/verify-otp",
                api.post(format!("{base}/api/auth/verify-otp"))
                    .header("origin", &base)
                    .json(&json!({ "email": "grace@example.org", "code": "abc123" })),
            ),
        ];
        for (what, request) in checks {
            let (status, body, retry_after, latency) = probe(request).await?;
            ensure!(
                status == 503 && body["error"]["code"] == "unavailable",
                "{what} during the outage: {status} {body}"
            );
            ensure!(retry_after, "{what}: 503 without Retry-After");
            ensure!(
                latency <= OUTAGE_BOUND,
                "{what} took {latency:?} during the outage"
            );
            slowest = slowest.max(latency);
        }
        rounds += 1;
    }
    ensure!(rounds >= 1, "no probe completed during the outage");

    cluster.restart().await;
    let restarted_at = Instant::now();
    let recovered_after = loop {
        let (status, body, _, _) = probe(api.get(format!("{base}/api/me"))).await?;
        if status == 200 {
            ensure!(
                body["user"]["id"] == user_id,
                "same user after recovery: {body}"
            );
            break restarted_at.elapsed();
        }
        ensure!(
            status == 503 && body["error"]["code"] == "unavailable",
            "after the restart: {status} {body}"
        );
        ensure!(
            restarted_at.elapsed() < RECOVERY_BOUND,
            "/api/me still {status} {:?} after the restart",
            restarted_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Signing in works again too.
    let other = common::Api::new(&base)?;
    sign_in(&other, &outbox, "grace@example.org").await?;
    eprintln!(
        "demo chaos numbers: slowest answer during the outage {slowest:?} ({rounds} rounds of 4 \
         routes); /api/me back {recovered_after:?} after the restart"
    );
    Ok(())
}
