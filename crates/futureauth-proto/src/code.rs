//! The secrets a send carries: short one-time codes and magic-link tokens. The service
//! relays nothing else, so a leaked key cannot send free text.

use std::fmt;
use std::ops::RangeInclusive;

/// The characters of a one-time code: lower-case ASCII letters and digits, as every
/// futureauth version generates them.
pub const CODE_ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// The lengths of one-time code the service relays (futureauth 0.4/0.5 allowed 4).
pub const CODE_LENGTHS: RangeInclusive<usize> = 4..=12;

/// The lengths of magic-link token the service relays: futureauth 0.6 sends 43 characters
/// (256 bits, base64url), 0.4/0.5 send 48 (nanoid).
pub const LINK_TOKEN_LENGTHS: RangeInclusive<usize> = 32..=64;

/// The input is not a code or token of the accepted form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidCode {
    /// Not a one-time code.
    #[error("a code is 4 to 12 characters of [a-z0-9]")]
    Code,
    /// Not a magic-link token.
    #[error("a magic-link token is 32 to 64 characters of [A-Za-z0-9_-]")]
    LinkToken,
}

/// A one-time code: [`CODE_LENGTHS`] characters of [`CODE_ALPHABET`].
///
/// ```
/// use futureauth_proto::OtpCode;
/// assert!(OtpCode::parse("a1b2c3").is_ok());
/// assert!(OtpCode::parse("BUY NOW").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct OtpCode(String);

impl OtpCode {
    /// Checks the form of a code.
    pub fn parse(raw: &str) -> Result<Self, InvalidCode> {
        let ok =
            CODE_LENGTHS.contains(&raw.len()) && raw.bytes().all(|b| CODE_ALPHABET.contains(&b));
        ok.then(|| Self(raw.to_string())).ok_or(InvalidCode::Code)
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A magic-link token: [`LINK_TOKEN_LENGTHS`] characters of `[A-Za-z0-9_-]`.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkToken(String);

impl LinkToken {
    /// Checks the form of a token.
    pub fn parse(raw: &str) -> Result<Self, InvalidCode> {
        let ok = LINK_TOKEN_LENGTHS.contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        ok.then(|| Self(raw.to_string()))
            .ok_or(InvalidCode::LinkToken)
    }

    /// The token.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// Secrets stay out of logs.
impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpCode(***)")
    }
}

impl fmt::Debug for LinkToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkToken(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert!(OtpCode::parse("123456").is_ok());
        assert!(OtpCode::parse("ab12").is_ok());
        assert!(OtpCode::parse("abcdefghijkl").is_ok());
        for bad in [
            "",
            "123",
            "12 34",
            "ABCDEF",
            "abcdefghijklm",
            "12345\0",
            "buy pills",
        ] {
            assert!(OtpCode::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn link_tokens() {
        assert!(LinkToken::parse(&"a".repeat(43)).is_ok());
        assert!(LinkToken::parse("V1StGXR8_Z5jdHi6B-myTV1StGXR8_Z5jdHi6B-myTabcdef").is_ok());
        for bad in [
            "short".to_string(),
            "a".repeat(65),
            format!("{}!", "a".repeat(40)),
        ] {
            assert!(LinkToken::parse(&bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            format!("{:?}", LinkToken::parse(&"s".repeat(40)).unwrap()),
            "LinkToken(***)"
        );
    }
}
