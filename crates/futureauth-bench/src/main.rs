//! `futureauth-bench`: FutureAuth side by side with what Rust users would otherwise run,
//! on one machine, one Postgres, one load generator. Prints one Markdown table.
//!
//! ```sh
//! cargo run --release -p futureauth-bench -- --quick      # under a minute
//! cargo run --release -p futureauth-bench -- --duration 6 --concurrency 16
//! ```
//!
//! Everything runs on loopback in a Postgres database of its own (`futureauth_bench_<pid>`
//! on the server of `DATABASE_URL`), dropped at the end. Bounded: every row stops at its
//! deadline or when its work runs out.

mod apps;
mod db;
mod load;
mod server;
mod sign_in;

use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};

use apps::Target;
use db::BenchDb;
use load::Stats;

/// Benchmark FutureAuth's session check, sign-in and delivery server against peers.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Seconds of load per row (split over the rounds for the session-check rows).
    #[arg(long, default_value_t = 6.0)]
    duration: f64,
    /// Concurrent client tasks (keep-alive connections).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Session-check rounds; the variants take turns in each, so a busy moment of the
    /// machine hits them all.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Users in each sign-in storm.
    #[arg(long, default_value_t = 2000)]
    sign_ins: u64,
    /// Short everything so the whole run takes under a minute.
    #[arg(long)]
    quick: bool,
    /// Postgres to run on; the bench creates and drops a database of its own there.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    database_url: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// (internal) Runs the delivery server for the parent bench process.
    #[command(hide = true)]
    ServerChild {
        database_url: String,
        resend_url: String,
    },
}

/// Database connections of each variant's pool (the cached SDK gets one more for its
/// LISTEN connection).
const POOL: u32 = 8;
/// Warm-up per variant before measuring (connections, statement caches).
const WARM_UP: Duration = Duration::from_millis(500);

fn main() -> Result<()> {
    let mut args = Args::parse();
    if args.quick {
        args.duration = args.duration.min(2.0);
        args.rounds = 1;
        args.sign_ins = args.sign_ins.min(1000);
    }
    // The machine has two cores; so does the runtime serving and loading the apps.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match args.command.take() {
        Some(Command::ServerChild {
            database_url,
            resend_url,
        }) => runtime.block_on(server::child(database_url, resend_url)),
        None => runtime.block_on(run(args)),
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

async fn run(args: Args) -> Result<()> {
    let db = BenchDb::create(&args.database_url).await?;
    let result = measure(&args, &db).await;
    db.drop_all().await?;
    let report = result?;
    print!("{report}");
    Ok(())
}

/// One session-check row.
struct Variant {
    name: &'static str,
    target: Target,
    stats: Stats,
}

async fn measure(args: &Args, db: &BenchDb) -> Result<String> {
    let load_before = load_average();
    let http = load::client(args.concurrency)?;
    let per_round = Duration::from_secs_f64(args.duration / f64::from(args.rounds.max(1)));

    eprintln!("starting the variants...");
    let sdk_pool = db.pool("sdk", POOL).await?;
    let (sdk, outbox, sdk_base) = apps::sdk(sdk_pool.clone(), false).await?;
    let cookie = apps::sdk_sign_in(&sdk, &outbox, "me@example.com").await?;
    let cached_pool = db.pool("sdk", POOL + 1).await?;
    let (_cached, _, cached_base) = apps::sdk(cached_pool, true).await?;
    let old_pool = db.pool("sdk05", POOL).await?;
    let (old, old_base) = apps::sdk05(old_pool).await?;
    let old_cookie = apps::sdk05_sign_in(&old, "me@example.com").await?;
    let login_pool = db.pool("axum_login", POOL).await?;

    let mut variants = vec![
        Variant {
            name: "bare handler: token hash + one indexed join (same pool)",
            target: apps::bare(sdk_pool.clone(), cookie.clone()).await?,
            stats: Stats::empty(),
        },
        Variant {
            name: "futureauth 0.6 `AuthSession`",
            target: Target {
                base: sdk_base.clone(),
                cookie: cookie.clone(),
            },
            stats: Stats::empty(),
        },
        Variant {
            name: "futureauth 0.6 `AuthSession` + session cache",
            target: Target {
                base: cached_base,
                cookie: cookie.clone(),
            },
            stats: Stats::empty(),
        },
        Variant {
            name: "futureauth 0.5.1 (crates.io) `AuthSession`",
            target: Target {
                base: old_base.clone(),
                cookie: old_cookie,
            },
            stats: Stats::empty(),
        },
        Variant {
            name: "axum-login 0.18 + tower-sessions sqlx Postgres store",
            target: apps::axum_login(login_pool, &http).await?,
            stats: Stats::empty(),
        },
    ];

    eprintln!("session check: warm-up, then {} round(s)...", args.rounds);
    for v in &variants {
        session_check(&http, &v.target, WARM_UP, args.concurrency).await?;
    }
    for round in 0..args.rounds {
        // Alternate the order so that no variant always runs first.
        let order: Vec<usize> = if round % 2 == 0 {
            (0..variants.len()).collect()
        } else {
            (0..variants.len()).rev().collect()
        };
        for i in order {
            let stats =
                session_check(&http, &variants[i].target, per_round, args.concurrency).await?;
            variants[i].stats.absorb(stats);
        }
    }

    let storm_time = Duration::from_secs_f64(args.duration.max(1.0) * 5.0);
    eprintln!("sign-in storms of {} users each...", args.sign_ins);
    let old_storm = sign_in::sdk05(
        old,
        &http,
        &old_base,
        args.sign_ins,
        storm_time,
        args.concurrency,
    )
    .await?;
    let new_storm = sign_in::sdk(
        sdk,
        &outbox,
        &http,
        &sdk_base,
        args.sign_ins,
        storm_time,
        args.concurrency,
    )
    .await?;

    eprintln!("delivery server...");
    let server = server::measure(
        &db.schema_url_created("server").await?,
        &http,
        Duration::from_secs_f64(args.duration),
        args.concurrency,
    )
    .await?;
    let load_after = load_average();

    let mut out = String::new();
    let line = |out: &mut String, name: &str, s: &Stats, reference: f64| {
        out.push_str(&format!(
            "| {name} | {:.0} | {:.2} | {:.2} | {:.2} |{}\n",
            s.per_second(),
            s.p50_ms(),
            s.p99_ms(),
            s.per_second() / reference,
            if s.failed > 0 {
                format!(" {} failed", s.failed)
            } else {
                String::new()
            }
        ));
    };
    out.push_str(&format!(
        "\nfutureauth-bench: {} cores, concurrency {}, {} round(s), {:.1} s of load per session-check row, \
         load average {load_before} before, {load_after} after\n\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.concurrency,
        args.rounds,
        args.duration
    ));
    out.push_str("| variant | req/s | p50 ms | p99 ms | ratio |\n|---|---|---|---|---|\n");
    out.push_str("| **session check**, `GET /api/me` with a valid cookie (ratio to the bare handler) | | | | |\n");
    let bare = variants[0].stats.per_second();
    for v in &variants {
        line(&mut out, v.name, &v.stats, bare);
    }
    out.push_str(&format!(
        "| **sign-in**, `POST /api/auth/verify-otp`, {} users each from its own address (ratio to 0.5.1) | | | | |\n",
        args.sign_ins
    ));
    let reference = old_storm.per_second();
    line(
        &mut out,
        "futureauth 0.5.1: code check, find-or-create user, session insert",
        &old_storm,
        reference,
    );
    line(
        &mut out,
        "futureauth 0.6: rate limit, code check, user upsert, session insert",
        &new_storm,
        reference,
    );
    out.push_str(
        "| **delivery server**, `POST /api/v1/otp/send` accepted (202, durably queued) on Postgres (ratio to the 3,000/s target) | | | | |\n",
    );
    line(
        &mut out,
        "futureauth-server, own process",
        &server.sends,
        3000.0,
    );
    out.push_str(&format!(
        "\nfutureauth-server RSS: {:.1} MiB idle, {:.1} MiB peak under load ({} of {} sends delivered to the fake Resend by then)\n",
        server.idle_rss_kib as f64 / 1024.0,
        server.peak_rss_kib as f64 / 1024.0,
        server.delivered,
        server.sends.ok
    ));
    Ok(out)
}

/// `GET /api/me` with the target's cookie; 200 counts.
async fn session_check(
    http: &reqwest::Client,
    target: &Target,
    duration: Duration,
    concurrency: usize,
) -> Result<Stats> {
    let (http, url, cookie) = (
        http.clone(),
        format!("{}/api/me", target.base),
        target.cookie.clone(),
    );
    load::run(duration, concurrency, move |_| {
        let request = http.get(&url).header("cookie", &cookie);
        load::expect(request, 200)
    })
    .await
}
