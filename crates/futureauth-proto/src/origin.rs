//! Web origins (scheme, host, port), compared as values.

use std::fmt;
use std::str::FromStr;

use url::Url;

/// The input is not an http(s) origin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an origin such as https://app.example.com")]
pub struct InvalidOrigin(pub String);

/// The scheme of an [`Origin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `http`
    Http,
    /// `https`
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }
}

/// An http(s) origin: scheme, lower-case (punycode) host and port, with the default port
/// made explicit so that `https://a.example` and `https://a.example:443` are equal.
///
/// Origins come from configuration; a request's `Origin` header is parsed into one only to
/// be compared with those.
///
/// ```
/// use futureauth_proto::Origin;
/// let a = Origin::parse("https://App.Example.com").unwrap();
/// assert_eq!(a, Origin::parse("https://app.example.com:443/").unwrap());
/// assert_ne!(a, Origin::parse("http://app.example.com").unwrap());
/// assert!(Origin::parse("https://app.example.com/path").is_err());
/// assert!(Origin::parse("null").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    scheme: Scheme,
    host: String,
    port: u16,
}

impl Origin {
    /// Parses an origin as written in configuration or an `Origin` header:
    /// `scheme://host[:port]`, with at most a trailing `/`.
    pub fn parse(raw: &str) -> Result<Self, InvalidOrigin> {
        let bad = || InvalidOrigin(raw.chars().take(200).collect());
        let trimmed = raw.trim();
        if crate::text::has_control_chars(trimmed) {
            return Err(bad());
        }
        let url = Url::parse(trimmed).map_err(|_| bad())?;
        let bare = matches!(url.path(), "" | "/")
            && url.query().is_none()
            && url.fragment().is_none()
            && !trimmed.trim_end_matches('/').ends_with(['?', '#']);
        if !bare {
            return Err(bad());
        }
        Self::of(&url).ok_or_else(bad)
    }

    /// The origin of an http(s) URL without credentials; `None` for other URLs.
    pub fn of(url: &Url) -> Option<Self> {
        let scheme = match url.scheme() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return None,
        };
        if !url.username().is_empty() || url.password().is_some() {
            return None;
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())?
            .to_ascii_lowercase();
        let port = url.port().unwrap_or(scheme.default_port());
        Some(Self { scheme, host, port })
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host, lower-case; IPv6 addresses in brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, explicit even when it is the scheme's default.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the host is `localhost` or a loopback address.
    pub fn is_loopback(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost"
            || host.ends_with(".localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// The authority as a `Host` header names it: `host` with `:port` unless the default.
    pub fn authority(&self) -> String {
        if self.port == self.scheme.default_port() {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme.as_str(), self.authority())
    }
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Origin({self})")
    }
}

impl FromStr for Origin {
    type Err = InvalidOrigin;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form() {
        let o = |s: &str| Origin::parse(s).unwrap().to_string();
        assert_eq!(o("https://App.Example.com"), "https://app.example.com");
        assert_eq!(o("http://localhost:3000/"), "http://localhost:3000");
        assert_eq!(o("https://a.example:443"), "https://a.example");
        assert_eq!(o("http://[::1]:8080"), "http://[::1]:8080");
        assert_eq!(o("https://bücher.example"), "https://xn--bcher-kva.example");
    }

    #[test]
    fn scheme_and_port_matter() {
        let p = |s: &str| Origin::parse(s).unwrap();
        assert_ne!(p("http://a.example"), p("https://a.example"));
        assert_ne!(p("https://a.example"), p("https://a.example:8443"));
        assert_eq!(p("http://a.example:80"), p("http://a.example"));
    }

    #[test]
    fn rejects_what_is_not_an_origin() {
        for bad in [
            "",
            "null",
            "app.example.com",
            "ftp://a.example",
            "javascript:alert(1)",
            "https://a.example/path",
            "https://a.example/?q",
            "https://a.example#f",
            "https://user:pw@a.example",
            "https://a.example\0",
            "file:///etc/passwd",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn loopback() {
        assert!(Origin::parse("http://localhost:3000")
            .unwrap()
            .is_loopback());
        assert!(Origin::parse("http://127.0.0.1:3000")
            .unwrap()
            .is_loopback());
        assert!(Origin::parse("http://[::1]:3000").unwrap().is_loopback());
        assert!(!Origin::parse("https://app.example").unwrap().is_loopback());
    }
}
