//! A software WebAuthn authenticator for the passkey tests of the SDK (tests/passkeys.rs) and
//! of the server's console (tests/console_passkeys.rs): P-256 keys and CBOR written by hand,
//! no webauthn-rs, so that every attack can be built byte by byte (another origin or RP ID,
//! another user's handle, a counter going backwards, no user verification).
#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn unb64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).expect("base64url")
}

/// CBOR head of major type `major` with argument `n`.
pub fn cbor_head(major: u8, n: usize) -> Vec<u8> {
    let m = major << 5;
    match n {
        0..=23 => vec![m | n as u8],
        24..=255 => vec![m | 24, n as u8],
        _ => {
            let n = u16::try_from(n).unwrap();
            vec![m | 25, (n >> 8) as u8, n as u8]
        }
    }
}

pub fn cbor_text(s: &str) -> Vec<u8> {
    [cbor_head(3, s.len()), s.as_bytes().to_vec()].concat()
}

pub fn cbor_bytes(b: &[u8]) -> Vec<u8> {
    [cbor_head(2, b.len()), b.to_vec()].concat()
}

/// Flags of authenticator data.
pub const UP: u8 = 0x01;
pub const UV: u8 = 0x04;
pub const AT: u8 = 0x40;

/// A passkey on a software authenticator: its key, credential id, the user handle it was
/// made for, and its signature counter.
#[derive(Clone)]
pub struct SoftKey {
    pub key: SigningKey,
    pub credential_id: Vec<u8>,
    pub user_handle: Vec<u8>,
    pub counter: u32,
}

/// What to change in an answer, for the attacks.
#[derive(Clone, Default)]
pub struct Tamper {
    pub origin: Option<String>,
    pub rp_id: Option<String>,
    pub no_uv: bool,
    pub user_handle: Option<Vec<u8>>,
    pub counter: Option<u32>,
}

impl SoftKey {
    /// Answers registration `options` from `origin`, as `navigator.credentials.create()`.
    pub fn create(options: &Value, origin: &str, tamper: &Tamper) -> (Self, Value) {
        let pk = &options["publicKey"];
        let challenge = pk["challenge"].as_str().expect("challenge");
        let rp_id = tamper
            .rp_id
            .clone()
            .unwrap_or_else(|| pk["rp"]["id"].as_str().unwrap().to_string());
        let user_handle = unb64(pk["user"]["id"].as_str().unwrap());
        let key = SigningKey::random(&mut rand::rngs::OsRng);
        let credential_id: Vec<u8> = (0..32).map(|_| rand::random::<u8>()).collect();
        let point = key.verifying_key().to_encoded_point(false);
        let cose = [
            vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21],
            cbor_bytes(point.x().unwrap()),
            vec![0x22],
            cbor_bytes(point.y().unwrap()),
        ]
        .concat();
        let flags = UP | AT | if tamper.no_uv { 0 } else { UV };
        let auth_data = [
            Sha256::digest(rp_id.as_bytes()).to_vec(),
            vec![flags],
            0u32.to_be_bytes().to_vec(),
            vec![0u8; 16], // AAGUID
            (credential_id.len() as u16).to_be_bytes().to_vec(),
            credential_id.clone(),
            cose,
        ]
        .concat();
        let attestation = [
            vec![0xa3],
            cbor_text("fmt"),
            cbor_text("none"),
            cbor_text("attStmt"),
            vec![0xa0],
            cbor_text("authData"),
            cbor_bytes(&auth_data),
        ]
        .concat();
        let client_data = json!({
            "type": "webauthn.create",
            "challenge": challenge,
            "origin": tamper.origin.as_deref().unwrap_or(origin),
            "crossOrigin": false,
        })
        .to_string();
        let credential = json!({
            "id": b64(&credential_id),
            "rawId": b64(&credential_id),
            "type": "public-key",
            "response": {
                "attestationObject": b64(&attestation),
                "clientDataJSON": b64(client_data.as_bytes()),
                "transports": ["internal"],
            },
            "extensions": {},
        });
        let soft = Self {
            key,
            credential_id,
            user_handle,
            counter: 0,
        };
        (soft, credential)
    }

    /// Answers sign-in `options` from `origin`, as `navigator.credentials.get()`; the
    /// counter moves forward by one unless `tamper` sets it.
    pub fn get(&mut self, options: &Value, origin: &str, tamper: &Tamper) -> Value {
        let pk = &options["publicKey"];
        let challenge = pk["challenge"].as_str().expect("challenge");
        let rp_id = tamper
            .rp_id
            .clone()
            .unwrap_or_else(|| pk["rpId"].as_str().unwrap().to_string());
        self.counter = tamper.counter.unwrap_or(self.counter + 1);
        let flags = UP | if tamper.no_uv { 0 } else { UV };
        let auth_data = [
            Sha256::digest(rp_id.as_bytes()).to_vec(),
            vec![flags],
            self.counter.to_be_bytes().to_vec(),
        ]
        .concat();
        let client_data = json!({
            "type": "webauthn.get",
            "challenge": challenge,
            "origin": tamper.origin.as_deref().unwrap_or(origin),
            "crossOrigin": false,
        })
        .to_string();
        let signed = [
            auth_data.clone(),
            Sha256::digest(client_data.as_bytes()).to_vec(),
        ]
        .concat();
        let signature: Signature = self.key.sign(&signed);
        let handle = tamper.user_handle.as_deref().unwrap_or(&self.user_handle);
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "authenticatorData": b64(&auth_data),
                "clientDataJSON": b64(client_data.as_bytes()),
                "signature": b64(signature.to_der().as_bytes()),
                "userHandle": b64(handle),
            },
            "extensions": {},
        })
    }
}
