//! The real binary: admin CLI output and start-up configuration errors.

use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_futureauth-server"));
    for var in [
        "DATABASE_URL",
        "RESEND_API_KEY",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_FROM_NUMBER",
        "TWILIO_MESSAGING_SERVICE_SID",
        "FUTUREAUTH_ENV",
        "LISTEN_ADDR",
        "FUTUREAUTH_SERVER_SECRET",
        "FUTUREAUTH_INSECURE_DEV_OUTBOX",
    ] {
        c.env_remove(var);
    }
    c.env("RUST_LOG", "error");
    c
}

fn temp_db() -> String {
    let path = std::env::temp_dir().join(format!(
        "fa_bin_{}_{:x}.db",
        std::process::id(),
        rand::random::<u64>()
    ));
    format!("sqlite://{}?mode=rwc", path.display())
}

#[test]
fn production_without_provider_keys_fails_at_start_with_a_helpful_message() {
    for (args, env) in [
        (vec!["--production"], None),
        (vec!["serve"], Some("production")),
    ] {
        let mut cmd = bin();
        cmd.args(&args)
            .env("DATABASE_URL", temp_db())
            .env("LISTEN_ADDR", "127.0.0.1:0");
        if let Some(e) = env {
            cmd.env("FUTUREAUTH_ENV", e);
        }
        let out = cmd.output().expect("run binary");
        assert!(!out.status.success(), "must not start");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("RESEND_API_KEY") && err.contains("TWILIO_ACCOUNT_SID"),
            "{err}"
        );
        assert!(err.contains("production"), "{err}");
    }
    // Only Resend configured in production: the message names what is still missing.
    let out = bin()
        .args(["--production"])
        .env("DATABASE_URL", temp_db())
        .env("RESEND_API_KEY", "re_x")
        .output()
        .expect("run binary");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("TWILIO_ACCOUNT_SID") && !err.contains("set RESEND_API_KEY"),
        "{err}"
    );
    // Half-configured Twilio is an error even in development.
    let out = bin()
        .env("DATABASE_URL", temp_db())
        .env("TWILIO_ACCOUNT_SID", "AC1")
        .output()
        .expect("run binary");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TWILIO_AUTH_TOKEN"));
}

#[test]
fn a_duration_in_both_forms_is_a_start_up_error_naming_the_alias_to_remove() {
    let out = bin()
        .env("DATABASE_URL", temp_db())
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("FUTUREAUTH_RETRY_BASE", "3s")
        .env("FUTUREAUTH_RETRY_BASE_MS", "3000")
        .output()
        .expect("run binary");
    assert!(!out.status.success(), "must not start");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--retry-base / FUTUREAUTH_RETRY_BASE")
            && err.contains("remove --retry-base-ms / FUTUREAUTH_RETRY_BASE_MS"),
        "{err}"
    );
}

/// A free TCP port on this machine (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Runs a command that must refuse to start; its stderr. A server that starts anyway is
/// killed after 10 s and fails the test.
fn stderr_of(cmd: &mut Command) -> String {
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run binary");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("started although it must refuse to");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(!status.success(), "must not start");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err)
        .expect("read stderr");
    err
}

#[test]
fn the_dev_outbox_is_refused_on_a_public_address() {
    for listen in ["0.0.0.0:0", "[::]:0", "192.0.2.1:0"] {
        let err = stderr_of(
            bin()
                .env("DATABASE_URL", temp_db())
                .env("LISTEN_ADDR", listen),
        );
        for says in [
            "/dev/outbox",
            "RESEND_API_KEY",
            "TWILIO_ACCOUNT_SID",
            "127.0.0.1",
            "--insecure-dev-outbox",
        ] {
            assert!(err.contains(says), "{listen}: {says} missing from {err}");
        }
    }
    // `FUTUREAUTH_INSECURE_DEV_OUTBOX=false` is not a yes.
    let err = stderr_of(
        bin()
            .env("DATABASE_URL", temp_db())
            .env("LISTEN_ADDR", "0.0.0.0:0")
            .env("FUTUREAUTH_INSECURE_DEV_OUTBOX", "false"),
    );
    assert!(err.contains("--insecure-dev-outbox"), "{err}");
    // Never in production, even when asked for.
    let err = stderr_of(
        bin()
            .args(["--production", "--insecure-dev-outbox"])
            .env("DATABASE_URL", temp_db())
            .env("RESEND_API_KEY", "re_x")
            .env("TWILIO_ACCOUNT_SID", "AC1")
            .env("TWILIO_AUTH_TOKEN", "t")
            .env("TWILIO_FROM_NUMBER", "+12015550123")
            .env("FUTUREAUTH_SERVER_SECRET", "x".repeat(32)),
    );
    assert!(
        err.contains("--insecure-dev-outbox") && err.contains("production"),
        "{err}"
    );
}

/// Starts the binary, waits for `/healthz` on `port`, and returns the child.
fn start_and_wait(cmd: &mut Command, port: u16) -> std::process::Child {
    let mut child = cmd.spawn().expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("exited early: {status}");
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return child;
        }
        assert!(std::time::Instant::now() < deadline, "did not listen");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn http_get(port: u16, path: &str, host: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn the_dev_outbox_on_a_public_address_needs_the_insecure_flag() {
    for (flag, env) in [(Some("--insecure-dev-outbox"), None), (None, Some("true"))] {
        let port = free_port();
        let mut cmd = bin();
        cmd.env("DATABASE_URL", temp_db())
            .env("LISTEN_ADDR", format!("0.0.0.0:{port}"));
        if let Some(f) = flag {
            cmd.arg(f);
        }
        if let Some(e) = env {
            cmd.env("FUTUREAUTH_INSECURE_DEV_OUTBOX", e);
        }
        let mut child = start_and_wait(&mut cmd, port);
        let ok = http_get(port, "/dev/outbox", &format!("127.0.0.1:{port}"));
        let rebound = http_get(port, "/dev/outbox", &format!("evil.example:{port}"));
        let _ = child.kill();
        let _ = child.wait();
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(rebound.starts_with("HTTP/1.1 403"), "{rebound}");
    }
}

#[test]
fn production_needs_a_server_secret() {
    let providers = |c: &mut Command| {
        c.args(["--production"])
            .env("DATABASE_URL", temp_db())
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env("RESEND_API_KEY", "re_x")
            .env("TWILIO_ACCOUNT_SID", "AC1")
            .env("TWILIO_AUTH_TOKEN", "t")
            .env("TWILIO_FROM_NUMBER", "+12015550123");
    };
    let mut cmd = bin();
    providers(&mut cmd);
    let err = stderr_of(&mut cmd);
    assert!(err.contains("FUTUREAUTH_SERVER_SECRET"), "{err}");
    let mut cmd = bin();
    providers(&mut cmd);
    let err = stderr_of(cmd.env("FUTUREAUTH_SERVER_SECRET", "short"));
    assert!(err.contains("at least 32"), "{err}");
    // With a secret it starts.
    let port = free_port();
    let mut cmd = bin();
    providers(&mut cmd);
    cmd.env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("FUTUREAUTH_SERVER_SECRET", "x".repeat(32));
    let mut child = start_and_wait(&mut cmd, port);
    let health = http_get(port, "/healthz", &format!("127.0.0.1:{port}"));
    let outbox = http_get(port, "/dev/outbox", &format!("127.0.0.1:{port}"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(outbox.starts_with("HTTP/1.1 404"), "{outbox}");
}

#[test]
fn project_create_json_prints_exactly_the_id_and_key() {
    let db = temp_db();
    let out = bin()
        .args([
            "project",
            "create",
            "--name",
            "Acme",
            "--callback-url",
            "https://app.acme.test/cb",
            "--sms-countries",
            "US,CA",
            "--json",
        ])
        .env("DATABASE_URL", &db)
        .output()
        .expect("run binary");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(
        stdout.starts_with("{\"project_id\": \"prj_")
            && stdout.contains("\", \"secret_key\": \"vx_sec_"),
        "{stdout}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let obj = v.as_object().unwrap();
    assert_eq!(obj.len(), 2);
    assert!(v["project_id"].as_str().unwrap().starts_with("prj_"));
    assert!(v["secret_key"].as_str().unwrap().starts_with("vx_sec_"));

    let out = bin()
        .args(["project", "list", "--json"])
        .env("DATABASE_URL", &db)
        .output()
        .unwrap();
    assert!(out.status.success());
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["name"], "Acme");
    assert_eq!(
        list[0]["allowed_origins"],
        serde_json::json!(["https://app.acme.test"])
    );
    assert_eq!(list[0]["sms_countries"], serde_json::json!(["US", "CA"]));

    // Bad input is refused with a message naming the flag.
    let out = bin()
        .args([
            "project",
            "create",
            "--name",
            "X",
            "--callback-url",
            "ftp://nope",
        ])
        .env("DATABASE_URL", &db)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--callback-url"));
}
