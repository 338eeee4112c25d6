//! Page rendering: the minijinja templates of `templates/console/` (HTML-escaped), and the
//! error pages.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::{context, Environment, Value};

use super::Console;

const TEMPLATES: &[(&str, &str)] = &[
    (
        "base.html",
        include_str!("../../templates/console/base.html"),
    ),
    (
        "login.html",
        include_str!("../../templates/console/login.html"),
    ),
    (
        "code.html",
        include_str!("../../templates/console/code.html"),
    ),
    (
        "magic.html",
        include_str!("../../templates/console/magic.html"),
    ),
    (
        "projects.html",
        include_str!("../../templates/console/projects.html"),
    ),
    (
        "project_nav.html",
        include_str!("../../templates/console/project_nav.html"),
    ),
    (
        "overview.html",
        include_str!("../../templates/console/overview.html"),
    ),
    (
        "secret.html",
        include_str!("../../templates/console/secret.html"),
    ),
    (
        "deliveries.html",
        include_str!("../../templates/console/deliveries.html"),
    ),
    (
        "delivery.html",
        include_str!("../../templates/console/delivery.html"),
    ),
    (
        "settings.html",
        include_str!("../../templates/console/settings.html"),
    ),
    (
        "integrations.html",
        include_str!("../../templates/console/integrations.html"),
    ),
    (
        "members.html",
        include_str!("../../templates/console/members.html"),
    ),
    (
        "audit.html",
        include_str!("../../templates/console/audit.html"),
    ),
    (
        "account.html",
        include_str!("../../templates/console/account.html"),
    ),
    (
        "passkeys.html",
        include_str!("../../templates/console/passkeys.html"),
    ),
    (
        "error.html",
        include_str!("../../templates/console/error.html"),
    ),
    (
        "messages.html",
        include_str!("../../templates/console/messages.html"),
    ),
    (
        "chart_legend.html",
        include_str!("../../templates/console/chart_legend.html"),
    ),
    (
        "delivery_rows.html",
        include_str!("../../templates/console/delivery_rows.html"),
    ),
];

/// `1764355200000` → `2025-11-28 18:40 UTC`.
pub fn datetime(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// Like [`datetime`] with seconds.
pub fn datetime_secs(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

/// The compiled templates.
#[derive(Debug)]
pub struct Views {
    env: Environment<'static>,
}

impl Views {
    /// Compiles the embedded templates.
    pub fn new() -> Result<Views, minijinja::Error> {
        let mut env = Environment::new();
        // `errors.name` on a page without errors is simply empty.
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        env.add_filter("datetime", |ms: i64| datetime(ms));
        env.add_filter("datetime_secs", |ms: i64| datetime_secs(ms));
        Ok(Views { env })
    }

    /// Renders `name` with `ctx`, or a 500 page if a template is broken (a bug, logged).
    pub fn render(&self, name: &str, ctx: Value) -> Response {
        match self.env.get_template(name).and_then(|t| t.render(ctx)) {
            Ok(html) => Html(html).into_response(),
            Err(e) => {
                tracing::error!(error = %e, template = name, "console template failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Html("<h1>Internal error</h1>".to_owned()),
                )
                    .into_response()
            }
        }
    }
}

impl Console {
    /// Renders a page.
    pub fn page(&self, name: &str, ctx: Value) -> Response {
        self.inner.views.render(name, ctx)
    }

    /// An error page with `status`.
    pub fn error_page(&self, status: StatusCode, title: &str, message: &str) -> Response {
        let mut resp = self.page(
            "error.html",
            context! { title, message, status => status.as_u16() },
        );
        *resp.status_mut() = status;
        resp
    }

    /// The 404 page: unknown pages and other people's projects look the same.
    pub fn not_found(&self) -> Response {
        self.error_page(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such page, or you are not a member of this project.",
        )
    }

    /// 503 for a storage failure (logged, details not shown).
    pub fn unavailable(&self, e: impl std::fmt::Display) -> Response {
        tracing::error!(error = %e, "console storage error");
        self.error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Temporarily unavailable",
            "The database did not answer. Try again in a moment.",
        )
    }

    /// Whether messages go to the dev outbox (shown on the sign-in page).
    pub fn dev_outbox(&self) -> bool {
        self.inner.dev_outbox
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_messages_page_renders() {
        let v = Views::new().unwrap();
        let html = v
            .env
            .get_template("messages.html")
            .and_then(|t| {
                t.render(context! {
                    s => context! {
                        email => "a@b.co",
                        csrf => "t",
                        projects => vec![
                            context! { id => "prj_x", name => "Acme" },
                            context! { id => "prj_y", name => "Other" },
                        ],
                    },
                    project => context! { id => "prj_x", name => "Acme" },
                    role => "owner",
                    form => context! { email_subject => "", email_text => "", sms_text => "" },
                    built_in => context! { email_subject => "s {{ code }}", email_text => "t", sms_text => "m" },
                    tab => "messages",
                })
            })
            .unwrap();
        assert!(html.contains("id=\"preview-sms\""));
        assert!(html.contains("<code>{{ code }}</code>"));
        // The switcher lists the other project once there are two.
        assert!(html.contains("/dashboard/projects/prj_y"));
    }
}
