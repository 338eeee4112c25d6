//! The HTTP rows' load generator: `wrk` (a C program from the OS packages), run as a child
//! process, pinned to a core of its own when the machine has two or more; rows whose
//! requests differ (sign-in, sends) give it a Lua script from `lua/`.
//! An in-process client shares the runtime and the cores with the servers it measures and
//! tops out below them, which squeezes every ratio toward 1.00 (issue 22).

use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::process::Command;

/// How to install `wrk` when it is missing; the bench fails with this rather than fall back
/// to a client that would be the bottleneck.
pub const INSTALL_HINT: &str = "wrk is not installed (or not on PATH); the session-check rows \
need it. Install it with `apt-get install -y wrk` (Debian/Ubuntu), `brew install wrk` (macOS), \
or build it from https://github.com/wg/wrk";

/// Where the client and the servers run.
#[derive(Debug, Clone, Copy)]
pub struct Pinning {
    /// CPU of `wrk`.
    pub client_cpu: usize,
    /// CPU of this process (the servers) while `wrk` runs.
    pub server_cpu: usize,
}

impl Pinning {
    /// Client on the first CPU this process may use, servers on the second, when it may
    /// use at least two; `None` otherwise.
    pub fn for_this_machine() -> Option<Self> {
        let cpus = cpu_list(&allowed_cpus()?)?;
        match cpus[..] {
            [client_cpu, server_cpu, ..] => Some(Self {
                client_cpu,
                server_cpu,
            }),
            _ => None,
        }
    }
}

/// This process's `Cpus_allowed_list` (e.g. `0-1`), to restore after pinning.
pub fn allowed_cpus() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|v| v.trim().to_string())
}

/// Expands a CPU list such as `0-2,4` into `[0, 1, 2, 4]`.
fn cpu_list(list: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.trim().parse::<usize>().ok()?..=b.trim().parse().ok()?),
            None => cpus.push(part.trim().parse().ok()?),
        }
    }
    Some(cpus)
}

/// Fails with [`INSTALL_HINT`] when `wrk` cannot be started, and when pinning is asked for
/// and `taskset` cannot be started.
pub async fn check_installed(pinning: Option<Pinning>) -> Result<()> {
    // `wrk -v` prints its version and exits with 1: only "could it start" matters.
    let started = Command::new("wrk")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    if started.is_err() {
        bail!("{INSTALL_HINT}");
    }
    if pinning.is_some() {
        let taskset = Command::new("taskset")
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
        if taskset.is_err() {
            bail!("taskset is not installed; it pins wrk and the servers to separate cores. Install it with `apt-get install -y util-linux`");
        }
    }
    Ok(())
}

/// Sets the CPU affinity of every thread of this process (threads started later inherit
/// it from the thread that starts them).
pub async fn pin_this_process(cpus: &str) -> Result<()> {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .await
        .context("running taskset")?;
    if !status.success() {
        bail!("taskset -a -p -c {cpus} failed: {status}");
    }
    Ok(())
}

/// What one `wrk` run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct WrkRun {
    /// Completed requests (any status).
    pub requests: u64,
    /// wrk's `Requests/sec`.
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Responses whose status was not 2xx or 3xx.
    pub non_2xx: u64,
    /// Connect, read, write errors and timeouts.
    pub socket_errors: u64,
}

impl WrkRun {
    /// Requests that did not get a 2xx/3xx answer or hit a socket error.
    pub fn failed(&self) -> u64 {
        self.non_2xx + self.socket_errors
    }
}

/// How `wrk` is run.
#[derive(Debug, Clone, Copy)]
pub struct WrkOptions {
    /// Whole seconds of load.
    pub seconds: u64,
    pub threads: usize,
    pub connections: usize,
    pub pinning: Option<Pinning>,
    /// Print wrk's own output to stderr.
    pub echo: bool,
}

/// Runs `wrk -t<threads> -c<connections> -d<seconds>s --latency -H "Cookie: ..." url`,
/// pinned to `pinning.client_cpu` when given.
pub async fn run(url: &str, cookie: &str, options: WrkOptions) -> Result<WrkRun> {
    execute(
        url,
        &["-H".into(), format!("Cookie: {cookie}")],
        &[],
        options,
    )
    .await
}

/// A Lua script that makes each of wrk's requests (rows whose requests differ: a fresh code,
/// a new address), with its arguments.
pub struct Script {
    /// A name for its temporary file.
    pub name: &'static str,
    /// The Lua source.
    pub source: &'static str,
    /// What its `init(args)` gets.
    pub args: Vec<String>,
}

/// The sign-in storm: `lua/sign_in.lua`.
pub const SIGN_IN_LUA: &str = include_str!("../lua/sign_in.lua");
/// Unique sends to the delivery server: `lua/sends.lua`.
pub const SENDS_LUA: &str = include_str!("../lua/sends.lua");

/// Runs wrk with `script` (`-s <file> url -- args…`) for at most `options.seconds`; the
/// script may stop sooner.
pub async fn run_script(url: &str, script: &Script, options: WrkOptions) -> Result<WrkRun> {
    let file = std::env::temp_dir().join(format!(
        "futureauth-bench-{}-{}.lua",
        std::process::id(),
        script.name
    ));
    tokio::fs::write(&file, script.source).await?;
    let mut after = vec!["--".to_string()];
    after.extend(script.args.iter().cloned());
    let run = execute(
        url,
        &["-s".into(), file.display().to_string()],
        &after,
        options,
    )
    .await;
    let _ = tokio::fs::remove_file(&file).await;
    run
}

/// `wrk` with the common flags, `before` ahead of the URL and `after` behind it.
async fn execute(
    url: &str,
    before: &[String],
    after: &[String],
    options: WrkOptions,
) -> Result<WrkRun> {
    let seconds = options.seconds.max(1);
    let mut command = match options.pinning {
        Some(p) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &p.client_cpu.to_string(), "wrk"]);
            c
        }
        None => Command::new("wrk"),
    };
    command
        .arg(format!("-t{}", options.threads))
        .arg(format!("-c{}", options.connections))
        .arg(format!("-d{seconds}s"))
        .arg("--latency")
        .args(before)
        .arg(url)
        .args(after)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    // wrk stops by itself after its duration; the timeout only guards against a hang.
    let limit = Duration::from_secs(seconds + 30);
    let output = tokio::time::timeout(limit, command.output())
        .await
        .context("wrk did not finish in time")?
        .map_err(|error| anyhow::anyhow!("{INSTALL_HINT} ({error})"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if options.echo {
        eprintln!("{stdout}");
    }
    if !output.status.success() {
        bail!(
            "wrk failed ({}): {}{}",
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse(&stdout).with_context(|| format!("reading wrk's output:\n{stdout}"))
}

/// Reads requests/sec, p50/p99 and the error counts from `wrk --latency` output.
pub fn parse(output: &str) -> Result<WrkRun> {
    let mut requests = None;
    let mut per_second = None;
    let mut p50_ms = None;
    let mut p99_ms = None;
    let mut non_2xx = 0;
    let mut socket_errors = 0;
    for line in output.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            per_second = Some(v.trim().parse::<f64>().context("Requests/sec")?);
        } else if let Some(v) = line.strip_prefix("50%") {
            p50_ms = Some(millis(v.trim())?);
        } else if let Some(v) = line.strip_prefix("99%") {
            p99_ms = Some(millis(v.trim())?);
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            non_2xx = v.trim().parse().context("Non-2xx count")?;
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            for part in v.split(',') {
                let count = part.split_whitespace().last().unwrap_or("0");
                socket_errors += count.parse::<u64>().context("socket error count")?;
            }
        } else if line.contains(" requests in ") {
            let count = line.split_whitespace().next().unwrap_or_default();
            requests = Some(count.parse::<u64>().context("request count")?);
        }
    }
    Ok(WrkRun {
        requests: requests.context("no \"N requests in\" line")?,
        per_second: per_second.context("no Requests/sec line")?,
        p50_ms: p50_ms.context("no 50% line (was --latency given?)")?,
        p99_ms: p99_ms.context("no 99% line (was --latency given?)")?,
        non_2xx,
        socket_errors,
    })
}

/// A wrk time (`812.00us`, `1.30ms`, `2.01s`, `1.50m`) in milliseconds.
fn millis(value: &str) -> Result<f64> {
    let (number, factor) = if let Some(n) = value.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = value.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = value.strip_suffix('m') {
        (n, 60_000.0)
    } else if let Some(n) = value.strip_suffix('h') {
        (n, 3_600_000.0)
    } else {
        bail!("unknown time unit in {value:?}")
    };
    let number: f64 = number.parse().with_context(|| format!("time {value:?}"))?;
    Ok(number * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_real_run_against_the_bench() {
        // wrk 4.1.0 against this bench's bare row (`--print-wrk-output`).
        let run = parse(include_str!("../testdata/wrk-bench.txt")).unwrap();
        assert_eq!(
            run,
            WrkRun {
                requests: 17177,
                per_second: 15594.61,
                p50_ms: 1.97,
                p99_ms: 3.92,
                non_2xx: 0,
                socket_errors: 0,
            }
        );
    }

    #[test]
    fn parses_a_real_run_with_errors() {
        // wrk 4.1.0 against a server answering 404.
        let run = parse(include_str!("../testdata/wrk-non-2xx.txt")).unwrap();
        assert_eq!(
            run,
            WrkRun {
                requests: 1540,
                per_second: 1539.15,
                p50_ms: 1.28,
                p99_ms: 15.42,
                non_2xx: 1540,
                socket_errors: 0,
            }
        );
        assert_eq!(run.failed(), 1540);
    }

    #[test]
    fn reads_socket_errors_and_every_time_unit() {
        let sample = "  Latency Distribution\n     50%  812.00us\n     99%    2.01s\n  \
                      10 requests in 1.00s, 1.00KB read\n  \
                      Socket errors: connect 1, read 2, write 3, timeout 4\nRequests/sec:     10.00\n";
        let run = parse(sample).unwrap();
        assert!((run.p50_ms - 0.812).abs() < 1e-9);
        assert!((run.p99_ms - 2010.0).abs() < 1e-9);
        assert_eq!(run.socket_errors, 10);
        assert!(millis("1.50m").unwrap() == 90_000.0);
    }

    #[test]
    fn expands_cpu_lists() {
        assert_eq!(cpu_list("0-1"), Some(vec![0, 1]));
        assert_eq!(cpu_list("0-2,4"), Some(vec![0, 1, 2, 4]));
        assert_eq!(cpu_list("3"), Some(vec![3]));
        assert_eq!(cpu_list("x"), None);
    }

    #[test]
    fn output_without_latency_is_an_error() {
        assert!(parse("  10 requests in 1.00s, 1.00KB read\nRequests/sec: 10.00\n").is_err());
    }
}
