//! A project's delivery log as operators read it: one query type for the console's filter
//! form and the management API's query string, and one masked row.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::console::DestinationHasher;
use super::settings::FieldParser;
use super::validate::mask_destination;
use crate::clock::UnixMillis;
use crate::error::{FieldErrors, StoreError};
use crate::ids::MessageId;
use crate::message::{MessageChannel, MessageStatus};
use crate::store::{DailyCount, DeliveryAttempt, DeliveryFilter, Message, MessageEvent, Store};

/// Largest page of the log.
const MAX_LIMIT: i64 = 200;
/// Highest page number (with the page size, how deep the log may be paged).
const MAX_PAGE: i64 = 10_000;
/// Longest destination to search for.
const MAX_DESTINATION: usize = 254;
const DAY_MS: i64 = 86_400_000;

/// The log's filters as both faces receive them (a query string); empty means unset.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct DeliveryParams {
    /// `email`, `sms`, `magic_link` or `webhook`.
    pub channel: String,
    /// A delivery state: `queued`, `sent`, `failed`, `delivered`, …
    pub status: String,
    /// Created at or after: epoch ms, or a day `2026-01-31` (its start, UTC).
    pub from: String,
    /// Created before: epoch ms, or a day `2026-01-31` (the whole day included).
    pub until: String,
    /// The exact address (compared by keyed hash).
    pub destination: String,
    /// Page size (1 to 200).
    pub limit: String,
    /// Items to skip.
    pub offset: String,
    /// Page number (1 to 10,000), instead of `offset`.
    pub page: String,
}

/// Which part of the delivery log to list, parsed.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    /// Channel, state and time; the destination's hash is filled in when listing.
    pub filter: DeliveryFilter,
    /// Only messages to this address.
    pub destination: Option<String>,
    /// Page size.
    pub limit: i64,
    /// Items skipped.
    pub offset: i64,
}

impl DeliveryQuery {
    /// The newest `limit` deliveries, unfiltered.
    pub fn newest(limit: i64) -> DeliveryQuery {
        DeliveryQuery {
            limit,
            ..DeliveryQuery::default()
        }
    }
}

fn parse_channel(raw: &str) -> Result<Option<MessageChannel>, String> {
    match raw {
        "" => Ok(None),
        c => MessageChannel::parse(c)
            .map(Some)
            .ok_or_else(|| "choose email, sms, magic_link or webhook".into()),
    }
}

fn parse_status(raw: &str) -> Result<Option<MessageStatus>, String> {
    match raw {
        "" => Ok(None),
        s => MessageStatus::parse(s).map(Some).ok_or_else(|| {
            "choose queued, sent, failed, delivered, undelivered, bounced or complained".into()
        }),
    }
}

/// Epoch ms, or the start of a day `2026-01-31` (UTC); `end_of_day` moves a day to its end.
fn parse_time(raw: &str, end_of_day: bool) -> Result<Option<i64>, String> {
    if raw.is_empty() {
        return Ok(None);
    }
    if let Ok(ms) = raw.parse::<i64>() {
        return Ok(Some(ms));
    }
    chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis() + if end_of_day { DAY_MS } else { 0 })
        .map(Some)
        .ok_or_else(|| "use a date like 2026-01-31 (or epoch milliseconds)".into())
}

fn parse_destination(raw: &str) -> Result<Option<String>, String> {
    match raw {
        "" => Ok(None),
        d if d.len() > MAX_DESTINATION => Err("too long".into()),
        d => Ok(Some(d.to_owned())),
    }
}

/// A whole number from `min` to `max`, or `default` when empty.
fn parse_number(raw: &str, min: i64, max: i64, default: i64) -> Result<i64, String> {
    match raw {
        "" => Ok(default),
        n => n
            .parse::<i64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| format!("a whole number from {min} to {max}")),
    }
}

impl DeliveryParams {
    /// The parameters, trimmed (what a form shows again).
    pub fn trimmed(&self) -> DeliveryParams {
        let t = |s: &String| s.trim().to_owned();
        DeliveryParams {
            channel: t(&self.channel),
            status: t(&self.status),
            from: t(&self.from),
            until: t(&self.until),
            destination: t(&self.destination),
            limit: t(&self.limit),
            offset: t(&self.offset),
            page: t(&self.page),
        }
    }

    /// The query, pages of `page_size` unless `limit` says otherwise; every bad parameter
    /// gets its own message.
    pub fn parse(&self, page_size: i64) -> Result<DeliveryQuery, FieldErrors> {
        let p = self.trimmed();
        let mut f = FieldParser::default();
        let channel = f.field("channel", parse_channel(&p.channel));
        let status = f.field("status", parse_status(&p.status));
        let from = f.field("from", parse_time(&p.from, false));
        let until = f.field("until", parse_time(&p.until, true));
        let destination = f.field("destination", parse_destination(&p.destination));
        let limit = f.field("limit", parse_number(&p.limit, 1, MAX_LIMIT, page_size));
        let offset = f.field("offset", parse_number(&p.offset, 0, i64::MAX, 0));
        let page = f.field("page", parse_number(&p.page, 1, MAX_PAGE, 0));
        let query = (|| {
            let limit = limit?;
            Some(DeliveryQuery {
                filter: DeliveryFilter {
                    channel: channel?,
                    status: status?.map(|s| s.as_str().to_owned()),
                    from: from?,
                    until: until?,
                    destination_hash: None,
                },
                destination: destination?,
                limit,
                offset: match page? {
                    0 => offset?,
                    page => (page - 1) * limit,
                },
            })
        })();
        f.finish(query)
    }
}

/// A delivery as listed (destination masked).
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// `msg_…`.
    #[schema(example = "msg_3k9x0q2m5n7p1r4t6v8w0y2z")]
    pub id: String,
    /// `email`, `sms`, `magic_link` or `webhook`.
    #[schema(example = "email")]
    pub channel: String,
    /// Masked destination.
    #[schema(example = "j***@example.com")]
    pub destination: String,
    /// `queued`, `sent` or `failed`.
    #[schema(example = "failed")]
    pub status: String,
    /// Attempts started.
    #[schema(example = 3)]
    pub attempts: i64,
    /// Provider's reason of the last failure.
    #[schema(example = "resend: 422 invalid `to` address")]
    pub error: Option<String>,
    /// Epoch ms.
    #[schema(example = 1764355200000_i64)]
    pub created_at: i64,
    /// Epoch ms.
    #[schema(example = 1764355201250_i64)]
    pub sent_at: Option<i64>,
}

impl From<Message> for DeliveryView {
    fn from(m: Message) -> Self {
        DeliveryView {
            // Queued messages still hold the address in clear: mask it for display too.
            destination: mask_destination(&m.destination),
            id: m.id,
            channel: m.channel.to_string(),
            status: m.status.to_string(),
            attempts: m.attempts,
            error: m.last_error,
            created_at: m.created_at.into(),
            sent_at: m.sent_at.map(i64::from),
        }
    }
}

/// One page of the project's delivery log, newest first, with the total that matched.
pub async fn deliveries(
    store: &Store,
    hasher: &DestinationHasher,
    project_id: &str,
    q: &DeliveryQuery,
) -> Result<(Vec<DeliveryView>, i64), StoreError> {
    let mut filter = q.filter.clone();
    if let Some(d) = &q.destination {
        filter.destination_hash = Some(hasher.hash(store, d).await?);
    }
    let (rows, total) = store
        .deliveries(project_id, &filter, q.limit, q.offset)
        .await?;
    Ok((rows.into_iter().map(DeliveryView::from).collect(), total))
}

/// Sends per day and channel of a project since `from` (the console's chart).
pub async fn daily_counts(
    store: &Store,
    project_id: &str,
    from: UnixMillis,
) -> Result<Vec<DailyCount>, StoreError> {
    store.daily_counts(project_id, from).await
}

/// One message of a project with the parts of its timeline.
#[derive(Debug)]
pub struct DeliveryDetail {
    /// The message.
    pub message: Message,
    /// Its delivery attempts, in order.
    pub attempts: Vec<DeliveryAttempt>,
    /// The provider's status events, in the order they happened.
    pub events: Vec<MessageEvent>,
}

/// Message `id` of `project_id`, with its attempts and provider events; `None` when the
/// project has no such message (another project's is the same `None`).
pub async fn delivery(
    store: &Store,
    project_id: &str,
    id: &MessageId,
) -> Result<Option<DeliveryDetail>, StoreError> {
    let Some(message) = store.get_message(project_id, id.as_str()).await? else {
        return Ok(None);
    };
    let attempts = store.delivery_attempts(&message.id).await?;
    let events = store.message_events(&message.id).await?;
    Ok(Some(DeliveryDetail {
        message,
        attempts,
        events,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(channel: &str, status: &str, from: &str, until: &str, page: &str) -> DeliveryParams {
        DeliveryParams {
            channel: channel.into(),
            status: status.into(),
            from: from.into(),
            until: until.into(),
            page: page.into(),
            ..DeliveryParams::default()
        }
    }

    #[test]
    fn both_faces_filters_parse_alike() {
        let q = params("webhook", "failed", "1764300000000", "", "")
            .parse(50)
            .unwrap();
        assert_eq!(q.filter.channel, Some(MessageChannel::Webhook));
        assert_eq!(q.filter.status.as_deref(), Some("failed"));
        assert_eq!(
            (q.filter.from, q.limit, q.offset),
            (Some(1_764_300_000_000), 50, 0)
        );
        let q = params("", "", "", " 2026-01-31 ", "3").parse(25).unwrap();
        assert_eq!(q.filter.until, Some(1_769_904_000_000));
        assert_eq!((q.limit, q.offset), (25, 50));
        let bad = DeliveryParams {
            limit: "0".into(),
            ..params("pigeon", "lost", "yesterday", "", "0")
        }
        .parse(25)
        .unwrap_err();
        let fields: Vec<_> = bad.keys().copied().collect();
        assert_eq!(fields, ["channel", "from", "limit", "page", "status"]);
    }
}
