//! Records kept by the store.

use futureauth_proto::{Channel, Region};
use serde::{Deserialize, Serialize};

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
    pub created_at: i64,
}

/// Input to create a project.
#[derive(Debug, Clone)]
pub struct NewProject {
    /// Display name.
    pub name: String,
    /// Allowed callback origins (already normalised).
    pub allowed_origins: Vec<String>,
    /// Default callback URL.
    pub callback_url: Option<String>,
    /// Email sender.
    pub email_from: Option<String>,
    /// Countries it may send SMS to.
    pub sms_countries: Vec<Region>,
    /// Its own SMS caps.
    pub sms_caps: SmsCaps,
}

/// A stored secret key (its hash only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyInfo {
    /// First 12 characters of the key, for display.
    pub key_prefix: String,
    /// Owning project.
    pub project_id: String,
    /// Creation time (epoch ms).
    pub created_at: i64,
    /// Revocation time (epoch ms), if revoked.
    pub revoked_at: Option<i64>,
}

/// Delivery state of a message: `queued` until the provider accepts it (`sent`) or we give
/// up (`failed`); after `sent`, the provider's status webhooks move it on to `delivered`,
/// `undelivered` or `bounced`, and `complained` (marked as spam). It never moves back
/// ([`rank`](Self::rank)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    /// Waiting for (another) delivery attempt.
    Queued,
    /// Accepted by the provider.
    Sent,
    /// Given up: permanent provider error or attempts exhausted.
    Failed,
    /// The provider handed it to the recipient's mail server or phone.
    Delivered,
    /// The provider could not deliver it (a carrier refused the SMS, a mail server timed out).
    Undelivered,
    /// The recipient's mail server refused it for good.
    Bounced,
    /// The recipient marked it as spam.
    Complained,
    /// To a test destination of the project's test mode: logged, never sent.
    Test,
}

impl MessageStatus {
    /// Every state, in order of [`rank`](Self::rank).
    pub const ALL: [MessageStatus; 8] = [
        Self::Test,
        Self::Queued,
        Self::Failed,
        Self::Sent,
        Self::Delivered,
        Self::Undelivered,
        Self::Bounced,
        Self::Complained,
    ];

    /// Stored string form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Delivered => "delivered",
            Self::Undelivered => "undelivered",
            Self::Bounced => "bounced",
            Self::Complained => "complained",
            Self::Test => "test",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// How far along a message is. A provider event moves a message only to a state of
    /// higher rank, so redelivered and out-of-order events never move it back: a late
    /// `delivered` after `bounced` changes nothing. `undelivered` and `bounced` are the
    /// same step (both final for delivery; only a complaint comes after).
    pub fn rank(self) -> i64 {
        match self {
            Self::Queued | Self::Failed | Self::Test => 0,
            Self::Sent => 1,
            Self::Delivered => 2,
            Self::Undelivered | Self::Bounced => 3,
            Self::Complained => 4,
        }
    }

    /// Done with the queue: nothing more will be attempted (the retention clean-up may
    /// delete it once old).
    pub fn is_finished(self) -> bool {
        !matches!(self, Self::Queued)
    }
}

/// A stored status that no version of this server writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown message status {0:?}")]
pub struct UnknownStatus(pub String);

impl TryFrom<String> for MessageStatus {
    type Error = UnknownStatus;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        MessageStatus::parse(&s).ok_or(UnknownStatus(s))
    }
}

impl std::fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an outbox row carries: a sign-in message of one of the protocol's channels, or an
/// event for the project's own webhook (queued in the same table, so it shares the outbox's
/// retries, leases and attempt limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageChannel {
    /// A one-time code by email.
    Email,
    /// A one-time code by SMS.
    Sms,
    /// A magic sign-in link by email.
    MagicLink,
    /// A `message.<state>` event posted to the project's webhook.
    Webhook,
}

impl MessageChannel {
    /// Every channel, the sign-in ones first.
    pub const ALL: [MessageChannel; 4] = [Self::Email, Self::Sms, Self::MagicLink, Self::Webhook];

    /// Stored string form (for the sign-in channels, also the wire name).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
            Self::MagicLink => "magic_link",
            Self::Webhook => "webhook",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl From<Channel> for MessageChannel {
    fn from(c: Channel) -> Self {
        match c {
            Channel::Email => Self::Email,
            Channel::Sms => Self::Sms,
            Channel::MagicLink => Self::MagicLink,
        }
    }
}

/// A stored channel that no version of this server writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown message channel {0:?}")]
pub struct UnknownChannel(pub String);

impl TryFrom<String> for MessageChannel {
    type Error = UnknownChannel;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        MessageChannel::parse(&s).ok_or(UnknownChannel(s))
    }
}

impl std::fmt::Display for MessageChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
    /// When it happened, by the provider's clock (epoch ms).
    pub occurred_at: i64,
    /// When we received it (epoch ms).
    pub received_at: i64,
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
    /// Earliest time of the next attempt (epoch ms).
    pub next_attempt_at: i64,
    /// Lease end while a worker owns the row (epoch ms).
    pub locked_until: Option<i64>,
    /// Last provider error.
    pub last_error: Option<String>,
    /// Client `Idempotency-Key`, if any.
    pub idempotency_key: Option<String>,
    /// HMAC of the request (only with an idempotency key), to detect a key reused for a
    /// different request.
    pub request_hash: Option<String>,
    /// Creation time (epoch ms).
    pub created_at: i64,
    /// Time the provider accepted it (epoch ms).
    pub sent_at: Option<i64>,
    /// The provider's id of the message (Resend email id, Twilio message SID).
    pub provider_message_id: Option<String>,
    /// Why it reached its latest state (from the provider), if known.
    pub status_reason: Option<String>,
    /// When it reached its latest state after `sent` (epoch ms).
    pub status_at: Option<i64>,
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
        /// When the provider accepted it (epoch ms).
        at: i64,
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
        /// Earliest time of the next attempt (epoch ms).
        next_attempt_at: i64,
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
    /// The start of the fixed window that contains `now` (epoch ms), and the milliseconds
    /// left until it ends.
    pub fn window(&self, now: i64) -> (i64, i64) {
        let window_ms = self.window_ms.max(1);
        let start = now - now.rem_euclid(window_ms);
        (start, start + window_ms - now)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_round_trip_and_sign_in_ones_keep_their_wire_names() {
        for c in MessageChannel::ALL {
            assert_eq!(MessageChannel::try_from(c.as_str().to_owned()), Ok(c));
        }
        for c in [Channel::Email, Channel::Sms, Channel::MagicLink] {
            assert_eq!(MessageChannel::from(c).as_str(), c.as_str());
        }
        assert!(MessageChannel::try_from("fax".to_owned()).is_err());
    }
}
