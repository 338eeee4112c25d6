//! Signatures of provider status webhooks: Svix (Resend) and Twilio.
//!
//! Both are HMACs over data the provider chose; each check recomputes the MAC and compares
//! with `Mac::verify_slice` (constant time), so a forger learns nothing from timing.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use sha1::Sha1;
use sha2::Sha256;
use thiserror::Error;

/// Svix refuses events whose timestamp is further than this from now (seconds), so a
/// captured request cannot be replayed later.
pub const SVIX_TOLERANCE_SECS: i64 = 5 * 60;

/// Why a webhook signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignatureError {
    /// A required header is absent.
    #[error("missing header {0}")]
    Missing(&'static str),
    /// A header is not in the provider's format.
    #[error("malformed header {0}")]
    Malformed(&'static str),
    /// The timestamp is outside [`SVIX_TOLERANCE_SECS`] of now.
    #[error("timestamp outside the tolerance")]
    Expired,
    /// No signature matches.
    #[error("signature mismatch")]
    Mismatch,
}

/// A bad signing secret in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("RESEND_WEBHOOK_SECRET must be the `whsec_…` signing secret shown by Resend (base64 after the prefix)")]
pub struct SecretError;

/// The Svix signing secret (`whsec_` + base64 key), parsed once at start-up; redacted in
/// `Debug`.
#[derive(Debug, Clone)]
pub struct SvixSecret(SecretSlice<u8>);

impl SvixSecret {
    /// Parses `whsec_<base64>`.
    pub fn parse(s: &str) -> Result<SvixSecret, SecretError> {
        let b64 = s.trim().strip_prefix("whsec_").ok_or(SecretError)?;
        let key = STANDARD.decode(b64).map_err(|_| SecretError)?;
        if key.is_empty() {
            return Err(SecretError);
        }
        Ok(SvixSecret(key.into()))
    }

    /// Checks a Svix-signed request: `svix-id`, `svix-timestamp` (Unix seconds, within the
    /// tolerance of `now_secs`) and `svix-signature` (space-separated `v1,<base64>`; one
    /// match suffices, so keys can be rotated) over `id.timestamp.body`.
    pub fn verify(
        &self,
        id: Option<&str>,
        timestamp: Option<&str>,
        signatures: Option<&str>,
        body: &[u8],
        now_secs: i64,
    ) -> Result<(), SignatureError> {
        let id = id.ok_or(SignatureError::Missing("svix-id"))?;
        let ts_text = timestamp.ok_or(SignatureError::Missing("svix-timestamp"))?;
        let signatures = signatures.ok_or(SignatureError::Missing("svix-signature"))?;
        let ts: i64 = ts_text
            .parse()
            .map_err(|_| SignatureError::Malformed("svix-timestamp"))?;
        if (now_secs - ts).abs() > SVIX_TOLERANCE_SECS {
            return Err(SignatureError::Expired);
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.expose_secret())
            .map_err(|_| SignatureError::Mismatch)?;
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(ts_text.as_bytes());
        mac.update(b".");
        mac.update(body);
        for candidate in signatures.split_whitespace() {
            let Some(sig) = candidate.strip_prefix("v1,") else {
                continue;
            };
            let Ok(sig) = STANDARD.decode(sig) else {
                continue;
            };
            if mac.clone().verify_slice(&sig).is_ok() {
                return Ok(());
            }
        }
        Err(SignatureError::Mismatch)
    }
}

/// Checks `X-Twilio-Signature`: base64 HMAC-SHA1, keyed with the account's auth token, of
/// `url` (the configured public URL of the callback, never one built from request headers)
/// followed by every POST parameter as `name` + `value`, sorted by name.
pub fn verify_twilio(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    signature: Option<&str>,
) -> Result<(), SignatureError> {
    let signature = signature.ok_or(SignatureError::Missing("x-twilio-signature"))?;
    let sig = STANDARD
        .decode(signature.trim())
        .map_err(|_| SignatureError::Malformed("x-twilio-signature"))?;
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes())
        .map_err(|_| SignatureError::Mismatch)?;
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    mac.verify_slice(&sig).map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Svix's published test vector.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn svix(sigs: &str, body: &[u8], now: i64) -> Result<(), SignatureError> {
        SvixSecret::parse(SECRET).unwrap().verify(
            Some(ID),
            Some(&TS.to_string()),
            Some(sigs),
            body,
            now,
        )
    }

    #[test]
    fn svix_accepts_the_published_vector_and_rotated_lists() {
        assert_eq!(svix(SIG, BODY, TS), Ok(()));
        assert_eq!(svix(&format!("v1,AAAA {SIG}"), BODY, TS + 299), Ok(()));
    }

    #[test]
    fn svix_refuses_a_changed_body_or_signature() {
        assert_eq!(
            svix(SIG, br#"{"test": 2432232315}"#, TS),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            svix("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OF=", BODY, TS),
            Err(SignatureError::Mismatch)
        );
        // Another scheme's signature is not accepted as v1.
        assert_eq!(
            svix(&SIG.replace("v1,", "v2,"), BODY, TS),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn svix_refuses_replays_outside_the_tolerance() {
        assert_eq!(
            svix(SIG, BODY, TS + SVIX_TOLERANCE_SECS + 1),
            Err(SignatureError::Expired)
        );
        assert_eq!(
            svix(SIG, BODY, TS - SVIX_TOLERANCE_SECS - 1),
            Err(SignatureError::Expired)
        );
    }

    #[test]
    fn svix_needs_every_header_and_a_valid_secret() {
        let s = SvixSecret::parse(SECRET).unwrap();
        assert_eq!(
            s.verify(None, Some("1"), Some(SIG), BODY, 1),
            Err(SignatureError::Missing("svix-id"))
        );
        assert_eq!(
            s.verify(Some(ID), Some("soon"), Some(SIG), BODY, 1),
            Err(SignatureError::Malformed("svix-timestamp"))
        );
        assert_eq!(
            SvixSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err(),
            SecretError
        );
        assert_eq!(SvixSecret::parse("whsec_!!").unwrap_err(), SecretError);
    }

    // Twilio's published example (twilio-python's request validator tests).
    fn twilio_params() -> Vec<(String, String)> {
        [
            ("To", "+18005551212"),
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
    const TWILIO_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    #[test]
    fn twilio_accepts_the_published_vector() {
        assert_eq!(
            verify_twilio(
                "12345",
                TWILIO_URL,
                &twilio_params(),
                Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=")
            ),
            Ok(())
        );
    }

    #[test]
    fn twilio_refuses_another_url_token_param_or_signature() {
        let good = Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        // A Host header chosen by the attacker changes the URL: refused.
        assert_eq!(
            verify_twilio(
                "12345",
                "https://evil.example/myapp.php?foo=1&bar=2",
                &twilio_params(),
                good
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_twilio("54321", TWILIO_URL, &twilio_params(), good),
            Err(SignatureError::Mismatch)
        );
        let mut changed = twilio_params();
        changed[3].1 = "1235".into();
        assert_eq!(
            verify_twilio("12345", TWILIO_URL, &changed, good),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_twilio("12345", TWILIO_URL, &twilio_params(), None),
            Err(SignatureError::Missing("x-twilio-signature"))
        );
        assert_eq!(
            verify_twilio("12345", TWILIO_URL, &twilio_params(), Some("not base64!")),
            Err(SignatureError::Malformed("x-twilio-signature"))
        );
    }
}
