//! Delivery: how codes and links reach people.
//!
//! The sign-in flows build a [`Message`] and hand it to a [`Delivery`]. The default is
//! [`HttpDelivery`], the client of the FutureAuth service; [`DevOutbox`] keeps messages in
//! memory and prints them, for local development and tests.

mod http;
mod outbox;

pub use http::HttpDelivery;
pub use outbox::{DevOutbox, OutboxEntry};

use serde::Serialize;

/// What a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A one-time code by email.
    Email,
    /// A one-time code by SMS.
    Sms,
    /// A magic sign-in link by email.
    MagicLink,
}

/// One code or link to deliver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// How to deliver it.
    pub channel: Channel,
    /// Normalised email or E.164 phone number.
    pub destination: String,
    /// The one-time code, or the magic-link token.
    pub code: String,
    /// The app's project name.
    pub project_name: String,
    /// For magic links: the full link (`callback_url?token=...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// For magic links: the page the link opens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
}

/// Why a delivery failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The delivery service answered with an error status.
    #[error("delivery service answered {status}: {body}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// Start of the response body.
        body: String,
    },
    /// The delivery service could not be reached.
    #[error("delivery service unreachable: {0}")]
    Unreachable(String),
}

/// Sends codes and links. Implement it to plug in your own channel.
///
/// ```
/// use futureauth::delivery::{Delivery, DeliveryError, Message};
///
/// struct Stdout;
///
/// #[futureauth::async_trait]
/// impl Delivery for Stdout {
///     async fn deliver(&self, message: &Message) -> Result<(), DeliveryError> {
///         println!("{} -> {}", message.code, message.destination);
///         Ok(())
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait Delivery: Send + Sync + 'static {
    /// Delivers one message; an error means it was not (and will not be) delivered.
    async fn deliver(&self, message: &Message) -> Result<(), DeliveryError>;

    /// Whether this delivery needs `FutureAuthConfig::secret_key` (checked at start-up).
    fn requires_secret_key(&self) -> bool {
        false
    }
}
