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

/// Every task's result, in order (they all run at once meanwhile).
async fn join_all<T>(
    tasks: impl IntoIterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<Result<T, tokio::task::JoinError>> {
    let mut out = Vec::new();
    for t in tasks.into_iter().collect::<Vec<_>>() {
        out.push(t.await);
    }
    out
}

fn new_message(project_id: &str, id: &str, destination: &str, key: Option<&str>) -> NewMessage {
    NewMessage {
        id: id.to_owned(),
        project_id: project_id.to_owned(),
        channel: MessageChannel::Email,
        destination: destination.to_owned(),
        payload: format!(r#"{{"kind":"test","id":"{id}"}}"#),
        idempotency_key: key.map(str::to_owned),
        request_hash: key.map(|k| format!("hash-{k}")),
        destination_hash: Some(format!("dh-{destination}")),
        test: false,
    }
}

/// Many sends at once (on Postgres, written in groups of one statement each): each is
/// counted as if it were alone. Of 120 sends, 40 to each of three addresses limited to 7
/// each, under a sharded project-wide limit of 18: exactly 18 are written, at most 7 per
/// address, every refused one names the limit that refused it, and what each written send
/// returned is the row stored.
async fn concurrent_sends_are_each_counted_as_alone(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let (project_id, _) = acme(&store).await;
    let now = now_ms();
    let project_wide = RateBucket {
        key: format!("project:{project_id}"),
        window_ms: 60_000,
        limit: 18,
        scope: "project",
        sharded: true,
    };
    let sends = (0..120).map(|i| {
        let (store, project_id, project_wide) =
            (store.clone(), project_id.clone(), project_wide.clone());
        tokio::spawn(async move {
            let to = format!("to{}@example.com", i % 3);
            let per_address = RateBucket {
                key: format!("dest:{project_id}:{to}"),
                window_ms: 60_000,
                limit: 7,
                scope: "destination",
                sharded: false,
            };
            let msg = new_message(&project_id, &unique(&format!("msg_c{i}")), &to, None);
            let outcome = store
                .enqueue(&msg, &[per_address, project_wide], now)
                .await
                .expect("enqueue");
            (to, outcome)
        })
    });
    let mut written = std::collections::HashMap::<String, u32>::new();
    for send in join_all(sends).await {
        let (to, outcome) = send.expect("send task");
        match outcome {
            EnqueueOutcome::Created(m) => {
                *written.entry(to).or_default() += 1;
                let stored = row(&store, &m.id).await.expect("the written row");
                assert_eq!(format!("{m:?}"), format!("{stored:?}"));
            }
            EnqueueOutcome::OverLimit(hits) => assert!(
                hits.iter()
                    .all(|h| ["project", "destination"].contains(&h.scope))
                    && !hits.is_empty(),
                "{hits:?}"
            ),
            EnqueueOutcome::DuplicateKey => panic!("no send had a key"),
        }
    }
    assert_eq!(written.values().sum::<u32>(), 18, "{written:?}");
    assert!(written.values().all(|&n| n <= 7), "{written:?}");
    assert_eq!(store.count_messages(&project_id).await.unwrap(), 18);
    // A refused send counts nowhere: each address's counter is what was written to it.
    for (to, n) in &written {
        let (count,): (i64,) = sqlx_count(&db, &format!("dest:{project_id}:{to}")).await;
        assert_eq!(count, i64::from(*n), "{to}");
    }
    assert_eq!(
        store.split_groups(),
        0,
        "no group had to be written send by send"
    );
}

/// The count stored in a counter (all of its shards).
async fn sqlx_count(db: &TestDb, key: &str) -> (i64,) {
    let sql = "SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM rate_counter
               WHERE bucket = $1 OR bucket LIKE $1 || '#%'";
    match db.backend {
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            sqlx::query_as(sql)
                .bind(key)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
            sqlx::query_as(sql)
                .bind(key)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    }
}

/// Two sends with one idempotency key at once: one is written, the other finds the key
/// taken; a refused duplicate counts nowhere.
async fn one_key_sent_twice_at_once_is_written_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let (project_id, _) = acme(&store).await;
    let now = now_ms();
    for round in 0..5 {
        let key = unique("key");
        let dest = bucket(&format!("dest:{project_id}:{key}"));
        let twice = (0..2).map(|i| {
            let msg = new_message(
                &project_id,
                &unique(&format!("msg_k{round}_{i}")),
                "k@example.com",
                Some(&key),
            );
            let (store, dest) = (store.clone(), dest.clone());
            tokio::spawn(async move { store.enqueue(&msg, &[dest], now).await.expect("enqueue") })
        });
        let outcomes: Vec<_> = join_all(twice)
            .await
            .into_iter()
            .map(|o| o.expect("task"))
            .collect();
        let created = outcomes
            .iter()
            .filter(|o| matches!(o, EnqueueOutcome::Created(_)))
            .count();
        let taken = outcomes
            .iter()
            .filter(|o| matches!(o, EnqueueOutcome::DuplicateKey))
            .count();
        assert_eq!((created, taken), (1, 1), "{outcomes:?}");
        assert_eq!(sqlx_count(&db, &dest.key).await, (1,));
    }
    assert_eq!(
        store.split_groups(),
        0,
        "a group found its own duplicate only by writing"
    );
}

/// Two instances on one database writing groups whose sends share counters in opposite
/// orders: each group locks its counters (in one sorted order) before it reads them, so the
/// two never count past a limit together (100 of 192 sends under a shared limit of 100),
/// and never wait on each other in a cycle (no group fails and has to be written send by
/// send).
async fn two_instances_count_together_without_deadlock(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (a, b) = (db.store().await, db.store().await);
    let (project_id, _) = acme(&a).await;
    let now = now_ms();
    let shared = RateBucket {
        limit: 100,
        ..bucket(&format!("shared:{project_id}"))
    };
    let mut tasks = Vec::new();
    for round in 0..6 {
        for i in 0..32usize {
            let (store, order) = if i % 2 == 0 {
                (a.clone(), i)
            } else {
                (b.clone(), 31 - i)
            };
            let (project_id, shared) = (project_id.clone(), shared.clone());
            tasks.push(tokio::spawn(async move {
                let to = format!("d{}@example.com", order % 4);
                let buckets = [
                    bucket(&format!("dest:{project_id}:{to}")),
                    bucket(&format!("other:{project_id}:{}", (order + round) % 3)),
                    shared,
                ];
                let msg = new_message(&project_id, &unique("msg_dl"), &to, None);
                store.enqueue(&msg, &buckets, now).await.expect("enqueue")
            }));
        }
    }
    let mut created = 0;
    for t in join_all(tasks).await {
        match t.expect("task") {
            EnqueueOutcome::Created(_) => created += 1,
            EnqueueOutcome::OverLimit(hits) => assert_eq!(hits.len(), 1, "{hits:?}"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(created, 100);
    assert_eq!(a.count_messages(&project_id).await.unwrap(), 100);
    assert_eq!(sqlx_count(&db, &shared.key).await, (100,));
    assert_eq!((a.split_groups(), b.split_groups()), (0, 0));
}

/// A send whose idempotency key another instance is writing at that moment (inserted, not
/// yet committed) waits for it and finds the key taken: nothing written, nothing counted.
/// On Postgres its group learns of it only when it writes (the key was free when it looked),
/// so the group is written send by send instead.
async fn a_key_being_written_elsewhere_is_taken(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let (project_id, _) = acme(&store).await;
    let now = now_ms();
    let key = unique("key");
    let dest = bucket(&format!("dest:{project_id}:elsewhere"));
    let insert = "INSERT INTO outbox (id, project_id, channel, destination, payload, status,
                      attempts, next_attempt_at, idempotency_key, created_at)
                  VALUES ($1, $2, 'email', 'e@example.com', '{}', 'queued', 0, $3, $4, $3)";
    let first = unique("msg_elsewhere");
    let mine = new_message(
        &project_id,
        &unique("msg_mine"),
        "e@example.com",
        Some(&key),
    );
    let send = {
        let (store, mine, dest) = (store.clone(), mine.clone(), dest.clone());
        async move { store.enqueue(&mine, &[dest], now).await.expect("enqueue") }
    };
    // Begins a transaction on `$pool` that inserts a message with the key, uncommitted.
    macro_rules! holding_the_key {
        ($pool:expr) => {{
            let mut tx = $pool.begin().await.unwrap();
            sqlx::query(insert)
                .bind(&first)
                .bind(&project_id)
                .bind(i64::from(now))
                .bind(&key)
                .execute(&mut *tx)
                .await
                .unwrap();
            tx
        }};
    }
    let outcome = match backend {
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            let mut tx = holding_the_key!(pool);
            let (holder,): (i32,) = sqlx::query_as("SELECT pg_backend_pid()")
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            let sending = tokio::spawn(send);
            // The send reaches its insert and waits on the uncommitted key.
            eventually(10, "the send to wait on the key", || {
                let pool = pool.clone();
                async move {
                    let (waiting,): (i64,) = sqlx::query_as(
                        "SELECT COUNT(*) FROM pg_stat_activity
                         WHERE $1 = ANY (pg_blocking_pids(pid))",
                    )
                    .bind(holder)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                    waiting > 0
                }
            })
            .await;
            tx.commit().await.unwrap();
            let outcome = sending.await.unwrap();
            assert_eq!(store.split_groups(), 1);
            outcome
        }
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
            let tx = holding_the_key!(pool);
            let sending = tokio::spawn(send);
            tokio::time::sleep(Duration::from_millis(200)).await;
            tx.commit().await.unwrap();
            sending.await.unwrap()
        }
    };
    assert!(
        matches!(outcome, EnqueueOutcome::DuplicateKey),
        "{outcome:?}"
    );
    assert!(row(&store, &mine.id).await.is_none());
    assert_eq!(sqlx_count(&db, &dest.key).await, (0,));
}

/// Many outcomes at once (on Postgres, written in groups): each applies as alone, fenced by
/// its attempt, with its timeline entry.
async fn concurrent_completions_each_apply(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let (project_id, _) = acme(&store).await;
    let now = now_ms();
    for i in 0..48 {
        enqueue_at(
            &store,
            &project_id,
            &unique(&format!("msg_done{i}")),
            now,
            &[],
        )
        .await;
    }
    let claimed = store
        .claim_due(now_ms(), now_ms() + Duration::from_secs(60), 100)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 48);
    let later = now_ms() + Duration::from_secs(600);
    let done = claimed.iter().enumerate().map(|(i, m)| {
        let (store, id, attempt) = (store.clone(), m.id.clone(), m.attempts);
        tokio::spawn(async move {
            // Every fourth is a stale claim (an attempt that is not the row's).
            let claim = if i % 4 == 3 { attempt + 1 } else { attempt };
            let masked = format!("m{i}***@example.com");
            let error = format!("error {i}");
            let provider = format!("p{i}");
            let outcome = match i % 3 {
                0 => Outcome::Sent {
                    provider_id: Some(&provider),
                    masked_destination: &masked,
                    at: now,
                },
                1 => Outcome::Failed {
                    masked_destination: &masked,
                    error: &error,
                },
                _ => Outcome::Retry {
                    next_attempt_at: later,
                    error: &error,
                },
            };
            store
                .complete(&id, claim, outcome, now)
                .await
                .expect("complete")
        })
    });
    let applied: Vec<bool> = join_all(done)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    for (i, (m, applied)) in claimed.iter().zip(applied).enumerate() {
        let r = row(&store, &m.id).await.unwrap();
        let timeline = store.delivery_attempts(&m.id).await.unwrap();
        if i % 4 == 3 {
            assert!(!applied, "stale claim {i} applied");
            assert_eq!(
                (r.status.as_str(), r.locked_until.is_some()),
                ("queued", true)
            );
            assert!(timeline.is_empty(), "{timeline:?}");
            continue;
        }
        assert!(applied, "claim {i} did not apply");
        assert_eq!(r.locked_until, None);
        assert_eq!(timeline.len(), 1, "{timeline:?}");
        match i % 3 {
            0 => {
                assert_eq!(r.status.as_str(), "sent");
                assert_eq!(r.destination, format!("m{i}***@example.com"));
                assert_eq!((r.sent_at, r.payload.as_deref()), (Some(now), None));
                assert_eq!(r.provider_message_id, Some(format!("p{i}")));
                assert_eq!(r.last_error, None);
            }
            1 => {
                assert_eq!(r.status.as_str(), "failed");
                assert_eq!(r.destination, format!("m{i}***@example.com"));
                assert_eq!(r.payload, None);
                assert_eq!(r.last_error, Some(format!("error {i}")));
            }
            _ => {
                assert_eq!(r.status.as_str(), "queued");
                assert_eq!(r.next_attempt_at, later);
                assert!(r.payload.is_some());
                assert_eq!(r.destination, m.destination);
                assert_eq!(r.last_error, Some(format!("error {i}")));
            }
        }
    }
}

/// One round of the outbox's hot path, as a busy server runs it: eight sends at once (so
/// that they are written as groups), each with an idempotency key and counted in its
/// destination's counter and a sharded project-wide one; the claims of what is due; and the
/// claimed messages' outcomes, at once.
async fn hot_round(store: &Store, project_id: &str, round: &str) {
    let now = now_ms();
    let sends = (0..8).map(|i| {
        let (store, project_id) = (store.clone(), project_id.to_owned());
        let to = format!("{round}-{i}@example.com");
        tokio::spawn(async move {
            let buckets = [
                bucket(&format!("dest:{project_id}:{to}")),
                RateBucket {
                    sharded: true,
                    ..bucket(&format!("project:{project_id}"))
                },
            ];
            let msg = new_message(&project_id, &unique("msg_hot"), &to, Some(&to));
            store.enqueue(&msg, &buckets, now).await.expect("enqueue")
        })
    });
    for sent in join_all(sends).await {
        assert!(matches!(sent.expect("task"), EnqueueOutcome::Created(_)));
    }
    let mut claimed = Vec::new();
    loop {
        let more = store
            .claim_due(now_ms(), now_ms() + Duration::from_secs(60), 3)
            .await
            .expect("claim");
        if more.is_empty() {
            break;
        }
        claimed.extend(more);
    }
    assert_eq!(claimed.len(), 8, "round {round}");
    let outcomes = claimed.into_iter().map(|m| {
        let store = store.clone();
        tokio::spawn(async move {
            let sent = Outcome::Sent {
                provider_id: None,
                masked_destination: "m***@example.com",
                at: now,
            };
            store.complete(&m.id, m.attempts, sent, now_ms()).await
        })
    });
    for applied in join_all(outcomes).await {
        assert!(applied.expect("task").expect("complete"));
    }
}

/// Rows read from `table` of the test's schema by scans and by index lookups, as reported
/// by the backends that read them. A backend reports when it has been idle a while (at most
/// `PGSTAT_IDLE_INTERVAL`, 10 s) and when it exits; this waits until the count settles.
async fn rows_read(admin: &sqlx::PgPool, table: &str) -> i64 {
    let sql = "SELECT CAST(COALESCE(seq_tup_read, 0) + COALESCE(idx_tup_fetch, 0) AS BIGINT)
               FROM pg_stat_user_tables
               WHERE schemaname = current_schema() AND relname = $1";
    let mut last = -1;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (n,): (i64,) = sqlx::query_as(sql)
            .bind(table)
            .fetch_one(admin)
            .await
            .unwrap();
        if n == last {
            return n;
        }
        last = n;
    }
    last
}

/// Postgres only (this is about its plan cache): a first burst on a new deployment does not
/// leave the outbox's hot statements scanning whole tables. A connection keeps the generic
/// plan it made of a statement after five runs; made while the outbox and the counters were
/// nearly empty, a join planned then read them whole, and kept doing so as they grew, until
/// autovacuum's next ANALYZE (turned off here, to stand for "not yet"). After 40 rounds on
/// small tables, both grow by 50,000 rows (half the messages finished, half waiting for a
/// retry tomorrow, as after a provider outage); the next 20 rounds must each reach their rows
/// by key: together (160 messages) they read fewer rows than one pass over either grown
/// table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_hot_statements_reach_rows_by_key_after_a_first_burst() {
    let db = TestDb::new(Backend::Postgres).await;
    let store = db.store().await;
    let admin = sqlx::PgPool::connect(&db.url).await.unwrap();
    for table in ["outbox", "rate_counter", "delivery_attempt"] {
        sqlx::query(&format!(
            "ALTER TABLE {table} SET (autovacuum_enabled = false)"
        ))
        .execute(&admin)
        .await
        .unwrap();
    }
    let (project_id, _) = acme(&store).await;
    for round in 0..40 {
        hot_round(&store, &project_id, &format!("early{round}")).await;
    }
    // What the 40 rounds read of the small tables, once the idle connections reported it.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let before = [
        rows_read(&admin, "outbox").await,
        rows_read(&admin, "rate_counter").await,
    ];
    let now = i64::from(now_ms());
    sqlx::query(
        "INSERT INTO outbox (id, project_id, channel, destination, payload, status, attempts,
                             next_attempt_at, idempotency_key, created_at, destination_hash)
         SELECT 'grown' || i, $1, 'email', 'g' || i || '@example.com', 'p',
                CASE WHEN i % 2 = 0 THEN 'sent' ELSE 'queued' END, 1,
                CASE WHEN i % 2 = 0 THEN $2 ELSE $2 + 86400000 END, 'grown' || i, $2, 'dh' || i
         FROM generate_series(1, 50000) i",
    )
    .bind(&project_id)
    .bind(now)
    .execute(&admin)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO rate_counter (bucket, window_start, count)
         SELECT 'grown:' || i, $1, 1 FROM generate_series(1, 50000) i",
    )
    .bind(now - now % 3_600_000)
    .execute(&admin)
    .await
    .unwrap();
    for round in 0..20 {
        hot_round(&store, &project_id, &format!("late{round}")).await;
    }
    store.close().await;
    for (table, before) in ["outbox", "rate_counter"].into_iter().zip(before) {
        let read = rows_read(&admin, table).await - before;
        eprintln!("{table}: {read} rows read by the 20 rounds on the grown table");
        assert!(
            read < 50_000,
            "{table}: {read} rows read by 20 rounds on the grown table: a hot statement scans it"
        );
    }
}

backend_tests!(
    stale_completions_are_ignored,
    a_sharded_limit_counts_every_shard,
    cleanup_deletes_old_finished_messages_and_counters,
    the_server_cleans_up_at_start,
    concurrent_sends_are_each_counted_as_alone,
    one_key_sent_twice_at_once_is_written_once,
    two_instances_count_together_without_deadlock,
    a_key_being_written_elsewhere_is_taken,
    concurrent_completions_each_apply,
);
