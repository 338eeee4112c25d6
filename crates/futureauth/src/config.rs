//! Configuration: [`FutureAuthConfig`] and its rate limits.

use std::time::Duration;

use ipnet::IpNet;

use crate::error::{FutureAuthError, Result};
use crate::origins::TrustedOrigins;

/// The fixed routes of `auth_router`; `magic_link_path` may not take one of them.
pub(crate) const AUTH_ROUTES: &[&str] = &[
    "/api/auth/send-otp",
    "/api/auth/verify-otp",
    "/api/auth/send-magic-link",
    "/api/auth/verify-magic-link",
    "/api/auth/magic-link-status",
    "/api/auth/session",
    "/api/auth/get-session",
    "/api/auth/sign-out",
    "/api/auth/sessions",
    "/api/auth/revoke-session",
    "/api/auth/sign-out-all",
    "/api/auth/passkey/register/options",
    "/api/auth/passkey/register",
    "/api/auth/passkey/options",
    "/api/auth/passkey/verify",
    "/api/auth/passkey/rename",
    "/api/auth/passkey/delete",
    "/api/auth/passkeys",
    "/api/auth/change-identifier",
    "/api/auth/verify-identifier-change",
    "/api/auth/confirm-identifier-change",
    "/api/auth/remove-identifier",
    "/api/auth/delete-account",
];

/// Default FutureAuth delivery service.
pub const DEFAULT_API_URL: &str = "https://future-auth.com";

/// How FutureAuth behaves. Build it with struct-update syntax over [`Default`]:
///
/// ```
/// use futureauth::FutureAuthConfig;
///
/// let config = FutureAuthConfig {
///     secret_key: "vx_sec_...".to_string(),
///     project_name: "My App".to_string(),
///     ..Default::default()
/// };
/// assert_eq!(config.cookie_name, "futureauth_session");
/// ```
///
/// Its `Debug` output never shows `secret_key` or `code_secret`, only whether they are set,
/// so a config can be logged.
#[derive(Clone)]
pub struct FutureAuthConfig {
    /// FutureAuth server URL. Default `https://future-auth.com`.
    pub api_url: String,
    /// Project secret key from the dashboard (`vx_sec_...`). Also keys the hash of stored codes.
    pub secret_key: String,
    /// Shown in emails and SMS (the service shows the project's registered name).
    pub project_name: String,
    /// How long a session lives without use. Default 30 days; used sessions slide forward.
    pub session_ttl: Duration,
    /// How long a session lives at most, used or not, counted from sign-in. Default 90 days;
    /// at least `session_ttl`.
    pub session_max_lifetime: Duration,
    /// How long a one-time code works. Default 10 minutes.
    pub otp_ttl: Duration,
    /// Length of one-time codes, `[a-z0-9]`. Default 6; 6 to 12.
    pub otp_length: usize,
    /// Name of the session cookie. Default `futureauth_session`.
    pub cookie_name: String,
    /// How long a magic link works. Default 15 minutes.
    pub magic_link_ttl: Duration,
    /// Wrong guesses a code survives before it dies. Default 5.
    pub max_otp_attempts: u32,
    /// Mark the cookie `Secure` (HTTPS only). Default `true`; turn off only for `http://localhost`.
    pub cookie_secure: bool,
    /// The app's own URL, e.g. `https://app.example.com` (env `FUTUREAUTH_APP_URL`). Its
    /// origin may call the auth routes from a browser and receive magic links. Default empty
    /// (unset): the CSRF guard then compares a browser's `Origin` with the request's `Host`,
    /// and magic links need `allowed_origins`, `callback_urls` or the service's own list.
    /// Recommended in production.
    pub app_url: String,
    /// Further origins (`https://spa.example.com`) allowed to call the auth routes from a
    /// browser and to receive magic links (env `FUTUREAUTH_ALLOWED_ORIGINS`, comma-separated).
    pub allowed_origins: Vec<String>,
    /// Exact magic-link callback URLs allowed besides the pages of `app_url` and
    /// `allowed_origins` (env `FUTUREAUTH_CALLBACK_URLS`, comma-separated).
    pub callback_urls: Vec<String>,
    /// Reverse proxies whose `X-Forwarded-For` is believed. Default none: the client IP is
    /// the socket peer.
    pub trusted_proxies: Vec<IpNet>,
    /// Rate limits on sending and verifying.
    pub rate_limits: RateLimits,
    /// The secret that keys the hash of stored codes (env `FUTUREAUTH_CODE_SECRET`). Default
    /// empty: `secret_key` keys it. Needed with a custom delivery and no `secret_key`, so that
    /// codes verify on every instance and across restarts.
    pub code_secret: String,
    /// The opt-in in-process session cache. Default `None` (every check asks the database).
    pub session_cache: Option<crate::session_cache::SessionCacheConfig>,
    /// Path of the magic-link landing page `auth_router` serves (`GET`/`HEAD` show a
    /// confirmation page and never use the token; only the `POST` from that page does).
    /// Links sent without a `callback_url` point here. Default `/api/auth/magic-link`.
    pub magic_link_path: String,
    /// Where the landing page sends a person once signed in (a path on the app, `303 See
    /// Other`). Default `/`.
    pub after_sign_in_path: String,
    /// Require a magic link to be opened in the browser that asked for it (the one holding
    /// the link's binding cookie, see `auth_router`). Default `false`: a link opened elsewhere
    /// still signs in there. When `true`, the landing page and `verify-magic-link` refuse it
    /// (`403 magic_link_other_browser`), and so do [`FutureAuth::verify_magic_link`] calls
    /// without the binding in their [`RequestContext`](crate::RequestContext).
    ///
    /// [`FutureAuth::verify_magic_link`]: crate::FutureAuth::verify_magic_link
    pub magic_link_same_browser: bool,
    /// Passkeys (WebAuthn), with the `passkeys` feature. Default `None`: no passkey routes
    /// answer and no passkey tables are made. `Some` needs `app_url`, whose host is the
    /// relying party ID; see [`PasskeyConfig`](crate::PasskeyConfig).
    #[cfg(feature = "passkeys")]
    #[cfg_attr(docsrs, doc(cfg(feature = "passkeys")))]
    pub passkeys: Option<PasskeyConfig>,
    /// How recent a sign-in must be for the user to delete their own account
    /// ([`FutureAuth::delete_account`](crate::FutureAuth::delete_account), `POST
    /// /api/auth/delete-account`): older sessions are refused with `403
    /// reauthentication_required` until the person signs in again. Default 10 minutes.
    pub recent_auth_max_age: Duration,
    /// The longest any one database call may take on our side, the wait for a pool
    /// connection included. Past it the call is abandoned, its connection discarded (not
    /// returned to the pool) and the request answers `503 unavailable` with `Retry-After`.
    /// It bounds what `statement_timeout` cannot: a frozen or partitioned database, where
    /// a sent query never returns. Default 6 s, a little above the README's 5 s
    /// `statement_timeout`, so a slow statement is still cancelled by Postgres first. `None`
    /// waits as long as the database does (not recommended).
    pub db_call_timeout: Option<Duration>,
}

/// Default of [`FutureAuthConfig::db_call_timeout`].
pub(crate) const DEFAULT_DB_CALL_TIMEOUT: Duration = Duration::from_secs(6);

const DAY: u64 = 24 * 60 * 60;

impl Default for FutureAuthConfig {
    fn default() -> Self {
        Self {
            api_url: DEFAULT_API_URL.to_string(),
            secret_key: String::new(),
            project_name: String::new(),
            session_ttl: Duration::from_secs(30 * DAY),
            session_max_lifetime: Duration::from_secs(90 * DAY),
            otp_ttl: Duration::from_secs(10 * 60),
            otp_length: 6,
            cookie_name: "futureauth_session".to_string(),
            magic_link_ttl: Duration::from_secs(15 * 60),
            max_otp_attempts: 5,
            cookie_secure: true,
            app_url: String::new(),
            allowed_origins: Vec::new(),
            callback_urls: Vec::new(),
            trusted_proxies: Vec::new(),
            rate_limits: RateLimits::default(),
            code_secret: String::new(),
            session_cache: None,
            magic_link_path: "/api/auth/magic-link".to_string(),
            after_sign_in_path: "/".to_string(),
            magic_link_same_browser: false,
            #[cfg(feature = "passkeys")]
            passkeys: None,
            recent_auth_max_age: Duration::from_secs(10 * 60),
            db_call_timeout: Some(DEFAULT_DB_CALL_TIMEOUT),
        }
    }
}

/// At most `max` events per `window`, counted in the database so that every instance of
/// the app shares the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Events allowed per window.
    pub max: u32,
    /// Window length.
    pub window: Duration,
}

impl RateLimit {
    /// `max` events per `window`.
    pub const fn new(max: u32, window: Duration) -> Self {
        Self { max, window }
    }
}

/// The rate limits FutureAuth applies.
///
/// They are shaped so that someone who cannot read a person's inbox or phone cannot keep
/// that person from signing in through [`auth_router`](crate::axum::auth_router), while
/// guessing a code stays infeasible (see the README's security section for the numbers):
///
/// - limits on the client's own network are counted first, so a request refused there
///   costs the person it names nothing;
/// - sends to one address are throttled per client network rather than given a small
///   quota that anyone could use up; the per-address ceiling is high enough that reaching
///   it takes many networks;
/// - a code bound to the browser that asked for it is never replaced by anybody else's
///   send, and only guesses made from that browser count against it;
/// - wrong guesses without a binding count per email/phone across codes (a new code does
///   not reset them), up to `failed_verify_per_identifier`.
///
/// A "client network" is an IPv4 address or an IPv6 /48 for per-address limits (so hopping
/// between the 65,536 /64s of a /48 gains nothing); `send_per_ip` counts IPv4 addresses and
/// IPv6 /64s, `send_per_ipv6_48` whole IPv6 /48s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Sends from one client IP (IPv4 address, IPv6 /64), to any address. Default 20 per
    /// 15 minutes.
    pub send_per_ip: RateLimit,
    /// Sends from one IPv6 /48, to any address. Default 200 per 15 minutes.
    pub send_per_ipv6_48: RateLimit,
    /// The shortest gap between two sends to one address from one client network.
    /// Default 1 per 30 seconds.
    pub send_throttle: RateLimit,
    /// Sends to one address from one client network. Default 5 per hour.
    pub send_per_identifier_per_client: RateLimit,
    /// Sends to one address from everyone together (the inbox-flood ceiling). An address is
    /// counted by its mailbox (`ada+1@x` and `ada+2@x` are one) or its E.164 number.
    /// Default 30 per hour.
    pub send_per_identifier: RateLimit,
    /// Verify attempts from one client IP (IPv4 address, IPv6 /64). Default 60 per 15 minutes.
    pub verify_per_ip: RateLimit,
    /// Wrong codes for one email or phone on the *unbound* path
    /// ([`verify_otp`](crate::FutureAuth::verify_otp)), across all its codes: a new code
    /// does not reset the count, a successful sign-in does. Codes bound to a browser
    /// ([`verify_otp_with`](crate::FutureAuth::verify_otp_with) with a binding, the HTTP API) are not
    /// subject to it. Default 100 per day (NIST SP 800-63B's ceiling).
    pub failed_verify_per_identifier: RateLimit,
}

impl Default for RateLimits {
    fn default() -> Self {
        const MIN: u64 = 60;
        Self {
            send_per_ip: RateLimit::new(20, Duration::from_secs(15 * MIN)),
            send_per_ipv6_48: RateLimit::new(200, Duration::from_secs(15 * MIN)),
            send_throttle: RateLimit::new(1, Duration::from_secs(30)),
            send_per_identifier_per_client: RateLimit::new(5, Duration::from_secs(60 * MIN)),
            send_per_identifier: RateLimit::new(30, Duration::from_secs(60 * MIN)),
            verify_per_ip: RateLimit::new(60, Duration::from_secs(15 * MIN)),
            failed_verify_per_identifier: RateLimit::new(100, Duration::from_secs(24 * 60 * MIN)),
        }
    }
}

impl RateLimits {
    /// Every limit with its field name, for validation and documentation.
    fn named(&self) -> [(&'static str, RateLimit); 7] {
        [
            ("send_per_ip", self.send_per_ip),
            ("send_per_ipv6_48", self.send_per_ipv6_48),
            ("send_throttle", self.send_throttle),
            (
                "send_per_identifier_per_client",
                self.send_per_identifier_per_client,
            ),
            ("send_per_identifier", self.send_per_identifier),
            ("verify_per_ip", self.verify_per_ip),
            (
                "failed_verify_per_identifier",
                self.failed_verify_per_identifier,
            ),
        ]
    }
}

impl FutureAuthConfig {
    /// Reads the configuration from the environment:
    ///
    /// | variable | field |
    /// |---|---|
    /// | `FUTUREAUTH_API_URL` | `api_url` |
    /// | `FUTUREAUTH_SECRET_KEY` | `secret_key` |
    /// | `FUTUREAUTH_PROJECT_NAME` | `project_name` |
    /// | `FUTUREAUTH_COOKIE_SECURE` (`true`/`false`) | `cookie_secure` |
    /// | `FUTUREAUTH_APP_URL` | `app_url` |
    /// | `FUTUREAUTH_ALLOWED_ORIGINS` (comma-separated) | `allowed_origins` |
    /// | `FUTUREAUTH_CALLBACK_URLS` (comma-separated) | `callback_urls` |
    /// | `FUTUREAUTH_CODE_SECRET` | `code_secret` |
    /// | `FUTUREAUTH_TRUSTED_PROXIES` (comma-separated IPs or CIDRs) | `trusted_proxies` |
    ///
    /// Unset variables keep their defaults. The result is [validated](Self::validate).
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), reading variables through `lookup`.
    /// Empty variables count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let lookup = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut config = Self::default();
        if let Some(v) = lookup("FUTUREAUTH_API_URL") {
            config.api_url = v;
        }
        if let Some(v) = lookup("FUTUREAUTH_SECRET_KEY") {
            config.secret_key = v;
        }
        if let Some(v) = lookup("FUTUREAUTH_PROJECT_NAME") {
            config.project_name = v;
        }
        if let Some(v) = lookup("FUTUREAUTH_COOKIE_SECURE") {
            config.cookie_secure = match v.trim() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" => false,
                other => {
                    return Err(FutureAuthError::Config(format!(
                        "FUTUREAUTH_COOKIE_SECURE must be true or false, not {other:?}"
                    )))
                }
            };
        }
        if let Some(v) = lookup("FUTUREAUTH_APP_URL") {
            config.app_url = v.trim().to_string();
        }
        if let Some(v) = lookup("FUTUREAUTH_ALLOWED_ORIGINS") {
            config.allowed_origins = split_list(&v).map(str::to_string).collect();
        }
        if let Some(v) = lookup("FUTUREAUTH_CALLBACK_URLS") {
            config.callback_urls = split_list(&v).map(str::to_string).collect();
        }
        if let Some(v) = lookup("FUTUREAUTH_CODE_SECRET") {
            config.code_secret = v;
        }
        if let Some(v) = lookup("FUTUREAUTH_TRUSTED_PROXIES") {
            config.trusted_proxies = split_list(&v).map(parse_net).collect::<Result<_>>()?;
        }
        config.validate()?;
        Ok(config)
    }

    /// Rejects configurations that can never work, with a message that says how to fix them.
    ///
    /// Checks the parts that do not depend on the delivery; an empty `secret_key` is checked
    /// when the HTTP delivery is used (see [`FutureAuth::validate`](crate::FutureAuth::validate)).
    pub fn validate(&self) -> Result<()> {
        self.validate_lifetimes()?;
        self.validate_cookie()?;
        self.validate_urls()?;
        self.validate_rate_limits()
    }

    /// Code length, lifetimes, attempts and the database deadline.
    fn validate_lifetimes(&self) -> Result<()> {
        let fail = |msg: String| Err(FutureAuthError::Config(msg));
        // At least 6 so codes cannot be guessed; at most what the service relays.
        let longest = *futureauth_proto::CODE_LENGTHS.end();
        if self.otp_length < 6 || self.otp_length > longest {
            return fail(format!(
                "otp_length is {}; it must be between 6 and {longest}",
                self.otp_length
            ));
        }
        for (name, ttl) in [
            ("session_ttl", self.session_ttl),
            ("otp_ttl", self.otp_ttl),
            ("magic_link_ttl", self.magic_link_ttl),
        ] {
            if ttl.is_zero() {
                return fail(format!(
                    "{name} is zero; every code and session needs a lifetime"
                ));
            }
        }
        if self.db_call_timeout.is_some_and(|t| t.is_zero()) {
            return fail(
                "db_call_timeout is zero, so every database call would fail; use None for no bound"
                    .to_string(),
            );
        }
        if self.session_ttl.as_secs() < 60 {
            return fail("session_ttl must be at least one minute".to_string());
        }
        if self.session_max_lifetime < self.session_ttl {
            return fail(format!(
                "session_max_lifetime ({:?}) is shorter than session_ttl ({:?}); raise it or lower session_ttl",
                self.session_max_lifetime, self.session_ttl
            ));
        }
        if self.max_otp_attempts == 0 {
            return fail("max_otp_attempts is 0, so no code could ever be used".to_string());
        }
        Ok(())
    }

    /// A cookie name browsers keep as it is.
    fn validate_cookie(&self) -> Result<()> {
        let cookie_ok = !self.cookie_name.is_empty()
            && self
                .cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !cookie_ok {
            return Err(FutureAuthError::Config(format!(
                "cookie_name {:?} must be non-empty ASCII letters, digits, '-', '_' or '.'",
                self.cookie_name
            )));
        }
        Ok(())
    }

    /// The service URL, the paths of the app, its origins and callback URLs.
    fn validate_urls(&self) -> Result<()> {
        let fail = |msg: String| Err(FutureAuthError::Config(msg));
        match url::Url::parse(&self.api_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => {}
            _ => {
                return fail(format!(
                    "api_url {:?} is not an http(s) URL; set FUTUREAUTH_API_URL, e.g. https://future-auth.com",
                    self.api_url
                ))
            }
        }
        for (name, path) in [
            ("magic_link_path", &self.magic_link_path),
            ("after_sign_in_path", &self.after_sign_in_path),
        ] {
            if !is_plain_path(path) {
                return fail(format!(
                    "{name} {path:?} must be a path such as \"/welcome\": it starts with one '/' \
                     and holds only ASCII letters, digits and - _ . ~ /"
                ));
            }
        }
        if !self.magic_link_path.starts_with("/api/auth/")
            || AUTH_ROUTES.contains(&self.magic_link_path.as_str())
        {
            return fail(format!(
                "magic_link_path {:?} must be under /api/auth/ (where the auth cookies live) \
                 and not one of the other auth routes",
                self.magic_link_path
            ));
        }
        TrustedOrigins::from_config(self)?;
        Ok(())
    }

    /// Every rate limit allows something.
    fn validate_rate_limits(&self) -> Result<()> {
        for (name, limit) in self.rate_limits.named() {
            if limit.max == 0 || limit.window.as_secs() == 0 {
                return Err(FutureAuthError::Config(format!(
                    "rate_limits.{name} allows nothing (max {} per {:?}); use a positive max and a window of at least 1 s",
                    limit.max, limit.window
                )));
            }
        }
        Ok(())
    }
}

/// A same-origin path without query, fragment or characters that need escaping.
pub(crate) fn is_plain_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && path.len() <= 200
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~/".contains(&b))
}

fn split_list(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn parse_net(s: &str) -> Result<IpNet> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| {
            FutureAuthError::Config(format!("trusted proxy {s:?} is not an IP address or CIDR"))
        })
}

/// Shows whether a secret is set, never the secret.
fn redacted(secret: &str) -> &'static str {
    if secret.is_empty() {
        "<empty>"
    } else {
        "<redacted>"
    }
}

impl TrustedOrigins {
    /// Parses the configuration's origins and callback URLs, with a message that says how
    /// to fix the first one that is not valid.
    pub fn from_config(config: &FutureAuthConfig) -> Result<Self> {
        Self::parse(
            &config.app_url,
            &config.allowed_origins,
            &config.callback_urls,
        )
    }
}

impl std::fmt::Debug for FutureAuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("FutureAuthConfig");
        d.field("api_url", &self.api_url)
            .field("secret_key", &redacted(&self.secret_key))
            .field("project_name", &self.project_name)
            .field("session_ttl", &self.session_ttl)
            .field("session_max_lifetime", &self.session_max_lifetime)
            .field("otp_ttl", &self.otp_ttl)
            .field("otp_length", &self.otp_length)
            .field("cookie_name", &self.cookie_name)
            .field("magic_link_ttl", &self.magic_link_ttl)
            .field("max_otp_attempts", &self.max_otp_attempts)
            .field("cookie_secure", &self.cookie_secure)
            .field("app_url", &self.app_url)
            .field("allowed_origins", &self.allowed_origins)
            .field("callback_urls", &self.callback_urls)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("rate_limits", &self.rate_limits)
            .field("code_secret", &redacted(&self.code_secret))
            .field("session_cache", &self.session_cache)
            .field("db_call_timeout", &self.db_call_timeout);
        #[cfg(feature = "passkeys")]
        d.field("passkeys", &self.passkeys);
        d.finish()
    }
}

/// Passkeys (WebAuthn): set [`FutureAuthConfig::passkeys`] to `Some` to turn them on.
///
/// The relying party ID and the origins a passkey may be used from come from the
/// configuration only, never from request headers: the RP ID is the host of
/// [`FutureAuthConfig::app_url`] (so `app_url` is required; when its host is an IP address,
/// as for a development server on `127.0.0.1`, the first of
/// [`FutureAuthConfig::allowed_origins`] on a domain name, e.g. `http://localhost:3000`),
/// and the origins are those of `app_url` and `allowed_origins` on that host or its
/// subdomains (other allowed origins keep codes and links, but a browser would refuse them
/// a passkey of this RP ID anyway).
///
/// ```
/// use futureauth::{FutureAuthConfig, PasskeyConfig};
///
/// let config = FutureAuthConfig {
///     app_url: "https://app.example.com".to_string(),
///     project_name: "My App".to_string(),
///     passkeys: Some(PasskeyConfig::default()),
///     ..Default::default()
/// };
/// assert_eq!(config.passkeys.unwrap().challenge_ttl.as_secs(), 300);
/// ```
#[cfg(feature = "passkeys")]
#[cfg_attr(docsrs, doc(cfg(feature = "passkeys")))]
#[derive(Debug, Clone)]
pub struct PasskeyConfig {
    /// The name the browser shows when it creates a passkey. Default empty: the
    /// `project_name`, or else the RP ID.
    pub rp_name: String,
    /// How long a registration or sign-in challenge works. Default 5 minutes.
    pub challenge_ttl: Duration,
    /// Passkey options (registration and sign-in challenges) from one client IP (IPv4
    /// address, IPv6 /64). Default 30 per 5 minutes.
    pub options_per_ip: RateLimit,
    /// Passkey registrations and sign-in answers from one client IP. Default 30 per 15
    /// minutes.
    pub verify_per_ip: RateLimit,
    /// Passkeys one user may hold. Default 20.
    pub max_per_user: u32,
}

#[cfg(feature = "passkeys")]
impl Default for PasskeyConfig {
    fn default() -> Self {
        Self {
            rp_name: String::new(),
            challenge_ttl: Duration::from_secs(5 * 60),
            options_per_ip: RateLimit::new(30, Duration::from_secs(5 * 60)),
            verify_per_ip: RateLimit::new(30, Duration::from_secs(15 * 60)),
            max_per_user: 20,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_output_never_shows_the_secrets() {
        let config = super::FutureAuthConfig {
            secret_key: "vx_sec_do_not_log_me".into(),
            code_secret: "code-secret-do-not-log".into(),
            ..Default::default()
        };
        let shown = format!("{config:?} {config:#?}");
        assert!(!shown.contains("do_not_log_me"), "{shown}");
        assert!(!shown.contains("code-secret-do-not-log"), "{shown}");
        assert!(shown.contains("secret_key: \"<redacted>\""), "{shown}");
        let empty = format!("{:?}", super::FutureAuthConfig::default());
        assert!(empty.contains("code_secret: \"<empty>\""), "{empty}");
    }

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn defaults_match_the_spec() {
        let c = FutureAuthConfig::default();
        assert_eq!(c.api_url, "https://future-auth.com");
        assert_eq!(c.session_ttl, Duration::from_secs(30 * 86400));
        assert_eq!(c.otp_ttl, Duration::from_secs(600));
        assert_eq!(c.otp_length, 6);
        assert_eq!(c.cookie_name, "futureauth_session");
        assert!(c.cookie_secure);
        c.validate().unwrap();
    }

    #[test]
    fn rate_limit_defaults_are_the_readme_numbers() {
        // The README's brute-force and lock-out arithmetic is built on these.
        let r = RateLimits::default();
        let per = |max, secs| RateLimit::new(max, Duration::from_secs(secs));
        assert_eq!(r.send_per_ip, per(20, 900));
        assert_eq!(r.send_per_ipv6_48, per(200, 900));
        assert_eq!(r.send_throttle, per(1, 30));
        assert_eq!(r.send_per_identifier_per_client, per(5, 3600));
        assert_eq!(r.send_per_identifier, per(30, 3600));
        assert_eq!(r.verify_per_ip, per(60, 900));
        assert_eq!(r.failed_verify_per_identifier, per(100, 86400));
        assert_eq!(FutureAuthConfig::default().max_otp_attempts, 5);
    }

    #[test]
    fn from_env_reads_variables() {
        let c = FutureAuthConfig::from_lookup(env(&[
            ("FUTUREAUTH_API_URL", "http://127.0.0.1:8080"),
            ("FUTUREAUTH_SECRET_KEY", "vx_sec_abc"),
            ("FUTUREAUTH_PROJECT_NAME", "Demo"),
            ("FUTUREAUTH_COOKIE_SECURE", "false"),
            (
                "FUTUREAUTH_ALLOWED_ORIGINS",
                "https://a.example, https://b.example:8443",
            ),
            ("FUTUREAUTH_TRUSTED_PROXIES", "10.0.0.0/8, ::1"),
            ("FUTUREAUTH_APP_URL", "https://app.example"),
            (
                "FUTUREAUTH_CALLBACK_URLS",
                "https://app.example/verify, https://m.example/cb",
            ),
            ("FUTUREAUTH_CODE_SECRET", "s3cret"),
        ]))
        .unwrap();
        assert_eq!(c.api_url, "http://127.0.0.1:8080");
        assert_eq!(c.secret_key, "vx_sec_abc");
        assert_eq!(c.project_name, "Demo");
        assert!(!c.cookie_secure);
        assert_eq!(c.allowed_origins.len(), 2);
        assert_eq!(c.trusted_proxies.len(), 2);
        assert_eq!(c.app_url, "https://app.example");
        assert_eq!(c.callback_urls.len(), 2);
        assert_eq!(c.code_secret, "s3cret");
    }

    #[test]
    fn impossible_configs_are_rejected_with_a_fix() {
        let bad = |f: fn(&mut FutureAuthConfig)| {
            let mut c = FutureAuthConfig::default();
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        assert!(bad(|c| c.otp_length = 4).contains("otp_length"));
        assert!(bad(|c| c.otp_length = 13).contains("otp_length"));
        assert!(bad(|c| c.otp_ttl = Duration::ZERO).contains("otp_ttl"));
        assert!(bad(|c| c.session_ttl = Duration::ZERO).contains("session_ttl"));
        assert!(bad(|c| c.magic_link_ttl = Duration::ZERO).contains("magic_link_ttl"));
        assert!(bad(|c| c.api_url = "future-auth.com".into()).contains("FUTUREAUTH_API_URL"));
        assert!(bad(|c| c.cookie_name = "a b".into()).contains("cookie_name"));
        assert!(bad(|c| c.allowed_origins = vec!["nope".into()]).contains("allowed_origins"));
        assert!(bad(|c| c.app_url = "app.example.com".into()).contains("FUTUREAUTH_APP_URL"));
        assert!(bad(|c| c.callback_urls = vec!["/verify".into()]).contains("callback_urls"));
        for path in ["welcome", "//evil.example", "/a?b=1", "/a\"b", "/<x>"] {
            for (name, set) in [
                (
                    "after_sign_in_path",
                    (|c, p| c.after_sign_in_path = p) as fn(&mut FutureAuthConfig, String),
                ),
                ("magic_link_path", |c, p| c.magic_link_path = p),
            ] {
                let mut c = FutureAuthConfig::default();
                set(&mut c, path.to_string());
                assert!(
                    c.validate().unwrap_err().to_string().contains(name),
                    "{path}"
                );
            }
        }
        assert!(bad(|c| c.magic_link_path = "/magic".into()).contains("/api/auth/"));
        assert!(
            bad(|c| c.magic_link_path = "/api/auth/session".into()).contains("other auth routes")
        );
        let ok = FutureAuthConfig {
            magic_link_path: "/api/auth/link".into(),
            after_sign_in_path: "/app/home".into(),
            ..Default::default()
        };
        assert!(ok.validate().is_ok());
        assert!(bad(|c| c.session_max_lifetime = Duration::from_secs(3600))
            .contains("session_max_lifetime"));
        assert!(bad(|c| c.max_otp_attempts = 0).contains("max_otp_attempts"));
        assert!(bad(|c| c.rate_limits.send_per_ip.max = 0).contains("send_per_ip"));
        assert!(
            FutureAuthConfig::from_lookup(env(&[("FUTUREAUTH_COOKIE_SECURE", "maybe")])).is_err()
        );
        assert!(
            FutureAuthConfig::from_lookup(env(&[("FUTUREAUTH_TRUSTED_PROXIES", "proxy")])).is_err()
        );
        let empty = FutureAuthConfig::from_lookup(env(&[
            ("FUTUREAUTH_COOKIE_SECURE", ""),
            ("FUTUREAUTH_API_URL", " "),
        ]));
        assert_eq!(
            empty.unwrap().api_url,
            DEFAULT_API_URL,
            "empty variables count as unset"
        );
    }
}
