//! The console's project forms as submitted (text fields), what they show again next to
//! their errors, and how they parse into the operator service's
//! [`ProjectSettings`](crate::service::settings::ProjectSettings), every field given.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::FieldErrors;
use crate::service::settings::{
    parse_callback, parse_country_list, parse_origin_lines, FieldParser, ProjectLimits,
    ProjectName, ProjectSettings, RateLimit, Sender, SmsCap,
};
use crate::store::Project;
use futureauth_proto::Region;

/// `form` as it may be shown again: control characters (a NUL, an escape) dropped from
/// every field, line breaks kept. Parsing still sees what was sent.
fn printable<T: Serialize + DeserializeOwned + Clone>(form: &T) -> T {
    let Ok(Value::Object(mut fields)) = serde_json::to_value(form) else {
        return form.clone();
    };
    for value in fields.values_mut() {
        if let Value::String(text) = value {
            text.retain(|c| !c.is_control() || c == '\n');
        }
    }
    serde_json::from_value(Value::Object(fields)).unwrap_or_else(|_| form.clone())
}

/// The "New project" form: a name and, optionally, where magic links may point.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct NewProjectForm {
    /// Display name.
    pub name: String,
    /// Default magic-link callback URL (empty = none); its origin is allowed.
    pub callback_url: String,
    /// More allowed origins, one per line or comma-separated.
    pub allowed_origins: String,
}

impl NewProjectForm {
    /// The settings of the new project (every other one at its default); every bad field
    /// gets its own message.
    pub fn parse(&self) -> Result<ProjectSettings, FieldErrors> {
        let mut f = FieldParser::default();
        let settings = ProjectSettings {
            name: f.field("name", ProjectName::parse(&self.name)),
            callback_url: f.field("callback_url", parse_callback(&self.callback_url)),
            allowed_origins: f.field("allowed_origins", parse_origin_lines(&self.allowed_origins)),
            ..ProjectSettings::default()
        };
        f.finish(Some(settings))
    }

    /// The form as it may be shown again.
    pub fn printable(&self) -> NewProjectForm {
        printable(self)
    }
}

/// The settings form, as submitted (also what the form shows again next to its errors).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct SettingsForm {
    /// Display name.
    pub name: String,
    /// Default magic-link callback URL (empty = none).
    pub callback_url: String,
    /// Allowed origins, one per line or comma-separated.
    pub allowed_origins: String,
    /// Email sender (empty = server default).
    pub email_from: String,
    /// Messages per address per window (empty = server default).
    pub limit_per_destination: String,
    /// Messages per minute for the project (empty = server default).
    pub limit_per_minute: String,
    /// Countries SMS may go to: ISO 3166-1 alpha-2 codes separated by commas, spaces or lines
    /// (empty = no SMS).
    pub sms_countries: String,
    /// SMS to one country per hour (empty = server default).
    pub sms_per_country_per_hour: String,
    /// SMS per hour, all countries (empty = server default).
    pub sms_per_hour: String,
    /// SMS per day, all countries (empty = server default).
    pub sms_per_day: String,
}

/// A number shown in a form field (empty = the server's default).
fn shown<T: ToString>(v: Option<T>) -> String {
    v.map(|n| n.to_string()).unwrap_or_default()
}

impl SettingsForm {
    /// The current settings of `p`, for pre-filling the form.
    pub fn of(p: &Project, limits: ProjectLimits) -> SettingsForm {
        SettingsForm {
            name: p.name.clone(),
            callback_url: p.callback_url.clone().unwrap_or_default(),
            allowed_origins: p.allowed_origins.join("\n"),
            email_from: p.email_from.clone().unwrap_or_default(),
            limit_per_destination: shown(limits.per_destination),
            limit_per_minute: shown(limits.per_minute),
            sms_countries: p
                .sms_countries
                .iter()
                .map(Region::as_str)
                .collect::<Vec<_>>()
                .join(", "),
            sms_per_country_per_hour: shown(p.sms_caps.per_country_per_hour),
            sms_per_hour: shown(p.sms_caps.per_hour),
            sms_per_day: shown(p.sms_caps.per_day),
        }
    }

    /// Every setting, parsed; every bad field gets its own message.
    pub fn parse(&self) -> Result<ProjectSettings, FieldErrors> {
        let mut f = FieldParser::default();
        let cap = SmsCap::parse_field;
        let limit = RateLimit::parse_field;
        let settings = ProjectSettings {
            limit_per_destination: f
                .field("limit_per_destination", limit(&self.limit_per_destination)),
            limit_per_minute: f.field("limit_per_minute", limit(&self.limit_per_minute)),
            sms_countries: f.field("sms_countries", parse_country_list(&self.sms_countries)),
            sms_per_country_per_hour: f.field(
                "sms_per_country_per_hour",
                cap(&self.sms_per_country_per_hour),
            ),
            sms_per_hour: f.field("sms_per_hour", cap(&self.sms_per_hour)),
            sms_per_day: f.field("sms_per_day", cap(&self.sms_per_day)),
            name: f.field("name", ProjectName::parse(&self.name)),
            allowed_origins: f.field("allowed_origins", parse_origin_lines(&self.allowed_origins)),
            callback_url: f.field("callback_url", parse_callback(&self.callback_url)),
            email_from: f.field("email_from", Sender::parse(&self.email_from)),
        };
        f.finish(Some(settings))
    }

    /// The form as it may be shown again.
    pub fn printable(&self) -> SettingsForm {
        printable(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> Project {
        Project {
            id: "prj_x".into(),
            name: "Acme".into(),
            allowed_origins: vec![],
            callback_url: None,
            email_from: None,
            sms_countries: crate::sms::default_countries(),
            sms_caps: Default::default(),
            created_at: crate::clock::UnixMillis::from_millis(0),
        }
    }

    #[test]
    fn forms_are_shown_again_without_control_characters() {
        let form = NewProjectForm {
            name: "A\u{0}c\u{1b}me".into(),
            callback_url: String::new(),
            allowed_origins: "https://a.example\nhttps://b.example".into(),
        };
        let shown = form.printable();
        assert_eq!(shown.name, "Acme");
        assert_eq!(shown.allowed_origins, form.allowed_origins);
    }

    #[test]
    fn settings_errors_are_per_field() {
        let input = SettingsForm {
            name: " ".into(),
            callback_url: "javascript:alert(1)".into(),
            allowed_origins: "https://ok.example.com\nftp://x".into(),
            email_from: "nobody".into(),
            limit_per_destination: "0".into(),
            limit_per_minute: "many".into(),
            sms_countries: "US, XX".into(),
            sms_per_country_per_hour: "0".into(),
            sms_per_hour: "4294967296".into(),
            sms_per_day: "1\0".into(),
        };
        let errors = input.parse().unwrap_err();
        let fields: Vec<_> = errors.keys().copied().collect();
        assert_eq!(
            fields,
            [
                "allowed_origins",
                "callback_url",
                "email_from",
                "limit_per_destination",
                "limit_per_minute",
                "name",
                "sms_countries",
                "sms_per_country_per_hour",
                "sms_per_day",
                "sms_per_hour"
            ]
        );
    }

    #[test]
    fn callback_origin_is_allowed_automatically() {
        let input = SettingsForm {
            name: "Acme 2".into(),
            callback_url: "https://App.acme.com/auth/cb".into(),
            allowed_origins: "http://localhost:3000, http://localhost:3000".into(),
            email_from: "Acme <login@acme.com>".into(),
            limit_per_destination: " 3 ".into(),
            limit_per_minute: "".into(),
            sms_countries: "gb,DE\nde  fr".into(),
            sms_per_country_per_hour: "".into(),
            sms_per_hour: " 50 ".into(),
            sms_per_day: "".into(),
        };
        let settings = input.parse().unwrap();
        let (p, limits) = settings.apply(&project(), ProjectLimits::default());
        let countries: Vec<_> = p.sms_countries.iter().map(Region::as_str).collect();
        assert_eq!(countries, ["GB", "DE", "FR"]);
        assert_eq!(
            p.sms_caps,
            crate::sms::SmsCaps {
                per_country_per_hour: None,
                per_hour: Some(50),
                per_day: None
            }
        );
        assert_eq!(limits.per_destination, Some(3));
        assert_eq!(limits.per_minute, None);
        assert_eq!(
            p.allowed_origins,
            ["https://app.acme.com", "http://localhost:3000"]
        );
        assert_eq!(
            p.callback_url.as_deref(),
            Some("https://app.acme.com/auth/cb")
        );
    }
}
