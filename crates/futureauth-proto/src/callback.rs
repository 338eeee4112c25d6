//! The page a magic link opens, and the link itself: one rule for the SDK and the server.

use std::fmt;
use std::str::FromStr;

use url::Url;

use crate::origin::Origin;

/// The name of the query parameter that carries a magic link's token.
pub const TOKEN_PARAM: &str = "token";

/// Why a callback URL (or a magic link) was refused. The message completes a sentence that
/// starts with the URL: `"https://…" already has a token parameter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidCallbackUrl {
    /// NUL or another control character.
    #[error("contains control characters")]
    ControlChars,
    /// Not an absolute URL.
    #[error("is not a full URL: start it with http:// or https://")]
    NotAbsolute,
    /// Not `http` or `https`, or no host.
    #[error("must be an http or https URL")]
    NotHttp,
    /// `user:password@` in the authority.
    #[error("must not contain credentials (user:password@)")]
    Credentials,
    /// A `token` parameter (any letter case, also percent-encoded) in a callback URL. The link
    /// would read `?token=<attacker's>&token=<real>` and could sign the victim into the
    /// attacker's account (login CSRF).
    #[error("already has a token parameter")]
    HasToken,
    /// A magic link without exactly one `token` parameter, spelled in lower case.
    #[error("must carry exactly one token parameter")]
    TokenCount,
}

/// A magic-link callback URL: absolute `http(s)`, with a host, no `user:password@`, no
/// control characters, and no `token` query parameter of its own in any letter case (also
/// percent-encoded, as `%74oken`). A fragment and other parameters are kept.
///
/// The SDK checks `callback_url` with it before sending a link; the server checks the
/// `callback_url` and `link` of `POST /api/v1/otp/send` and a project's stored callback.
///
/// ```
/// use futureauth_proto::CallbackUrl;
///
/// let cb = CallbackUrl::parse("https://app.example.com/auth/verify?next=/home").unwrap();
/// assert_eq!(
///     cb.link("abc").as_str(),
///     "https://app.example.com/auth/verify?next=/home&token=abc"
/// );
/// for bad in [
///     "https://app.example.com/v?token=x",
///     "https://app.example.com/v?TOKEN=x",
///     "https://user:pw@app.example.com/v",
///     "/relative",
/// ] {
///     assert!(CallbackUrl::parse(bad).is_err(), "{bad}");
/// }
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CallbackUrl(Url, Origin);

impl CallbackUrl {
    /// Parses and checks a callback URL (surrounding whitespace is ignored).
    pub fn parse(raw: &str) -> Result<Self, InvalidCallbackUrl> {
        let (url, origin) = parse_http(raw)?;
        if token_params(&url) > 0 {
            return Err(InvalidCallbackUrl::HasToken);
        }
        Ok(Self(url, origin))
    }

    /// Checks a whole magic link, `callback?…&token=…`: exactly one `token` parameter,
    /// written `token`, and the rest a valid callback. Returns the callback (the link
    /// without its token) and the token.
    ///
    /// ```
    /// use futureauth_proto::CallbackUrl;
    ///
    /// let (cb, token) = CallbackUrl::parse_link("https://a.example/v?x=1&token=T#f").unwrap();
    /// assert_eq!((cb.as_str(), token.as_str()), ("https://a.example/v?x=1#f", "T"));
    /// assert!(CallbackUrl::parse_link("https://a.example/v?token=A&token=B").is_err());
    /// assert!(CallbackUrl::parse_link("https://a.example/v?Token=A").is_err());
    /// assert!(CallbackUrl::parse_link("https://a.example/v").is_err());
    /// ```
    pub fn parse_link(raw: &str) -> Result<(Self, String), InvalidCallbackUrl> {
        let (link, origin) = parse_http(raw)?;
        if token_params(&link) != 1 {
            return Err(InvalidCallbackUrl::TokenCount);
        }
        let mut token = None;
        let mut rest = Vec::new();
        for (name, value) in link.query_pairs() {
            if name == TOKEN_PARAM {
                token = Some(value.into_owned());
            } else {
                rest.push((name.into_owned(), value.into_owned()));
            }
        }
        // The one token parameter was spelled otherwise (`Token`, `+token`).
        let token = token.ok_or(InvalidCallbackUrl::TokenCount)?;
        let mut callback = link.clone();
        if rest.is_empty() {
            callback.set_query(None);
        } else {
            callback.query_pairs_mut().clear().extend_pairs(rest);
        }
        Ok((Self(callback, origin), token))
    }

    /// The link that opens this page with `token`: `callback?…&token=<token>` (before any
    /// fragment, URL-encoded).
    pub fn link(&self, token: &str) -> Url {
        let mut link = self.0.clone();
        link.query_pairs_mut().append_pair(TOKEN_PARAM, token);
        link
    }

    /// The origin of the page.
    pub fn origin(&self) -> &Origin {
        &self.1
    }

    /// The URL.
    pub fn as_url(&self) -> &Url {
        &self.0
    }

    /// The URL, serialised.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The URL, owned.
    pub fn into_url(self) -> Url {
        self.0
    }
}

/// An absolute http(s) URL with a host, no credentials and no control characters, and its
/// origin.
fn parse_http(raw: &str) -> Result<(Url, Origin), InvalidCallbackUrl> {
    if crate::text::has_control_chars(raw) {
        return Err(InvalidCallbackUrl::ControlChars);
    }
    let url = Url::parse(raw.trim()).map_err(|_| InvalidCallbackUrl::NotAbsolute)?;
    if !matches!(url.scheme(), "http" | "https") || !url.host_str().is_some_and(|h| !h.is_empty()) {
        return Err(InvalidCallbackUrl::NotHttp);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(InvalidCallbackUrl::Credentials);
    }
    // Every http(s) URL with a host and no credentials has an origin.
    let origin = Origin::of(&url).ok_or(InvalidCallbackUrl::NotHttp)?;
    Ok((url, origin))
}

/// How many query parameters name a token: `token` in any letter case, decoded, trimmed.
fn token_params(url: &Url) -> usize {
    url.query_pairs()
        .filter(|(name, _)| name.trim().eq_ignore_ascii_case(TOKEN_PARAM))
        .count()
}

impl fmt::Display for CallbackUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl fmt::Debug for CallbackUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CallbackUrl({})", self.0)
    }
}

impl FromStr for CallbackUrl {
    type Err = InvalidCallbackUrl;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl From<CallbackUrl> for Url {
    fn from(c: CallbackUrl) -> Url {
        c.0
    }
}

impl From<CallbackUrl> for String {
    fn from(c: CallbackUrl) -> String {
        c.0.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use InvalidCallbackUrl as E;

    #[test]
    fn token_in_any_case_is_refused() {
        for bad in [
            "https://app.example/v?token=x",
            "https://app.example/v?TOKEN=x",
            "https://app.example/v?Token=x",
            "https://app.example/v?tOkEn=",
            "https://app.example/v?a=1&token",
            "https://app.example/v?%74oken=x",
            "https://app.example/v?%54OKEN=x",
            "https://app.example/v?+token=x",
        ] {
            assert_eq!(CallbackUrl::parse(bad), Err(E::HasToken), "{bad}");
        }
    }

    #[test]
    fn credentials_and_other_schemes_are_refused() {
        let cases = [
            ("https://user:pass@app.example/v", E::Credentials),
            ("https://user@app.example/v", E::Credentials),
            ("https://:pass@app.example/v", E::Credentials),
            ("javascript:alert(1)", E::NotHttp),
            ("ftp://app.example/v", E::NotHttp),
            ("file:///etc/passwd", E::NotHttp),
            ("/relative", E::NotAbsolute),
            ("app.example/v", E::NotAbsolute),
            ("", E::NotAbsolute),
            ("https://app.example/\0", E::ControlChars),
            ("https://app.example/v\r\nX: y", E::ControlChars),
        ];
        for (bad, why) in cases {
            assert_eq!(CallbackUrl::parse(bad), Err(why), "{bad}");
        }
    }

    #[test]
    fn ordinary_callbacks_are_kept() {
        for ok in [
            "https://app.example/auth/verify",
            "http://localhost:3000/verify",
            "https://app.example/v?next=/home#top",
            "https://app.example/v?tokens=1&my_token=2&token_type=x",
            "  https://App.Example/v  ",
        ] {
            assert!(CallbackUrl::parse(ok).is_ok(), "{ok}");
        }
        let cb = CallbackUrl::parse("https://App.Example:443/v#top").unwrap();
        assert_eq!(cb.as_str(), "https://app.example/v#top");
        assert_eq!(cb.origin().to_string(), "https://app.example");
        assert_eq!(
            cb.link("a b&c").as_str(),
            "https://app.example/v?token=a+b%26c#top"
        );
    }

    #[test]
    fn links_carry_exactly_one_token() {
        let cb = CallbackUrl::parse("https://app.example/v?next=%2Fhome").unwrap();
        let link = cb.link("tok_EN-1");
        let (back, token) = CallbackUrl::parse_link(link.as_str()).unwrap();
        assert_eq!(token, "tok_EN-1");
        assert_eq!(back.as_url().query_pairs().count(), 1);
        for bad in [
            "https://app.example/v?token=A&token=B",
            "https://app.example/v?token=A&TOKEN=B",
            "https://app.example/v?Token=A",
            "https://app.example/v?next=1",
            "https://app.example/v",
        ] {
            assert_eq!(CallbackUrl::parse_link(bad), Err(E::TokenCount), "{bad}");
        }
        assert_eq!(
            CallbackUrl::parse_link("https://u:p@app.example/v?token=A"),
            Err(E::Credentials)
        );
    }
}
