//! The fingerprint of a send request, to tell a retried request from a different one under
//! the same `Idempotency-Key`.
//!
//! It is an HMAC-SHA256 keyed by the server secret, not a plain hash: the input (destination,
//! code, link) has little entropy, so a plain hash in a database dump would give back the
//! numbers and live codes. It is only computed and stored when an idempotency key is given.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::{non_empty_secret, Config, ServerSecret, FINGERPRINT_KEY_NAME};
use crate::error::StoreError;
use crate::store::Store;

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

// Here, beside the HMAC it keys, rather than in config.rs: it reads the store, and
// configuration sits below the store.
impl Config {
    /// The key of the request fingerprint HMAC: `--server-secret` when given, else a random
    /// key kept in the database (created by the first instance that needs it), so that every
    /// instance on one database agrees with no configuration and an `Idempotency-Key`
    /// retried on another instance, or after a restart, replays.
    pub async fn server_secret(&self, store: &Store) -> Result<ServerSecret, StoreError> {
        if let Some(s) = non_empty_secret(&self.server_secret) {
            return Ok(ServerSecret::Configured(s.as_bytes().to_vec().into()));
        }
        let hex_key = store.server_secret(FINGERPRINT_KEY_NAME).await?;
        hex::decode(hex_key)
            .map(|key| ServerSecret::Stored(key.into()))
            .map_err(|e| StoreError::Corrupt(format!("request fingerprint key: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_and_unambiguous() {
        let a = Fingerprinter::new(&ServerSecret::Configured(b"k".repeat(32).into()));
        let b = Fingerprinter::new(&ServerSecret::Configured(b"j".repeat(32).into()));
        let parts = ["sms", "+12015550123", "123456", ""];
        assert_eq!(a.fingerprint(&parts), a.fingerprint(&parts));
        assert_ne!(a.fingerprint(&parts), b.fingerprint(&parts));
        assert_ne!(a.fingerprint(&["ab", "c"]), a.fingerprint(&["a", "bc"]));
        assert_eq!(a.fingerprint(&parts).len(), 64);
    }
}
