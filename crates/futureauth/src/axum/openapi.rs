//! The OpenAPI document of [`auth_router`](super::auth_router)'s routes (feature `openapi`).
//!
//! The request bodies are the router's own types; the answers, built with `json!` by the
//! handlers, are described by the shapes in `body.rs`.

use serde_json::json;
use utoipa::OpenApi;

use super::body::ErrorBody;
use super::router;
use crate::model::{AuthMethod, Session, User};

#[derive(OpenApi)]
#[openapi(
    paths(
        router::send_otp, router::verify_otp, router::send_magic_link, router::verify_magic_link,
        router::magic_link_status,
        router::session, router::sign_out, router::list_sessions, router::revoke_session,
        router::sign_out_all, router::change_identifier, router::verify_identifier_change,
        router::remove_identifier, router::delete_account,
        super::magic_link::landing, super::magic_link::landing_post,
        super::magic_link::confirm_change_page, super::magic_link::confirm_change_post
    ),
    components(schemas(User, Session, AuthMethod, ErrorBody)),
    tags((name = "futureauth", description = "Passwordless sign-in: one-time codes, magic links and sessions"))
)]
struct AuthApi;

/// The passkey routes, served when passkeys are configured.
#[cfg(feature = "passkeys")]
#[derive(OpenApi)]
#[openapi(
    paths(
        super::passkey::register_options,
        super::passkey::register,
        super::passkey::sign_in_options,
        super::passkey::verify,
        super::passkey::list,
        super::passkey::rename,
        super::passkey::delete
    ),
    components(schemas(crate::Passkey))
)]
struct PasskeyApi;

/// The OpenAPI document of the routes [`auth_router`](super::auth_router) serves, to merge
/// into your app's own.
///
/// The request bodies say exactly what the routes accept: an email address or an E.164
/// phone number (exactly one of the two where both are offered), a code of
/// `[a-z0-9]` (any case), a link token, a callback URL without a query (so never a
/// `token` of its own). A schema cannot say which codes or tokens exist, nor which
/// callback origins an app trusts: those refusals are the 400s (`invalid_code`,
/// `invalid_magic_link`, …) and 422 `callback_not_allowed` the responses list.
///
/// ```
/// let doc = futureauth::axum::openapi();
/// assert!(doc.paths.paths.contains_key("/api/auth/verify-otp"));
/// // With utoipa: `let mut mine = ApiDoc::openapi(); mine.merge(futureauth::axum::openapi());`
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "openapi")))]
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[allow(unused_mut)]
    let mut doc = AuthApi::openapi();
    // With the `passkeys` feature, the passkey routes too (served when configured).
    #[cfg(feature = "passkeys")]
    doc.merge(PasskeyApi::openapi());
    // The request schemas are written out below rather than derived: a derived schema says
    // "a string" where the route takes only an email address. (tests/openapi.rs checks
    // that the patched document is the one served, not this fallback.)
    let patched = serde_json::to_value(&doc).ok().and_then(|mut json| {
        request_schemas(&mut json);
        serde_json::from_value(json).ok()
    });
    let mut doc = patched.unwrap_or(doc);
    links(&mut doc);
    doc
}

/// What `Email::parse` accepts, less exotic forms: `local@domain.tld` in ASCII (any case;
/// the address is lower-cased), local part at most 64 characters, labels at most 63.
fn email() -> serde_json::Value {
    const LABEL: &str = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,20}[A-Za-z0-9])?";
    json!({
        "type": "string",
        "description": "An email address, such as ada@example.com (lower-cased on arrival).",
        "minLength": 5,
        "maxLength": 254,
        "pattern": format!("^[A-Za-z0-9_+-]{{1,32}}(?:\\.[A-Za-z0-9_+-]{{1,15}}){{0,2}}@{LABEL}(?:\\.{LABEL}){{1,4}}$"),
        "example": "ada@example.com",
    })
}

/// An international number in E.164 with a calling code that exists.
fn phone() -> serde_json::Value {
    json!({
        "type": "string",
        "description": "A phone number in E.164: + and 8 to 15 digits, with a country calling code that exists. The numbering plan of that country is checked too (a 422 `invalid_phone` otherwise).",
        "minLength": 9,
        "maxLength": 16,
        "pattern": futureauth_proto::Phone::e164_pattern(),
        "example": "+15551234567",
    })
}

/// [`OtpCode`](futureauth_proto::OtpCode): 4 to 12 of `[a-z0-9]`, any case.
fn code() -> serde_json::Value {
    json!({
        "type": "string",
        "description": "The code from the email or SMS (any case).",
        "minLength": 4,
        "maxLength": 12,
        "pattern": "^[A-Za-z0-9]{4,12}$",
        "example": "a1b2c3",
    })
}

/// [`LinkToken`](futureauth_proto::LinkToken): 32 to 64 of `[A-Za-z0-9_-]`.
fn token() -> serde_json::Value {
    json!({
        "type": "string",
        "description": "The `token` of the magic link.",
        "minLength": 32,
        "maxLength": 64,
        "pattern": "^[A-Za-z0-9_-]{32,64}$",
    })
}

/// Exactly one of `email` and `phone` (the other absent or `null`), plus `extra` fields.
fn one_of_email_or_phone(extra: &[(&str, serde_json::Value)]) -> serde_json::Value {
    let branch = |with: &str, value: serde_json::Value, without: &str| {
        let mut properties = serde_json::Map::new();
        properties.insert(with.to_string(), value);
        properties.insert(without.to_string(), json!({ "type": "null" }));
        let mut required = vec![json!(with)];
        for (name, schema) in extra {
            properties.insert(name.to_string(), schema.clone());
            required.push(json!(name));
        }
        json!({ "type": "object", "required": required, "properties": properties })
    };
    json!({
        "description": "Exactly one of `email` and `phone`.",
        "oneOf": [branch("email", email(), "phone"), branch("phone", phone(), "email")],
    })
}

/// Replaces the derived request schemas and the landing pages' token with what the routes
/// accept.
fn request_schemas(doc: &mut serde_json::Value) {
    json_bodies(&mut doc["components"]["schemas"]);
    page_forms(&mut doc["paths"]);
}

/// The JSON bodies of the API's calls (a table: one schema a call).
fn json_bodies(schemas: &mut serde_json::Value) {
    schemas["SendOtp"] = one_of_email_or_phone(&[]);
    schemas["VerifyOtp"] = one_of_email_or_phone(&[("code", code())]);
    schemas["ChangeIdentifier"] = one_of_email_or_phone(&[]);
    schemas["VerifyIdentifierChange"] = one_of_email_or_phone(&[("code", code())]);
    schemas["RemoveIdentifier"] = json!({
        "type": "object",
        "required": ["which"],
        "properties": {
            "which": {
                "type": "string",
                "description": "Which address to remove: `email`, or `phone` (also written `sms`).",
                "enum": ["email", "phone", "sms"],
                "example": "phone",
            },
        },
    });
    schemas["SendMagicLink"] = json!({
        "type": "object",
        "required": ["email"],
        "properties": {
            "email": email(),
            "callback_url": {
                "type": ["string", "null"],
                "description": "The page the link opens: an absolute http(s) URL without credentials or a query (the link adds `?token=`), on `app_url`'s origin, one of `allowed_origins`, or listed in `callback_urls` (else 422 `callback_not_allowed`). Absent or `null`: the landing page `auth_router` serves, which needs `app_url` (else 422 `invalid_request`).",
                "maxLength": 2048,
                "pattern": "^https?://[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?(?:\\.[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?){0,3}(?::[1-9][0-9]{0,3})?(?:/[A-Za-z0-9._~-]{0,30}){0,4}$",
                "example": "https://app.example.com/auth/verify",
            },
        },
    });
    schemas["VerifyMagicLink"] = json!({
        "type": "object",
        "required": ["token"],
        "properties": { "token": token() },
    });
    schemas["RevokeSession"] = json!({
        "type": "object",
        "required": ["id"],
        "properties": {
            "id": {
                "type": "string",
                "description": "The `id` of one of the user's sessions (from `GET /api/auth/sessions`).",
                "minLength": 1,
                "maxLength": 64,
                "pattern": "^[A-Za-z0-9_-]{1,64}$",
            },
        },
    });
}

/// The token query and the form bodies of the HTML pages (the magic-link landing page and
/// the confirm page of an email change).
fn page_forms(paths: &mut serde_json::Value) {
    let landing = &mut paths["/api/auth/magic-link"];
    require_token(landing);
    // Signing in takes the token; approving takes the number the asking browser shows too.
    landing["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"] = json!({
        "oneOf": [
            {
                "type": "object",
                "required": ["token"],
                "properties": {
                    "token": token(),
                    "action": { "type": "string", "enum": ["sign_in"] },
                },
            },
            {
                "type": "object",
                "required": ["token", "action", "number"],
                "properties": {
                    "token": token(),
                    "action": { "type": "string", "enum": ["approve"] },
                    "number": { "type": "string", "pattern": "^[0-9]{2}$" },
                },
            },
        ],
    });
    // The confirm page of an email change by link: the same token, on GET and in its form.
    let confirm = &mut paths["/api/auth/confirm-identifier-change"];
    require_token(confirm);
    confirm["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"] = json!({
        "type": "object",
        "required": ["token"],
        "properties": { "token": token() },
    });
}

/// Makes the `token` query parameter of a page's `GET` required, with the token's schema.
fn require_token(path: &mut serde_json::Value) {
    if let Some(params) = path["get"]["parameters"].as_array_mut() {
        for param in params.iter_mut().filter(|p| p["name"] == "token") {
            param["schema"] = token();
            param["required"] = json!(true);
        }
    }
}

/// The links from one answer to the next call it makes possible, for clients and for
/// stateful testing: a listed session can be revoked, a sent link's status polled, and a
/// signed-in session listed or ended.
///
/// Written as the response's `links` key through its extensions: utoipa 5 serialises its
/// own `Link` type with snake_case field names (`operation_id`), which no tool reads.
fn links(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{extensions::Extensions, HttpMethod, RefOr};
    let links = [
        (
            "/api/auth/sessions",
            HttpMethod::Get,
            json!({
                "RevokeListedSession": {
                    "operationId": "revoke_session",
                    "requestBody": { "id": "$response.body#/sessions/0/id" },
                    "description": "Revoke the first listed session (newest first)",
                },
            }),
        ),
        (
            "/api/auth/send-magic-link",
            HttpMethod::Post,
            json!({
                "PollLinkStatus": {
                    "operationId": "magic_link_status",
                    "description": "Poll whether the link was approved on another device",
                },
            }),
        ),
        (
            "/api/auth/session",
            HttpMethod::Get,
            json!({
                "ListSessions": {
                    "operationId": "list_sessions",
                    "description": "List the user's live sessions",
                },
                "SignOut": { "operationId": "sign_out", "description": "End this session" },
            }),
        ),
    ];
    for (path, method, links) in links {
        let operation = doc.paths.paths.get_mut(path).and_then(|item| match method {
            HttpMethod::Get => item.get.as_mut(),
            _ => item.post.as_mut(),
        });
        let ok = operation.and_then(|op| op.responses.responses.get_mut("200"));
        if let Some(RefOr::T(response)) = ok {
            let extra = Extensions::from_iter([("links".to_string(), links)]);
            match &mut response.extensions {
                Some(extensions) => extensions.merge(extra),
                None => response.extensions = Some(extra),
            }
        }
    }
}
