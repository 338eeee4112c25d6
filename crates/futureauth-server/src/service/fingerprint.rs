//! The fingerprint of a send request, to tell a retried request from a different one under
//! the same `Idempotency-Key`.
//!
//! It is an HMAC-SHA256 keyed by the server secret, not a plain hash: the input (destination,
//! code, link) has little entropy, so a plain hash in a database dump would give back the
//! numbers and live codes. It is only computed and stored when an idempotency key is given.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::ServerSecret;

/// Computes request fingerprints with one server secret.
#[derive(Clone)]
pub struct Fingerprinter {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Fingerprinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fingerprinter(***)")
    }
}

impl Fingerprinter {
    /// A fingerprinter keyed by `secret`.
    pub fn new(secret: &ServerSecret) -> Fingerprinter {
        // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.key())
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        Fingerprinter { mac }
    }

    /// Hex HMAC over the NUL-separated parts.
    pub fn fingerprint(&self, parts: &[&str]) -> String {
        let mut mac = self.mac.clone();
        for part in parts {
            mac.update(part.as_bytes());
            mac.update(&[0]);
        }
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_and_unambiguous() {
        let a = Fingerprinter::new(&ServerSecret::Configured(b"k".repeat(32)));
        let b = Fingerprinter::new(&ServerSecret::Configured(b"j".repeat(32)));
        let parts = ["sms", "+12015550123", "123456", ""];
        assert_eq!(a.fingerprint(&parts), a.fingerprint(&parts));
        assert_ne!(a.fingerprint(&parts), b.fingerprint(&parts));
        assert_ne!(a.fingerprint(&["ab", "c"]), a.fingerprint(&["a", "bc"]));
        assert_eq!(a.fingerprint(&parts).len(), 64);
    }
}
