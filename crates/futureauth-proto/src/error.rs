//! The error vocabulary of the SDK's routes and of the server: the envelope every error
//! answer has, the codes both speak (one name, one status), and the few places where they
//! differ on purpose, each with its reason.
//!
//! Each crate keeps its own `ErrorCode` for the codes only it answers with, declared with
//! [`error_code_table!`](crate::error_code_table), which takes the shared ones from
//! [`CommonCode`]: a shared code's name, status and meaning are written once, here.

use serde::{Deserialize, Serialize};

/// `Retry-After` (seconds) of every 503 of the SDK and the server: database fail-overs and
/// restarts are measured in seconds, and an overloaded server sheds load for as long.
pub const RETRY_UNAVAILABLE_SECS: u64 = 2;

/// The body of every JSON error answer, of the SDK's routes and of the server alike:
/// `{"error": {"code": "snake_case", "message": "human text"}}`.
// (Its doc is the schema's description in both OpenAPI documents: no example code here.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

impl ErrorBody {
    /// The body of an error with this code and message.
    ///
    /// ```
    /// use futureauth_proto::{CommonCode, ErrorBody};
    /// let body = ErrorBody::new(CommonCode::RateLimited.as_str(), "slow down");
    /// assert_eq!(
    ///     serde_json::to_string(&body).unwrap(),
    ///     r#"{"error":{"code":"rate_limited","message":"slow down"}}"#
    /// );
    /// let read: ErrorBody = serde_json::from_str(r#"{"error":{"code":"x","message":"y"}}"#).unwrap();
    /// assert_eq!(read.error.code, "x");
    /// ```
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
            },
        }
    }
}

/// What went wrong: a code for programs, a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Stable, machine-readable, `snake_case`; the error-code tables of the SDK's README and
    /// of the server's README list every one with its HTTP status.
    #[cfg_attr(feature = "utoipa", schema(example = "rate_limited"))]
    pub code: String,
    /// For people; it may change between versions, so programs read `code`.
    #[cfg_attr(
        feature = "utoipa",
        schema(example = "too many requests, retry in 30 s")
    )]
    pub message: String,
}

/// Declares [`CommonCode`] from one table: variant, wire code, HTTP status, meaning.
macro_rules! common_codes {
    ($($variant:ident => $code:literal, $status:ident, $doc:literal;)+) => {
        /// The error codes that the SDK's routes and the server both answer with: one name
        /// and one HTTP status for each condition, whoever speaks it. Each crate's own
        /// `ErrorCode` embeds all of them (see [`error_code_table!`](crate::error_code_table)).
        ///
        /// Where the two differ on purpose, [`DIVERGENCES`] says so and why.
        ///
        /// ```
        /// use futureauth_proto::CommonCode;
        /// assert_eq!(CommonCode::RateLimited.as_str(), "rate_limited");
        /// assert_eq!(CommonCode::RateLimited.status().as_u16(), 429);
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum CommonCode {
            $(#[doc = $doc] $variant,)+
        }

        impl CommonCode {
            /// Every shared code, in table order.
            pub const ALL: &'static [CommonCode] = &[$(Self::$variant,)+];

            /// The wire form (`snake_case`).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)+
                }
            }

            /// The HTTP status it is always sent with.
            pub const fn status(self) -> http::StatusCode {
                match self {
                    $(Self::$variant => http::StatusCode::$status,)+
                }
            }

            /// What it means, in one sentence.
            pub const fn description(self) -> &'static str {
                match self {
                    $(Self::$variant => $doc,)+
                }
            }
        }
    };
}

common_codes! {
    MalformedJson => "malformed_json", BAD_REQUEST, "The body is not valid JSON.";
    PayloadTooLarge => "payload_too_large", PAYLOAD_TOO_LARGE, "The request body is over 16 KiB.";
    UnsupportedMediaType => "unsupported_media_type", UNSUPPORTED_MEDIA_TYPE, "The body is not sent as `Content-Type: application/json`.";
    InvalidRequest => "invalid_request", UNPROCESSABLE_ENTITY, "A field is missing, of the wrong type or invalid (such as bytes the database refuses, like NUL); the message names it.";
    CallbackNotAllowed => "callback_not_allowed", UNPROCESSABLE_ENTITY, "The magic link's page is not on an allowed origin: the app's own, or the project's on the FutureAuth server.";
    RateLimited => "rate_limited", TOO_MANY_REQUESTS, "A rate limit was hit; `Retry-After` says when to try again.";
    InternalError => "internal_error", INTERNAL_SERVER_ERROR, "An unexpected server-side failure; details go to the log, never to the client.";
}

impl std::fmt::Display for CommonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who answers with a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Speaker {
    /// The `futureauth` SDK's routes and extractors.
    Sdk,
    /// `futureauth-server`.
    Server,
}

/// One condition that the SDK and the server answer under different names or statuses,
/// on purpose: who says what, and why it stays so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Divergence {
    /// The condition, in a few words.
    pub condition: &'static str,
    /// Each code answered for it: who, the code, its HTTP status.
    pub codes: &'static [(Speaker, &'static str, u16)],
    /// Why they differ, and why the difference is kept.
    pub reason: &'static str,
}

/// The conditions the SDK and the server answer differently, and why. Every other code
/// name the two share is a [`CommonCode`]; a test of the server checks both against the
/// two `ErrorCode` tables.
pub const DIVERGENCES: &[Divergence] = &[
    Divergence {
        condition: "the database is unreachable or too slow for now",
        codes: &[
            (Speaker::Sdk, "unavailable", 503),
            (Speaker::Server, "storage_unavailable", 503),
            (Speaker::Server, "database_unavailable", 503),
        ],
        reason: "One status (503) and one `Retry-After` (`RETRY_UNAVAILABLE_SECS`) for all \
            three; the names stay because each is a documented contract that clients and \
            operators read: browsers and apps switch on the SDK's `unavailable`, the \
            server's README, llms.txt, OpenAPI document and resilience benchmarks name \
            `storage_unavailable` (a request's database call failed) and \
            `database_unavailable` (`/readyz`: the probe failed, with the reason). Published \
            futureauth 0.4/0.5 clients read only the status.",
    },
    Divergence {
        condition: "`invalid_code`: two conditions under one name",
        codes: &[
            (Speaker::Sdk, "invalid_code", 400),
            (Speaker::Server, "invalid_code", 422),
        ],
        reason: "The SDK's is a wrong code typed at verify (or none pending): a failed \
            attempt, 400 like `code_expired` and `too_many_attempts` beside it. The \
            server's is the `code` field of a send that is not of the accepted form: a \
            field error, 422 like its other field errors. Both are documented in their \
            README and relied on by clients (the SDK's pages switch on it), so neither \
            name nor status moves; the SDK never passes the server's on (a refused send \
            is its 502 `delivery_failed`).",
    },
];

/// Declares a crate's `ErrorCode` from its own codes, each with its wire name, HTTP status
/// and meaning: every [`CommonCode`] is a variant of it too (same name), whose name, status
/// and meaning come from here. It gets `ALL`, `as_str`, `status`, `description`, `common`
/// and `From<CommonCode>`.
///
/// ```
/// futureauth_proto::error_code_table! {
///     /// The codes of my service.
///     pub enum ErrorCode {
///         Teapot => "teapot", IM_A_TEAPOT, "Short and stout.";
///     }
/// }
/// assert_eq!(ErrorCode::RateLimited.status().as_u16(), 429);
/// assert_eq!(ErrorCode::Teapot.as_str(), "teapot");
/// assert_eq!(ErrorCode::ALL.len(), 8);
/// assert_eq!(ErrorCode::from(futureauth_proto::CommonCode::MalformedJson), ErrorCode::MalformedJson);
/// ```
#[macro_export]
macro_rules! error_code_table {
    (
        @common [$($common:ident),+]
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($variant:ident => $code:literal, $status:ident, $doc:literal;)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $(
                #[doc = concat!(
                    "The shared code [`CommonCode::", stringify!($common),
                    "`](futureauth_proto::CommonCode::", stringify!($common), ")."
                )]
                $common,
            )+
            $(#[doc = $doc] $variant,)+
        }

        impl $name {
            /// Every code: the shared ones, then this crate's own, in table order.
            pub const ALL: &'static [$name] = &[$(Self::$common,)+ $(Self::$variant,)+];

            /// The wire form (`snake_case`).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$common => $crate::CommonCode::$common.as_str(),)+
                    $(Self::$variant => $code,)+
                }
            }

            /// The HTTP status this code is always sent with.
            pub const fn status(self) -> $crate::__private::StatusCode {
                match self {
                    $(Self::$common => $crate::CommonCode::$common.status(),)+
                    $(Self::$variant => $crate::__private::StatusCode::$status,)+
                }
            }

            /// What it means, in one sentence.
            pub const fn description(self) -> &'static str {
                match self {
                    $(Self::$common => $crate::CommonCode::$common.description(),)+
                    $(Self::$variant => $doc,)+
                }
            }

            /// The shared code this is, if it is one.
            pub const fn common(self) -> Option<$crate::CommonCode> {
                match self {
                    $(Self::$common => Some($crate::CommonCode::$common),)+
                    $(Self::$variant => None,)+
                }
            }
        }

        /// Every shared code is one of this table's (the match is exhaustive).
        impl From<$crate::CommonCode> for $name {
            fn from(code: $crate::CommonCode) -> Self {
                match code {
                    $($crate::CommonCode::$common => Self::$common,)+
                }
            }
        }
    };
    ($($table:tt)+) => {
        // Every `CommonCode`: the compiler holds this list to the table above (a name that
        // is none, or one left out, makes `From<CommonCode>` fail to compile).
        $crate::error_code_table! {
            @common [
                MalformedJson, PayloadTooLarge, UnsupportedMediaType, InvalidRequest,
                CallbackNotAllowed, RateLimited, InternalError
            ]
            $($table)+
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_codes_are_unique_snake_case_errors() {
        for (i, c) in CommonCode::ALL.iter().enumerate() {
            let s = c.as_str();
            assert!(s.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'));
            assert!(c.status().is_client_error() || c.status().is_server_error());
            assert!(CommonCode::ALL[..i].iter().all(|o| o.as_str() != s));
        }
    }

    /// A divergence is between the two speakers, and never about a shared code.
    #[test]
    fn divergences_name_no_shared_code_and_both_speakers() {
        for d in DIVERGENCES {
            for (_, code, status) in d.codes {
                assert!(
                    CommonCode::ALL.iter().all(|c| c.as_str() != *code),
                    "{code}"
                );
                assert!((400..600).contains(status), "{code}");
            }
            for who in [Speaker::Sdk, Speaker::Server] {
                assert!(d.codes.iter().any(|(s, ..)| *s == who), "{}", d.condition);
            }
            assert!(!d.reason.is_empty());
        }
    }

    #[test]
    fn the_envelope_round_trips() {
        let body = ErrorBody::new("invalid_request", "email: missing");
        let text = serde_json::to_string(&body).unwrap();
        assert_eq!(
            text,
            r#"{"error":{"code":"invalid_request","message":"email: missing"}}"#
        );
        assert_eq!(serde_json::from_str::<ErrorBody>(&text).unwrap(), body);
        // Unknown fields (a later version's) are ignored.
        let wider = r#"{"error":{"code":"a","message":"b","field":"c"},"x":1}"#;
        assert_eq!(
            serde_json::from_str::<ErrorBody>(wider).unwrap(),
            ErrorBody::new("a", "b")
        );
    }
}
