//! The deadline on every database call, on our side of the wire.
//!
//! Postgres' `statement_timeout` runs inside Postgres, so it cannot fire while Postgres is
//! frozen (a hung primary, a paused VM, a partition that black-holes packets): a query
//! already sent would then never return. Every [`Store`](super::Store) call therefore runs
//! through [`bounded!`]: it takes its own connection from the pool, and if the call (the
//! wait for the connection included) is not done within the bound, it is abandoned, the
//! connection is detached from the pool and dropped (its socket closed, never handed to
//! the next request nor pinged on its way back), and the caller gets
//! [`FutureAuthError::DatabaseTimeout`](crate::FutureAuthError::DatabaseTimeout), a `503
//! unavailable`. A transaction cut off this way is rolled back by the server once it sees
//! the socket closed; one whose `COMMIT` was already sent may still commit.

use std::future::Future;
use std::time::Duration;

use crate::error::{FutureAuthError, Result};

/// Runs `$body` with `$conn` bound to `&mut` a connection of `$pool` (a `&sqlx::Pool`),
/// bounded by `$bound` (`Option<Duration>`, `None`: unbounded). Evaluates to the body's
/// `Result`; `?` inside the body converts into [`FutureAuthError`].
macro_rules! bounded {
    ($pool:expr, $bound:expr, $conn:ident => $body:expr) => {{
        let pool = $pool;
        let bound: Option<std::time::Duration> = $bound;
        let mut held = None;
        let run = async {
            let $conn = &mut **held.insert(pool.acquire().await?);
            Ok::<_, $crate::error::FutureAuthError>($body)
        };
        let done = $crate::store::deadline::within(bound, run).await;
        $crate::store::deadline::settle(done, held, bound)
    }};
}
pub(crate) use bounded;

/// `fut`'s output, or `None` once `bound` has passed (the future is dropped then).
pub(crate) async fn within<F: Future>(bound: Option<Duration>, fut: F) -> Option<F::Output> {
    match bound {
        Some(bound) => tokio::time::timeout(bound, fut).await.ok(),
        None => Some(fut.await),
    }
}

/// The result of a [`bounded!`] call. Past the deadline the connection it held, if any, is
/// detached and dropped: a statement may still be running on it, so it must not serve
/// anybody else, and it must not go back through the pool's release ping, which would hang
/// on the same frozen server while holding a pool slot.
pub(crate) fn settle<T, DB: sqlx::Database>(
    done: Option<Result<T>>,
    held: Option<sqlx::pool::PoolConnection<DB>>,
    bound: Option<Duration>,
) -> Result<T> {
    match done {
        Some(result) => result,
        None => {
            if let Some(conn) = held {
                drop(conn.detach());
            }
            Err(FutureAuthError::DatabaseTimeout(bound.unwrap_or_default()))
        }
    }
}
