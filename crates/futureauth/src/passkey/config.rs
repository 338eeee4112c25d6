//! The relying party a [`PasskeyConfig`] makes with the app's origins.

use url::Url;
use webauthn_rs::{Webauthn, WebauthnBuilder};

use crate::config::{FutureAuthConfig, PasskeyConfig};

/// The WebAuthn relying party of this app, made once from the configuration.
pub(crate) struct RelyingParty {
    pub(crate) webauthn: Webauthn,
    pub(crate) config: PasskeyConfig,
}

/// Refuses passkey settings under which nobody could use passkeys.
fn check_limits(passkeys: &PasskeyConfig) -> Result<(), String> {
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
    Ok(())
}

impl RelyingParty {
    /// The relying party of `config`, or why passkeys cannot work with it.
    pub(crate) fn from_config(config: &FutureAuthConfig) -> Result<Option<Self>, String> {
        let Some(passkeys) = &config.passkeys else {
            return Ok(None);
        };
        check_limits(passkeys)?;
        // The configured origins, app_url first; unparsable ones are `validate`'s to report.
        let origins: Vec<Url> = std::iter::once(&config.app_url)
            .chain(&config.allowed_origins)
            .filter_map(|o| Url::parse(o.trim()).ok())
            .collect();
        // The RP ID: app_url's host, or, when that is an IP address (a development server
        // on 127.0.0.1), the first allowed origin on a domain name (http://localhost:port).
        let primary = origins
            .iter()
            .find(|u| u.domain().is_some())
            .ok_or_else(|| {
                format!(
                    "passkeys need app_url (or, with app_url on an IP address, one of                      allowed_origins) on a domain name, e.g. https://app.example.com; browsers                      refuse IP addresses as relying party (use http://localhost for                      development); app_url is {:?}",
                    config.app_url
                )
            })?;
        let rp_id = primary.domain().unwrap_or_default().to_ascii_lowercase();
        let name = [passkeys.rp_name.trim(), config.project_name.trim()]
            .into_iter()
            .find(|n| !n.is_empty())
            .unwrap_or(&rp_id)
            .to_string();
        let mut builder = WebauthnBuilder::new(&rp_id, primary)
            .map_err(|e| format!("passkeys: origin {primary}: {e}"))?
            .rp_name(&name);
        for url in origins.iter().filter(|u| *u != primary) {
            let on_rp = url
                .domain()
                .is_some_and(|d| d == rp_id || d.ends_with(&format!(".{rp_id}")));
            if on_rp {
                builder = builder.append_allowed_origin(url);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rp(app_url: &str, allowed: &[&str]) -> Result<Option<RelyingParty>, String> {
        RelyingParty::from_config(&FutureAuthConfig {
            app_url: app_url.to_string(),
            allowed_origins: allowed.iter().map(|s| s.to_string()).collect(),
            passkeys: Some(PasskeyConfig::default()),
            ..Default::default()
        })
    }

    #[test]
    fn the_rp_id_comes_from_the_configured_origins() {
        let ok = |r: Result<Option<RelyingParty>, String>| r.unwrap().unwrap();
        let origins = |rp: &RelyingParty| {
            rp.webauthn
                .get_allowed_origins()
                .iter()
                .map(|u| u.origin().ascii_serialization())
                .collect::<Vec<_>>()
        };
        let app = ok(rp(
            "https://app.example.com",
            &["https://eu.app.example.com", "https://other.example"],
        ));
        assert_eq!(
            origins(&app),
            ["https://app.example.com", "https://eu.app.example.com"]
        );
        // A development server on 127.0.0.1: the localhost origin names the RP.
        let dev = ok(rp("http://127.0.0.1:3000", &["http://localhost:3000"]));
        assert_eq!(origins(&dev), ["http://localhost:3000"]);
        let err = |r: Result<Option<RelyingParty>, String>| r.err().unwrap_or_default();
        assert!(err(rp("http://127.0.0.1:3000", &[])).contains("domain name"));
        assert!(!err(rp("", &[])).is_empty());
        let none = RelyingParty::from_config(&FutureAuthConfig::default()).unwrap();
        assert!(none.is_none(), "no passkeys configured, no relying party");
    }
}
