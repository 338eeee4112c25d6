//! Project webhooks: signed events POSTed to the URL a project registered, through the same
//! outbox as its messages (so retried with backoff, fenced, and never lost on a restart).
//!
//! The signature follows Standard Webhooks (the Svix scheme), which
//! `futureauth::webhook::verify` and independent libraries check: `webhook-id`,
//! `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256 of
//! id.timestamp.body>`, keyed with the decoded bytes of the project's current secret
//! (`whsec_<base64>`), computed at send time so that a rotated secret applies to events
//! still queued.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{classify_status, Provider, ProviderError};
use crate::clock::UnixMillis;
use crate::message::{MessageChannel, MessageStatus};

/// An event for a project's webhook, as queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookMessage {
    /// `evt_…`, also the `id` in the body: the same on every redelivery.
    pub event_id: String,
    /// The JSON body.
    pub body: String,
    /// Where and with what to sign, filled in by the worker from the project's current
    /// settings; never stored.
    #[serde(skip)]
    pub target: Option<WebhookTarget>,
}

/// A project's webhook URL and signing secret.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    /// `https://…` (plain http only to loopback, in development).
    pub url: String,
    /// The signing secret (`whsec_…`).
    pub secret: SecretString,
}

impl PartialEq for WebhookTarget {
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url
    }
}

impl Eq for WebhookTarget {}

/// The event a project's webhook receives when one of its messages reaches `state`:
/// `{"id": "evt_…", "type": "message.<state>", "created_at", "data": {"message_id",
/// "channel", "status", "reason"}}`.
pub fn message_event(
    message_id: &str,
    channel: MessageChannel,
    state: MessageStatus,
    reason: Option<&str>,
    occurred_at: UnixMillis,
) -> WebhookMessage {
    let event_id = crate::ids::random_id("evt_", 24);
    let created_at = occurred_at.to_rfc3339();
    let body = serde_json::json!({
        "id": event_id,
        "type": format!("message.{state}"),
        "created_at": created_at,
        "data": {
            "message_id": message_id,
            "channel": channel.as_str(),
            "status": state.as_str(),
            "reason": reason,
        },
    });
    WebhookMessage {
        event_id,
        body: body.to_string(),
        target: None,
    }
}

/// The `webhook-signature` header value for one delivery, per Standard Webhooks: `v1,` and
/// the base64 HMAC-SHA256 of `id.timestamp.body`, keyed with the bytes that the base64
/// after `whsec_` encodes (what every independent verifier, e.g. PyPI `standardwebhooks` or
/// Svix's libraries, uses).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(&signing_key(secret)) {
        Ok(mac) => mac,
        // HMAC takes keys of any length.
        Err(_) => return String::new(),
    };
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The HMAC key of a signing secret: the decoded base64 after `whsec_`. Every secret the
/// server issues has that form; a value without it (none is ever stored) keys with its
/// bytes as they are.
fn signing_key(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix("whsec_")
        .and_then(|b64| STANDARD.decode(b64).ok())
        .filter(|key| !key.is_empty())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

/// Posts project events. Outside development it refuses to reach loopback, private,
/// link-local and other internal addresses (the URL is the tenant's to choose; the server's
/// network is not), checking the address it then connects to, so a DNS answer that changes
/// in between cannot redirect it.
#[derive(Debug, Clone)]
pub struct WebhookSender {
    timeout: Duration,
    allow_internal: bool,
}

impl WebhookSender {
    /// A sender with this request timeout; `allow_internal` in development only.
    pub fn new(timeout: Duration, allow_internal: bool) -> WebhookSender {
        WebhookSender {
            timeout,
            allow_internal,
        }
    }

    async fn address(&self, url: &url::Url) -> Result<(String, SocketAddr), ProviderError> {
        let host = url
            .host_str()
            .ok_or_else(|| ProviderError::Permanent("webhook URL without a host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| ProviderError::Retryable(format!("webhook host does not resolve: {e}")))?;
        let mut first = None;
        for addr in addrs {
            if !self.allow_internal && is_internal(addr.ip()) {
                return Err(ProviderError::Permanent(format!(
                    "webhook host {host} resolves to an internal address; refused"
                )));
            }
            first.get_or_insert(addr);
        }
        let addr = first.ok_or_else(|| {
            ProviderError::Retryable(format!("webhook host {host} has no address"))
        })?;
        Ok((host, addr))
    }
}

/// Loopback, private, link-local, CGNAT, unspecified, multicast, documentation ranges, and
/// every IPv6 form that reaches an IPv4 address or a local network: IPv4-mapped
/// (`::ffff:0:0/96`), IPv4-compatible (`::/96`), NAT64 (`64:ff9b::/96`, `64:ff9b:1::/48`) and
/// 6to4 (`2002::/16`) are judged by the IPv4 address they embed; Teredo (`2001::/32`, a
/// tunnel whose far end is not what the address says) and site-local (`fec0::/10`) are
/// always internal.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

fn is_internal_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_multicast()
        || v4.is_broadcast()
        || v4.is_documentation()
        || (a == 100 && (64..128).contains(&b))
        || a == 0
}

fn is_internal_v6(v6: Ipv6Addr) -> bool {
    if v6.is_loopback() || v6.is_unspecified() || v6.is_multicast() {
        return true;
    }
    if let Some(v4) = embedded_v4(v6) {
        return is_internal_v4(v4);
    }
    let s = v6.segments();
    (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated, still routed locally)
        || (s[0] == 0x2001 && s[1] == 0) // Teredo 2001::/32
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) // NAT64 local-use 64:ff9b:1::/48
}

/// The IPv4 address an IPv6 address stands for, in the forms a host or a NAT64/6to4 gateway
/// turns into a connection to that IPv4 address.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let low = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4); // ::ffff:a.b.c.d
    }
    if s[..6] == [0, 0, 0, 0, 0, 0] {
        return Some(low(s[6], s[7])); // IPv4-compatible ::a.b.c.d (:: and ::1 handled before)
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(low(s[6], s[7])); // NAT64 well-known prefix 64:ff9b::/96
    }
    if s[0] == 0x2002 {
        return Some(low(s[1], s[2])); // 6to4 2002:a.b.c.d::/48
    }
    None
}

#[async_trait]
impl Provider for WebhookSender {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn send_webhook(
        &self,
        _message_id: &str,
        hook: &WebhookMessage,
    ) -> Result<Option<String>, ProviderError> {
        let target = hook.target.as_ref().ok_or_else(|| {
            ProviderError::Permanent("the project no longer has a webhook".into())
        })?;
        let url = url::Url::parse(&target.url)
            .map_err(|_| ProviderError::Permanent("invalid webhook URL".into()))?;
        let (host, addr) = self.address(&url).await?;
        // No proxy from the environment: a proxy resolves the name itself and would undo
        // the address check and pinning above.
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .resolve(&host, addr)
            .build()
            .map_err(|e| ProviderError::Retryable(format!("webhook client: {e}")))?;
        let timestamp = UnixMillis::now().as_secs();
        let signature = sign(
            target.secret.expose_secret(),
            &hook.event_id,
            timestamp,
            &hook.body,
        );
        let resp = client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &hook.event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(hook.body.clone())
            .send()
            .await
            .map_err(|e| ProviderError::Retryable(format!("webhook: {}", e.without_url())))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(None);
        }
        let body = resp.text().await.unwrap_or_default();
        let reason = classify_status("webhook", status, &body).to_string();
        // The app's endpoint failing is worth retrying whatever it answers (it may be
        // deploying), up to the attempt limit; only `410 Gone` says stop.
        Err(if status == reqwest::StatusCode::GONE {
            ProviderError::Permanent(reason)
        } else {
            ProviderError::Retryable(reason)
        })
    }

    fn refusal(&self) -> &str {
        "the webhook sender only posts events"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks / Svix reference vector: an independent implementation's answer.
    #[test]
    fn signs_like_the_standard_webhooks_reference() {
        assert_eq!(
            sign(
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                r#"{"test": 2432232314}"#,
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn internal_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    /// Each IPv6 form that embeds an IPv4 address is judged by that address: internal when
    /// it embeds the metadata service or a private address, public when it embeds a public one.
    #[test]
    fn ipv6_forms_of_ipv4_addresses_are_judged_by_the_embedded_address() {
        for (form, internal, public) in [
            ("NAT64", "64:ff9b::a9fe:a9fe", "64:ff9b::5db8:d822"),
            ("NAT64", "64:ff9b::10.0.0.1", "64:ff9b::93.184.216.34"),
            ("IPv4-compatible", "::a9fe:a9fe", "::5db8:d822"),
            ("IPv4-compatible", "::10.0.0.1", "::93.184.216.34"),
            ("IPv4-compatible", "::127.0.0.1", "::8.8.8.8"),
            ("IPv4-mapped", "::ffff:10.0.0.1", "::ffff:93.184.216.34"),
            ("6to4", "2002:a9fe:a9fe::1", "2002:5db8:d822::1"),
            ("6to4", "2002:0a00:0001::", "2002:0808:0808::"),
        ] {
            assert!(is_internal(internal.parse().unwrap()), "{form} {internal}");
            assert!(!is_internal(public.parse().unwrap()), "{form} {public}");
        }
    }

    #[test]
    fn tunnel_and_local_ipv6_ranges_are_internal() {
        for ip in [
            "64:ff9b:1::a9fe:a9fe", // NAT64 local-use
            "64:ff9b:1:ffff::1",
            "2001::1", // Teredo
            "2001:0:4136:e378::1",
            "fec0::1", // site-local
            "feff::1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        // Neighbours of those ranges stay public.
        for ip in [
            "2001:db9::1",
            "2001:1::1",
            "64:ff9b:2::1",
            "2003::1",
            "2606:4700::1111",
        ] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }
}
