//! A new secret (a created or rotated key, a webhook signing secret, an operator token) is
//! shown once, on the page the form redirects to (Post/Redirect/Get): the POST puts it in a
//! short-lived `HttpOnly` cookie, the GET shows it and deletes the cookie. Reloading the page
//! repeats nothing and no longer shows the secret.
//!
//! The cookie is signed with the session's CSRF token (a server-keyed HMAC of the session),
//! so a cookie planted by anyone else (a sibling subdomain) is ignored: nobody can make the
//! console present their own value as "your new webhook secret".

use axum::http::{HeaderMap, HeaderValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::session::{set_cookie, Signed};
use super::ConsoleSettings;

/// Seconds a secret waits for its page: the redirect follows at once.
const FLASH_TTL_SECS: u64 = 120;

/// What kind of secret a flash carries, and so which page shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlashKind {
    /// A new project's first key.
    Created,
    /// An added key.
    Key,
    /// A key made by rotation.
    Rotated,
    /// A webhook signing secret.
    Webhook,
    /// An operator token.
    Token,
}

/// One secret on its way to the page that shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flash {
    /// Which secret.
    pub kind: FlashKind,
    /// The project it belongs to (empty for operator tokens).
    pub project: String,
    /// The secret itself.
    pub secret: String,
    /// A line shown under it (a rotation's overlap).
    pub note: Option<String>,
}

fn mac(s: &Signed, payload: &str) -> Option<Hmac<Sha256>> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(s.csrf.as_bytes()).ok()?;
    mac.update(b"console-flash\0");
    mac.update(payload.as_bytes());
    Some(mac)
}

impl Flash {
    /// `Set-Cookie` carrying this flash for the session `s`.
    pub fn cookie(&self, settings: &ConsoleSettings, s: &Signed) -> HeaderValue {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default());
        let tag = mac(s, &payload)
            .map(|m| hex::encode(m.finalize().into_bytes()))
            .unwrap_or_default();
        set_cookie(
            settings,
            settings.flash_cookie,
            &format!("{payload}.{tag}"),
            FLASH_TTL_SECS,
        )
    }

    /// The flash of this session, if the request carries a genuine one of `kind` for
    /// `project`. The caller shows it and sends [`Flash::clear`].
    pub fn take(
        settings: &ConsoleSettings,
        headers: &HeaderMap,
        s: &Signed,
        kind: FlashKind,
        project: &str,
    ) -> Option<Flash> {
        let value = futureauth::axum::cookie_value(headers, settings.flash_cookie)?;
        let (payload, tag) = value.split_once('.')?;
        let tag = hex::decode(tag).ok()?;
        mac(s, payload)?.verify_slice(&tag).ok()?;
        let flash: Flash = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        (flash.kind == kind && flash.project == project).then_some(flash)
    }

    /// `Set-Cookie` that deletes the flash (it is shown once).
    pub fn clear(settings: &ConsoleSettings) -> HeaderValue {
        set_cookie(settings, settings.flash_cookie, "", 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Operator;

    fn signed(csrf: &str) -> Signed {
        Signed {
            operator: Operator {
                id: "op_1".into(),
                email: "a@example.com".into(),
                created_at: crate::clock::UnixMillis::from_millis(0),
            },
            user_id: "u_1".into(),
            token: "t".into(),
            csrf: csrf.into(),
            projects: Vec::new(),
        }
    }

    fn settings() -> ConsoleSettings {
        let config = crate::config::Config::default();
        ConsoleSettings::new(&config, "127.0.0.1:8080".parse().unwrap()).unwrap()
    }

    fn request_with(set_cookie: &HeaderValue) -> HeaderMap {
        let pair = set_cookie.to_str().unwrap().split(';').next().unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::COOKIE,
            HeaderValue::from_str(pair).unwrap(),
        );
        h
    }

    #[test]
    fn only_the_sessions_own_flash_is_shown() {
        let (settings, s) = (settings(), signed("csrf-of-the-session"));
        let flash = Flash {
            kind: FlashKind::Webhook,
            project: "prj_a".into(),
            secret: "whsec_genuine".into(),
            note: None,
        };
        let genuine = request_with(&flash.cookie(&settings, &s));
        let shown = Flash::take(&settings, &genuine, &s, FlashKind::Webhook, "prj_a");
        assert_eq!(shown.map(|f| f.secret).as_deref(), Some("whsec_genuine"));
        // Another kind or project: not this page's.
        assert!(Flash::take(&settings, &genuine, &s, FlashKind::Key, "prj_a").is_none());
        assert!(Flash::take(&settings, &genuine, &s, FlashKind::Webhook, "prj_b").is_none());
        // Made for another session (or planted by someone without this session's token).
        let planted = request_with(&flash.cookie(&settings, &signed("another-session")));
        assert!(Flash::take(&settings, &planted, &s, FlashKind::Webhook, "prj_a").is_none());
        // A payload changed under a genuine tag.
        let value = genuine[axum::http::header::COOKIE]
            .to_str()
            .unwrap()
            .to_owned();
        let (name_payload, tag) = value.split_once('.').unwrap();
        let forged_payload = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&Flash {
                secret: "whsec_attacker".into(),
                ..flash.clone()
            })
            .unwrap(),
        );
        let name = name_payload.split('=').next().unwrap();
        let mut forged = HeaderMap::new();
        forged.insert(
            axum::http::header::COOKIE,
            HeaderValue::from_str(&format!("{name}={forged_payload}.{tag}")).unwrap(),
        );
        assert!(Flash::take(&settings, &forged, &s, FlashKind::Webhook, "prj_a").is_none());
    }
}
