//! Delivery providers behind one trait: Resend (email), Twilio (SMS) and the dev outbox.
//!
//! The worker hands a rendered [`Outgoing`] message to [`Delivery::send`], which routes it to
//! the provider configured for its channel. Providers classify failures as
//! [`ProviderError::Retryable`] (timeouts, connection errors, 5xx, 429) or
//! [`ProviderError::Permanent`] (other 4xx, e.g. an invalid phone number), keeping the
//! provider's reason.

pub mod outbox;
pub mod resend;
pub mod scrub;
pub mod twilio;
pub mod webhook;

use secrecy::ExposeSecret;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::{Config, ConfigError};
pub use outbox::{DevOutbox, OutboxEntry};

/// A rendered email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailMessage {
    /// Sender (`Name <addr>` or `addr`).
    pub from: String,
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
    /// What it carries, in the SDK's own words (code, link, link code): what the dev outbox
    /// lists, in the same shape as the SDK's `DevOutbox`. Providers send the rendered parts
    /// only. Absent in payloads queued by older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<futureauth_proto::Message>,
}

/// A rendered SMS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsMessage {
    /// Recipient, E.164.
    pub to: String,
    /// Text.
    pub body: String,
    /// What it carries, for the dev outbox (see [`EmailMessage::request`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<futureauth_proto::Message>,
}

/// A message ready to hand to a provider; stored as the outbox payload until finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outgoing {
    /// Email (OTP code or magic link).
    Email(EmailMessage),
    /// SMS (OTP code).
    Sms(SmsMessage),
    /// An event for the project's own webhook.
    Webhook(webhook::WebhookMessage),
}

/// A failed delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProviderError {
    /// Worth retrying later (timeout, connection error, 5xx, 429).
    #[error("{0}")]
    Retryable(String),
    /// Retrying cannot help (4xx such as an invalid number, or no provider configured).
    #[error("{0}")]
    Permanent(String),
}

/// Something that can deliver messages.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Short name for logs (`resend`, `twilio`, `dev-outbox`).
    fn name(&self) -> &'static str;
    /// Delivers one email. `message_id` is used as the provider idempotency key, so a
    /// message re-sent after a crash is not delivered twice by providers that honour it.
    /// Returns the provider's id of the message, which its status webhooks name.
    async fn send_email(
        &self,
        _message_id: &str,
        _email: &EmailMessage,
    ) -> Result<Option<String>, ProviderError> {
        Err(refused(self))
    }
    /// Delivers one SMS, as [`send_email`](Provider::send_email) does an email.
    async fn send_sms(
        &self,
        _message_id: &str,
        _sms: &SmsMessage,
    ) -> Result<Option<String>, ProviderError> {
        Err(refused(self))
    }
    /// Posts one event to a project's webhook, as [`send_email`](Provider::send_email)
    /// delivers an email.
    async fn send_webhook(
        &self,
        _message_id: &str,
        _hook: &webhook::WebhookMessage,
    ) -> Result<Option<String>, ProviderError> {
        Err(refused(self))
    }
    /// Why it refuses the channels it does not deliver: a provider implements the `send_*`
    /// of its own channels only, and the others fail permanently with this reason.
    fn refusal(&self) -> &str;
}

/// The permanent failure of a message `provider` does not deliver.
fn refused<P: Provider + ?Sized>(provider: &P) -> ProviderError {
    ProviderError::Permanent(provider.refusal().to_owned())
}

/// A channel without a provider: every message fails at once with a reason saying what to set.
#[derive(Debug, Clone)]
pub struct Unconfigured {
    /// Explanation stored as the message's error.
    pub reason: &'static str,
}

#[async_trait]
impl Provider for Unconfigured {
    fn name(&self) -> &'static str {
        "unconfigured"
    }
    // No `send_*`: every message fails with the reason.
    fn refusal(&self) -> &str {
        self.reason
    }
}

/// Project webhooks time out like provider calls and reach internal addresses only in
/// development.
fn webhook_sender(config: &Config) -> webhook::WebhookSender {
    webhook::WebhookSender::new(config.delivery.provider_timeout(), !config.is_production())
}

/// Routes each message to the provider of its channel.
#[derive(Clone)]
pub struct Delivery {
    email: Arc<dyn Provider>,
    sms: Arc<dyn Provider>,
    webhook: Arc<dyn Provider>,
    dev_outbox: Option<DevOutbox>,
    /// Configured credentials, removed from every error text.
    secrets: Vec<String>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("email", &self.email.name())
            .field("sms", &self.sms.name())
            .finish()
    }
}

impl Delivery {
    /// Builds the providers from the configuration.
    ///
    /// * Resend / Twilio when their keys are set.
    /// * With no provider key at all (development only): the dev outbox for both channels.
    /// * With only one of them configured: the other channel's messages fail visibly with a
    ///   reason naming the variables to set.
    /// * Production mode without both: an error (see [`Config::validate`]).
    pub fn from_config(config: &Config) -> Result<Delivery, ConfigError> {
        config.validate()?;
        let timeout = config.delivery.provider_timeout();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| ConfigError(format!("cannot build the HTTP client: {e}")))?;
        let resend = config.resend();
        let twilio = config.twilio()?;
        if resend.is_none() && twilio.is_none() {
            let outbox = DevOutbox::new(100);
            return Ok(Delivery {
                email: Arc::new(outbox.clone()),
                sms: Arc::new(outbox.clone()),
                webhook: Arc::new(webhook_sender(config)),
                dev_outbox: Some(outbox),
                secrets: Vec::new(),
            });
        }
        let secrets = [
            resend
                .as_ref()
                .map(|r| r.api_key.expose_secret().to_owned()),
            twilio.as_ref().map(|t| t.account_sid.clone()),
            twilio
                .as_ref()
                .map(|t| t.auth_token.expose_secret().to_owned()),
        ]
        .into_iter()
        .flatten()
        .collect();
        let email: Arc<dyn Provider> = match resend {
            Some(s) => Arc::new(resend::Resend::new(http.clone(), s)),
            None => Arc::new(Unconfigured {
                reason: "email delivery is not configured on this server: set RESEND_API_KEY",
            }),
        };
        let sms: Arc<dyn Provider> = match twilio {
            Some(s) => Arc::new(twilio::Twilio::new(http, s)),
            None => Arc::new(Unconfigured {
                reason: "SMS delivery is not configured on this server: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID",
            }),
        };
        Ok(Delivery {
            email,
            sms,
            webhook: Arc::new(webhook_sender(config)),
            dev_outbox: None,
            secrets,
        })
    }

    /// Explicit providers (tests, embedding).
    pub fn new(email: Arc<dyn Provider>, sms: Arc<dyn Provider>) -> Delivery {
        Delivery {
            email,
            sms,
            webhook: Arc::new(webhook::WebhookSender::new(Duration::from_secs(10), false)),
            dev_outbox: None,
            secrets: Vec::new(),
        }
    }

    /// These providers, with `secrets` also removed from their error texts.
    pub fn with_secrets(mut self, secrets: Vec<String>) -> Delivery {
        self.secrets = secrets;
        self
    }

    /// The dev outbox, when messages are only logged and kept in memory.
    pub fn dev_outbox(&self) -> Option<&DevOutbox> {
        self.dev_outbox.as_ref()
    }

    /// Provider names for the start-up log: `(email, sms)`.
    pub fn provider_names(&self) -> (&'static str, &'static str) {
        (self.email.name(), self.sms.name())
    }

    /// Sends through the provider of the message's channel. A failure's reason is
    /// [scrubbed](scrub::scrub) of credentials and of the recipient: it is logged and stored
    /// where the tenant reads it.
    pub async fn send(
        &self,
        message_id: &str,
        message: &Outgoing,
    ) -> Result<Option<String>, ProviderError> {
        let (result, to) = match message {
            Outgoing::Email(e) => (self.email.send_email(message_id, e).await, e.to.as_str()),
            Outgoing::Sms(s) => (self.sms.send_sms(message_id, s).await, s.to.as_str()),
            Outgoing::Webhook(h) => (self.webhook.send_webhook(message_id, h).await, ""),
        };
        result.map_err(|e| {
            let mut literals: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
            literals.push(to);
            // A number may be quoted without its `+`.
            literals.push(to.trim_start_matches('+'));
            match e {
                ProviderError::Retryable(r) => {
                    ProviderError::Retryable(scrub::scrub(&r, &literals))
                }
                ProviderError::Permanent(r) => {
                    ProviderError::Permanent(scrub::scrub(&r, &literals))
                }
            }
        })
    }
}

/// Sends a provider API `request`: the provider's id of the accepted message (field
/// `id_field` of its answer), or the failure classified for the retry decision.
pub(crate) async fn call(
    provider: &str,
    request: reqwest::RequestBuilder,
    id_field: &str,
) -> Result<Option<String>, ProviderError> {
    let resp = request
        .send()
        .await
        .map_err(|e| classify_transport(provider, &e))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(accepted_id(resp, id_field).await);
    }
    let body = resp.text().await.unwrap_or_default();
    Err(classify_status(provider, status, &body))
}

/// The provider's id of an accepted message: field `field` of its JSON answer. An answer
/// without one is still an acceptance (its status webhooks then find no message).
pub(crate) async fn accepted_id(resp: reqwest::Response, field: &str) -> Option<String> {
    let body: serde_json::Value = resp.json().await.ok()?;
    let id = body.get(field)?.as_str()?;
    // Stored and matched against webhook input: bounded and printable.
    (!id.is_empty() && id.len() <= 128 && !futureauth_proto::has_control_chars(id))
        .then(|| id.to_owned())
}

/// Classifies a non-success HTTP answer from a provider.
pub(crate) fn classify_status(
    provider: &str,
    status: reqwest::StatusCode,
    body: &str,
) -> ProviderError {
    let reason = provider_reason(body);
    // Cut generously here: `Delivery::send` scrubs first and cuts to the final length after,
    // so that no secret is cut in half where its pattern no longer matches.
    let text = scrub::truncate(
        &format!("{provider} HTTP {}: {reason}", status.as_u16()),
        8 * scrub::MAX_ERROR_LEN,
    );
    if status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
    {
        ProviderError::Retryable(text)
    } else {
        ProviderError::Permanent(text)
    }
}

/// Classifies a transport failure (timeout, refused connection, reset…): always retryable.
pub(crate) fn classify_transport(provider: &str, err: &reqwest::Error) -> ProviderError {
    let kind = if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connection error"
    } else {
        "request error"
    };
    ProviderError::Retryable(scrub::truncate(
        &format!("{provider} {kind}: {err}"),
        8 * scrub::MAX_ERROR_LEN,
    ))
}

/// Extracts the human reason from a provider error body (`{"message": …}` for Resend and
/// Twilio), else the raw body.
fn provider_reason(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        if let Some(m) = v.get("message").and_then(|m| m.as_str()) {
            return match v.get("code").and_then(|c| c.as_i64()) {
                Some(code) => format!("{m} (code {code})"),
                None => m.to_owned(),
            };
        }
    }
    let trimmed = body.trim();
    if trimmed.is_empty() {
        "no response body".into()
    } else {
        trimmed.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let s = reqwest::StatusCode::from_u16;
        assert!(matches!(
            classify_status("x", s(500).unwrap(), ""),
            ProviderError::Retryable(_)
        ));
        assert!(matches!(
            classify_status("x", s(429).unwrap(), ""),
            ProviderError::Retryable(_)
        ));
        let p = classify_status(
            "twilio",
            s(400).unwrap(),
            r#"{"code":21211,"message":"The 'To' number is not a valid phone number."}"#,
        );
        assert_eq!(
            p,
            ProviderError::Permanent(
                "twilio HTTP 400: The 'To' number is not a valid phone number. (code 21211)".into()
            )
        );
    }
}
