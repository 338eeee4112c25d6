//! `futureauth-bench`: FutureAuth side by side with what Rust users would otherwise run,
//! on one machine, one Postgres. Prints Markdown tables.
//!
//! ```sh
//! apt-get install -y wrk                                  # the session-check rows need it
//! cargo run --release -p futureauth-bench -- --quick      # under half a minute
//! cargo run --release -p futureauth-bench -- --rounds 3 --round-seconds 3 --connections 32
//! ```
//!
//! Every HTTP row is driven by `wrk`. The session-check rows (`GET /api/me`) pin it to one
//! core while the servers are pinned to the other, next to a static JSON row that shows the
//! ceiling of the stack and the load generator; the sign-in and delivery-server rows give it
//! a Lua script (`lua/`) that makes each request different (a fresh code, a new address).
//!
//! Everything runs on loopback in a Postgres database of its own (`futureauth_bench_<pid>`
//! on the server of `DATABASE_URL`), dropped at the end. Bounded: every row stops at its
//! deadline or when its work runs out.

mod apps;
mod bare;
mod db;
mod load;
mod server;
mod sign_in;
mod wrk;

use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use apps::Target;
use db::BenchDb;
use wrk::{Pinning, WrkOptions, WrkRun};

/// Benchmark FutureAuth's session check, sign-in and delivery server against peers.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Seconds of `wrk` load per session-check row in each round (whole seconds).
    #[arg(long, default_value_t = 3)]
    round_seconds: u64,
    /// Session-check rounds; the variants take turns in each, so a busy moment of the
    /// machine hits them all, and each ratio is to the bare row of the same round.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// `wrk` connections (keep-alive) for the session-check rows.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// `wrk` threads for the session-check rows.
    #[arg(long, default_value_t = 1)]
    wrk_threads: usize,
    /// Seconds of load for each delivery-server row (whole seconds).
    #[arg(long, default_value_t = 6.0)]
    duration: f64,
    /// `wrk` connections for the sign-in and delivery-server rows (and the tasks that seed
    /// the sign-in codes).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Users seeded for each sign-in storm; each signs in once, so they must outlast
    /// `--sign-in-seconds` (the bench says so when they do not).
    #[arg(long, default_value_t = 30_000)]
    sign_ins: u64,
    /// Seconds of `wrk` load per sign-in storm (whole seconds).
    #[arg(long, default_value_t = 3)]
    sign_in_seconds: u64,
    /// Short everything (one 1-second round) so the whole run takes under half a minute.
    #[arg(long)]
    quick: bool,
    /// Print every `wrk` run's own output to stderr.
    #[arg(long, hide = true)]
    print_wrk_output: bool,
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
    /// (for profiling) Measures the delivery server alone and prints its rows.
    #[command(hide = true)]
    ServerOnly,
    /// (for profiling) Measures the two sign-in storms alone and prints their rows.
    #[command(hide = true)]
    SignInOnly,
}

/// Database connections of each variant's pool (the cached SDK gets one more for its
/// LISTEN connection).
const POOL: u32 = 8;

fn main() -> Result<()> {
    let mut args = Args::parse();
    if args.quick {
        args.duration = args.duration.min(2.0);
        args.rounds = 1;
        args.round_seconds = 1;
        args.sign_ins = args.sign_ins.min(6000);
        args.sign_in_seconds = 1;
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
        Some(Command::ServerOnly) => runtime.block_on(server_only(args)),
        Some(Command::SignInOnly) => runtime.block_on(sign_in_only(args)),
        None => runtime.block_on(run(args)),
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

async fn run(args: Args) -> Result<()> {
    let pinning = Pinning::for_this_machine();
    // Before anything else: without wrk there is no honest session-check row.
    wrk::check_installed(pinning).await?;
    let db = BenchDb::create(&args.database_url).await?;
    let result = measure(&args, &db, pinning).await;
    db.drop_all().await?;
    let report = result?;
    print!("{report}");
    Ok(())
}

/// `wrk` for the sign-in and delivery rows: one thread, `--concurrency` connections,
/// unpinned.
fn scripted(args: &Args, seconds: u64) -> WrkOptions {
    WrkOptions {
        seconds,
        threads: 1,
        connections: args.concurrency,
        pinning: None,
        echo: args.print_wrk_output,
    }
}

/// Seconds of load for each delivery-server row.
fn delivery_seconds(args: &Args) -> u64 {
    args.duration.max(1.0).round() as u64
}

/// The delivery server's rows alone, for profiling the send path.
async fn server_only(args: Args) -> Result<()> {
    let db = BenchDb::create(&args.database_url).await?;
    let result = async {
        let url = db.schema_url_created("server").await?;
        server::measure(&url, scripted(&args, delivery_seconds(&args))).await
    }
    .await;
    db.drop_all().await?;
    let run = result?;
    println!(
        "one instance: {:.0}/s p99 {:.2} ms, {} sends counted, {} delivered during the run, {} after ({} twice); two: {:.0}/s + {:.0}/s; idle RSS {} KiB, peak {} KiB",
        run.one.per_second,
        run.one.p99_ms,
        run.one.requests,
        run.delivered,
        run.delivered_after,
        run.delivered_twice,
        run.two[0].per_second,
        run.two[1].per_second,
        run.idle_rss_kib,
        run.peak_rss_kib
    );
    Ok(())
}

/// The sign-in rows: futureauth 0.5.1's storm, then this SDK's, each on its own app.
async fn sign_in_storms(
    args: &Args,
    (old, old_base): (Arc<futureauth05::FutureAuth>, String),
    (sdk, outbox, sdk_base): (Arc<futureauth::FutureAuth>, apps::CodeBook, String),
) -> Result<(WrkRun, WrkRun)> {
    eprintln!("sign-in storms of {} users each...", args.sign_ins);
    let storm = scripted(args, args.sign_in_seconds.max(1));
    let old_storm = sign_in::sdk05(old, &old_base, args.sign_ins, storm, args.concurrency).await?;
    let new_storm = sign_in::sdk(
        sdk,
        &outbox,
        &sdk_base,
        args.sign_ins,
        storm,
        args.concurrency,
    )
    .await?;
    Ok((old_storm, new_storm))
}

/// The two sign-in storms alone, for profiling the sign-in path.
async fn sign_in_only(args: Args) -> Result<()> {
    wrk::check_installed(None).await?;
    let db = BenchDb::create(&args.database_url).await?;
    let result = async {
        let sdk = apps::sdk(db.pool("sdk", POOL).await?, false).await?;
        let old = apps::sdk05(db.pool("sdk05", POOL).await?).await?;
        sign_in_storms(&args, old, sdk).await
    }
    .await;
    db.drop_all().await?;
    let (old, new) = result?;
    println!(
        "sign-in: 0.5.1 {:.0}/s p99 {:.2} ms; 0.6 {:.0}/s p99 {:.2} ms; ratio {:.2}",
        old.per_second,
        old.p99_ms,
        new.per_second,
        new.p99_ms,
        new.per_second / old.per_second
    );
    Ok(())
}

/// One session-check row: its app and one `wrk` run per round.
struct Variant {
    name: &'static str,
    target: Target,
    runs: Vec<WrkRun>,
}

/// Index of the static row, the ceiling of the stack.
const STATIC: usize = 0;
/// Index of the bare row, the reference of the session-check ratios.
const BARE: usize = 1;
/// Index of the SDK row without the cache.
const SDK: usize = 2;
/// Index of the SDK row with the session cache.
const CACHED: usize = 3;

async fn measure(args: &Args, db: &BenchDb, pinning: Option<Pinning>) -> Result<String> {
    let load_before = load_average();
    let http = load::client(args.concurrency)?;

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

    let variant = |name, target| Variant {
        name,
        target,
        runs: Vec::new(),
    };
    let mut variants = vec![
        variant(
            "static JSON handler, no database (the stack's ceiling)",
            apps::static_json(cookie.clone()).await?,
        ),
        variant(
            "bare handler: token hash + one indexed join (same pool)",
            apps::bare(sdk_pool.clone(), cookie.clone()).await?,
        ),
        variant(
            "futureauth 0.6 `AuthSession`",
            Target {
                base: sdk_base.clone(),
                cookie: cookie.clone(),
            },
        ),
        variant(
            "futureauth 0.6 `AuthSession` + session cache",
            Target {
                base: cached_base,
                cookie: cookie.clone(),
            },
        ),
        variant(
            "futureauth 0.5.1 (crates.io) `AuthSession`",
            Target {
                base: old_base.clone(),
                cookie: old_cookie,
            },
        ),
        variant(
            "axum-login 0.18 + tower-sessions sqlx Postgres store",
            apps::axum_login(login_pool, &http).await?,
        ),
    ];
    // wrk counts any status; make sure every cookie really signs in before measuring.
    for v in &variants {
        let request = http
            .get(format!("{}/api/me", v.target.base))
            .header("cookie", &v.target.cookie);
        load::expect(request, 200)
            .await
            .with_context(|| format!("{}: GET /api/me with its cookie", v.name))?;
    }

    // The servers (this process) on one core, wrk on the other, for the wrk rows only.
    let allowed = wrk::allowed_cpus();
    if let Some(p) = pinning {
        wrk::pin_this_process(&p.server_cpu.to_string()).await?;
    }
    let measured = session_checks(args, pinning, &mut variants).await;
    if let (Some(_), Some(all)) = (pinning, &allowed) {
        wrk::pin_this_process(all).await?;
    }
    measured?;
    let load_between = load_average();

    // The sign-in and delivery rows: wrk unpinned, sharing the cores with the servers and
    // Postgres (the delivery server is a process of its own).
    let (old_storm, new_storm) =
        sign_in_storms(args, (old, old_base), (sdk, outbox, sdk_base)).await?;

    eprintln!("delivery server, one instance then two...");
    let server = server::measure(
        &db.schema_url_created("server").await?,
        scripted(args, delivery_seconds(args)),
    )
    .await?;
    let load_after = load_average();

    let mut out = String::new();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let placement = match pinning {
        Some(p) => format!(
            "wrk pinned to CPU {} and the servers (the bench process) to CPU {} with taskset; Postgres unpinned",
            p.client_cpu, p.server_cpu
        ),
        None => "not pinned (fewer than 2 CPUs)".to_string(),
    };
    out.push_str(&format!(
        "\nfutureauth-bench: {cores} cores; load average (1, 5, 15 min) {load_before} before, \
         {load_between} after the session-check rows, {load_after} at the end\n\n\
         Session check: `wrk -t{} -c{} --latency`, {} round(s) of {} s per row, the rows taking turns \
         in each round; {placement}. Ratios are to the bare row of the same round.\n\n",
        args.wrk_threads,
        args.connections,
        args.rounds,
        args.round_seconds.max(1),
    ));
    out.push_str(&session_table(&variants));
    out.push('\n');
    out.push_str(&targets_line(&variants));
    out.push_str(&format!(
        "\nSign-in and delivery server: `wrk -t1 -c{}` with a Lua script that makes each \
         request different (a fresh code from its own address; a new destination), unpinned, \
         sharing the cores with the servers and Postgres.\n\n",
        args.concurrency
    ));
    let line = |out: &mut String, name: &str, rate: f64, p50: f64, p99: f64, reference: f64| {
        out.push_str(&format!(
            "| {name} | {rate:.0} | {p50:.2} | {p99:.2} | {:.2} |\n",
            rate / reference
        ));
    };
    out.push_str("| variant | req/s | p50 ms | p99 ms | ratio |\n|---|---|---|---|---|\n");
    out.push_str(&format!(
        "| **sign-in**, `POST /api/auth/verify-otp` for {} s, each user from its own address (ratio to 0.5.1) | | | | |\n",
        args.sign_in_seconds.max(1)
    ));
    let reference = old_storm.per_second;
    for (name, run) in [
        (
            "futureauth 0.5.1: code check, find-or-create user, session insert",
            &old_storm,
        ),
        (
            "futureauth 0.6: rate limit, code check, user upsert, session insert",
            &new_storm,
        ),
    ] {
        line(
            &mut out,
            name,
            run.per_second,
            run.p50_ms,
            run.p99_ms,
            reference,
        );
    }
    out.push_str(
        "| **delivery server**, `POST /api/v1/otp/send` accepted (202, durably queued) on Postgres (ratio to the 3,000/s target) | | | | |\n",
    );
    let one = &server.one;
    line(
        &mut out,
        "futureauth-server, one instance",
        one.per_second,
        one.p50_ms,
        one.p99_ms,
        3000.0,
    );
    let [a, b] = &server.two;
    line(
        &mut out,
        "futureauth-server, two instances on the same database (sum; p50 and p99 of the slower)",
        a.per_second + b.per_second,
        a.p50_ms.max(b.p50_ms),
        a.p99_ms.max(b.p99_ms),
        3000.0,
    );
    out.push_str(&format!(
        "\nfutureauth-server RSS: {:.1} MiB idle, {:.1} MiB peak under load (the one-instance row: of the {} accepted sends wrk counted, {} delivered to the fake Resend by its end and {} once the last had up to 20 s more; {} deliveries of a message delivered before)\n",
        server.idle_rss_kib as f64 / 1024.0,
        server.peak_rss_kib as f64 / 1024.0,
        one.requests,
        server.delivered,
        server.delivered_after,
        server.delivered_twice,
    ));
    Ok(out)
}

/// Warm-up (one second of wrk per row), then the rounds, the rows taking turns.
async fn session_checks(
    args: &Args,
    pinning: Option<Pinning>,
    variants: &mut [Variant],
) -> Result<()> {
    let options = WrkOptions {
        seconds: args.round_seconds.max(1),
        threads: args.wrk_threads.max(1),
        connections: args.connections.max(1),
        pinning,
        echo: args.print_wrk_output,
    };
    eprintln!("session check: warm-up, then {} round(s)...", args.rounds);
    for v in variants.iter() {
        let warm_up = WrkOptions {
            seconds: 1,
            ..options
        };
        wrk::run(&url(&v.target), &v.target.cookie, warm_up).await?;
    }
    for round in 0..args.rounds.max(1) {
        // Alternate the order so that no variant always runs first.
        let order: Vec<usize> = if round % 2 == 0 {
            (0..variants.len()).collect()
        } else {
            (0..variants.len()).rev().collect()
        };
        for i in order {
            let v = &mut variants[i];
            let run = wrk::run(&url(&v.target), &v.target.cookie, options).await?;
            v.runs.push(run);
        }
    }
    Ok(())
}

fn url(target: &Target) -> String {
    format!("{}/api/me", target.base)
}

/// The session-check table: mean req/s over rounds, its spread, latency, and each round's
/// ratio to the bare row of that round.
fn session_table(variants: &[Variant]) -> String {
    let mut out = String::from(
        "| `GET /api/me`, valid cookie | req/s (mean) | req/s min–max | p50 ms (median round) | p99 ms min–max | ratio to bare, each round |\n\
         |---|---|---|---|---|---|\n",
    );
    for v in variants {
        let rates: Vec<f64> = v.runs.iter().map(|r| r.per_second).collect();
        let mean = rates.iter().sum::<f64>() / rates.len().max(1) as f64;
        let (min, max) = min_max(&rates);
        let mut p50: Vec<f64> = v.runs.iter().map(|r| r.p50_ms).collect();
        p50.sort_by(f64::total_cmp);
        let p50 = p50.get(p50.len() / 2).copied().unwrap_or(0.0);
        let (p99_min, p99_max) = min_max(&v.runs.iter().map(|r| r.p99_ms).collect::<Vec<_>>());
        let ratios: Vec<String> = v
            .runs
            .iter()
            .zip(&variants[BARE].runs)
            .map(|(run, bare)| format!("{:.2}", run.per_second / bare.per_second.max(1e-9)))
            .collect();
        let failed: u64 = v.runs.iter().map(WrkRun::failed).sum();
        out.push_str(&format!(
            "| {} | {mean:.0} | {min:.0}–{max:.0} | {p50:.2} | {p99_min:.2}–{p99_max:.2} | {} |{}\n",
            v.name,
            ratios.join(", "),
            if failed > 0 {
                format!(" {failed} not 2xx or socket errors")
            } else {
                String::new()
            }
        ));
    }
    out
}

/// Issue 22's two session-check targets, each round and their median (a busy moment of
/// the machine moves one round, not the median): the uncached check against the bare join,
/// and the cached check against the static handler (both ≥ 0.90).
fn targets_line(variants: &[Variant]) -> String {
    let each = |row: usize, reference: usize| {
        let ratios: Vec<f64> = variants[row]
            .runs
            .iter()
            .zip(&variants[reference].runs)
            .map(|(run, r)| run.per_second / r.per_second.max(1e-9))
            .collect();
        let listed: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        format!("{} (median {:.2})", listed.join(", "), median(&ratios))
    };
    format!(
        "Targets, each round (≥ 0.90): futureauth 0.6 without the cache / bare: {}; with the \
         session cache / static: {}\n",
        each(SDK, BARE),
        each(CACHED, STATIC)
    )
}

/// The middle value (the mean of the two middle ones for an even count); 0 for none.
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn min_max(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold(None, |acc: Option<(f64, f64)>, &v| {
            Some(acc.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))))
        })
        .unwrap_or((0.0, 0.0))
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_is_the_middle_round() {
        assert_eq!(median(&[0.9, 1.3, 0.7, 0.8, 1.0]), 0.9);
        assert_eq!(median(&[1.0, 0.5, 0.7, 2.0]), 0.85);
        assert_eq!(median(&[]), 0.0);
    }
}
