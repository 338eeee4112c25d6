//! Email and phone normalisation, so that one person is one user.

use std::fmt;

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

    /// The normalised text, as stored in the database.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Email(s) | Self::Phone(s) => s,
        }
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Trims and lower-cases an email address and checks its shape.
///
/// ```
/// assert_eq!(futureauth::normalize_email("  Ada@Example.COM ").unwrap(), "ada@example.com");
/// assert!(futureauth::normalize_email("not-an-email").is_err());
/// ```
pub fn normalize_email(raw: &str) -> Result<String> {
    let email = raw.trim().to_lowercase();
    let (local, domain) = email.split_once('@').ok_or(FutureAuthError::InvalidEmail)?;
    let valid_local = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
    let valid_domain = domain.len() <= 253
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if valid_local && valid_domain && email.len() <= 254 {
        Ok(email)
    } else {
        Err(FutureAuthError::InvalidEmail)
    }
}

/// Normalises a phone number to E.164: drops spaces, dashes, dots and brackets,
/// turns a leading `00` into `+`, then requires `+`, a non-zero first digit and 8 to 15 digits.
///
/// ```
/// assert_eq!(futureauth::normalize_phone("+1 (555) 123-4567").unwrap(), "+15551234567");
/// assert!(futureauth::normalize_phone("5551234567").is_err()); // no country code
/// ```
pub fn normalize_phone(raw: &str) -> Result<String> {
    let compact: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{a0}'))
        .collect();
    let digits = compact
        .strip_prefix('+')
        .or_else(|| compact.strip_prefix("00"))
        .ok_or(FutureAuthError::InvalidPhone)?;
    let valid = (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if valid {
        Ok(format!("+{digits}"))
    } else {
        Err(FutureAuthError::InvalidPhone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(
            normalize_email(" A.B+c@Ex-ample.ORG\n").unwrap(),
            "a.b+c@ex-ample.org"
        );
    }

    #[test]
    fn bad_emails_are_rejected() {
        for bad in [
            "",
            "@",
            "a@",
            "@b.com",
            "a@b",
            "a b@c.com",
            "a@b..com",
            "a@-b.com",
            "a@@b.com",
            "a\u{0}@b.com",
            "a@b.com\r\nBcc: x@y.com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?} accepted");
        }
        assert!(normalize_email(&format!("{}@b.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn phones_are_normalised_to_e164() {
        assert_eq!(
            normalize_phone("+44 20 7946 0958").unwrap(),
            "+442079460958"
        );
        assert_eq!(
            normalize_phone("0044.20.7946.0958").unwrap(),
            "+442079460958"
        );
        assert_eq!(normalize_phone("+1-555-123-4567").unwrap(), "+15551234567");
    }

    #[test]
    fn bad_phones_are_rejected() {
        for bad in [
            "",
            "+",
            "12345678",
            "+0123456789",
            "+1234567",
            "+1234567890123456",
            "+1555abc4567",
            "+1555١٢٣4567",
        ] {
            assert!(normalize_phone(bad).is_err(), "{bad:?} accepted");
        }
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
