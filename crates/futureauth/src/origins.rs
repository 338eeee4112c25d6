//! The origins and callback URLs the app trusts: parsed once from configuration, compared
//! as values. Request headers (`Host`, `Origin`) never add to them.

use url::Url;

use crate::config::FutureAuthConfig;
use crate::error::{FutureAuthError, Result};
pub use futureauth_proto::Origin;
use futureauth_proto::{CallbackUrl, InvalidCallbackUrl};

/// The browser origins and magic-link callbacks of [`FutureAuthConfig`] (`app_url`,
/// `allowed_origins`, `callback_urls`), parsed. Get it from
/// [`FutureAuth::origins`](crate::FutureAuth::origins).
///
/// ```
/// use futureauth::{FutureAuthConfig, Origin, TrustedOrigins};
///
/// let origins = TrustedOrigins::from_config(&FutureAuthConfig {
///     app_url: "https://app.example.com".into(),
///     allowed_origins: vec!["https://admin.example.com".into()],
///     ..Default::default()
/// })
/// .unwrap();
/// assert!(origins.trusts(&Origin::parse("https://app.example.com:443").unwrap()));
/// assert!(!origins.trusts(&Origin::parse("http://app.example.com").unwrap()));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedOrigins {
    app: Option<Origin>,
    allowed: Vec<Origin>,
    callbacks: Vec<Url>,
}

impl TrustedOrigins {
    /// Parses the configuration's origins and callback URLs, with a message that says how
    /// to fix the first one that is not valid.
    pub fn from_config(config: &FutureAuthConfig) -> Result<Self> {
        let app = match config.app_url.trim() {
            "" => None,
            raw => Some(
                Url::parse(raw)
                    .ok()
                    .filter(|u| u.query().is_none() && u.fragment().is_none())
                    .and_then(|u| Origin::of(&u))
                    .ok_or_else(|| {
                        FutureAuthError::Config(format!(
                            "app_url {raw:?} is not an http(s) URL such as https://app.example.com; \
                             set FUTUREAUTH_APP_URL to the address users open the app at"
                        ))
                    })?,
            ),
        };
        let allowed = config
            .allowed_origins
            .iter()
            .map(|raw| {
                Origin::parse(raw).map_err(|_| {
                    FutureAuthError::Config(format!(
                        "allowed_origins entry {raw:?} must be an origin such as \
                         https://app.example.com (scheme, host and port only; FUTUREAUTH_ALLOWED_ORIGINS)"
                    ))
                })
            })
            .collect::<Result<_>>()?;
        let callbacks = config
            .callback_urls
            .iter()
            .map(|raw| {
                parse_callback(raw).map_err(|why| {
                    FutureAuthError::Config(format!(
                        "callback_urls entry {raw:?} {why}; list full URLs such as \
                         https://app.example.com/auth/verify (FUTUREAUTH_CALLBACK_URLS)"
                    ))
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            app,
            allowed,
            callbacks,
        })
    }

    /// The origin of `app_url`, if it is set.
    pub fn app(&self) -> Option<&Origin> {
        self.app.as_ref()
    }

    /// The origins of `allowed_origins`.
    pub fn allowed(&self) -> &[Origin] {
        &self.allowed
    }

    /// Whether a browser page on `origin` may call the auth routes and receive magic links:
    /// it is `app_url`'s origin or one of `allowed_origins` (scheme, host and port).
    pub fn trusts(&self, origin: &Origin) -> bool {
        self.app.as_ref() == Some(origin) || self.allowed.contains(origin)
    }

    /// Whether nothing is configured: no `app_url`, `allowed_origins` or `callback_urls`.
    pub fn is_empty(&self) -> bool {
        self.app.is_none() && self.allowed.is_empty() && self.callbacks.is_empty()
    }

    /// Whether a magic link may open `callback`: it is one of `callback_urls` exactly, or
    /// on a [trusted](Self::trusts) origin.
    pub(crate) fn allows_callback(&self, callback: &Url) -> bool {
        self.callbacks.contains(callback) || Origin::of(callback).is_some_and(|o| self.trusts(&o))
    }
}

/// Parses a magic-link callback URL by the rule shared with the server
/// ([`CallbackUrl`]): absolute http(s), no credentials, and no `token` parameter of its own.
/// A callback that already carries a token would make the link
/// `?token=<attacker's>&token=<victim's>` and sign the victim into the attacker's account.
pub(crate) fn parse_callback(raw: &str) -> std::result::Result<Url, InvalidCallbackUrl> {
    CallbackUrl::parse(raw).map(CallbackUrl::into_url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(app: &str, allowed: &[&str], callbacks: &[&str]) -> TrustedOrigins {
        TrustedOrigins::from_config(&FutureAuthConfig {
            app_url: app.into(),
            allowed_origins: allowed.iter().map(|s| s.to_string()).collect(),
            callback_urls: callbacks.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        })
        .unwrap()
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn app_url_may_have_a_path() {
        let o = origins("https://App.example/base/", &[], &[]);
        assert_eq!(o.app().unwrap().to_string(), "https://app.example");
        assert!(o.allows_callback(&url("https://app.example/auth/verify")));
        assert!(!o.allows_callback(&url("http://app.example/auth/verify")));
        assert!(!o.allows_callback(&url("https://app.example:8443/auth/verify")));
    }

    #[test]
    fn exact_callbacks_are_exact() {
        let o = origins("", &[], &["https://m.example/cb"]);
        assert!(o.allows_callback(&url("https://m.example/cb")));
        assert!(!o.allows_callback(&url("https://m.example/other")));
        assert!(!o.trusts(&Origin::parse("https://m.example").unwrap()));
    }

    #[test]
    fn callbacks_with_a_token_or_credentials_are_refused() {
        for bad in [
            "https://app.example/v?token=x",
            "https://app.example/v?a=1&TOKEN=x",
            "https://app.example/v?%74oken=x",
            "https://user:pw@app.example/v",
            "javascript:alert(1)",
            "/relative",
            "https://app.example/\0",
        ] {
            assert!(parse_callback(bad).is_err(), "{bad}");
        }
        assert!(parse_callback("https://app.example/v?next=/home#top").is_ok());
    }
}
