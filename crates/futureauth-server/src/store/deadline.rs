//! The deadline on every database call, on our side of the wire.
//!
//! Postgres' `statement_timeout` runs inside Postgres and cannot fire while Postgres is
//! frozen (a hung primary, a paused VM, a partition that black-holes packets): a statement
//! already sent would then never return. Every [`Store`](super::Store) call runs through
//! [`bounded!`]: it takes its own connection and, if the call (the wait for the connection
//! included) is not done within the store's bound (`--db-call-timeout`), abandons it,
//! detaches the connection from the pool and drops it (socket closed; never handed to the
//! next caller nor pinged on its way back, which would hang on the same frozen server while
//! holding a pool slot) and fails with [`StoreError::Timeout`]: `503 storage_unavailable`
//! with `Retry-After` on every API, a back-off in the workers.
//!
//! A transaction cut off before its `COMMIT` was sent is rolled back by the server once it
//! sees the socket closed; a statement or `COMMIT` already sent may still apply after the
//! resume. The outbox is safe either way: a claim that applies unseen only delays the
//! message until its lease expires, a completion is fenced by its attempt number and
//! retried by the worker, and a send the client retries with its `Idempotency-Key` finds
//! the message it may have created.

use std::future::Future;
use std::time::Duration;

use crate::error::StoreError;

/// Runs `$body` with `$conn` bound to `&mut` a connection of `$pool` (a `&sqlx::Pool`),
/// bounded by `$bound` (`Option<Duration>`). Evaluates to `Result<_, StoreError>`; `?` in
/// the body converts into [`StoreError`].
macro_rules! bounded {
    ($pool:expr, $bound:expr, $conn:ident => $body:expr) => {{
        let pool = $pool;
        let bound: Option<std::time::Duration> = $bound;
        let mut held = None;
        let run = async {
            let $conn = &mut **held.insert(pool.acquire().await?);
            Ok::<_, $crate::error::StoreError>($body)
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

/// The result of a [`bounded!`] call; past the deadline, the connection it held (if any) is
/// detached from the pool and dropped.
pub(crate) fn settle<T, DB: sqlx::Database>(
    done: Option<Result<T, StoreError>>,
    held: Option<sqlx::pool::PoolConnection<DB>>,
    bound: Option<Duration>,
) -> Result<T, StoreError> {
    match done {
        Some(result) => result,
        None => {
            if let Some(conn) = held {
                drop(conn.detach());
            }
            Err(StoreError::Timeout(bound.unwrap_or_default()))
        }
    }
}
