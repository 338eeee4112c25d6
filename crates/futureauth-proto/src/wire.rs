//! The wire format of `POST /api/v1/otp/send`, spoken by every futureauth version.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The path of the send endpoint on a FutureAuth server.
pub const SEND_PATH: &str = "/api/v1/otp/send";

/// What a message carries and how it travels: the protocol's channels. Two types stand
/// beside it, each narrower or wider on purpose: the SDK's public `OtpChannel` (`Email`,
/// `Phone`, fixed by its spec) says which of a user's addresses a code goes to and maps onto
/// this in one `From` impl, so `send_otp` cannot be handed a magic link; the server's outbox
/// stores `MessageChannel`, these three plus `webhook` for the project events it queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A one-time code by email.
    Email,
    /// A one-time code by SMS.
    Sms,
    /// A magic sign-in link by email.
    MagicLink,
}

impl Channel {
    /// The wire name: `email`, `sms` or `magic_link`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
            Self::MagicLink => "magic_link",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The input names no channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel {0:?}: use \"email\", \"sms\" or \"magic_link\"")]
pub struct UnknownChannel(pub String);

impl FromStr for Channel {
    type Err = UnknownChannel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "email" => Ok(Self::Email),
            "sms" => Ok(Self::Sms),
            "magic_link" => Ok(Self::MagicLink),
            other => Err(UnknownChannel(other.chars().take(40).collect())),
        }
    }
}

/// Why a message is sent, which decides its wording. Absent on the wire (as 0.4/0.5
/// clients send it) means [`Purpose::SignIn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// A sign-in code or magic link.
    SignIn,
    /// A code to a new address that a signed-in user asked to change to (or add): typing
    /// it proves control of the address. Email or SMS; for an email, also `magic_link`
    /// (`code` the link's token, `link` the app's confirm page, `link_code` the code,
    /// which must be there): the link confirms only in the app for the user who asked.
    ConfirmAddress,
    /// A notice to the address a user has that a change to `new_address` was asked for. It
    /// carries no code (`code` is empty) and signs nobody in. Email or SMS.
    AddressChangeNotice,
}

impl Purpose {
    /// The wire name: `sign_in`, `confirm_address` or `address_change_notice`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignIn => "sign_in",
            Self::ConfirmAddress => "confirm_address",
            Self::AddressChangeNotice => "address_change_notice",
        }
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One code, link or notice to deliver: the JSON body of `POST /api/v1/otp/send`.
///
/// ```
/// use futureauth_proto::{Channel, Message};
/// let m = Message {
///     channel: Channel::Email,
///     destination: "user@example.com".into(),
///     code: "a1b2c3".into(),
///     project_name: "My App".into(),
///     link: None,
///     callback_url: None,
///     locale: None,
///     link_code: None,
///     purpose: None,
///     new_address: None,
/// };
/// assert_eq!(
///     serde_json::to_string(&m).unwrap(),
///     r#"{"channel":"email","destination":"user@example.com","code":"a1b2c3","project_name":"My App"}"#
/// );
/// ```
///
/// An address-change notice has no code; it names the new address masked:
///
/// ```
/// use futureauth_proto::{Channel, Message, Purpose};
/// let m: Message = serde_json::from_str(
///     r#"{"channel":"sms","destination":"+447700900123","code":"","purpose":"address_change_notice","new_address":"a***@example.com"}"#,
/// ).unwrap();
/// assert_eq!(m.purpose(), Purpose::AddressChangeNotice);
/// assert_eq!(
///     m.dev_outbox_line(),
///     "[futureauth dev outbox] to +447700900123: address-change notice (new address a***@example.com)"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// How to deliver it.
    pub channel: Channel,
    /// Normalised email or E.164 phone number.
    pub destination: String,
    /// The one-time code, or the magic-link token; empty for an address-change notice.
    pub code: String,
    /// The app's project name (servers show the project's registered name instead).
    #[serde(default)]
    pub project_name: String,
    /// For magic links: the full link (`callback_url?token=...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// For magic links: the page the link opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// The recipient's language as a BCP 47 tag (`de-AT`); the server falls back to the base
    /// language, then English. Left out of the JSON when `None`, so bodies stay what 0.4/0.5
    /// clients send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// For magic links: a short code that completes the same sign-in (for another device, a
    /// PWA or an app that cannot open the link); the server writes it into the email beside
    /// the link. Left out of the JSON when `None`, so bodies stay what 0.4/0.5 clients send,
    /// and their emails stay link-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_code: Option<String>,
    /// Why the message is sent; `None` (and so left out of the JSON, as 0.4/0.5 clients
    /// send it) is a sign-in. See [`Message::purpose`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<Purpose>,
    /// For an address-change notice only: the new address, masked
    /// ([`MaskedAddress`](crate::MaskedAddress): `a***@example.com`, `+44 ****** 789`), so
    /// that whoever reads the old address learns what happened but not the new address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_address: Option<String>,
}

impl Message {
    /// Why the message is sent: its `purpose`, a sign-in when absent.
    pub fn purpose(&self) -> Purpose {
        self.purpose.unwrap_or(Purpose::SignIn)
    }

    /// The one line a development outbox prints for this message, the same in the SDK's
    /// `DevOutbox` and in the FutureAuth server's, so that a person or a script reads both
    /// alike: `[futureauth dev outbox] to ada@example.com: email code k3x9qa`, `…: SMS code
    /// k3x9qa`, `…: magic link https://app/api/auth/magic-link?token=… (or code k3x9qa)`,
    /// `…: email code k3x9qa (confirm new address)` (sent with a link: `… or link
    /// https://…`), `…: address-change notice (new address a***@example.com)`.
    pub fn dev_outbox_line(&self) -> String {
        let what = match (self.purpose(), self.channel) {
            (Purpose::AddressChangeNotice, _) => format!(
                "address-change notice (new address {})",
                self.new_address.as_deref().unwrap_or("not given")
            ),
            (Purpose::ConfirmAddress, Channel::Email) => {
                format!("email code {} (confirm new address)", self.code)
            }
            (Purpose::ConfirmAddress, Channel::Sms) => {
                format!("SMS code {} (confirm new address)", self.code)
            }
            (Purpose::ConfirmAddress, Channel::MagicLink) => format!(
                "email code {} (confirm new address) or link {}",
                self.link_code.as_deref().unwrap_or("not given"),
                self.link.as_deref().unwrap_or(&self.code)
            ),
            (_, Channel::Email) => format!("email code {}", self.code),
            (_, Channel::Sms) => format!("SMS code {}", self.code),
            (_, Channel::MagicLink) => {
                let link = self.link.as_deref().unwrap_or(&self.code);
                match &self.link_code {
                    Some(code) => format!("magic link {link} (or code {code})"),
                    None => format!("magic link {link}"),
                }
            }
        };
        format!("[futureauth dev outbox] to {}: {what}", self.destination)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dev_outbox_line_names_what_to_type() {
        let mut m = Message {
            channel: Channel::MagicLink,
            destination: "ada@example.com".into(),
            code: "tok".into(),
            project_name: "X".into(),
            link: Some("http://a/api/auth/magic-link?token=tok".into()),
            callback_url: None,
            locale: None,
            link_code: Some("k3x9qa".into()),
            purpose: None,
            new_address: None,
        };
        assert_eq!(
            m.dev_outbox_line(),
            "[futureauth dev outbox] to ada@example.com: magic link http://a/api/auth/magic-link?token=tok (or code k3x9qa)"
        );
        m.channel = Channel::Email;
        m.code = "a1b2c3".into();
        assert_eq!(
            m.dev_outbox_line(),
            "[futureauth dev outbox] to ada@example.com: email code a1b2c3"
        );
        m.purpose = Some(Purpose::ConfirmAddress);
        assert_eq!(
            m.dev_outbox_line(),
            "[futureauth dev outbox] to ada@example.com: email code a1b2c3 (confirm new address)"
        );
        // A confirm-address email sent with a link: the code is link_code.
        let mut l = m.clone();
        l.channel = Channel::MagicLink;
        l.code = "tok".into();
        l.link = Some("http://a/api/auth/confirm-identifier-change?token=tok".into());
        l.link_code = Some("k3x9qa".into());
        assert_eq!(
            l.dev_outbox_line(),
            "[futureauth dev outbox] to ada@example.com: email code k3x9qa (confirm new address) or link http://a/api/auth/confirm-identifier-change?token=tok"
        );
        m.purpose = Some(Purpose::AddressChangeNotice);
        m.code = String::new();
        m.new_address = Some("+44 ****** 789".into());
        assert_eq!(
            m.dev_outbox_line(),
            "[futureauth dev outbox] to ada@example.com: address-change notice (new address +44 ****** 789)"
        );
    }

    #[test]
    fn purpose_is_left_out_unless_given() {
        let m: Message =
            serde_json::from_str(r#"{"channel":"email","destination":"a@b.co","code":"a1b2c3"}"#)
                .unwrap();
        assert_eq!((m.purpose, m.purpose()), (None, Purpose::SignIn));
        assert!(!serde_json::to_string(&m).unwrap().contains("purpose"));
        let m: Message = serde_json::from_str(
            r#"{"channel":"email","destination":"a@b.co","code":"a1b2c3","purpose":"confirm_address"}"#,
        )
        .unwrap();
        assert_eq!(m.purpose(), Purpose::ConfirmAddress);
        assert!(serde_json::to_string(&m)
            .unwrap()
            .ends_with(r#""purpose":"confirm_address"}"#));
        assert!(serde_json::from_str::<Message>(
            r#"{"channel":"email","destination":"a@b.co","code":"","purpose":"notice"}"#
        )
        .is_err());
    }

    #[test]
    fn published_bodies_parse() {
        // What futureauth 0.5.1 sends.
        let m: Message = serde_json::from_str(
            r#"{"channel":"sms","destination":"+15551234567","code":"a1b2c3","project_name":"X"}"#,
        )
        .unwrap();
        assert_eq!(m.channel, Channel::Sms);
        let m: Message = serde_json::from_str(
            r#"{"channel":"magic_link","destination":"a@b.co","code":"t","extra":1}"#,
        )
        .unwrap();
        assert_eq!(m.project_name, "");
        assert_eq!(m.locale, None);
        let m: Message = serde_json::from_str(
            r#"{"channel":"email","destination":"a@b.co","code":"t","locale":"de-AT"}"#,
        )
        .unwrap();
        assert_eq!(m.locale.as_deref(), Some("de-AT"));
        assert!(serde_json::to_string(&m)
            .unwrap()
            .ends_with(r#""locale":"de-AT"}"#));
        assert!(
            serde_json::from_str::<Message>(r#"{"channel":"fax","destination":"","code":""}"#)
                .is_err()
        );
    }

    #[test]
    fn channel_names() {
        for c in [Channel::Email, Channel::Sms, Channel::MagicLink] {
            assert_eq!(c.as_str().parse::<Channel>().unwrap(), c);
        }
        assert!("Email".parse::<Channel>().is_err());
    }
}
