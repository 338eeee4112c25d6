//! [`PasskeyConfig`] and the relying party it makes with the app's origins.

use std::time::Duration;

use url::Url;
use webauthn_rs::{Webauthn, WebauthnBuilder};

use crate::config::{FutureAuthConfig, RateLimit};

/// Passkeys (WebAuthn): set [`FutureAuthConfig::passkeys`] to `Some` to turn them on.
///
/// The relying party ID and the origins a passkey may be used from come from the
/// configuration only, never from request headers: the RP ID is the host of
/// [`FutureAuthConfig::app_url`] (so `app_url` is required), and the origins are `app_url`'s
/// and those of [`FutureAuthConfig::allowed_origins`] on that host or its subdomains (other
/// allowed origins keep codes and links, but a browser would refuse them a passkey of this
/// RP ID anyway).
///
/// ```
/// use futureauth::{FutureAuthConfig, PasskeyConfig};
///
/// let config = FutureAuthConfig {
///     app_url: "https://app.example.com".to_string(),
///     project_name: "My App".to_string(),
///     passkeys: Some(PasskeyConfig::default()),
///     ..Default::default()
/// };
/// assert_eq!(config.passkeys.unwrap().challenge_ttl.as_secs(), 300);
/// ```
#[derive(Debug, Clone)]
pub struct PasskeyConfig {
    /// The name the browser shows when it creates a passkey. Default empty: the
    /// `project_name`, or else the RP ID.
    pub rp_name: String,
    /// How long a registration or sign-in challenge works. Default 5 minutes.
    pub challenge_ttl: Duration,
    /// Passkey options (registration and sign-in challenges) from one client IP (IPv4
    /// address, IPv6 /64). Default 30 per 5 minutes.
    pub options_per_ip: RateLimit,
    /// Passkey registrations and sign-in answers from one client IP. Default 30 per 15
    /// minutes.
    pub verify_per_ip: RateLimit,
    /// Passkeys one user may hold. Default 20.
    pub max_per_user: u32,
}

impl Default for PasskeyConfig {
    fn default() -> Self {
        Self {
            rp_name: String::new(),
            challenge_ttl: Duration::from_secs(5 * 60),
            options_per_ip: RateLimit::new(30, Duration::from_secs(5 * 60)),
            verify_per_ip: RateLimit::new(30, Duration::from_secs(15 * 60)),
            max_per_user: 20,
        }
    }
}

/// The WebAuthn relying party of this app, made once from the configuration.
pub(crate) struct RelyingParty {
    pub(crate) webauthn: Webauthn,
    pub(crate) config: PasskeyConfig,
}

impl RelyingParty {
    /// The relying party of `config`, or why passkeys cannot work with it.
    pub(crate) fn from_config(config: &FutureAuthConfig) -> Result<Option<Self>, String> {
        let Some(passkeys) = &config.passkeys else {
            return Ok(None);
        };
        if passkeys.challenge_ttl.is_zero() {
            return Err("passkeys.challenge_ttl is zero; challenges need a lifetime".to_string());
        }
        for (name, limit) in [
            ("options_per_ip", passkeys.options_per_ip),
            ("verify_per_ip", passkeys.verify_per_ip),
        ] {
            if limit.max == 0 || limit.window.is_zero() {
                return Err(format!(
                    "passkeys.{name} allows nothing; give it a max and a window above zero"
                ));
            }
        }
        if passkeys.max_per_user == 0 {
            return Err("passkeys.max_per_user is 0, so nobody could add a passkey".to_string());
        }
        let app = Url::parse(config.app_url.trim()).map_err(|_| {
            "passkeys need app_url (e.g. https://app.example.com): its host is the relying \
             party ID"
                .to_string()
        })?;
        let rp_id = app
            .domain()
            .ok_or_else(|| {
                format!(
                    "passkeys need app_url on a domain name, not {:?} (browsers refuse IP \
                     addresses as relying party; use http://localhost for development)",
                    config.app_url
                )
            })?
            .to_ascii_lowercase();
        let name = [passkeys.rp_name.trim(), config.project_name.trim()]
            .into_iter()
            .find(|n| !n.is_empty())
            .unwrap_or(&rp_id)
            .to_string();
        let mut builder = WebauthnBuilder::new(&rp_id, &app)
            .map_err(|e| format!("passkeys: app_url {:?}: {e}", config.app_url))?
            .rp_name(&name);
        for origin in &config.allowed_origins {
            let Ok(url) = Url::parse(origin.trim()) else {
                continue; // `validate` reports it
            };
            let on_rp = url
                .domain()
                .is_some_and(|d| d == rp_id || d.ends_with(&format!(".{rp_id}")));
            if on_rp {
                builder = builder.append_allowed_origin(&url);
            }
        }
        let webauthn = builder
            .build()
            .map_err(|e| format!("passkeys: the relying party could not be made: {e}"))?;
        Ok(Some(Self {
            webauthn,
            config: passkeys.clone(),
        }))
    }
}
