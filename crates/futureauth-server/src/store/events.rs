//! Provider status events: what happened to a message after the provider accepted it.
//!
//! The store only records: which event moves a message is [`MessageStatus::rank`]'s rule
//! (turned into SQL by [`crate::message::rank_sql`]), and the project's webhook event that a
//! move queues is built by the service (`service::provider_events`).

use std::sync::LazyLock;

use super::sql::BindArgs;
use super::{Backend, MessageChannel, MessageEvent, MessageStatus, Store, UnixMillis};
use crate::error::StoreError;
use sqlx::Connection;

/// A status event reported by a provider, already verified and parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderEvent {
    /// `resend` or `twilio`.
    pub provider: &'static str,
    /// The provider's id of the message.
    pub provider_message_id: String,
    /// The provider's id of this event, so that a redelivered event is recorded once.
    pub event_key: String,
    /// The state it reports.
    pub state: MessageStatus,
    /// The provider's reason, if any.
    pub reason: Option<String>,
    /// When it happened, by the provider.
    pub occurred_at: UnixMillis,
}

/// What recording an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventRecorded {
    /// New event; the message moved to its state.
    Moved,
    /// New event, kept in the history; the message is already at a later state.
    Kept,
    /// This event was recorded before (a redelivery): nothing changed.
    Duplicate,
    /// No message of ours has this provider id (yet: the provider may report before the
    /// worker recorded its acceptance, so it is worth redelivering).
    UnknownMessage,
}

/// The message a provider event is about.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ProviderMessage {
    /// Our id of the message.
    pub id: String,
    /// Its project.
    pub project_id: String,
    /// What it carries.
    #[sqlx(try_from = "String")]
    pub channel: MessageChannel,
}

/// An event for the project's own webhook, queued in the outbox when a provider event
/// moves a message (built by the service).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedProjectEvent {
    /// The outbox id of the event (`msg_…`).
    pub id: String,
    /// The queued payload (JSON).
    pub payload: String,
}

/// Moves a message to the event's state (`$2`, of rank `$5`) when that is further along than
/// its stored state: the check and the move are one statement under the row's lock, so
/// concurrent events cannot both move it. The stored state's rank is
/// [`crate::message::rank_sql`], generated from [`MessageStatus::rank`].
static MOVE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE outbox SET status = $2, status_reason = $3, status_at = $4
         WHERE id = $1 AND {} < $5",
        crate::message::rank_sql("status")
    )
});

/// Appends a provider event to a message's history, once per event key.
const APPEND_EVENT: &str = "INSERT INTO message_event
        (message_id, event_key, provider, state, reason, occurred_at, received_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (message_id, event_key) DO NOTHING";

/// Queues a project event for the project's webhook, if it has one.
const QUEUE_PROJECT_EVENT: &str = "INSERT INTO outbox (id, project_id, channel, destination,
         payload, status, attempts, next_attempt_at, created_at)
     SELECT $1, project_id, $5, url, $3, 'queued', 0, $4, $4
     FROM project_webhook WHERE project_id = $2";

impl Store {
    /// The message the provider knows by `provider_message_id`, if any.
    pub async fn message_by_provider_id(
        &self,
        provider_message_id: &str,
    ) -> Result<Option<ProviderMessage>, StoreError> {
        self.fetch_optional(
            "SELECT id, project_id, channel FROM outbox WHERE provider_message_id = $1",
            &[provider_message_id.into()],
        )
        .await
    }

    /// Appends `event` to the history of `message`, once per event key, and moves the
    /// message to the event's state if that is further along ([`MessageStatus::rank`]),
    /// queueing `project_event` for the project's webhook if it has one; one transaction, so
    /// an event is queued exactly when the state moved. Returns what happened (never
    /// [`EventRecorded::UnknownMessage`]).
    pub async fn record_provider_event(
        &self,
        message: &ProviderMessage,
        event: &ProviderEvent,
        received_at: UnixMillis,
        project_event: &QueuedProjectEvent,
    ) -> Result<EventRecorded, StoreError> {
        let state = event.state.as_str();
        let appended_event = [
            (&message.id).into(),
            (&event.event_key).into(),
            event.provider.into(),
            state.into(),
            (&event.reason).into(),
            event.occurred_at.into(),
            received_at.into(),
        ];
        let moved_to = [
            (&message.id).into(),
            state.into(),
            (&event.reason).into(),
            event.occurred_at.into(),
            event.state.rank().into(),
        ];
        let queued = [
            (&project_event.id).into(),
            (&message.project_id).into(),
            (&project_event.payload).into(),
            received_at.into(),
            MessageChannel::Webhook.as_str().into(),
        ];
        let recorded = with_pool!(self, conn => {
            let mut tx = conn.begin().await?;
            let appended = sqlx::query(APPEND_EVENT)
                .bind_args(&appended_event)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            // A `return` here would leave the bounded block only, so each arm yields a value.
            if appended == 0 {
                EventRecorded::Duplicate
            } else {
                let moved = sqlx::query(&MOVE)
                    .bind_args(&moved_to)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1;
                if moved {
                    sqlx::query(QUEUE_PROJECT_EVENT)
                        .bind_args(&queued)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                if moved { EventRecorded::Moved } else { EventRecorded::Kept }
            }
        });
        Ok(recorded)
    }

    /// The provider events of a message, in the order they happened.
    pub async fn message_events(&self, message_id: &str) -> Result<Vec<MessageEvent>, StoreError> {
        self.fetch_all(
            "SELECT provider, state, reason, occurred_at, received_at FROM message_event
             WHERE message_id = $1 ORDER BY occurred_at, received_at",
            &[message_id.into()],
        )
        .await
    }
}
