//! Who is calling: the [`RequestContext`] of a request, with the client IP (socket peer, or
//! `X-Forwarded-For` from trusted proxies only), user agent and language.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Once};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::{header, request::Parts, HeaderMap};
use ipnet::IpNet;

use crate::{FutureAuth, Locale, RequestContext};

/// Built once per request of the auth routes; the code routes add the binding cookie.
/// The header a front end puts a value for the app's `before_send` hook in.
pub(crate) const HOOK_TOKEN_HEADER: &str = "x-futureauth-hook-token";

impl FromRequestParts<Arc<FutureAuth>> for RequestContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        auth: &Arc<FutureAuth>,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        if peer.is_none() {
            static WARN: Once = Once::new();
            WARN.call_once(|| {
                tracing::warn!(
                    "futureauth: client IP unknown, per-IP rate limits are off; serve with \
                     into_make_service_with_connect_info::<SocketAddr>()"
                )
            });
        }
        let text = |name| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Ok(Self {
            client_ip: peer
                .map(|peer| client_ip(peer, &parts.headers, &auth.config().trusted_proxies)),
            user_agent: text(header::USER_AGENT),
            binding: None,
            locale: text(header::ACCEPT_LANGUAGE).and_then(|v| Locale::preferred(&v)),
            // For the app's before_send hook (e.g. a CAPTCHA token); bounded.
            hook_token: text(header::HeaderName::from_static(HOOK_TOKEN_HEADER))
                .filter(|t| t.len() <= 4096),
        })
    }
}

/// The socket peer, unless it is a trusted proxy: then the right-most `X-Forwarded-For`
/// entry that is not itself a trusted proxy. Entries left of it could be forged.
pub(crate) fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else { break };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn forwarded_for_is_ignored_without_trusted_proxies() {
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(client_ip(peer, &xff("1.2.3.4"), &[]), peer);
    }

    #[test]
    fn trusted_proxy_yields_rightmost_untrusted_hop() {
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        let got = client_ip(proxy, &xff("6.6.6.6, 198.51.100.7, 10.0.0.1"), &trusted);
        assert_eq!(got, "198.51.100.7".parse::<IpAddr>().unwrap());
    }
}
