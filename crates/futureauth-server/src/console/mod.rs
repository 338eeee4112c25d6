//! The console under `/dashboard`: server-rendered pages (minijinja templates in
//! `templates/console/`, CSS and a little JS in `static/console/`, all served by this server)
//! where operators sign in, manage projects, keys, settings and members, and watch deliveries.
//!
//! Operators sign in with the `futureauth` SDK itself, on this server's database, with codes
//! and links delivered through this server's own outbox ([`delivery::OutboxDelivery`]).
//! Every page checks the session and the project membership (another project answers 404);
//! every form carries a CSRF token tied to the session and must come from the console's own
//! origin.

// Handlers short-circuit with a ready page (`Result<_, Response>`); boxing it buys nothing.
#![allow(clippy::result_large_err)]

pub mod chart;
pub mod delivery;
mod extract;
mod flash;
pub mod forms;
mod integrations;
mod pages;
mod passkeys;
pub mod session;
pub mod views;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::extract::{Request, State};
use axum::handler::Handler;
use axum::http::{header, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, MethodRouter};
use axum::Router;
use futureauth::axum::AuthState;
use futureauth::{FutureAuth, FutureAuthConfig, PasskeyConfig};
use url::Url;

use crate::config::{parse_public_url, Config, ConfigError};
use crate::error::StoreError;
use crate::service::SendService;
use crate::store::Store;
use delivery::{console_project, OutboxDelivery};
use views::Views;

/// How long an operator session lasts without use (sliding).
pub const SESSION_TTL_SECS: u64 = 7 * 86_400;

/// Name of the operator session cookie (distinct from any app's `futureauth_session`) on
/// plain-HTTP loopback; over https it is [`HOST_COOKIE_NAME`].
pub const COOKIE_NAME: &str = "futureauth_console";
/// The session cookie over https: the `__Host-` prefix makes browsers refuse one set by a
/// sibling subdomain, or with a `Domain` or a `Path` other than `/`.
pub const HOST_COOKIE_NAME: &str = "__Host-futureauth_console";

/// The name browsers show for the console's passkeys.
pub const PASSKEY_RP_NAME: &str = "FutureAuth Console";

/// Where the console is reached and how its cookie is set.
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    /// Origins whose forms are accepted (`http://127.0.0.1:8080`, …); the first is canonical.
    pub origins: Vec<String>,
    /// Whether the session cookie is `Secure` (everything but plain-HTTP loopback).
    pub cookie_secure: bool,
    /// Production mode: test mode needs its explicit confirmation.
    pub production: bool,
    /// Name of the session cookie (`__Host-` prefixed when `Secure`).
    pub session_cookie: &'static str,
    /// Name of the cookie binding a sign-in code to the browser that asked.
    pub binding_cookie: &'static str,
    /// Name of the cookie carrying a secret to the page that shows it once.
    pub flash_cookie: &'static str,
    /// Name of the cookie binding a passkey challenge to the browser that asked.
    pub passkey_cookie: &'static str,
    /// The passkey relying party ID (a domain name), as the SDK names it from the origins:
    /// the host of the first origin on a domain name. `None` (the console offers no
    /// passkeys) when every origin is an IP address, which browsers refuse as an RP ID.
    pub passkey_rp_id: Option<String>,
    /// Proxies whose `X-Forwarded-For` names the client (`--trusted-proxies`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// The console's cookie names (session, code binding, flash, passkey binding): with the
/// `__Host-` prefix whenever they are `Secure` (as the SDK names its own), so a sibling
/// subdomain cannot plant or shadow them.
fn cookie_names(secure: bool) -> [&'static str; 4] {
    if secure {
        [
            HOST_COOKIE_NAME,
            "__Host-futureauth_console_otp",
            "__Host-futureauth_console_flash",
            "__Host-futureauth_console_passkey",
        ]
    } else {
        [
            COOKIE_NAME,
            "futureauth_console_otp",
            "futureauth_console_flash",
            "futureauth_console_passkey",
        ]
    }
}

/// The relying party ID the SDK derives from these origins (app_url first): the host of the
/// first one on a domain name, lower-cased.
fn passkey_rp_id(origins: &[String]) -> Option<String> {
    origins
        .iter()
        .filter_map(|o| Url::parse(o).ok())
        .find_map(|u| u.domain().map(str::to_ascii_lowercase))
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl ConsoleSettings {
    /// From the configuration and the bound address: the public URL if set, else
    /// `http://<addr>` (plus `localhost` when bound to loopback).
    pub fn new(config: &Config, addr: SocketAddr) -> Result<ConsoleSettings, ConfigError> {
        let public = config
            .public_url
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let (origins, secure) = match public {
            Some(raw) => Self::public_origin(raw)?,
            None => Self::bound_origins(addr),
        };
        let [session_cookie, binding_cookie, flash_cookie, passkey_cookie] = cookie_names(secure);
        Ok(ConsoleSettings {
            // On loopback: `localhost`, beside the address itself (browsers refuse passkeys
            // on an IP address).
            passkey_rp_id: passkey_rp_id(&origins),
            origins,
            cookie_secure: secure,
            production: config.is_production(),
            session_cookie,
            binding_cookie,
            flash_cookie,
            passkey_cookie,
            trusted_proxies: config.trusted_proxies.clone(),
        })
    }

    /// The console's one origin behind `FUTUREAUTH_PUBLIC_URL`, and whether its cookies are
    /// Secure (all but plain-HTTP loopback).
    fn public_origin(raw: &str) -> Result<(Vec<String>, bool), ConfigError> {
        let url = parse_public_url(raw)?;
        let plain_loopback = url.scheme() == "http" && is_loopback(&url);
        if url.scheme() == "http" && !plain_loopback {
            tracing::warn!(
                "FUTUREAUTH_PUBLIC_URL is plain http on a non-loopback host: the console's cookie is Secure, so browsers will not keep it; serve the console over https"
            );
        }
        Ok((vec![url.origin().ascii_serialization()], !plain_loopback))
    }

    /// Without a public URL: `http://<addr>`, plus `localhost` and `127.0.0.1` on loopback;
    /// cookies are Secure off loopback.
    fn bound_origins(addr: SocketAddr) -> (Vec<String>, bool) {
        let mut origins = vec![format!("http://{addr}")];
        if addr.ip().is_loopback() {
            for alias in [
                format!("http://localhost:{}", addr.port()),
                format!("http://127.0.0.1:{}", addr.port()),
            ] {
                if !origins.contains(&alias) {
                    origins.push(alias);
                }
            }
        } else {
            tracing::warn!(
                %addr,
                "the console needs FUTUREAUTH_PUBLIC_URL when listening on a non-loopback address (forms from other origins are refused and its cookie is Secure)"
            );
        }
        (origins, !addr.ip().is_loopback())
    }

    /// The canonical origin (magic links point there).
    pub fn origin(&self) -> &str {
        self.origins.first().map(String::as_str).unwrap_or("")
    }

    /// The origins passkeys work from: those on the relying party's host or its
    /// subdomains, as the SDK accepts them (empty when the console offers no passkeys).
    /// The pages offer passkeys only when opened from one of them.
    pub fn passkey_origins(&self) -> Vec<String> {
        let Some(rp_id) = &self.passkey_rp_id else {
            return Vec::new();
        };
        self.origins
            .iter()
            .filter(|o| {
                Url::parse(o).ok().is_some_and(|u| {
                    u.domain().is_some_and(|d| {
                        let d = d.to_ascii_lowercase();
                        d == *rp_id || d.ends_with(&format!(".{rp_id}"))
                    })
                })
            })
            .cloned()
            .collect()
    }
}

/// Shared state of the console's handlers; cheap to clone.
#[derive(Clone)]
pub struct Console {
    inner: Arc<Inner>,
}

/// The server-wide rate limits, shown next to the per-project fields.
#[derive(Debug, Clone, Copy, serde::Serialize)]
struct LimitDefaults {
    per_destination: u32,
    window_minutes: u64,
    per_minute: u32,
    sms_per_country_per_hour: u32,
    sms_per_hour: u32,
    sms_per_day: u32,
}

struct Inner {
    defaults: LimitDefaults,
    store: Store,
    sender: SendService,
    views: Views,
    settings: ConsoleSettings,
    dev_outbox: bool,
    /// The SDK that signs operators in. Its code-hashing key is a database secret, so every
    /// instance sharing the database (and a restarted one) accepts the same codes.
    auth: Arc<FutureAuth>,
    /// The key of the CSRF tokens (a database secret, shared like the code key).
    csrf_key: Vec<u8>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("origins", &self.inner.settings.origins)
            .finish_non_exhaustive()
    }
}

/// Why the console could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// Templates failed to compile (a bug).
    #[error("console templates: {0}")]
    Templates(String),
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The console's sign-in configuration was refused by the SDK (a bug: it is built from
    /// settings already checked).
    #[error("console sign-in configuration: {0}")]
    SignIn(String),
    /// Its secrets, its sign-in tables or its internal project could not be read or written.
    #[error("cannot set up the console in the database: {0} (check DATABASE_URL)")]
    Store(String),
}

impl Console {
    /// The console over `store`, delivering operator sign-in messages through `sender`:
    /// reads its secrets, creates the SDK's tables and the internal sign-in project, so that
    /// a request never waits for (or fails on) the set-up.
    pub async fn open(
        config: &Config,
        addr: SocketAddr,
        store: Store,
        sender: SendService,
        dev_outbox: bool,
    ) -> Result<Console, ConsoleError> {
        let settings = ConsoleSettings::new(config, addr)?;
        let views = Views::new().map_err(|e| ConsoleError::Templates(e.to_string()))?;
        let db = |e: StoreError| ConsoleError::Store(e.to_string());
        let code_key = store.server_secret("console_code_key").await.map_err(db)?;
        let csrf_key = store.server_secret("console_csrf").await.map_err(db)?;
        let csrf_key = hex::decode(csrf_key)
            .map_err(|e| ConsoleError::Store(format!("the console's CSRF key: {e}")))?;
        let auth = build_auth(&settings, &store, &sender, code_key)?;
        auth.ensure_tables().await.map_err(|e| {
            ConsoleError::Store(format!("cannot create the console's sign-in tables: {e}"))
        })?;
        let callback = format!("{}/dashboard/auth/magic", settings.origin());
        let project = console_project(&settings.origins, &callback);
        let unusable =
            crate::service::projects::hash_key(&crate::service::random_id("unusable_", 40));
        store
            .upsert_internal_project(&project, &unusable)
            .await
            .map_err(db)?;
        Ok(Console {
            inner: Arc::new(Inner {
                defaults: LimitDefaults {
                    per_destination: config.limits.limit_per_destination.get(),
                    window_minutes: config.limits.limit_destination_window().as_secs() / 60,
                    per_minute: config.limits.limit_per_project_per_minute.get(),
                    sms_per_country_per_hour: config.limits.sms_per_country_per_hour,
                    sms_per_hour: config.limits.sms_per_project_per_hour.get(),
                    sms_per_day: config.limits.sms_per_project_per_day.get(),
                },
                store,
                sender,
                views,
                settings,
                dev_outbox,
                auth,
                csrf_key,
            }),
        })
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The SDK instance that signs operators in.
    pub fn futureauth(&self) -> &FutureAuth {
        &self.inner.auth
    }

    /// The key of the session-bound CSRF tokens.
    pub(crate) fn csrf_key(&self) -> &[u8] {
        &self.inner.csrf_key
    }

    /// Where the console is reached.
    pub fn settings(&self) -> &ConsoleSettings {
        &self.inner.settings
    }
}

/// The console's own `futureauth`: its relying party and cookie come from the configured
/// origins only, never from request headers.
fn build_auth(
    settings: &ConsoleSettings,
    store: &Store,
    sender: &SendService,
    code_key: String,
) -> Result<Arc<FutureAuth>, ConsoleError> {
    let auth_config = FutureAuthConfig {
        secret_key: code_key,
        project_name: delivery::CONSOLE_PROJECT_NAME.into(),
        cookie_name: settings.session_cookie.into(),
        cookie_secure: settings.cookie_secure,
        app_url: settings.origin().to_owned(),
        // Passkeys only where a browser accepts them (an origin on a domain).
        passkeys: settings.passkey_rp_id.as_ref().map(|_| PasskeyConfig {
            rp_name: PASSKEY_RP_NAME.into(),
            ..PasskeyConfig::default()
        }),
        allowed_origins: settings.origins.clone(),
        session_ttl: std::time::Duration::from_secs(SESSION_TTL_SECS),
        // The console's sign-in shares the store's pool and its deadline.
        db_call_timeout: store.call_timeout(),
        trusted_proxies: settings.trusted_proxies.clone(),
        ..FutureAuthConfig::default()
    };
    let auth = FutureAuth::new(store.sdk_database(), auth_config).with_delivery(OutboxDelivery {
        sender: sender.clone(),
        store: store.clone(),
    });
    auth.validate()
        .map_err(|e| ConsoleError::SignIn(e.to_string()))?;
    Ok(Arc::new(auth))
}

/// The SDK's extractors (`AuthSession`, `RequestContext`) take the console's `futureauth`
/// from its state.
impl FromRef<Console> for AuthState {
    fn from_ref(console: &Console) -> AuthState {
        AuthState(console.inner.auth.clone())
    }
}

/// The SDK's request facts (client IP behind `--trusted-proxies`, user agent, language), read
/// as an app's auth routes read them, so the console counts its sign-in limits per client
/// the same way.
impl FromRequestParts<Console> for futureauth::RequestContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        console: &Console,
    ) -> Result<Self, Self::Rejection> {
        futureauth::RequestContext::from_request_parts(parts, &console.inner.auth).await
    }
}

/// Whether a request sends JSON (the passkey routes), so that a refusal answers in JSON.
fn wants_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.trim_start().starts_with("application/json"))
}

/// Security headers on every console response; POSTs must come from the console's origin.
async fn guard(State(console): State<Console>, request: Request, next: Next) -> Response {
    if request.method() == Method::POST
        && !session::origin_allowed(request.headers(), console.settings())
    {
        // The passkey routes speak JSON: their refusal does too.
        if wants_json(request.headers()) {
            return futureauth::axum::ApiError::from_code(
                futureauth::ErrorCode::CrossSiteRequest,
                "console requests are accepted only from the console's own pages",
            )
            .into_response();
        }
        return console.error_page(
            axum::http::StatusCode::FORBIDDEN,
            "Cross-site request refused",
            "Console forms are accepted only from the console's own pages.",
        );
    }
    let mut resp = next.run(request).await;
    harden(&mut resp);
    resp
}

/// The headers every console response carries (unless its handler set its own): no caching,
/// no framing, no sniffing, a strict CSP, and on a 503 (an outage page or answer) when to
/// come back, as the API says it.
fn harden(resp: &mut Response) {
    let retry = (resp.status() == axum::http::StatusCode::SERVICE_UNAVAILABLE)
        .then(|| HeaderValue::from(futureauth_proto::RETRY_UNAVAILABLE_SECS));
    let h = resp.headers_mut();
    if let Some(retry) = retry {
        if !h.contains_key(header::RETRY_AFTER) {
            h.insert(header::RETRY_AFTER, retry);
        }
    }
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    ] {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
}

/// A static asset, cached briefly (it changes with the binary).
fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

async fn static_css() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../static/console/console.css"),
    )
}

async fn static_js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../static/console/console.js"),
    )
}

/// A form's action: POST runs `handler`; GET (a reload, a link followed by hand) shows the
/// page that says where the form is.
fn action<H, T>(handler: H) -> MethodRouter<Console>
where
    H: Handler<T, Console>,
    T: 'static,
{
    get(pages::form_page).post(handler)
}

/// The console's routes: `/` → `/dashboard`, the pages and their static assets.
pub fn router(console: Console) -> Router {
    use integrations as hooks;
    use pages::*;
    use passkeys as pk;
    let d = |rest: &str| format!("/dashboard{rest}");
    let p = |rest: &str| d(&format!("/projects/{{id}}{rest}"));
    let a = |rest: &str| d(&format!("/account{rest}"));
    let i = |rest: &str| p(&format!("/integrations{rest}"));
    Router::new()
        .route("/", get(|| async { Redirect::to("/dashboard") }))
        .route("/dashboard", get(projects))
        .route("/dashboard/", get(|| async { Redirect::to("/dashboard") }))
        // Signing in and out.
        .route(&d("/login"), get(login_page).post(login_send))
        .route(&d("/login/verify"), get(code_page).post(login_verify))
        .route(&d("/auth/magic"), get(magic_page).post(magic_verify))
        .route(&d("/login/passkey/options"), action(pk::sign_in_options))
        .route(&d("/login/passkey"), action(pk::sign_in))
        .route(&d("/logout"), action(logout))
        // A project's pages.
        .route(&d("/projects"), action(create_project))
        .route(&p(""), get(overview))
        .route(&p("/keys"), get(shown_key).post(create_key))
        .route(&p("/keys/rotate"), action(rotate_key))
        .route(&p("/keys/revoke"), action(revoke_key))
        .route(&p("/deliveries"), get(deliveries))
        .route(&p("/deliveries/{msg}"), get(delivery))
        .route(&p("/settings"), get(settings).post(save_settings))
        .route(&p("/delete"), action(delete_project))
        .route(&p("/messages"), get(messages).post(save_messages))
        .route(&p("/members"), get(members).post(invite))
        .route(&p("/members/remove"), action(remove_member))
        .route(&p("/audit"), get(audit))
        .route(&i(""), get(hooks::page))
        .route(&i("/webhook"), action(hooks::save_webhook))
        .route(&i("/webhook/rotate"), action(hooks::rotate_webhook))
        .route(&i("/webhook/remove"), action(hooks::remove_webhook))
        .route(&i("/test-mode"), action(hooks::save_test_mode))
        .route(&i("/test-mode/off"), action(hooks::test_mode_off))
        // The operator's own account.
        .route(&a(""), get(account))
        .route(&a("/passkeys"), get(pk::page).post(pk::register))
        .route(&a("/passkeys/options"), action(pk::register_options))
        .route(&a("/passkeys/rename"), action(pk::rename))
        .route(&a("/passkeys/delete"), action(pk::delete))
        .route(&a("/tokens"), action(create_token))
        .route(&a("/tokens/revoke"), action(revoke_token))
        .route("/static/console/console.css", get(static_css))
        .route("/static/console/console.js", get(static_js))
        .route(&d("/{*rest}"), get(not_found).post(not_found))
        .layer(middleware::from_fn_with_state(console.clone(), guard))
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::unread_body::MAX_BODY_BYTES,
        ))
        .with_state(console)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(public: Option<&str>, listen: &str) -> Result<ConsoleSettings, ConfigError> {
        let config = Config {
            public_url: public.map(str::to_owned),
            ..Config::default()
        };
        ConsoleSettings::new(&config, listen.parse().unwrap())
    }

    #[test]
    fn the_cookie_is_secure_except_on_plain_http_loopback() {
        let s = settings(None, "127.0.0.1:8080").unwrap();
        assert!(!s.cookie_secure);
        assert_eq!(
            s.origins,
            ["http://127.0.0.1:8080", "http://localhost:8080"]
        );
        assert!(settings(None, "0.0.0.0:8080").unwrap().cookie_secure);
        let s = settings(Some("https://auth.example.com"), "0.0.0.0:8080").unwrap();
        assert!(s.cookie_secure);
        assert_eq!(s.origins, ["https://auth.example.com"]);
        assert!(
            settings(Some("http://auth.example.com"), "0.0.0.0:8080")
                .unwrap()
                .cookie_secure
        );
        assert!(
            !settings(Some("http://localhost:9000"), "127.0.0.1:8080")
                .unwrap()
                .cookie_secure
        );
    }

    #[test]
    fn passkeys_are_offered_on_a_domain_only() {
        // Loopback: the relying party is `localhost`, reached only as localhost.
        let s = settings(None, "127.0.0.1:8080").unwrap();
        assert_eq!(s.passkey_rp_id.as_deref(), Some("localhost"));
        assert_eq!(s.passkey_origins(), ["http://localhost:8080"]);
        assert_eq!(s.passkey_cookie, "futureauth_console_passkey");
        let s = settings(Some("https://Auth.Example.com"), "0.0.0.0:8080").unwrap();
        assert_eq!(s.passkey_rp_id.as_deref(), Some("auth.example.com"));
        assert_eq!(s.passkey_origins(), ["https://auth.example.com"]);
        assert_eq!(s.passkey_cookie, "__Host-futureauth_console_passkey");
        // Only IP addresses: browsers refuse them as a relying party, so no passkeys.
        for s in [
            settings(Some("https://192.0.2.7"), "0.0.0.0:8080").unwrap(),
            settings(None, "0.0.0.0:8080").unwrap(),
        ] {
            assert_eq!(s.passkey_rp_id, None);
            assert!(s.passkey_origins().is_empty());
        }
    }

    #[test]
    fn an_outage_answer_says_when_to_come_back() {
        let mut resp = axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
        harden(&mut resp);
        assert_eq!(
            resp.headers()[header::RETRY_AFTER],
            futureauth_proto::RETRY_UNAVAILABLE_SECS.to_string()
        );
        // Other answers carry none; a handler's own value is kept.
        let mut ok = axum::http::StatusCode::OK.into_response();
        harden(&mut ok);
        assert!(!ok.headers().contains_key(header::RETRY_AFTER));
        let mut own = (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "9")],
        )
            .into_response();
        harden(&mut own);
        assert_eq!(own.headers()[header::RETRY_AFTER], "9");
    }

    #[test]
    fn a_bad_public_url_fails_at_start() {
        for bad in [
            "auth.example.com",
            "ftp://x.com",
            "https://x.com/console",
            "https://u:p@x.com",
        ] {
            let err = settings(Some(bad), "127.0.0.1:8080")
                .unwrap_err()
                .to_string();
            assert!(err.contains("FUTUREAUTH_PUBLIC_URL"), "{bad}: {err}");
        }
    }
}
