//! Delivery: how codes and links reach people.
//!
//! The sign-in and account flows build a [`Message`] and hand it to a [`Delivery`]. Its
//! [`Purpose`] says what it is: a sign-in code or link (`None`), a code that confirms a new
//! address (`ConfirmAddress`), or a notice to a user's old address (`AddressChangeNotice`,
//! with an empty `code` and the new address masked in `new_address`). A delivery of its own
//! should word each accordingly and never present a notice as a code. The default is
//! `HttpDelivery` (feature `http-delivery`, on by default), the client of the FutureAuth
//! service; [`DevOutbox`] keeps messages in memory and prints them, for local development
//! and tests.

#[cfg(feature = "http-delivery")]
mod http;
mod outbox;

#[cfg(feature = "http-delivery")]
#[cfg_attr(docsrs, doc(cfg(feature = "http-delivery")))]
pub use http::HttpDelivery;
pub use outbox::{DevOutbox, OutboxEntry};

pub use futureauth_proto::{Channel, Message, Purpose};

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
    /// The delivery refused the magic link's callback URL (the FutureAuth service answers
    /// 422 `callback_not_allowed` for a URL outside the project's list).
    #[error("callback URL refused by the delivery service: {0}")]
    CallbackRefused(String),
}

/// What a delivery answered about a message it accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Receipt {
    /// The destination is a test destination of the project's test mode (FutureAuth
    /// service): nothing was sent, and this fixed code replaces the one in the message.
    pub test_code: Option<String>,
}

impl Receipt {
    /// A receipt for a test destination with its fixed code.
    pub fn test(code: impl Into<String>) -> Self {
        Self {
            test_code: Some(code.into()),
        }
    }
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
///         match message.purpose() {
///             futureauth::delivery::Purpose::AddressChangeNotice => println!(
///                 "{}: a new address was asked for ({:?})",
///                 message.destination, message.new_address
///             ),
///             _ => println!("{} -> {}", message.code, message.destination),
///         }
///         Ok(())
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait Delivery: Send + Sync + 'static {
    /// Delivers one message; an error means it was not (and will not be) delivered.
    async fn deliver(&self, message: &Message) -> Result<(), DeliveryError>;

    /// [`deliver`](Self::deliver), with what the delivery answered. The sign-in flows call
    /// this one; the default delivers and has nothing to say.
    async fn deliver_with_receipt(&self, message: &Message) -> Result<Receipt, DeliveryError> {
        self.deliver(message).await.map(|()| Receipt::default())
    }

    /// Whether this delivery needs `FutureAuthConfig::secret_key` (checked at start-up).
    fn requires_secret_key(&self) -> bool {
        false
    }

    /// Whether this delivery refuses magic-link callback URLs outside an allowlist of its
    /// own (the FutureAuth service does, per project). Only then may magic links be sent
    /// with no `app_url`, `allowed_origins` or `callback_urls` configured.
    fn checks_callbacks(&self) -> bool {
        false
    }

    /// Whether this delivery is for development only and sends nothing to anyone (the
    /// [`DevOutbox`]). Only such a delivery may run without `secret_key` or `code_secret`,
    /// hashing codes with a random per-process key.
    fn is_dev_only(&self) -> bool {
        false
    }
}

/// The delivery of a `FutureAuth` built without the `http-delivery` feature before
/// [`with_delivery`](crate::FutureAuth::with_delivery) replaces it:
/// [`validate`](crate::FutureAuth::validate) refuses it, so it never delivers.
#[cfg(not(feature = "http-delivery"))]
#[derive(Debug)]
pub(crate) struct NoDelivery;

#[cfg(not(feature = "http-delivery"))]
#[async_trait::async_trait]
impl Delivery for NoDelivery {
    async fn deliver(&self, _message: &Message) -> Result<(), DeliveryError> {
        Err(DeliveryError::Unreachable(
            "no delivery: enable the `http-delivery` feature or call FutureAuth::with_delivery"
                .to_string(),
        ))
    }
}
