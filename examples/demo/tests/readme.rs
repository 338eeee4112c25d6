//! The root README's "Run your own server" path, run as written: this test PARSES the block
//! between `<!-- readme-test:begin run-your-own-server` and `<!-- readme-test:end -->` in
//! `README.md` and follows it step by step in headless Chromium, so that the README and the
//! product cannot drift apart without this test failing.
//!
//! What is taken from the README, and checked against the product:
//! - the shell commands (every line of the block's `sh` fences), run as processes: the
//!   operator is added with the README's own command, the server started with it, the demo
//!   started with the README's command once the console's ready-to-paste command is checked
//!   to be that same command (with the real key);
//! - the console's address, the operator's email, the create form's prefilled callback URL and
//!   other allowed origin (the form must offer exactly what the README says it offers), and
//!   the labels of the buttons the README says to press (each must be in the README in bold
//!   and on the page).
//!
//! Two mappings, and only these: `cargo run -p X -- ARGS` runs the already-built binary of
//! X with ARGS (building through cargo inside a test is too slow; the server's binary is
//! built first with `cargo build -p futureauth-server --bin futureauth-server`, a no-op when
//! fresh), and the README's ports 8080 and 3000 become free ports (other tests and people on
//! the machine may hold those), set through the server's `LISTEN_ADDR` and the demo's `PORT`
//! and substituted wherever the README's addresses appear. Both programs run in a fresh
//! temporary directory, like a fresh checkout: their SQLite files start empty.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver`; fails, never skips, without them.

use std::fs::File;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, ensure, Context, Result};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const WAIT: Duration = Duration::from_secs(20);
const BEGIN: &str = "<!-- readme-test:begin run-your-own-server";
const END: &str = "<!-- readme-test:end -->";
/// The README's addresses of the server and of the demo.
const README_SERVER: &str = "127.0.0.1:8080";
const README_DEMO: &str = "127.0.0.1:3000";

// ------------------------------------------------------------------ the README, parsed

/// One command line of the README: `VAR=value … cargo run -p PACKAGE [-- ARGS…]`.
#[derive(Debug, Clone, PartialEq)]
struct ReadmeCommand {
    /// The line as written.
    line: String,
    env: Vec<(String, String)>,
    package: String,
    args: Vec<String>,
}

impl ReadmeCommand {
    fn parse(line: &str) -> Result<Self> {
        let mut words = line.split_whitespace().peekable();
        let mut env = Vec::new();
        while let Some(word) = words.peek() {
            match word.split_once('=') {
                Some((name, value))
                    if !name.is_empty()
                        && name.chars().all(|c| c.is_ascii_uppercase() || c == '_') =>
                {
                    env.push((name.to_owned(), value.to_owned()));
                    words.next();
                }
                _ => break,
            }
        }
        let rest: Vec<&str> = words.collect();
        let (package, args) = match rest.as_slice() {
            ["cargo", "run", "-p", package, "--", args @ ..] => (package, args),
            ["cargo", "run", "-p", package] => (package, &[][..]),
            _ => bail!(
                "README command {line:?} is not `[VAR=value…] cargo run -p PACKAGE [-- ARGS]`"
            ),
        };
        Ok(Self {
            line: line.to_owned(),
            env,
            package: (*package).to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
        })
    }
}

/// The "Run your own server" block of the README.
struct Readme {
    text: String,
    commands: Vec<ReadmeCommand>,
}

impl Readme {
    fn load() -> Result<Self> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
        let all = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let start = all
            .find(BEGIN)
            .with_context(|| format!("README.md has no {BEGIN:?} marker"))?;
        let len = all[start..]
            .find(END)
            .with_context(|| format!("README.md has no {END:?} after the begin marker"))?;
        let text = all[start..start + len].to_owned();
        let mut commands = Vec::new();
        let mut in_sh = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with("```") {
                in_sh = !in_sh && line == "```sh";
                continue;
            }
            if in_sh && !line.is_empty() && !line.starts_with('#') {
                commands.push(ReadmeCommand::parse(line)?);
            }
        }
        ensure!(
            commands.len() == 3,
            "expected three commands (operator add, server, demo) in the README block, found {commands:?}"
        );
        Ok(Self { text, commands })
    }

    /// The README says to press `label`: it must be written there in bold.
    fn says_press(&self, label: &str) -> Result<()> {
        ensure!(
            self.text
                .to_lowercase()
                .contains(&format!("press **{}**", label.to_lowercase())),
            "the README's steps no longer say to press **{label}**"
        );
        Ok(())
    }

    /// The backticked value right after `what` in the README (`… callback URL `http://…``).
    fn value_after(&self, what: &str) -> Result<String> {
        let at = self
            .text
            .find(what)
            .with_context(|| format!("the README no longer mentions {what:?}"))?;
        let rest = &self.text[at + what.len()..];
        let open = rest.find('`').context("no `value` after it")?;
        let close = rest[open + 1..].find('`').context("unclosed `value`")?;
        Ok(rest[open + 1..open + 1 + close].to_owned())
    }

    /// The address of a step that says "Open http://…" and ends with `suffix`.
    fn opened(&self, suffix: &str) -> Result<String> {
        self.text
            .split("Open ")
            .skip(1)
            .filter_map(|rest| rest.split_whitespace().next())
            .map(|w| w.trim_end_matches(['.', ',', ':']))
            .find(|w| w.starts_with("http://") && w.ends_with(suffix))
            .map(str::to_owned)
            .with_context(|| {
                format!("no step of the README says to open an address ending in {suffix:?}")
            })
    }
}

// ------------------------------------------------------------------ processes

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
        let dir =
            std::env::temp_dir().join(format!("futureauth-readme-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process, killed on drop.
struct Running {
    child: Child,
    log: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// What the process printed so far (its "terminal").
    fn terminal(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Where `cargo run -p PACKAGE` would put its binary: next to this test's own binaries.
fn binary_of(package: &str) -> Result<PathBuf> {
    match package {
        "futureauth-demo" => Ok(PathBuf::from(env!("CARGO_BIN_EXE_futureauth-demo"))),
        "futureauth-server" => {
            // target/<profile>/deps/readme-… → target/<profile>/futureauth-server
            let exe = std::env::current_exe()?;
            let profile_dir = exe
                .parent()
                .and_then(Path::parent)
                .context("cannot locate the target directory")?;
            let target_dir = profile_dir.parent().context("no target directory")?;
            let status = Command::new(env!("CARGO"))
                .args([
                    "build",
                    "-p",
                    "futureauth-server",
                    "--bin",
                    "futureauth-server",
                ])
                .env("CARGO_TARGET_DIR", target_dir)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .context("cannot run cargo build -p futureauth-server")?;
            ensure!(status.success(), "cargo build -p futureauth-server failed");
            let bin = profile_dir.join("futureauth-server");
            ensure!(bin.exists(), "{} was not built", bin.display());
            Ok(bin)
        }
        other => bail!("the README runs an unknown package {other:?}"),
    }
}

/// Runs a README command the way a shell would, with the two mappings of this test: the
/// package's built binary, and `extra_env` (the free port).
fn spawn(
    cmd: &ReadmeCommand,
    dir: &Path,
    extra_env: &[(&str, String)],
    log_name: &str,
) -> Result<Running> {
    let log = dir.join(log_name);
    let out = File::create(&log)?;
    let err = out.try_clone()?;
    let mut command = Command::new(binary_of(&cmd.package)?);
    command
        .args(&cmd.args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("FUTUREAUTH_SECRET_KEY")
        .env_remove("FUTUREAUTH_API_URL")
        .env_remove("RESEND_API_KEY")
        .env_remove("TWILIO_ACCOUNT_SID")
        .env("NO_COLOR", "1")
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    for (name, value) in &cmd.env {
        command.env(name, value);
    }
    for (name, value) in extra_env {
        command.env(name, value);
    }
    let child = command
        .spawn()
        .with_context(|| format!("cannot run {:?}", cmd.line))?;
    Ok(Running { child, log })
}

/// Waits until `port` accepts connections, or the process exits.
fn wait_listening(proc: &mut Running, port: u16, what: &str) -> Result<()> {
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = proc.child.try_wait()? {
            bail!("{what} exited with {status}:\n{}", proc.terminal());
        }
        ensure!(
            Instant::now() < deadline,
            "{what} did not listen on port {port}:\n{}",
            proc.terminal()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

// ------------------------------------------------------------------ browser

struct ChromeDriver(Child, u16);

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_chromedriver(log: &Path) -> Result<ChromeDriver> {
    for path in [CHROMIUM, CHROMEDRIVER] {
        ensure!(
            Path::new(path).exists(),
            "{path} not found: apt-get install chromium chromium-driver"
        );
    }
    let port = free_port()?;
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(File::create(log)?)
        .spawn()
        .context("cannot start chromedriver")?;
    let mut driver = ChromeDriver(child, port);
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = driver.0.try_wait()? {
            bail!("chromedriver exited with {status}");
        }
        ensure!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(driver)
}

async fn open_browser(driver: &ChromeDriver, profile: &Path) -> Result<Client> {
    // fantoccini (aws-lc-rs) and reqwest (ring) both bring a rustls provider: pick one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let capabilities = json!({
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--window-size=1200,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        }
    });
    let Value::Object(capabilities) = capabilities else {
        bail!("capabilities must be an object");
    };
    ClientBuilder::rustls()?
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.1))
        .await
        .context("cannot open Chromium through chromedriver")
}

/// Polls until `css` matches a displayed element.
async fn visible(c: &Client, css: &str) -> Result<Element> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(el) = c.find(Locator::Css(css)).await {
            if el.is_displayed().await.unwrap_or(false) {
                return Ok(el);
            }
        }
        if Instant::now() > deadline {
            let url = c
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            bail!("timed out waiting for {css} (at {url})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn fill(c: &Client, css: &str, value: &str) -> Result<()> {
    let input = visible(c, css).await?;
    input.clear().await?;
    input.send_keys(value).await?;
    Ok(())
}

async fn value_of(c: &Client, css: &str) -> Result<String> {
    Ok(visible(c, css)
        .await?
        .prop("value")
        .await?
        .unwrap_or_default())
}

/// Presses the displayed, enabled button labelled `label`, after checking that the README
/// says to press it.
async fn press(c: &Client, readme: &Readme, label: &str) -> Result<()> {
    readme.says_press(label)?;
    let deadline = Instant::now() + WAIT;
    loop {
        for button in c.find_all(Locator::Css("button")).await? {
            let text = button.text().await.unwrap_or_default();
            if text.trim() == label
                && button.is_displayed().await.unwrap_or(false)
                && button.is_enabled().await.unwrap_or(false)
            {
                button.click().await?;
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            let url = c
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            bail!(
                "no enabled button labelled {label:?} at {url}, though the README says to press it"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn text_containing(c: &Client, css: &str, needle: &str) -> Result<String> {
    let deadline = Instant::now() + WAIT;
    let mut last = String::new();
    loop {
        if let Ok(el) = c.find(Locator::Css(css)).await {
            last = el.text().await.unwrap_or_default();
            if last.contains(needle) {
                return Ok(last);
            }
        }
        ensure!(
            Instant::now() < deadline,
            "timed out waiting for {css} to contain {needle:?}; last {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn artifacts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/artifacts")
}

async fn screenshot(c: &Client, name: &str) -> Result<()> {
    let dir = artifacts_dir();
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), c.screenshot().await?)?;
    Ok(())
}

// ------------------------------------------------------------------ dev outbox

/// The code in the terminal line the README shows
/// (`[futureauth dev outbox] to you@example.com: email code …`), the newest one.
fn code_in_terminal(terminal: &str, email: &str) -> Option<String> {
    let prefix = format!("[futureauth dev outbox] to {email}: email code ");
    terminal.lines().rev().find_map(|line| {
        let at = line.find(&prefix)?;
        let code: String = line[at + prefix.len()..]
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        (!code.is_empty()).then_some(code)
    })
}

async fn terminal_code(server: &Running, email: &str) -> Result<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(code) = code_in_terminal(&server.terminal(), email) {
            return Ok(code);
        }
        ensure!(
            Instant::now() < deadline,
            "no code for {email} in the server's terminal:\n{}",
            server.terminal()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The newest message of `channel` to `email` in the dev outbox at `base` (JSON), other than
/// the ones in `seen`.
async fn outbox_message(
    http: &reqwest::Client,
    base: &str,
    channel: &str,
    email: &str,
    seen: &[Value],
) -> Result<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let body: Value = http
            .get(format!("{base}/dev/outbox"))
            .header("accept", "application/json")
            .send()
            .await?
            .json()
            .await?;
        let found = body["messages"].as_array().and_then(|all| {
            all.iter()
                .find(|m| m["channel"] == channel && m["destination"] == email && !seen.contains(m))
                .cloned()
        });
        if let Some(m) = found {
            return Ok(m);
        }
        ensure!(
            Instant::now() < deadline,
            "no new {channel} message to {email} in {base}/dev/outbox: {body}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

// ------------------------------------------------------------------ the path

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_path_from_checkout_to_own_server_works_verbatim() -> Result<()> {
    let readme = Readme::load()?;
    let tmp = TempDir::new()?;
    let server_port = free_port()?;
    let demo_port = free_port()?;
    let server_addr = format!("127.0.0.1:{server_port}");
    let demo_addr = format!("127.0.0.1:{demo_port}");
    // The README's addresses, at the ports this test uses.
    let here = |s: &str| {
        s.replace(README_SERVER, &server_addr)
            .replace(README_DEMO, &demo_addr)
    };
    let [add, serve, demo_cmd] = &readme.commands[..] else {
        bail!("three commands expected");
    };
    ensure!(
        add.package == "futureauth-server"
            && add.args.first().map(String::as_str) == Some("operator"),
        "the first README command should add an operator: {:?}",
        add.line
    );
    let email = add
        .args
        .last()
        .context("operator add names no email")?
        .clone();
    ensure!(
        serve.package == "futureauth-server" && serve.args.is_empty(),
        "the second README command should start the server: {:?}",
        serve.line
    );
    ensure!(
        demo_cmd.package == "futureauth-demo",
        "the third README command should start the demo: {:?}",
        demo_cmd.line
    );

    // Step 1: terminal 1.
    let mut added = spawn(add, &tmp.0, &[], "operator-add.log")?;
    let status = added.child.wait()?;
    let said = added.terminal();
    ensure!(status.success(), "{:?} failed:\n{said}", add.line);
    ensure!(
        said.contains(&email) && said.contains("/dev/outbox") && !said.contains("sent by email"),
        "`operator add` should say where the sign-in code will appear: {said}"
    );
    let listen = [("LISTEN_ADDR", server_addr.clone())];
    let mut server = spawn(serve, &tmp.0, &listen, "server.log")?;
    wait_listening(&mut server, server_port, "the server")?;

    let driver = start_chromedriver(&tmp.0.join("chromedriver.log"))?;
    let profile = tmp.0.join("profile");
    std::fs::create_dir_all(&profile)?;
    let c = open_browser(&driver, &profile).await?;
    let http = reqwest::Client::new();
    let outcome = async {
        // Step 2: the console, signed in with the code from the server's terminal.
        let dashboard = here(&readme.opened("/dashboard")?);
        c.goto(&dashboard).await?;
        fill(&c, "#email", &email).await?;
        press(&c, &readme, "Email me a code").await?;
        let code = terminal_code(&server, &email).await?;
        let server_base = format!("http://{server_addr}");
        let listed = outbox_message(&http, &server_base, "email", &email, &[]).await?;
        ensure!(
            listed["code"] == code.as_str(),
            "the terminal and /dev/outbox disagree: {code} vs {listed}"
        );
        fill(&c, "#code", &code).await?;
        press(&c, &readme, "Sign in").await?;

        // Step 3: a project, with what the form offers for local development.
        fill(&c, "#name", "My App").await?;
        let callback = readme.value_after("callback URL")?;
        let origin = readme.value_after("other allowed origin")?;
        let offered_callback = value_of(&c, "#callback_url").await?;
        let offered_origins = value_of(&c, "#allowed_origins").await?;
        ensure!(
            offered_callback == callback && offered_origins.trim() == origin,
            "the create form offers {offered_callback:?} / {offered_origins:?}, the README says {callback:?} / {origin:?}"
        );
        screenshot(&c, "readme-console-new-project.png").await?;
        // The demo runs on this test's port, not 3000: the same addresses, moved.
        fill(&c, "#callback_url", &here(&callback)).await?;
        fill(
            &c,
            "#allowed_origins",
            &origin.replace(":3000", &format!(":{demo_port}")),
        )
        .await?;
        press(&c, &readme, "Create project").await?;

        // Step 4: the ready-to-paste command is the README's, with the key.
        let key = value_of(&c, "#secret").await?;
        ensure!(key.starts_with("vx_sec_"), "no secret key on the page: {key:?}");
        let pasted = value_of(&c, "#demo-command").await?;
        let expected = here(&demo_cmd.line).replace("vx_sec_…", &key);
        ensure!(
            pasted.trim() == expected,
            "the console's ready-to-paste command\n  {pasted}\nis not the README's\n  {expected}"
        );
        let env_block = value_of(&c, "#env-block").await?;
        ensure!(
            env_block.contains(&format!("FUTUREAUTH_API_URL=http://{server_addr}"))
                && env_block.contains(&format!("FUTUREAUTH_SECRET_KEY={key}")),
            "the key page lacks the API URL or the key: {env_block}"
        );
        screenshot(&c, "readme-console-quick-start.png").await?;

        // Terminal 2: the pasted command (the README's, with the key), as a shell runs it.
        let pasted_cmd = ReadmeCommand::parse(pasted.trim())?;
        ensure!(
            pasted_cmd.package == demo_cmd.package && pasted_cmd.args == demo_cmd.args,
            "the pasted command runs something else: {pasted_cmd:?}"
        );
        let mut demo = spawn(
            &pasted_cmd,
            &tmp.0,
            &[("PORT", demo_port.to_string())],
            "demo.log",
        )?;
        wait_listening(&mut demo, demo_port, "the demo")?;
        // It prints its delivery just after it starts listening.
        let deadline = Instant::now() + WAIT;
        while !demo
            .terminal()
            .contains(&format!("delivery: FutureAuth server at http://{server_addr}"))
        {
            ensure!(
                Instant::now() < deadline,
                "the demo does not deliver through the server: {}",
                demo.terminal()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // Step 5: sign in by code, then by link, everything read from the server's outbox.
        let demo_base = here(&readme.opened(":3000")?);
        c.goto(&demo_base).await?;
        fill(&c, "#email", &email).await?;
        press(&c, &readme, "Send code").await?;
        let message = outbox_message(&http, &server_base, "email", &email, &[listed]).await?;
        ensure!(
            message["project_name"] == "My App",
            "the demo's code came from another project: {message}"
        );
        fill(&c, "#code", message["code"].as_str().context("a code")?).await?;
        press(&c, &readme, "Verify").await?;
        text_containing(&c, "#user-email", &email).await?;
        press(&c, &readme, "Sign out").await?;

        let someone_else = readme.value_after("sign in with a magic link as someone else")?;
        fill(&c, "#magic-email", &someone_else).await?;
        press(&c, &readme, "Send link").await?;
        let message =
            outbox_message(&http, &server_base, "magic_link", &someone_else, &[]).await?;
        let link = message["link"].as_str().context("a link")?;
        ensure!(
            link.starts_with(&format!("{demo_base}/api/auth/magic-link?token=")),
            "the link does not open the SDK's landing page on the demo: {link}"
        );
        c.goto(link).await?;
        screenshot(&c, "readme-magic-link-landing.png").await?;
        press(&c, &readme, "Sign in").await?;
        text_containing(&c, "#user-email", &someone_else).await?;
        screenshot(&c, "readme-demo-signed-in.png").await?;

        // After the README: the console's overview has the quick start, and the project
        // switcher appears once there are two projects.
        c.goto(&format!("{server_base}/dashboard")).await?;
        fill(&c, "#name", "Second App").await?;
        press(&c, &readme, "Create project").await?;
        visible(&c, "#secret").await?;
        c.goto(&format!("{server_base}/dashboard")).await?;
        c.find(Locator::LinkText("My App")).await?.click().await?;
        let quick = text_containing(&c, "#quick-start", "FUTUREAUTH_API_URL").await?;
        ensure!(
            quick.contains(&server_addr) && quick.contains(&demo_addr),
            "the quick start lacks the API URL or the allowed origins: {quick}"
        );
        visible(&c, "#project-switcher summary").await?.click().await?;
        visible(&c, "#project-switcher a").await?;
        screenshot(&c, "readme-console-overview.png").await?;
        c.find(Locator::Css("#project-switcher a"))
            .await?
            .click()
            .await?;
        text_containing(&c, "h1", "Second App").await?;
        drop(demo);
        Ok::<(), anyhow::Error>(())
    }
    .await;
    if outcome.is_err() {
        let _ = screenshot(&c, "readme-failure.png").await;
        eprintln!("server terminal:\n{}", server.terminal());
    }
    let _ = c.close().await;
    drop(driver);
    outcome.map_err(|e| anyhow!("{e:#}"))
}

#[test]
fn readme_commands_parse_as_a_shell_would() -> Result<()> {
    let cmd = ReadmeCommand::parse(
        "FUTUREAUTH_API_URL=http://127.0.0.1:8080 FUTUREAUTH_SECRET_KEY=vx_sec_… cargo run -p futureauth-demo",
    )?;
    assert_eq!(cmd.package, "futureauth-demo");
    assert_eq!(cmd.env.len(), 2);
    assert!(cmd.args.is_empty());
    let cmd =
        ReadmeCommand::parse("cargo run -p futureauth-server -- operator add you@example.com")?;
    assert_eq!(cmd.args, ["operator", "add", "you@example.com"]);
    assert!(ReadmeCommand::parse("futureauth-server operator add x@y.z").is_err());
    assert_eq!(
        code_in_terminal(
            "WARN x: DEV OUTBOX: message NOT sent: [futureauth dev outbox] to a@b.co: email code k3x9qa id=1",
            "a@b.co"
        )
        .as_deref(),
        Some("k3x9qa")
    );
    Ok(())
}
