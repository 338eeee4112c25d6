//! # futureauth-server
//!
//! The FutureAuth delivery service. The `futureauth` SDK keeps all auth state in the app's
//! database; this service only delivers sign-in codes and magic links, by email through
//! Resend and by SMS through Twilio, for registered projects authenticated by secret keys.
//!
//! Request flow: HTTP ([`api`]) → validation, limits and rendering ([`service`]) → the
//! durable outbox ([`store`]) → 202. Background [`worker`]s claim due messages and hand them
//! to a [`provider`], retrying with backoff.
//!
//! Use [`start`] to run the whole service on a listener (tests bind `127.0.0.1:0`), or
//! [`app`] to get the bare router.

#![warn(missing_docs)]

pub(crate) mod api;
pub mod cleanup;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod error;
pub(crate) mod ids;
pub(crate) mod message;
pub(crate) mod metrics;
pub mod provider;
pub mod service;
pub(crate) mod signature;
pub mod sms;
pub mod store;
mod unread_body;
pub(crate) mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

pub use api::AppState;
pub use config::Config;

use config::ConfigError;
use error::{ServiceError, StoreError};
use provider::Delivery;
use service::{Limits, SendService};
use store::Store;
use worker::{Worker, WorkerConfig};

/// Why the server could not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// Bad configuration; the message says how to fix it.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database could not be opened or migrated.
    #[error("cannot open the database: {0} (check DATABASE_URL)")]
    Store(#[from] StoreError),
    /// Listening failed.
    #[error("cannot listen: {0}")]
    Io(#[from] std::io::Error),
    /// Templates failed to load.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The console could not be set up.
    #[error(transparent)]
    Console(#[from] console::ConsoleError),
}

/// The router of the service over `state`.
pub fn app(state: AppState) -> Router {
    api::router(state)
}

/// A running server: its HTTP task, its workers and its cleanup task. Dropping it aborts them.
#[derive(Debug)]
pub struct RunningServer {
    /// The bound address.
    pub addr: SocketAddr,
    /// The bound address of `GET /metrics` (`--metrics-listen`), if configured.
    pub metrics_addr: Option<SocketAddr>,
    /// The state shared by the handlers.
    pub state: AppState,
    http: JoinHandle<()>,
    metrics: Option<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
    cleanup: JoinHandle<()>,
    /// Listens for project changes while keys and settings are cached (Postgres).
    cache: Option<JoinHandle<()>>,
    shutdown: watch::Sender<bool>,
}

impl RunningServer {
    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops everything at once, like a crash: in-flight sends are abandoned (their leases
    /// expire and another instance picks them up).
    pub fn abort(&self) {
        self.http.abort();
        if let Some(m) = &self.metrics {
            m.abort();
        }
        for w in &self.workers {
            w.abort();
        }
        self.cleanup.abort();
        if let Some(c) = &self.cache {
            c.abort();
        }
    }

    /// Graceful stop: no new connections, in-flight requests and sends finish (up to
    /// `grace`), then whatever is left is aborted.
    pub async fn shutdown(&mut self, grace: Duration) {
        let _ = self.shutdown.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        let _ = tokio::time::timeout_at(deadline, &mut self.http).await;
        for w in &mut self.workers {
            let _ = tokio::time::timeout_at(deadline, w).await;
        }
        let _ = tokio::time::timeout_at(deadline, &mut self.cleanup).await;
        self.abort();
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.abort();
    }
}

/// Builds providers from `config`, opens and migrates the database and starts the service.
pub async fn start(config: &Config, listener: TcpListener) -> Result<RunningServer, StartError> {
    // The mode follows from the address really bound (`127.0.0.1:0` in tests).
    let config = &config.listening_on(listener.local_addr()?);
    let delivery = Delivery::from_config(config)?;
    let store = Store::connect_with(&config.database.url(), &config.store_options()).await?;
    start_with(config, store, delivery, listener).await
}

/// Starts the service on an already opened (and migrated) store with the given providers.
pub async fn start_with(
    config: &Config,
    store: Store,
    delivery: Delivery,
    listener: TcpListener,
) -> Result<RunningServer, StartError> {
    let addr = listener.local_addr()?;
    let config = &config.listening_on(addr);
    check_before_start(config, addr, &delivery)?;
    let wake = Arc::new(Notify::new());
    let state = AppState {
        store: store.clone(),
        sender: open_sender(config, &store, wake.clone()).await?,
        delivery: delivery.clone(),
        max_in_flight: config.max_in_flight.get(),
        listen: addr,
        webhooks: Arc::new(config.webhooks()?),
        production: config.is_production(),
    };
    log_providers(&delivery, addr);
    // Before any task starts: a console that cannot be set up stops the start.
    let router = build_router(config, &state).await?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    // Keys and send settings in memory: an accepted send reads neither (Postgres).
    let cache = store.cache_projects();
    let (workers, cleanup) = start_workers(config, &state, wake, &shutdown_rx);
    let http = serve_http(listener, router, shutdown_rx);
    tracing::info!(%addr, database = store.backend_name(), "futureauth-server listening");
    let (metrics_addr, metrics) = match config.metrics_listen {
        Some(at) => {
            let (bound, task) = serve_metrics(at, store)?;
            (Some(bound), Some(task))
        }
        None => (None, None),
    };
    Ok(RunningServer {
        addr,
        metrics_addr,
        metrics,
        state,
        http,
        workers,
        cleanup,
        cache,
        shutdown,
    })
}

/// The rules between settings, the dev outbox against the bound address; logs the mode.
fn check_before_start(
    config: &Config,
    addr: SocketAddr,
    delivery: &Delivery,
) -> Result<(), StartError> {
    config.validate()?;
    config.check_dev_outbox(addr, delivery.dev_outbox().is_some())?;
    let (mode, reason) = config.mode();
    tracing::info!(?mode, because = %reason, "mode");
    Ok(())
}

/// The send service, with its request fingerprint key and destination hash key loaded now,
/// not inside the first send's request.
async fn open_sender(
    config: &Config,
    store: &Store,
    wake: Arc<Notify>,
) -> Result<SendService, StartError> {
    let secret = config.server_secret(store).await?;
    let sender = SendService::new(
        store.clone(),
        Limits::from_config(config),
        config.providers.resend.email_from.clone(),
        &secret,
        wake,
    )?
    .in_production(config.is_production());
    sender.destination_hasher().load(store).await?;
    Ok(sender)
}

/// Says where messages go: loudly when only to the dev outbox or to one channel.
fn log_providers(delivery: &Delivery, addr: SocketAddr) {
    let (email, sms) = delivery.provider_names();
    if delivery.dev_outbox().is_some() {
        tracing::warn!(
            "NO PROVIDER CONFIGURED: messages are NOT sent, only logged and kept at GET /dev/outbox \
             (answered only to Host localhost / 127.0.0.1 / [::1] with the listen port). \
             Set RESEND_API_KEY and TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN/TWILIO_FROM_NUMBER to deliver for real."
        );
        if !addr.ip().is_loopback() {
            tracing::warn!(%addr, "--insecure-dev-outbox: the dev outbox is served on a non-loopback address");
        }
    } else {
        tracing::info!(email, sms, "providers");
        if email == "unconfigured" || sms == "unconfigured" {
            tracing::warn!(
                email,
                sms,
                "one channel has no provider: its messages will be marked failed"
            );
        }
    }
}

/// The delivery workers and the cleanup task, all stopping when `shutdown` says so.
fn start_workers(
    config: &Config,
    state: &AppState,
    wake: Arc<Notify>,
    shutdown: &watch::Receiver<bool>,
) -> (Vec<JoinHandle<()>>, JoinHandle<()>) {
    let worker_config = WorkerConfig::from_config(config);
    let workers = (0..config.delivery.workers.get())
        .map(|i| {
            let w = Worker::new(
                state.store.clone(),
                state.delivery.clone(),
                worker_config.clone(),
                wake.clone(),
            );
            tokio::spawn(w.run(i, shutdown.clone()))
        })
        .collect();
    let cleanup = tokio::spawn(cleanup::run(
        state.store.clone(),
        cleanup::Retention {
            messages: config.delivery.retention(),
            rate_counters: worker_config.counter_retention,
        },
        config.delivery.max_queue_age(),
        shutdown.clone(),
    ));
    (workers, cleanup)
}

/// The console (set up now: its secrets, its sign-in tables) and the API on one router.
async fn build_router(config: &Config, state: &AppState) -> Result<Router, StartError> {
    let console = console::Console::open(
        config,
        state.listen,
        state.store.clone(),
        state.sender.clone(),
        state.delivery.dev_outbox().is_some(),
    )
    .await?;
    Ok(console::router(console)
        .merge(app(state.clone()))
        // Outermost: it must see whether any handler read the body.
        .layer(axum::middleware::from_fn(unread_body::close_if_body_unread)))
}

/// Serves `router` on `listener` until `shutdown` says so, then lets in-flight requests
/// finish.
fn serve_http(
    listener: TcpListener,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        };
        // The peer address feeds the console's per-IP sign-in limits.
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(listener, service)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    })
}

/// Binds `at` and serves [`metrics::router`] there (a blocking bind: `start_with` is not async).
fn serve_metrics(at: SocketAddr, store: Store) -> Result<(SocketAddr, JoinHandle<()>), StartError> {
    let std_listener = std::net::TcpListener::bind(at)?;
    std_listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(std_listener)?;
    let bound = listener.local_addr()?;
    let router = metrics::router(store);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "metrics server stopped");
        }
    });
    tracing::info!(addr = %bound, "metrics at GET /metrics");
    Ok((bound, task))
}

/// Runs the service on `config.listen` until Ctrl-C / SIGTERM.
pub async fn serve(config: &Config) -> Result<(), StartError> {
    config.validate()?;
    // Before binding: fail on the configured address, not only on the bound one.
    config.check_dev_outbox(
        config.listen,
        config.resend().is_none() && config.twilio()?.is_none(),
    )?;
    let listener = TcpListener::bind(config.listen).await?;
    let mut server = start(config, listener).await?;
    shutdown_signal().await;
    tracing::info!("shutting down: finishing in-flight requests and sends");
    server
        .shutdown(config.delivery.provider_timeout() + Duration::from_secs(2))
        .await;
    server.state.store.close().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
