//! # futureauth-proto
//!
//! The vocabulary that the `futureauth` SDK and `futureauth-server` share, written once:
//!
//! - [`Message`], [`Channel`] and [`Purpose`]: the JSON body of `POST /api/v1/otp/send`, the
//!   wire format that the published futureauth 0.4/0.5 crates speak too (they send no
//!   purpose: a sign-in); [`MaskedAddress`]: the new address as an address-change notice
//!   names it;
//! - [`Email`], [`Phone`] (with its [`Region`]) and [`Origin`]: identifiers parsed once at
//!   the edge, so that inner code never sees a raw string;
//! - [`CallbackUrl`]: the page a magic link opens (absolute http(s), no credentials, no
//!   `token` parameter of its own), checked by the same rule in the SDK and the server;
//! - [`Locale`]: the language of a message, from a send request or `Accept-Language`;
//! - [`OtpCode`] and [`LinkToken`]: the only secrets the service relays, so that it cannot
//!   be used to send free text;
//! - [`ErrorBody`]: the envelope of every error answer, `{"error": {"code", "message"}}`;
//!   [`CommonCode`]: the error codes both speak, one name and one HTTP status each, which
//!   each crate's `ErrorCode` embeds through [`error_code_table!`]; [`DIVERGENCES`]: where
//!   the two differ on purpose, and why. With the `utoipa` feature, [`ErrorBody`] is an
//!   OpenAPI schema too, for both crates' documents.
//!
//! ```
//! use futureauth_proto::{Email, Origin, Phone};
//!
//! let email: Email = " Ada+news@Example.COM ".parse().unwrap();
//! assert_eq!(email.as_str(), "ada+news@example.com");
//! assert_eq!(email.mailbox(), "ada@example.com");
//!
//! let phone = Phone::parse("+44 20 7946 0958").unwrap();
//! assert_eq!(phone.as_str(), "+442079460958");
//! assert_eq!(phone.region().unwrap().as_str(), "GB");
//!
//! let origin = Origin::parse("https://App.Example.com:443").unwrap();
//! assert_eq!(origin.to_string(), "https://app.example.com");
//! ```

#![warn(missing_docs)]

mod callback;
mod code;
mod email;
mod error;
mod locale;
mod masked;
mod origin;
mod phone;
mod text;
mod wire;

pub use callback::{CallbackUrl, InvalidCallbackUrl, TOKEN_PARAM};
pub use code::{InvalidCode, LinkToken, OtpCode, CODE_ALPHABET, CODE_LENGTHS, LINK_TOKEN_LENGTHS};
pub use email::{Email, InvalidEmail};
pub use error::{
    CommonCode, Divergence, ErrorBody, ErrorDetail, Speaker, DIVERGENCES, RETRY_UNAVAILABLE_SECS,
};
pub use locale::{InvalidLocale, Locale};
pub use masked::{InvalidMaskedAddress, MaskedAddress};
pub use origin::{InvalidOrigin, Origin, Scheme};
pub use phone::{InvalidPhone, InvalidRegion, Phone, Region};
pub use text::has_control_chars;
pub use wire::{Channel, Message, Purpose, UnknownChannel, SEND_PATH};

/// What [`error_code_table!`] expands to needs, so that its users need not depend on `http`.
#[doc(hidden)]
pub mod __private {
    pub use http::StatusCode;
}
