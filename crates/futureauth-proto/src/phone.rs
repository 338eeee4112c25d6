//! Phone numbers in E.164, with the country they belong to (libphonenumber's data, through
//! the `phonenumber` crate).

use std::fmt;
use std::str::FromStr;

/// The input is not an international phone number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an international phone number such as +15551234567")]
pub struct InvalidPhone;

/// The input is not an ISO 3166-1 alpha-2 region known to libphonenumber.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a two-letter country code such as US or GB")]
pub struct InvalidRegion(pub String);

/// A country or region by its ISO 3166-1 alpha-2 code (`US`, `GB`, `JM`), as
/// libphonenumber knows them.
///
/// ```
/// use futureauth_proto::Region;
/// assert_eq!(Region::parse("gb").unwrap().as_str(), "GB");
/// assert!(Region::parse("XX").is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Region([u8; 2]);

impl Region {
    /// Parses a two-letter region code, in any case.
    pub fn parse(raw: &str) -> Result<Self, InvalidRegion> {
        let upper = raw.trim().to_ascii_uppercase();
        let bad = || InvalidRegion(raw.chars().take(8).collect());
        let bytes: [u8; 2] = upper.as_bytes().try_into().map_err(|_| bad())?;
        if !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(bad());
        }
        phonenumber::country::Id::from_str(&upper).map_err(|_| bad())?;
        Ok(Self(bytes))
    }

    /// The regions that share a country calling code, the main one first (`1` → US, then
    /// the other NANP regions such as CA, JM, DO; `44` → GB, GG, IM, JE). Empty for a code
    /// that does not exist.
    ///
    /// ```
    /// use futureauth_proto::Region;
    /// let nanp = Region::of_calling_code(1);
    /// assert_eq!(nanp[0].as_str(), "US");
    /// assert!(nanp.iter().any(|r| r.as_str() == "JM"));
    /// assert!(Region::of_calling_code(999).is_empty());
    /// ```
    pub fn of_calling_code(code: u16) -> Vec<Region> {
        phonenumber::metadata::DATABASE
            .region(&code)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|id| Region::parse(id).ok())
            .collect()
    }

    /// The upper-case code.
    pub fn as_str(&self) -> &str {
        // Only ASCII upper-case letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Serialised as its two-letter code.
impl serde::Serialize for Region {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl FromStr for Region {
    type Err = InvalidRegion;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A phone number in E.164 (`+` and 8 to 15 digits) with a country calling code that
/// exists. [`region`](Self::region) says which country it is in when libphonenumber
/// recognises it as a valid number there.
///
/// Spaces, dashes, dots, brackets and a leading `00` are accepted on input; letters are not.
///
/// ```
/// use futureauth_proto::Phone;
/// let p = Phone::parse("+1 (555) 123-4567").unwrap();
/// assert_eq!(p.as_str(), "+15551234567");
/// assert_eq!(p.region(), None); // 555 is no real US area code
/// assert_eq!(Phone::parse("+1 876 555 0123").unwrap().region().unwrap().as_str(), "JM");
/// assert!(Phone::parse("5551234567").is_err()); // no country code
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Phone {
    e164: String,
    region: Option<Region>,
    calling_code: u16,
}

impl Phone {
    /// A regular expression (ECMA 262, for a JSON Schema `pattern`) of the numbers written in
    /// E.164 that [`parse`](Self::parse) may accept: `+`, a country calling code that exists,
    /// then national digits (no leading zero), 8 to 15 digits in all. What it cannot say is
    /// whether the national part is one the numbering plan knows; `parse` checks that too.
    ///
    /// ```
    /// let pattern = futureauth_proto::Phone::e164_pattern();
    /// assert!(pattern.starts_with("^\\+(?:"));
    /// assert!(pattern.contains("44"));
    /// ```
    pub fn e164_pattern() -> String {
        // Calling codes by their length, so that the national part's length makes 8-15.
        let mut groups: [Vec<String>; 3] = Default::default();
        for code in 1u16..1000 {
            if phonenumber::metadata::DATABASE.by_code(&code).is_some() {
                let digits = code.to_string();
                groups[digits.len() - 1].push(digits);
            }
        }
        let branches: Vec<String> = groups
            .iter()
            .enumerate()
            .filter(|(_, codes)| !codes.is_empty())
            .map(|(i, codes)| {
                let len = i + 1;
                format!(
                    "(?:{})[1-9][0-9]{{{},{}}}",
                    codes.join("|"),
                    7 - len,
                    14 - len
                )
            })
            .collect();
        format!("^\\+(?:{})$", branches.join("|"))
    }

    /// Parses and normalises a phone number written in international form.
    pub fn parse(raw: &str) -> Result<Self, InvalidPhone> {
        let compact: String = raw
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{a0}'))
            .collect();
        let digits = compact
            .strip_prefix('+')
            .or_else(|| compact.strip_prefix("00"))
            .ok_or(InvalidPhone)?;
        let structural = (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if !structural {
            return Err(InvalidPhone);
        }
        let e164 = format!("+{digits}");
        let number = phonenumber::parse(None, &e164).map_err(|_| InvalidPhone)?;
        let calling_code = number.country().code();
        // The parser must have read every digit as ours: country code + national number.
        let national = number.national().value().to_string();
        let zeros = usize::from(number.national().zeros());
        if format!("{calling_code}{}{national}", "0".repeat(zeros)) != digits {
            return Err(InvalidPhone);
        }
        let region = if number.is_valid() {
            number
                .country()
                .id()
                .and_then(|id| Region::parse(id.as_ref()).ok())
        } else {
            None
        };
        Ok(Self {
            e164,
            region,
            calling_code,
        })
    }

    /// The number in E.164, as stored and delivered.
    pub fn as_str(&self) -> &str {
        &self.e164
    }

    /// The country of a number that libphonenumber recognises as valid there; `None` for a
    /// number that only has the right shape (such as `+1 555 …`).
    pub fn region(&self) -> Option<Region> {
        self.region
    }

    /// The country calling code (`1` for the NANP, `44` for the UK).
    pub fn calling_code(&self) -> u16 {
        self.calling_code
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Phone").field(&self.e164).finish()
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.e164)
    }
}

impl FromStr for Phone {
    type Err = InvalidPhone;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for Phone {
    fn as_ref(&self) -> &str {
        &self.e164
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_to_e164() {
        let p = |s: &str| Phone::parse(s).unwrap().as_str().to_string();
        assert_eq!(p("+44 20 7946 0958"), "+442079460958");
        assert_eq!(p("0044.20.7946.0958"), "+442079460958");
        assert_eq!(p("+1-555-123-4567"), "+15551234567");
    }

    #[test]
    fn knows_the_country() {
        let region = |s: &str| Phone::parse(s).unwrap().region().map(|r| r.to_string());
        assert_eq!(region("+12015550123").as_deref(), Some("US"));
        assert_eq!(region("+447400123456").as_deref(), Some("GB"));
        assert_eq!(region("+18765550123").as_deref(), Some("JM"));
        assert_eq!(region("+18095550123").as_deref(), Some("DO"));
        assert_eq!(region("+15551234567"), None);
        assert_eq!(Phone::parse("+447400123456").unwrap().calling_code(), 44);
    }

    #[test]
    fn rejects_what_is_not_a_number() {
        for bad in [
            "",
            "+",
            "12345678",
            "+0123456789",
            "+1234567",
            "+1234567890123456",
            "+1555abc4567",
            "+1555١٢٣4567",
            "+1-800-FLOWERS",
            "+15551234567\0",
            "+999123456789",
        ] {
            assert!(Phone::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn regions() {
        assert_eq!(Region::parse("us").unwrap().as_str(), "US");
        for bad in ["", "U", "USA", "XX", "1A", "ü"] {
            assert!(Region::parse(bad).is_err(), "{bad:?}");
        }
    }
}
