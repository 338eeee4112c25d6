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

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::error::StoreError;

/// The most calls one group writes.
const MAX_GROUP: usize = 64;

/// Calls that may wait for a group before callers wait to queue.
const QUEUE: usize = 4 * MAX_GROUP;

/// One call waiting for its group: what to write and where to answer.
struct Pending<J, O> {
    job: J,
    reply: oneshot::Sender<O>,
}

/// What writes one group: every call of the group answered, in order, one answer each.
pub(super) type Writer<J, O> =
    Box<dyn Fn(Vec<J>) -> Pin<Box<dyn Future<Output = Vec<O>> + Send>> + Send + Sync>;

/// The queue of one kind of grouped write, and the task that drains it (started by the first
/// call, inside the runtime).
pub(super) struct Group<J, O> {
    queue: OnceLock<mpsc::Sender<Pending<J, O>>>,
}

impl<J, O> std::fmt::Debug for Group<J, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("started", &self.queue.get().is_some())
            .finish()
    }
}

impl<J, O> Default for Group<J, O> {
    fn default() -> Self {
        Group {
            queue: OnceLock::new(),
        }
    }
}

impl<J: Send + 'static, O: Send + 'static> Group<J, O> {
    /// Writes `job` in the next group and returns its answer; `writer` builds what writes a
    /// group, on the first call only. Waits at most `bound` (then [`StoreError::Timeout`]),
    /// counted from now: the wait for the group before it included.
    pub(super) async fn call(
        &self,
        job: J,
        bound: Option<Duration>,
        writer: impl FnOnce() -> Writer<J, O>,
    ) -> Result<O, StoreError> {
        let queue = self.queue.get_or_init(|| start(writer()));
        let (reply, answer) = oneshot::channel();
        let queued = async {
            queue
                .send(Pending { job, reply })
                .await
                .map_err(|_| gone())?;
            answer.await.map_err(|_| gone())
        };
        super::deadline::within(bound, queued)
            .await
            .unwrap_or(Err(StoreError::Timeout(bound.unwrap_or_default())))
    }
}

/// The writer's task is gone (its runtime shut down).
fn gone() -> StoreError {
    StoreError::Database(sqlx::Error::PoolClosed)
}

/// Starts the task that writes group after group, and returns its queue. The task ends
/// when every handle to the queue is dropped (the store with all its clones).
fn start<J: Send + 'static, O: Send + 'static>(
    writer: Writer<J, O>,
) -> mpsc::Sender<Pending<J, O>> {
    let (queue, mut calls) = mpsc::channel::<Pending<J, O>>(QUEUE);
    tokio::spawn(async move {
        let mut taken = Vec::with_capacity(MAX_GROUP);
        while calls.recv_many(&mut taken, MAX_GROUP).await > 0 {
            // A caller that gave up is not written for.
            let (jobs, replies): (Vec<J>, Vec<oneshot::Sender<O>>) = taken
                .drain(..)
                .filter(|p| !p.reply.is_closed())
                .map(|p| (p.job, p.reply))
                .unzip();
            if jobs.is_empty() {
                continue;
            }
            let answers = writer(jobs).await;
            for (reply, answer) in replies.into_iter().zip(answers) {
                // The caller may have given up meanwhile; what was written stays written.
                let _ = reply.send(answer);
            }
        }
    });
    queue
}
