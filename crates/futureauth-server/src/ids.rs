//! Identifiers that come from requests, parsed at the edge so that only well-formed values
//! ever reach SQL (a NUL byte, for one, makes Postgres fail the whole statement).

use std::fmt;

/// Id of the internal project that owns operator sign-in messages (the console's; the
/// server's, not an operator's). Real project ids are `prj_` + 20 random characters, so this
/// one cannot clash.
pub const CONSOLE_PROJECT_ID: &str = "prj_console";

/// Whether `raw` can be one of our opaque identifiers as a client names them in a path
/// (a project id `prj_…`, a key or token prefix `vx_sec_…`/`vx_op_…`): 1 to 64 ASCII letters,
/// digits, `_` and `-` (keys are base64url). Anything else names nothing we store, and must
/// not reach SQL.
pub fn is_identifier(raw: &str) -> bool {
    (1..=64).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Length of the random part of a message id.
pub const MESSAGE_ID_RANDOM_LEN: usize = 24;

/// A message id: `msg_` and 24 characters of `[a-z0-9]`, as [`MessageId::generate`] makes them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageId(String);

impl MessageId {
    /// A fresh random id.
    pub fn generate() -> Self {
        Self(random_id("msg_", MESSAGE_ID_RANDOM_LEN))
    }

    /// Parses an id given by a client; `None` when it cannot be one of ours.
    pub fn parse(raw: &str) -> Option<Self> {
        let tail = raw.strip_prefix("msg_")?;
        let ok = tail.len() == MESSAGE_ID_RANDOM_LEN
            && tail
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        ok.then(|| Self(raw.to_owned()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Longest accepted `Idempotency-Key`.
pub const IDEMPOTENCY_KEY_MAX_LEN: usize = 255;

/// An `Idempotency-Key` header value: 1 to 255 visible ASCII characters (`!` to `~`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Parses the raw header bytes.
    pub fn parse(raw: &[u8]) -> Option<Self> {
        let ok = (1..=IDEMPOTENCY_KEY_MAX_LEN).contains(&raw.len())
            && raw.iter().all(|b| (0x21..=0x7e).contains(b));
        // Visible ASCII is UTF-8.
        ok.then(|| std::str::from_utf8(raw).ok().map(|s| Self(s.to_owned())))
            .flatten()
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A random identifier: `prefix` + `len` lowercase alphanumerics.
pub fn random_id(prefix: &str, len: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rngs::OsRng;
    let tail: String = (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_plain_ascii() {
        for ok in [
            "prj_console",
            "prj_4e1hf45xsjl0m4vfb59u",
            "vx_sec_4f9a2",
            "vx_op_AB-2",
        ] {
            assert!(is_identifier(ok), "{ok}");
        }
        for bad in ["", "prj_\0", "prj.x", "vx op", "é", &"a".repeat(65)] {
            assert!(!is_identifier(bad), "{bad:?}");
        }
    }

    #[test]
    fn message_ids() {
        let id = MessageId::generate();
        assert_eq!(MessageId::parse(id.as_str()), Some(id));
        for bad in [
            "",
            "msg_",
            "a\0b",
            "msg_3k9x0q2m5n7p1r4t6v8w0y2\0",
            "msg_3K9X0Q2M5N7P1R4T6V8W0Y2Z",
            "msg_3k9x0q2m5n7p1r4t6v8w0y2z0",
            "prj_3k9x0q2m5n7p1r4t6v8w0y2z",
        ] {
            assert_eq!(MessageId::parse(bad), None, "{bad:?}");
        }
        assert!(MessageId::parse("msg_3k9x0q2m5n7p1r4t6v8w0y2z").is_some());
    }

    #[test]
    fn idempotency_keys() {
        assert!(IdempotencyKey::parse(b"req-1").is_some());
        assert!(IdempotencyKey::parse(&[b'k'; 255]).is_some());
        for bad in [
            &b""[..],
            b"has space",
            b"nul\0",
            b"tab\t",
            &[b'k'; 256],
            "é".as_bytes(),
        ] {
            assert!(IdempotencyKey::parse(bad).is_none(), "{bad:?}");
        }
    }
}
