//! Sign-in storms: `count` users, each with a code waiting, verified by `wrk` through
//! `POST /api/auth/verify-otp` as fast as the app answers for a fixed time, each from its
//! own address (`X-Forwarded-For`). A sign-in is the code check, the user upsert and the session insert.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use futureauth::{FutureAuth, OtpChannel};

use crate::apps::CodeBook;
use crate::load;
use crate::wrk::{self, Script, WrkOptions, WrkRun};

/// Generous, bounded time for seeding the codes (not measured).
const SEED_TIME: Duration = Duration::from_secs(180);

fn address(i: u64) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

/// The storm itself: `codes[i]` is user i's email and code, verified by wrk (one thread)
/// for `options.seconds`; every answer must be a 200, so the codes must outlast the run.
async fn storm(base: &str, codes: Vec<(String, String)>, options: WrkOptions) -> Result<WrkRun> {
    let lines: String = codes
        .iter()
        .enumerate()
        .map(|(i, (email, code))| format!("{email} {code} {}\n", address(i as u64)))
        .collect();
    let file = std::env::temp_dir().join(format!(
        "futureauth-bench-{}-codes-{}.txt",
        std::process::id(),
        codes.len()
    ));
    tokio::fs::write(&file, lines).await?;
    let script = Script {
        name: "sign-in",
        source: wrk::SIGN_IN_LUA,
        args: vec![file.display().to_string(), base.to_string()],
    };
    let run = wrk::run_script(
        base,
        &script,
        WrkOptions {
            threads: 1,
            ..options
        },
    )
    .await;
    let _ = tokio::fs::remove_file(&file).await;
    let run = run?;
    if run.failed() > 0 {
        bail!(
            "{} of {} sign-ins were not answered 200 (or hit a socket error): {} codes did not \
             last {} s; give more with --sign-ins",
            run.failed(),
            run.requests,
            codes.len(),
            options.seconds
        );
    }
    Ok(run)
}

/// This SDK: codes sent through its dev outbox, then the storm on its HTTP routes.
pub async fn sdk(
    auth: Arc<FutureAuth>,
    outbox: &CodeBook,
    base: &str,
    count: u64,
    options: WrkOptions,
    concurrency: usize,
) -> Result<WrkRun> {
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
        bail!("only {} of {count} codes could be sent", seeded.ok);
    }
    let mut codes = Vec::with_capacity(count as usize);
    for i in 0..seeded.ok {
        let email = format!("new{i}@signin.test");
        let code = outbox.code_for(&email)?;
        codes.push((email, code));
    }
    storm(base, codes, options).await
}

/// futureauth 0.5.1: codes stored directly (it has no dev delivery), then the storm.
pub async fn sdk05(
    auth: Arc<futureauth05::FutureAuth>,
    base: &str,
    count: u64,
    options: WrkOptions,
    concurrency: usize,
) -> Result<WrkRun> {
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
        bail!("only {} of {count} codes could be stored", seeded.ok);
    }
    let codes = (0..count)
        .map(|i| (format!("old{i}@signin.test"), code_of(i)))
        .collect();
    storm(base, codes, options).await
}
