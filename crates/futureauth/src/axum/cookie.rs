//! The session cookie and bearer token: read with the `cookie` crate's parser and
//! axum-extra's `Authorization<Bearer>`, written with the `cookie` crate's builder.

use std::borrow::Cow;

use axum::http::{header, HeaderMap, HeaderValue};
use axum_extra::headers::authorization::Bearer;
use axum_extra::headers::{Authorization, HeaderMapExt};
use chrono::{DateTime, Utc};
use cookie::{Cookie, SameSite};

use crate::config::FutureAuthConfig;
use crate::OtpBinding;

/// Where a request's session token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenSource {
    Bearer,
    Cookie,
}

/// The values of cookie `name` the request carries, in order, unquoted. Read in place with
/// `str` splits, as the `cookie` crate's `Cookie::split_parse` reads a `Cookie` header (pairs
/// split at `;`, name and value split at the first `=` and trimmed, a pair without `=`
/// skipped; the test `reads_cookies_as_the_cookie_crate_does` holds the two together): this
/// runs on every request that checks a session, and building a `Cookie` per pair cost about
/// 1,600 of a cached check's 19,600 instructions (`scripts/check-cost`).
fn cookie_values<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.split_once('='))
        // `to_str` let only visible ASCII, spaces and tabs through, where `trim` and the
        // cheaper `trim_ascii` agree.
        .filter(move |(n, _)| n.trim_ascii() == name)
        .map(|(_, v)| unquote(v.trim_ascii()))
}

/// `v` without the double quotes around it (all of them, as `trim_matches` takes them),
/// looked at only when it starts or ends with one.
fn unquote(v: &str) -> &str {
    if v.starts_with('"') || v.ends_with('"') {
        v.trim_matches('"')
    } else {
        v
    }
}

/// The session token: `Authorization: Bearer` first (mobile and CLI clients), else the
/// cookie, read in place.
pub(crate) fn session_token<'a>(
    headers: &'a HeaderMap,
    cookie_name: &'a str,
) -> Option<(Cow<'a, str>, TokenSource)> {
    let bearer = headers
        .typed_get::<Authorization<Bearer>>()
        .map(|auth| auth.token().trim().to_string())
        .filter(|t| !t.is_empty());
    if let Some(token) = bearer {
        return Some((Cow::Owned(token), TokenSource::Bearer));
    }
    cookie_value(headers, cookie_name).map(|v| (Cow::Borrowed(v), TokenSource::Cookie))
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
    set_cookie(name, value, max_age, config.cookie_secure)
}

/// `Set-Cookie` for cookie `name` as the SDK sets its own: HttpOnly, SameSite=Lax, `Path=/`
/// and no `Domain` (what a `__Host-` name requires), `Max-Age` of `max_age` seconds (0
/// deletes it), `Secure` when `secure`. `None` if `value` cannot be a header (it is not a
/// token of visible ASCII).
///
/// For apps that keep cookies of their own beside the session's (a server-rendered sign-in
/// page, a flash message): read them back with [`cookie_value`].
pub fn set_cookie(name: &str, value: &str, max_age: u64, secure: bool) -> Option<HeaderValue> {
    let max_age = i64::try_from(max_age).unwrap_or(i64::MAX);
    let cookie = Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(cookie::time::Duration::seconds(max_age))
        .secure(secure)
        .build();
    HeaderValue::from_str(&cookie.to_string()).ok()
}

/// The first non-empty value of cookie `name` in a request's `Cookie` headers, unquoted, read
/// as the SDK reads its own: only the exact name counts (over https, a planted cookie without
/// a `__Host-` prefix is not read).
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &'a str) -> Option<&'a str> {
    cookie_values(headers, name).find(|v| !v.is_empty())
}

/// A cookie that binds something to the browser that asked for it, so that only that
/// browser can use it: its value is an [`OtpBinding`], HttpOnly, SameSite=Lax (so the
/// top-level navigation from an email client carries a link's).
#[derive(Debug, Clone, Copy)]
pub(crate) enum BindingCookie {
    /// Binds a one-time code (to live as long as a code).
    Otp,
    /// Binds a magic link (to live as long as a link).
    Link,
    /// Binds passkey challenges (to live as long as a challenge).
    #[cfg(feature = "passkeys")]
    Passkey,
}

impl BindingCookie {
    /// Its name. Over HTTPS it carries the `__Host-` prefix, so a sibling subdomain cannot
    /// plant one.
    pub(crate) fn name(self, config: &FutureAuthConfig) -> String {
        let suffix = match self {
            Self::Otp => "otp",
            Self::Link => "link",
            #[cfg(feature = "passkeys")]
            Self::Passkey => "passkey",
        };
        let prefix = if config.cookie_secure { "__Host-" } else { "" };
        format!("{prefix}{}_{suffix}", config.cookie_name)
    }

    /// The binding the browser sent back in it, if it has the shape of one.
    pub(crate) fn read(self, headers: &HeaderMap, config: &FutureAuthConfig) -> Option<OtpBinding> {
        cookie_values(headers, &self.name(config)).find_map(OtpBinding::parse)
    }

    /// `Set-Cookie` for it, living `ttl` (at least a second: `Max-Age=0` would delete it).
    pub(crate) fn set(
        self,
        config: &FutureAuthConfig,
        binding: &OtpBinding,
        ttl: std::time::Duration,
    ) -> Option<HeaderValue> {
        let max_age = ttl.as_secs().max(1);
        named_cookie(config, &self.name(config), binding.as_str(), max_age)
    }

    /// `Set-Cookie` that deletes it (what it bound is used).
    pub(crate) fn clear(self, config: &FutureAuthConfig) -> Option<HeaderValue> {
        named_cookie(config, &self.name(config), "", 0)
    }
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

    /// A `Set-Cookie` value as the browser reads it.
    fn parsed(v: &HeaderValue) -> Cookie<'static> {
        Cookie::parse(v.to_str().unwrap().to_string()).unwrap()
    }

    #[test]
    fn reads_the_named_cookie_and_bearer_wins_over_it() {
        use header::{AUTHORIZATION, COOKIE};
        use TokenSource::{Bearer, Cookie};
        // The request's headers, and the token read from them and where it came from.
        type Case<'a> = (
            &'a [(header::HeaderName, &'a str)],
            Option<(&'a str, TokenSource)>,
        );
        let cases: &[Case] = &[
            (
                &[(COOKIE, "a=1; futureauth_session=tok; b=2")],
                Some(("tok", Cookie)),
            ),
            (&[(COOKIE, "xfutureauth_session=no")], None),
            // An empty one is skipped for the next; a second Cookie header is read too.
            (
                &[
                    (COOKIE, "futureauth_session=; a=1"),
                    (COOKIE, "futureauth_session=tok2"),
                ],
                Some(("tok2", Cookie)),
            ),
            (&[(COOKIE, "futureauth_session=\"q\"")], Some(("q", Cookie))),
            (
                &[
                    (COOKIE, "futureauth_session=c"),
                    (AUTHORIZATION, "Bearer b"),
                ],
                Some(("b", Bearer)),
            ),
            (&[(AUTHORIZATION, "bearer low")], Some(("low", Bearer))),
            // Another scheme, or none at all, is no session token.
            (&[(AUTHORIZATION, "Basic YTpi")], None),
            (&[(AUTHORIZATION, "Bearer")], None),
            (&[(AUTHORIZATION, "Bearer    ")], None),
        ];
        for (pairs, want) in cases {
            let headers = headers(pairs);
            let read = session_token(&headers, "futureauth_session");
            let read = read
                .as_ref()
                .map(|(token, source)| (token.as_ref(), *source));
            assert_eq!(read, *want, "{pairs:?}");
        }
    }

    /// The reference: what the `cookie` crate's parser reads for cookie `name`.
    fn crate_values<'a>(header: &'a str, name: &'a str) -> Vec<&'a str> {
        Cookie::split_parse(header)
            .filter_map(Result::ok)
            .filter(|c| c.name_raw() == Some(name))
            .filter_map(|c| c.value_raw())
            .map(|v| v.trim_matches('"'))
            .collect()
    }

    #[test]
    fn reads_cookies_as_the_cookie_crate_does() {
        let headers_ = [
            "futureauth_session=tok",
            "a=1; futureauth_session=tok; b=2",
            "a=1;futureauth_session=tok",
            "  futureauth_session  =  tok  ; x=y",
            "\tfuturea_session=x;\tfutureauth_session=\ttok\t",
            "futureauth_session=\"quoted\"",
            "futureauth_session=\"\"",
            "futureauth_session=",
            "futureauth_session",
            "futureauth_session=a=b=c",
            "=tok; futureauth_session=second",
            ";;; ; futureauth_session=tok;;",
            "futureauth_session=one; futureauth_session=two",
            "Futureauth_session=case",
            "futureauth_session_otp=binding; futureauth_session=tok",
            "xfutureauth_session=no; futureauth_sessionx=no",
            "futureauth session=space",
            "",
            ";",
            "=",
        ];
        for h in headers_ {
            let map = headers(&[(header::COOKIE, h)]);
            let ours: Vec<&str> = cookie_values(&map, "futureauth_session").collect();
            assert_eq!(ours, crate_values(h, "futureauth_session"), "{h:?}");
        }
        // Every header of up to five of these pieces (8^5 of them).
        let pieces = [" ", "\t", ";", "=", "\"", "s", "a", "tok"];
        let mut line = String::new();
        for n in 0..8usize.pow(5) {
            line.clear();
            let mut rest = n;
            for _ in 0..5 {
                line.push_str(pieces[rest % 8]);
                rest /= 8;
            }
            let map = headers(&[(header::COOKIE, line.as_str())]);
            let ours: Vec<&str> = cookie_values(&map, "s").collect();
            assert_eq!(ours, crate_values(&line, "s"), "{line:?}");
        }
    }

    #[test]
    fn otp_binding_cookie_round_trips_and_is_host_only_over_https() {
        let mut c = FutureAuthConfig::default();
        let binding = OtpBinding::generate();
        let set = parsed(&BindingCookie::Otp.set(&c, &binding, c.otp_ttl).unwrap());
        assert_eq!(set.name(), "__Host-futureauth_session_otp");
        assert_eq!(set.http_only(), Some(true));
        assert_eq!(set.same_site(), Some(SameSite::Lax));
        assert_eq!(set.secure(), Some(true));
        assert_eq!(set.path(), Some("/"));
        assert_eq!(set.max_age(), Some(cookie::time::Duration::seconds(600)));
        let pair = format!("{}={}", set.name(), set.value());
        let h = headers(&[(header::COOKIE, &format!("a=1; {pair}"))]);
        assert_eq!(BindingCookie::Otp.read(&h, &c), Some(binding));
        let h = headers(&[(header::COOKIE, "__Host-futureauth_session_otp=short")]);
        assert_eq!(
            BindingCookie::Otp.read(&h, &c),
            None,
            "not the shape of a binding"
        );
        c.cookie_secure = false;
        assert_eq!(BindingCookie::Otp.name(&c), "futureauth_session_otp");
        let cleared = parsed(&BindingCookie::Otp.clear(&c).unwrap());
        assert_eq!(cleared.max_age(), Some(cookie::time::Duration::ZERO));
    }

    #[test]
    fn cookie_flags() {
        let mut c = FutureAuthConfig::default();
        let v = parsed(&set_session(&c, "tok", Utc::now() + c.session_ttl).unwrap());
        assert_eq!((v.name(), v.value()), ("futureauth_session", "tok"));
        assert_eq!(v.path(), Some("/"));
        assert_eq!(v.http_only(), Some(true));
        assert_eq!(v.same_site(), Some(SameSite::Lax));
        assert_eq!(v.secure(), Some(true));
        assert_eq!(
            v.max_age(),
            Some(cookie::time::Duration::seconds(2_592_000))
        );
        c.cookie_secure = false;
        let cleared = parsed(&clear_session(&c).unwrap());
        assert_ne!(cleared.secure(), Some(true));
        assert_eq!(cleared.max_age(), Some(cookie::time::Duration::ZERO));
    }
}
