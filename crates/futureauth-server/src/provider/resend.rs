//! Email through Resend: `POST {api}/emails`.

use async_trait::async_trait;
use secrecy::ExposeSecret;
use serde::Serialize;

use super::{call, EmailMessage, Provider, ProviderError};
use crate::config::ResendSettings;

/// The Resend client.
#[derive(Debug, Clone)]
pub struct Resend {
    http: reqwest::Client,
    settings: ResendSettings,
}

#[derive(Serialize)]
struct ResendEmail<'a> {
    from: &'a str,
    to: [&'a str; 1],
    subject: &'a str,
    text: &'a str,
    html: &'a str,
}

impl Resend {
    /// A client using `http` (which carries the timeout).
    pub fn new(http: reqwest::Client, settings: ResendSettings) -> Resend {
        Resend { http, settings }
    }
}

#[async_trait]
impl Provider for Resend {
    fn name(&self) -> &'static str {
        "resend"
    }

    async fn send_email(
        &self,
        message_id: &str,
        email: &EmailMessage,
    ) -> Result<Option<String>, ProviderError> {
        let request = self
            .http
            .post(format!("{}/emails", self.settings.api_url))
            .bearer_auth(self.settings.api_key.expose_secret())
            .header("Idempotency-Key", message_id)
            .json(&ResendEmail {
                from: &email.from,
                to: [&email.to],
                subject: &email.subject,
                text: &email.text,
                html: &email.html,
            });
        call("resend", request, "id").await
    }

    fn refusal(&self) -> &str {
        "resend only delivers email"
    }
}
