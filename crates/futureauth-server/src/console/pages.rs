//! The console's page handlers. Their extractors ([`Signed`], [`Member`], [`CsrfForm`])
//! check the session, the project membership (404 otherwise) and each form's CSRF token; the
//! Origin check is in the router's middleware.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use futureauth::{FutureAuthError, OtpChannel, RequestContext};
use minijinja::context;
use serde::{Deserialize, Serialize};

use super::chart;
use super::extract::{CsrfForm, Member, NoFields, Posted};
use super::flash::{Flash, FlashKind};
use super::forms::{NewProjectForm, SettingsForm};
use super::session::{binding, binding_cookie, cookie_token, session_cookie, Signed};
use super::Console;
use crate::clock::UnixMillis;
use crate::service::console::{self as ops, FieldErrors, OperatorError};
use crate::service::deliveries::{self, DeliveryParams, DeliveryQuery, DeliveryView};
use crate::service::operator::Acting;
use crate::service::{now_ms, MessageId};
use crate::store::{Membership, Message, MessageStatus};

/// Days shown in the sends-per-day chart.
const CHART_DAYS: i64 = 14;
/// Rows per page of the delivery log.
const PAGE_SIZE: i64 = 25;

pub(super) fn with_status(mut resp: Response, status: StatusCode) -> Response {
    *resp.status_mut() = status;
    resp
}

pub(super) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

impl Console {
    pub(super) fn fail(&self, e: OperatorError) -> Response {
        match e {
            OperatorError::NotFound => self.not_found(),
            OperatorError::OwnersOnly => self.error_page(
                StatusCode::FORBIDDEN,
                "Owners only",
                "Only the project's owners can change it (settings, messages, keys, members, webhook, test mode, deletion); members can look.",
            ),
            OperatorError::Invalid(errors) => {
                let text = errors.values().cloned().collect::<Vec<_>>().join("; ");
                self.error_page(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Please check your input",
                    &text,
                )
            }
            OperatorError::Store(e) => self.unavailable(e),
        }
    }
}

/// Unknown console pages.
pub async fn not_found(State(c): State<Console>) -> Response {
    c.not_found()
}

/// `GET` of an address that only takes a form (`…/keys/rotate`, `/dashboard/logout`, …):
/// the page the form is on, never a bare 405. Nothing is done.
pub async fn form_page(uri: axum::http::Uri) -> Response {
    see_other(&form_page_of(uri.path()))
}

/// The page whose form posts to `path`.
fn form_page_of(path: &str) -> String {
    let path = path.trim_end_matches('/');
    if path.starts_with("/dashboard/account/passkeys") {
        return "/dashboard/account/passkeys".into();
    }
    if path.starts_with("/dashboard/login") {
        return "/dashboard/login".into();
    }
    if path.starts_with("/dashboard/account") {
        return "/dashboard/account".into();
    }
    let Some(rest) = path.strip_prefix("/dashboard/projects/") else {
        return "/dashboard".into();
    };
    let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let project = format!("/dashboard/projects/{id}");
    match tail.split('/').next().unwrap_or("") {
        "delete" => format!("{project}/settings"),
        "members" => format!("{project}/members"),
        "integrations" => format!("{project}/integrations"),
        _ => project,
    }
}

// ---------------------------------------------------------------- sign-in

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LoginForm {
    email: String,
    method: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct VerifyForm {
    email: String,
    code: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct MagicForm {
    token: String,
}

fn login(c: &Console, email: &str, error: Option<String>, status: StatusCode) -> Response {
    with_status(
        c.page(
            "login.html",
            context! {
                email, error, dev_outbox => c.dev_outbox(),
                passkey_origins => c.settings().passkey_origins().join(" "),
            },
        ),
        status,
    )
}

fn auth_error(e: &FutureAuthError) -> (StatusCode, String) {
    match e {
        FutureAuthError::RateLimited { retry_after } => (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many attempts. Try again in {} seconds.",
                retry_after.as_secs().max(1)
            ),
        ),
        FutureAuthError::InvalidEmail => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Enter an email address such as you@example.com.".into(),
        ),
        FutureAuthError::CodeExpired => (
            StatusCode::UNAUTHORIZED,
            "This code has expired. Ask for a new one.".into(),
        ),
        FutureAuthError::TooManyAttempts => (
            StatusCode::UNAUTHORIZED,
            "Too many wrong tries for this code. Ask for a new one.".into(),
        ),
        FutureAuthError::InvalidMagicLink | FutureAuthError::MagicLinkExpired => (
            StatusCode::UNAUTHORIZED,
            "This sign-in link is invalid, used or expired. Ask for a new one.".into(),
        ),
        FutureAuthError::Delivery(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The message could not be sent right now. Try again in a few minutes.".into(),
        ),
        FutureAuthError::Database(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The database did not answer. Try again in a moment.".into(),
        ),
        _ => (
            StatusCode::UNAUTHORIZED,
            "That code is not right. Check it and try again.".into(),
        ),
    }
}

/// `GET /dashboard/login`.
pub async fn login_page(State(c): State<Console>, headers: HeaderMap) -> Response {
    if let Some(token) = cookie_token(c.settings(), &headers) {
        if let Ok(Some(_)) = c.futureauth().get_session(&token).await {
            return see_other("/dashboard");
        }
    }
    login(&c, "", None, StatusCode::OK)
}

/// `POST /dashboard/login`: sends a code (or link), then redirects (303) to the code page.
/// The answer is the same whether or not the address belongs to an operator, whatever the
/// limits did: only operators' messages are actually delivered (see
/// [`super::delivery::OutboxDelivery`]), and a send refused by a limit or a provider just
/// sends nothing. Only a malformed address (422) or a database outage (503) differ, and they
/// do for everyone.
pub async fn login_send(
    State(c): State<Console>,
    req: RequestContext,
    headers: HeaderMap,
    Posted(form): Posted<LoginForm>,
) -> Response {
    let email = match ops::normalize_email(&form.email) {
        Ok(e) => e,
        Err(m) => return login(&c, &form.email, Some(m), StatusCode::UNPROCESSABLE_ENTITY),
    };
    let auth = c.futureauth();
    let link = form.method == "link";
    // Codes are bound to the browser that asked (a cookie), so nobody else can replace
    // them or spend their attempts: a stranger cannot lock an operator out.
    let bound = binding(c.settings(), &headers).unwrap_or_else(futureauth::OtpBinding::generate);
    let req = RequestContext {
        binding: Some(bound.clone()),
        ..req
    };
    let sent = if link {
        let callback = format!("{}/dashboard/auth/magic", c.settings().origin());
        auth.send_magic_link_with(&email, &callback, &req).await
    } else {
        auth.send_otp_with(OtpChannel::Email, &email, &req).await
    };
    match sent {
        Ok(()) => {}
        Err(FutureAuthError::Database(e)) => return c.unavailable(e),
        // Limits and delivery failures must not tell an operator's address from another.
        Err(e) => tracing::info!(error = %e, "operator sign-in: nothing sent"),
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("email", &email)
        .append_pair("method", if link { "link" } else { "code" })
        .finish();
    let mut resp = see_other(&format!("/dashboard/login/verify?{query}"));
    if !link {
        resp.headers_mut()
            .append(header::SET_COOKIE, binding_cookie(c.settings(), &bound));
    }
    resp
}

/// `GET /dashboard/login/verify?email=&method=`: "check your email", with the code form.
pub async fn code_page(
    State(c): State<Console>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(email) = q.get("email").and_then(|e| ops::normalize_email(e).ok()) else {
        return see_other("/dashboard/login");
    };
    let link = q.get("method").is_some_and(|m| m == "link");
    c.page(
        "code.html",
        context! { email, link, dev_outbox => c.dev_outbox() },
    )
}

fn signed_in(c: &Console, token: &str) -> Response {
    let mut resp = see_other("/dashboard");
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(c.settings(), Some(token), super::SESSION_TTL_SECS),
    );
    resp
}

/// Why a session the SDK just opened is not a console session.
pub(super) enum NotOperator {
    /// The user is no (longer an) operator: the session was ended.
    Refused,
    /// The operator could not be looked up.
    Unavailable,
}

/// Only operators keep a console session (a non-operator cannot have a code, and a removed
/// operator's passkey must not sign in): anyone else's new session is ended at once.
/// Returns the session token.
pub(super) async fn operator_only(
    c: &Console,
    user: futureauth::User,
    session: futureauth::Session,
) -> Result<String, NotOperator> {
    let email = user.email.unwrap_or_default();
    match ops::operator(c.store(), &email).await {
        Ok(Some(_)) => Ok(session.token),
        Ok(None) => {
            let _ = c.futureauth().revoke_session(&session.token).await;
            Err(NotOperator::Refused)
        }
        Err(e) => {
            tracing::error!(error = %e, "operator lookup failed");
            Err(NotOperator::Unavailable)
        }
    }
}

/// A code or link sign-in's console session, or the sign-in page's error.
async fn operator_session(
    c: &Console,
    result: Result<(futureauth::User, futureauth::Session), FutureAuthError>,
) -> Result<String, (StatusCode, String)> {
    let (user, session) = result.map_err(|e| auth_error(&e))?;
    match operator_only(c, user, session).await {
        Ok(token) => Ok(token),
        Err(NotOperator::Refused) => Err(auth_error(&FutureAuthError::InvalidCode)),
        Err(NotOperator::Unavailable) => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again in a moment.".into(),
        )),
    }
}

/// `POST /dashboard/login/verify`.
pub async fn login_verify(
    State(c): State<Console>,
    req: RequestContext,
    headers: HeaderMap,
    Posted(form): Posted<VerifyForm>,
) -> Response {
    let auth = c.futureauth();
    let req = RequestContext {
        binding: binding(c.settings(), &headers),
        ..req
    };
    let result = auth
        .verify_otp_with(form.email.trim(), form.code.trim(), &req)
        .await;
    match operator_session(&c, result).await {
        Ok(token) => signed_in(&c, &token),
        Err((status, error)) => with_status(
            c.page(
                "code.html",
                context! { email => form.email.trim(), error, dev_outbox => c.dev_outbox() },
            ),
            status,
        ),
    }
}

/// `GET /dashboard/auth/magic?token=…`: a confirmation button, so link scanners that fetch
/// the URL do not use the token.
pub async fn magic_page(
    State(c): State<Console>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let token = q.get("token").cloned().unwrap_or_default();
    c.page("magic.html", context! { token })
}

/// `POST /dashboard/auth/magic`.
pub async fn magic_verify(
    State(c): State<Console>,
    req: RequestContext,
    Posted(form): Posted<MagicForm>,
) -> Response {
    let auth = c.futureauth();
    let result = auth.verify_magic_link_with(form.token.trim(), &req).await;
    match operator_session(&c, result).await {
        Ok(token) => signed_in(&c, &token),
        Err((status, error)) => login(&c, "", Some(error), status),
    }
}

/// `POST /dashboard/logout`.
pub async fn logout(
    State(c): State<Console>,
    s: Signed,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Response {
    if let Err(e) = c.futureauth().revoke_session(&s.token).await {
        return c.unavailable(e);
    }
    let mut resp = see_other("/dashboard/login");
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(c.settings(), None, 0));
    resp
}

// ---------------------------------------------------------------- projects

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct NameForm {
    name: String,
}

/// `GET /dashboard`: the operator's projects and the create form.
pub async fn projects(State(c): State<Console>, s: Signed) -> Response {
    let form = NewProjectForm {
        name: String::new(),
        ..new_project_defaults(&c)
    };
    projects_page(&c, &s, &form, None, StatusCode::OK).await
}

/// The create form's callback URL and origins: on a console reached over loopback (local
/// development) those of an app on port 3000, the demo's, so that its magic links work
/// whether it is opened as 127.0.0.1 or as localhost; elsewhere empty.
fn new_project_defaults(c: &Console) -> NewProjectForm {
    if c.settings().cookie_secure {
        return NewProjectForm::default();
    }
    NewProjectForm {
        name: String::new(),
        callback_url: DEV_CALLBACK_URL.to_owned(),
        allowed_origins: DEV_ALLOWED_ORIGINS.to_owned(),
    }
}

/// The SDK's magic-link landing page of an app on `http://127.0.0.1:3000` (the demo's).
pub const DEV_CALLBACK_URL: &str = "http://127.0.0.1:3000/api/auth/magic-link";
/// The same app when opened as `localhost`.
pub const DEV_ALLOWED_ORIGINS: &str = "http://localhost:3000";

async fn projects_page(
    c: &Console,
    s: &Signed,
    form: &NewProjectForm,
    errors: Option<FieldErrors>,
    status: StatusCode,
) -> Response {
    let errors = errors.unwrap_or_default();
    let list = match ops::projects(c.store(), &s.operator).await {
        Ok(l) => l,
        Err(e) => return c.fail(e),
    };
    with_status(
        c.page(
            "projects.html",
            context! { s => ctx(s), projects => list, form, errors },
        ),
        status,
    )
}

#[derive(Serialize)]
pub(super) struct SessionCtx {
    email: String,
    csrf: String,
    /// The operator's projects (the switcher).
    projects: Vec<super::session::ProjectLink>,
}

pub(super) fn ctx(s: &Signed) -> SessionCtx {
    SessionCtx {
        email: s.operator.email.clone(),
        csrf: s.csrf.clone(),
        projects: s.projects.clone(),
    }
}

/// `POST /dashboard/projects`: creates a project owned by the operator, then redirects to
/// the page that shows its key once.
pub async fn create_project(
    State(c): State<Console>,
    s: Signed,
    CsrfForm(f): CsrfForm<NewProjectForm>,
) -> Response {
    let created = match f.parse() {
        Ok(settings) => ops::create_project_with(c.store(), Some(&s.operator), settings).await,
        Err(errors) => Err(OperatorError::Invalid(errors)),
    };
    match created {
        Ok(created) => show_key(
            &c,
            &s,
            &created.project.id,
            FlashKind::Created,
            created.secret_key,
            None,
        ),
        Err(OperatorError::Invalid(errors)) => {
            projects_page(
                &c,
                &s,
                &f.printable(),
                Some(errors),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => c.fail(e),
    }
}

/// A 303 to the project's key page, which shows the new `key` once.
fn show_key(
    c: &Console,
    s: &Signed,
    project: &str,
    kind: FlashKind,
    key: String,
    note: Option<String>,
) -> Response {
    let flash = Flash {
        kind,
        project: project.to_owned(),
        secret: key,
        note,
    };
    with_flash(c, s, &format!("/dashboard/projects/{project}/keys"), &flash)
}

/// A 303 to `to`, which shows `flash` once.
pub(super) fn with_flash(c: &Console, s: &Signed, to: &str, flash: &Flash) -> Response {
    let mut resp = see_other(to);
    resp.headers_mut()
        .append(header::SET_COOKIE, flash.cookie(c.settings(), s));
    resp
}

/// `page` with the flash cookie deleted: its secret has been shown.
pub(super) fn flash_shown(c: &Console, mut page: Response) -> Response {
    page.headers_mut()
        .append(header::SET_COOKIE, Flash::clear(c.settings()));
    page
}

async fn chart_svg(
    c: &Console,
    project_id: &str,
    width: i64,
) -> Result<(String, impl Serialize), Response> {
    let today = now_ms().div_euclid(86_400_000);
    let from = (today - CHART_DAYS + 1) * 86_400_000;
    let counts = deliveries::daily_counts(c.store(), project_id, UnixMillis::from_millis(from))
        .await
        .map_err(|e| c.unavailable(e))?;
    Ok((
        chart::sends_per_day(&counts, today, CHART_DAYS, width),
        chart::totals(&counts, today, CHART_DAYS),
    ))
}

/// `GET /dashboard/projects/{id}`: keys, the chart and the latest deliveries.
pub async fn overview(State(c): State<Console>, Member { s, m }: Member) -> Response {
    let id = m.project.id.clone();
    let keys = match ops::keys(c.store(), &id).await {
        Ok(k) => k,
        Err(e) => return c.unavailable(e),
    };
    let (chart, totals) = match chart_svg(&c, &id, 720).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let hasher = c.inner.sender.destination_hasher();
    let recent =
        match deliveries::deliveries(c.store(), hasher, &id, &DeliveryQuery::newest(5)).await {
            Ok((rows, _)) => rows,
            Err(e) => return c.unavailable(e),
        };
    c.page(
        "overview.html",
        context! {
            s => ctx(&s), project => m.project, role => m.role, keys, chart, totals, recent,
            tab => "overview", api_url => c.settings().origin(),
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RotateForm {
    overlap: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PrefixForm {
    prefix: String,
}

/// `GET …/keys`: the key just created or rotated, once; otherwise the overview.
pub async fn shown_key(
    State(c): State<Console>,
    Member { s, m }: Member,
    headers: HeaderMap,
) -> Response {
    let overview = format!("/dashboard/projects/{}", m.project.id);
    for kind in [FlashKind::Created, FlashKind::Key, FlashKind::Rotated] {
        if let Some(f) = Flash::take(c.settings(), &headers, &s, kind, &m.project.id) {
            let kind = match kind {
                FlashKind::Created => "created",
                FlashKind::Rotated => "rotated",
                _ => "key",
            };
            let page = c.page(
                "secret.html",
                context! {
                    s => ctx(&s), project => m.project, role => m.role, secret => f.secret,
                    kind, note => f.note, api_url => c.settings().origin(),
                },
            );
            return flash_shown(&c, page);
        }
    }
    see_other(&overview)
}

/// `POST …/keys`: a new key next to the existing ones, shown once on `GET …/keys`.
pub async fn create_key(
    State(c): State<Console>,
    Member { s, m }: Member,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Response {
    match ops::create_key(c.store(), &s.operator, &m).await {
        Ok(key) => show_key(&c, &s, &m.project.id, FlashKind::Key, key, None),
        Err(e) => c.fail(e),
    }
}

/// `POST …/keys/rotate`: a new key; the others keep working for the chosen overlap.
pub async fn rotate_key(
    State(c): State<Console>,
    Member { s, m }: Member,
    CsrfForm(f): CsrfForm<RotateForm>,
) -> Response {
    let Ok(overlap) = f.overlap.trim().parse::<i64>() else {
        return c.fail(OperatorError::Invalid(FieldErrors::from([(
            "overlap",
            "choose an overlap".to_owned(),
        )])));
    };
    match ops::rotate_key(c.store(), &s.operator, &m, overlap).await {
        Ok(key) => {
            let note = if overlap == 0 {
                "The previous keys stopped working now.".to_owned()
            } else {
                format!(
                    "The previous keys keep working for {} (until {}), then stop.",
                    ops::human_duration(overlap),
                    super::views::datetime(now_ms() + overlap * 1000)
                )
            };
            show_key(&c, &s, &m.project.id, FlashKind::Rotated, key, Some(note))
        }
        Err(e) => c.fail(e),
    }
}

/// `POST …/keys/revoke`.
pub async fn revoke_key(
    State(c): State<Console>,
    Member { s, m }: Member,
    CsrfForm(f): CsrfForm<PrefixForm>,
) -> Response {
    let id = m.project.id.clone();
    match ops::revoke_key(c.store(), &s.operator, &m, f.prefix.trim()).await {
        Ok(()) => see_other(&format!("/dashboard/projects/{id}")),
        Err(e) => c.fail(e),
    }
}

// ---------------------------------------------------------------- deliveries

/// `GET …/deliveries?channel=&status=&from=&until=&destination=&page=`: bad filters are
/// a 400 with the message next to the field.
pub async fn deliveries(
    State(c): State<Console>,
    Member { s, m }: Member,
    Query(params): Query<DeliveryParams>,
) -> Response {
    let id = m.project.id.clone();
    let filter = params.trimmed();
    let (query, errors) = match params.parse(PAGE_SIZE) {
        Ok(q) => (Some(q), FieldErrors::new()),
        Err(errors) => (None, errors),
    };
    let (rows, total) = match &query {
        Some(q) => {
            let hasher = c.inner.sender.destination_hasher();
            match deliveries::deliveries(c.store(), hasher, &id, q).await {
                Ok(x) => x,
                Err(e) => return c.unavailable(e),
            }
        }
        None => (Vec::new(), 0),
    };
    let status = match query {
        Some(_) => StatusCode::OK,
        None => StatusCode::BAD_REQUEST,
    };
    let page = query.map_or(1, |q| q.offset / PAGE_SIZE + 1);
    let (chart, totals) = match chart_svg(&c, &id, 1400).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    let query_base = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("channel", &filter.channel)
        .append_pair("status", &filter.status)
        .append_pair("from", &filter.from)
        .append_pair("until", &filter.until)
        .append_pair("destination", &filter.destination)
        .finish();
    with_status(
        c.page(
            "deliveries.html",
            context! {
                s => ctx(&s), project => m.project, role => m.role, rows, total, page, pages,
                filter, errors, chart, totals, query_base, tab => "deliveries",
            },
        ),
        status,
    )
}

#[derive(Serialize)]
struct TimelineStep {
    at: Option<i64>,
    title: String,
    detail: Option<String>,
    tone: &'static str,
}

/// Queued, then each recorded attempt with its outcome and the provider's reason, then the
/// next attempt if one is due, then what the provider reported after accepting it.
fn timeline(
    message: &Message,
    attempts: &[crate::store::DeliveryAttempt],
    events: &[crate::store::MessageEvent],
) -> Vec<TimelineStep> {
    let mut steps = vec![TimelineStep {
        at: Some(message.created_at.into()),
        title: "Accepted and queued".into(),
        detail: None,
        tone: "info",
    }];
    for a in attempts {
        let (title, tone) = match a.outcome.as_str() {
            "sent" => (
                format!("Attempt {}: accepted by the provider", a.attempt),
                "good",
            ),
            "retry" => (format!("Attempt {}: failed, will retry", a.attempt), "wait"),
            _ => (format!("Attempt {}: failed for good", a.attempt), "bad"),
        };
        steps.push(TimelineStep {
            at: Some(a.at.into()),
            title,
            detail: a.error.clone(),
            tone,
        });
    }
    let recorded = i64::try_from(attempts.len()).unwrap_or(i64::MAX);
    if message.attempts > recorded && message.status == MessageStatus::Queued {
        steps.push(TimelineStep {
            at: None,
            title: format!("Attempt {} in progress", message.attempts),
            detail: None,
            tone: "wait",
        });
    } else if message.status == MessageStatus::Queued {
        steps.push(TimelineStep {
            at: Some(message.next_attempt_at.into()),
            title: "Next attempt".into(),
            detail: None,
            tone: "wait",
        });
    }
    for e in events {
        let (title, tone) = match e.state.as_str() {
            "delivered" => ("Delivered to the recipient", "good"),
            "bounced" => ("Bounced: the recipient's server refused it", "bad"),
            "undelivered" => ("Not delivered", "bad"),
            "complained" => ("Marked as spam by the recipient", "bad"),
            _ => ("Sent on by the provider", "info"),
        };
        steps.push(TimelineStep {
            at: Some(e.occurred_at.into()),
            title: format!("{title} ({})", e.provider),
            detail: e.reason.clone(),
            tone,
        });
    }
    steps
}

/// `GET …/deliveries/{msg}`: one message with its timeline.
pub async fn delivery(
    State(c): State<Console>,
    Member { s, m }: Member,
    Path((_, msg)): Path<(String, String)>,
) -> Response {
    let Some(msg) = MessageId::parse(&msg) else {
        return c.not_found();
    };
    let d = match deliveries::delivery(c.store(), &m.project.id, &msg).await {
        Ok(Some(d)) => d,
        Ok(None) => return c.not_found(),
        Err(e) => return c.unavailable(e),
    };
    let timeline = timeline(&d.message, &d.attempts, &d.events);
    let view = DeliveryView::from(d.message);
    c.page(
        "delivery.html",
        context! { s => ctx(&s), project => m.project, role => m.role, d => view, timeline, tab => "deliveries" },
    )
}

// ---------------------------------------------------------------- settings

#[allow(clippy::too_many_arguments)]
fn settings_page(
    c: &Console,
    s: &Signed,
    m: &Membership,
    form: &SettingsForm,
    errors: Option<FieldErrors>,
    delete_error: Option<String>,
    saved: bool,
    status: StatusCode,
) -> Response {
    let errors = errors.unwrap_or_default();
    with_status(
        c.page(
            "settings.html",
            context! {
                s => ctx(s), project => m.project, role => m.role, form,
                errors, delete_error, saved, tab => "settings", defaults => c.inner.defaults,
            },
        ),
        status,
    )
}

/// `GET …/settings`.
pub async fn settings(
    State(c): State<Console>,
    Member { s, m }: Member,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let id = m.project.id.clone();
    let limits = match ops::limits(c.store(), &id).await {
        Ok(l) => l,
        Err(e) => return c.unavailable(e),
    };
    let form = SettingsForm::of(&m.project, limits);
    settings_page(
        &c,
        &s,
        &m,
        &form,
        None,
        None,
        q.contains_key("saved"),
        StatusCode::OK,
    )
}

/// `POST …/settings`: errors appear next to their fields.
pub async fn save_settings(
    State(c): State<Console>,
    Member { s, m }: Member,
    CsrfForm(input): CsrfForm<SettingsForm>,
) -> Response {
    let id = m.project.id.clone();
    let saved = match input.parse() {
        Ok(settings) => {
            let acting = Acting::Operator(&s.operator, &m);
            ops::update_settings(c.store(), acting, &m.project, settings).await
        }
        Err(errors) => Err(OperatorError::Invalid(errors)),
    };
    match saved {
        Ok(_) => see_other(&format!("/dashboard/projects/{id}/settings?saved=1")),
        Err(OperatorError::Invalid(errors)) => settings_page(
            &c,
            &s,
            &m,
            &input.printable(),
            Some(errors),
            None,
            false,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(e) => c.fail(e),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct DeleteForm {
    confirm: String,
}

/// `POST …/delete` (owners; the name typed exactly).
pub async fn delete_project(
    State(c): State<Console>,
    Member { s, m }: Member,
    CsrfForm(f): CsrfForm<DeleteForm>,
) -> Response {
    let id = m.project.id.clone();
    match ops::delete_project(c.store(), &s.operator, &m, &f.confirm).await {
        Ok(()) => see_other("/dashboard"),
        Err(OperatorError::Invalid(errors)) => settings_page(
            &c,
            &s,
            &m,
            &SettingsForm::of(
                &m.project,
                ops::limits(c.store(), &id).await.unwrap_or_default(),
            ),
            None,
            errors.get("confirm").cloned(),
            false,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(e) => c.fail(e),
    }
}

// ---------------------------------------------------------------- members and audit

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct InviteForm {
    email: String,
    role: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RemoveForm {
    email: String,
}

async fn members_page(
    c: &Console,
    s: &Signed,
    m: &Membership,
    email: &str,
    errors: Option<FieldErrors>,
    status: StatusCode,
) -> Response {
    let errors = errors.unwrap_or_default();
    let members = match ops::members(c.store(), m).await {
        Ok(x) => x,
        Err(e) => return c.fail(e),
    };
    with_status(
        c.page(
            "members.html",
            context! {
                s => ctx(s), project => m.project, role => m.role, members, email, errors,
                me => s.operator.email, tab => "members",
            },
        ),
        status,
    )
}

/// `GET …/members`.
pub async fn members(State(c): State<Console>, Member { s, m }: Member) -> Response {
    members_page(&c, &s, &m, "", None, StatusCode::OK).await
}

/// `POST …/members`: invite by email (owners).
pub async fn invite(
    State(c): State<Console>,
    Member { s, m }: Member,
    CsrfForm(f): CsrfForm<InviteForm>,
) -> Response {
    let id = m.project.id.clone();
    match ops::invite(c.store(), &s.operator, &m, &f.email, &f.role).await {
        Ok(_) => see_other(&format!("/dashboard/projects/{id}/members")),
        Err(OperatorError::Invalid(errors)) => {
            members_page(
                &c,
                &s,
                &m,
                &f.email,
                Some(errors),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => c.fail(e),
    }
}

/// `POST …/members/remove` (owners).
pub async fn remove_member(
    State(c): State<Console>,
    Member { s, m }: Member,
    CsrfForm(f): CsrfForm<RemoveForm>,
) -> Response {
    let id = m.project.id.clone();
    match ops::remove_member(c.store(), &s.operator, &m, &f.email).await {
        Ok(()) if f.email.trim().eq_ignore_ascii_case(&s.operator.email) => see_other("/dashboard"),
        Ok(()) => see_other(&format!("/dashboard/projects/{id}/members")),
        Err(OperatorError::Invalid(errors)) => {
            members_page(
                &c,
                &s,
                &m,
                "",
                Some(errors),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => c.fail(e),
    }
}

/// `GET …/audit`: the latest 200 entries.
pub async fn audit(State(c): State<Console>, Member { s, m }: Member) -> Response {
    match ops::audit_log(c.store(), &m, 200).await {
        Ok(entries) => c.page(
            "audit.html",
            context! { s => ctx(&s), project => m.project, role => m.role, entries, tab => "audit" },
        ),
        Err(e) => c.fail(e),
    }
}

// ---------------------------------------------------------------- account

async fn account_page(
    c: &Console,
    s: &Signed,
    secret: Option<String>,
    errors: Option<FieldErrors>,
    status: StatusCode,
) -> Response {
    let errors = errors.unwrap_or_default();
    let tokens = match ops::operator_tokens(c.store(), &s.operator).await {
        Ok(t) => t,
        Err(e) => return c.fail(e),
    };
    with_status(
        c.page(
            "account.html",
            context! { s => ctx(s), tokens, secret, errors, api_url => c.settings().origin() },
        ),
        status,
    )
}

/// `GET /dashboard/account`: operator tokens for the management API (and a token just
/// created, once).
pub async fn account(State(c): State<Console>, s: Signed, headers: HeaderMap) -> Response {
    match Flash::take(c.settings(), &headers, &s, FlashKind::Token, "") {
        Some(f) => flash_shown(
            &c,
            account_page(&c, &s, Some(f.secret), None, StatusCode::OK).await,
        ),
        None => account_page(&c, &s, None, None, StatusCode::OK).await,
    }
}

/// `POST /dashboard/account/tokens`: the new token is shown once on the account page.
pub async fn create_token(
    State(c): State<Console>,
    s: Signed,
    CsrfForm(f): CsrfForm<NameForm>,
) -> Response {
    match ops::create_operator_token(c.store(), &s.operator, &f.name).await {
        Ok(token) => {
            let flash = Flash {
                kind: FlashKind::Token,
                project: String::new(),
                secret: token,
                note: None,
            };
            with_flash(&c, &s, "/dashboard/account", &flash)
        }
        Err(OperatorError::Invalid(errors)) => {
            account_page(&c, &s, None, Some(errors), StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => c.fail(e),
    }
}

/// `POST /dashboard/account/tokens/revoke`.
pub async fn revoke_token(
    State(c): State<Console>,
    s: Signed,
    CsrfForm(f): CsrfForm<PrefixForm>,
) -> Response {
    match ops::revoke_operator_token(c.store(), &s.operator, &f.prefix).await {
        Ok(()) => see_other("/dashboard/account"),
        Err(e) => c.fail(e),
    }
}

// ---------------------------------------------------------------- message templates

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TemplatesForm {
    email_subject: String,
    email_text: String,
    sms_text: String,
}

#[derive(Serialize)]
struct TemplatesView {
    email_subject: String,
    email_text: String,
    sms_text: String,
}

/// The built-in texts (shown as placeholders and used by the preview when a field is empty).
#[derive(Serialize)]
struct BuiltIn {
    email_subject: &'static str,
    email_text: &'static str,
    sms_text: &'static str,
}

const BUILT_IN: BuiltIn = BuiltIn {
    email_subject: include_str!("../../templates/otp/email.subject"),
    email_text: include_str!("../../templates/otp/email.txt"),
    sms_text: include_str!("../../templates/otp/sms.txt"),
};

fn messages_page(
    c: &Console,
    s: &Signed,
    m: &Membership,
    form: &ops::TemplatesInput,
    errors: FieldErrors,
    saved: bool,
    status: StatusCode,
) -> Response {
    let form = TemplatesView {
        email_subject: form.email_subject.clone(),
        email_text: form.email_text.clone(),
        sms_text: form.sms_text.clone(),
    };
    with_status(
        c.page(
            "messages.html",
            context! {
                s => ctx(s), project => m.project, role => m.role, form, errors, saved,
                built_in => BUILT_IN, tab => "messages",
            },
        ),
        status,
    )
}

/// `GET …/messages`: the wording of the sign-in code messages, with a live preview.
pub async fn messages(
    State(c): State<Console>,
    Member { s, m }: Member,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match ops::templates(c.store(), &m).await {
        Ok(t) => messages_page(
            &c,
            &s,
            &m,
            &ops::TemplatesInput::of(&t),
            FieldErrors::new(),
            q.contains_key("saved"),
            StatusCode::OK,
        ),
        Err(e) => c.fail(e),
    }
}

/// `POST …/messages`.
pub async fn save_messages(
    State(c): State<Console>,
    Member { s, m }: Member,
    CsrfForm(f): CsrfForm<TemplatesForm>,
) -> Response {
    let id = m.project.id.clone();
    let input = ops::TemplatesInput {
        email_subject: f.email_subject,
        email_text: f.email_text,
        sms_text: f.sms_text,
    };
    match ops::update_templates(c.store(), &s.operator, &m, &input).await {
        Ok(_) => see_other(&format!("/dashboard/projects/{id}/messages?saved=1")),
        Err(OperatorError::Invalid(errors)) => messages_page(
            &c,
            &s,
            &m,
            &input,
            errors,
            false,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(e) => c.fail(e),
    }
}
