//! Message templates (files under `templates/`, one per message kind and channel), rendered
//! with minijinja. Templates ending in `.html` are HTML-escaped automatically.

use futureauth_proto::Locale;
use minijinja::{context, Environment, Value};

use crate::error::ServiceError;

/// English, the default: `templates/<kind>/<file>`.
pub const DEFAULT_LOCALE: &str = "en";

/// How many template files one locale has: four message kinds (sign-in code, magic link,
/// confirm-address code, address-change notice) by channel and part.
const FILES: usize = 15;

/// The template files of one locale, as `(name, source)`: `templates/<kind>/<file>` for
/// English (`template_files!("")`), `templates/<kind>/<locale>/<file>` for a translation
/// (`template_files!("de/")`). Every message kind by channel and part is named here once.
/// To add a locale: copy the `de` folder of each kind (`otp`, `magic_link`,
/// `confirm_address`, `address_change_notice`) to the new language's folder, translate, and
/// add one `("xx", template_files!("xx/"))` line to [`LOCALES`].
macro_rules! template_files {
    ($dir:literal) => {
        template_files!(@each $dir;
            "otp" / "email.subject", "otp" / "email.txt", "otp" / "email.html", "otp" / "sms.txt",
            "magic_link" / "email.subject", "magic_link" / "email.txt",
            "magic_link" / "email.html",
            "confirm_address" / "email.subject", "confirm_address" / "email.txt",
            "confirm_address" / "email.html", "confirm_address" / "sms.txt",
            "address_change_notice" / "email.subject", "address_change_notice" / "email.txt",
            "address_change_notice" / "email.html", "address_change_notice" / "sms.txt",
        )
    };
    (@each $dir:literal; $($kind:literal / $file:literal),* $(,)?) => {
        [$((
            concat!($kind, "/", $file),
            include_str!(concat!("../../templates/", $kind, "/", $dir, $file)),
        )),*]
    };
}

/// Translations: (language, its templates).
const LOCALES: &[(&str, [(&str, &str); FILES])] = &[("de", template_files!("de/"))];

/// English, the default.
const TEMPLATES: [(&str, &str); FILES] = template_files!("");

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

/// A rendered SMS: its text.
pub type RenderedSms = String;

/// What a message renders to on its channel: a kind of message (`otp`, `confirm_address`,
/// ...) is one set of templates, and the channel picks its files in it.
pub trait Rendered: Sized {
    /// The `kind` of message in `locale`, from the templates under `<kind>/`.
    fn render(t: &Templates, locale: &str, kind: &str, ctx: Value) -> Result<Self, ServiceError>;
}

impl Rendered for RenderedEmail {
    fn render(t: &Templates, locale: &str, kind: &str, ctx: Value) -> Result<Self, ServiceError> {
        t.email(locale, kind, ctx)
    }
}

impl Rendered for RenderedSms {
    fn render(t: &Templates, locale: &str, kind: &str, ctx: Value) -> Result<Self, ServiceError> {
        t.sms(locale, kind, ctx)
    }
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
    pub fn pick(requested: Option<&Locale>) -> &'static str {
        let Some(tag) = requested else {
            return DEFAULT_LOCALE;
        };
        let tag = tag.as_str().to_ascii_lowercase().replace('_', "-");
        let base = tag.split('-').next().unwrap_or("");
        for want in [tag.as_str(), base] {
            if let Some((locale, _)) = LOCALES.iter().find(|(l, _)| *l == want) {
                return locale;
            }
        }
        DEFAULT_LOCALE
    }

    fn render(&self, locale: &str, name: &str, ctx: Value) -> Result<String, ServiceError> {
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

    fn email(&self, locale: &str, kind: &str, ctx: Value) -> Result<RenderedEmail, ServiceError> {
        let subject = self.render(locale, &format!("{kind}/email.subject"), ctx.clone())?;
        Ok(RenderedEmail {
            // A subject is one line whatever the template or name contains.
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            text: self.render(locale, &format!("{kind}/email.txt"), ctx.clone())?,
            html: self.render(locale, &format!("{kind}/email.html"), ctx)?,
        })
    }

    /// The SMS of a `kind` of message (its `<kind>/sms.txt`), as [`email`](Self::email) is its email.
    fn sms(&self, locale: &str, kind: &str, ctx: Value) -> Result<String, ServiceError> {
        self.render(locale, &format!("{kind}/sms.txt"), ctx)
    }

    /// The sign-in code message in `locale` (from [`Templates::pick`]).
    pub fn otp<R: Rendered>(
        &self,
        locale: &str,
        project: &str,
        code: &str,
    ) -> Result<R, ServiceError> {
        R::render(self, locale, "otp", context! { project, code })
    }

    /// The code message to a new address, to confirm it, in `locale`; with `link` (email
    /// only), the link to the app's confirm page is offered too.
    pub fn confirm_address<R: Rendered>(
        &self,
        locale: &str,
        project: &str,
        code: &str,
        link: Option<&str>,
    ) -> Result<R, ServiceError> {
        R::render(
            self,
            locale,
            "confirm_address",
            context! { project, code, link },
        )
    }

    /// The notice to the address a user has that `new_address` (masked) was asked for:
    /// no code, nothing to click.
    pub fn notice<R: Rendered>(
        &self,
        locale: &str,
        project: &str,
        new_address: &str,
    ) -> Result<R, ServiceError> {
        R::render(
            self,
            locale,
            "address_change_notice",
            context! { project, new_address },
        )
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

    fn locale(tag: &str) -> Locale {
        Locale::parse(tag).expect("a tag")
    }

    #[test]
    fn otp_email_names_project_and_code_and_escapes_html() {
        let t = Templates::new().unwrap();
        let e: RenderedEmail = t.otp("en", "Acme <b>&</b>", "123456").unwrap();
        assert_eq!(e.subject, "123456 is your Acme <b>&</b> sign-in code");
        assert!(e.text.contains("123456") && e.text.contains("Acme <b>&</b>"));
        assert!(e.html.contains("123456"));
        assert!(e.html.contains("Acme &lt;b&gt;&amp;&lt;"), "{}", e.html);
        assert!(!e.html.contains("<b>&</b>"));
    }

    #[test]
    fn otp_sms() {
        let t = Templates::new().unwrap();
        let s = t.otp::<RenderedSms>("en", "Acme", "ab12cd").unwrap();
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
        let e: RenderedEmail = t.otp("de", "Acme <b>", "123456").unwrap();
        assert_eq!(e.subject, "123456 ist Ihr Anmeldecode für Acme <b>");
        assert!(e.text.contains("Ihr Anmeldecode für Acme <b> lautet"));
        assert!(e.html.contains("Acme &lt;b&gt;") && !e.html.contains("Acme <b>"));
        assert_eq!(
            t.otp::<RenderedSms>("de", "Acme", "ab12cd").unwrap(),
            "ab12cd ist Ihr Anmeldecode für Acme. Geben Sie ihn an niemanden weiter."
        );
        let m = t
            .magic_link_email("de", "Acme", "https://a.example/cb?token=x", None)
            .unwrap();
        assert_eq!(m.subject, "Bei Acme anmelden");
        assert!(m.text.contains("https://a.example/cb?token=x"));
    }

    #[test]
    fn confirm_address_and_notice_in_every_locale() {
        let t = Templates::new().unwrap();
        let e: RenderedEmail = t.confirm_address("en", "Acme", "a1b2c3", None).unwrap();
        assert_eq!(
            e.subject,
            "a1b2c3 is your code to confirm your new Acme email address"
        );
        assert!(e
            .text
            .contains("use this email address for your Acme account"));
        assert!(!e.text.contains("sign-in") && !e.text.contains("sign in"));
        assert_eq!(
            t.confirm_address::<RenderedSms>("en", "Acme", "a1b2c3", None).unwrap(),
            "a1b2c3 is your code to confirm this number for your Acme account. If you did not ask for it, ignore this message."
        );
        let n: RenderedEmail = t.notice("en", "Acme <b>", "a***@example.com").unwrap();
        assert_eq!(
            n.subject,
            "A new address was requested for your Acme <b> account"
        );
        assert!(n
            .text
            .contains("asked to use a new address: a***@example.com"));
        assert!(n.html.contains("Acme &lt;b&gt;") && !n.html.contains("Acme <b>"));
        assert!(!n.text.contains("code") && !n.html.contains("code"));
        assert_eq!(
            t.notice::<RenderedSms>("en", "Acme", "+44 ****** 789").unwrap(),
            "Acme: someone signed in to your account asked to use a new address, +44 ****** 789. If it was not you, sign in and check your account. Nothing to enter."
        );
        let d: RenderedEmail = t.notice("de", "Acme", "a***@example.com").unwrap();
        assert_eq!(
            d.subject,
            "Für Ihr Konto bei Acme wurde eine neue Adresse angefordert"
        );
        assert!(d.text.contains("a***@example.com") && !d.text.contains("Code"));
        assert!(t
            .notice::<RenderedSms>("de", "Acme", "+44 ****** 789")
            .unwrap()
            .contains("neue Adresse angefordert: +44 ****** 789"));
        let c: RenderedEmail = t.confirm_address("de", "Acme", "a1b2c3", None).unwrap();
        assert!(c.subject.starts_with("a1b2c3 ist Ihr Code zur Bestätigung"));
        assert!(t
            .confirm_address::<RenderedSms>("de", "Acme", "a1b2c3", None)
            .unwrap()
            .starts_with("a1b2c3 ist Ihr Code, um diese Nummer"));
    }

    #[test]
    fn confirm_address_email_offers_the_link_when_given() {
        let t = Templates::new().unwrap();
        let link = "https://app.example/api/auth/confirm-identifier-change?token=t&x=<y>";
        let plain: RenderedEmail = t.confirm_address("en", "Acme", "a1b2c3", None).unwrap();
        assert!(!plain.text.contains("link") && !plain.html.contains("href"));
        let e: RenderedEmail = t
            .confirm_address("en", "Acme", "a1b2c3", Some(link))
            .unwrap();
        assert_eq!(e.subject, plain.subject);
        assert!(
            e.text.contains("a1b2c3") && e.text.contains(link),
            "{}",
            e.text
        );
        assert!(e
            .text
            .contains("Or open this link in the browser where you are signed in to Acme"));
        assert!(
            e.html.contains("a1b2c3") && e.html.contains("x=&lt;y&gt;"),
            "{}",
            e.html
        );
        let d: RenderedEmail = t
            .confirm_address("de", "Acme", "a1b2c3", Some(link))
            .unwrap();
        assert!(d.text.contains(link) && d.text.contains("Oder öffnen Sie diesen Link"));
        assert!(d.html.contains("Diese E-Mail-Adresse bestätigen"));
    }

    #[test]
    fn pick_falls_back_from_region_to_language_to_english() {
        assert_eq!(Templates::pick(None), "en");
        assert_eq!(Templates::pick(Some(&locale("de"))), "de");
        assert_eq!(Templates::pick(Some(&locale("de-AT"))), "de");
        assert_eq!(Templates::pick(Some(&locale("DE_ch"))), "de");
        assert_eq!(Templates::pick(Some(&locale("en-GB"))), "en");
        assert_eq!(Templates::pick(Some(&locale("fr"))), "en");
        assert_eq!(Templates::pick(Some(&locale("deu"))), "en");
    }

    #[test]
    fn locale_tags_are_checked() {
        for ok in ["de", "de-AT", "pt_BR", "zh-Hant-TW"] {
            assert!(Locale::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-de", "de AT", "de;q=0.9", "<b>", &"a".repeat(36)] {
            assert!(Locale::parse(bad).is_err(), "{bad}");
        }
    }
}
