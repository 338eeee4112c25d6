//! Configuration: [`FutureAuthConfig`] and its rate limits.

use std::time::Duration;

use ipnet::IpNet;

use crate::error::{FutureAuthError, Result};

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
#[derive(Debug, Clone)]
pub struct FutureAuthConfig {
    /// FutureAuth server URL. Default `https://future-auth.com`.
    pub api_url: String,
    /// Project secret key from the dashboard (`vx_sec_...`). Also keys the hash of stored codes.
    pub secret_key: String,
    /// Shown in emails and SMS (the service shows the project's registered name).
    pub project_name: String,
    /// How long a session lives without use. Default 30 days; used sessions slide forward.
    pub session_ttl: Duration,
    /// How long a one-time code works. Default 10 minutes.
    pub otp_ttl: Duration,
    /// Length of one-time codes, `[a-z0-9]`. Default 6, at least 6.
    pub otp_length: usize,
    /// Name of the session cookie. Default `futureauth_session`.
    pub cookie_name: String,
    /// How long a magic link works. Default 15 minutes.
    pub magic_link_ttl: Duration,
    /// Wrong guesses a code survives before it dies. Default 5.
    pub max_otp_attempts: u32,
    /// Mark the cookie `Secure` (HTTPS only). Default `true`; turn off only for `http://localhost`.
    pub cookie_secure: bool,
    /// Extra origins (`https://app.example.com`) allowed to call the auth routes from a browser
    /// and to receive magic links. The app's own origin is always allowed.
    pub allowed_origins: Vec<String>,
    /// Reverse proxies whose `X-Forwarded-For` is believed. Default none: the client IP is
    /// the socket peer.
    pub trusted_proxies: Vec<IpNet>,
    /// Rate limits on sending and verifying.
    pub rate_limits: RateLimits,
    /// The opt-in in-process session cache. Default `None` (every check asks the database).
    pub session_cache: Option<crate::SessionCacheConfig>,
}

impl Default for FutureAuthConfig {
    fn default() -> Self {
        Self {
            api_url: DEFAULT_API_URL.to_string(),
            secret_key: String::new(),
            project_name: String::new(),
            session_ttl: Duration::from_secs(30 * 24 * 60 * 60),
            otp_ttl: Duration::from_secs(10 * 60),
            otp_length: 6,
            cookie_name: "futureauth_session".to_string(),
            magic_link_ttl: Duration::from_secs(15 * 60),
            max_otp_attempts: 5,
            cookie_secure: true,
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            rate_limits: RateLimits::default(),
            session_cache: None,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Codes and links sent to one email or phone. Default 5 per 15 minutes.
    pub send_per_identifier: RateLimit,
    /// Codes and links requested from one client IP (IPv6 grouped by /64). Default 20 per 15 minutes.
    pub send_per_ip: RateLimit,
    /// Verify attempts from one client IP. Default 60 per 15 minutes.
    pub verify_per_ip: RateLimit,
    /// Failed verifications for one email or phone, across all its codes. Default 10 per hour.
    pub failed_verify_per_identifier: RateLimit,
}

impl Default for RateLimits {
    fn default() -> Self {
        const MIN: u64 = 60;
        Self {
            send_per_identifier: RateLimit::new(5, Duration::from_secs(15 * MIN)),
            send_per_ip: RateLimit::new(20, Duration::from_secs(15 * MIN)),
            verify_per_ip: RateLimit::new(60, Duration::from_secs(15 * MIN)),
            failed_verify_per_identifier: RateLimit::new(10, Duration::from_secs(60 * MIN)),
        }
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
    /// | `FUTUREAUTH_ALLOWED_ORIGINS` (comma-separated) | `allowed_origins` |
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
        if let Some(v) = lookup("FUTUREAUTH_ALLOWED_ORIGINS") {
            config.allowed_origins = split_list(&v).map(str::to_string).collect();
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
        let fail = |msg: String| Err(FutureAuthError::Config(msg));
        if self.otp_length < 6 || self.otp_length > 32 {
            return fail(format!(
                "otp_length is {}; it must be between 6 and 32 so codes cannot be guessed",
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
        if self.session_ttl.as_secs() < 60 {
            return fail("session_ttl must be at least one minute".to_string());
        }
        if self.max_otp_attempts == 0 {
            return fail("max_otp_attempts is 0, so no code could ever be used".to_string());
        }
        let cookie_ok = !self.cookie_name.is_empty()
            && self
                .cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !cookie_ok {
            return fail(format!(
                "cookie_name {:?} must be non-empty ASCII letters, digits, '-', '_' or '.'",
                self.cookie_name
            ));
        }
        match url::Url::parse(&self.api_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => {}
            _ => {
                return fail(format!(
                    "api_url {:?} is not an http(s) URL; set FUTUREAUTH_API_URL, e.g. https://future-auth.com",
                    self.api_url
                ))
            }
        }
        for origin in &self.allowed_origins {
            parse_origin(origin).map_err(|_| {
                FutureAuthError::Config(format!(
                    "allowed origin {origin:?} must look like https://app.example.com"
                ))
            })?;
        }
        for (name, limit) in [
            ("send_per_identifier", self.rate_limits.send_per_identifier),
            ("send_per_ip", self.rate_limits.send_per_ip),
            ("verify_per_ip", self.rate_limits.verify_per_ip),
            (
                "failed_verify_per_identifier",
                self.rate_limits.failed_verify_per_identifier,
            ),
        ] {
            if limit.max == 0 || limit.window.as_secs() == 0 {
                return fail(format!(
                    "rate_limits.{name} allows nothing (max {} per {:?}); use a positive max and a window of at least 1 s",
                    limit.max, limit.window
                ));
            }
        }
        Ok(())
    }
}

/// Parses `scheme://host[:port]` into its canonical origin string.
pub(crate) fn parse_origin(raw: &str) -> Result<String, url::ParseError> {
    let url = url::Url::parse(raw.trim())?;
    match url.origin() {
        origin @ url::Origin::Tuple(..) => Ok(origin.ascii_serialization()),
        url::Origin::Opaque(_) => Err(url::ParseError::EmptyHost),
    }
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

#[cfg(test)]
mod tests {
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
        ]))
        .unwrap();
        assert_eq!(c.api_url, "http://127.0.0.1:8080");
        assert_eq!(c.secret_key, "vx_sec_abc");
        assert_eq!(c.project_name, "Demo");
        assert!(!c.cookie_secure);
        assert_eq!(c.allowed_origins.len(), 2);
        assert_eq!(c.trusted_proxies.len(), 2);
    }

    #[test]
    fn impossible_configs_are_rejected_with_a_fix() {
        let bad = |f: fn(&mut FutureAuthConfig)| {
            let mut c = FutureAuthConfig::default();
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        assert!(bad(|c| c.otp_length = 4).contains("otp_length"));
        assert!(bad(|c| c.otp_ttl = Duration::ZERO).contains("otp_ttl"));
        assert!(bad(|c| c.session_ttl = Duration::ZERO).contains("session_ttl"));
        assert!(bad(|c| c.magic_link_ttl = Duration::ZERO).contains("magic_link_ttl"));
        assert!(bad(|c| c.api_url = "future-auth.com".into()).contains("FUTUREAUTH_API_URL"));
        assert!(bad(|c| c.cookie_name = "a b".into()).contains("cookie_name"));
        assert!(bad(|c| c.allowed_origins = vec!["nope".into()]).contains("allowed origin"));
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

    #[test]
    fn origins_are_canonical() {
        assert_eq!(
            parse_origin("https://App.Example.com/path").unwrap(),
            "https://app.example.com"
        );
        assert_eq!(
            parse_origin("http://localhost:3000").unwrap(),
            "http://localhost:3000"
        );
        assert_eq!(
            parse_origin("https://a.example:443").unwrap(),
            "https://a.example"
        );
    }
}
