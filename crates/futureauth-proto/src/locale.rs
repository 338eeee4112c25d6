//! [`Locale`]: the language a message is written in, as a BCP 47 tag.

use std::fmt;
use std::str::FromStr;

/// A language tag such as `de` or `de-AT` (1 to 35 letters, digits, `-` or `_`, starting
/// with a letter): the `locale` of a send request, and what the SDK takes from a browser's
/// `Accept-Language`.
///
/// ```
/// use futureauth_proto::Locale;
/// assert_eq!(Locale::parse("de-AT").unwrap().as_str(), "de-AT");
/// assert!(Locale::parse("<script>").is_err());
/// let picked = Locale::preferred("fr;q=0.5, de-AT, *;q=0.1").unwrap();
/// assert_eq!(picked.as_str(), "de-AT");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Locale(String);

/// The input is not a language tag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "locale must be a language tag such as `de` or `de-AT` (1 to 35 letters, digits, `-` or `_`)"
)]
pub struct InvalidLocale;

/// Most `Accept-Language` entries looked at: a header is chosen by the client, so its
/// cost is bounded.
const MAX_ENTRIES: usize = 32;

impl Locale {
    /// A tag, if it has the shape of one.
    pub fn parse(tag: &str) -> Result<Self, InvalidLocale> {
        let ok = (1..=35).contains(&tag.len())
            && tag.starts_with(|c: char| c.is_ascii_alphabetic())
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if ok {
            Ok(Self(tag.to_string()))
        } else {
            Err(InvalidLocale)
        }
    }

    /// The client's first choice in an `Accept-Language` header (RFC 9110 §12.5.4): the
    /// well-formed tag of highest weight, the earliest among equals. `*`, `q=0` and
    /// malformed entries are skipped; `None` when nothing is left.
    pub fn preferred(accept_language: &str) -> Option<Self> {
        let mut best: Option<(u16, Self)> = None;
        for entry in accept_language.split(',').take(MAX_ENTRIES) {
            let mut parts = entry.split(';');
            let Ok(tag) = Self::parse(parts.next().unwrap_or_default().trim()) else {
                continue;
            };
            let weight = match parts.find_map(|p| p.trim().strip_prefix("q=")) {
                None => 1000,
                Some(q) => match quality(q) {
                    Some(w) => w,
                    None => continue,
                },
            };
            if weight > 0 && best.as_ref().map_or(true, |(w, _)| weight > *w) {
                best = Some((weight, tag));
            }
        }
        best.map(|(_, tag)| tag)
    }

    /// The tag.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A `q` value (`0` to `1` with up to three decimals) in thousandths.
fn quality(q: &str) -> Option<u16> {
    let (whole, frac) = q.split_once('.').unwrap_or((q, ""));
    if frac.len() > 3 || !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let frac: u16 = format!("{frac:0<3}").parse().ok()?;
    match whole {
        "0" => Some(frac),
        "1" if frac == 0 => Some(1000),
        _ => None,
    }
}

impl FromStr for Locale {
    type Err = InvalidLocale;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(header: &str) -> Option<String> {
        Locale::preferred(header).map(|l| l.as_str().to_string())
    }

    #[test]
    fn accept_language_picks_the_heaviest_well_formed_tag() {
        assert_eq!(pick("de-AT,de;q=0.9,en;q=0.5").as_deref(), Some("de-AT"));
        assert_eq!(pick("en;q=0.5, de;q=0.8").as_deref(), Some("de"));
        assert_eq!(
            pick("fr, de").as_deref(),
            Some("fr"),
            "earliest among equals"
        );
        assert_eq!(pick("*, de;q=0.1").as_deref(), Some("de"));
        assert_eq!(pick("de;q=0, en;q=0.001").as_deref(), Some("en"));
        assert_eq!(
            pick("<b>x</b>, ;q=1, de;q=2, nl;q=0.3").as_deref(),
            Some("nl")
        );
        assert_eq!(pick("de;q=1.5").as_deref(), None);
        assert_eq!(pick("").as_deref(), None);
        assert_eq!(pick("\0de, en\u{7f}").as_deref(), None);
        let long = "x".repeat(100_000);
        assert_eq!(pick(&long).as_deref(), None);
        let many = format!("{}de", "zz;q=0.1,".repeat(40));
        assert_eq!(
            pick(&many).as_deref(),
            Some("zz"),
            "only the first entries count"
        );
    }

    #[test]
    fn tags() {
        for ok in ["de", "de-AT", "zh_Hant_TW", "x1"] {
            assert!(Locale::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1de", "de AT", "de\0", &"a".repeat(36)] {
            assert!(Locale::parse(bad).is_err(), "{bad:?}");
        }
    }
}
