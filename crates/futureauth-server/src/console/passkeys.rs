//! Operators' passkeys, through the console's own `futureauth` (feature `passkeys`):
//!
//! | route | who | answer |
//! |---|---|---|
//! | `POST /dashboard/login/passkey/options` | anyone | options for `navigator.credentials.get()` + binding cookie |
//! | `POST /dashboard/login/passkey` | `{"credential"}` + binding cookie | `{"redirect"}` + the console session cookie |
//! | `GET /dashboard/account/passkeys` | signed in | the operator's "Passkeys" page |
//! | `POST /dashboard/account/passkeys/options` | signed in, `X-CSRF-Token` | options for `navigator.credentials.create()` + binding cookie |
//! | `POST /dashboard/account/passkeys` | signed in, `X-CSRF-Token`, `{"credential", "name"?}` | `{"passkey"}` |
//! | `POST /dashboard/account/passkeys/rename` | form: `csrf`, `id`, `name` | 303 to the page |
//! | `POST /dashboard/account/passkeys/delete` | form: `csrf`, `id` | 303 to the page |
//!
//! The JSON routes answer errors as `{"error": {"code", "message"}}` (the SDK's codes); the
//! router's middleware refuses every POST from another origin. A challenge is bound to the
//! browser that asked by an HttpOnly cookie; an operator only ever sees and changes their
//! own passkeys (another's id is a 404, as an unknown one).

use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futureauth::axum::ApiError;
use futureauth::{ErrorCode, FutureAuth, FutureAuthError, OtpBinding, RequestContext};
use minijinja::context;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::extract::CsrfForm;
use super::pages::{ctx, operator_only, see_other, with_status, NotOperator};
use super::session::{passkey_binding, passkey_binding_cookie, session_cookie, Signed};
use super::Console;

/// The header the console's scripts send the session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The page of the operator's passkeys.
const PAGE: &str = "/dashboard/account/passkeys";

/// A JSON body; a malformed, oversized or non-JSON one is a JSON 4xx.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequest<Console> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(req: Request, console: &Console) -> Result<Self, Response> {
        match Json::<T>::from_request(req, console).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(e) => Err(ApiError::from(e).into_response()),
        }
    }
}

/// A signed-in operator whose request carries that session's CSRF token in
/// [`CSRF_HEADER`]: else a JSON 401 (not signed in) or 403.
pub struct SignedJson(pub Signed);

impl FromRequestParts<Console> for SignedJson {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Response> {
        let s = match Signed::from_request_parts(parts, console).await {
            Ok(s) => s,
            // The page extractor sends signed-out browsers to the sign-in page.
            Err(r) if r.status().is_redirection() => return Err(signed_out()),
            Err(_) => return Err(unavailable()),
        };
        let sent = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !s.csrf_ok(sent) {
            return Err(ApiError::from_code(
                ErrorCode::CrossSiteRequest,
                "this request lacks the page's security token: reload the page and try again",
            )
            .into_response());
        }
        Ok(SignedJson(s))
    }
}

/// The JSON 401 of a browser with no (or a gone) console session.
fn signed_out() -> Response {
    ApiError::from_code(ErrorCode::Unauthorized, "sign in to the console first").into_response()
}

fn unavailable() -> Response {
    ApiError::from_code(
        ErrorCode::Unavailable,
        "the database did not answer, try again in a moment",
    )
    .into_response()
}

/// The console's `futureauth` with passkeys; a JSON 404 when this console offers none (it
/// is reached on no domain name).
fn auth(c: &Console) -> Result<&FutureAuth, Response> {
    if c.settings().passkey_rp_id.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "this console offers no passkeys: it is reached on no domain name",
        )
        .into_response());
    }
    Ok(c.futureauth())
}

/// The request's context (as the SDK reads it) with this browser's passkey binding: the one
/// its cookie holds, or (for a new challenge) a new one.
fn with_binding(
    c: &Console,
    req: RequestContext,
    headers: &HeaderMap,
    new: bool,
) -> RequestContext {
    let held = passkey_binding(c.settings(), headers);
    RequestContext {
        binding: if new {
            held.or_else(|| Some(OtpBinding::generate()))
        } else {
            held
        },
        ..req
    }
}

/// The ceremony's options, with the binding cookie (set again, so that it lives as long as
/// the new challenge).
fn options_answer(
    c: &Console,
    auth: &FutureAuth,
    options: serde_json::Value,
    req: &RequestContext,
) -> Response {
    let ttl = auth
        .config()
        .passkeys
        .as_ref()
        .map_or(0, |p| p.challenge_ttl.as_secs());
    let mut resp = Json(options).into_response();
    if let Some(binding) = &req.binding {
        resp.headers_mut().append(
            header::SET_COOKIE,
            passkey_binding_cookie(c.settings(), Some(binding), ttl),
        );
    }
    resp
}

/// The browser's answer to a ceremony, and for a new passkey its name.
#[derive(Deserialize)]
pub struct Answer {
    /// The `PublicKeyCredential` as JSON with base64url fields.
    credential: serde_json::Value,
    /// A new passkey's name (default: the browser and platform).
    #[serde(default)]
    name: Option<String>,
}

// ---------------------------------------------------------------- sign-in

/// `POST /dashboard/login/passkey/options`: a discoverable sign-in challenge for this
/// browser.
pub async fn sign_in_options(
    State(c): State<Console>,
    req: RequestContext,
    headers: HeaderMap,
) -> Response {
    let auth = match auth(&c) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let req = with_binding(&c, req, &headers, true);
    match auth.passkey_sign_in_options(&req).await {
        Ok(options) => options_answer(&c, auth, options, &req),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// `POST /dashboard/login/passkey`: checks the browser's answer and opens the same console
/// session a code does; only for an operator (the SDK refuses a disabled user; a removed
/// operator's session is ended at once).
pub async fn sign_in(
    State(c): State<Console>,
    req: RequestContext,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Answer>,
) -> Response {
    let auth = match auth(&c) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let req = with_binding(&c, req, &headers, false);
    let (user, session) = match auth.sign_in_with_passkey(&body.credential, &req).await {
        Ok(signed) => signed,
        Err(e) => return ApiError::from(e).into_response(),
    };
    match operator_only(&c, user, session).await {
        Ok(token) => {
            // The session cookie of a code sign-in; the answer says where to go.
            let mut resp = Json(json!({ "redirect": "/dashboard" })).into_response();
            resp.headers_mut().append(
                header::SET_COOKIE,
                session_cookie(c.settings(), Some(&token), super::SESSION_TTL_SECS),
            );
            resp.headers_mut().append(
                header::SET_COOKIE,
                passkey_binding_cookie(c.settings(), None, 0),
            );
            resp
        }
        Err(NotOperator::Refused) => {
            ApiError::from(FutureAuthError::PasskeyRejected).into_response()
        }
        Err(NotOperator::Unavailable) => unavailable(),
    }
}

// ---------------------------------------------------------------- the operator's passkeys

/// A passkey as the page shows it.
#[derive(Serialize)]
struct PasskeyView {
    id: String,
    name: String,
    created: String,
    last_used: Option<String>,
    synced: bool,
}

fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// What the page reports after a form (`?done=`).
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Done {
    done: String,
}

async fn passkeys_page(
    c: &Console,
    s: &Signed,
    notice: Option<&str>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let origins = c.settings().passkey_origins();
    let mut passkeys = Vec::new();
    if !origins.is_empty() {
        match c.futureauth().list_passkeys(&s.user_id).await {
            Ok(list) => {
                passkeys = list
                    .into_iter()
                    .map(|p| PasskeyView {
                        id: p.id,
                        name: p.name,
                        created: when(p.created_at),
                        last_used: p.last_used_at.map(when),
                        synced: p.backup_eligible,
                    })
                    .collect();
            }
            Err(e) => return c.unavailable(e),
        }
    }
    with_status(
        c.page(
            "passkeys.html",
            context! {
                s => ctx(s), passkeys, notice, error,
                passkey_origins => origins.join(" "), origins,
            },
        ),
        status,
    )
}

/// `GET /dashboard/account/passkeys`: the operator's passkeys, and "Add a passkey".
pub async fn page(State(c): State<Console>, s: Signed, Query(q): Query<Done>) -> Response {
    let notice = match q.done.as_str() {
        "added" => Some("Passkey added. Next time, sign in with it."),
        "renamed" => Some("Passkey renamed."),
        "deleted" => Some("Passkey deleted. You can still sign in with an email code or link."),
        _ => None,
    };
    passkeys_page(&c, &s, notice, None, StatusCode::OK).await
}

/// The signed-in operator (with the CSRF header, as [`SignedJson`]) as the user a new
/// passkey is registered to: a JSON 404 when this console offers no passkeys, 401 when the
/// user is gone.
pub struct Registrant(pub futureauth::User);

impl FromRequestParts<Console> for Registrant {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, c: &Console) -> Result<Self, Response> {
        let SignedJson(s) = SignedJson::from_request_parts(parts, c).await?;
        match auth(c)?.get_user(&s.user_id).await {
            Ok(Some(user)) => Ok(Registrant(user)),
            Ok(None) => Err(signed_out()),
            Err(e) => Err(ApiError::from(e).into_response()),
        }
    }
}

/// `POST /dashboard/account/passkeys/options`: a registration challenge for the signed-in
/// operator in this browser.
pub async fn register_options(
    State(c): State<Console>,
    Registrant(user): Registrant,
    req: RequestContext,
    headers: HeaderMap,
) -> Response {
    let auth = c.futureauth();
    let req = with_binding(&c, req, &headers, true);
    match auth.passkey_registration_options(&user, &req).await {
        Ok(options) => options_answer(&c, auth, options, &req),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// `POST /dashboard/account/passkeys`: stores the passkey the browser made for the
/// challenge of [`register_options`].
pub async fn register(
    State(c): State<Console>,
    Registrant(user): Registrant,
    req: RequestContext,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Answer>,
) -> Response {
    let req = with_binding(&c, req, &headers, false);
    match c
        .futureauth()
        .register_passkey(&user, &body.credential, body.name.as_deref(), &req)
        .await
    {
        Ok(passkey) => {
            let mut resp = Json(json!({ "passkey": passkey })).into_response();
            resp.headers_mut().append(
                header::SET_COOKIE,
                passkey_binding_cookie(c.settings(), None, 0),
            );
            resp
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RenameForm {
    id: String,
    name: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct IdForm {
    id: String,
}

/// A refused rename or delete: another operator's or an unknown passkey is the same 404.
async fn refused(c: &Console, s: &Signed, e: FutureAuthError) -> Response {
    match e {
        FutureAuthError::PasskeyNotFound | FutureAuthError::Misconfigured(_) => c.not_found(),
        FutureAuthError::InvalidInput(message) => {
            passkeys_page(c, s, None, Some(message), StatusCode::UNPROCESSABLE_ENTITY).await
        }
        e => c.unavailable(e),
    }
}

/// `POST /dashboard/account/passkeys/rename`: renames one of the operator's own passkeys.
pub async fn rename(
    State(c): State<Console>,
    s: Signed,
    CsrfForm(f): CsrfForm<RenameForm>,
) -> Response {
    match c
        .futureauth()
        .rename_passkey(&s.user_id, &f.id, &f.name)
        .await
    {
        Ok(_) => see_other(&format!("{PAGE}?done=renamed")),
        Err(e) => refused(&c, &s, e).await,
    }
}

/// `POST /dashboard/account/passkeys/delete`: deletes one of the operator's own passkeys;
/// codes and links keep working.
pub async fn delete(
    State(c): State<Console>,
    s: Signed,
    CsrfForm(f): CsrfForm<IdForm>,
) -> Response {
    match c.futureauth().delete_passkey(&s.user_id, &f.id).await {
        Ok(()) => see_other(&format!("{PAGE}?done=deleted")),
        Err(e) => refused(&c, &s, e).await,
    }
}
