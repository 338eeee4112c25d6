//! Message templates (files under `templates/`, one per message kind and channel), rendered
//! with minijinja. Templates ending in `.html` are HTML-escaped automatically.

use minijinja::{context, Environment};

use crate::error::ServiceError;

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
    /// Loads the embedded templates.
    pub fn new() -> Result<Templates, ServiceError> {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .map_err(|e| ServiceError::Template(e.to_string()))?;
        }
        Ok(Templates { env })
    }

    fn render(&self, name: &str, ctx: minijinja::Value) -> Result<String, ServiceError> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| ServiceError::Template(format!("{name}: {e}")))
    }

    fn email(&self, kind: &str, ctx: minijinja::Value) -> Result<RenderedEmail, ServiceError> {
        let subject = self.render(&format!("{kind}/email.subject"), ctx.clone())?;
        Ok(RenderedEmail {
            // A subject is one line whatever the template or name contains.
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            text: self.render(&format!("{kind}/email.txt"), ctx.clone())?,
            html: self.render(&format!("{kind}/email.html"), ctx)?,
        })
    }

    /// The sign-in code email.
    pub fn otp_email(&self, project: &str, code: &str) -> Result<RenderedEmail, ServiceError> {
        self.email("otp", context! { project, code })
    }

    /// The sign-in code SMS.
    pub fn otp_sms(&self, project: &str, code: &str) -> Result<String, ServiceError> {
        self.render("otp/sms.txt", context! { project, code })
    }

    /// The magic-link email.
    pub fn magic_link_email(
        &self,
        project: &str,
        link: &str,
    ) -> Result<RenderedEmail, ServiceError> {
        self.email("magic_link", context! { project, link })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otp_email_names_project_and_code_and_escapes_html() {
        let t = Templates::new().unwrap();
        let e = t.otp_email("Acme <b>&</b>", "123456").unwrap();
        assert_eq!(e.subject, "123456 is your Acme <b>&</b> sign-in code");
        assert!(e.text.contains("123456") && e.text.contains("Acme <b>&</b>"));
        assert!(e.html.contains("123456"));
        assert!(e.html.contains("Acme &lt;b&gt;&amp;&lt;"), "{}", e.html);
        assert!(!e.html.contains("<b>&</b>"));
    }

    #[test]
    fn otp_sms() {
        let t = Templates::new().unwrap();
        let s = t.otp_sms("Acme", "ab12cd").unwrap();
        assert_eq!(
            s,
            "ab12cd is your Acme sign-in code. Don't share it with anyone."
        );
    }

    #[test]
    fn magic_link_email() {
        let t = Templates::new().unwrap();
        let e = t
            .magic_link_email("Acme", "https://app.example.com/cb?a=1&token=xyz")
            .unwrap();
        assert_eq!(e.subject, "Sign in to Acme");
        assert!(e.text.contains("https://app.example.com/cb?a=1&token=xyz"));
        assert!(e.html.contains("a=1&amp;token=xyz"));
    }
}
