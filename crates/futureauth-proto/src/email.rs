//! Email addresses, normalised so that one person is one user.

use std::fmt;
use std::str::FromStr;

/// The input is not a plain email address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a plain email address such as user@example.com")]
pub struct InvalidEmail;

/// A trimmed, lower-case email address of a plain shape: `local@domain.tld`, no spaces,
/// quotes, comments, angle brackets or control characters, at most 254 bytes.
///
/// ```
/// use futureauth_proto::Email;
/// assert_eq!(Email::parse("  Ada@Example.COM ").unwrap().as_str(), "ada@example.com");
/// assert!(Email::parse("a@b.com\r\nBcc: x@y.com").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

impl Email {
    /// Parses and normalises an email address.
    pub fn parse(raw: &str) -> Result<Self, InvalidEmail> {
        let email = raw.trim().to_lowercase();
        let (local, domain) = email.split_once('@').ok_or(InvalidEmail)?;
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
            Ok(Self(email))
        } else {
            Err(InvalidEmail)
        }
    }

    /// The normalised address, as stored and delivered.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The domain part.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }

    /// The mailbox the address reaches, for counting per-address limits: the local part
    /// without its `+tag` (and, at Gmail, without dots), so that `ada+1@x` and `ada+2@x`
    /// share one budget. Never used as the delivery address.
    ///
    /// ```
    /// use futureauth_proto::Email;
    /// assert_eq!(Email::parse("a.d.a+x@gmail.com").unwrap().mailbox(), "ada@gmail.com");
    /// assert_eq!(Email::parse("a.da+x@example.com").unwrap().mailbox(), "a.da@example.com");
    /// ```
    pub fn mailbox(&self) -> String {
        let (local, domain) = self.0.rsplit_once('@').unwrap_or((&self.0, ""));
        let local = local.split_once('+').map_or(local, |(base, _)| base);
        let local = if matches!(domain, "gmail.com" | "googlemail.com") {
            local.replace('.', "")
        } else {
            local.to_string()
        };
        let local = if local.is_empty() { "+" } else { &local };
        format!("{local}@{domain}")
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Email {
    type Err = InvalidEmail;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<Email> for String {
    fn from(email: Email) -> Self {
        email.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_lowercases() {
        assert_eq!(
            Email::parse(" A.B+c@Ex-ample.ORG\n").unwrap().as_str(),
            "a.b+c@ex-ample.org"
        );
    }

    #[test]
    fn rejects_what_is_not_a_plain_address() {
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
            "<a@b.co>",
            "a@b.co,c@d.co",
            "\"a\"@b.co",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Email::parse(&format!("{}@b.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn mailbox_folds_tags() {
        let m = |s: &str| Email::parse(s).unwrap().mailbox();
        assert_eq!(m("ada+1@x.io"), m("ada+2@x.io"));
        assert_eq!(m("ada@x.io"), "ada@x.io");
        assert_ne!(m("ada@x.io"), m("bob@x.io"));
        assert_eq!(m("+only@x.io"), "+@x.io");
    }
}
