//! Message templates (files under `templates/`, one per message kind and channel), rendered
//! with minijinja. Templates ending in `.html` are HTML-escaped automatically.

use minijinja::{context, Environment};

use crate::error::ServiceError;

/// English, the default: `templates/<kind>/<file>`.
pub const DEFAULT_LOCALE: &str = "en";

/// The seven message templates of one locale other than English, from
/// `templates/<kind>/<locale>/<file>`. To add a locale: copy `templates/otp/de` and
/// `templates/magic_link/de` to the new language's folder, translate, and add one
/// `locale!("xx")` line to [`LOCALES`].
macro_rules! locale {
    ($l:literal) => {
        (
            $l,
            [
                (
                    "otp/email.subject",
                    include_str!(concat!("../../templates/otp/", $l, "/email.subject")),
                ),
                (
                    "otp/email.txt",
                    include_str!(concat!("../../templates/otp/", $l, "/email.txt")),
                ),
                (
                    "otp/email.html",
                    include_str!(concat!("../../templates/otp/", $l, "/email.html")),
                ),
                (
                    "otp/sms.txt",
                    include_str!(concat!("../../templates/otp/", $l, "/sms.txt")),
                ),
                (
                    "magic_link/email.subject",
                    include_str!(concat!("../../templates/magic_link/", $l, "/email.subject")),
                ),
                (
                    "magic_link/email.txt",
                    include_str!(concat!("../../templates/magic_link/", $l, "/email.txt")),
                ),
                (
                    "magic_link/email.html",
                    include_str!(concat!("../../templates/magic_link/", $l, "/email.html")),
                ),
            ],
        )
    };
}

/// Translations: (language, its templates).
const LOCALES: &[(&str, [(&str, &str); 7])] = &[locale!("de")];

const TEMPLATES: &[(&str, &str)] = &[
    (
        "otp/email.subject",
        include_str!("../../templates/otp/email.subject"),
    ),
    (
        "otp/email.txt",
        include_str!("../../templates/otp/email.txt"),
    ),
    (
        "otp/email.html",
        include_str!("../../templates/otp/email.html"),
    ),
    ("otp/sms.txt", include_str!("../../templates/otp/sms.txt")),
    (
        "magic_link/email.subject",
        include_str!("../../templates/magic_link/email.subject"),
    ),
    (
        "magic_link/email.txt",
        include_str!("../../templates/magic_link/email.txt"),
    ),
    (
        "magic_link/email.html",
        include_str!("../../templates/magic_link/email.html"),
    ),
];

/// Whether `tag` looks like a BCP 47 language tag (`de`, `de-AT`, `pt_BR`, `zh-Hant-TW`):
/// the rule of [`futureauth_proto::Locale`], shared with the SDK.
pub fn is_locale_tag(tag: &str) -> bool {
    futureauth_proto::Locale::parse(tag).is_ok()
}

/// A rendered email body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    /// Subject (one line).
    pub subject: String,
    /// Plain text.
    pub text: String,
    /// HTML.
    pub html: String,
}

/// The compiled templates.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// Loads the embedded templates: English as `<kind>/<file>`, each translation as
    /// `<locale>/<kind>/<file>`.
    pub fn new() -> Result<Templates, ServiceError> {
        let mut env = Environment::new();
        let translated = LOCALES.iter().flat_map(|(locale, files)| {
            files
                .iter()
                .map(move |(name, source)| (format!("{locale}/{name}"), *source))
        });
        let english = TEMPLATES.iter().map(|(n, s)| ((*n).to_owned(), *s));
        for (name, source) in english.chain(translated) {
            env.add_template_owned(name, source)
                .map_err(|e| ServiceError::Template(e.to_string()))?;
        }
        Ok(Templates { env })
    }

    /// The locale whose templates render a request for `requested`: the exact tag if
    /// translated, else its base language, else English. Case and `_`/`-` do not matter.
    pub fn pick(requested: Option<&str>) -> &'static str {
        let Some(tag) = requested else {
            return DEFAULT_LOCALE;
        };
        let tag = tag.trim().to_ascii_lowercase().replace('_', "-");
        let base = tag.split('-').next().unwrap_or("");
        for want in [tag.as_str(), base] {
            if let Some((locale, _)) = LOCALES.iter().find(|(l, _)| *l == want) {
                return locale;
            }
        }
        DEFAULT_LOCALE
    }

    fn render(
        &self,
        locale: &str,
        name: &str,
        ctx: minijinja::Value,
    ) -> Result<String, ServiceError> {
        let full = if locale == DEFAULT_LOCALE {
            name.to_owned()
        } else {
            format!("{locale}/{name}")
        };
        self.env
            .get_template(&full)
            .and_then(|t| t.render(ctx))
            .map_err(|e| ServiceError::Template(format!("{full}: {e}")))
    }

    fn email(
        &self,
        locale: &str,
        kind: &str,
        ctx: minijinja::Value,
    ) -> Result<RenderedEmail, ServiceError> {
        let subject = self.render(locale, &format!("{kind}/email.subject"), ctx.clone())?;
        Ok(RenderedEmail {
            // A subject is one line whatever the template or name contains.
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            text: self.render(locale, &format!("{kind}/email.txt"), ctx.clone())?,
            html: self.render(locale, &format!("{kind}/email.html"), ctx)?,
        })
    }

    /// The sign-in code email in `locale` (from [`Templates::pick`]).
    pub fn otp_email(
        &self,
        locale: &str,
        project: &str,
        code: &str,
    ) -> Result<RenderedEmail, ServiceError> {
        self.email(locale, "otp", context! { project, code })
    }

    /// The sign-in code SMS in `locale`.
    pub fn otp_sms(&self, locale: &str, project: &str, code: &str) -> Result<String, ServiceError> {
        self.render(locale, "otp/sms.txt", context! { project, code })
    }

    /// The magic-link email in `locale`.
    pub fn magic_link_email(
        &self,
        locale: &str,
        project: &str,
        link: &str,
        code: Option<&str>,
    ) -> Result<RenderedEmail, ServiceError> {
        self.email(locale, "magic_link", context! { project, link, code })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otp_email_names_project_and_code_and_escapes_html() {
        let t = Templates::new().unwrap();
        let e = t.otp_email("en", "Acme <b>&</b>", "123456").unwrap();
        assert_eq!(e.subject, "123456 is your Acme <b>&</b> sign-in code");
        assert!(e.text.contains("123456") && e.text.contains("Acme <b>&</b>"));
        assert!(e.html.contains("123456"));
        assert!(e.html.contains("Acme &lt;b&gt;&amp;&lt;"), "{}", e.html);
        assert!(!e.html.contains("<b>&</b>"));
    }

    #[test]
    fn otp_sms() {
        let t = Templates::new().unwrap();
        let s = t.otp_sms("en", "Acme", "ab12cd").unwrap();
        assert_eq!(
            s,
            "ab12cd is your Acme sign-in code. Don't share it with anyone."
        );
    }

    #[test]
    fn magic_link_email() {
        let t = Templates::new().unwrap();
        let e = t
            .magic_link_email(
                "en",
                "Acme",
                "https://app.example.com/cb?a=1&token=xyz",
                None,
            )
            .unwrap();
        assert_eq!(e.subject, "Sign in to Acme");
        assert!(e.text.contains("https://app.example.com/cb?a=1&token=xyz"));
        assert!(e.html.contains("a=1&amp;token=xyz"));
        assert!(
            !e.text.contains("code"),
            "older clients send no code: link only"
        );
        for locale in ["en", "de"] {
            let e = t
                .magic_link_email(
                    locale,
                    "Acme",
                    "https://app.example.com/cb?token=xyz",
                    Some("k3x9p2"),
                )
                .unwrap();
            assert!(
                e.text.contains("k3x9p2") && e.html.contains("k3x9p2"),
                "{locale}"
            );
            assert!(
                e.text.contains("https://app.example.com/cb?token=xyz"),
                "{locale}"
            );
        }
    }

    #[test]
    fn german_renders_every_message_and_escapes_html() {
        let t = Templates::new().unwrap();
        let e = t.otp_email("de", "Acme <b>", "123456").unwrap();
        assert_eq!(e.subject, "123456 ist Ihr Anmeldecode für Acme <b>");
        assert!(e.text.contains("Ihr Anmeldecode für Acme <b> lautet"));
        assert!(e.html.contains("Acme &lt;b&gt;") && !e.html.contains("Acme <b>"));
        assert_eq!(
            t.otp_sms("de", "Acme", "ab12cd").unwrap(),
            "ab12cd ist Ihr Anmeldecode für Acme. Geben Sie ihn an niemanden weiter."
        );
        let m = t
            .magic_link_email("de", "Acme", "https://a.example/cb?token=x", None)
            .unwrap();
        assert_eq!(m.subject, "Bei Acme anmelden");
        assert!(m.text.contains("https://a.example/cb?token=x"));
    }

    #[test]
    fn pick_falls_back_from_region_to_language_to_english() {
        assert_eq!(Templates::pick(None), "en");
        assert_eq!(Templates::pick(Some("de")), "de");
        assert_eq!(Templates::pick(Some("de-AT")), "de");
        assert_eq!(Templates::pick(Some("DE_ch")), "de");
        assert_eq!(Templates::pick(Some("en-GB")), "en");
        assert_eq!(Templates::pick(Some("fr")), "en");
        assert_eq!(Templates::pick(Some("deu")), "en");
    }

    #[test]
    fn locale_tags_are_checked() {
        for ok in ["de", "de-AT", "pt_BR", "zh-Hant-TW"] {
            assert!(is_locale_tag(ok), "{ok}");
        }
        for bad in ["", "-de", "de AT", "de;q=0.9", "<b>", &"a".repeat(36)] {
            assert!(!is_locale_tag(bad), "{bad}");
        }
    }
}
