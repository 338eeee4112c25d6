//! Sign-in storms: `count` users, each with a code waiting, all calling
//! `POST /api/auth/verify-otp` at once, each from its own address (`X-Forwarded-For`).
//! A sign-in is the code check, the user upsert and the session insert.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use futureauth::{FutureAuth, OtpChannel};
use serde_json::json;

use crate::apps::CodeBook;
use crate::load::{self, Stats};

/// Generous, bounded time for seeding the codes (not measured).
const SEED_TIME: Duration = Duration::from_secs(120);

fn address(i: u64) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

/// The storm itself: `codes[i]` is user i's email and code.
async fn storm(
    http: &reqwest::Client,
    base: &str,
    codes: Vec<(String, String)>,
    duration: Duration,
    concurrency: usize,
) -> Result<Stats> {
    let codes = Arc::new(codes);
    let (http, url, origin) = (
        http.clone(),
        format!("{base}/api/auth/verify-otp"),
        base.to_string(),
    );
    load::run(duration, concurrency, move |i| {
        let (http, url, origin, codes) = (http.clone(), url.clone(), origin.clone(), codes.clone());
        async move {
            let Some((email, code)) = codes.get(i as usize) else {
                return Ok(false);
            };
            let request = http
                .post(url)
                .header("origin", origin)
                .header("x-forwarded-for", address(i))
                .json(&json!({ "email": email, "code": code }));
            load::expect(request, 200).await
        }
    })
    .await
}

/// This SDK: codes sent through its dev outbox, then the storm on its HTTP routes.
pub async fn sdk(
    auth: Arc<FutureAuth>,
    outbox: &CodeBook,
    http: &reqwest::Client,
    base: &str,
    count: u64,
    duration: Duration,
    concurrency: usize,
) -> Result<Stats> {
    let seeded = {
        let auth = auth.clone();
        load::run(SEED_TIME, concurrency, move |i| {
            let auth = auth.clone();
            async move {
                if i >= count {
                    return Ok(false);
                }
                auth.send_otp(OtpChannel::Email, &format!("new{i}@signin.test"))
                    .await?;
                Ok(true)
            }
        })
        .await?
    };
    if seeded.failed > 0 || seeded.ok < count {
        anyhow::bail!("only {} of {count} codes could be sent", seeded.ok);
    }
    let mut codes = Vec::with_capacity(count as usize);
    for i in 0..seeded.ok {
        let email = format!("new{i}@signin.test");
        let code = outbox.code_for(&email)?;
        codes.push((email, code));
    }
    storm(http, base, codes, duration, concurrency).await
}

/// futureauth 0.5.1: codes stored directly (it has no dev delivery), then the storm.
pub async fn sdk05(
    auth: Arc<futureauth05::FutureAuth>,
    http: &reqwest::Client,
    base: &str,
    count: u64,
    duration: Duration,
    concurrency: usize,
) -> Result<Stats> {
    let code_of = |i: u64| format!("{:06}", (i * 7919) % 1_000_000);
    let seeded = {
        let auth = auth.clone();
        load::run(SEED_TIME, concurrency, move |i| {
            let auth = auth.clone();
            async move {
                if i >= count {
                    return Ok(false);
                }
                auth.store_otp(
                    &format!("old{i}@signin.test"),
                    &code_of(i),
                    Duration::from_secs(600),
                )
                .await?;
                Ok(true)
            }
        })
        .await?
    };
    if seeded.failed > 0 || seeded.ok < count {
        anyhow::bail!("only {} of {count} codes could be stored", seeded.ok);
    }
    let codes = (0..count)
        .map(|i| (format!("old{i}@signin.test"), code_of(i)))
        .collect();
    storm(http, base, codes, duration, concurrency).await
}
