//! Cross-instance eviction on Postgres: `NOTIFY` after a revoke, one `LISTEN`ing task per
//! instance that reconnects after its connection drops.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::PgPool;
use tokio::sync::Notify;

use super::{Eviction, Shared};
use crate::error::{FutureAuthError, Result};
use crate::store::deadline::{bounded, within};

/// The channel every instance listens on.
pub(crate) const CHANNEL: &str = "futureauth_session_revoked";

/// NOTIFY payloads must stay under 8000 bytes; longer ids are sent as [`Eviction::All`].
const MAX_PAYLOAD: usize = 4000;

impl Eviction {
    pub(super) fn to_payload(&self) -> String {
        let payload = match self {
            Self::Token(hash) => format!("t:{hash}"),
            Self::Session(id) => format!("s:{id}"),
            Self::User(id) => format!("u:{id}"),
            Self::All => return "*".to_string(),
        };
        if payload.len() > MAX_PAYLOAD {
            "*".to_string()
        } else {
            payload
        }
    }

    pub(super) fn from_payload(payload: &str) -> Self {
        match payload.split_once(':') {
            Some(("t", hash)) => Self::Token(hash.to_string()),
            Some(("s", id)) => Self::Session(id.to_string()),
            Some(("u", id)) => Self::User(id.to_string()),
            _ => Self::All,
        }
    }
}

/// How long the listener waits for a notification before it checks, with a bounded
/// `SELECT 1`, that its connection still answers. A frozen or cut-off server sends no
/// error, so without this the cache would stay on while no eviction can reach it.
pub(super) const KEEPALIVE: Duration = Duration::from_secs(10);

/// Tells every listening instance (this one included) to evict, within `bound`.
pub(super) async fn notify(
    pool: &PgPool,
    bound: Option<Duration>,
    eviction: &Eviction,
) -> Result<()> {
    bounded!(pool, bound, conn => {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(eviction.to_payload())
            .execute(&mut *conn)
            .await?;
    })
}

/// Spawns the listener on the current Tokio runtime; it ends when `shutdown` is notified
/// or the pool is closed. Without a runtime nothing is spawned and the cache stays off.
pub(super) fn spawn(
    pool: PgPool,
    bound: Option<Duration>,
    shared: Arc<Shared>,
    shutdown: Arc<Notify>,
) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!("futureauth session cache: no Tokio runtime, the cache stays off");
        return;
    };
    runtime.spawn(async move {
        tokio::select! {
            () = listen_forever(&pool, bound, &shared) => {}
            () = shutdown.notified() => {}
        }
        shared.set_live(false);
    });
}

async fn listen_forever(pool: &PgPool, bound: Option<Duration>, shared: &Shared) {
    let mut backoff = Duration::from_millis(50);
    while !pool.is_closed() {
        match listen(pool, bound, shared).await {
            // Connected, then lost: reconnect at once.
            Ok(()) => backoff = Duration::from_millis(50),
            Err(error) => {
                tracing::warn!(%error, "futureauth session cache: listener connection failed");
            }
        }
        // Notifications may be lost from here until the next LISTEN: bypass and empty.
        shared.set_live(false);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// `fut` within `bound`, or [`FutureAuthError::DatabaseTimeout`].
async fn step<T>(
    bound: Option<Duration>,
    fut: impl std::future::Future<Output = std::result::Result<T, sqlx::Error>>,
) -> Result<T> {
    match within(bound, fut).await {
        Some(result) => Ok(result?),
        None => Err(FutureAuthError::DatabaseTimeout(bound.unwrap_or_default())),
    }
}

/// One connection's life: LISTEN, turn the cache on, evict on every message until the
/// connection drops (`Ok`), fails or stops answering the keepalive (`Err`).
///
/// The connection comes from a private one-connection pool with the app pool's settings:
/// a dropped `PgListener` hands its connection back through `UNLISTEN`, which hangs on a
/// frozen server, and must not hold a slot of the app's pool meanwhile.
async fn listen(app_pool: &PgPool, bound: Option<Duration>, shared: &Shared) -> Result<()> {
    let mut options = PgPoolOptions::new().max_connections(1);
    if let Some(bound) = bound {
        options = options.acquire_timeout(bound);
    }
    let pool = options.connect_lazy_with((*app_pool.connect_options()).clone());
    let mut listener = step(bound, PgListener::connect_with(&pool)).await?;
    // On a lost connection, return at once: the caller empties the cache, then reconnects.
    listener.eager_reconnect(false);
    step(bound, listener.listen(CHANNEL)).await?;
    // Anything revoked before this LISTEN was not heard: start empty.
    shared.set_live(true);
    loop {
        match tokio::time::timeout(KEEPALIVE, listener.try_recv()).await {
            Ok(Ok(Some(message))) => {
                shared.evict(&Eviction::from_payload(message.payload()));
            }
            Ok(Ok(None)) => return Ok(()),
            Ok(Err(error)) => return Err(error.into()),
            // Quiet for a while: the connection must still answer, within the bound.
            Err(_) => {
                step(bound, sqlx::query("SELECT 1").execute(&mut listener)).await?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_unknown_ones_clear_everything() {
        for e in [
            Eviction::Token("ab12".into()),
            Eviction::Session("ses:1".into()),
            Eviction::User("u1".into()),
            Eviction::All,
        ] {
            assert_eq!(Eviction::from_payload(&e.to_payload()), e);
        }
        assert_eq!(Eviction::from_payload("garbage"), Eviction::All);
        assert_eq!(
            Eviction::User("x".repeat(MAX_PAYLOAD)).to_payload(),
            "*",
            "too long for NOTIFY: evict everything instead"
        );
    }
}
