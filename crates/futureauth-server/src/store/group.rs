//! Group commit: the writes that arrive while the previous group is being written are
//! written together, in one statement and one commit.
//!
//! Each commit waits for the database to flush its log to disk, and a disk does a bounded
//! number of flushes a second (about 2,000 on the machines we measure on), so writing each
//! send and each delivery outcome in a commit of its own bounds the outbox to about half
//! that. One [`Group`] per kind of write runs one group at a time: an idle store writes a
//! lone call at once, as before; a busy one writes, in the next group, everything that
//! queued meanwhile. Nobody waits for a timer.
//!
//! A caller that gives up (its deadline passed, or its request was dropped) before its
//! group is taken is left out of it: nothing of it is written.
//!
//! While the database is unreachable, a group waits for a connection until the pool gives
//! up. The calls that queued meanwhile waited for that same connection: they get the
//! group's answer at once, instead of a wait of their own on top (two waits would double
//! the time an outage takes to answer). A call that queues after it tries again.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::error::StoreError;

/// The most calls one group writes.
const MAX_GROUP: usize = 64;

/// Calls that may wait for a group before callers wait to queue.
const QUEUE: usize = 4 * MAX_GROUP;

/// A call's answer.
type Answer<T> = Result<T, StoreError>;

/// One call waiting for its group: what to write, where to answer, and since when.
struct Pending<J, T> {
    job: J,
    reply: oneshot::Sender<Answer<T>>,
    queued: Instant,
}

/// What writes one group: every call of the group answered, in order, one answer each.
pub(super) type Writer<J, T> =
    Box<dyn Fn(Vec<J>) -> Pin<Box<dyn Future<Output = Vec<Answer<T>>> + Send>> + Send + Sync>;

/// The queue of one kind of grouped write, and the task that drains it (started by the first
/// call, inside the runtime).
pub(super) struct Group<J, T> {
    queue: OnceLock<mpsc::Sender<Pending<J, T>>>,
}

impl<J, T> std::fmt::Debug for Group<J, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("started", &self.queue.get().is_some())
            .finish()
    }
}

impl<J, T> Default for Group<J, T> {
    fn default() -> Self {
        Group {
            queue: OnceLock::new(),
        }
    }
}

impl<J: Send + 'static, T: Send + 'static> Group<J, T> {
    /// Writes `job` in the next group and returns its answer; `writer` builds what writes a
    /// group, on the first call only. Waits at most `bound` (then [`StoreError::Timeout`]),
    /// counted from now: the wait for the group before it included.
    pub(super) async fn call(
        &self,
        job: J,
        bound: Option<Duration>,
        writer: impl FnOnce() -> Writer<J, T>,
    ) -> Answer<T> {
        let queue = self.queue.get_or_init(|| start(writer()));
        let (reply, answer) = oneshot::channel();
        let queued = async {
            let pending = Pending {
                job,
                reply,
                queued: Instant::now(),
            };
            queue.send(pending).await.map_err(|_| gone())?;
            answer.await.map_err(|_| gone())?
        };
        super::deadline::within(bound, queued)
            .await
            .unwrap_or(Err(StoreError::Timeout(bound.unwrap_or_default())))
    }
}

/// Whether `e` says the database could not be reached (no connection to be had, or none that
/// answered), rather than that it refused this write.
fn unreachable(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Timeout(_)
            | StoreError::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)
            )
    )
}

/// The answers of the `calls` of a group that failed as a whole with `e`: each its own copy.
pub(super) fn all_failed<T>(calls: usize, e: &StoreError) -> Vec<Answer<T>> {
    (0..calls).map(|_| Err(copy_error(e))).collect()
}

/// An error for every call of a group that failed as a whole (`sqlx::Error` is not
/// `Clone`): the same kind, with the same words.
fn copy_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Timeout(d) => StoreError::Timeout(*d),
        StoreError::Corrupt(m) => StoreError::Corrupt(m.clone()),
        StoreError::Database(sqlx::Error::PoolTimedOut) => {
            StoreError::Database(sqlx::Error::PoolTimedOut)
        }
        StoreError::Database(sqlx::Error::PoolClosed) => {
            StoreError::Database(sqlx::Error::PoolClosed)
        }
        StoreError::Database(sqlx::Error::Io(io)) => StoreError::Database(sqlx::Error::Io(
            std::io::Error::new(io.kind(), io.to_string()),
        )),
        other => StoreError::Database(sqlx::Error::Protocol(other.to_string())),
    }
}

/// The writer's task is gone (its runtime shut down).
fn gone() -> StoreError {
    StoreError::Database(sqlx::Error::PoolClosed)
}

/// Starts the task that writes group after group, and returns its queue. The task ends
/// when every handle to the queue is dropped (the store with all its clones).
fn start<J: Send + 'static, T: Send + 'static>(
    writer: Writer<J, T>,
) -> mpsc::Sender<Pending<J, T>> {
    let (queue, mut calls) = mpsc::channel::<Pending<J, T>>(QUEUE);
    tokio::spawn(async move {
        let mut taken = Vec::with_capacity(MAX_GROUP);
        // When the last group found the database unreachable, and why.
        let mut outage: Option<(Instant, StoreError)> = None;
        while calls.recv_many(&mut taken, MAX_GROUP).await > 0 {
            let mut jobs = Vec::with_capacity(taken.len());
            let mut replies = Vec::with_capacity(taken.len());
            for p in taken.drain(..) {
                match &outage {
                    // A caller that gave up is not written for.
                    _ if p.reply.is_closed() => {}
                    // It queued while that group waited for the same connection.
                    Some((at, e)) if p.queued < *at => {
                        let _ = p.reply.send(Err(copy_error(e)));
                    }
                    _ => {
                        jobs.push(p.job);
                        replies.push(p.reply);
                    }
                }
            }
            if jobs.is_empty() {
                continue;
            }
            let answers = writer(jobs).await;
            outage = match answers.first() {
                Some(Err(e)) if unreachable(e) => Some((Instant::now(), copy_error(e))),
                _ => None,
            };
            for (reply, answer) in replies.into_iter().zip(answers) {
                // The caller may have given up meanwhile; what was written stays written.
                let _ = reply.send(answer);
            }
        }
    });
    queue
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A writer that takes `wait` per group and answers every call with `answer()`, counting
    /// the groups it wrote.
    fn slow(
        wait: Duration,
        groups: Arc<AtomicUsize>,
        answer: fn() -> Answer<u32>,
    ) -> Writer<u32, u32> {
        Box::new(move |jobs: Vec<u32>| {
            groups.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                tokio::time::sleep(wait).await;
                jobs.iter().map(|_| answer()).collect()
            })
        })
    }

    /// While the database is unreachable, the calls that queued behind a group that waited
    /// for a connection get its answer when it ends, not a wait of their own on top: an
    /// outage is answered within one wait for a connection. A call that queues afterwards
    /// tries again.
    #[tokio::test]
    async fn calls_queued_behind_an_unreachable_database_share_its_answer() {
        let group = Arc::new(Group::<u32, u32>::default());
        let groups = Arc::new(AtomicUsize::new(0));
        let wait = Duration::from_millis(400);
        let unreachable = || Err(StoreError::Database(sqlx::Error::PoolTimedOut));
        let writer = {
            let groups = groups.clone();
            move || slow(wait, groups, unreachable)
        };
        let started = Instant::now();
        let first = {
            let (group, writer) = (group.clone(), writer.clone());
            tokio::spawn(async move { group.call(0, None, writer).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let behind: Vec<_> = (1..=5)
            .map(|n| {
                let (group, writer) = (group.clone(), writer.clone());
                tokio::spawn(async move { group.call(n, None, writer).await })
            })
            .collect();
        assert!(first.await.unwrap().is_err());
        for call in behind {
            let answer = call.await.unwrap();
            assert!(
                matches!(answer, Err(StoreError::Database(sqlx::Error::PoolTimedOut))),
                "{answer:?}"
            );
        }
        let took = started.elapsed();
        assert!(took < wait + Duration::from_millis(250), "took {took:?}");
        assert_eq!(groups.load(Ordering::SeqCst), 1, "one wait for the outage");
        // Queued afterwards: written again (and still refused).
        assert!(group.call(6, None, writer).await.is_err());
        assert_eq!(groups.load(Ordering::SeqCst), 2);
    }

    /// A group refused for a reason of its own (not an outage) does not answer for the calls
    /// behind it: they are written in a group of their own.
    #[tokio::test]
    async fn a_refused_group_does_not_answer_for_the_next() {
        let group = Arc::new(Group::<u32, u32>::default());
        let groups = Arc::new(AtomicUsize::new(0));
        let refused = || Err(StoreError::Corrupt("refused".into()));
        let writer = {
            let groups = groups.clone();
            move || slow(Duration::from_millis(200), groups, refused)
        };
        let first = {
            let (group, writer) = (group.clone(), writer.clone());
            tokio::spawn(async move { group.call(0, None, writer).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let second = group.call(1, None, writer).await;
        assert!(first.await.unwrap().is_err() && second.is_err());
        assert_eq!(groups.load(Ordering::SeqCst), 2);
    }
}
