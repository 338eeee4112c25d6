//! Generating and hashing the secrets: one-time codes, magic-link tokens, session tokens.
//!
//! Every secret comes from the operating system's CSPRNG ([`OsRng`]) and only its hash is
//! stored. Long tokens (256 bits) are hashed with plain SHA-256, which is enough for
//! uniformly random values and matches the format of futureauth 0.5 databases. Short codes
//! are hashed with HMAC-SHA256 under a key that is *not* in the database, so a database dump
//! alone cannot be used to brute-force a live 6-character code offline.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use hmac::{Hmac, Mac};
use rand::{rngs::OsRng, Rng, RngCore};
use secrecy::{ExposeSecret, SecretBox};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

// The alphabet of one-time codes: lower-case letters and digits (input is case-folded).
use futureauth_proto::CODE_ALPHABET;

/// Prefix of keyed code hashes; lets migrations tell them from older unkeyed hashes.
pub(crate) const CODE_HASH_PREFIX: &str = "hmac-sha256:";

/// A random one-time code of `len` characters from `[a-z0-9]`.
///
/// `gen_range` samples without modulo bias (rejection sampling).
pub(crate) fn generate_code(len: usize) -> String {
    (0..len)
        .map(|_| char::from(CODE_ALPHABET[OsRng.gen_range(0..CODE_ALPHABET.len())]))
        .collect()
}

/// The number a browser that asked for a magic link shows, to be typed where the link is
/// opened on another device: two digits, `10` to `99`, as authenticator apps use.
pub(crate) fn generate_match_number() -> String {
    OsRng.gen_range(10..=99u8).to_string()
}

/// A random 256-bit token, URL-safe base64 (43 characters).
pub(crate) fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A random public identifier (128 bits, 22 URL-safe characters) for rows.
pub(crate) fn generate_id() -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 hex of a high-entropy token (session tokens, magic-link tokens).
pub(crate) fn hash_token(token: &str) -> String {
    hex_digest(&Sha256::digest(token.as_bytes()).into())
}

/// Lower-case hex of a 32-byte digest, written into one allocation of the right size: every
/// session check that reads the database hashes its token, and `hex::encode`'s char-by-char
/// collect cost about 2,000 instructions a check (`scripts/check-cost`).
fn hex_digest(digest: &[u8; 32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    for (pair, byte) in out.chunks_exact_mut(2).zip(digest) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
    // Hex digits are ASCII: the check cannot fail, and costs less than a push per digit.
    std::str::from_utf8(&out).unwrap_or_default().to_owned()
}

/// Case-folds and trims what a person typed as a code.
pub(crate) fn normalize_code(code: &str) -> String {
    code.trim().to_ascii_lowercase()
}

/// Constant-time string equality (for strings of one length; the length is not secret).
/// The bytes' differences are OR-ed together with no early exit and only the result goes
/// through `subtle`'s barrier: comparing byte by byte with `subtle` (a barrier per byte)
/// cost about 800 instructions for two 64-digit hashes on every uncached session check.
pub(crate) fn ct_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    diff.ct_eq(&0).into()
}

/// The key of the keyed code hash. Derived from the project secret key (which lives in the
/// app's environment, never in its database), or random per process in development.
/// A `SecretBox`: zeroed when dropped, and its `Debug` shows no key.
#[derive(Debug)]
pub(crate) struct CodeKey(SecretBox<[u8; 32]>);

impl CodeKey {
    /// Derives the key from the project secret key.
    pub(crate) fn derive(secret: &str) -> Self {
        Self(SecretBox::new(Box::new(hmac_sha256(
            secret.as_bytes(),
            b"futureauth/otp-code-key/v1",
        ))))
    }

    /// A random key; codes then only verify within this process.
    pub(crate) fn random() -> Self {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        Self(SecretBox::new(Box::new(key)))
    }

    /// Keyed hash of a code, bound to the identifier it was sent to.
    pub(crate) fn hash_code(&self, identifier: &str, code: &str) -> String {
        let mut message = Vec::with_capacity(identifier.len() + code.len() + 1);
        message.extend_from_slice(identifier.as_bytes());
        message.push(0);
        message.extend_from_slice(code.as_bytes());
        format!(
            "{CODE_HASH_PREFIX}{}",
            hex_digest(&hmac_sha256(self.0.expose_secret(), &message))
        )
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn codes_have_the_requested_length_and_alphabet() {
        for len in [6, 8, 12] {
            let code = generate_code(len);
            assert_eq!(code.len(), len);
            assert!(code.bytes().all(|b| CODE_ALPHABET.contains(&b)), "{code}");
        }
    }

    #[test]
    fn code_characters_are_uniform() {
        // 36 symbols; with 360k draws each expects 10k. A modulo-biased generator over a
        // byte (256 % 36 = 4) would give the first 4 symbols ~12.5% more: far outside 5%.
        let mut counts: HashMap<char, u32> = HashMap::new();
        for _ in 0..60_000 {
            for c in generate_code(6).chars() {
                *counts.entry(c).or_default() += 1;
            }
        }
        assert_eq!(counts.len(), 36);
        for (c, n) in counts {
            assert!((9_500..=10_500).contains(&n), "symbol {c} drawn {n} times");
        }
    }

    #[test]
    fn tokens_carry_256_bits() {
        let t = generate_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(&t).unwrap().len(), 32);
        assert_ne!(t, generate_token());
    }

    #[test]
    fn token_hash_matches_futureauth_05_format() {
        // futureauth 0.5 stored hex(SHA-256(token)); upgraded sessions must keep working.
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn code_hash_is_keyed_and_bound_to_the_identifier() {
        let a = CodeKey::derive("vx_sec_one");
        let b = CodeKey::derive("vx_sec_two");
        let h = a.hash_code("a@b.co", "abc123");
        assert!(h.starts_with(CODE_HASH_PREFIX));
        assert_eq!(h, a.hash_code("a@b.co", "abc123"));
        assert_ne!(h, b.hash_code("a@b.co", "abc123"));
        assert_ne!(h, a.hash_code("c@b.co", "abc123"));
        assert!(!h.contains(&hex::encode(Sha256::digest(b"abc123"))));
    }

    #[test]
    fn hex_digest_is_the_hex_crates_encoding() {
        for digest in [[0u8; 32], [0xff; 32], Sha256::digest(b"abc").into()] {
            assert_eq!(hex_digest(&digest), hex::encode(digest));
        }
    }

    #[test]
    fn ct_eq_compares_whole_strings() {
        assert!(ct_eq("abc", "abc"));
        assert!(!ct_eq("abc", "abd"));
        assert!(!ct_eq("abc", "abcd"));
    }
}
