//! The delivery logic, free of HTTP: validating send requests, abuse limits, rendering,
//! enqueueing, and project/key administration.

pub mod console;
pub mod deliveries;
pub mod fingerprint;
pub mod operator;
pub mod project_webhook;
pub mod projects;
pub mod provider_events;
pub mod render;
pub mod send;
pub mod settings;
pub mod templates;
pub mod test_mode;
pub mod validate;

pub use crate::clock::now_ms;
pub(crate) use crate::ids;
pub use crate::ids::{random_id, IdempotencyKey, MessageId};
pub use projects::CreatedProject;
pub use send::{Limits, SendService, SmsLimits};
