//! A private, throw-away PostgreSQL cluster for chaos tests: `initdb` into a temp dir,
//! `postgres` on a free loopback port, stopped and started at will (`pg_ctl stop -m
//! immediate` is a crash as far as clients can tell). The machine's shared cluster is never
//! touched. Dropping the [`Cluster`] kills its postmaster and deletes its directory, also
//! when the test fails.
//!
//! Needs the PostgreSQL server binaries (`initdb`, `pg_ctl`, `postgres`), found under
//! `$PG_BIN`, `/usr/lib/postgresql/*/bin` or next to `pg_config --bindir`; `./scripts/test`
//! installs them. `initdb` refuses to run as root, so as root every command runs as the
//! `postgres` user (`runuser -u postgres`), which owns the temp dir.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

/// A private PostgreSQL cluster on `127.0.0.1:port`.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    /// Only the value [`Cluster::start`] returned stops and deletes the cluster on drop.
    owner: bool,
}

fn bin_dir() -> PathBuf {
    let has_initdb = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("PG_BIN").map(PathBuf::from) {
        assert!(
            has_initdb(&dir),
            "PG_BIN={} has no initdb/pg_ctl",
            dir.display()
        );
        return dir;
    }
    let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, dir)| has_initdb(dir))
        .collect();
    candidates.sort();
    if let Some((_, dir)) = candidates.pop() {
        return dir;
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_initdb(&dir) {
            return dir;
        }
    }
    panic!(
        "the chaos tests need the PostgreSQL server binaries (initdb, pg_ctl) and found none \
         under $PG_BIN, /usr/lib/postgresql/*/bin or `pg_config --bindir`: install them \
         (`apt-get install postgresql`, which ./scripts/test does) or set PG_BIN"
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Cluster {
    /// Creates and starts a cluster (trust authentication, user `postgres`). Panics with the
    /// reason and the server log when it cannot.
    pub fn start() -> Cluster {
        let bin = bin_dir();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let as_postgres = is_root();
        // As root, $TMPDIR may sit under /root, where the `postgres` user cannot go.
        let tmp = if as_postgres {
            PathBuf::from("/tmp")
        } else {
            std::env::temp_dir()
        };
        let dir = tmp.join(format!("futureauth-chaos-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the cluster's temp dir");
        let cluster = Cluster {
            dir,
            bin,
            port: free_port(),
            as_postgres,
            owner: true,
        };
        if as_postgres {
            let owned = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&cluster.dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                owned,
                "running as root: cannot give {} to the `postgres` user (initdb refuses to run \
                 as root); create that user (apt-get install postgresql does)",
                cluster.dir.display()
            );
        }
        let data = cluster.data_dir();
        let out = cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.start_server();
        cluster
    }

    fn data_dir(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// Runs one of the cluster's binaries, as `postgres` when we are root.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let program = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(&program);
            cmd
        } else {
            Command::new(&program)
        };
        cmd.args(args)
            .current_dir(&self.dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
    }

    fn start_server(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories='{}' \
             -c fsync=off -c full_page_writes=off -c max_connections=50",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log").display().to_string();
        let data = self.data_dir();
        let out = self.run(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-o", &options, "-w", "-t", "30", "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}{}\n--- server log ---\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// `postgres://postgres@127.0.0.1:port/db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates database `name` (`createdb`).
    pub fn create_database(&self, name: &str) {
        let port = self.port.to_string();
        let out = self.run(
            "createdb",
            &["-h", "127.0.0.1", "-p", &port, "-U", "postgres", name],
        );
        assert!(
            out.status.success(),
            "createdb {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Kills the cluster the way a crash or a fail-over looks to clients
    /// (`pg_ctl stop -m immediate`). Blocks a blocking-pool thread, not the runtime.
    pub async fn crash(&self) {
        let this = self.handle();
        tokio::task::spawn_blocking(move || this.stop_immediate())
            .await
            .expect("stop task");
    }

    /// Starts the cluster again (crash recovery included) and waits until it accepts
    /// connections.
    pub async fn restart(&self) {
        let this = self.handle();
        tokio::task::spawn_blocking(move || this.start_server())
            .await
            .expect("start task");
    }

    /// A copy that does not own the cluster (for blocking tasks).
    fn handle(&self) -> Cluster {
        Cluster {
            dir: self.dir.clone(),
            bin: self.bin.clone(),
            port: self.port,
            as_postgres: self.as_postgres,
            owner: false,
        }
    }

    /// Freezes the cluster the way a hung primary, a paused VM or a partition looks to
    /// clients: every process of this cluster (its postmaster and the postmaster's
    /// children, found through `/proc`) gets `SIGSTOP`. Sockets stay open and the kernel
    /// still accepts connections, but nothing answers, and `statement_timeout` cannot fire.
    /// No other process of the machine is signalled.
    pub fn freeze(&self) {
        let pids = self.processes();
        assert!(!pids.is_empty(), "no process of the cluster to freeze");
        // The postmaster first, so that it forks nothing new meanwhile.
        signal("STOP", &pids);
    }

    /// Resumes a [`freeze`](Self::freeze)d cluster (`SIGCONT`, children first).
    pub fn thaw(&self) {
        let mut pids = self.processes();
        pids.reverse();
        signal("CONT", &pids);
    }

    /// The postmaster's pid, then those of its children.
    fn processes(&self) -> Vec<u32> {
        let Some(postmaster) = self.postmaster_pid() else {
            return Vec::new();
        };
        let mut pids = vec![postmaster];
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // `pid (comm) state ppid ...`; comm may hold spaces, so parse after its `)`.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(postmaster) {
                pids.push(pid);
            }
        }
        pids
    }

    fn postmaster_pid(&self) -> Option<u32> {
        let pid_file = self.dir.join("data").join("postmaster.pid");
        std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse().ok()))
    }

    fn stop_immediate(&self) -> bool {
        let data = self.data_dir();
        self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"])
            .status
            .success()
    }

    fn kill_postmaster(&self) {
        let pid_file = self.dir.join("data").join("postmaster.pid");
        let pid = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|s| s.lines().next().map(str::trim).map(str::to_owned));
        if let Some(pid) = pid.filter(|p| p.chars().all(|c| c.is_ascii_digit())) {
            let _ = Command::new("kill").args(["-9", &pid]).status();
        }
    }
}

/// `kill -<sig>` to each of `pids`, in order.
fn signal(sig: &str, pids: &[u32]) {
    for pid in pids {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status();
    }
}

impl Drop for Cluster {
    /// Stops the cluster (killing the postmaster if `pg_ctl` cannot) and deletes its files.
    fn drop(&mut self) {
        if !self.owner {
            return;
        }
        // A frozen cluster cannot handle pg_ctl's signal.
        self.thaw();
        if self.dir.join("data").join("postmaster.pid").exists() && !self.stop_immediate() {
            self.kill_postmaster();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
