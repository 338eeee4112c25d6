//! SMS through Twilio: `POST {api}/2010-04-01/Accounts/{sid}/Messages.json` (form encoded).

use async_trait::async_trait;
use secrecy::ExposeSecret;

use super::{call, Provider, ProviderError, SmsMessage};
use crate::config::{TwilioSender, TwilioSettings};

/// The Twilio client.
#[derive(Debug, Clone)]
pub struct Twilio {
    http: reqwest::Client,
    settings: TwilioSettings,
}

impl Twilio {
    /// A client using `http` (which carries the timeout).
    pub fn new(http: reqwest::Client, settings: TwilioSettings) -> Twilio {
        Twilio { http, settings }
    }
}

#[async_trait]
impl Provider for Twilio {
    fn name(&self) -> &'static str {
        "twilio"
    }

    async fn send_sms(
        &self,
        message_id: &str,
        sms: &SmsMessage,
    ) -> Result<Option<String>, ProviderError> {
        let sender = match &self.settings.sender {
            TwilioSender::FromNumber(n) => ("From", n.as_str()),
            TwilioSender::MessagingService(s) => ("MessagingServiceSid", s.as_str()),
        };
        let mut form = vec![("To", sms.to.as_str()), ("Body", sms.body.as_str()), sender];
        if let Some(url) = &self.settings.status_callback {
            form.push(("StatusCallback", url.as_str()));
        }
        let request = self
            .http
            .post(format!(
                "{}/2010-04-01/Accounts/{}/Messages.json",
                self.settings.api_url, self.settings.account_sid
            ))
            .basic_auth(
                &self.settings.account_sid,
                Some(self.settings.auth_token.expose_secret()),
            )
            .header("I-Twilio-Idempotency-Token", message_id)
            .form(&form);
        call("twilio", request, "sid").await
    }

    fn refusal(&self) -> &str {
        "twilio only delivers SMS"
    }
}
