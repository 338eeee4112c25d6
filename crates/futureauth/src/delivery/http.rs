//! The client of the FutureAuth delivery service.

use std::time::Duration;

use futureauth_proto::{CommonCode, ErrorBody};
use secrecy::{ExposeSecret, SecretString};

use super::{Delivery, DeliveryError, Message, Receipt};

/// Delivers through the FutureAuth service: `POST {api_url}/api/v1/otp/send` with the project
/// secret key as bearer token. The wire format is the one futureauth 0.4/0.5 use, plus
/// `link` and `callback_url` for magic links.
#[derive(Debug, Clone)]
pub struct HttpDelivery {
    client: reqwest::Client,
    endpoint: String,
    /// Its `Debug` never shows the key.
    secret_key: SecretString,
}

impl HttpDelivery {
    /// A client for the service at `api_url`, authenticating with `secret_key`.
    pub fn new(api_url: &str, secret_key: &str) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self {
            client,
            endpoint: format!(
                "{}{}",
                api_url.trim_end_matches('/'),
                futureauth_proto::SEND_PATH
            ),
            secret_key: SecretString::from(secret_key),
        }
    }
}

#[async_trait::async_trait]
impl Delivery for HttpDelivery {
    async fn deliver(&self, message: &Message) -> Result<(), DeliveryError> {
        self.deliver_with_receipt(message).await.map(|_| ())
    }

    async fn deliver_with_receipt(&self, message: &Message) -> Result<Receipt, DeliveryError> {
        let response = self
            .client
            .post(&self.endpoint)
            .bearer_auth(self.secret_key.expose_secret())
            .json(message)
            .send()
            .await
            .map_err(|e| DeliveryError::Unreachable(e.without_url().to_string()))?;
        let status = response.status();
        if status.is_success() {
            // `{"id", "status", "test_code"?}`: only a test destination has a code here.
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            let test_code = body.get("test_code").and_then(|c| c.as_str());
            return Ok(Receipt {
                test_code: test_code.map(str::to_string),
            });
        }
        let mut body = response.text().await.unwrap_or_default();
        if status == reqwest::StatusCode::UNPROCESSABLE_ENTITY {
            if let Some(message) = callback_refusal(&body) {
                return Err(DeliveryError::CallbackRefused(message));
            }
        }
        if body.len() > 300 {
            let cut = (0..=300)
                .rev()
                .find(|&i| body.is_char_boundary(i))
                .unwrap_or(0);
            body.truncate(cut);
        }
        Err(DeliveryError::Rejected {
            status: status.as_u16(),
            body,
        })
    }

    fn requires_secret_key(&self) -> bool {
        true
    }

    fn checks_callbacks(&self) -> bool {
        true
    }
}

/// The message of a `{"error": {"code": "callback_not_allowed", "message": ...}}` answer.
fn callback_refusal(body: &str) -> Option<String> {
    let ErrorBody { error } = serde_json::from_str(body).ok()?;
    (error.code == CommonCode::CallbackNotAllowed.as_str())
        .then(|| error.message.chars().take(300).collect())
}

#[cfg(test)]
mod debug_tests {
    #[test]
    fn debug_output_never_shows_the_secret_key() {
        let d = super::HttpDelivery::new("https://future-auth.com", "vx_sec_do_not_log");
        let shown = format!("{d:?}");
        assert!(!shown.contains("do_not_log"), "{shown}");
        assert!(shown.contains("future-auth.com"), "{shown}");
    }
}
