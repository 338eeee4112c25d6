//! The HTTP layer: routes, extractors, JSON errors and API documentation.

pub mod docs;
pub mod error;
pub mod extract;
pub mod messages;
pub mod ops;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;

use crate::provider::Delivery;
use crate::service::SendService;
use crate::store::Store;
use error::ApiError;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Shared state of the handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Accepts send requests.
    pub sender: SendService,
    /// The providers (for the dev outbox view).
    pub delivery: Delivery,
    /// The bound address: the dev outbox answers only to a loopback `Host` with its port.
    pub listen: std::net::SocketAddr,
}

async fn not_found() -> ApiError {
    ApiError::not_found()
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this method is not allowed on this path",
    )
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "internal error",
    )
    .into_response()
}

/// Builds the router with all routes and layers.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/dev/outbox", get(ops::dev_outbox))
        .route("/api/v1/otp/send", post(messages::send))
        .route("/api/v1/messages/{id}", get(messages::get))
        .route("/api/v1/openapi.json", get(docs::openapi_json))
        .route("/docs", get(docs::docs_page))
        .route("/llms.txt", get(docs::llms_txt))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state)
}
