//! The wire format of `POST /api/v1/otp/send`, spoken by every futureauth version.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The path of the send endpoint on a FutureAuth server.
pub const SEND_PATH: &str = "/api/v1/otp/send";

/// What a message carries and how it travels.
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

/// One code or link to deliver: the JSON body of `POST /api/v1/otp/send`.
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
/// };
/// assert_eq!(
///     serde_json::to_string(&m).unwrap(),
///     r#"{"channel":"email","destination":"user@example.com","code":"a1b2c3","project_name":"My App"}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// How to deliver it.
    pub channel: Channel,
    /// Normalised email or E.164 phone number.
    pub destination: String,
    /// The one-time code, or the magic-link token.
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
}

impl Message {
    /// The one line a development outbox prints for this message, the same in the SDK's
    /// `DevOutbox` and in the FutureAuth server's, so that a person or a script reads both
    /// alike: `[futureauth dev outbox] to ada@example.com: email code k3x9qa`, `…: SMS code
    /// k3x9qa`, `…: magic link https://app/api/auth/magic-link?token=… (or code k3x9qa)`.
    pub fn dev_outbox_line(&self) -> String {
        let what = match self.channel {
            Channel::Email => format!("email code {}", self.code),
            Channel::Sms => format!("SMS code {}", self.code),
            Channel::MagicLink => {
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
