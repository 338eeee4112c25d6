//! The typed states of an outbox row: its [`MessageChannel`] and its [`MessageStatus`]. A
//! leaf module: the store keeps them, the providers and the service read them, and none of
//! those has to reach into another for them.

use futureauth_proto::Channel;
use serde::{Deserialize, Serialize};

/// The text form of a stored enum, from its `ALL` and `as_str`: its `parse`, its `Display`,
/// and the `TryFrom<String>` a column is read with, which refuses with `$unknown` a value no
/// version of this server writes.
macro_rules! stored_text {
    ($enum:ident, $unknown:ident) => {
        impl $enum {
            /// Parses the stored form.
            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.into_iter().find(|v| v.as_str() == s)
            }
        }

        impl TryFrom<String> for $enum {
            type Error = $unknown;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s).ok_or($unknown(s))
            }
        }

        impl std::fmt::Display for $enum {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
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

    /// Whether a provider event may move a message away from this state: only a message the
    /// provider accepted (`sent` and later) has a provider status to move.
    pub fn on_provider_path(self) -> bool {
        self.rank() > 0
    }

    /// Done with the queue: nothing more will be attempted (the retention clean-up may
    /// delete it once old).
    pub fn is_finished(self) -> bool {
        !matches!(self, Self::Queued)
    }
}

/// [`MessageStatus::rank`] of the stored state in `column`, as SQL, for a move that must
/// check and write under one row lock. A state off the provider's path
/// ([`MessageStatus::on_provider_path`]: queued, failed, test) ranks above every event, so
/// no provider event moves it.
pub fn rank_sql(column: &str) -> String {
    let arms: String = MessageStatus::ALL
        .into_iter()
        .filter(|s| s.on_provider_path())
        .map(|s| format!(" WHEN '{}' THEN {}", s.as_str(), s.rank()))
        .collect();
    format!("(CASE {column}{arms} ELSE {OFF_PATH_RANK} END)")
}

/// The rank [`rank_sql`] gives a state off the provider's path: above every real rank.
const OFF_PATH_RANK: i64 = 99;

/// A stored status that no version of this server writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown message status {0:?}")]
pub struct UnknownStatus(pub String);

stored_text!(MessageStatus, UnknownStatus);

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

stored_text!(MessageChannel, UnknownChannel);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sql_rank_is_the_rust_rank() {
        assert_eq!(
            rank_sql("status"),
            "(CASE status WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 \
             WHEN 'undelivered' THEN 3 WHEN 'bounced' THEN 3 WHEN 'complained' THEN 4 \
             ELSE 99 END)"
        );
        assert!(MessageStatus::ALL.iter().all(|s| s.rank() < OFF_PATH_RANK));
    }

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
