//! Operator sign-in codes and links go through this server's own outbox: the console's
//! `futureauth` SDK delivers into the outbox under an internal project, and the workers send
//! them with the configured providers (in development: the dev outbox and the terminal).

use async_trait::async_trait;
use futureauth::delivery::{Delivery, DeliveryError, Message};

use crate::clock::UnixMillis;
use crate::error::ServiceError;
use crate::service::console as ops;
use crate::service::projects;
use crate::service::send::SendRequest;
use crate::service::SendService;
use crate::store::{Project, Store};

pub use crate::ids::CONSOLE_PROJECT_ID;
/// Name shown in operator sign-in messages.
pub const CONSOLE_PROJECT_NAME: &str = "FutureAuth Console";

/// The internal project, allowed to link back to the console's origins.
pub fn console_project(origins: &[String], callback_url: &str) -> Project {
    Project {
        id: CONSOLE_PROJECT_ID.into(),
        name: CONSOLE_PROJECT_NAME.into(),
        allowed_origins: origins.to_vec(),
        callback_url: Some(callback_url.to_owned()),
        email_from: None,
        // Operator sign-in is by email only.
        sms_countries: Vec::new(),
        sms_caps: Default::default(),
        created_at: UnixMillis::now(),
    }
}

/// [`Delivery`] into the server's durable outbox.
#[derive(Debug, Clone)]
pub struct OutboxDelivery {
    /// Accepts sends (validation, limits, rendering, outbox).
    pub sender: SendService,
    /// Where the internal project lives.
    pub store: Store,
}

#[async_trait]
impl Delivery for OutboxDelivery {
    async fn deliver(&self, message: &Message) -> Result<(), DeliveryError> {
        let rejected = |status: u16, body: String| DeliveryError::Rejected { status, body };
        // Only operators receive sign-in messages. Everyone else gets the same answer from
        // the SDK (which also rate-limits them the same way) but nothing is sent, so the
        // sign-in page does not reveal who is an operator.
        let is_operator = ops::operator(&self.store, &message.destination)
            .await
            .map_err(|e| DeliveryError::Unreachable(e.to_string()))?
            .is_some();
        if !is_operator {
            tracing::info!(
                "console sign-in requested for an address that is not an operator; nothing sent"
            );
            return Ok(());
        }
        let project = projects::get(&self.store, CONSOLE_PROJECT_ID)
            .await
            .map_err(|e| DeliveryError::Unreachable(e.to_string()))?
            .ok_or_else(|| rejected(500, "the console project is missing".into()))?;
        let request = Message {
            callback_url: None,
            ..message.clone()
        };
        let sent = match SendRequest::parse(&project, &request) {
            Ok(request) => self.sender.send(&project, &request, None).await,
            Err(e) => Err(e),
        };
        match sent {
            Ok(_) => Ok(()),
            Err(ServiceError::Store(e)) => Err(DeliveryError::Unreachable(e.to_string())),
            Err(ServiceError::RateLimited { .. }) => {
                Err(rejected(429, "too many messages to this address".into()))
            }
            Err(e) => Err(rejected(422, e.to_string())),
        }
    }
}
