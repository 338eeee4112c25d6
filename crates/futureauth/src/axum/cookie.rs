//! The session cookie and bearer token.

use axum::http::{header, HeaderMap, HeaderValue};
use chrono::{DateTime, Utc};

use crate::config::FutureAuthConfig;
use crate::OtpBinding;

/// Where a request's session token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenSource {
    Bearer,
    Cookie,
}

/// The session token: `Authorization: Bearer` first (mobile and CLI clients), else the cookie.
pub(crate) fn session_token<'a>(
    headers: &'a HeaderMap,
    cookie_name: &str,
) -> Option<(&'a str, TokenSource)> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if let Some(token) = bearer {
        return Some((token, TokenSource::Bearer));
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == cookie_name && !value.is_empty())
        .map(|(_, value)| (value.trim_matches('"'), TokenSource::Cookie))
}

/// `Set-Cookie` for a session that ends at `expires_at`: HttpOnly, SameSite=Lax, Path=/,
/// Max-Age, Secure unless turned off for plain-http development.
pub(crate) fn set_session(
    config: &FutureAuthConfig,
    token: &str,
    expires_at: DateTime<Utc>,
) -> Option<HeaderValue> {
    // Rounded up, so that a cookie set now for a full TTL says the full TTL.
    let left_ms = (expires_at - Utc::now()).num_milliseconds().max(0);
    cookie(
        config,
        token,
        u64::try_from(left_ms).unwrap_or(0).div_ceil(1000),
    )
}

/// `Set-Cookie` that deletes the session cookie.
pub(crate) fn clear_session(config: &FutureAuthConfig) -> Option<HeaderValue> {
    cookie(config, "", 0)
}

fn cookie(config: &FutureAuthConfig, value: &str, max_age: u64) -> Option<HeaderValue> {
    named_cookie(config, &config.cookie_name, value, max_age)
}

fn named_cookie(
    config: &FutureAuthConfig,
    name: &str,
    value: &str,
    max_age: u64,
) -> Option<HeaderValue> {
    let secure = if config.cookie_secure { "; Secure" } else { "" };
    let text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&text).ok()
}

/// Name of a binding cookie (`suffix` `otp` for codes, `link` for magic links). Over HTTPS it
/// carries the `__Host-` prefix, so a sibling subdomain cannot plant one.
fn binding_name(config: &FutureAuthConfig, suffix: &str) -> String {
    let prefix = if config.cookie_secure { "__Host-" } else { "" };
    format!("{prefix}{}_{suffix}", config.cookie_name)
}

/// The binding the browser sent back in cookie `name`, if it has the shape of one.
fn read_binding(headers: &HeaderMap, name: &str) -> Option<OtpBinding> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(n, _)| *n == name)
        .find_map(|(_, value)| OtpBinding::parse(value.trim_matches('"')))
}

/// Name of the cookie that binds a one-time code to the browser that asked for it.
pub(crate) fn otp_binding_name(config: &FutureAuthConfig) -> String {
    binding_name(config, "otp")
}

/// The code binding the browser sent back, if it has the shape of one.
pub(crate) fn otp_binding(headers: &HeaderMap, config: &FutureAuthConfig) -> Option<OtpBinding> {
    read_binding(headers, &otp_binding_name(config))
}

/// `Set-Cookie` for a code binding: lives as long as a code, HttpOnly, SameSite=Lax.
pub(crate) fn set_otp_binding(
    config: &FutureAuthConfig,
    binding: &OtpBinding,
) -> Option<HeaderValue> {
    let name = otp_binding_name(config);
    named_cookie(
        config,
        &name,
        binding.as_str(),
        config.otp_ttl.as_secs().max(1),
    )
}

/// Name of the cookie that binds a magic link to the browser that asked for it.
pub(crate) fn link_binding_name(config: &FutureAuthConfig) -> String {
    binding_name(config, "link")
}

/// The link binding the browser sent back, if it has the shape of one.
pub(crate) fn link_binding(headers: &HeaderMap, config: &FutureAuthConfig) -> Option<OtpBinding> {
    read_binding(headers, &link_binding_name(config))
}

/// `Set-Cookie` for a link binding: lives as long as a link, HttpOnly, SameSite=Lax (so the
/// top-level navigation from the email client carries it).
pub(crate) fn set_link_binding(
    config: &FutureAuthConfig,
    binding: &OtpBinding,
) -> Option<HeaderValue> {
    named_cookie(
        config,
        &link_binding_name(config),
        binding.as_str(),
        config.magic_link_ttl.as_secs().max(1),
    )
}

/// `Set-Cookie` that deletes the code binding (its code is used).
pub(crate) fn clear_otp_binding(config: &FutureAuthConfig) -> Option<HeaderValue> {
    named_cookie(config, &otp_binding_name(config), "", 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn reads_the_named_cookie_among_others() {
        let h = headers(&[(header::COOKIE, "a=1; futureauth_session=tok; b=2")]);
        assert_eq!(
            session_token(&h, "futureauth_session"),
            Some(("tok", TokenSource::Cookie))
        );
        let h = headers(&[(header::COOKIE, "xfutureauth_session=no")]);
        assert_eq!(session_token(&h, "futureauth_session"), None);
    }

    #[test]
    fn bearer_wins_over_cookie() {
        let h = headers(&[
            (header::COOKIE, "futureauth_session=c"),
            (header::AUTHORIZATION, "Bearer b"),
        ]);
        assert_eq!(
            session_token(&h, "futureauth_session"),
            Some(("b", TokenSource::Bearer))
        );
    }

    #[test]
    fn otp_binding_cookie_round_trips_and_is_host_only_over_https() {
        let mut c = FutureAuthConfig::default();
        let binding = OtpBinding::generate();
        let set = set_otp_binding(&c, &binding).unwrap();
        let set = set.to_str().unwrap();
        assert!(set.starts_with("__Host-futureauth_session_otp="), "{set}");
        assert!(
            set.contains("HttpOnly; SameSite=Lax; Max-Age=600; Secure"),
            "{set}"
        );
        let pair = set.split(';').next().unwrap();
        let h = headers(&[(header::COOKIE, &format!("a=1; {pair}"))]);
        assert_eq!(otp_binding(&h, &c), Some(binding));
        let h = headers(&[(header::COOKIE, "__Host-futureauth_session_otp=short")]);
        assert_eq!(otp_binding(&h, &c), None, "not the shape of a binding");
        c.cookie_secure = false;
        assert_eq!(otp_binding_name(&c), "futureauth_session_otp");
        assert!(clear_otp_binding(&c)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("Max-Age=0"));
    }

    #[test]
    fn cookie_flags() {
        let mut c = FutureAuthConfig::default();
        let v = set_session(&c, "tok", Utc::now() + c.session_ttl).unwrap();
        assert_eq!(
            v.to_str().unwrap(),
            "futureauth_session=tok; Path=/; HttpOnly; SameSite=Lax; Max-Age=2592000; Secure"
        );
        c.cookie_secure = false;
        assert!(!clear_session(&c)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("Secure"));
        assert!(clear_session(&c)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("Max-Age=0"));
    }
}
