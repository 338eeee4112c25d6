//! The development outbox: nothing is sent, every message is printed and kept in memory.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Delivery, DeliveryError, Message};

const KEEP: usize = 100;

/// A message the [`DevOutbox`] received.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxEntry {
    /// When it was "sent".
    pub sent_at: DateTime<Utc>,
    /// The message itself, code included.
    #[serde(flatten)]
    pub message: Message,
}

/// A [`Delivery`] for development: prints each code or link to the terminal and keeps the
/// last 100 in memory for a `/dev/outbox` page or a test. Never use it in production: it
/// sends nothing.
///
/// ```
/// # async fn run(pool: sqlx::PgPool) {
/// use futureauth::{delivery::DevOutbox, FutureAuth, FutureAuthConfig};
///
/// let outbox = DevOutbox::new();
/// let auth = FutureAuth::new(pool, FutureAuthConfig::default()).with_delivery(outbox.clone());
/// // ... later: outbox.latest_for("user@example.com")
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct DevOutbox {
    entries: Arc<Mutex<VecDeque<OutboxEntry>>>,
    quiet: bool,
}

impl DevOutbox {
    /// An empty outbox that prints every message to standard error.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty outbox that does not print (for tests).
    pub fn quiet() -> Self {
        Self {
            quiet: true,
            ..Self::default()
        }
    }

    /// The kept messages, newest first.
    pub fn messages(&self) -> Vec<OutboxEntry> {
        self.lock().iter().rev().cloned().collect()
    }

    /// The newest message sent to `destination` (compared after trimming and lower-casing).
    pub fn latest_for(&self, destination: &str) -> Option<Message> {
        let wanted = destination.trim().to_lowercase();
        self.lock()
            .iter()
            .rev()
            .find(|e| e.message.destination == wanted)
            .map(|e| e.message.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<OutboxEntry>> {
        // A panic while holding this lock cannot leave the queue inconsistent.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait::async_trait]
impl Delivery for DevOutbox {
    async fn deliver(&self, message: &Message) -> Result<(), DeliveryError> {
        if !self.quiet {
            // The same line as the FutureAuth server's dev outbox prints.
            eprintln!("{}", message.dev_outbox_line());
        }
        let mut entries = self.lock();
        if entries.len() == KEEP {
            entries.pop_front();
        }
        entries.push_back(OutboxEntry {
            sent_at: Utc::now(),
            message: message.clone(),
        });
        Ok(())
    }

    fn is_dev_only(&self) -> bool {
        true
    }
}
