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
        "RESEND_API_URL",
        "RESEND_WEBHOOK_SECRET",
        "TWILIO_API_URL",
        "FUTUREAUTH_PUBLIC_URL",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
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
fn production_needs_no_server_secret_but_refuses_a_short_one() {
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
    let err = stderr_of(cmd.env("FUTUREAUTH_SERVER_SECRET", "short"));
    assert!(err.contains("at least 32"), "{err}");
    // Without one it starts (the fingerprint key is kept in the database).
    let port = free_port();
    let mut cmd = bin();
    providers(&mut cmd);
    cmd.env("LISTEN_ADDR", format!("127.0.0.1:{port}"));
    let mut child = start_and_wait(&mut cmd, port);
    let health = http_get(port, "/healthz", &format!("127.0.0.1:{port}"));
    let outbox = http_get(port, "/dev/outbox", &format!("127.0.0.1:{port}"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(outbox.starts_with("HTTP/1.1 404"), "{outbox}");
}

/// A started server, killed when dropped.
struct Server {
    child: std::process::Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(cmd: &mut Command) -> Server {
    let port = free_port();
    cmd.env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    Server {
        child: start_and_wait(cmd, port),
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// An operator token for a new operator of database `db` (through the CLI).
fn operator_token(db: &str) -> String {
    let run = |args: &[&str]| {
        let out = bin()
            .args(args)
            .env("DATABASE_URL", db)
            .output()
            .expect("run binary");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf8")
    };
    run(&["operator", "add", "ops@example.com"]);
    run(&["operator", "token", "ops@example.com"])
        .trim()
        .to_owned()
}

/// `POST /api/v1/projects` as the operator: `(project id, secret key)`.
async fn create_project(http: &reqwest::Client, url: &str, token: &str) -> (String, String) {
    let v: serde_json::Value = http
        .post(format!("{url}/api/v1/projects"))
        .bearer_auth(token)
        .json(&serde_json::json!({"name": "Acme"}))
        .send()
        .await
        .expect("create project")
        .json()
        .await
        .expect("json");
    (
        v["project"]["id"].as_str().expect("id").to_owned(),
        v["key"]["secret_key"].as_str().expect("key").to_owned(),
    )
}

/// `PUT /api/v1/projects/{id}/webhook`: status and body.
async fn set_webhook(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    project: &str,
    hook: &str,
) -> (u16, serde_json::Value) {
    let resp = http
        .put(format!("{url}/api/v1/projects/{project}/webhook"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "url": hook }))
        .send()
        .await
        .expect("set webhook");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json"))
}

/// Webhook URLs that point into the server's network: the metadata service, a private
/// address, and IPv6 forms of the metadata address (NAT64, IPv4-compatible).
const INTERNAL_HOOKS: [&str; 4] = [
    "https://169.254.169.254/latest/meta-data",
    "https://10.0.0.1/hook",
    "https://[64:ff9b::a9fe:a9fe]/",
    "https://[::a9fe:a9fe]/",
];

/// Real provider keys and no mode flag: production rules, so a project cannot point its
/// webhook at internal addresses. The same server asked for development (no providers, `--dev`)
/// accepts them, so it is the inferred mode that refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_providers_without_flags_mean_production_rules() {
    let http = reqwest::Client::new();
    for (providers, dev, refused) in [
        (&[("RESEND_API_KEY", "re_live_x")][..], false, true),
        (
            &[
                ("TWILIO_ACCOUNT_SID", "AC1"),
                ("TWILIO_AUTH_TOKEN", "t"),
                ("TWILIO_FROM_NUMBER", "+12015550123"),
            ][..],
            false,
            true,
        ),
        (&[][..], true, false),
    ] {
        let db = temp_db();
        let token = operator_token(&db);
        let mut cmd = bin();
        cmd.env("DATABASE_URL", &db);
        for (k, v) in providers {
            cmd.env(k, v);
        }
        if dev {
            cmd.arg("--dev");
        }
        let server = start_server(&mut cmd);
        let (project, _) = create_project(&http, &server.url, &token).await;
        for hook in INTERNAL_HOOKS {
            let (status, v) = set_webhook(&http, &server.url, &token, &project, hook).await;
            if refused {
                assert_eq!(
                    (status, v["error"]["code"].as_str()),
                    (422, Some("invalid_webhook_url")),
                    "{providers:?} {hook}: {v}"
                );
            } else {
                assert_eq!(status, 200, "development {hook}: {v}");
            }
        }
    }
}

/// A development flag beside a real provider is a start-up error that says what to remove.
#[test]
fn a_development_flag_with_real_providers_refuses_to_start() {
    for (flag, env) in [
        (Some("--dev"), None),
        (None, Some(("FUTUREAUTH_ENV", "development"))),
        (Some("--insecure-dev-outbox"), None),
    ] {
        let mut cmd = bin();
        cmd.env("DATABASE_URL", temp_db())
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env("RESEND_API_KEY", "re_live_x");
        if let Some(f) = flag {
            cmd.arg(f);
        }
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let err = stderr_of(&mut cmd);
        let named = flag.unwrap_or("FUTUREAUTH_ENV=development");
        assert!(
            err.contains(&format!("Remove {named}")) && err.contains("RESEND_API_KEY"),
            "{named}: {err}"
        );
    }
    // The same with a provider on loopback (a test fake) starts: it reaches nobody.
    let port = free_port();
    let mut cmd = bin();
    cmd.arg("--dev")
        .env("DATABASE_URL", temp_db())
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("RESEND_API_KEY", "re_fake")
        .env("RESEND_API_URL", "http://127.0.0.1:9");
    let mut child = start_and_wait(&mut cmd, port);
    let _ = child.kill();
    let _ = child.wait();
}

/// A tiny HTTP/1.1 server on `addr` answering every request with `response`; the raw
/// requests it received (a proxy is sent the absolute URL in the request line).
fn tiny_server(
    listener: std::net::TcpListener,
    response: &'static str,
) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    use std::io::{Read, Write};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut raw = Vec::new();
            let mut buf = [0u8; 4096];
            // Read the head, then as much body as Content-Length says.
            while let Ok(n @ 1..) = stream.read(&mut buf) {
                raw.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&raw).into_owned();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if raw.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            log.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&raw).into_owned());
            let _ = stream.write_all(response.as_bytes());
        }
    });
    seen
}

fn bind(addr: &str) -> std::net::TcpListener {
    std::net::TcpListener::bind(addr).expect("bind")
}

/// Proxy variables in the environment do not route project webhooks through a proxy (which
/// would resolve the name itself and undo the address check): a recording proxy sees no
/// connection, and the app's endpoint receives the event directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_delivery_ignores_proxy_variables() {
    use base64::Engine;
    use hmac::Mac;
    let resend = bind("127.0.0.1:0");
    let resend_port = resend.local_addr().unwrap().port();
    let _resend = tiny_server(
        resend,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 13\r\nconnection: close\r\n\r\n{\"id\":\"re_1\"}",
    );
    let proxy = bind("127.0.0.1:0");
    let proxy_port = proxy.local_addr().unwrap().port();
    let proxied = tiny_server(
        proxy,
        "HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    );
    // The app's endpoint at `localhost` (which NO_PROXY does not exempt), on both stacks.
    let app = bind("127.0.0.1:0");
    let app_port = app.local_addr().unwrap().port();
    let ok = "HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n";
    let received = tiny_server(app, ok);
    let received_v6 = std::net::TcpListener::bind(("::1", app_port))
        .ok()
        .map(|l| tiny_server(l, ok));

    let key = b"resend-signing-key-for-the-test!";
    let db = temp_db();
    let token = operator_token(&db);
    let proxy_url = format!("http://127.0.0.1:{proxy_port}");
    let mut cmd = bin();
    cmd.arg("--dev")
        .env("DATABASE_URL", &db)
        .env("RESEND_API_KEY", "re_fake")
        .env("RESEND_API_URL", format!("http://127.0.0.1:{resend_port}"))
        .env(
            "RESEND_WEBHOOK_SECRET",
            format!(
                "whsec_{}",
                base64::engine::general_purpose::STANDARD.encode(key)
            ),
        )
        .env("FUTUREAUTH_RETRY_BASE", "100ms")
        .env("FUTUREAUTH_POLL_INTERVAL", "100ms")
        // The provider client may use a proxy; 127.0.0.1 (the fake Resend) is exempt.
        .env("NO_PROXY", "127.0.0.1")
        .env("no_proxy", "127.0.0.1");
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        cmd.env(var, &proxy_url);
    }
    let server = start_server(&mut cmd);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let (project, secret_key) = create_project(&http, &server.url, &token).await;
    let hook = format!("http://localhost:{app_port}/hooks/futureauth");
    let (status, v) = set_webhook(&http, &server.url, &token, &project, &hook).await;
    assert_eq!(status, 200, "{v}");
    // A message the fake Resend accepts as re_1, then Resend's signed `email.delivered`.
    let resp = http
        .post(format!("{}/api/v1/otp/send", server.url))
        .bearer_auth(&secret_key)
        .json(&serde_json::json!({"channel": "email", "destination": "ada@example.com", "code": "123456"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let id = resp.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let v: serde_json::Value = http
            .get(format!("{}/api/v1/messages/{id}", server.url))
            .bearer_auth(&secret_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["status"] == "sent" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not sent: {v}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let body = serde_json::json!({"type": "email.delivered", "created_at": "2026-11-29T01:00:02.000Z", "data": {"email_id": "re_1"}}).to_string();
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("evt_1.{ts}.{body}").as_bytes());
    let signature = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    let resp = http
        .post(format!("{}/webhooks/resend", server.url))
        .header("svix-id", "evt_1")
        .header("svix-timestamp", ts.to_string())
        .header("svix-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let delivered = || {
        received.lock().unwrap().len() + received_v6.as_ref().map_or(0, |r| r.lock().unwrap().len())
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while delivered() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the event never reached the app; the proxy saw {:?}",
            proxied.lock().unwrap()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        proxied.lock().unwrap().is_empty(),
        "went through the proxy: {:?}",
        proxied.lock().unwrap()
    );
}

/// A client on the network (a non-loopback address of this machine) that sends
/// `Host: 127.0.0.1:<port>` does not read the dev outbox. The machine's address is the one a
/// UDP socket would leave by; on a machine with loopback only, tests/api.rs covers the
/// same rule through the router with a non-loopback peer.
#[test]
fn the_dev_outbox_refuses_network_clients_whatever_their_host_header() {
    let port = free_port();
    let mut cmd = bin();
    cmd.arg("--insecure-dev-outbox")
        .env("DATABASE_URL", temp_db())
        .env("LISTEN_ADDR", format!("0.0.0.0:{port}"));
    let mut child = start_and_wait(&mut cmd, port);
    let local = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").map(|()| s))
        .and_then(|s| s.local_addr())
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified());
    let from_loopback = http_get(port, "/dev/outbox", &format!("127.0.0.1:{port}"));
    let from_network = local.map(|ip| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect((ip, port)).expect("connect");
        write!(
            s,
            "GET /dev/outbox HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(from_loopback.starts_with("HTTP/1.1 200"), "{from_loopback}");
    if let Some(answer) = from_network {
        assert!(answer.starts_with("HTTP/1.1 403"), "{local:?}: {answer}");
        assert!(answer.contains("forbidden_host"), "{answer}");
    }
}

/// The SQLite database and its WAL and shared-memory files are readable by their owner
/// only, whatever the umask (022 here, which makes files 0644 by default).
#[cfg(unix)]
#[test]
fn the_sqlite_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::temp_dir().join(format!(
        "fa_perm_{}_{:x}.db",
        std::process::id(),
        rand::random::<u64>()
    ));
    let port = free_port();
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "umask 022 && exec \"$0\"",
        env!("CARGO_BIN_EXE_futureauth-server"),
    ])
    .env_remove("RESEND_API_KEY")
    .env_remove("TWILIO_ACCOUNT_SID")
    .env_remove("FUTUREAUTH_ENV")
    .env("RUST_LOG", "error")
    .env(
        "DATABASE_URL",
        format!("sqlite://{}?mode=rwc", path.display()),
    )
    .env("LISTEN_ADDR", format!("127.0.0.1:{port}"));
    let mut child = start_and_wait(&mut cmd, port);
    let health = http_get(port, "/readyz", &format!("127.0.0.1:{port}"));
    let modes: Vec<(String, Option<u32>)> = ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let file = format!("{}{suffix}", path.display());
            let mode = std::fs::metadata(&file)
                .ok()
                .map(|m| m.permissions().mode() & 0o777);
            (file, mode)
        })
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    for (file, mode) in modes {
        assert_eq!(mode, Some(0o600), "{file}");
    }
    // A database file made world-readable before is made private at the next open.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = bin()
        .args(["project", "list"])
        .env(
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", path.display()),
        )
        .output()
        .unwrap();
    assert!(out.status.success());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
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
