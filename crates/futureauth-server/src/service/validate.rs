//! Parsing a send request into types: the channel's destination and secret, and callback
//! URLs.
//!
//! The rules are strict on purpose: the service relays only what the SDKs generate (short
//! codes of one alphabet, URL-safe link tokens), never free text, so a leaked key cannot turn
//! it into a spam relay. The rules themselves live in `futureauth_proto`, shared with the SDK.

use futureauth_proto::InvalidCallbackUrl;
use futureauth_proto::{
    Channel, Email, LinkToken, MaskedAddress, Message, OtpCode, Phone, Purpose,
};
use url::Url;

use crate::error::{ErrorCode, ServiceError};

/// Why a code is sent, which decides its wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodePurpose {
    /// A sign-in code (every client before 0.6 sends only these).
    SignIn,
    /// A code to a new address a signed-in user asked to change to or add.
    ConfirmAddress,
}

/// What a send request asks for, parsed.
#[derive(Debug, Clone)]
pub enum Content {
    /// A one-time code by email.
    EmailCode {
        /// Normalised address.
        to: Email,
        /// The code.
        code: OtpCode,
        /// Sign-in or confirming a new address.
        purpose: CodePurpose,
    },
    /// A one-time code by SMS.
    SmsCode {
        /// E.164 number.
        to: Phone,
        /// The code.
        code: OtpCode,
        /// Sign-in or confirming a new address.
        purpose: CodePurpose,
    },
    /// A magic link by email.
    MagicLink {
        /// Normalised address.
        to: Email,
        /// The token the link carries.
        token: LinkToken,
        /// The code that completes the same sign-in (or confirmation), written beside the
        /// link (0.6 clients; always there for a confirm-address link).
        code: Option<OtpCode>,
        /// Sign-in, or confirming a new email address (the link opens the app's confirm
        /// page, which confirms only for the signed-in user who asked).
        purpose: CodePurpose,
    },
    /// An address-change notice by email: no code.
    EmailNotice {
        /// Normalised address (the one the user has).
        to: Email,
        /// The address asked for, masked.
        new_address: MaskedAddress,
    },
    /// An address-change notice by SMS: no code.
    SmsNotice {
        /// E.164 number (the one the user has).
        to: Phone,
        /// The address asked for, masked.
        new_address: MaskedAddress,
    },
}

/// A 422 `invalid_request` naming what is wrong with the purpose.
fn bad_purpose(message: &str) -> ServiceError {
    ServiceError::validation(ErrorCode::InvalidRequest, message)
}

impl Content {
    /// Checks the destination, the purpose and the code, token or notice of `m` for its
    /// channel. A sign-in or confirm-address code must be a code; a notice must have an
    /// empty `code` (it signs nobody in) and a masked `new_address`; a confirm-address
    /// magic link must carry its code in `link_code`; `new_address` belongs to notices only.
    pub fn parse(m: &Message) -> Result<Content, ServiceError> {
        let code = || {
            OtpCode::parse(&m.code)
                .map_err(|e| ServiceError::validation(ErrorCode::InvalidCode, e.to_string()))
        };
        let purpose = m.purpose();
        if purpose != Purpose::AddressChangeNotice && m.new_address.is_some() {
            return Err(bad_purpose(
                "new_address belongs to an address_change_notice only",
            ));
        }
        let code_purpose = match purpose {
            Purpose::SignIn => CodePurpose::SignIn,
            Purpose::ConfirmAddress => CodePurpose::ConfirmAddress,
            Purpose::AddressChangeNotice => return Self::notice(m),
        };
        Ok(match m.channel {
            Channel::Email => Content::EmailCode {
                to: email(&m.destination)?,
                code: code()?,
                purpose: code_purpose,
            },
            Channel::Sms => Content::SmsCode {
                to: e164(&m.destination)?,
                code: code()?,
                purpose: code_purpose,
            },
            Channel::MagicLink => {
                let link_code = m
                    .link_code
                    .as_deref()
                    .map(OtpCode::parse)
                    .transpose()
                    .map_err(|e| {
                        ServiceError::validation(ErrorCode::InvalidCode, format!("link_code: {e}"))
                    })?;
                // A confirm-address email always offers the code too: a person whose browser
                // is signed out, or another device, still has a way to confirm.
                if code_purpose == CodePurpose::ConfirmAddress && link_code.is_none() {
                    return Err(ServiceError::validation(
                        ErrorCode::InvalidCode,
                        "a confirm_address magic_link carries its code in link_code",
                    ));
                }
                Content::MagicLink {
                    to: email(&m.destination)?,
                    token: LinkToken::parse(&m.code).map_err(|e| {
                        ServiceError::validation(
                            ErrorCode::InvalidCode,
                            format!("for magic_link, {e}"),
                        )
                    })?,
                    code: link_code,
                    purpose: code_purpose,
                }
            }
        })
    }

    /// An address-change notice: no code, a masked new address.
    fn notice(m: &Message) -> Result<Content, ServiceError> {
        if !m.code.is_empty() || m.link_code.is_some() {
            return Err(ServiceError::validation(
                ErrorCode::InvalidCode,
                "an address_change_notice carries no code: send `code` as an empty string",
            ));
        }
        let new_address = m
            .new_address
            .as_deref()
            .ok_or_else(|| bad_purpose("an address_change_notice needs new_address"))
            .and_then(|a| {
                MaskedAddress::parse(a).map_err(|e| bad_purpose(&format!("new_address: {e}")))
            })?;
        Ok(match m.channel {
            Channel::Email => Content::EmailNotice {
                to: email(&m.destination)?,
                new_address,
            },
            Channel::Sms => Content::SmsNotice {
                to: e164(&m.destination)?,
                new_address,
            },
            Channel::MagicLink => {
                return Err(bad_purpose(
                    "an address_change_notice goes as email or sms, not magic_link",
                ))
            }
        })
    }

    /// The channel.
    pub fn channel(&self) -> Channel {
        match self {
            Content::EmailCode { .. } | Content::EmailNotice { .. } => Channel::Email,
            Content::SmsCode { .. } | Content::SmsNotice { .. } => Channel::Sms,
            Content::MagicLink { .. } => Channel::MagicLink,
        }
    }

    /// Whether this is a code (or link) someone types or opens to sign in or confirm: a
    /// project's test mode answers a test code for these only.
    pub fn carries_code(&self) -> bool {
        !matches!(
            self,
            Content::EmailNotice { .. } | Content::SmsNotice { .. }
        )
    }

    /// The destination as delivered and stored.
    pub fn destination(&self) -> &str {
        match self {
            Content::EmailCode { to, .. }
            | Content::MagicLink { to, .. }
            | Content::EmailNotice { to, .. } => to.as_str(),
            Content::SmsCode { to, .. } | Content::SmsNotice { to, .. } => to.as_str(),
        }
    }

    /// The code or token; for a notice, the masked address it names (what tells two
    /// notices apart for an idempotency key).
    pub fn secret(&self) -> &str {
        match self {
            Content::EmailCode { code, .. } | Content::SmsCode { code, .. } => code.as_str(),
            Content::MagicLink { token, .. } => token.as_str(),
            Content::EmailNotice { new_address, .. } | Content::SmsNotice { new_address, .. } => {
                new_address.as_str()
            }
        }
    }

    /// Whom the per-destination limit counts: the mailbox of an email address (`ada+1@x` and
    /// `ada+2@x` are one person), the number of a phone.
    pub fn recipient_key(&self) -> String {
        match self {
            Content::EmailCode { to, .. }
            | Content::MagicLink { to, .. }
            | Content::EmailNotice { to, .. } => to.mailbox(),
            Content::SmsCode { to, .. } | Content::SmsNotice { to, .. } => to.as_str().to_owned(),
        }
    }
}

/// Parses a plain email address (trimmed, lower-cased).
pub fn email(s: &str) -> Result<Email, ServiceError> {
    Email::parse(s).map_err(|_| {
        ServiceError::validation(
            ErrorCode::InvalidDestination,
            "destination must be a plain email address such as user@example.com",
        )
    })
}

/// Parses a phone number written exactly in E.164, as the SDKs send it (`+15551234567`; no
/// spaces or dashes).
pub fn e164(s: &str) -> Result<Phone, ServiceError> {
    Phone::parse(s)
        .ok()
        .filter(|p| p.as_str() == s)
        .ok_or_else(|| {
            ServiceError::validation(
                ErrorCode::InvalidDestination,
                "destination must be an E.164 phone number: + then 8 to 15 digits, e.g. +12015550123",
            )
        })
}

/// Parses an http(s) URL and returns it with its ASCII origin (`https://host[:port]`).
pub fn http_url(s: &str) -> Result<(Url, String), String> {
    // The URL parser's own words ("relative URL without a base") mean nothing to whoever
    // typed the field: say what a full URL looks like instead.
    let url = Url::parse(s).map_err(|_| {
        format!("`{s}` is not a full URL: start it with http:// or https://, e.g. http://localhost:3000")
    })?;
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

/// A magic-link callback URL by the rule the SDK applies too
/// ([`futureauth_proto::CallbackUrl`]): absolute http(s) with a host, no credentials, and no
/// `token` query parameter in any letter case (the link would carry the attacker's token
/// beside the real one). Returns it with its origin.
pub fn callback_url(s: &str) -> Result<(Url, String), String> {
    let cb = futureauth_proto::CallbackUrl::parse(s).map_err(|e| format!("`{s}` {e}"))?;
    let origin = cb.as_url().origin().ascii_serialization();
    Ok((cb.into_url(), origin))
}

/// A whole magic link (`callback?…&token=…`) by the same rule: exactly one `token`
/// parameter, spelled so, and otherwise a valid callback. Returns the callback URL, its
/// origin and the token; the error says whether the token count was wrong.
pub fn magic_link(s: &str) -> Result<(Url, String, String), (InvalidCallbackUrl, String)> {
    let (cb, token) =
        futureauth_proto::CallbackUrl::parse_link(s).map_err(|e| (e, format!("`{s}` {e}")))?;
    let origin = cb.as_url().origin().ascii_serialization();
    Ok((cb.into_url(), origin, token))
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

/// Masks a destination for storage after delivery: `jo***@example.com`, `+1555***67`.
pub fn mask_destination(dest: &str) -> String {
    // A project webhook's URL: its origin (a path or query may hold the app's own secret).
    if let Ok(url) = url::Url::parse(dest) {
        if matches!(url.scheme(), "http" | "https") {
            return format!("{}/…", url.origin().ascii_serialization());
        }
    }
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

/// Names the console's own sign-in messages use: no project may take them, so that no
/// project's mail can pass for the console's.
const RESERVED_NAMES: [&str; 2] = ["futureauthconsole", "futureauth"];

/// Letters and digits of `s`, lower-cased: what a reader sees, without case, spaces,
/// punctuation or invisible characters.
fn folded(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether `text` would make a message look like the console's: a project named like it
/// ("FutureAuth Console", "futureauth", whatever the case or spacing), or any text naming
/// the console ("FutureAuth Console" anywhere).
pub fn mentions_console(text: &str) -> bool {
    let f = folded(text);
    RESERVED_NAMES.contains(&f.as_str()) || f.contains(RESERVED_NAMES[0])
}

/// A project's display name: trimmed, 1 to 100 characters, no control characters, and not
/// the console's (see [`mentions_console`]).
pub fn project_name(raw: &str) -> Result<String, String> {
    let name = raw.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err("the name must be 1 to 100 characters".into());
    }
    if mentions_console(&name) {
        return Err(
            "this name is reserved for the server's own console; choose your app's name".into(),
        );
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::outbox::bare_message;

    fn msg(channel: Channel, destination: &str, code: &str) -> Message {
        Message {
            code: code.into(),
            ..bare_message(channel, destination)
        }
    }

    /// The code `m` is refused with.
    fn refused(m: Message) -> ErrorCode {
        match Content::parse(&m) {
            Err(ServiceError::Validation { code, .. }) => code,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn purposes() {
        let notice = |channel, to: &str, code: &str, new: Option<&str>| Message {
            purpose: Some(Purpose::AddressChangeNotice),
            new_address: new.map(str::to_owned),
            ..msg(channel, to, code)
        };
        let c =
            Content::parse(&notice(Channel::Sms, "+12015550123", "", Some("a***@b.co"))).unwrap();
        assert!(matches!(c, Content::SmsNotice { .. }) && !c.carries_code());
        assert!(matches!(
            Content::parse(&notice(Channel::Email, "a@b.co", "", Some("+1 ****** 123"))),
            Ok(Content::EmailNotice { .. })
        ));
        // A notice with a code, or without its masked address, or as a magic link.
        for (channel, code, new, expected) in [
            (Channel::Email, "123456", Some("a***@b.co"), "invalid_code"),
            (Channel::Email, "", None, "invalid_request"),
            (Channel::Email, "", Some("free text"), "invalid_request"),
            (Channel::MagicLink, "", Some("a***@b.co"), "invalid_request"),
        ] {
            let got = refused(notice(channel, "a@b.co", code, new));
            assert_eq!(got, expected, "{channel:?} {code:?} {new:?}");
        }
        // A confirm-address code needs a code; as a link it carries one in link_code.
        let confirm = |channel, code: &str| Message {
            purpose: Some(Purpose::ConfirmAddress),
            ..msg(channel, "a@b.co", code)
        };
        assert!(matches!(
            Content::parse(&confirm(Channel::Email, "a1b2c3")),
            Ok(Content::EmailCode {
                purpose: CodePurpose::ConfirmAddress,
                ..
            })
        ));
        assert_eq!(refused(confirm(Channel::Email, "")), "invalid_code");
        let token = "V1StGXR8_Z5jdHi6B-myTV1StGXR8_Z5jdHi6B-myTabcdef";
        assert_eq!(refused(confirm(Channel::MagicLink, token)), "invalid_code");
        assert!(matches!(
            Content::parse(&Message {
                link_code: Some("a1b2c3".into()),
                ..confirm(Channel::MagicLink, token)
            }),
            Ok(Content::MagicLink {
                purpose: CodePurpose::ConfirmAddress,
                code: Some(_),
                ..
            })
        ));
        // A sign-in code without a code, and new_address on anything but a notice.
        assert_eq!(refused(msg(Channel::Email, "a@b.co", "")), "invalid_code");
        assert_eq!(
            refused(Message {
                new_address: Some("a***@b.co".into()),
                ..msg(Channel::Email, "a@b.co", "a1b2c3")
            }),
            "invalid_request"
        );
    }

    #[test]
    fn contents() {
        let c = Content::parse(&msg(Channel::Email, " Ada+x@Example.com", "a1b2c3")).unwrap();
        assert_eq!(c.destination(), "ada+x@example.com");
        assert_eq!(c.recipient_key(), "ada@example.com");
        assert!(Content::parse(&msg(Channel::Sms, "+12015550123", "123456")).is_ok());
        let token = "V1StGXR8_Z5jdHi6B-myTV1StGXR8_Z5jdHi6B-myTabcdef";
        assert!(Content::parse(&msg(Channel::MagicLink, "a@b.co", token)).is_ok());
        for (channel, destination, code, expected) in [
            (Channel::Email, "a@b.co", "A1B2C3", "invalid_code"),
            (Channel::Email, "a@b.co", "abcdefghijklm", "invalid_code"),
            (
                Channel::Sms,
                "+1 201 555 0123",
                "123456",
                "invalid_destination",
            ),
            (Channel::Sms, "+1555", "123456", "invalid_destination"),
            (Channel::MagicLink, "a@b.co", "123456", "invalid_code"),
            (Channel::Email, "a@b.co\0", "123456", "invalid_destination"),
        ] {
            let got = refused(msg(channel, destination, code));
            assert_eq!(got, expected, "{channel:?} {destination:?} {code:?}");
        }
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
        assert_eq!(
            mask_destination("https://app.example.com/hooks?token=s3cret"),
            "https://app.example.com/…"
        );
    }
}
