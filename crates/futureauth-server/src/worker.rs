//! Delivery workers: claim due outbox rows, hand them to the provider, record the outcome.
//!
//! * A claim takes a lease (`locked_until`) and counts an attempt. If the process dies while
//!   sending, the lease expires and another worker takes the row again; the provider
//!   idempotency key is the message id, so providers that honour it deliver once.
//! * Completions are fenced by the claimed attempt number: a worker whose lease expired
//!   (another worker re-claimed the row, so `attempts` moved on) cannot overwrite the row;
//!   its stale outcome is ignored and logged.
//! * Retryable failures are retried with exponential backoff plus jitter until
//!   `max_attempts`, then the message is `failed` with the provider's reason; permanent
//!   failures fail at once.
//! * After `sent` or `failed`, the payload (which holds the code) is erased and the
//!   destination masked.
//! * Workers sleep until woken by an insert ([`Notify`]) or the poll interval elapses.
//! * While the database is down, workers back off (doubling up to [`MAX_STORE_BACKOFF`],
//!   one log line per outage) and resume by themselves when it answers again. An outcome
//!   that cannot be recorded (the provider accepted the message, then the database went
//!   away) is kept and written as soon as the database is back, so the lease does not
//!   expire into a second send.
//! * A message older than the maximum queue age is marked `failed` (`expired_in_queue`)
//!   instead of being sent.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::cleanup::expired_reason;
use crate::clock::{millis, UnixMillis};
use crate::config::Config;
use crate::error::StoreError;
use crate::metrics;
use crate::provider::webhook::WebhookTarget;
use crate::provider::{Delivery, Outgoing, ProviderError};
use crate::service::validate;
use crate::store::{Message, Outcome, Store};

/// Worker tuning.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Attempts before giving up on retryable errors.
    pub max_attempts: u32,
    /// Base delay of the backoff (doubles each attempt).
    pub retry_base: Duration,
    /// Idle poll interval.
    pub poll_interval: Duration,
    /// Lease length of a claimed message.
    pub lease: Duration,
    /// Age after which rate-limit counters are deleted (by [`crate::cleanup`]).
    pub counter_retention: Duration,
    /// Age after which a queued message is failed instead of sent.
    pub max_queue_age: Duration,
}

/// Most messages one worker claims at once (one statement) and delivers side by side: a
/// claim per message would cost a statement each and leave deliveries one at a time per
/// worker, far behind what the API accepts.
pub const CLAIM_BATCH: i64 = 8;

/// Longest pause between two attempts to reach a database that is down: short, so that
/// delivery resumes within seconds of the database coming back.
pub const MAX_STORE_BACKOFF: Duration = Duration::from_secs(5);

/// How long a worker keeps trying to record an outcome before it gives up (a database
/// that stays down, or an error that is not an outage). Meanwhile the worker takes no new
/// messages, which is what it should do while the database is down anyway.
pub const MAX_RECORD_WAIT: Duration = Duration::from_secs(600);

/// Pause after `failures` consecutive database errors: the poll interval doubled per
/// failure, capped at [`MAX_STORE_BACKOFF`].
pub fn store_backoff(poll_interval: Duration, failures: u32) -> Duration {
    poll_interval
        .saturating_mul(1u32 << failures.min(16))
        .min(MAX_STORE_BACKOFF)
}

impl WorkerConfig {
    /// From the configuration.
    pub fn from_config(c: &Config) -> WorkerConfig {
        WorkerConfig {
            max_attempts: c.delivery.max_attempts.get(),
            retry_base: c.delivery.retry_base(),
            poll_interval: c.delivery.poll_interval().max(Duration::from_millis(1)),
            lease: c.delivery.lease(),
            counter_retention: c
                .limits
                .limit_destination_window()
                .max(Duration::from_secs(3600))
                * 2,
            max_queue_age: c.delivery.max_queue_age(),
        }
    }
}

/// One delivery worker.
#[derive(Debug, Clone)]
pub struct Worker {
    store: Store,
    delivery: Delivery,
    config: WorkerConfig,
    wake: Arc<Notify>,
}

/// Backoff before attempt `attempt + 1`: `base * 2^(attempt-1)` plus up to 50 % jitter,
/// capped at one hour.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
        .min(Duration::from_secs(3600));
    let jitter_ms =
        rand::thread_rng().gen_range(0..=(exp.as_millis() / 2).min(u128::from(u32::MAX)) as u64);
    exp + Duration::from_millis(jitter_ms)
}

impl Worker {
    /// A worker over `store` sending through `delivery`, woken by `wake`.
    pub fn new(
        store: Store,
        delivery: Delivery,
        config: WorkerConfig,
        wake: Arc<Notify>,
    ) -> Worker {
        Worker {
            store,
            delivery,
            config,
            wake,
        }
    }

    /// Runs until `shutdown` turns `true` (or the task is aborted). A message being sent when
    /// shutdown is requested is finished first. (Old rows are deleted by
    /// [`crate::cleanup::run`], not by the workers.)
    pub async fn run(self, index: usize, mut shutdown: watch::Receiver<bool>) {
        let mut failures = 0u32;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let processed = match self.run_once().await {
                Ok(processed) => {
                    if failures > 0 {
                        tracing::info!(
                            worker = index,
                            "worker: the database answers again; delivering"
                        );
                        failures = 0;
                    }
                    processed
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    if failures == 1 {
                        tracing::error!(worker = index, error = %e, "worker: database error; backing off until it answers");
                    }
                    false
                }
            };
            if processed {
                continue;
            }
            let pause = match failures {
                0 => self.config.poll_interval,
                n => store_backoff(self.config.poll_interval, n),
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
    }

    /// Claims up to [`CLAIM_BATCH`] due messages in one statement and delivers them at
    /// once, each recorded on its own. Returns whether any was processed.
    pub async fn run_once(&self) -> Result<bool, StoreError> {
        let now = UnixMillis::now();
        let claimed = self
            .store
            .claim_due(now, now + self.config.lease, CLAIM_BATCH)
            .await?;
        if claimed.is_empty() {
            return Ok(false);
        }
        if claimed.len() >= CLAIM_BATCH as usize {
            // There may be more: let an idle peer look too.
            self.wake.notify_one();
        }
        // Dropped with this future (an aborted worker), the set aborts its deliveries too:
        // their leases expire and another worker takes them, as after a crash.
        let mut batch = JoinSet::new();
        for msg in claimed {
            let worker = self.clone();
            let span = tracing::info_span!("deliver", id = %msg.id, channel = %msg.channel, attempt = msg.attempts);
            batch.spawn(async move { worker.process(msg).instrument(span).await });
        }
        while batch.join_next().await.is_some() {}
        Ok(true)
    }

    /// Writes an outcome, retrying (with backoff) while the database is unreachable, for up
    /// to [`MAX_RECORD_WAIT`]: once a provider accepted a message, forgetting that would send
    /// it again when the lease expires. Returns whether the (fenced) write applied.
    async fn record<F, Fut>(&self, id: &str, outcome: &str, mut write: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<bool, StoreError>>,
    {
        let mut failures = 0u32;
        let started = tokio::time::Instant::now();
        loop {
            match write().await {
                Ok(applied) => {
                    if failures > 0 {
                        tracing::info!(
                            id,
                            outcome,
                            "outcome recorded after the database came back"
                        );
                    }
                    return applied;
                }
                Err(e) if started.elapsed() >= MAX_RECORD_WAIT => {
                    tracing::error!(id, outcome, error = %e, "giving up recording the outcome; the message will be retried when its lease expires");
                    return false;
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    if failures == 1 {
                        tracing::warn!(id, outcome, error = %e, "cannot record the outcome: the database is unreachable; retrying until it answers");
                    }
                    tokio::time::sleep(store_backoff(self.config.poll_interval, failures)).await;
                }
            }
        }
    }

    async fn fail(&self, msg: &Message, masked: &str, reason: &str) -> bool {
        let outcome = Outcome::Failed {
            masked_destination: masked,
            error: reason,
        };
        self.complete(msg, "failed", outcome).await
    }

    /// Records `outcome` for this claim of `msg` (the store ignores it if the claim is
    /// stale), waiting out an unreachable database; whether it was applied.
    async fn complete(&self, msg: &Message, label: &str, outcome: Outcome<'_>) -> bool {
        self.record(&msg.id, label, || {
            self.store
                .complete(&msg.id, msg.attempts, outcome, UnixMillis::now())
        })
        .await
    }

    async fn process(&self, msg: Message) {
        let masked = validate::mask_destination(&msg.destination);
        // The attempt number of this claim fences every completion below: if the lease
        // expired and another worker re-claimed the row, `attempts` moved on and the store
        // ignores this (stale) outcome.
        let claim = msg.attempts;
        let Some(outgoing) = self.prepare(&msg, &masked).await else {
            return;
        };
        let attempts = u32::try_from(msg.attempts).unwrap_or(u32::MAX);
        let provider = match outgoing {
            Outgoing::Email(_) => self.delivery.provider_names().0,
            Outgoing::Sms(_) => self.delivery.provider_names().1,
            Outgoing::Webhook(_) => "webhook",
        };
        let started = tokio::time::Instant::now();
        let result = self
            .delivery
            .send(&msg.id, &outgoing)
            .instrument(tracing::info_span!(
                "provider_call",
                id = %msg.id,
                provider,
                attempt = attempts
            ))
            .await;
        let kind = match &result {
            Ok(_) => "ok",
            Err(ProviderError::Retryable(_)) => "retryable",
            Err(ProviderError::Permanent(_)) => "permanent",
        };
        metrics::provider_call(provider, msg.channel, started.elapsed(), kind);
        let (outcome, applied) = self.settle(&msg, &masked, attempts, result).await;
        finished(&msg, claim, applied, outcome);
    }

    /// What to send for a claimed row, or `None` when there is nothing to send now: the
    /// row expired in the queue or its payload is unreadable (both failed here), or the
    /// project's webhook cannot be read (retried on a later claim).
    async fn prepare(&self, msg: &Message, masked: &str) -> Option<Outgoing> {
        let claim = msg.attempts;
        if UnixMillis::now().millis_since(msg.created_at) > millis(self.config.max_queue_age) {
            let reason = expired_reason(self.config.max_queue_age);
            tracing::warn!(id = %msg.id, to = %masked, "message expired in the queue; not sent");
            let applied = self.fail(msg, masked, &reason).await;
            finished(msg, claim, applied, "failed");
            return None;
        }
        let outgoing: Outgoing = match msg.payload.as_deref().map(serde_json::from_str) {
            Some(Ok(o)) => o,
            Some(Err(e)) => {
                tracing::error!(id = %msg.id, error = %e, "corrupt outbox payload");
                let applied = self.fail(msg, masked, "corrupt stored payload").await;
                finished(msg, claim, applied, "failed");
                return None;
            }
            None => {
                let applied = self.fail(msg, masked, "payload missing").await;
                finished(msg, claim, applied, "failed");
                return None;
            }
        };
        // A project event goes to the project's webhook as it is configured now, signed
        // with its current secret (a rotation applies to queued events too).
        match outgoing {
            Outgoing::Webhook(mut hook) => {
                match self.store.project_webhook(&msg.project_id).await {
                    Ok(target) => {
                        hook.target = target.map(|t| WebhookTarget {
                            url: t.url,
                            secret: t.secret,
                        });
                        Some(Outgoing::Webhook(hook))
                    }
                    Err(e) => {
                        tracing::warn!(id = %msg.id, error = %e, "cannot read the project's webhook; will retry");
                        None
                    }
                }
            }
            other => Some(other),
        }
    }

    /// Records what the provider answered: sent, failed for good, or retried with backoff
    /// (failed once the attempts are spent). Returns the outcome and whether the store
    /// applied it (not if this claim is stale).
    async fn settle(
        &self,
        msg: &Message,
        masked: &str,
        attempts: u32,
        result: Result<Option<String>, ProviderError>,
    ) -> (&'static str, bool) {
        match result {
            Ok(provider_id) => {
                let sent_at = UnixMillis::now();
                let outcome = Outcome::Sent {
                    provider_id: provider_id.as_deref(),
                    masked_destination: masked,
                    at: sent_at,
                };
                let applied = self.complete(msg, "sent", outcome).await;
                if applied {
                    tracing::info!(id = %msg.id, channel = %msg.channel, to = %masked, attempts, "message sent");
                }
                ("sent", applied)
            }
            Err(ProviderError::Permanent(reason)) => {
                tracing::warn!(id = %msg.id, %reason, "message failed permanently");
                ("failed", self.fail(msg, masked, &reason).await)
            }
            Err(ProviderError::Retryable(reason)) if attempts >= self.config.max_attempts => {
                tracing::warn!(id = %msg.id, %reason, attempts, "message failed: attempts exhausted");
                let reason = format!("gave up after {attempts} attempts: {reason}");
                ("failed", self.fail(msg, masked, &reason).await)
            }
            Err(ProviderError::Retryable(reason)) => {
                let delay = backoff(self.config.retry_base, attempts);
                tracing::info!(id = %msg.id, %reason, attempts, delay_ms = delay.as_millis() as u64, "delivery failed; will retry");
                let next = UnixMillis::now() + delay;
                let outcome = Outcome::Retry {
                    next_attempt_at: next,
                    error: &reason,
                };
                let applied = self.complete(msg, "retry", outcome).await;
                ("retry", applied)
            }
        }
    }
}

/// Counts an applied outcome, or logs that the store ignored a stale one.
fn finished(msg: &Message, claim: i64, applied: bool, outcome: &'static str) {
    if applied {
        metrics::outcome(msg.channel, outcome);
    }
    stale_if(!applied, &msg.id, claim, outcome);
}

/// Logs a completion the store ignored because the claim was stale: this worker's lease
/// expired and another worker re-claimed the message (or it is already finished).
fn stale_if(stale: bool, id: &str, attempt: i64, outcome: &str) {
    if stale {
        tracing::warn!(
            id,
            attempt,
            outcome,
            "stale completion ignored: the lease expired and the message was re-claimed or finished by another worker"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_bounds() {
        let base = Duration::from_millis(100);
        for attempt in 1..=5u32 {
            let exp = 100u64 << (attempt - 1);
            for _ in 0..20 {
                let d = backoff(base, attempt).as_millis() as u64;
                assert!(d >= exp && d <= exp + exp / 2, "attempt {attempt}: {d}");
            }
        }
        assert!(backoff(Duration::from_secs(10), 30) <= Duration::from_secs(5400));
    }

    #[test]
    fn store_backoff_doubles_up_to_the_cap() {
        let poll = Duration::from_millis(100);
        assert_eq!(store_backoff(poll, 1), Duration::from_millis(200));
        assert_eq!(store_backoff(poll, 3), Duration::from_millis(800));
        assert_eq!(store_backoff(poll, 10), MAX_STORE_BACKOFF);
        assert_eq!(store_backoff(poll, u32::MAX), MAX_STORE_BACKOFF);
    }
}
