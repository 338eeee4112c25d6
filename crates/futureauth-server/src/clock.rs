//! The time the server reads, in one leaf module every layer may use (the store included),
//! so that no lower layer reaches up into the service for it.

/// Current time in Unix epoch milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
