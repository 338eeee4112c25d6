//! Provider status webhooks, parsed into [`ProviderEvent`]s: Resend's JSON events (Svix
//! envelope) and Twilio's status callbacks (form fields). Signatures are checked before
//! these run ([`crate::signature`]); what is parsed here is still bounded,
//! because a provider's text ends up in the message's history.

use serde::Deserialize;

use crate::clock::UnixMillis;
use crate::error::ServiceError;
use crate::ids::MessageId;
use crate::provider::webhook::message_event;
use crate::provider::Outgoing;
use crate::store::{EventRecorded, MessageStatus, ProviderEvent, QueuedProjectEvent, Store};

/// Longest provider reason kept.
const MAX_REASON: usize = 300;

/// Why a verified webhook body is not an event we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadEvent(pub &'static str);

/// What a webhook body holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A status change of one of our messages.
    Event(ProviderEvent),
    /// A kind of event that moves no state (opens, clicks, delays): acknowledged, not kept.
    Ignored,
}

#[derive(Deserialize)]
struct ResendEnvelope {
    #[serde(rename = "type")]
    kind: String,
    created_at: Option<String>,
    data: ResendData,
}

#[derive(Deserialize)]
struct ResendData {
    email_id: String,
    bounce: Option<ResendBounce>,
    failed: Option<ResendFailed>,
}

#[derive(Deserialize)]
struct ResendBounce {
    message: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(rename = "subType")]
    sub_type: Option<String>,
}

#[derive(Deserialize)]
struct ResendFailed {
    reason: Option<String>,
}

/// A Resend event: `svix_id` is the event's id (the `svix-id` header), `received_at` the
/// fallback time when the event carries none.
pub fn resend(body: &[u8], svix_id: &str, received_at: UnixMillis) -> Result<Parsed, BadEvent> {
    let envelope: ResendEnvelope =
        serde_json::from_slice(body).map_err(|_| BadEvent("not a Resend event"))?;
    let state = match envelope.kind.as_str() {
        "email.sent" => MessageStatus::Sent,
        "email.delivered" => MessageStatus::Delivered,
        "email.bounced" => MessageStatus::Bounced,
        "email.complained" => MessageStatus::Complained,
        "email.failed" => MessageStatus::Undelivered,
        _ => return Ok(Parsed::Ignored),
    };
    let data = envelope.data;
    let reason = match (data.bounce, data.failed) {
        (Some(b), _) => {
            let kinds: Vec<String> = [b.kind, b.sub_type].into_iter().flatten().collect();
            let message = b.message.unwrap_or_default();
            Some(format!("{} {message}", kinds.join("/")).trim().to_string())
        }
        (None, Some(f)) => f.reason,
        (None, None) => None,
    };
    Ok(Parsed::Event(ProviderEvent {
        provider: "resend",
        provider_message_id: id_text(&data.email_id)?,
        event_key: id_text(svix_id)?,
        state,
        reason: reason.map(|r| clean(&r)).filter(|r| !r.is_empty()),
        occurred_at: envelope
            .created_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or(received_at, |t| {
                UnixMillis::from_millis(t.timestamp_millis())
            }),
    }))
}

/// A Twilio status callback (its form fields, signature already checked).
pub fn twilio(fields: &[(String, String)], received_at: UnixMillis) -> Result<Parsed, BadEvent> {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let sid = field("MessageSid")
        .or_else(|| field("SmsSid"))
        .ok_or(BadEvent("no MessageSid"))?;
    let status = field("MessageStatus")
        .or_else(|| field("SmsStatus"))
        .ok_or(BadEvent("no MessageStatus"))?;
    let state = match status {
        "sent" => MessageStatus::Sent,
        "delivered" | "read" => MessageStatus::Delivered,
        "undelivered" | "failed" => MessageStatus::Undelivered,
        // queued, sending, accepted, scheduled: before our `sent`.
        _ => return Ok(Parsed::Ignored),
    };
    let reason = match (field("ErrorCode"), field("ErrorMessage")) {
        (Some(code), Some(message)) => Some(format!("Twilio error {code}: {message}")),
        (Some(code), None) => Some(format!("Twilio error {code}")),
        (None, Some(message)) => Some(message.to_string()),
        (None, None) => None,
    };
    Ok(Parsed::Event(ProviderEvent {
        provider: "twilio",
        provider_message_id: id_text(sid)?,
        // Twilio sends no event id; each status is reported once per message (a
        // redelivery repeats it), so the status is the event's identity.
        event_key: format!("twilio:{}", id_text(status)?),
        state,
        reason: reason.map(|r| clean(&r)),
        occurred_at: received_at,
    }))
}

/// Records a verified provider event received at `now`: appends it to its message's
/// history and moves the message on if the event is further along, queueing the
/// `message.<state>` event the project's webhook (if any) receives for the move. Returns the
/// message's id (`None` for an unknown provider id) with what happened.
pub async fn record(
    store: &Store,
    event: &ProviderEvent,
    now: UnixMillis,
) -> Result<(Option<String>, EventRecorded), ServiceError> {
    let Some(message) = store
        .message_by_provider_id(&event.provider_message_id)
        .await?
    else {
        return Ok((None, EventRecorded::UnknownMessage));
    };
    let hook = message_event(
        &message.id,
        message.channel,
        event.state,
        event.reason.as_deref(),
        event.occurred_at,
    );
    let payload = serde_json::to_string(&Outgoing::Webhook(hook))
        .map_err(|e| ServiceError::Template(format!("cannot encode a webhook event: {e}")))?;
    let project_event = QueuedProjectEvent {
        id: MessageId::generate().as_str().to_owned(),
        payload,
    };
    let recorded = store
        .record_provider_event(&message, event, now, &project_event)
        .await?;
    Ok((Some(message.id), recorded))
}

/// An identifier from the provider: short and printable, or the event is refused.
fn id_text(s: &str) -> Result<String, BadEvent> {
    if s.is_empty() || s.len() > 128 || futureauth_proto::has_control_chars(s) {
        return Err(BadEvent("malformed identifier"));
    }
    Ok(s.to_string())
}

/// Provider text kept in the history: printable, bounded.
fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(MAX_REASON)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t: i64) -> UnixMillis {
        UnixMillis::from_millis(t)
    }

    fn event(p: Parsed) -> ProviderEvent {
        match p {
            Parsed::Event(e) => e,
            Parsed::Ignored => panic!("ignored"),
        }
    }

    #[test]
    fn resend_events() {
        let body = br#"{"type":"email.bounced","created_at":"2026-11-29T01:00:00.000Z",
            "data":{"email_id":"4ef9a417","to":["a@b.co"],
            "bounce":{"message":"Mailbox does not exist","subType":"General","type":"Permanent"}}}"#;
        let e = event(resend(body, "msg_1", ms(5)).unwrap());
        assert_eq!(e.state, MessageStatus::Bounced);
        assert_eq!(e.provider_message_id, "4ef9a417");
        assert_eq!(
            e.reason.as_deref(),
            Some("Permanent/General Mailbox does not exist")
        );
        assert_eq!(e.occurred_at.as_millis(), 1_795_914_000_000);
        let opened = br#"{"type":"email.opened","data":{"email_id":"x"}}"#;
        assert_eq!(resend(opened, "msg_2", ms(5)).unwrap(), Parsed::Ignored);
        assert!(resend(b"[]", "msg_3", ms(5)).is_err());
        let nul = br#"{"type":"email.delivered","data":{"email_id":"a\u0000b"}}"#;
        assert!(resend(nul, "msg_4", ms(5)).is_err());
    }

    #[test]
    fn twilio_callbacks() {
        let f = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let e = event(
            twilio(
                &f(&[
                    ("MessageSid", "SM1"),
                    ("MessageStatus", "undelivered"),
                    ("ErrorCode", "30003"),
                ]),
                ms(7),
            )
            .unwrap(),
        );
        assert_eq!(e.state, MessageStatus::Undelivered);
        assert_eq!(e.reason.as_deref(), Some("Twilio error 30003"));
        assert_eq!(e.event_key, "twilio:undelivered");
        let queued = f(&[("MessageSid", "SM1"), ("MessageStatus", "sending")]);
        assert_eq!(twilio(&queued, ms(7)).unwrap(), Parsed::Ignored);
        assert!(twilio(&f(&[("MessageStatus", "sent")]), ms(7)).is_err());
    }
}
