//! Email and phone normalisation, so that one person is one user.

use std::fmt;

use futureauth_proto::{Email, Phone};

use crate::error::{FutureAuthError, Result};

/// A normalised sign-in identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identifier {
    /// Trimmed, lower-case email address.
    Email(String),
    /// E.164 phone number: `+` and 8 to 15 digits.
    Phone(String),
}

impl Identifier {
    /// Parses an email address (anything with `@`) or else a phone number.
    pub fn parse(raw: &str) -> Result<Self> {
        if raw.contains('@') {
            normalize_email(raw).map(Self::Email)
        } else {
            normalize_phone(raw).map(Self::Phone)
        }
    }

    /// Which kind of address it is.
    pub(crate) fn kind(&self) -> crate::model::OtpChannel {
        match self {
            Self::Email(_) => crate::model::OtpChannel::Email,
            Self::Phone(_) => crate::model::OtpChannel::Phone,
        }
    }

    /// The normalised text, as stored in the database.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Email(s) | Self::Phone(s) => s,
        }
    }

    /// The address masked (`a***@example.com`, `+44 ****** 789`), as an address-change
    /// notice names it to whoever reads the old address.
    pub(crate) fn masked(&self) -> Result<futureauth_proto::MaskedAddress> {
        use futureauth_proto::MaskedAddress;
        match self {
            Self::Email(s) => Email::parse(s)
                .map(|e| MaskedAddress::email(&e))
                .map_err(|_| FutureAuthError::InvalidEmail),
            Self::Phone(s) => Phone::parse(s)
                .map(|p| MaskedAddress::phone(&p))
                .map_err(|_| FutureAuthError::InvalidPhone),
        }
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Trims and lower-cases an email address and checks its shape (the rules of
/// [`futureauth_proto::Email`]).
///
/// ```
/// assert_eq!(futureauth::normalize_email("  Ada@Example.COM ").unwrap(), "ada@example.com");
/// assert!(futureauth::normalize_email("not-an-email").is_err());
/// ```
pub fn normalize_email(raw: &str) -> Result<String> {
    Email::parse(raw)
        .map(String::from)
        .map_err(|_| FutureAuthError::InvalidEmail)
}

/// Normalises a phone number to E.164 (the rules of [`futureauth_proto::Phone`]): drops
/// spaces, dashes, dots and brackets, turns a leading `00` into `+`, and requires a known
/// country calling code and 8 to 15 digits.
///
/// ```
/// assert_eq!(futureauth::normalize_phone("+1 (555) 123-4567").unwrap(), "+15551234567");
/// assert!(futureauth::normalize_phone("5551234567").is_err()); // no country code
/// ```
pub fn normalize_phone(raw: &str) -> Result<String> {
    Phone::parse(raw)
        .map(|p| p.as_str().to_string())
        .map_err(|_| FutureAuthError::InvalidPhone)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The rules themselves are tested in futureauth-proto; these check the wrappers.
    #[test]
    fn wrappers_keep_their_answers() {
        let email = normalize_email(" A.B+c@Ex-ample.ORG\n");
        assert_eq!(email.unwrap(), "a.b+c@ex-ample.org");
        let nul_email = normalize_email("a\u{0}@b.com");
        assert!(matches!(nul_email, Err(FutureAuthError::InvalidEmail)));
        let phone = normalize_phone("0044.20.7946.0958");
        assert_eq!(phone.unwrap(), "+442079460958");
        let nul_phone = normalize_phone("+15551234567\0");
        assert!(matches!(nul_phone, Err(FutureAuthError::InvalidPhone)));
    }

    #[test]
    fn identifier_parse_picks_the_kind() {
        assert_eq!(
            Identifier::parse("X@Y.io").unwrap(),
            Identifier::Email("x@y.io".into())
        );
        assert_eq!(
            Identifier::parse("+15551234567").unwrap(),
            Identifier::Phone("+15551234567".into())
        );
    }
}
