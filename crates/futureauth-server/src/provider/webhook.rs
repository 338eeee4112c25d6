//! Project webhooks: signed events POSTed to the URL a project registered, through the same
//! outbox as its messages (so retried with backoff, fenced, and never lost on a restart).
//!
//! The signature is what `futureauth::webhook::verify` checks (the Svix scheme):
//! `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256 of
//! id.timestamp.body>`, keyed with the project's current secret, computed at send time so
//! that a rotated secret applies to events still queued.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{classify_status, Outgoing, Provider, ProviderError};
use crate::store::{MessageChannel, MessageStatus};

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
    occurred_at: i64,
) -> WebhookMessage {
    let event_id = crate::service::random_id("evt_", 24);
    let created_at = chrono::DateTime::from_timestamp_millis(occurred_at)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default();
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

/// The `webhook-signature` header value for one delivery.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes keys of any length.
        Err(_) => return String::new(),
    };
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
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

/// Loopback, private, link-local, CGNAT, unspecified, multicast, documentation ranges.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
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
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_internal(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80
            }
        },
    }
}

#[async_trait]
impl Provider for WebhookSender {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn send(
        &self,
        _message_id: &str,
        message: &Outgoing,
    ) -> Result<Option<String>, ProviderError> {
        let Outgoing::Webhook(hook) = message else {
            return Err(ProviderError::Permanent(
                "the webhook sender only posts events".into(),
            ));
        };
        let target = hook.target.as_ref().ok_or_else(|| {
            ProviderError::Permanent("the project no longer has a webhook".into())
        })?;
        let url = url::Url::parse(&target.url)
            .map_err(|_| ProviderError::Permanent("invalid webhook URL".into()))?;
        let (host, addr) = self.address(&url).await?;
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .resolve(&host, addr)
            .build()
            .map_err(|e| ProviderError::Retryable(format!("webhook client: {e}")))?;
        let timestamp = crate::service::now_ms() / 1000;
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }
}
