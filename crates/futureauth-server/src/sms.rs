//! Where a project may send SMS: a list of countries (ISO regions, as libphonenumber assigns
//! numbers to them) and hourly/daily caps.
//!
//! Countries, not prefixes: `+1` is shared by the US, Canada and some twenty Caribbean
//! regions where premium-rate SMS fraud ("SMS pumping") pays, and libphonenumber tells
//! `+1 876` (Jamaica) from `+1 201` (New Jersey). A number it does not place in any country
//! (`+1 555 …`) is not sent at all.

use futureauth_proto::Region;

/// Countries a project may text when it names none: North America without the Caribbean,
/// Western Europe's largest markets, Australia and New Zealand. All have low SMS-pumping risk
/// and cheap routes; projects add others explicitly (`--sms-countries`).
pub const DEFAULT_SMS_COUNTRIES: &[&str] = &[
    "US", "CA", "GB", "IE", "DE", "FR", "NL", "ES", "IT", "AU", "NZ",
];

/// [`DEFAULT_SMS_COUNTRIES`] parsed.
pub fn default_countries() -> Vec<Region> {
    DEFAULT_SMS_COUNTRIES
        .iter()
        .filter_map(|c| Region::parse(c).ok())
        .collect()
}

/// A project's own SMS caps; `None` takes the server's default (`--sms-per-…`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SmsCaps {
    /// SMS to one country per hour.
    pub per_country_per_hour: Option<u32>,
    /// SMS per hour, all countries.
    pub per_hour: Option<u32>,
    /// SMS per day, all countries.
    pub per_day: Option<u32>,
}

/// The countries a project stored before countries existed (a list of calling-code prefixes
/// such as `+1`, `+44`) may text: for each prefix, the default countries that share its
/// calling code, or else the code's main country. `+1` thus becomes US and CA, never JM.
pub fn countries_from_legacy_prefixes(prefixes: &[String]) -> Vec<Region> {
    let defaults = default_countries();
    let mut out: Vec<Region> = Vec::new();
    for p in prefixes {
        let digits = p.trim().trim_start_matches('+');
        // The calling code is the shortest leading digits that name one (1 to 3 digits).
        let regions = (1..=digits.len().min(3))
            .filter_map(|n| digits.get(..n)?.parse::<u16>().ok())
            .map(Region::of_calling_code)
            .find(|r| !r.is_empty())
            .unwrap_or_default();
        let allowed: Vec<Region> = regions
            .iter()
            .copied()
            .filter(|r| defaults.contains(r))
            .collect();
        let picked = if allowed.is_empty() {
            regions.first().copied().into_iter().collect()
        } else {
            allowed
        };
        for r in picked {
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[Region]) -> Vec<&str> {
        v.iter().map(Region::as_str).collect()
    }

    #[test]
    fn defaults_parse_and_leave_out_the_caribbean() {
        let d = default_countries();
        assert_eq!(d.len(), DEFAULT_SMS_COUNTRIES.len());
        for caribbean in ["JM", "DO", "AG", "BS", "BB", "TT"] {
            assert!(!names(&d).contains(&caribbean), "{caribbean}");
        }
    }

    #[test]
    fn legacy_prefixes_become_countries() {
        let p = |v: &[&str]| {
            countries_from_legacy_prefixes(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(names(&p(&["+1", "+44"])), ["US", "CA", "GB"]);
        assert_eq!(names(&p(&["+81"])), ["JP"]);
        assert_eq!(names(&p(&["+33", "+33"])), ["FR"]);
        assert!(p(&["+999"]).is_empty());
    }
}
