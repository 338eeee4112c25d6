//! Cross-instance eviction on Postgres: `NOTIFY` after a revoke, one `LISTEN`ing task per
//! instance that reconnects after its connection drops.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::Notify;

use super::{Eviction, Shared};
use crate::error::Result;

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

/// Tells every listening instance (this one included) to evict.
pub(super) async fn notify(pool: &PgPool, eviction: &Eviction) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(eviction.to_payload())
        .execute(pool)
        .await?;
    Ok(())
}

/// Spawns the listener on the current Tokio runtime; it ends when `shutdown` is notified
/// or the pool is closed. Without a runtime nothing is spawned and the cache stays off.
pub(super) fn spawn(pool: PgPool, shared: Arc<Shared>, shutdown: Arc<Notify>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!("futureauth session cache: no Tokio runtime, the cache stays off");
        return;
    };
    runtime.spawn(async move {
        tokio::select! {
            () = listen_forever(&pool, &shared) => {}
            () = shutdown.notified() => {}
        }
        shared.set_live(false);
    });
}

async fn listen_forever(pool: &PgPool, shared: &Shared) {
    let mut backoff = Duration::from_millis(50);
    while !pool.is_closed() {
        match listen(pool, shared).await {
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

/// One connection's life: LISTEN, turn the cache on, evict on every message until the
/// connection drops (`Ok`) or fails (`Err`).
async fn listen(pool: &PgPool, shared: &Shared) -> Result<()> {
    let mut listener = PgListener::connect_with(pool).await?;
    // On a lost connection, return at once: the caller empties the cache, then reconnects.
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    // Anything revoked before this LISTEN was not heard: start empty.
    shared.set_live(true);
    while let Some(message) = listener.try_recv().await? {
        shared
            .evict(&Eviction::from_payload(message.payload()))
            .await;
    }
    Ok(())
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
