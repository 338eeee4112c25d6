//! Accepting a send request: validate, check limits, render, write to the outbox.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use super::render::{self, Templates};
use super::validate::{self, Channel};
use super::{now_ms, random_id};
use crate::config::Config;
use crate::error::ServiceError;
use crate::provider::{EmailMessage, Outgoing, SmsMessage};
use crate::store::{EnqueueOutcome, Message, NewMessage, Project, RateBucket, Store};

/// A send request as received (all strings; validated by [`SendService::send`]).
#[derive(Debug, Clone, Default)]
pub struct SendRequest {
    /// `email`, `sms` or `magic_link`.
    pub channel: String,
    /// Email address or E.164 number.
    pub destination: String,
    /// Code (email/sms) or token (magic_link).
    pub code: String,
    /// Magic link callback URL (origin must be allowed).
    pub callback_url: Option<String>,
    /// Full magic link (origin allowed and `token` parameter equal to `code`).
    pub link: Option<String>,
    /// Language of the message (BCP 47, e.g. `de-AT`); `None` = English.
    pub locale: Option<String>,
}

/// Abuse limits (fixed windows, counted in the database so instances share them).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Messages per project and destination per window.
    pub per_destination: u32,
    /// That window, in milliseconds.
    pub destination_window_ms: i64,
    /// Messages per project per minute.
    pub per_project_per_minute: u32,
    /// SMS per project and number prefix (first 5 chars) per hour.
    pub sms_prefix_per_hour: u32,
}

impl Limits {
    /// From the configuration.
    pub fn from_config(c: &Config) -> Limits {
        Limits {
            per_destination: c.limit_per_destination,
            destination_window_ms: i64::try_from(
                c.limit_destination_window_secs.saturating_mul(1000),
            )
            .unwrap_or(i64::MAX),
            per_project_per_minute: c.limit_per_project_per_minute,
            sms_prefix_per_hour: c.limit_sms_prefix_per_hour,
        }
    }
}

/// Accepts send requests and answers status queries.
#[derive(Debug, Clone)]
pub struct SendService {
    store: Store,
    templates: Arc<Templates>,
    limits: Limits,
    default_email_from: String,
    wake: Arc<Notify>,
    destination_hasher: super::console::DestinationHasher,
}

/// Result of an accepted send.
#[derive(Debug)]
pub struct Accepted {
    /// The outbox message.
    pub message: Message,
    /// `true` when an `Idempotency-Key` matched an earlier request (nothing new was written).
    pub replayed: bool,
}

impl SendService {
    /// A service writing to `store` and waking workers through `wake`.
    pub fn new(
        store: Store,
        limits: Limits,
        default_email_from: String,
        wake: Arc<Notify>,
    ) -> Result<SendService, ServiceError> {
        Ok(SendService {
            store,
            templates: Arc::new(Templates::new()?),
            limits,
            default_email_from,
            wake,
            destination_hasher: Default::default(),
        })
    }

    /// Validates, rate-limits, renders and enqueues. Invalid or limited requests write nothing.
    pub async fn send(
        &self,
        project: &Project,
        req: &SendRequest,
        idempotency_key: Option<&str>,
    ) -> Result<Accepted, ServiceError> {
        if let Some(key) = idempotency_key {
            if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| (0x21..=0x7e).contains(&b))
            {
                return Err(ServiceError::validation(
                    "invalid_idempotency_key",
                    "Idempotency-Key must be 1 to 255 visible ASCII characters",
                ));
            }
        }
        let channel = Channel::parse(&req.channel)?;
        if let Some(tag) = req.locale.as_deref() {
            if !render::is_locale_tag(tag) {
                return Err(ServiceError::validation(
                    "invalid_locale",
                    "locale must be a language tag such as `de` or `de-AT` (1 to 35 letters, digits, `-` or `_`)",
                ));
            }
        }
        let locale = Templates::pick(req.locale.as_deref());
        let dest = req.destination.as_str();
        // The project's console settings (rate limits, message wording): one query.
        let overrides = self.store.send_overrides(&project.id).await?;
        let (outgoing, link) = match channel {
            Channel::Email => {
                validate::email(dest)?;
                validate::code(&req.code)?;
                let e = self.templates.otp_email(locale, &project.name, &req.code)?;
                // The project's own wording, set in the console.
                let e = overrides.templates.email(e, &project.name, &req.code);
                (self.email(project, dest, e), None)
            }
            Channel::Sms => {
                validate::e164(dest)?;
                validate::code(&req.code)?;
                if !project
                    .sms_prefixes
                    .iter()
                    .any(|p| dest.starts_with(p.as_str()))
                {
                    return Err(ServiceError::validation(
                        "sms_country_not_allowed",
                        format!(
                            "SMS to this country is not enabled for the project (allowed prefixes: {})",
                            project.sms_prefixes.join(", ")
                        ),
                    ));
                }
                let body = self.templates.otp_sms(locale, &project.name, &req.code)?;
                let body = overrides.templates.sms(body, &project.name, &req.code);
                (
                    Outgoing::Sms(SmsMessage {
                        to: dest.to_owned(),
                        body,
                    }),
                    None,
                )
            }
            Channel::MagicLink => {
                validate::email(dest)?;
                validate::token(&req.code)?;
                let link = self.magic_link(project, req)?;
                let e = self
                    .templates
                    .magic_link_email(locale, &project.name, &link)?;
                (self.email(project, dest, e), Some(link))
            }
        };

        // Per-project overrides set in the console (tighter or looser than the server's).
        let (per_destination, per_minute) = self.project_limits(&overrides);
        let mut buckets = vec![
            RateBucket {
                key: format!("dest:{}:{}", project.id, dest.to_ascii_lowercase()),
                window_ms: self.limits.destination_window_ms,
                limit: per_destination,
                scope: "destination",
            },
            RateBucket {
                key: format!("project:{}", project.id),
                window_ms: 60_000,
                limit: per_minute,
                scope: "project",
            },
        ];
        if channel == Channel::Sms {
            let prefix: String = dest.chars().take(5).collect();
            buckets.push(RateBucket {
                key: format!("smsprefix:{}:{prefix}", project.id),
                window_ms: 3_600_000,
                limit: self.limits.sms_prefix_per_hour,
                scope: "sms_prefix",
            });
        }

        let payload = serde_json::to_string(&outgoing)
            .map_err(|e| ServiceError::Template(format!("cannot encode payload: {e}")))?;
        let msg = NewMessage {
            id: random_id("msg_", 24),
            project_id: project.id.clone(),
            channel: channel.as_str().to_owned(),
            destination: dest.to_owned(),
            payload,
            idempotency_key: idempotency_key.map(str::to_owned),
            request_hash: request_hash(channel, dest, &req.code, link.as_deref()),
        };
        match self.store.enqueue(&msg, &buckets, now_ms()).await? {
            EnqueueOutcome::Created(message) => {
                self.wake.notify_one();
                self.record_destination_hash(&message.id, dest).await;
                Ok(Accepted {
                    message,
                    replayed: false,
                })
            }
            EnqueueOutcome::Replayed(message) => Ok(Accepted {
                message,
                replayed: true,
            }),
            EnqueueOutcome::IdempotencyConflict => Err(ServiceError::IdempotencyConflict),
            EnqueueOutcome::RateLimited {
                scope,
                retry_after_ms,
            } => Err(ServiceError::RateLimited {
                scope,
                retry_after_secs: u64::try_from(retry_after_ms.max(0))
                    .unwrap_or(0)
                    .div_ceil(1000)
                    .max(1),
            }),
        }
    }

    /// The project's per-destination and per-minute limits: its console overrides, else the
    /// server's.
    fn project_limits(&self, o: &crate::store::SendOverrides) -> (u32, u32) {
        let pick =
            |v: Option<i64>, default: u32| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(default);
        (
            pick(o.per_destination, self.limits.per_destination),
            pick(o.per_minute, self.limits.per_project_per_minute),
        )
    }

    /// Stores the keyed hash of the destination for the console's exact-address search. The
    /// message is already committed, so a failure here is logged, not returned.
    async fn record_destination_hash(&self, id: &str, dest: &str) {
        let stored = match self.destination_hasher.hash(&self.store, dest).await {
            Ok(hash) => self.store.set_destination_hash(id, &hash).await,
            Err(e) => Err(e),
        };
        if let Err(e) = stored {
            tracing::warn!(error = %e, message = id, "cannot store the destination hash");
        }
    }

    /// The keyed hash used for the delivery log's destination search.
    pub fn destination_hasher(&self) -> &super::console::DestinationHasher {
        &self.destination_hasher
    }

    /// A message of this project.
    pub async fn status(&self, project: &Project, id: &str) -> Result<Message, ServiceError> {
        self.store
            .get_message(&project.id, id)
            .await?
            .ok_or(ServiceError::NotFound)
    }

    fn email(&self, project: &Project, to: &str, e: super::render::RenderedEmail) -> Outgoing {
        Outgoing::Email(EmailMessage {
            from: project
                .email_from
                .clone()
                .unwrap_or_else(|| self.default_email_from.clone()),
            to: to.to_owned(),
            subject: e.subject,
            text: e.text,
            html: e.html,
        })
    }

    /// Builds the magic link: from `callback_url`, else a checked `link`, else the project's
    /// default callback URL.
    fn magic_link(&self, project: &Project, req: &SendRequest) -> Result<String, ServiceError> {
        let not_allowed = |what: &str, origin: &str| {
            ServiceError::validation(
                "callback_not_allowed",
                format!("{what} origin `{origin}` is not an allowed origin of this project"),
            )
        };
        let invalid = |what: &str, e: String| {
            ServiceError::validation("callback_not_allowed", format!("{what}: {e}"))
        };
        if let Some(cb) = req.callback_url.as_deref() {
            let (url, origin) = validate::http_url(cb).map_err(|e| invalid("callback_url", e))?;
            if !project.allowed_origins.contains(&origin) {
                return Err(not_allowed("callback_url", &origin));
            }
            return Ok(validate::build_link(&url, &req.code));
        }
        if let Some(link) = req.link.as_deref() {
            let (url, origin) = validate::http_url(link).map_err(|e| invalid("link", e))?;
            if !project.allowed_origins.contains(&origin) {
                return Err(not_allowed("link", &origin));
            }
            let tokens: Vec<String> = url
                .query_pairs()
                .filter(|(k, _)| k == "token")
                .map(|(_, v)| v.into_owned())
                .collect();
            if tokens.len() != 1 || tokens[0] != req.code {
                return Err(ServiceError::validation(
                    "invalid_link",
                    "link must carry exactly one `token` query parameter equal to `code`",
                ));
            }
            return Ok(url.to_string());
        }
        match project.callback_url.as_deref() {
            Some(cb) => {
                let (url, _) = validate::http_url(cb).map_err(|e| invalid("project callback URL", e))?;
                Ok(validate::build_link(&url, &req.code))
            }
            None => Err(ServiceError::validation(
                "callback_url_required",
                "this project has no default callback URL: send `callback_url` or configure one with `futureauth-server project create --callback-url`",
            )),
        }
    }
}

fn request_hash(channel: Channel, dest: &str, code: &str, link: Option<&str>) -> String {
    let mut h = Sha256::new();
    for part in [channel.as_str(), dest, code, link.unwrap_or("")] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}
