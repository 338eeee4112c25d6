//! A project's own wording of its sign-in code messages, set in the console: the email
//! subject, the email text and the SMS text. Only two placeholders exist, `{{ code }}` and
//! `{{ project }}`, substituted literally: no template logic runs, so a template cannot loop,
//! read anything or inject markup (the HTML email is the escaped text).

use super::render::{RenderedEmail, RenderedSms};
pub use crate::store::CustomTemplates;

/// Longest accepted template.
pub const MAX_TEMPLATE_CHARS: usize = 1000;

/// Substitutes the two placeholders (with or without inner spaces).
pub fn fill(template: &str, project: &str, code: &str) -> String {
    template
        .replace("{{ code }}", code)
        .replace("{{code}}", code)
        .replace("{{ project }}", project)
        .replace("{{project}}", project)
}

/// Checks one template: at most [`MAX_TEMPLATE_CHARS`], no control characters but newlines
/// (none at all in a subject), `{{ code }}` present, and no other `{{ … }}` or `{% … %}`.
pub fn check(template: &str, one_line: bool) -> Result<(), String> {
    if template.chars().count() > MAX_TEMPLATE_CHARS {
        return Err(format!("at most {MAX_TEMPLATE_CHARS} characters"));
    }
    if template
        .chars()
        .any(|c| c.is_control() && (one_line || (c != '\n' && c != '\r' && c != '\t')))
    {
        return Err(if one_line {
            "one line, without control characters".into()
        } else {
            "no control characters".into()
        });
    }
    if !(template.contains("{{ code }}") || template.contains("{{code}}")) {
        return Err("must contain {{ code }}, where the sign-in code goes".into());
    }
    let rest = fill(template, "", "");
    if rest.contains("{{") || rest.contains("{%") || rest.contains("}}") || rest.contains("%}") {
        return Err("only {{ code }} and {{ project }} can be used".into());
    }
    Ok(())
}

impl CustomTemplates {
    /// Whether nothing is overridden.
    pub fn is_empty(&self) -> bool {
        self.email_subject.is_none() && self.email_text.is_none() && self.sms_text.is_none()
    }

    /// The built-in email with the overridden parts replaced.
    pub fn email(&self, built_in: RenderedEmail, project: &str, code: &str) -> RenderedEmail {
        let mut e = built_in;
        if let Some(subject) = &self.email_subject {
            e.subject = fill(subject, project, code)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
        }
        if let Some(text) = &self.email_text {
            e.text = fill(text, project, code);
            e.html = html_of(&e.text);
        }
        e
    }

    /// The built-in SMS text, or the override.
    pub fn sms(&self, built_in: String, project: &str, code: &str) -> String {
        match &self.sms_text {
            Some(t) => fill(t, project, code),
            None => built_in,
        }
    }
}

/// A built-in sign-in code message whose parts a project's custom templates may replace.
pub trait Overridable {
    /// The message with the parts `templates` override replaced.
    fn overridden(self, templates: &CustomTemplates, project: &str, code: &str) -> Self;
}

impl Overridable for RenderedEmail {
    fn overridden(self, templates: &CustomTemplates, project: &str, code: &str) -> Self {
        templates.email(self, project, code)
    }
}

impl Overridable for RenderedSms {
    fn overridden(self, templates: &CustomTemplates, project: &str, code: &str) -> Self {
        templates.sms(self, project, code)
    }
}

/// A minimal HTML body for a plain text: escaped, paragraphs and line breaks kept.
fn html_of(text: &str) -> String {
    let body: Vec<String> = text
        .replace("\r\n", "\n")
        .split("\n\n")
        .map(|p| {
            format!(
                "<p>{}</p>",
                html_escape::encode_text(p.trim_matches('\n')).replace('\n', "<br>")
            )
        })
        .collect();
    format!(
        "<!doctype html>\n<html>\n  <body style=\"font-family: sans-serif; color: #111;\">\n    {}\n  </body>\n</html>\n",
        body.join("\n    ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_nothing_else_runs() {
        assert_eq!(
            fill("{{ code }} for {{project}}", "Acme", "ab12cd"),
            "ab12cd for Acme"
        );
        assert!(check("Your code: {{ code }}", false).is_ok());
        assert!(check("Hello {{ project }}", false).is_err());
        assert!(check("{{ code }} {% for i in range(9) %}x{% endfor %}", false).is_err());
        assert!(check("{{ code }} {{ config }}", false).is_err());
        assert!(check("{{ code }}\nline", true).is_err());
        assert!(check("{{ code }}\nline", false).is_ok());
        assert!(check(&format!("{{{{ code }}}}{}", "x".repeat(1000)), false).is_err());
    }

    #[test]
    fn the_html_part_is_the_escaped_text() {
        let t = CustomTemplates {
            email_text: Some("Hi <b>{{ project }}</b>\n\nCode: {{ code }}".into()),
            ..Default::default()
        };
        let built_in = RenderedEmail {
            subject: "s".into(),
            text: "t".into(),
            html: "h".into(),
        };
        let e = t.email(built_in, "A&B", "123456");
        assert_eq!(e.subject, "s");
        assert_eq!(e.text, "Hi <b>A&B</b>\n\nCode: 123456");
        assert!(
            e.html.contains("<p>Hi &lt;b&gt;A&amp;B&lt;/b&gt;</p>"),
            "{}",
            e.html
        );
        assert!(e.html.contains("<p>Code: 123456</p>"));
    }
}
