//! The HTTP layer: routes, extractors, JSON errors and API documentation.

pub mod docs;
pub mod error;
pub mod extract;
pub mod manage;
pub mod messages;
pub mod ops;
pub mod webhooks;

use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::{BoxError, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::ErrorCode;
use crate::provider::Delivery;
use crate::service::SendService;
use crate::store::Store;
use error::ApiError;

pub use crate::unread_body::MAX_BODY_BYTES;

/// Shared state of the handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Accepts send requests.
    pub sender: SendService,
    /// The providers (for the dev outbox view).
    pub delivery: Delivery,
    /// Most delivery API requests handled at once (`--max-in-flight`).
    pub max_in_flight: usize,
    /// The bound address: the dev outbox answers only to a loopback `Host` with its port.
    pub listen: std::net::SocketAddr,
    /// The provider status webhooks this server verifies.
    pub webhooks: std::sync::Arc<crate::config::WebhookSettings>,
    /// Production mode (test mode then needs an explicit confirmation).
    pub production: bool,
}

async fn not_found() -> ApiError {
    ApiError::not_found()
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this method is not allowed on this path",
    )
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a handler panicked");
    ApiError::new(ErrorCode::InternalError, "internal error").into_response()
}

/// Answer of a request refused because [`AppState::max_in_flight`] requests are already
/// being handled.
async fn overloaded(_: BoxError) -> ApiError {
    ApiError::unavailable(
        ErrorCode::Overloaded,
        "too many requests in flight; retry in a moment",
    )
}

/// Builds the router with all routes and layers.
///
/// The delivery API (`/api/v1/otp/send`, `/api/v1/messages/{id}`) handles at most
/// `max_in_flight` requests at once and refuses the rest at once with `503 overloaded`
/// (load shedding: a queue in front of a slow database only makes every answer late).
/// Health, readiness and documentation routes are outside that bound.
pub fn router(state: AppState) -> Router {
    let limit = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(overloaded))
        .load_shed()
        .layer(GlobalConcurrencyLimitLayer::new(state.max_in_flight.max(1)));
    let api = Router::new()
        .route("/api/v1/otp/send", post(messages::send))
        .route("/api/v1/messages/{id}", get(messages::get))
        .route_layer(limit);
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/dev/outbox", get(ops::dev_outbox))
        .route("/webhooks/resend", post(webhooks::resend))
        .route("/webhooks/twilio", post(webhooks::twilio))
        .merge(api)
        .route("/api/v1/openapi.json", get(docs::openapi_json))
        .merge(docs::swagger_ui())
        .route("/llms.txt", get(docs::llms_txt))
        .merge(manage::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state)
}
