//! Documentation routes: the OpenAPI document, a self-contained `/docs` page and `/llms.txt`.

use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::{ErrorBody, ErrorDetail};
use super::manage;
use super::messages::{MessageResponse, SendBody, SendResponse};

/// The integration guide for AI coding assistants, served at `/llms.txt`.
pub const LLMS_TXT: &str = include_str!("../../docs/llms.md");

/// The OpenAPI description of `/api/v1`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "FutureAuth delivery API",
        description = "Delivers FutureAuth sign-in codes and magic links by email (Resend) and SMS (Twilio)."
    ),
    paths(super::messages::send, super::messages::get, openapi_json,
        manage::list_projects, manage::create_project, manage::get_project,
        manage::update_project, manage::delete_project, manage::list_keys, manage::create_key,
        manage::rotate_key, manage::revoke_key, manage::deliveries, manage::list_members,
        manage::invite, manage::remove_member, manage::audit, manage::get_templates,
        manage::put_templates),
    components(schemas(SendBody, SendResponse, MessageResponse, ErrorBody, ErrorDetail,
        manage::ProjectView, manage::CreateProjectBody, manage::CreatedProjectView,
        manage::SecretKeyView, manage::UpdateProjectBody, manage::KeyView, manage::RotateBody,
        manage::DeliveryView, manage::DeliveryPage, manage::MemberView, manage::InviteBody,
        manage::AuditView, manage::TemplatesBody)),
    modifiers(&SecretKeyAuth),
    tags((name = "delivery", description = "Queue messages and read their delivery status"),
        (name = "management", description = "The console's actions for automation, authenticated by an operator token (`vx_op_…`)"))
)]
pub struct ApiDoc;

struct SecretKeyAuth;

impl Modify for SecretKeyAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "secret_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("vx_sec_…")
                    .description(Some("The project's secret key"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "operator_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("vx_op_…")
                    .description(Some(
                        "An operator token, created in the console (API tokens) or with `futureauth-server operator token EMAIL`",
                    ))
                    .build(),
            ),
        );
    }
}

/// This OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "delivery",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
pub async fn openapi_json() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}

/// `GET /llms.txt` as `text/plain`.
pub async fn llms_txt() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        LLMS_TXT,
    )
}

/// Escapes text for HTML element content and quoted attributes: `& < > " '` (not `/`, so
/// paths such as `/api/v1/otp/send` stay readable and searchable in the page).
pub fn escape_html(s: &str) -> String {
    html_escape::encode_quoted_attribute(s).into_owned()
}

/// `GET /docs`: the operations of the OpenAPI document as a self-contained page (no external assets).
pub async fn docs_page() -> Html<String> {
    let doc = ApiDoc::openapi();
    let mut body = String::new();
    for (path, item) in &doc.paths.paths {
        let ops = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("DELETE", &item.delete),
            ("PATCH", &item.patch),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            body.push_str(&format!(
                "<section><h2><code>{method} {}</code></h2><p><strong>{}</strong></p><p>{}</p><ul>",
                escape_html(path),
                escape_html(op.summary.as_deref().unwrap_or("")),
                escape_html(op.description.as_deref().unwrap_or("")).replace('\n', "<br>"),
            ));
            for status in op.responses.responses.keys() {
                body.push_str(&format!("<li>{}</li>", escape_html(status)));
            }
            body.push_str("</ul></section>");
        }
    }
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem}}\
         section{{border-top:1px solid #ddd;padding:.5rem 0}}code{{background:#f4f4f4;padding:0 .2rem}}</style>\
         </head><body><h1>{title}</h1><p>Machine-readable: <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a> · \
         Integration guide: <a href=\"/llms.txt\">/llms.txt</a></p>\
         <p>All calls need <code>Authorization: Bearer vx_sec_…</code>. Errors are \
         <code>{{\"error\": {{\"code\": \"…\", \"message\": \"…\"}}}}</code>.</p>{body}</body></html>",
        title = escape_html(&doc.info.title),
    ))
}

#[cfg(test)]
mod tests {
    use super::escape_html;

    #[test]
    fn escape_html_escapes_markup_but_keeps_paths() {
        assert_eq!(
            escape_html(r#"<a href="x">&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#x27;&lt;/a&gt;"
        );
        assert_eq!(escape_html("/api/v1/otp/send"), "/api/v1/otp/send");
    }
}
