//! In-place upgrades of databases made by the published futureauth 0.4 and 0.5 crates:
//! the real crates create the tables and rows, then this crate takes over. Nobody is lost
//! and nobody is signed out (0.4's plaintext tokens are hashed in place).

mod common;

use std::time::Duration;

use futureauth::sqlx::{self, postgres::PgConnectOptions, PgPool};
use futureauth::{delivery::DevOutbox, FutureAuth, OtpChannel};
use rand::Rng;

/// A fresh database (not a schema: the old crates' migrations look at every schema).
struct FreshDb {
    name: String,
    pool: PgPool,
}

impl FreshDb {
    async fn new() -> Self {
        let url = common::database_url();
        let admin = PgPool::connect(&url)
            .await
            .expect("Postgres is required for upgrade tests");
        let name = format!("fa_upgrade_{:016x}", rand::thread_rng().gen::<u64>());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let options: PgConnectOptions = url.parse().unwrap();
        let pool = PgPool::connect_with(options.database(&name)).await.unwrap();
        Self { name, pool }
    }

    async fn drop(self) {
        self.pool.close().await;
        let admin = PgPool::connect(&common::database_url()).await.unwrap();
        sqlx::query(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .execute(&admin)
            .await
            .unwrap();
    }

    async fn columns(&self, table: &str) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY column_name",
        )
        .bind(table)
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    fn auth(&self) -> (FutureAuth, DevOutbox) {
        let outbox = DevOutbox::quiet();
        let auth =
            FutureAuth::new(self.pool.clone(), common::config()).with_delivery(outbox.clone());
        (auth, outbox)
    }
}

const TTL: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn upgrades_a_futureauth_0_4_database_without_signing_anyone_out() {
    use futureauth04::db;
    let fresh = FreshDb::new().await;
    let pool = &fresh.pool;
    futureauth04::ensure_tables(pool).await.unwrap();
    let ada = db::user::find_or_create_by_email(pool, "ada@example.com")
        .await
        .unwrap();
    let grace = db::user::find_or_create_by_email(pool, "Grace@Example.COM")
        .await
        .unwrap();
    let phone = db::user::find_or_create_by_phone(pool, "+15551234567")
        .await
        .unwrap();
    let s1 = db::session::create(pool, &ada.id, TTL, Some("10.0.0.1"), Some("ua"))
        .await
        .unwrap();
    let s2 = db::session::create(pool, &grace.id, TTL, None, None)
        .await
        .unwrap();
    let s3 = db::session::create(pool, &phone.id, TTL, None, None)
        .await
        .unwrap();
    db::verification::create_magic_link(
        pool,
        "ada@example.com",
        "legacy-plain-magic-token-0123456789",
        TTL,
    )
    .await
    .unwrap();
    db::verification::create(pool, "ada@example.com", "abc123", TTL)
        .await
        .unwrap();
    assert!(
        fresh
            .columns("session")
            .await
            .contains(&"token".to_string()),
        "0.4 stores plain tokens"
    );

    let (auth, outbox) = fresh.auth();
    auth.ensure_tables().await.unwrap();
    auth.ensure_tables().await.unwrap();

    // Nobody lost, nobody signed out.
    for (session, user) in [(&s1, &ada), (&s2, &grace), (&s3, &phone)] {
        let (found, _) = auth
            .get_session(&session.token)
            .await
            .unwrap()
            .expect("still signed in");
        assert_eq!(found.id, user.id);
    }
    assert_eq!(
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM \"user\"")
            .fetch_one(pool)
            .await
            .unwrap(),
        3
    );
    // Plain text is gone; emails are normalised so Grace signs in to her own account.
    assert!(!fresh
        .columns("session")
        .await
        .contains(&"token".to_string()));
    assert!(!fresh
        .columns("verification")
        .await
        .contains(&"code".to_string()));
    let plain: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM session WHERE token_hash = $1")
        .bind(&s1.token)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(plain, 0);
    assert_eq!(
        auth.get_user_by_email("grace@example.com")
            .await
            .unwrap()
            .unwrap()
            .id,
        grace.id
    );
    auth.send_otp(OtpChannel::Email, "GRACE@example.com")
        .await
        .unwrap();
    let code = outbox.latest_for("grace@example.com").unwrap().code;
    let (signed_in, _) = auth
        .verify_otp("grace@example.com", &code, None, None)
        .await
        .unwrap();
    assert_eq!(signed_in.id, grace.id);
    // A pending magic link keeps working, once.
    let (user, _) = auth
        .verify_magic_link("legacy-plain-magic-token-0123456789", None, None)
        .await
        .unwrap();
    assert_eq!(user.id, ada.id);
    // The pending plain code could not be re-keyed and was dropped; a new one works.
    assert!(auth
        .verify_otp("ada@example.com", "abc123", None, None)
        .await
        .is_err());

    auth.revoke_session(&s1.token).await.unwrap();
    assert!(auth.get_session(&s1.token).await.unwrap().is_none());
    fresh.drop().await;
}

#[tokio::test]
async fn upgrades_a_futureauth_0_5_database_without_signing_anyone_out() {
    use futureauth05::db;
    let fresh = FreshDb::new().await;
    let pool = &fresh.pool;
    futureauth05::ensure_tables(pool).await.unwrap();
    let ada = db::user::find_or_create_by_email(pool, "ada@example.com")
        .await
        .unwrap();
    let phone = db::user::find_or_create_by_phone(pool, "+447700900123")
        .await
        .unwrap();
    db::user::merge_metadata(pool, &ada.id, serde_json::json!({"plan": "pro"}))
        .await
        .unwrap();
    let s1 = db::session::create(pool, &ada.id, TTL, None, None)
        .await
        .unwrap();
    let s2 = db::session::create(pool, &phone.id, TTL, None, None)
        .await
        .unwrap();
    db::verification::create_magic_link(
        pool,
        "ada@example.com",
        "v05-magic-token-abcdefghijklmnop",
        TTL,
    )
    .await
    .unwrap();

    let (auth, _) = fresh.auth();
    auth.ensure_tables().await.unwrap();
    auth.ensure_tables().await.unwrap();

    let (found, old_session) = auth
        .get_session(&s1.token)
        .await
        .unwrap()
        .expect("0.5 session survives");
    assert_eq!(found.id, ada.id);
    // Made before methods were recorded: no method, authenticated when it was created.
    assert_eq!(old_session.auth_method, None);
    assert_eq!(old_session.authenticated_at(), old_session.created_at);
    assert_eq!(found.metadata, serde_json::json!({"plan": "pro"}));
    assert_eq!(
        auth.get_session(&s2.token).await.unwrap().unwrap().0.id,
        phone.id
    );
    let (user, link_session) = auth
        .verify_magic_link("v05-magic-token-abcdefghijklmnop", None, None)
        .await
        .unwrap();
    assert_eq!(user.id, ada.id);
    assert_eq!(
        link_session.auth_method,
        Some(futureauth::AuthMethod::MagicLink)
    );
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE tablename = 'verification'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(
        indexes.contains(&"verification_identifier_kind_binding_key".to_string())
            && !indexes.contains(&"verification_identifier_kind_key".to_string()),
        "{indexes:?}"
    );
    fresh.drop().await;
}

#[tokio::test]
async fn migration_sql_is_the_script_ensure_tables_runs() {
    let fresh = FreshDb::new().await;
    sqlx::raw_sql(futureauth::migration_sql())
        .execute(&fresh.pool)
        .await
        .unwrap();
    sqlx::raw_sql(futureauth::migration_sql())
        .execute(&fresh.pool)
        .await
        .unwrap();
    let (auth, outbox) = fresh.auth();
    auth.send_otp(OtpChannel::Email, "ada@example.com")
        .await
        .unwrap();
    let code = outbox.latest_for("ada@example.com").unwrap().code;
    auth.verify_otp("ada@example.com", &code, None, None)
        .await
        .unwrap();
    fresh.drop().await;
}

/// A database made by the current release (0.6: the schema as it was before sessions
/// recorded how they were proved and users could be disabled) is upgraded in place on both
/// backends: its sessions keep working with no method and `authenticated_at() ==
/// created_at`, the new columns exist, and new sign-ins record their method.
async fn upgrades_a_0_6_database_keeping_everyone_signed_in(db: common::TestDb) {
    // Signed in an hour ago (whole milliseconds, which both backends keep exactly).
    let signed_in = chrono::DateTime::from_timestamp_millis(
        (chrono::Utc::now() - chrono::TimeDelta::hours(1)).timestamp_millis(),
    )
    .unwrap();
    let (old, created) = match &db {
        common::TestDb::Postgres { .. } => (
            include_str!("fixtures/v0_6_postgres.sql"),
            format!("'{}'", signed_in.to_rfc3339()),
        ),
        common::TestDb::Sqlite { .. } => (
            include_str!("fixtures/v0_6_sqlite.sql"),
            signed_in.timestamp_millis().to_string(),
        ),
    };
    match &db {
        common::TestDb::Postgres { pool, .. } => sqlx::raw_sql(old).execute(pool).await.map(drop),
        common::TestDb::Sqlite { pool, .. } => sqlx::raw_sql(old).execute(pool).await.map(drop),
    }
    .unwrap();
    // A user and a session as 0.6 wrote them; the token's hash is hex SHA-256.
    let token = "v06-session-token-0123456789abcdefghijklmnopqrstuvwxyz";
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()));
    let expires = match &db {
        common::TestDb::Postgres { .. } => "NOW() + INTERVAL '1 day'".to_string(),
        common::TestDb::Sqlite { .. } => (chrono::Utc::now() + chrono::TimeDelta::days(1))
            .timestamp_millis()
            .to_string(),
    };
    db.exec(&format!(
        "INSERT INTO \"user\" (id, email, name, email_verified, metadata, created_at, updated_at) \
         VALUES ('u06', 'ada@example.com', '', TRUE, '{{}}', {created}, {created})"
    ))
    .await;
    db.exec(&format!(
        "INSERT INTO session (id, user_id, token_hash, expires_at, created_at) \
         VALUES ('s06', 'u06', '{hash}', {expires}, {created})"
    ))
    .await;

    let (auth, outbox) = db.auth(common::config()).await;
    auth.ensure_tables().await.unwrap();
    auth.ensure_tables().await.unwrap();

    let (user, session) = auth
        .get_session(token)
        .await
        .unwrap()
        .expect("a 0.6 session survives the upgrade");
    assert_eq!(user.id, "u06");
    assert_eq!(session.auth_method, None);
    assert_eq!(session.authenticated_at(), session.created_at);
    assert_eq!(session.created_at, signed_in);
    let columns = |table: &str| match &db {
        common::TestDb::Postgres { .. } => format!(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = '{table}'"
        ),
        common::TestDb::Sqlite { .. } => format!("SELECT name FROM pragma_table_info('{table}')"),
    };
    let session_columns = db.strings(&columns("session")).await;
    let user_columns = db.strings(&columns("user")).await;
    for (have, column) in [
        (&session_columns, "auth_method"),
        (&session_columns, "authenticated_at"),
        (&user_columns, "disabled_at"),
        (&user_columns, "disabled_until"),
    ] {
        assert!(
            have.iter().any(|c| c == column),
            "{column} missing: {have:?}"
        );
    }

    auth.send_otp(OtpChannel::Email, "ada@example.com")
        .await
        .unwrap();
    let code = outbox.latest_for("ada@example.com").unwrap().code;
    let (again, fresh) = auth
        .verify_otp("ada@example.com", &code, None, None)
        .await
        .unwrap();
    assert_eq!(again.id, "u06");
    assert_eq!(fresh.auth_method, Some(futureauth::AuthMethod::Otp));
    let (_, stored) = auth.get_session(&fresh.token).await.unwrap().unwrap();
    assert_eq!(stored.auth_method, Some(futureauth::AuthMethod::Otp));
    assert_eq!(
        stored.authenticated_at().timestamp_millis(),
        fresh.authenticated_at().timestamp_millis()
    );
}

both_backends!(upgrades_a_0_6_database_keeping_everyone_signed_in);
