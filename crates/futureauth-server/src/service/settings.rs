//! A project's settings as types: what the console's forms, the management API's JSON and
//! the CLI's flags all parse into. Each field has one parser here (so one message per bad
//! value, whichever face it came from); [`SettingsPatch::apply`] is the one place where the
//! fields meet (a callback URL's origin is always allowed).

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

use futureauth_proto::{CallbackUrl, Origin, Region};

use super::validate;
use crate::error::FieldErrors;
use crate::sms::SmsCaps;
use crate::store::Project;

/// Most allowed origins one project may list.
const MAX_ORIGINS: usize = 20;
/// Most countries one project may list (there are about 250).
const MAX_SMS_COUNTRIES: usize = 300;

/// A project's display name: 1 to 100 characters, trimmed, not the console's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectName(String);

impl ProjectName {
    /// Parses a name as typed.
    pub fn parse(raw: &str) -> Result<ProjectName, String> {
        validate::project_name(raw).map(ProjectName)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email sender: `Acme <login@acme.com>` or `login@acme.com`, not naming the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender(String);

impl Sender {
    /// Parses a sender as typed; empty means the server's default (`None`).
    pub fn parse(raw: &str) -> Result<Option<Sender>, String> {
        let from = raw.trim();
        if from.is_empty() {
            return Ok(None);
        }
        if from.chars().any(char::is_control) || !from.contains('@') || from.len() > 200 {
            return Err("use an address like `Acme <login@acme.com>` or `login@acme.com`".into());
        }
        if validate::mentions_console(from.split('<').next().unwrap_or("")) {
            return Err("the sender name is reserved for the server's own console".into());
        }
        Ok(Some(Sender(from.to_owned())))
    }
}

/// A whole number from 1 to `MAX`: an SMS cap or a rate limit a project sets for itself
/// (unset: the server's default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounded<const MAX: u32>(NonZeroU32);

/// An SMS cap: 1 to 1,000,000.
pub type SmsCap = Bounded<1_000_000>;
/// A rate limit: 1 to 100,000.
pub type RateLimit = Bounded<100_000>;

impl<const MAX: u32> Bounded<MAX> {
    fn out_of_range() -> String {
        format!("a whole number from 1 to {MAX}, or empty for the server default")
    }

    /// A form field: empty for the server's default, else 1 to `MAX`.
    pub fn parse_field(raw: &str) -> Result<Option<Self>, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        raw.parse().map(Some)
    }

    /// A JSON number: 0 for the server's default, else 1 to `MAX`.
    pub fn from_json(n: i64) -> Result<Option<Self>, String> {
        match n {
            0 => Ok(None),
            n => u32::try_from(n)
                .ok()
                .and_then(NonZeroU32::new)
                .filter(|v| v.get() <= MAX)
                .map(|v| Some(Bounded(v)))
                .ok_or_else(Self::out_of_range),
        }
    }

    /// The number.
    pub fn get(self) -> u32 {
        self.0.get()
    }
}

/// `1` to `MAX` (clap's flags and form fields parse through this).
impl<const MAX: u32> FromStr for Bounded<MAX> {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        s.trim()
            .parse::<NonZeroU32>()
            .ok()
            .filter(|v| v.get() <= MAX)
            .map(Bounded)
            .ok_or_else(Self::out_of_range)
    }
}

impl<const MAX: u32> fmt::Display for Bounded<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The default magic-link callback URL; empty removes it (`None`).
pub fn parse_callback(raw: &str) -> Result<Option<CallbackUrl>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    CallbackUrl::parse(raw)
        .map(Some)
        .map_err(|e| format!("`{raw}` {e}"))
}

/// One allowed origin, given as any http(s) URL: only its origin is kept.
fn parse_origin(raw: &str) -> Result<Origin, String> {
    let (url, _) = validate::http_url(raw)?;
    Origin::of(&url).ok_or_else(|| format!("`{raw}` must be an http or https URL"))
}

/// Distinct values in the order given, one per item: an item holding one of `separators`
/// is refused with `one_per_item`, and more than `max` values too.
fn distinct<'a, T: PartialEq>(
    items: impl IntoIterator<Item = &'a str>,
    separators: &[char],
    one_per_item: &str,
    max: (usize, &str),
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    let mut values = Vec::new();
    for raw in items.into_iter().map(str::trim).filter(|s| !s.is_empty()) {
        if raw.contains(separators) {
            return Err(one_per_item.into());
        }
        let value = parse(raw)?;
        if !values.contains(&value) {
            values.push(value);
        }
        if values.len() > max.0 {
            return Err(format!("at most {} {}", max.0, max.1));
        }
    }
    Ok(values)
}

const ORIGIN_SEPARATORS: [char; 2] = ['\n', ','];
const COUNTRY_SEPARATORS: [char; 5] = [',', ' ', '\n', '\r', '\t'];

/// Allowed origins, one per item, without duplicates, at most 20.
pub fn parse_origins<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Vec<Origin>, String> {
    let max = (MAX_ORIGINS, "origins");
    distinct(
        items,
        &ORIGIN_SEPARATORS,
        "one origin per list item",
        max,
        parse_origin,
    )
}

/// Origins typed in one text field: one per line or comma-separated.
pub fn parse_origin_lines(raw: &str) -> Result<Vec<Origin>, String> {
    parse_origins(raw.split(ORIGIN_SEPARATORS))
}

/// SMS countries (ISO 3166-1 alpha-2), one per item, distinct, in the order given.
pub fn parse_countries<'a>(
    items: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Region>, String> {
    let max = (MAX_SMS_COUNTRIES, "countries");
    distinct(
        items,
        &COUNTRY_SEPARATORS,
        "one country code per list item",
        max,
        |c| Region::parse(c).map_err(|e| format!("{e} (ISO 3166-1 alpha-2)")),
    )
}

/// SMS countries typed in one text field: separated by commas, spaces or lines.
pub fn parse_country_list(raw: &str) -> Result<Vec<Region>, String> {
    parse_countries(raw.split(COUNTRY_SEPARATORS))
}

/// Per-project rate limits (`None` = the server's default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProjectLimits {
    /// Messages to one address per destination window.
    pub per_destination: Option<i64>,
    /// Messages per minute.
    pub per_minute: Option<i64>,
}

/// A project's settings as given, each field parsed; `None` keeps the current value (on
/// creation: the default), and `Some(None)` sets an optional one back to the server's
/// default. The console's settings form gives them all, a PATCH body or the CLI only some.
#[derive(Debug, Clone, Default)]
pub struct ProjectSettings {
    /// Display name.
    pub name: Option<ProjectName>,
    /// Default magic-link callback URL; its origin is allowed automatically.
    pub callback_url: Option<Option<CallbackUrl>>,
    /// Allowed origins (replaces the list).
    pub allowed_origins: Option<Vec<Origin>>,
    /// Email sender.
    pub email_from: Option<Option<Sender>>,
    /// Messages per address per destination window.
    pub limit_per_destination: Option<Option<RateLimit>>,
    /// Messages per minute.
    pub limit_per_minute: Option<Option<RateLimit>>,
    /// SMS countries (replaces the list).
    pub sms_countries: Option<Vec<Region>>,
    /// SMS to one country per hour.
    pub sms_per_country_per_hour: Option<Option<SmsCap>>,
    /// SMS per hour, all countries.
    pub sms_per_hour: Option<Option<SmsCap>>,
    /// SMS per day, all countries.
    pub sms_per_day: Option<Option<SmsCap>>,
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

fn cap(v: Option<SmsCap>) -> Option<u32> {
    v.map(SmsCap::get)
}

fn limit(v: Option<RateLimit>) -> Option<i64> {
    v.map(|l| i64::from(l.get()))
}

impl ProjectSettings {
    /// The project and limits after the change. The callback URL's origin is always among
    /// the allowed origins (first, when it was not listed).
    pub fn apply(self, current: &Project, limits: ProjectLimits) -> (Project, ProjectLimits) {
        let mut p = current.clone();
        let mut l = limits;
        set(&mut p.name, self.name.map(|n| n.0));
        set(
            &mut l.per_destination,
            self.limit_per_destination.map(limit),
        );
        set(&mut l.per_minute, self.limit_per_minute.map(limit));
        set(&mut p.sms_countries, self.sms_countries);
        let caps: &mut SmsCaps = &mut p.sms_caps;
        set(
            &mut caps.per_country_per_hour,
            self.sms_per_country_per_hour.map(cap),
        );
        set(&mut caps.per_hour, self.sms_per_hour.map(cap));
        set(&mut caps.per_day, self.sms_per_day.map(cap));
        set(&mut p.email_from, self.email_from.map(|s| s.map(|s| s.0)));
        if let Some(origins) = self.allowed_origins {
            p.allowed_origins = origins.iter().map(Origin::to_string).collect();
        }
        if let Some(cb) = self.callback_url {
            p.callback_url = cb.map(|c| c.as_str().to_owned());
        }
        // The current callback (as stored, perhaps before today's rules) keeps its origin.
        let callback_origin = p
            .callback_url
            .as_deref()
            .and_then(|cb| validate::http_url(cb).ok())
            .map(|(_, origin)| origin);
        if let Some(origin) = callback_origin {
            if !p.allowed_origins.contains(&origin) {
                p.allowed_origins.insert(0, origin);
            }
        }
        (p, l)
    }
}

/// Collects the messages of the fields that did not parse, by field name.
#[derive(Debug, Default)]
pub struct FieldParser {
    errors: FieldErrors,
}

impl FieldParser {
    /// The value, or `None` with `field`'s message noted.
    pub fn field<T>(&mut self, field: &'static str, parsed: Result<T, String>) -> Option<T> {
        parsed
            .map_err(|m| {
                self.errors.entry(field).or_insert(m);
            })
            .ok()
    }

    /// `raw` parsed when it was given (`None` when not, or with `field`'s message noted).
    pub fn given<T, U>(
        &mut self,
        field: &'static str,
        raw: Option<T>,
        parse: impl FnOnce(T) -> Result<U, String>,
    ) -> Option<U> {
        raw.and_then(|raw| self.field(field, parse(raw)))
    }

    /// The value built from the parsed fields (`None` when one of them did not parse), or
    /// the messages.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, FieldErrors> {
        match value {
            Some(v) if self.errors.is_empty() => Ok(v),
            _ => Err(self.errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_bounded() {
        assert_eq!(
            SmsCap::parse_field(" 50 ").unwrap().map(SmsCap::get),
            Some(50)
        );
        assert_eq!(SmsCap::parse_field("").unwrap(), None);
        assert!(SmsCap::parse_field("0").is_err());
        assert!(SmsCap::parse_field("4294967296").is_err());
        assert!(RateLimit::parse_field("100001").is_err());
        assert_eq!(SmsCap::from_json(0).unwrap(), None);
        assert!(SmsCap::from_json(-1).is_err());
        assert!(SmsCap::from_json(1_000_001).is_err());
        assert_eq!("7".parse::<SmsCap>().map(SmsCap::get), Ok(7));
    }

    #[test]
    fn origins_are_kept_as_stored_before() {
        for raw in [
            "https://App.acme.com/auth/cb",
            "http://localhost:3000",
            "https://x.example:443/",
            "http://[::1]:8080/p",
            "https://bücher.example",
        ] {
            let (_, before) = validate::http_url(raw).unwrap();
            assert_eq!(parse_origin(raw).unwrap().to_string(), before, "{raw}");
        }
    }

    #[test]
    fn lists_take_one_value_per_item() {
        assert!(parse_origins(["https://a.example, https://b.example"]).is_err());
        assert!(parse_countries(["FR,DE"]).is_err());
        let c: Vec<_> = parse_country_list("gb,DE\nde  fr")
            .unwrap()
            .iter()
            .map(|r| r.as_str().to_owned())
            .collect();
        assert_eq!(c, ["GB", "DE", "FR"]);
    }
}
