//! Records kept by the store.

use futureauth_proto::Region;
use serde::Serialize;

pub use crate::clock::UnixMillis;

pub use crate::message::{MessageChannel, MessageStatus, UnknownChannel, UnknownStatus};
pub use crate::sms::SmsCaps;

/// A registered project: the tenant that owns secret keys and messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Project {
    /// `prj_…` identifier.
    pub id: String,
    /// Registered display name: the only name that appears in messages.
    pub name: String,
    /// Allowed callback origins (`https://app.example.com`), ASCII-serialised.
    pub allowed_origins: Vec<String>,
    /// Default magic-link callback URL, used when a request names none.
    pub callback_url: Option<String>,
    /// Sender address of this project's emails (falls back to the server's `EMAIL_FROM`).
    pub email_from: Option<String>,
    /// Countries this project may send SMS to.
    pub sms_countries: Vec<Region>,
    /// The project's own SMS caps.
    pub sms_caps: SmsCaps,
    /// Creation time, Unix epoch milliseconds.
    pub created_at: UnixMillis,
}

/// One provider status event of a message.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MessageEvent {
    /// `resend` or `twilio`.
    pub provider: String,
    /// The state the event reports (stored form of [`MessageStatus`]).
    pub state: String,
    /// The provider's reason (bounce type, carrier error), if any.
    pub reason: Option<String>,
    /// When it happened, by the provider's clock.
    pub occurred_at: UnixMillis,
    /// When we received it.
    pub received_at: UnixMillis,
}

/// One row of the outbox.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Message {
    /// `msg_…` identifier; also the provider idempotency key.
    pub id: String,
    /// Owning project.
    pub project_id: String,
    /// What it carries (stored as text; an unknown stored value fails to load).
    #[sqlx(try_from = "String")]
    pub channel: MessageChannel,
    /// Recipient (masked once the message is finished).
    pub destination: String,
    /// Rendered message as JSON (contains the code); `NULL` once sent or failed.
    pub payload: Option<String>,
    /// Where it got to (stored as text; an unknown stored value fails to load).
    #[sqlx(try_from = "String")]
    pub status: MessageStatus,
    /// Delivery attempts started so far.
    pub attempts: i64,
    /// Earliest time of the next attempt.
    pub next_attempt_at: UnixMillis,
    /// Lease end while a worker owns the row.
    pub locked_until: Option<UnixMillis>,
    /// Last provider error.
    pub last_error: Option<String>,
    /// Client `Idempotency-Key`, if any.
    pub idempotency_key: Option<String>,
    /// HMAC of the request (only with an idempotency key), to detect a key reused for a
    /// different request.
    pub request_hash: Option<String>,
    /// Creation time.
    pub created_at: UnixMillis,
    /// Time the provider accepted it.
    pub sent_at: Option<UnixMillis>,
    /// The provider's id of the message (Resend email id, Twilio message SID).
    pub provider_message_id: Option<String>,
    /// Why it reached its latest state (from the provider), if known.
    pub status_reason: Option<String>,
    /// When it reached its latest state after `sent`.
    pub status_at: Option<UnixMillis>,
}

/// How a delivery attempt ended, recorded by [`crate::store::Store::complete`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// The provider accepted the message: it is finished.
    Sent {
        /// The provider's id of the message, to match its status webhooks.
        provider_id: Option<&'a str>,
        /// The destination kept after delivery.
        masked_destination: &'a str,
        /// When the provider accepted it.
        at: UnixMillis,
    },
    /// Given up for good: it is finished.
    Failed {
        /// The destination kept after delivery.
        masked_destination: &'a str,
        /// Why.
        error: &'a str,
    },
    /// Try again later.
    Retry {
        /// Earliest time of the next attempt.
        next_attempt_at: UnixMillis,
        /// Why this attempt failed.
        error: &'a str,
    },
}

impl Outcome<'_> {
    /// `sent`, `failed` or `retry`: the outcome's name in the attempt log and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Sent { .. } => "sent",
            Outcome::Failed { .. } => "failed",
            Outcome::Retry { .. } => "retry",
        }
    }

    /// The error recorded with the outcome, if any.
    pub fn error(&self) -> Option<&str> {
        match self {
            Outcome::Sent { .. } => None,
            Outcome::Failed { error, .. } | Outcome::Retry { error, .. } => Some(error),
        }
    }
}

/// Input to enqueue a message.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// `msg_…` identifier.
    pub id: String,
    /// Owning project.
    pub project_id: String,
    /// Channel.
    pub channel: MessageChannel,
    /// Recipient.
    pub destination: String,
    /// Rendered message (JSON).
    pub payload: String,
    /// Client idempotency key.
    pub idempotency_key: Option<String>,
    /// Request fingerprint (HMAC), stored only with an idempotency key.
    pub request_hash: Option<String>,
    /// Keyed hash of the destination, for the delivery log's search.
    pub destination_hash: Option<String>,
    /// To a test destination: stored as `test`, never sent.
    pub test: bool,
}

impl NewMessage {
    /// The status it is written with: `queued`, or `test` (never sent).
    pub fn status(&self) -> MessageStatus {
        if self.test {
            MessageStatus::Test
        } else {
            MessageStatus::Queued
        }
    }
}

/// One rate-limit counter to increment atomically with the insert.
#[derive(Debug, Clone)]
pub struct RateBucket {
    /// Counter key, e.g. `dest:prj_x:+15551234567`.
    pub key: String,
    /// Fixed window length in milliseconds.
    pub window_ms: i64,
    /// Maximum count within one window.
    pub limit: u32,
    /// Name reported when the limit is hit.
    pub scope: &'static str,
    /// Counted by every send of a project: spread over [`crate::store::COUNTER_SHARDS`] rows
    /// on Postgres, so concurrent sends don't queue on one row lock until they commit.
    pub sharded: bool,
}

impl RateBucket {
    /// The start of the fixed window that contains `now`, and the milliseconds left until
    /// it ends.
    pub fn window(&self, now: UnixMillis) -> (UnixMillis, i64) {
        let window_ms = self.window_ms.max(1);
        let now = now.as_millis();
        let start = now - now.rem_euclid(window_ms);
        (UnixMillis::from_millis(start), start + window_ms - now)
    }
}

/// A rate-limit counter that went over its limit in [`crate::store::Store::enqueue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitHit {
    /// The limit's scope ([`RateBucket::scope`]).
    pub scope: &'static str,
    /// Milliseconds until its window resets.
    pub retry_after_ms: i64,
}

/// Result of [`crate::store::Store::enqueue`]. Which hit binds and what an idempotency key
/// means are the send service's decisions; the store only reports.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // Returned once per send and matched at once; no box needed.
pub enum EnqueueOutcome {
    /// A new message was written.
    Created(Message),
    /// One or more counters went over their limit; nothing was written.
    OverLimit(Vec<LimitHit>),
    /// The project already has a message with this idempotency key (a concurrent request
    /// won the race); nothing was written.
    DuplicateKey,
}

/// A project's own wording of its sign-in code messages (see `service::templates`, which
/// checks and fills them); `None` keeps the built-in text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct CustomTemplates {
    /// Subject of the sign-in code email (one line).
    pub email_subject: Option<String>,
    /// Plain text of the sign-in code email (the HTML part is derived from it).
    pub email_text: Option<String>,
    /// Text of the sign-in code SMS.
    pub sms_text: Option<String>,
}
