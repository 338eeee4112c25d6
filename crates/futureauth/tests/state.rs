//! The fallible builder, and the extractors with both forms of app state: the
//! `AsRef<Arc<FutureAuth>>` of the spec and axum's `FromRef`. Real HTTP on loopback, on
//! Postgres and SQLite.

mod common;

use std::sync::Arc;

use axum::extract::FromRef;
use axum::routing::get;
use axum::Router;
use common::{code_for, config, TestDb};
use futureauth::axum::{AuthSession, AuthState, RecentAuthSession};
use futureauth::delivery::DevOutbox;
use futureauth::hooks::AuthHooks;
use futureauth::{FutureAuth, FutureAuthConfig, FutureAuthError, OtpChannel};
use reqwest::StatusCode;

/// The state form of the spec.
#[derive(Clone)]
struct AsRefState {
    auth: Arc<FutureAuth>,
}

impl AsRef<Arc<FutureAuth>> for AsRefState {
    fn as_ref(&self) -> &Arc<FutureAuth> {
        &self.auth
    }
}

/// A state that hands the FutureAuth out through `FromRef` only.
#[derive(Clone)]
struct FromRefState {
    auth: Arc<FutureAuth>,
    greeting: &'static str,
}

impl FromRef<FromRefState> for AuthState {
    fn from_ref(state: &FromRefState) -> Self {
        AuthState(state.auth.clone())
    }
}

/// Derived: a state with an `AuthState` field.
#[derive(Clone, FromRef)]
struct DerivedState {
    auth: AuthState,
}

/// Hooks that do nothing, to show the builder takes them.
struct Quiet;

impl AuthHooks for Quiet {}

async fn me(auth: AuthSession) -> String {
    auth.user.id
}

async fn maybe(auth: Option<AuthSession>) -> String {
    auth.map_or_else(|| "anonymous".to_string(), |a| a.user.id)
}

async fn recent(RecentAuthSession(auth): RecentAuthSession) -> String {
    auth.user.id
}

fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    AuthState: FromRef<S>,
{
    Router::new()
        .route("/me", get(me))
        .route("/maybe", get(maybe))
        .route("/recent", get(recent))
}

/// Serves `app` on loopback; its base URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// The same answers through every state form: 200 with the session, 401 without, `None`
/// for a signed-out `Option<AuthSession>`.
async fn extractors_take_any_state(db: TestDb) {
    let outbox = DevOutbox::quiet();
    let auth = Arc::new(db.auth_with(config(), outbox.clone()).await);
    let email = "state@example.com";
    auth.send_otp(OtpChannel::Email, email).await.unwrap();
    let (user, session) = auth
        .verify_otp(email, &code_for(&outbox, email), None, None)
        .await
        .unwrap();

    let as_ref = routes().with_state(AsRefState { auth: auth.clone() });
    let state = FromRefState {
        auth: auth.clone(),
        greeting: "hello",
    };
    let from_ref = routes()
        .route(
            "/greet",
            get(|s: axum::extract::State<FromRefState>| async move { s.greeting }),
        )
        .with_state(state);
    let derived = routes().with_state(DerivedState {
        auth: AuthState(auth.clone()),
    });
    let http = reqwest::Client::new();
    for app in [as_ref, from_ref, derived] {
        let base = serve(app).await;
        for path in ["/me", "/maybe", "/recent"] {
            let signed_in = http
                .get(format!("{base}{path}"))
                .bearer_auth(&session.token)
                .send()
                .await
                .unwrap();
            assert_eq!(signed_in.status(), StatusCode::OK, "{path}");
            assert_eq!(signed_in.text().await.unwrap(), user.id, "{path}");
        }
        let anonymous = http.get(format!("{base}/me")).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
        let maybe = http.get(format!("{base}/maybe")).send().await.unwrap();
        assert_eq!(maybe.text().await.unwrap(), "anonymous");
    }
}

/// `build` refuses at construction what `new` keeps for `validate` to report.
async fn build_fails_where_new_defers(db: TestDb) {
    let bad_origin = FutureAuthConfig {
        app_url: "not a url".to_string(),
        ..config()
    };
    let deferred = db.new_auth(bad_origin.clone());
    assert!(matches!(
        deferred.validate(),
        Err(FutureAuthError::Config(_))
    ));
    assert!(matches!(
        deferred.origins(),
        Err(FutureAuthError::Config(_))
    ));
    let err = db
        .builder(bad_origin)
        .delivery(DevOutbox::quiet())
        .build()
        .unwrap_err();
    assert!(
        matches!(err, FutureAuthError::Config(ref m) if m.contains("app_url")),
        "{err}"
    );

    // The HTTP delivery needs the project's secret key.
    let keyless = FutureAuthConfig {
        secret_key: String::new(),
        ..config()
    };
    #[cfg(feature = "http-delivery")]
    {
        let err = db.builder(keyless.clone()).build().unwrap_err();
        assert!(
            matches!(err, FutureAuthError::Config(ref m) if m.contains("secret_key")),
            "{err}"
        );
    }
    // A dev outbox does not, and a good configuration builds and runs.
    let auth = db
        .builder(keyless)
        .delivery(DevOutbox::quiet())
        .hooks(Quiet)
        .session_cache(None)
        .build()
        .unwrap();
    auth.ensure_tables().await.unwrap();

    let broken_limits = FutureAuthConfig {
        otp_length: 3,
        ..config()
    };
    let err = db
        .builder(broken_limits)
        .delivery(DevOutbox::quiet())
        .build()
        .unwrap_err();
    assert!(
        matches!(err, FutureAuthError::Config(ref m) if m.contains("otp_length")),
        "{err}"
    );
}

both_backends!(extractors_take_any_state, build_fails_where_new_defers);
