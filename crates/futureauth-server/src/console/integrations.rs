//! The "Webhook & test mode" page: a project's own webhook (URL, secret shown once, rotation)
//! and its test mode. Owners change them; members see them. The rules, the owner check and
//! the audit entries are the services' (`service::project_webhook`, `service::test_mode`),
//! shared with the management API.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use minijinja::context;
use secrecy::ExposeSecret;
use serde::Deserialize;
use std::collections::HashMap;

use super::extract::{CsrfForm, Member, NoFields};
use super::flash::{Flash, FlashKind};
use super::pages::{ctx, flash_shown, see_other, with_flash, with_status};
use super::session::Signed;
use super::Console;
use crate::error::OperatorError;
use crate::error::ServiceError;
use crate::service::{project_webhook, test_mode};
use crate::store::Membership;

/// What the page shows besides the stored settings.
#[derive(Default)]
struct Shown {
    secret: Option<String>,
    url: Option<String>,
    url_error: Option<String>,
    test: Option<TestModeForm>,
    test_error: Option<String>,
    saved: bool,
}

async fn render(
    c: &Console,
    s: &Signed,
    m: &Membership,
    shown: Shown,
    status: StatusCode,
) -> Response {
    let hook = match project_webhook::get(c.store(), m).await {
        Ok(h) => h,
        Err(e) => return c.unavailable(e),
    };
    let mode = match test_mode::get(c.store(), m).await {
        Ok(t) => t,
        Err(e) => return c.unavailable(e),
    };
    let form = shown.test.unwrap_or_else(|| TestModeForm {
        destinations: mode
            .as_ref()
            .map(|t| t.destinations.join("\n"))
            .unwrap_or_default(),
        code: mode.as_ref().map(|t| t.code.clone()).unwrap_or_default(),
        allow_in_production: mode
            .as_ref()
            .filter(|t| t.allow_in_production)
            .map(|_| "yes".to_string()),
    });
    let url = shown
        .url
        .or_else(|| hook.as_ref().map(|h| h.url.clone()))
        .unwrap_or_default();
    with_status(
        c.page(
            "integrations.html",
            context! {
                s => ctx(s), project => m.project, role => m.role, tab => "integrations",
                hook => hook.is_some(), url, url_error => shown.url_error,
                secret => shown.secret, saved => shown.saved,
                test_mode => mode.is_some(), destinations => form.destinations,
                code => form.code, allow_in_production => form.allow_in_production.is_some(),
                test_error => shown.test_error, production => c.settings().production,
            },
        ),
        status,
    )
}

/// A refusal that is not the form's fault (owners only, gone, storage) as its page, or the
/// message to show next to the field.
fn field_error(c: &Console, e: ServiceError) -> Result<String, Response> {
    match e {
        ServiceError::OwnersOnly => Err(c.fail(OperatorError::OwnersOnly)),
        ServiceError::NotFound => Err(c.fail(OperatorError::NotFound)),
        ServiceError::Store(e) => Err(c.unavailable(e)),
        e => Ok(e.to_string()),
    }
}

/// After a change without a form to show again: back to the page, or the refusal's page.
/// A refused form: the page again with the field's message beside what was typed (422), or
/// the error's own page (404, 403, 503).
async fn refused(
    c: &Console,
    s: &Signed,
    m: &Membership,
    e: ServiceError,
    shown: impl FnOnce(String) -> Shown,
) -> Response {
    match field_error(c, e) {
        Ok(message) => render(c, s, m, shown(message), StatusCode::UNPROCESSABLE_ENTITY).await,
        Err(page) => page,
    }
}

fn done(c: &Console, m: &Membership, r: Result<bool, ServiceError>) -> Response {
    match r {
        Ok(_) => back(m),
        Err(e) => field_error(c, e).map_or_else(
            |page| page,
            |message| c.fail(OperatorError::Invalid([("form", message)].into())),
        ),
    }
}

fn back(m: &Membership) -> Response {
    see_other(&format!(
        "/dashboard/projects/{}/integrations?saved=1",
        m.project.id
    ))
}

/// `GET …/integrations` (and a signing secret just made, once).
pub async fn page(
    State(c): State<Console>,
    Member { s, m }: Member,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let flash = Flash::take(
        c.settings(),
        &headers,
        &s,
        FlashKind::Webhook,
        &m.project.id,
    );
    let shown = Shown {
        saved: q.contains_key("saved"),
        secret: flash.as_ref().map(|f| f.secret.clone()),
        ..Shown::default()
    };
    let page = render(&c, &s, &m, shown, StatusCode::OK).await;
    if flash.is_some() {
        flash_shown(&c, page)
    } else {
        page
    }
}

/// Back to the page, which shows the new signing secret once.
fn show_secret(c: &Console, s: &Signed, m: &Membership, secret: String) -> Response {
    let flash = Flash {
        kind: FlashKind::Webhook,
        project: m.project.id.clone(),
        secret,
        note: None,
    };
    with_flash(
        c,
        s,
        &format!("/dashboard/projects/{}/integrations?saved=1", m.project.id),
        &flash,
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct WebhookForm {
    url: String,
}

impl WebhookForm {
    /// The page again with the URL as typed and why it was refused.
    fn refused(&self, message: String) -> Shown {
        Shown {
            url: Some(printable(&self.url)),
            url_error: Some(message),
            ..Shown::default()
        }
    }
}

/// `POST …/integrations/webhook` (owners): the first registration shows its secret once.
pub async fn save_webhook(
    State(c): State<Console>,
    Member { s, m }: Member,
    CsrfForm(f): CsrfForm<WebhookForm>,
) -> Response {
    let production = c.settings().production;
    match project_webhook::set(c.store(), &s.operator, &m.project.id, &f.url, production).await {
        Ok((_, Some(secret))) => show_secret(&c, &s, &m, secret),
        Ok((_, None)) => back(&m),
        Err(e) => refused(&c, &s, &m, e, |message| f.refused(message)).await,
    }
}

/// `POST …/integrations/webhook/rotate` (owners): a new secret, shown once.
pub async fn rotate_webhook(
    State(c): State<Console>,
    Member { s, m }: Member,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Response {
    match project_webhook::rotate(c.store(), &s.operator, &m.project.id).await {
        Ok(hook) => show_secret(&c, &s, &m, hook.secret.expose_secret().to_owned()),
        Err(e) => done(&c, &m, Err(e)),
    }
}

/// `POST …/integrations/webhook/remove` (owners).
pub async fn remove_webhook(
    State(c): State<Console>,
    Member { s, m }: Member,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Response {
    let removed = project_webhook::remove(c.store(), &s.operator, &m.project.id).await;
    done(&c, &m, removed)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TestModeForm {
    destinations: String,
    code: String,
    allow_in_production: Option<String>,
}

impl TestModeForm {
    /// The page again with the form as typed and why it was refused.
    fn refused(&self, message: String) -> Shown {
        Shown {
            test: Some(TestModeForm {
                destinations: printable(&self.destinations),
                code: printable(&self.code),
                allow_in_production: self.allow_in_production.clone(),
            }),
            test_error: Some(message),
            ..Shown::default()
        }
    }
}

/// `POST …/integrations/test-mode` (owners).
pub async fn save_test_mode(
    State(c): State<Console>,
    Member { s, m }: Member,
    CsrfForm(f): CsrfForm<TestModeForm>,
) -> Response {
    let input = test_mode::TestModeInput {
        destinations: f
            .destinations
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
        code: f.code.clone(),
        allow_in_production: f.allow_in_production.is_some(),
    };
    let production = c.settings().production;
    match test_mode::enable(c.store(), &s.operator, &m.project.id, &input, production).await {
        Ok(_) => back(&m),
        Err(e) => refused(&c, &s, &m, e, |message| f.refused(message)).await,
    }
}

/// `POST …/integrations/test-mode/off` (owners).
pub async fn test_mode_off(
    State(c): State<Console>,
    Member { s, m }: Member,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Response {
    let disabled = test_mode::disable(c.store(), &s.operator, &m.project.id).await;
    done(&c, &m, disabled)
}

/// A refused value shown back in its field: without control characters, bounded.
fn printable(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .take(2048)
        .collect()
}
