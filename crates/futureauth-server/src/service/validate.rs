//! Input validation: channels, destinations, codes, tokens and callback URLs.
//!
//! The rules are strict on purpose: only short codes and URL-safe tokens are accepted, never
//! free text, so the service cannot be used as a spam relay.

use url::Url;

use crate::error::ServiceError;

/// Delivery channel of a send request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// One-time code by email.
    Email,
    /// One-time code by SMS.
    Sms,
    /// Magic link by email.
    MagicLink,
}

impl Channel {
    /// Parses the wire name.
    pub fn parse(s: &str) -> Result<Channel, ServiceError> {
        match s {
            "email" => Ok(Channel::Email),
            "sms" => Ok(Channel::Sms),
            "magic_link" => Ok(Channel::MagicLink),
            other => Err(ServiceError::validation(
                "unknown_channel",
                format!(
                    "unknown channel `{}`: use \"email\", \"sms\" or \"magic_link\"",
                    other.chars().take(40).collect::<String>()
                ),
            )),
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::MagicLink => "magic_link",
        }
    }
}

/// Checks an email address: one `@`, a dotted domain, no spaces, quotes, angle brackets,
/// commas or control characters, at most 254 characters.
pub fn email(s: &str) -> Result<(), ServiceError> {
    let bad = || {
        ServiceError::validation(
            "invalid_destination",
            "destination must be a plain email address such as user@example.com",
        )
    };
    if s.is_empty() || s.len() > 254 {
        return Err(bad());
    }
    if s.chars().any(|c| {
        c.is_whitespace()
            || c.is_control()
            || matches!(
                c,
                '<' | '>' | ',' | ';' | '"' | '(' | ')' | '[' | ']' | '\\'
            )
    }) {
        return Err(bad());
    }
    let (local, domain) = s.split_once('@').ok_or_else(bad)?;
    if local.is_empty() || local.len() > 64 || domain.contains('@') {
        return Err(bad());
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2
        || labels
            .iter()
            .any(|l| l.is_empty() || l.len() > 63 || l.starts_with('-') || l.ends_with('-'))
    {
        return Err(bad());
    }
    Ok(())
}

/// Checks an E.164 phone number: `+` then 8 to 15 digits, the first not 0.
pub fn e164(s: &str) -> Result<(), ServiceError> {
    let digits = s.strip_prefix('+').unwrap_or("");
    let ok = (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        Ok(())
    } else {
        Err(ServiceError::validation(
            "invalid_destination",
            "destination must be an E.164 phone number: + then 8 to 15 digits, e.g. +15551234567",
        ))
    }
}

/// Checks a one-time code: 4 to 32 ASCII letters or digits.
pub fn code(s: &str) -> Result<(), ServiceError> {
    if (4..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(ServiceError::validation(
            "invalid_code",
            "code must be 4 to 32 ASCII letters or digits",
        ))
    }
}

/// Checks a magic-link token: 16 to 128 characters of `[A-Za-z0-9_-]`.
pub fn token(s: &str) -> Result<(), ServiceError> {
    if (16..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Ok(())
    } else {
        Err(ServiceError::validation(
            "invalid_code",
            "for magic_link, code must be a token of 16 to 128 characters [A-Za-z0-9_-]",
        ))
    }
}

/// Parses an http(s) URL and returns it with its ASCII origin (`https://host[:port]`).
pub fn http_url(s: &str) -> Result<(Url, String), String> {
    let url = Url::parse(s).map_err(|e| format!("`{s}` is not a valid URL: {e}"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!("`{s}` must be an http or https URL"));
    }
    if url.host_str().is_none_or_empty() {
        return Err(format!("`{s}` has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("`{s}` must not contain credentials"));
    }
    let origin = url.origin().ascii_serialization();
    Ok((url, origin))
}

trait NoneOrEmpty {
    fn is_none_or_empty(&self) -> bool;
}

impl NoneOrEmpty for Option<&str> {
    fn is_none_or_empty(&self) -> bool {
        self.map(str::is_empty).unwrap_or(true)
    }
}

/// Normalises an allowed origin given by an admin (`https://App.example.com/` → `https://app.example.com`).
pub fn origin(s: &str) -> Result<String, String> {
    http_url(s).map(|(_, o)| o)
}

/// Appends `token=<urlencoded token>` to the callback URL's query (before any fragment).
pub fn build_link(callback: &Url, token: &str) -> String {
    let mut url = callback.clone();
    url.query_pairs_mut().append_pair("token", token);
    url.to_string()
}

/// Checks an SMS country-code prefix such as `+1` or `+44`.
pub fn sms_prefix(s: &str) -> Result<(), String> {
    let digits = s.strip_prefix('+').unwrap_or("");
    if (1..=6).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!(
            "SMS prefix `{s}` must be + followed by 1 to 6 digits, e.g. +44"
        ))
    }
}

/// Masks a destination for storage after delivery: `jo***@example.com`, `+1555***67`.
pub fn mask_destination(dest: &str) -> String {
    if let Some((local, domain)) = dest.split_once('@') {
        let keep: String = local.chars().take(2).collect();
        format!("{keep}***@{domain}")
    } else {
        let chars: Vec<char> = dest.chars().collect();
        if chars.len() <= 7 {
            return "***".into();
        }
        let head: String = chars[..5].iter().collect();
        let tail: String = chars[chars.len() - 2..].iter().collect();
        format!("{head}***{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(email("a@b.co").is_ok());
        assert!(email("first.last+tag@sub.example.com").is_ok());
        for bad in [
            "",
            "a",
            "a@b",
            "a@@b.co",
            "a b@c.co",
            "a@b..co",
            "<a@b.co>",
            "a@b.co,c@d.co",
            "a@-b.co",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn phones() {
        assert!(e164("+15551234567").is_ok());
        assert!(e164("+44123456").is_ok());
        for bad in [
            "15551234567",
            "+1555",
            "+1234567890123456",
            "+1555abc4567",
            "+05551234567",
            "+",
        ] {
            assert!(e164(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn codes_and_tokens() {
        assert!(code("123456").is_ok());
        assert!(code("ab12").is_ok());
        assert!(code("123").is_err());
        assert!(code("12 34").is_err());
        assert!(code("buy cheap pills at spam.example").is_err());
        assert!(token("abcdefghij_-KLMNOP").is_ok());
        assert!(token("short").is_err());
        assert!(token("abcdefghijklmnop!").is_err());
    }

    #[test]
    fn links() {
        let (u, o) = http_url("https://App.Example.com/auth/cb").unwrap();
        assert_eq!(o, "https://app.example.com");
        assert_eq!(
            build_link(&u, "tok_EN-1"),
            "https://app.example.com/auth/cb?token=tok_EN-1"
        );
        let (u, _) = http_url("http://localhost:3000/cb?next=%2Fhome#frag").unwrap();
        assert_eq!(
            build_link(&u, "abc"),
            "http://localhost:3000/cb?next=%2Fhome&token=abc#frag"
        );
        assert!(http_url("javascript:alert(1)").is_err());
        assert!(http_url("ftp://x.com/").is_err());
    }

    #[test]
    fn masking() {
        assert_eq!(mask_destination("john@example.com"), "jo***@example.com");
        assert_eq!(mask_destination("+15551234567"), "+1555***67");
    }
}
