//! Verifying the events the FutureAuth service posts to a project's webhook URL.
//!
//! Every event is a JSON body sent with three headers (the Svix scheme, so any Svix
//! verifier works too):
//!
//! - `webhook-id`: the event id (`evt_…`); the same on every redelivery, so use it to
//!   process an event once.
//! - `webhook-timestamp`: Unix seconds when this delivery was signed.
//! - `webhook-signature`: space-separated `v1,<base64>` entries, each the HMAC-SHA256 of
//!   `id + "." + timestamp + "." + body`, keyed (as [Standard Webhooks] specifies) with the
//!   bytes that the base64 after the secret's `whsec_` prefix decodes to. During a secret
//!   rotation one entry per valid secret is sent; one match suffices.
//!
//! **Deprecated, accepted for one release:** earlier futureauth-server releases keyed the
//! HMAC with the UTF-8 bytes of the whole secret string (`whsec_…` included), which
//! independent verifiers refuse. [`verify`] still accepts such a signature, so receivers keep
//! working while their server is upgraded; the next release accepts only the standard key.
//!
//! [Standard Webhooks]: https://www.standardwebhooks.com/
//!
//! [`verify`] refuses a wrong signature, a timestamp more than [`TOLERANCE_SECS`] from now
//! (a captured request replayed later), and a body whose `id` differs from the signed
//! `webhook-id`.
//!
//! ```
//! use futureauth::webhook::{self, WebhookHeaders};
//!
//! // In a handler: the raw body bytes and the three headers, exactly as received.
//! fn handle(secret: &str, id: &str, ts: &str, sig: &str, body: &[u8]) {
//!     let headers = WebhookHeaders { id: Some(id), timestamp: Some(ts), signature: Some(sig) };
//!     match webhook::verify(secret, &headers, body) {
//!         Ok(event) if event.kind == "message.delivered" => { /* … */ }
//!         Ok(_) => {}
//!         Err(e) => eprintln!("refused webhook: {e}"), // answer 400
//!     }
//! }
//! # let _ = handle;
//! ```

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use thiserror::Error;

/// Largest accepted difference (seconds) between `webhook-timestamp` and now.
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// The signature headers of one delivery (`None` when the header is absent).
#[derive(Debug, Clone, Copy, Default)]
pub struct WebhookHeaders<'a> {
    /// `webhook-id`.
    pub id: Option<&'a str>,
    /// `webhook-timestamp`.
    pub timestamp: Option<&'a str>,
    /// `webhook-signature`.
    pub signature: Option<&'a str>,
}

impl<'a> WebhookHeaders<'a> {
    /// Reads the three headers through `get` (e.g. from an `http::HeaderMap`:
    /// `|n| map.get(n).and_then(|v| v.to_str().ok())`).
    pub fn from_fn(get: impl Fn(&str) -> Option<&'a str>) -> Self {
        WebhookHeaders {
            id: get("webhook-id"),
            timestamp: get("webhook-timestamp"),
            signature: get("webhook-signature"),
        }
    }
}

/// A verified event.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Event {
    /// Event id (`evt_…`), equal to `webhook-id`; stable across redeliveries.
    pub id: String,
    /// Event type, e.g. `message.delivered`, `message.bounced`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When the event happened, RFC 3339.
    pub created_at: String,
    /// Event details (for message events: `message_id`, `channel`, `status`, `reason`).
    #[serde(default)]
    pub data: serde_json::Value,
}

/// Why a webhook delivery was refused. Answer 400 to every one.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WebhookError {
    /// A signature header is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A header is not in the expected format.
    #[error("malformed header {0}")]
    MalformedHeader(&'static str),
    /// The timestamp is more than [`TOLERANCE_SECS`] from now.
    #[error("timestamp outside the tolerance (replayed or clock skew)")]
    Expired,
    /// No signature matches the secret.
    #[error("signature mismatch")]
    Mismatch,
    /// The signed body is not an event, or its `id` is not the signed `webhook-id`.
    #[error("malformed event body")]
    MalformedBody,
}

/// Verifies a delivery against the project's signing `secret` (`whsec_<base64>`) and the
/// current time, and parses its event.
///
/// A signature keyed with the decoded secret (the standard) is accepted; so, for one release
/// and deprecated, is one keyed with the whole secret string, as earlier futureauth-server
/// releases signed.
pub fn verify(
    secret: &str,
    headers: &WebhookHeaders<'_>,
    body: &[u8],
) -> Result<Event, WebhookError> {
    verify_at(secret, headers, body, chrono::Utc::now().timestamp())
}

/// [`verify`] with an explicit current time (Unix seconds).
pub fn verify_at(
    secret: &str,
    headers: &WebhookHeaders<'_>,
    body: &[u8],
    now_secs: i64,
) -> Result<Event, WebhookError> {
    let id = headers
        .id
        .ok_or(WebhookError::MissingHeader("webhook-id"))?;
    let ts_text = headers
        .timestamp
        .ok_or(WebhookError::MissingHeader("webhook-timestamp"))?;
    let signatures = headers
        .signature
        .ok_or(WebhookError::MissingHeader("webhook-signature"))?;
    let ts: i64 = ts_text
        .parse()
        .map_err(|_| WebhookError::MalformedHeader("webhook-timestamp"))?;
    if now_secs.abs_diff(ts) > TOLERANCE_SECS.unsigned_abs() {
        return Err(WebhookError::Expired);
    }
    let macs = keys(secret)
        .map(|key| mac(&key, id, ts_text, body))
        .collect::<Result<Vec<_>, _>>()?;
    let matched = signatures
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|s| STANDARD.decode(s).ok())
        .any(|sig| macs.iter().any(|m| m.clone().verify_slice(&sig).is_ok()));
    if !matched {
        return Err(WebhookError::Mismatch);
    }
    let event: Event = serde_json::from_slice(body).map_err(|_| WebhookError::MalformedBody)?;
    // The id is signed in the header; a body naming another event is not the signed event.
    if event.id != id {
        return Err(WebhookError::MalformedBody);
    }
    Ok(event)
}

/// The `v1,<base64>` signature of a delivery, per Standard Webhooks: HMAC-SHA256 keyed with
/// the bytes the base64 after `whsec_` decodes to. A secret that is not `whsec_<base64>`
/// (or base64 alone) is used as its UTF-8 bytes.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    let key = standard_key(secret).unwrap_or_else(|| secret.as_bytes().to_vec());
    match mac(&key, id, &ts, body) {
        Ok(mac) => format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())),
        // HMAC accepts keys of any length, so this is never reached.
        Err(_) => String::new(),
    }
}

/// The standard key of a secret: the bytes its base64 (after an optional `whsec_`) decodes
/// to, as every Standard Webhooks and Svix library reads it.
fn standard_key(secret: &str) -> Option<Vec<u8>> {
    let b64 = secret.trim();
    let b64 = b64.strip_prefix("whsec_").unwrap_or(b64);
    STANDARD.decode(b64).ok().filter(|key| !key.is_empty())
}

/// The keys a signature may be made with: the standard one, then (deprecated, until the
/// next release) the whole secret string, as earlier futureauth-server releases used it.
fn keys(secret: &str) -> impl Iterator<Item = Vec<u8>> {
    standard_key(secret)
        .into_iter()
        .chain(std::iter::once(secret.as_bytes().to_vec()))
}

fn mac(key: &[u8], id: &str, ts: &str, body: &[u8]) -> Result<Hmac<Sha256>, WebhookError> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| WebhookError::Mismatch)?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `whsec_` + base64 of 24 bytes, as the server issues them.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "evt_3k9x0q2m5n7p1r4t6v8w0y2z";
    const NOW: i64 = 1_800_000_000;
    const BODY: &[u8] = br#"{"id":"evt_3k9x0q2m5n7p1r4t6v8w0y2z","type":"message.delivered","created_at":"2027-01-15T08:00:00.000Z","data":{"message_id":"msg_a"}}"#;

    fn check(sig: &str, body: &[u8], ts: i64, now: i64) -> Result<Event, WebhookError> {
        let ts = ts.to_string();
        let headers = WebhookHeaders {
            id: Some(ID),
            timestamp: Some(&ts),
            signature: Some(sig),
        };
        verify_at(SECRET, &headers, body, now)
    }

    #[test]
    fn a_valid_delivery_is_parsed() {
        let sig = sign(SECRET, ID, NOW, BODY);
        let event = check(&sig, BODY, NOW, NOW + 10).unwrap();
        assert_eq!(event.id, ID);
        assert_eq!(event.kind, "message.delivered");
        assert_eq!(event.data["message_id"], "msg_a");
        // A rotation list with an unknown entry first still verifies.
        assert!(check(&format!("v1,AAAA {sig}"), BODY, NOW, NOW).is_ok());
    }

    /// HMAC-SHA256(key, "id.ts.body") computed without the module's helpers.
    fn independent(key: &[u8], id: &str, ts: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(format!("{id}.{ts}.").as_bytes());
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn the_signature_is_keyed_with_the_decoded_secret() {
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            sign(SECRET, ID, NOW, BODY),
            independent(&key, ID, NOW, BODY)
        );
        assert_ne!(
            sign(SECRET, ID, NOW, BODY),
            independent(SECRET.as_bytes(), ID, NOW, BODY)
        );
    }

    /// The published vectors of independent implementations: the Standard Webhooks
    /// reference library's `test_sign` (standard-webhooks/standard-webhooks,
    /// libraries/rust) and Svix's documented example. Their bodies are not FutureAuth
    /// events, so a match shows as `MalformedBody` (signature accepted, body refused),
    /// never as `Mismatch`.
    #[test]
    fn published_standard_webhooks_vectors_verify() {
        let vectors = [
            (
                "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1_649_367_553,
                &br#"{"email":"test@example.com","username":"test_user"}"#[..],
                "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
            ),
            (
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                &br#"{"test": 2432232314}"#[..],
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            ),
        ];
        for (secret, id, ts, body, expected) in vectors {
            assert_eq!(sign(secret, id, ts, body), expected, "{id}");
            let ts_text = ts.to_string();
            let headers = WebhookHeaders {
                id: Some(id),
                timestamp: Some(&ts_text),
                signature: Some(expected),
            };
            assert_eq!(
                verify_at(secret, &headers, body, ts),
                Err(WebhookError::MalformedBody),
                "{id}"
            );
            let wrong = expected.replace("v1,g", "v1,h").replace("v1,t", "v1,u");
            let headers = WebhookHeaders {
                signature: Some(&wrong),
                ..headers
            };
            assert_eq!(
                verify_at(secret, &headers, body, ts),
                Err(WebhookError::Mismatch)
            );
        }
    }

    #[test]
    fn the_deprecated_whole_string_key_still_verifies() {
        // What earlier futureauth-server releases sent: keyed with the secret's UTF-8 bytes.
        let old = independent(SECRET.as_bytes(), ID, NOW, BODY);
        assert_eq!(check(&old, BODY, NOW, NOW).map(|e| e.id), Ok(ID.to_owned()));
        // ... but only with the right secret.
        let other = independent(b"whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", ID, NOW, BODY);
        assert_eq!(check(&other, BODY, NOW, NOW), Err(WebhookError::Mismatch));
    }

    #[test]
    fn a_wrong_signature_secret_or_body_is_refused() {
        let sig = sign(SECRET, ID, NOW, BODY);
        let other = sign("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", ID, NOW, BODY);
        assert_eq!(check(&other, BODY, NOW, NOW), Err(WebhookError::Mismatch));
        let changed = String::from_utf8(BODY.to_vec())
            .unwrap()
            .replace("delivered", "bounced");
        assert_eq!(
            check(&sig, changed.as_bytes(), NOW, NOW),
            Err(WebhookError::Mismatch)
        );
        assert_eq!(
            check(&sig.replace("v1,", "v2,"), BODY, NOW, NOW),
            Err(WebhookError::Mismatch)
        );
        // Signed for another timestamp.
        assert_eq!(check(&sig, BODY, NOW + 1, NOW), Err(WebhookError::Mismatch));
    }

    #[test]
    fn a_stale_or_future_timestamp_is_refused() {
        let old = NOW - TOLERANCE_SECS - 1;
        let sig = sign(SECRET, ID, old, BODY);
        assert_eq!(check(&sig, BODY, old, NOW), Err(WebhookError::Expired));
        let future = NOW + TOLERANCE_SECS + 1;
        let sig = sign(SECRET, ID, future, BODY);
        assert_eq!(check(&sig, BODY, future, NOW), Err(WebhookError::Expired));
        // At the edge of the tolerance it still verifies.
        let edge = NOW - TOLERANCE_SECS;
        let sig = sign(SECRET, ID, edge, BODY);
        assert!(check(&sig, BODY, edge, NOW).is_ok());
    }

    #[test]
    fn missing_headers_and_a_mismatched_event_id_are_refused() {
        let headers = WebhookHeaders::from_fn(|n| (n == "webhook-id").then_some(ID));
        assert_eq!(
            verify_at(SECRET, &headers, BODY, NOW),
            Err(WebhookError::MissingHeader("webhook-timestamp"))
        );
        let sig = sign(SECRET, ID, NOW, BODY);
        let ts = NOW.to_string();
        let swapped = WebhookHeaders {
            id: Some("evt_other"),
            timestamp: Some(&ts),
            signature: Some(&sign(SECRET, "evt_other", NOW, BODY)),
        };
        assert_eq!(
            verify_at(SECRET, &swapped, BODY, NOW),
            Err(WebhookError::MalformedBody)
        );
        assert_eq!(check(&sig, BODY, NOW, NOW).map(|e| e.id), Ok(ID.to_owned()));
        let soon = WebhookHeaders {
            id: Some(ID),
            timestamp: Some("soon"),
            signature: Some(&sig),
        };
        assert_eq!(
            verify_at(SECRET, &soon, BODY, NOW),
            Err(WebhookError::MalformedHeader("webhook-timestamp"))
        );
    }
}
