//! The demo on Postgres, over HTTP: a fresh schema per run, the email-code flow with a
//! cookie jar, `/api/me`, rate limiting and sign-out.
//!
//! Uses `DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`. Fails (never
//! skips) when Postgres is unreachable.

mod common;

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Context, Result};
use futureauth::delivery::DevOutbox;
use futureauth::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use futureauth::sqlx::{self, PgPool};
use futureauth_demo::{build_app, serve, DemoConfig, DemoDatabase, DemoDelivery};
use reqwest::StatusCode;
use serde_json::{json, Value};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

async fn flow(base: &str, outbox: &DevOutbox, pool: &PgPool) -> Result<()> {
    let http = common::Api::new(base)?;

    let me = http.get(format!("{base}/api/me")).send().await?;
    ensure!(
        me.status() == StatusCode::UNAUTHORIZED,
        "/api/me before sign-in: {}",
        me.status()
    );

    http.post_ok(
        "/api/auth/send-otp",
        &json!({ "email": "Linus@Example.org" }),
    )
    .await?;
    let code = outbox
        .latest_for("linus@example.org")
        .context("no code in the dev outbox")?
        .code;

    let wrong = http
        .post(format!("{base}/api/auth/verify-otp"))
        .json(&json!({ "email": "linus@example.org", "code": if code == "000000" { "111111" } else { "000000" } }))
        .send()
        .await?;
    ensure!(
        wrong.status() == StatusCode::BAD_REQUEST,
        "wrong code: {}",
        wrong.status()
    );
    let body: Value = wrong.json().await?;
    ensure!(
        body["error"]["code"] == "invalid_code",
        "wrong code answer {body}"
    );

    let verified = http
        .post_ok(
            "/api/auth/verify-otp",
            &json!({ "email": "linus@example.org", "code": code }),
        )
        .await?;
    let cookie = verified
        .headers()
        .get("set-cookie")
        .context("no session cookie")?
        .to_str()?
        .to_string();
    ensure!(
        cookie.contains("HttpOnly") && !cookie.contains("Secure"),
        "cookie flags: {cookie}"
    );

    let me = http.get_json("/api/me").await?;
    ensure!(me["user"]["email"] == "linus@example.org", "/api/me: {me}");
    let sessions = http.get_json("/api/auth/sessions").await?;
    ensure!(
        sessions["sessions"][0]["current"] == true,
        "sessions: {sessions}"
    );

    // The tables live in the test's own schema.
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM \"user\"")
        .fetch_one(pool)
        .await?;
    ensure!(users == 1, "expected 1 user in the schema, found {users}");

    // The dev outbox answers at the demo's own address only: a DNS-rebinding page (its
    // own name resolved to 127.0.0.1) sends its own Host and reads nothing.
    let port = base.rsplit(':').next().context("port")?;
    for (host, expected) in [
        (format!("127.0.0.1:{port}"), StatusCode::OK),
        (format!("localhost:{port}"), StatusCode::OK),
        (
            format!("evil.example:{port}"),
            StatusCode::MISDIRECTED_REQUEST,
        ),
        ("evil.example".to_string(), StatusCode::MISDIRECTED_REQUEST),
        (
            format!("127.0.0.1:{}", port.parse::<u16>()? ^ 1),
            StatusCode::MISDIRECTED_REQUEST,
        ),
    ] {
        let page = http
            .get(format!("{base}/dev/outbox"))
            .header("host", &host)
            .header("accept", "application/json")
            .send()
            .await?;
        ensure!(page.status() == expected, "Host {host}: {}", page.status());
        if expected != StatusCode::OK {
            ensure!(
                !page.text().await?.contains(&code),
                "the code leaked to Host {host}"
            );
        }
    }

    // The magic-link page never signs in on GET.
    let page = http
        .get(format!("{base}/auth/verify?token=abc"))
        .send()
        .await?;
    ensure!(page.status() == StatusCode::OK && page.headers().get("set-cookie").is_none());
    ensure!(page.text().await?.contains("app.js"));

    // Sends are rate-limited per address; the answer says when to retry.
    let mut limited = None;
    for _ in 0..10 {
        let r = http
            .post(format!("{base}/api/auth/send-otp"))
            .json(&json!({ "email": "busy@example.org" }))
            .send()
            .await?;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r);
            break;
        }
        ensure!(r.status() == StatusCode::OK, "send-otp: {}", r.status());
    }
    let limited = limited.context("sending never hit the rate limit")?;
    ensure!(
        limited.headers().get("retry-after").is_some(),
        "429 without Retry-After"
    );
    let body: Value = limited.json().await?;
    ensure!(body["error"]["code"] == "rate_limited", "429 body {body}");

    let out = http
        .post(format!("{base}/api/auth/sign-out"))
        .json(&json!({}))
        .send()
        .await?;
    ensure!(out.status() == StatusCode::OK, "sign-out: {}", out.status());
    let me = http.get(format!("{base}/api/me")).send().await?;
    ensure!(
        me.status() == StatusCode::UNAUTHORIZED,
        "/api/me after sign-out: {}",
        me.status()
    );
    Ok(())
}

#[tokio::test]
async fn email_code_flow_on_postgres() -> Result<()> {
    let url = std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
        .unwrap_or_else(|| DEFAULT_URL.to_string());
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&url)
        .await
        .with_context(|| {
            format!("Postgres is unreachable at {url}: start it or set DATABASE_URL")
        })?;
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let schema = format!("demo_{:x}_{}", nanos, std::process::id());
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await?;

    let options = PgConnectOptions::from_str(&url)?.options([("search_path", schema.as_str())]);
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await?;
    let outbox = DevOutbox::quiet();
    let mut cfg = DemoConfig::dev(DemoDatabase::Pool(pool.clone().into()));
    cfg.delivery = DemoDelivery::DevOutbox(outbox.clone());
    let outcome = async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let demo = build_app(cfg.serve_at(listener.local_addr()?)).await?;
        let server = tokio::spawn(serve(demo.router, listener));
        let outcome = flow(&base, &outbox, &pool).await;
        server.abort();
        outcome
    }
    .await;

    pool.close().await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await?;
    outcome
}
