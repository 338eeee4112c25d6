//! The dev outbox: when no provider is configured, messages are logged and the last ones kept
//! in memory for `GET /dev/outbox`. Nothing is really sent.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::Serialize;

use super::{Outgoing, Provider, ProviderError};

/// One message "sent" to the dev outbox.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Message id.
    pub id: String,
    /// `email` or `sms`.
    pub channel: &'static str,
    /// Recipient.
    pub to: String,
    /// Email subject.
    pub subject: Option<String>,
    /// Text body.
    pub text: String,
    /// When it was recorded (RFC 3339).
    pub at: String,
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
}

#[async_trait]
impl Provider for DevOutbox {
    fn name(&self) -> &'static str {
        "dev-outbox"
    }

    async fn send(
        &self,
        message_id: &str,
        message: &Outgoing,
    ) -> Result<Option<String>, ProviderError> {
        let entry = match message {
            Outgoing::Email(e) => OutboxEntry {
                id: message_id.to_owned(),
                channel: "email",
                to: e.to.clone(),
                subject: Some(e.subject.clone()),
                text: e.text.clone(),
                at: chrono::Utc::now().to_rfc3339(),
            },
            Outgoing::Sms(s) => OutboxEntry {
                id: message_id.to_owned(),
                channel: "sms",
                to: s.to.clone(),
                subject: None,
                text: s.body.clone(),
                at: chrono::Utc::now().to_rfc3339(),
            },
            // Project webhooks have their own sender, which the dev outbox never stands in for.
            Outgoing::Webhook(_) => {
                return Err(ProviderError::Permanent(
                    "the dev outbox does not post webhooks".into(),
                ))
            }
        };
        tracing::warn!(
            id = %entry.id,
            channel = entry.channel,
            to = %entry.to,
            subject = ?entry.subject,
            text = %entry.text,
            "DEV OUTBOX: message NOT sent (no provider configured)"
        );
        self.push(entry);
        // An id of its own, so that status events can be tried against dev messages too.
        Ok(Some(format!("dev_{message_id}")))
    }
}
