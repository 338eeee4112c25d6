//! Documentation routes: the OpenAPI document, Swagger UI at `/docs` (vendored, no CDN) and `/llms.txt`.

use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi};

pub mod errors;

use super::error::{ErrorBody, ErrorDetail};
use super::manage;
use super::messages::{MessageEventView, MessageResponse, SendBody, SendPurpose, SendResponse};
use super::webhooks::{TwilioStatusForm, WebhookResponse};

/// The integration guide for AI coding assistants, served at `/llms.txt`.
pub const LLMS_TXT: &str = include_str!("../../docs/llms.md");

/// The OpenAPI description of `/api/v1`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "FutureAuth delivery API",
        description = "Delivers FutureAuth sign-in codes and magic links by email (Resend) and SMS (Twilio)."
    ),
    paths(super::messages::send, super::messages::get, super::webhooks::resend,
        super::webhooks::twilio, openapi_json,
        manage::list_projects, manage::create_project, manage::get_project,
        manage::update_project, manage::delete_project, manage::list_keys, manage::create_key,
        manage::rotate_key, manage::revoke_key, manage::deliveries, manage::list_members,
        manage::invite, manage::remove_member, manage::audit, manage::get_templates,
        manage::put_templates, manage::get_webhook, manage::put_webhook,
        manage::rotate_webhook, manage::delete_webhook, manage::get_test_mode, manage::put_test_mode,
        manage::delete_test_mode, manage::list_tokens, manage::create_token, manage::revoke_token),
    components(schemas(SendBody, SendPurpose, SendResponse, MessageResponse, MessageEventView, WebhookResponse, TwilioStatusForm, ErrorBody, ErrorDetail,
        manage::ProjectView, manage::CreateProjectBody, manage::CreatedProjectView,
        manage::SecretKeyView, manage::UpdateProjectBody, manage::LifespanView, manage::KeyView, manage::RotateBody,
        manage::DeliveryView, manage::DeliveryPage, manage::MemberView, manage::InviteBody,
        manage::AuditView, manage::TemplatesBody, manage::OperatorTokenView,
        manage::CreateTokenBody, manage::NewOperatorTokenView, manage::TestModeBody,
        manage::WebhookBody, manage::WebhookView)),
    modifiers(&SecretKeyAuth, &ManagementCommon),
    tags((name = "delivery", description = "Queue messages and read their delivery status"),
        (name = "webhooks", description = "Status events from the providers (Resend, Twilio), verified by their signatures"),
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

/// What every `management` operation shares, declared once rather than on each route: the
/// operator token it is authenticated by, and its 401 and 503 answers.
struct ManagementCommon;

impl Modify for ManagementCommon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let common: Vec<_> = errors::Unauthorized::responses()
            .into_iter()
            .chain(errors::Unavailable::responses())
            .collect();
        for item in openapi.paths.paths.values_mut() {
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
            ];
            for op in ops.into_iter().chain([&mut item.patch]).flatten() {
                if !op.tags.iter().flatten().any(|t| t == "management") {
                    continue;
                }
                let token = SecurityRequirement::new("operator_token", Vec::<String>::new());
                op.security = Some(vec![token]);
                op.responses.responses.extend(common.iter().cloned());
            }
        }
    }
}

/// This OpenAPI 3.1 document.
///
/// Served without authentication; Swagger UI at `/docs` reads it.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "delivery",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", example = json!({"openapi": "3.1.0", "info": {"title": "FutureAuth delivery API"}})))
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

/// `/docs`: Swagger UI over [`ApiDoc`] at `/api/v1/openapi.json`.
///
/// The UI's files come from the `utoipa-swagger-ui` crate's `vendored` feature: compiled
/// into the binary, so neither the build nor the page reaches the network. `/docs`
/// redirects to `/docs/`.
pub fn swagger_ui<S: Clone + Send + Sync + 'static>() -> axum::Router<S> {
    let config = utoipa_swagger_ui::Config::new(["/api/v1/openapi.json"])
        .try_it_out_enabled(true)
        .display_request_duration(true);
    utoipa_swagger_ui::SwaggerUi::new("/docs")
        .config(config)
        .into()
}

#[cfg(test)]
mod tests;
