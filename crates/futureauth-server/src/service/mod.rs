//! The delivery logic, free of HTTP: validating send requests, abuse limits, rendering,
//! enqueueing, and project/key administration.

pub mod console;
pub mod fingerprint;
pub mod ids;
pub mod operator;
pub mod project_webhook;
pub mod projects;
pub mod provider_events;
pub mod render;
pub mod send;
pub mod templates;
pub mod test_mode;
pub mod validate;

pub use ids::{IdempotencyKey, MessageId};
pub use projects::{CreatedProject, ProjectInput};
pub use send::{Limits, SendService, SmsLimits};

/// Current time in Unix epoch milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A random identifier: `prefix` + `len` lowercase alphanumerics.
pub fn random_id(prefix: &str, len: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rngs::OsRng;
    let tail: String = (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{tail}")
}
