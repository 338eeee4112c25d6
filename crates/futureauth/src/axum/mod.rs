//! Axum integration: the HTTP API ([`auth_router`]), the [`AuthSession`] extractor and the
//! CSRF guard for your own cookie-authenticated routes ([`csrf_layer`]).
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::{routing::get, Json, Router};
//! use futureauth::axum::{auth_router, AuthSession};
//! use futureauth::FutureAuth;
//!
//! #[derive(Clone)]
//! struct AppState { auth: Arc<FutureAuth> }
//! impl AsRef<Arc<FutureAuth>> for AppState {
//!     fn as_ref(&self) -> &Arc<FutureAuth> { &self.auth }
//! }
//!
//! async fn me(auth: AuthSession) -> Json<serde_json::Value> {
//!     Json(serde_json::json!({ "id": auth.user.id, "email": auth.user.email }))
//! }
//!
//! # async fn run(auth: FutureAuth) -> std::io::Result<()> {
//! let state = AppState { auth: Arc::new(auth) };
//! let app = Router::new()
//!     .merge(auth_router(state.auth.clone())) // .merge(), not .nest(): routes carry /api/auth/
//!     .route("/api/me", get(me))
//!     .with_state(state);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! // ConnectInfo gives the per-IP rate limits the client address.
//! axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await
//! # }
//! ```
//!
//! ## Any app state
//! The extractors take the [`FutureAuth`](crate::FutureAuth) from your state through axum's
//! `FromRef`, as an [`AuthState`]: the `AsRef<Arc<FutureAuth>>` above is one way to hand it
//! out, `impl FromRef<AppState> for AuthState` (or `#[derive(FromRef)]` with an `AuthState`
//! field) the other, for states that cannot or need not implement `AsRef`.
//!
//! ## A single-page app on another origin
//! Browsers send the session cookie cross-origin only with `credentials: "include"` and a
//! CORS answer that names the origin. List the SPA's origin in
//! [`FutureAuthConfig::allowed_origins`](crate::FutureAuthConfig::allowed_origins) (the CSRF
//! guard and magic-link callbacks accept it) and add a CORS layer such as
//! `tower_http::cors::CorsLayer::new().allow_origin("https://app.example.com".parse::<HeaderValue>()?)
//! .allow_credentials(true).allow_methods([GET, POST]).allow_headers([CONTENT_TYPE])`.
//! The cookie is `SameSite=Lax`, so the SPA must be on the same *site* (e.g.
//! `app.example.com` calling `api.example.com`); across sites, use `Authorization: Bearer`.

mod answer;
#[cfg(feature = "openapi")]
mod body;
mod client;
mod cookie;
mod csrf;
mod extract;
mod magic_link;
#[cfg(feature = "openapi")]
mod openapi;
#[cfg(feature = "passkeys")]
mod passkey;
mod rejection;
mod router;

pub use cookie::{cookie_value, set_cookie};
pub use csrf::{csrf_layer, Csrf, CsrfLayer};
pub use extract::{AuthSession, AuthState, RecentAuthSession};
#[cfg(feature = "openapi")]
#[cfg_attr(docsrs, doc(cfg(feature = "openapi")))]
pub use openapi::openapi;
pub use rejection::ApiError;
pub use router::auth_router;
