//! Masked addresses: what an address-change notice says of the new address.
//!
//! The notice goes to the address a user had, and the person reading it there may not be
//! the person who asked (a shared or lost mailbox, a recycled phone number). So it names
//! the new address only masked: enough for the owner to recognise their own address or to
//! see that it is not theirs, never the whole of it. The SDK masks before anything goes on
//! the wire; the server accepts nothing but this shape, so the field cannot carry free text.

use std::fmt;

use crate::email::Email;
use crate::phone::Phone;

/// The stars that stand for the hidden part.
const STARS_EMAIL: &str = "***";
const STARS_PHONE: &str = "******";

/// The text is not a masked address of the shape [`MaskedAddress`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a masked address such as a***@example.com or +44 ****** 789")]
pub struct InvalidMaskedAddress;

/// A new address, masked: `a***@example.com` (the local part's first letter or digit, else
/// `*`, and the domain) or `+44 ****** 789` (the country calling code and the last three
/// digits).
///
/// ```
/// use futureauth_proto::{Email, MaskedAddress, Phone};
/// let email = Email::parse("ada.lovelace@example.com").unwrap();
/// assert_eq!(MaskedAddress::email(&email).as_str(), "a***@example.com");
/// let phone = Phone::parse("+44 20 7946 0958").unwrap();
/// assert_eq!(MaskedAddress::phone(&phone).as_str(), "+44 ****** 958");
/// assert!(MaskedAddress::parse("a***@example.com").is_ok());
/// assert!(MaskedAddress::parse("Click https://evil.example").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MaskedAddress(String);

impl MaskedAddress {
    /// The mask of an email address.
    pub fn email(email: &Email) -> Self {
        let (local, domain) = email.as_str().split_once('@').unwrap_or(("", ""));
        let first = local
            .chars()
            .next()
            .filter(char::is_ascii_alphanumeric)
            .unwrap_or('*');
        Self(format!("{first}{STARS_EMAIL}@{domain}"))
    }

    /// The mask of a phone number.
    pub fn phone(phone: &Phone) -> Self {
        let digits = phone.as_str().trim_start_matches('+');
        let tail = &digits[digits.len().saturating_sub(3)..];
        Self(format!("+{} {STARS_PHONE} {tail}", phone.calling_code()))
    }

    /// Checks that `s` is exactly a mask this type writes: a letter, digit or `*`, `***@`
    /// and a domain an [`Email`] accepts; or `+`, an existing calling code, ` ****** ` and
    /// three digits.
    pub fn parse(s: &str) -> Result<Self, InvalidMaskedAddress> {
        if let Some((local, domain)) = s.split_once('@') {
            let mut chars = local.chars();
            let first = chars.next().ok_or(InvalidMaskedAddress)?;
            let ok = (first.is_ascii_lowercase() || first.is_ascii_digit() || first == '*')
                && chars.as_str() == STARS_EMAIL
                && Email::parse(&format!("a@{domain}")).is_ok_and(|e| e.domain() == domain);
            return ok.then(|| Self(s.to_owned())).ok_or(InvalidMaskedAddress);
        }
        let rest = s.strip_prefix('+').ok_or(InvalidMaskedAddress)?;
        let mut parts = rest.split(' ');
        let (Some(code), Some(STARS_PHONE), Some(tail), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(InvalidMaskedAddress);
        };
        let digits = |t: &str, n: std::ops::RangeInclusive<usize>| {
            n.contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit())
        };
        let known_code = digits(code, 1..=3)
            && !code.starts_with('0')
            && code
                .parse::<u16>()
                .is_ok_and(|c| phonenumber::metadata::DATABASE.by_code(&c).is_some());
        if known_code && digits(tail, 3..=3) {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidMaskedAddress)
        }
    }

    /// The mask as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MaskedAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_round_trip_and_hide_the_middle() {
        for raw in ["ada@example.com", "Z9@sub.example.co.uk", "+x@example.com"] {
            let m = MaskedAddress::email(&Email::parse(raw).unwrap());
            assert_eq!(MaskedAddress::parse(m.as_str()), Ok(m.clone()), "{raw}");
            assert!(m.as_str().contains("***@"), "{m}");
        }
        assert_eq!(
            MaskedAddress::email(&Email::parse("+x@example.com").unwrap()).as_str(),
            "****@example.com"
        );
        for raw in ["+15551234567", "+442079460958", "+4915123456789"] {
            let m = MaskedAddress::phone(&Phone::parse(raw).unwrap());
            assert_eq!(MaskedAddress::parse(m.as_str()), Ok(m.clone()), "{raw}");
            assert!(!m.as_str().contains(&raw[4..raw.len() - 3]), "{m}");
        }
        assert_eq!(
            MaskedAddress::phone(&Phone::parse("+15551234567").unwrap()).as_str(),
            "+1 ****** 567"
        );
    }

    #[test]
    fn only_the_mask_shape_passes() {
        for bad in [
            "",
            "ada@example.com",
            "ad***@example.com",
            "A***@example.com",
            "a***@example",
            "a***@exa mple.com",
            "a***@example.com\nClick here",
            "a***@<b>.com",
            "+44 ****** 9580",
            "+44 ***** 958",
            "+44 ****** 95a",
            "+999 ****** 958",
            "+44  ****** 958",
            "+44 ****** 958 x",
            "visit https://evil.example",
        ] {
            assert_eq!(
                MaskedAddress::parse(bad),
                Err(InvalidMaskedAddress),
                "{bad:?}"
            );
        }
    }
}
