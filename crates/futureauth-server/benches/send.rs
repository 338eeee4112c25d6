//! Load benchmark: the server on Postgres with a wiremock fake Resend; fires N accepted sends
//! over loopback with bounded concurrency and duration, then prints accepted sends/s and the
//! process RSS at idle and after the load.
//!
//! `CARGO_TARGET_DIR=/work/target-server cargo bench -p futureauth-server --bench send`
//! Knobs: `BENCH_N` (default 2000), `BENCH_CONCURRENCY` (32), `BENCH_MAX_SECS` (30),
//! `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`; a fresh schema is used).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futureauth_server::service::projects::{create_project, ProjectInput};
use futureauth_server::Config;
use serde_json::json;
use sqlx::Connection;
use tokio::net::TcpListener;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(|l| l.trim_start_matches("VmRSS:").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let n = env_usize("BENCH_N", 2000);
    let concurrency = env_usize("BENCH_CONCURRENCY", 32).max(1);
    let max_secs = env_usize("BENCH_MAX_SECS", 30) as u64;

    let base = std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("fa_bench_{}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(&base).await?;
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
        .execute(&mut conn)
        .await?;
    let sep = if base.contains('?') { '&' } else { '?' };
    let db_url = format!("{base}{sep}options=-c%20search_path%3D{schema}");

    let resend = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/emails"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "re"})))
        .mount(&resend)
        .await;

    let config = Config {
        database_url: Some(db_url.clone()),
        resend_api_key: Some("re_bench".into()),
        resend_api_url: resend.uri(),
        twilio_account_sid: Some("AC_bench".into()),
        twilio_auth_token: Some("token".into()),
        twilio_from_number: Some("+15550000000".into()),
        twilio_api_url: resend.uri(),
        limit_per_destination: u32::MAX,
        limit_per_project_per_minute: u32::MAX,
        ..Config::default()
    };
    let store = futureauth_server::store::Store::connect(&db_url).await?;
    let created = create_project(
        &store,
        ProjectInput {
            name: "Bench".into(),
            ..Default::default()
        },
    )
    .await?;
    let key = created.secret_key;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let server = futureauth_server::start(&config, listener).await?;
    let url = format!("{}/api/v1/otp/send", server.url());
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!("RSS idle: {}", rss_kib());

    let http = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    let rejected = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(max_secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, url, key) = (http.clone(), url.clone(), key.clone());
        let (next, accepted, rejected) = (next.clone(), accepted.clone(), rejected.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n || Instant::now() > deadline {
                    break;
                }
                let body = json!({"channel": "email", "destination": format!("u{i}@bench.test"), "code": "123456"});
                match http.post(&url).bearer_auth(&key).json(&body).send().await {
                    Ok(r) if r.status().as_u16() == 202 => {
                        accepted.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        rejected.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let elapsed = started.elapsed();
    let ok = accepted.load(Ordering::Relaxed);
    println!(
        "accepted {ok} sends ({} rejected) in {:.2} s with concurrency {concurrency}: {:.0} accepted sends/s",
        rejected.load(Ordering::Relaxed),
        elapsed.as_secs_f64(),
        ok as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    println!("RSS after load: {}", rss_kib());

    // Let the workers drain the queue (bounded), then report delivery throughput.
    let drain_deadline = Instant::now() + Duration::from_secs(max_secs);
    loop {
        let delivered = resend
            .received_requests()
            .await
            .map(|r| r.len())
            .unwrap_or(0);
        if delivered >= ok || Instant::now() > drain_deadline {
            println!(
                "delivered {delivered}/{ok} to the fake provider {:.2} s after the first request",
                started.elapsed().as_secs_f64()
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("RSS after delivery: {}", rss_kib());
    server.abort();
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(&mut conn)
        .await?;
    Ok(())
}
