//! The dev outbox: when no provider is configured, messages are logged and the last ones kept
//! in memory for `GET /dev/outbox`. Nothing is really sent.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futureauth_proto::{Channel, Message};
use serde::Serialize;

use super::{EmailMessage, Provider, ProviderError, SmsMessage};

/// One message "sent" to the dev outbox.
///
/// Its JSON has the shape of the SDK's dev outbox (`futureauth::delivery::OutboxEntry`), so a
/// person or a script reads both alike: `channel` (`email`, `sms` or `magic_link`),
/// `destination`, `code` (for a magic link: its token; empty for a notice), `link` and
/// `link_code` (magic links), `project_name`, `locale`, `purpose` (`confirm_address` or
/// `address_change_notice`; absent for a sign-in) and `new_address` (a notice's masked new
/// address), `sent_at`; and, as before, the rendered message: `id`, `to`,
/// `subject`, `text` and `at`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The message as the app asked for it (the SDK's shape).
    #[serde(flatten)]
    pub message: Message,
    /// When it was recorded (RFC 3339), under the SDK's name.
    pub sent_at: String,
    /// Message id.
    pub id: String,
    /// Recipient.
    pub to: String,
    /// Email subject.
    pub subject: Option<String>,
    /// Text body.
    pub text: String,
    /// When it was recorded (RFC 3339); the same as `sent_at`.
    pub at: String,
}

/// A wire message with nothing but its channel and destination; for the dev outbox, the
/// message of a payload queued before it carried one.
pub fn bare_message(channel: Channel, to: &str) -> Message {
    Message {
        channel,
        destination: to.to_owned(),
        code: String::new(),
        project_name: String::new(),
        link: None,
        callback_url: None,
        locale: None,
        link_code: None,
        purpose: None,
        new_address: None,
    }
}

/// In-memory ring buffer of the last `capacity` messages.
#[derive(Debug, Clone)]
pub struct DevOutbox {
    entries: Arc<Mutex<VecDeque<OutboxEntry>>>,
    capacity: usize,
}

impl DevOutbox {
    /// An empty outbox keeping `capacity` messages.
    pub fn new(capacity: usize) -> DevOutbox {
        DevOutbox {
            entries: Arc::new(Mutex::new(VecDeque::with_capacity(capacity))),
            capacity,
        }
    }

    /// Newest first.
    pub fn entries(&self) -> Vec<OutboxEntry> {
        match self.entries.lock() {
            Ok(e) => e.iter().rev().cloned().collect(),
            Err(poisoned) => poisoned.into_inner().iter().rev().cloned().collect(),
        }
    }

    fn push(&self, entry: OutboxEntry) {
        let mut guard = match self.entries.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if guard.len() == self.capacity {
            guard.pop_front();
        }
        guard.push_back(entry);
    }

    /// Logs and keeps one message; its fields are those of an email or an SMS.
    fn record(
        &self,
        message_id: &str,
        channel: Channel,
        request: &Option<Message>,
        to: &str,
        subject: Option<&str>,
        text: &str,
    ) -> Option<String> {
        let at = chrono::Utc::now().to_rfc3339();
        let entry = OutboxEntry {
            message: request.clone().unwrap_or_else(|| bare_message(channel, to)),
            sent_at: at.clone(),
            id: message_id.to_owned(),
            to: to.to_owned(),
            subject: subject.map(str::to_owned),
            text: text.to_owned(),
            at,
        };
        // The SDK's dev outbox prints the same line: what to type or open, at a glance.
        tracing::warn!(
            id = %entry.id,
            subject = ?entry.subject,
            "DEV OUTBOX: message NOT sent (no provider configured): {}",
            entry.message.dev_outbox_line()
        );
        self.push(entry);
        // An id of its own, so that status events can be tried against dev messages too.
        Some(format!("dev_{message_id}"))
    }
}

#[async_trait]
impl Provider for DevOutbox {
    fn name(&self) -> &'static str {
        "dev-outbox"
    }

    async fn send_email(
        &self,
        message_id: &str,
        e: &EmailMessage,
    ) -> Result<Option<String>, ProviderError> {
        let subject = Some(e.subject.as_str());
        Ok(self.record(
            message_id,
            Channel::Email,
            &e.request,
            &e.to,
            subject,
            &e.text,
        ))
    }

    async fn send_sms(
        &self,
        message_id: &str,
        s: &SmsMessage,
    ) -> Result<Option<String>, ProviderError> {
        Ok(self.record(message_id, Channel::Sms, &s.request, &s.to, None, &s.body))
    }

    // Project webhooks have their own sender, which the dev outbox never stands in for.
    fn refusal(&self) -> &str {
        "the dev outbox does not post webhooks"
    }
}
