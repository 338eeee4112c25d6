//! Outbox store semantics on SQLite and Postgres: completions fenced by the claimed attempt,
//! and retention (old finished messages and rate counters deleted, queued ones kept).

mod common;

use std::time::Duration;

use common::*;
use futureauth_server::cleanup::{cleanup, CleanupReport, Retention};
use futureauth_server::clock::UnixMillis;
use futureauth_server::store::{
    EnqueueOutcome, Message, MessageChannel, NewMessage, Outcome, RateBucket, Store,
};

const DAY: Duration = Duration::from_secs(86_400);

fn now_ms() -> UnixMillis {
    UnixMillis::now()
}

/// Enqueues a message at time `at`, counting the given buckets.
async fn enqueue_at(
    store: &Store,
    project_id: &str,
    id: &str,
    at: UnixMillis,
    buckets: &[RateBucket],
) -> Message {
    let msg = NewMessage {
        id: id.to_owned(),
        project_id: project_id.to_owned(),
        channel: MessageChannel::Email,
        destination: format!("{id}@example.com"),
        payload: r#"{"kind":"test"}"#.into(),
        idempotency_key: None,
        request_hash: Some(format!("hash-{id}")),
        destination_hash: None,
        test: false,
    };
    match store.enqueue(&msg, buckets, at).await.expect("enqueue") {
        EnqueueOutcome::Created(m) => m,
        other => panic!("expected Created, got {other:?}"),
    }
}

/// Claims exactly one due message at `now` with a lease of `lease_ms`.
async fn claim_one(store: &Store, now: UnixMillis, lease_ms: u64) -> Message {
    let mut claimed = store
        .claim_due(now, now + Duration::from_millis(lease_ms), 1)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1, "exactly one message is due: {claimed:?}");
    claimed.remove(0)
}

async fn row(store: &Store, id: &str) -> Option<Message> {
    store.get_message_any(id).await.expect("get message")
}

async fn stale_completions_are_ignored(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let (project_id, _) = acme(&store).await;
    let id = unique("msg_fence");
    enqueue_at(&store, &project_id, &id, now_ms(), &[]).await;

    // Worker A claims with a short lease (attempt 1) …
    let t = now_ms();
    let a = claim_one(&store, t, 100).await;
    assert_eq!(a.attempts, 1);
    assert!(
        store
            .claim_due(
                t + Duration::from_millis(50),
                t + Duration::from_secs(60),
                1
            )
            .await
            .unwrap()
            .is_empty(),
        "a leased message is not claimed twice"
    );
    // … the lease expires and worker B re-claims it (attempt 2).
    tokio::time::sleep(Duration::from_millis(150)).await;
    let b = claim_one(&store, now_ms(), 60_000).await;
    assert_eq!(b.id, id);
    assert_eq!(b.attempts, 2);

    // A finishes late: none of its completions may change the row.
    assert!(!store
        .complete(
            &id,
            a.attempts,
            Outcome::Sent {
                provider_id: None,
                masked_destination: "a***@example.com",
                at: now_ms()
            },
            now_ms()
        )
        .await
        .unwrap());
    assert!(!store
        .complete(
            &id,
            a.attempts,
            Outcome::Failed {
                masked_destination: "a***@example.com",
                error: "stale failure"
            },
            now_ms()
        )
        .await
        .unwrap());
    assert!(!store
        .complete(
            &id,
            a.attempts,
            Outcome::Retry {
                next_attempt_at: now_ms() + DAY,
                error: "stale retry"
            },
            now_ms()
        )
        .await
        .unwrap());
    let r = row(&store, &id).await.unwrap();
    assert_eq!(r.status.as_str(), "queued");
    assert_eq!(r.attempts, 2);
    assert_eq!(r.locked_until, b.locked_until, "B still holds the lease");
    assert_eq!(r.next_attempt_at, b.next_attempt_at);
    assert_eq!(r.payload, b.payload, "the payload was not erased");
    assert_eq!(
        r.destination, b.destination,
        "the destination was not masked"
    );
    assert!(r.last_error.is_none() && r.sent_at.is_none(), "{r:?}");

    // B's retry applies (it holds the current claim) …
    let due = now_ms();
    assert!(store
        .complete(
            &id,
            b.attempts,
            Outcome::Retry {
                next_attempt_at: due,
                error: "provider 500"
            },
            now_ms()
        )
        .await
        .unwrap());
    let r = row(&store, &id).await.unwrap();
    assert_eq!((r.next_attempt_at, r.locked_until), (due, None));
    assert_eq!(r.last_error.as_deref(), Some("provider 500"));
    // … and B's claim is now stale too once C has claimed attempt 3, whose send applies.
    let c = claim_one(&store, now_ms(), 60_000).await;
    assert_eq!(c.attempts, 3);
    assert!(!store
        .complete(
            &id,
            b.attempts,
            Outcome::Sent {
                provider_id: None,
                masked_destination: "b***@example.com",
                at: now_ms()
            },
            now_ms()
        )
        .await
        .unwrap());
    let sent_at = now_ms();
    assert!(store
        .complete(
            &id,
            c.attempts,
            Outcome::Sent {
                provider_id: None,
                masked_destination: "c***@example.com",
                at: sent_at
            },
            now_ms()
        )
        .await
        .unwrap());
    let r = row(&store, &id).await.unwrap();
    assert_eq!(r.status.as_str(), "sent");
    assert_eq!(r.sent_at, Some(sent_at));
    assert_eq!(r.destination, "c***@example.com");
    assert!(r.payload.is_none() && r.locked_until.is_none());
    // A finished message stays finished, even for the claim that finished it.
    assert!(!store
        .complete(
            &id,
            c.attempts,
            Outcome::Failed {
                masked_destination: "c***@example.com",
                error: "late"
            },
            now_ms()
        )
        .await
        .unwrap());
    assert_eq!(row(&store, &id).await.unwrap().status.as_str(), "sent");
}

fn bucket(key: &str) -> RateBucket {
    RateBucket {
        key: key.to_owned(),
        window_ms: 3_600_000,
        limit: 1_000,
        scope: "test",
        sharded: false,
    }
}

/// A project-wide counter is spread over rows on Postgres (one per concurrent send, so they
/// don't queue on one lock); its limit still counts the sum of all of them, not one row's.
async fn a_sharded_limit_counts_every_shard(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let (project_id, _) = acme(&store).await;
    let limit = 3 * futureauth_server::store::COUNTER_SHARDS;
    let project_wide = RateBucket {
        key: format!("project:{project_id}"),
        window_ms: 3_600_000,
        limit,
        scope: "project",
        sharded: true,
    };
    let now = now_ms();
    for i in 0..limit {
        let id = unique(&format!("msg_shard{i}"));
        enqueue_at(
            &store,
            &project_id,
            &id,
            now,
            std::slice::from_ref(&project_wide),
        )
        .await;
    }
    let over = NewMessage {
        id: unique("msg_over"),
        project_id: project_id.clone(),
        channel: MessageChannel::Email,
        destination: "over@example.com".into(),
        payload: r#"{"kind":"test"}"#.into(),
        idempotency_key: None,
        request_hash: None,
        destination_hash: None,
        test: false,
    };
    match store
        .enqueue(&over, &[project_wide], now)
        .await
        .expect("enqueue")
    {
        EnqueueOutcome::OverLimit(hits) => assert_eq!(hits[0].scope, "project"),
        other => panic!(
            "send {} of a limit of {limit} was not refused: {other:?}",
            limit + 1
        ),
    }
}

async fn cleanup_deletes_old_finished_messages_and_counters(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let (project_id, _) = acme(&store).await;
    let now = now_ms();
    let old = now - 40 * DAY;
    let recent = now - DAY;

    // Old and finished: deleted.
    let old_sent = enqueue_at(&store, &project_id, "msg_old_sent", old, &[bucket("old")]).await;
    let c = claim_one(&store, old, 60_000).await;
    assert!(store
        .complete(
            &c.id,
            c.attempts,
            Outcome::Sent {
                provider_id: None,
                masked_destination: "x***@example.com",
                at: old + Duration::from_millis(10)
            },
            now_ms()
        )
        .await
        .unwrap());
    let old_failed = enqueue_at(&store, &project_id, "msg_old_failed", old, &[]).await;
    let c = claim_one(&store, old, 60_000).await;
    assert!(store
        .complete(
            &c.id,
            c.attempts,
            Outcome::Failed {
                masked_destination: "x***@example.com",
                error: "bounced"
            },
            now_ms()
        )
        .await
        .unwrap());
    // Recent and finished: kept.
    let recent_sent = enqueue_at(&store, &project_id, "msg_recent_sent", recent, &[]).await;
    let c = claim_one(&store, recent, 60_000).await;
    assert_eq!(c.id, recent_sent.id);
    assert!(store
        .complete(
            &c.id,
            c.attempts,
            Outcome::Sent {
                provider_id: None,
                masked_destination: "x***@example.com",
                at: recent + Duration::from_millis(10)
            },
            now_ms()
        )
        .await
        .unwrap());
    // Old but still queued (one in flight, one waiting): kept.
    let old_leased = enqueue_at(&store, &project_id, "msg_old_leased", old, &[]).await;
    let c = claim_one(&store, old, 60_000).await;
    assert_eq!(c.id, old_leased.id);
    let old_queued = enqueue_at(&store, &project_id, "msg_old_queued", old, &[]).await;
    // A current counter: kept.
    let fresh = enqueue_at(&store, &project_id, "msg_fresh", now, &[bucket("now")]).await;
    assert_eq!(store.count_messages(&project_id).await.unwrap(), 6);

    let retention = Retention {
        messages: Duration::from_secs(30 * 86_400),
        rate_counters: Duration::from_secs(2 * 3600),
    };
    let report = cleanup(&store, now, retention).await.unwrap();
    assert_eq!(
        report,
        CleanupReport {
            messages: 2,
            rate_counters: 1
        }
    );
    assert!(row(&store, &old_sent.id).await.is_none());
    assert!(row(&store, &old_failed.id).await.is_none());
    for kept in [&old_leased, &old_queued, &recent_sent, &fresh] {
        assert!(row(&store, &kept.id).await.is_some(), "{} kept", kept.id);
    }
    assert_eq!(
        row(&store, &old_queued.id).await.unwrap().status.as_str(),
        "queued"
    );
    assert_eq!(store.count_messages(&project_id).await.unwrap(), 4);
    // Nothing left to delete.
    assert_eq!(
        cleanup(&store, now, retention).await.unwrap(),
        CleanupReport::default()
    );

    // Deletion works in batches: 5 old finished messages, batches of 2. (Claimed at a time
    // when the old queued messages above are not due yet.)
    let older = old - Duration::from_secs(1);
    for i in 0..5 {
        enqueue_at(&store, &project_id, &format!("msg_batch_{i}"), older, &[]).await;
        let c = claim_one(&store, older, 60_000).await;
        assert!(store
            .complete(
                &c.id,
                c.attempts,
                Outcome::Failed {
                    masked_destination: "x***@example.com",
                    error: "bounced"
                },
                now_ms()
            )
            .await
            .unwrap());
    }
    assert_eq!(
        store
            .delete_finished_messages(now - 30 * DAY, 2)
            .await
            .unwrap(),
        5
    );
    assert_eq!(store.count_messages(&project_id).await.unwrap(), 4);
}

async fn the_server_cleans_up_at_start(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fakes = Fakes::accepting().await;
    let store = db.store().await;
    let (project_id, _) = acme(&store).await;
    let now = now_ms();
    let old = now - 10 * DAY;
    let finished = enqueue_at(&store, &project_id, "msg_start_old", old, &[]).await;
    let c = claim_one(&store, old, 60_000).await;
    assert!(store
        .complete(
            &c.id,
            c.attempts,
            Outcome::Sent {
                provider_id: None,
                masked_destination: "x***@example.com",
                at: old
            },
            now_ms()
        )
        .await
        .unwrap());
    let recent = now - 2 * DAY;
    let kept = enqueue_at(&store, &project_id, "msg_start_recent", recent, &[]).await;
    let c = claim_one(&store, recent, 60_000).await;
    assert!(store
        .complete(
            &c.id,
            c.attempts,
            Outcome::Sent {
                provider_id: None,
                masked_destination: "x***@example.com",
                at: recent
            },
            now_ms()
        )
        .await
        .unwrap());

    let mut cfg = config(&db, &fakes);
    cfg.delivery.retention_days = 7;
    let s = TestServer::start(&db, &cfg).await;
    eventually(10, "the start-up cleanup", || async {
        row(s.store(), &finished.id).await.is_none()
    })
    .await;
    assert!(row(s.store(), &kept.id).await.is_some());
}

backend_tests!(
    stale_completions_are_ignored,
    a_sharded_limit_counts_every_shard,
    cleanup_deletes_old_finished_messages_and_counters,
    the_server_cleans_up_at_start,
);
