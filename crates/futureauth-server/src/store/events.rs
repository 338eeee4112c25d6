//! Provider status events: what happened to a message after the provider accepted it.

use super::{Backend, MessageChannel, MessageEvent, MessageStatus, Store};
use crate::error::StoreError;
use crate::provider::webhook::message_event;
use crate::provider::Outgoing;
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
    /// When it happened, by the provider (epoch ms).
    pub occurred_at: i64,
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
#[derive(sqlx::FromRow)]
struct Found {
    id: String,
    project_id: String,
    #[sqlx(try_from = "String")]
    channel: MessageChannel,
}

impl Store {
    /// Appends `event` to its message's history, once per event key, and moves the message
    /// to the event's state if that is further along ([`MessageStatus::rank`]), queueing a
    /// `message.<state>` event for the project's webhook if it has one; one transaction.
    /// Returns the message id with what happened.
    ///
    /// Over 60 lines on purpose: its four statements are one transaction, and keeping them
    /// in one body keeps the transaction's extent visible.
    pub async fn record_provider_event(
        &self,
        event: &ProviderEvent,
        received_at: i64,
    ) -> Result<(Option<String>, EventRecorded), StoreError> {
        const FIND: &str =
            "SELECT id, project_id, channel FROM outbox WHERE provider_message_id = $1";
        // The project's own webhook hears of the move through the outbox, in the same
        // transaction: an event is queued exactly when the state moved.
        const PROJECT_EVENT: &str = "INSERT INTO outbox (id, project_id, channel, destination,
                 payload, status, attempts, next_attempt_at, created_at)
             SELECT $1, project_id, $5, url, $3, 'queued', 0, $4, $4
             FROM project_webhook WHERE project_id = $2";
        const APPEND: &str = "INSERT INTO message_event
                (message_id, event_key, provider, state, reason, occurred_at, received_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (message_id, event_key) DO NOTHING";
        // The rank of the stored state, in SQL, so that the check and the move are one
        // statement under the row's lock: concurrent events can't both move it.
        const MOVE: &str = "UPDATE outbox SET status = $2, status_reason = $3, status_at = $4
             WHERE id = $1 AND (CASE status WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2
                 WHEN 'undelivered' THEN 3 WHEN 'bounced' THEN 3 WHEN 'complained' THEN 4
                 ELSE 99 END) < $5";
        let result = with_pool!(self, conn => async {
            let mut tx = conn.begin().await?;
            let found: Option<Found> = sqlx::query_as(FIND)
                .bind(&event.provider_message_id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(Found { id, project_id, channel }) = found else {
                return Ok((None, EventRecorded::UnknownMessage));
            };
            let appended = sqlx::query(APPEND)
                .bind(&id)
                .bind(&event.event_key)
                .bind(event.provider)
                .bind(event.state.as_str())
                .bind(&event.reason)
                .bind(event.occurred_at)
                .bind(received_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if appended == 0 {
                return Ok((Some(id), EventRecorded::Duplicate));
            }
            let moved = sqlx::query(MOVE)
                .bind(&id)
                .bind(event.state.as_str())
                .bind(&event.reason)
                .bind(event.occurred_at)
                .bind(event.state.rank())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if moved == 1 {
                let hook = message_event(
                    &id,
                    channel,
                    event.state,
                    event.reason.as_deref(),
                    event.occurred_at,
                );
                let payload = serde_json::to_string(&Outgoing::Webhook(hook))
                    .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
                sqlx::query(PROJECT_EVENT)
                    .bind(crate::service::MessageId::generate().as_str())
                    .bind(&project_id)
                    .bind(payload)
                    .bind(received_at)
                    .bind(MessageChannel::Webhook.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            let what = if moved == 1 { EventRecorded::Moved } else { EventRecorded::Kept };
            Ok::<_, sqlx::Error>((Some(id), what))
        }
        .await);
        result.map_err(StoreError::Database)
    }

    /// The provider events of a message, in the order they happened.
    pub async fn message_events(&self, message_id: &str) -> Result<Vec<MessageEvent>, StoreError> {
        let rows = with_pool!(self, conn => {
            sqlx::query_as(
                "SELECT provider, state, reason, occurred_at, received_at FROM message_event
                 WHERE message_id = $1 ORDER BY occurred_at, received_at",
            )
            .bind(message_id)
            .fetch_all(&mut *conn)
            .await?
        });
        Ok(rows)
    }
}
