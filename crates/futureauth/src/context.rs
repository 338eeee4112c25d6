//! [`RequestContext`]: what the sign-in flows know about the request they serve.

use std::fmt;
use std::net::IpAddr;

use futureauth_proto::{LinkToken, Locale};

use crate::token::{generate_token, hash_token};

/// The facts about one request that the sign-in flows use: the client's address (for the
/// per-network rate limits, and stored on the session it opens), its user agent (stored on
/// the session) and, for one-time codes, the secret binding the code to the client that
/// asked ([`OtpBinding`]).
///
/// Build it once per request and pass it to the `*_with` methods of
/// [`FutureAuth`](crate::FutureAuth). The Axum integration builds it for its routes (the
/// client IP from the socket, or from `X-Forwarded-For` only when the peer is one of
/// `trusted_proxies`).
///
/// ```
/// use futureauth::{Locale, OtpBinding, RequestContext};
/// let ctx = RequestContext {
///     client_ip: Some("203.0.113.7".parse().unwrap()),
///     user_agent: Some("Mozilla/5.0".into()),
///     binding: Some(OtpBinding::generate()),
///     locale: Locale::preferred("de-AT,de;q=0.9"),
///     ..RequestContext::default()
/// };
/// assert_eq!(RequestContext::from_parts(Some("203.0.113.7"), None).client_ip, ctx.client_ip);
/// ```
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    /// The client's IP address, if known.
    pub client_ip: Option<IpAddr>,
    /// The client's `User-Agent`, if any (stored on sessions, printable characters only).
    pub user_agent: Option<String>,
    /// For codes: the secret of the client that asked; `None` for the one unbound code of an
    /// address. For magic links: the secret of the browser that asks for (sending) or opens
    /// (verifying) the link, which binds the link to that browser (see
    /// [`FutureAuthConfig::magic_link_same_browser`](crate::FutureAuthConfig::magic_link_same_browser)).
    pub binding: Option<OtpBinding>,
    /// The language the person reads (the Axum integration takes the first choice of
    /// `Accept-Language`): sent with each code or link so that the FutureAuth service writes
    /// the message in it; `None` for the project's default.
    pub locale: Option<Locale>,
    /// A value the front end sent for the app's
    /// [`AuthHooks::before_send`](crate::hooks::AuthHooks::before_send) check, such as a
    /// CAPTCHA token (the Axum integration takes the `X-FutureAuth-Hook-Token` header).
    pub hook_token: Option<String>,
}

impl RequestContext {
    /// From the strings the 0.4/0.5 API takes (`verify_otp(…, Some("127.0.0.1"),
    /// Some("Mozilla/5.0"))`). Control characters are dropped; an address that is still not
    /// an IP address is left out.
    pub fn from_parts(ip_address: Option<&str>, user_agent: Option<&str>) -> Self {
        let printable = |s: &str| s.chars().filter(|c| !c.is_control()).collect::<String>();
        Self {
            client_ip: ip_address.and_then(|ip| printable(ip).trim().parse().ok()),
            user_agent: user_agent.map(printable),
            binding: None,
            locale: None,
            hook_token: None,
        }
    }
}

/// A secret that binds a one-time code to the client that asked for it.
///
/// Give it to the client when it asks for a code (the HTTP API puts it in an HttpOnly
/// cookie) and take it back with the code: then a code can only be used, and its attempts
/// only spent, by that client, and nobody else's request replaces it. Only its hash is
/// stored.
///
/// ```
/// use futureauth::OtpBinding;
/// let binding = OtpBinding::generate();
/// let back = OtpBinding::parse(binding.as_str()).unwrap();
/// assert_eq!(back.as_str(), binding.as_str());
/// assert!(OtpBinding::parse("too-short").is_none());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct OtpBinding(String);

impl OtpBinding {
    /// A new random binding (256 bits, 43 URL-safe characters).
    pub fn generate() -> Self {
        Self(generate_token())
    }

    /// A binding a client sent back, if it has the shape of one (32 to 64 URL-safe
    /// characters); anything else is no binding at all.
    pub fn parse(raw: &str) -> Option<Self> {
        LinkToken::parse(raw)
            .ok()
            .map(|token| Self(token.as_str().to_string()))
    }

    /// The secret, to hand to the client.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the database keeps.
    pub(crate) fn hash(&self) -> String {
        hash_token(&self.0)
    }
}

impl fmt::Debug for OtpBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpBinding(..)")
    }
}
