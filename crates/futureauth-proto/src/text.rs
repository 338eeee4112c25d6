//! Plain-text checks every parsed type shares (a leaf: it imports nothing of the crate).

/// Whether `s` holds a character that a database or a header refuses or that has no place
/// in an identifier: NUL and the other C0/C1 control characters.
///
/// ```
/// assert!(futureauth_proto::has_control_chars("a\0b"));
/// assert!(!futureauth_proto::has_control_chars("plain text"));
/// ```
pub fn has_control_chars(s: &str) -> bool {
    s.chars().any(char::is_control)
}
