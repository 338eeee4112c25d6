//! Secret keys and send settings are kept in memory on Postgres (an accepted send reads
//! neither). The attacks: a key revoked, or a limit lowered, must not keep working on any
//! instance because it was cached, whoever made the change (this instance, another one,
//! the CLI in another process) and even if the change was made while an instance's
//! listener was cut off.

mod common;

use common::*;
use futureauth_server::clock::UnixMillis;
use futureauth_server::store::Store;
use serde_json::json;

/// The test that cuts every listener of the database holds this exclusively, so that it
/// cannot make another test here pass by emptying its caches.
static CUTS: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

fn email(to: &str) -> serde_json::Value {
    json!({"channel": "email", "destination": to, "code": "123456"})
}

async fn status(s: &TestServer, key: &str, to: &str) -> u16 {
    s.send(key, &email(to)).await.status().as_u16()
}

/// A project on a fresh database and two instances on it, each serving its key from its
/// cache.
struct Warm {
    db: TestDb,
    _fakes: Fakes,
    project_id: String,
    key: String,
    a: TestServer,
    b: TestServer,
}

async fn two_warm_instances() -> Warm {
    let db = TestDb::new(Backend::Postgres).await;
    let fakes = Fakes::accepting().await;
    let (project_id, key) = acme(&db.store().await).await;
    let a = TestServer::start(&db, &config(&db, &fakes)).await;
    let b = TestServer::start(&db, &config(&db, &fakes)).await;
    for s in [&a, &b] {
        eventually(5, "the project cache to go live", || async {
            s.store().caches_projects()
        })
        .await;
        // Fills the cache with the key and the project's settings.
        assert_eq!(
            status(s, &key, &format!("{}@w.test", unique("warm"))).await,
            202
        );
    }
    Warm {
        db,
        _fakes: fakes,
        project_id,
        key,
        a,
        b,
    }
}

/// Within a second, `key` is refused by `s`.
async fn refused_soon(s: &TestServer, key: &str, what: &str) {
    eventually(1, what, || async {
        status(s, key, &format!("{}@r.test", unique("r"))).await == 401
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_refused_by_every_instance() {
    let _shared = CUTS.read().await;
    let w = two_warm_instances().await;

    // Revoked through instance A: A refuses the very next request, B within a second.
    let prefix: String = w.key.chars().take(12).collect();
    let n =
        w.a.store()
            .revoke_keys_by_prefix(&prefix, UnixMillis::now())
            .await
            .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        status(&w.a, &w.key, "next@a.test").await,
        401,
        "A served its cache"
    );
    refused_soon(&w.b, &w.key, "B to refuse a key revoked on A").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_by_another_process_is_refused_within_a_second() {
    let _shared = CUTS.read().await;
    let w = two_warm_instances().await;

    // The CLI, in a process of its own: a store (and cache) of its own.
    let cli_store: Store = w.db.store().await;
    let out = cli(
        &cli_store,
        &[
            "futureauth-server",
            "key",
            "revoke",
            "--project",
            &w.project_id,
        ],
    )
    .await;
    assert!(out.contains("Revoked 1"), "{out}");
    refused_soon(&w.a, &w.key, "A to refuse a key revoked by the CLI").await;
    refused_soon(&w.b, &w.key, "B to refuse a key revoked by the CLI").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_lowered_elsewhere_binds_within_a_second() {
    let _shared = CUTS.read().await;
    let w = two_warm_instances().await;

    // One message per address: the second send to one address must be refused.
    let other: Store = w.db.store().await;
    other
        .set_project_limits(&w.project_id, Some(1), None)
        .await
        .unwrap();
    eventually(1, "A to apply a limit set elsewhere", || async {
        let to = format!("{}@l.test", unique("l"));
        status(&w.a, &w.key, &to).await == 202 && status(&w.a, &w.key, &to).await == 429
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_while_the_listener_is_cut_off_is_not_missed() {
    let _alone = CUTS.write().await;
    let w = two_warm_instances().await;

    // Cut every listener's connection (the notification of the revocation below may be
    // sent while nobody listens), then revoke from elsewhere at once.
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&pg_base_url())
        .await
        .unwrap();
    let cut: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE query LIKE 'LISTEN %futureauth_server_project%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(!cut.is_empty(), "no listener found to cut");
    let prefix: String = w.key.chars().take(12).collect();
    let other: Store = w.db.store().await;
    other
        .revoke_keys_by_prefix(&prefix, UnixMillis::now())
        .await
        .unwrap();
    refused_soon(
        &w.a,
        &w.key,
        "A to refuse a key revoked while it was not listening",
    )
    .await;
    // The cache comes back by itself, without what it held before the cut.
    eventually(10, "the cache to go live again", || async {
        w.a.store().caches_projects()
    })
    .await;
    assert_eq!(
        status(&w.a, &w.key, "after@a.test").await,
        401,
        "served from before the cut"
    );
}
