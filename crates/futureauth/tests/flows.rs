//! The SDK's behaviour and security guarantees, one suite run against Postgres and SQLite.
//!
//! Many tests call the 0.6 twins (`send_otp_bound`, `send_otp_from`, `verify_otp_bound`),
//! deprecated for the `*_with` methods they delegate to: they stay covered while they exist.
#![allow(deprecated)]

mod common;

use std::net::IpAddr;
use std::time::Duration;

use chrono::Utc;
use common::{code_for, config, FailingDelivery, TestDb};
use futureauth::delivery::{Delivery, DeliveryError, DevOutbox, Message};
use futureauth::sqlx;
use futureauth::{FutureAuthConfig, FutureAuthError, OtpBinding, OtpChannel, RateLimit};
use sha2::{Digest, Sha256};

const EMAIL: &str = "ada@example.com";

fn wrong(code: &str) -> String {
    // Same length and alphabet, guaranteed different.
    code.chars()
        .map(|c| if c == 'z' { 'y' } else { 'z' })
        .collect()
}

async fn email_code_signs_in(db: TestDb) {
    let (auth, outbox) = db.auth(config()).await;
    auth.send_otp(OtpChannel::Email, EMAIL).await.unwrap();
    let code = code_for(&outbox, EMAIL);
    assert_eq!(code.len(), 6);
    assert!(code
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));

    let (user, session) = auth
        .verify_otp(EMAIL, &code, Some("127.0.0.1"), Some("test-agent"))
        .await
        .unwrap();
    assert_eq!(user.email.as_deref(), Some(EMAIL));
    assert!(user.email_verified);
    assert_eq!(session.user_id, user.id);
    assert_eq!(session.ip_address.as_deref(), Some("127.0.0.1"));
    assert!(session.token.len() >= 43, "session token carries 256 bits");
    let ttl = session.expires_at - Utc::now();
    assert!(ttl > chrono::TimeDelta::days(29) && ttl <= chrono::TimeDelta::days(30));

    let (found, found_session) = auth.get_session(&session.token).await.unwrap().unwrap();
    assert_eq!(found.id, user.id);
    assert_eq!(found_session.id, session.id);
    assert!(
        found_session.token.is_empty(),
        "the token is never read back"
    );

    auth.revoke_session(&session.token).await.unwrap();
    assert!(auth.get_session(&session.token).await.unwrap().is_none());
}

async fn codes_are_single_use(db: TestDb) {
    let (auth, outbox) = db.auth(config()).await;
    auth.send_otp(OtpChannel::Email, EMAIL).await.unwrap();
    let code = code_for(&outbox, EMAIL);
    auth.verify_otp(EMAIL, &code, None, None).await.unwrap();
    let again = auth.verify_otp(EMAIL, &code, None, None).await.unwrap_err();
    assert!(matches!(again, FutureAuthError::InvalidCode), "{again:?}");
}

async fn codes_expire(db: TestDb) {
    let (auth, outbox) = db.auth(config()).await;
    auth.send_otp(OtpChannel::Email, EMAIL).await.unwrap();
    let code = code_for(&outbox, EMAIL);
    db.set_expiry(
        "verification",
        "identifier",
        EMAIL,
        Utc::now() - chrono::TimeDelta::seconds(1),
    )
    .await;
    let err = auth.verify_otp(EMAIL, &code, None, None).await.unwrap_err();
    assert!(matches!(err, FutureAuthError::CodeExpired), "{err:?}");
}

async fn a_new_code_replaces_the_old_one(db: TestDb) {
    let (auth, outbox) = db.auth(config()).await;
    auth.send_otp(OtpChannel::Email, EMAIL).await.unwrap();
    let first = code_for(&outbox, EMAIL);
    loop {
        auth.send_otp(OtpChannel::Email, EMAIL).await.unwrap();
        if code_for(&outbox, EMAIL) != first {
            break;
        }
    }
    let second = code_for(&outbox, EMAIL);
    assert!(matches!(
        auth.verify_otp(EMAIL, &first, None, None).await,
        Err(FutureAuthError::InvalidCode)
    ));
    auth.verify_otp(EMAIL, &second, None, None).await.unwrap();
}

async fn codes_die_after_five_wrong_guesses(db: TestDb) {
    let (auth, outbox) = db.auth(config()).await;
    auth.send_otp(OtpChannel::Email, EMAIL).await.unwrap();
    let code = code_for(&outbox, EMAIL);
    for attempt in 1..=5 {
        let err = auth
            .verify_otp(EMAIL, &wrong(&code), None, None)
            .await
            .unwrap_err();
        let expected = if attempt < 5 {
            "invalid_code"
        } else {
            "too_many_attempts"
        };
        assert_eq!(err.code(), expected, "attempt {attempt}");
    }
    let err = auth.verify_otp(EMAIL, &code, None, None).await.unwrap_err();
    assert!(
        matches!(err, FutureAuthError::TooManyAttempts),
        "right code after 5 misses: {err:?}"
    );
}

async fn concurrent_wrong_guesses_never_exceed_the_limit(db: TestDb) {
    let (auth, outbox) = db.auth(config()).await;
    let auth = std::sync::Arc::new(auth);
    auth.send_otp(OtpChannel::Email, EMAIL).await.unwrap();
    let code = code_for(&outbox, EMAIL);
    let guesses = (0..20).map(|_| {
        let auth = auth.clone();
        let bad = wrong(&code);
        tokio::spawn(async move { auth.verify_otp(EMAIL, &bad, None, None).await })
    });
    for result in futures::future::join_all(guesses).await {
        assert!(result.unwrap().is_err());
    }
    assert_eq!(db.attempts(EMAIL).await, 5, "exactly the limit was counted");
    let err = auth.verify_otp(EMAIL, &code, None, None).await.unwrap_err();
    assert!(matches!(err, FutureAuthError::TooManyAttempts), "{err:?}");
}

/// The address's failure ceiling holds under a burst of concurrent guesses: each is
/// counted under its counter's lock before the code is looked at, in the same commit that
/// answers it, so no more guesses than the ceiling reach the code, and the right code is
/// refused after them. The counter is held locked while the burst starts, so every guess
/// begins (and takes its snapshot) before the first is counted: a ceiling read from the
/// snapshot instead of the locked counter lets them all through.
async fn concurrent_guesses_never_pass_the_failure_ceiling(db: TestDb) {
    let mut cfg = config();
    cfg.rate_limits.failed_verify_per_identifier = RateLimit::new(3, Duration::from_secs(3600));
    let (auth, outbox) = db.auth(cfg).await;
    let auth = std::sync::Arc::new(auth);
    auth.send_otp(OtpChannel::Email, EMAIL).await.unwrap();
    let code = code_for(&outbox, EMAIL);
    let first = auth.verify_otp(EMAIL, &wrong(&code), None, None).await;
    assert!(
        matches!(first, Err(FutureAuthError::InvalidCode)),
        "{first:?}"
    );

    let burst = || {
        (0..16)
            .map(|_| {
                let auth = auth.clone();
                let bad = wrong(&code);
                tokio::spawn(async move { auth.verify_otp(EMAIL, &bad, None, None).await })
            })
            .collect::<Vec<_>>()
    };
    let hold = Duration::from_millis(500);
    let guesses = match &db {
        TestDb::Postgres { pool, .. } => {
            let mut tx = pool.begin().await.unwrap();
            sqlx::query(
                "SELECT 1 FROM futureauth_rate_limit WHERE key LIKE 'verify_fail:%' FOR UPDATE",
            )
            .fetch_one(&mut *tx)
            .await
            .unwrap();
            let guesses = burst();
            tokio::time::sleep(hold).await;
            tx.commit().await.unwrap();
            guesses
        }
        TestDb::Sqlite { pool, .. } => {
            let mut conn = pool.acquire().await.unwrap();
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut *conn)
                .await
                .unwrap();
            let guesses = burst();
            tokio::time::sleep(hold).await;
            sqlx::query("COMMIT").execute(&mut *conn).await.unwrap();
            guesses
        }
    };
    let mut refused = 0;
    for result in futures::future::join_all(guesses).await {
        match result.unwrap().unwrap_err() {
            FutureAuthError::RateLimited { .. } => refused += 1,
            FutureAuthError::InvalidCode => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(refused, 14, "2 more guesses may be looked at, 14 refused");
    assert_eq!(
        db.attempts(EMAIL).await,
        3,
        "only the allowed guesses reached the code"
    );
    let err = auth.verify_otp(EMAIL, &code, None, None).await.unwrap_err();
    assert!(
        matches!(err, FutureAuthError::RateLimited { .. }),
        "{err:?}"
    );
}

async fn a_code_used_concurrently_yields_one_session(db: TestDb) {
    let (auth, outbox) = db.auth(config()).await;
    let auth = std::sync::Arc::new(auth);
    auth.send_otp(OtpChannel::Email, EMAIL).await.unwrap();
    let code = code_for(&outbox, EMAIL);
    let tries = (0..4).map(|_| {
        let (auth, code) = (auth.clone(), code.clone());
        tokio::spawn(async move { auth.verify_otp(EMAIL, &code, None, None).await })
    });
    let wins = futures::future::join_all(tries)
        .await
        .into_iter()
        .filter(|r| r.as_ref().unwrap().is_ok())
        .count();
    assert_eq!(wins, 1);
    assert_eq!(db.count("session").await, 1);
}

async fn a_link_used_concurrently_yields_one_session(db: TestDb) {
    let (auth, outbox) = db.auth(config()).await;
    let auth = std::sync::Arc::new(auth);
    auth.send_magic_link(EMAIL, "https://app.example/auth/verify")
        .await
        .unwrap();
    let token = code_for(&outbox, EMAIL);
    let tries = (0..4).map(|_| {
        let (auth, token) = (auth.clone(), token.clone());
        tokio::spawn(async move { auth.verify_magic_link(&token, None, None).await })
    });
    let wins = futures::future::join_all(tries)
        .await
        .into_iter()
        .filter(|r| r.as_ref().unwrap().is_ok())
        .count();
    assert_eq!(wins, 1);
    assert_eq!(db.count("session").await, 1);
}

async fn failures_are_limited_per_identifier_across_codes(db: TestDb) {
    let mut cfg = config();
    cfg.rate_limits.failed_verify_per_identifier = RateLimit::new(6, Duration::from_secs(3600));
    let (auth, outbox) = db.auth(cfg).await;
    for _ in 0..2 {
        auth.send_otp(OtpChannel::Email, EMAIL).await.unwrap();
        let code = code_for(&outbox, EMAIL);
        for _ in 0..3 {
            assert!(auth
                .verify_otp(EMAIL, &wrong(&code), None, None)
                .await
                .is_err());
        }
    }
    // A fresh code does not reset the budget: 6 failures already spent.
    auth.send_otp(OtpChannel::Email, EMAIL).await.unwrap();
    let code = code_for(&outbox, EMAIL);
    let err = auth.verify_otp(EMAIL, &code, None, None).await.unwrap_err();
    assert!(
        matches!(err, FutureAuthError::RateLimited { .. }),
        "{err:?}"
    );
}

async fn secrets_are_stored_only_as_hashes(db: TestDb) {
    let (auth, outbox) = db.auth(config()).await;
    auth.send_otp(OtpChannel::Email, EMAIL).await.unwrap();
    let code = code_for(&outbox, EMAIL);
    let stored = db.strings("SELECT code_hash FROM verification").await;
    assert_eq!(stored.len(), 1);
    assert!(
        stored[0].starts_with("hmac-sha256:"),
        "keyed hash: {}",
        stored[0]
    );
    assert!(!stored[0].contains(&code));
    assert!(
        !stored[0].contains(&hex::encode(Sha256::digest(code.as_bytes()))),
        "not an unkeyed hash"
    );

    let (_, session) = auth.verify_otp(EMAIL, &code, None, None).await.unwrap();
    let hashes = db.strings("SELECT token_hash FROM session").await;
    assert_eq!(
        hashes,
        vec![hex::encode(Sha256::digest(session.token.as_bytes()))]
    );

    auth.send_magic_link(EMAIL, "https://app.example/cb")
        .await
        .unwrap();
    let token = code_for(&outbox, EMAIL);
    let stored = db
        .strings("SELECT code_hash FROM verification WHERE kind = 'magic_link'")
        .await;
    assert_eq!(stored, vec![hex::encode(Sha256::digest(token.as_bytes()))]);
}

async fn the_code_hash_key_is_not_in_the_database(db: TestDb) {
    let (auth, outbox) = db.auth(config()).await;
    auth.send_otp(OtpChannel::Email, EMAIL).await.unwrap();
    let code = code_for(&outbox, EMAIL);
    // Everything in the database, but another key: the code does not verify.
    let other = FutureAuthConfig {
        secret_key: "vx_sec_another_key".into(),
        ..config()
    };
    let (other, _) = db.auth(other).await;
    assert!(matches!(
        other.verify_otp(EMAIL, &code, None, None).await,
        Err(FutureAuthError::InvalidCode)
    ));
}

async fn magic_links_sign_in_once(db: TestDb) {
    let (auth, outbox) = db.auth(config()).await;
    auth.send_magic_link(
        "  Ada@Example.COM",
        "https://app.example/auth/verify?next=%2Fhome",
    )
    .await
    .unwrap();
    let message = outbox.latest_for(EMAIL).unwrap();
    let link = url::Url::parse(message.link.as_deref().unwrap()).unwrap();
    assert_eq!(link.origin().ascii_serialization(), "https://app.example");
    assert_eq!(link.path(), "/auth/verify");
    let pairs: Vec<(String, String)> = link.query_pairs().into_owned().collect();
    assert_eq!(
        pairs,
        vec![
            ("next".into(), "/home".into()),
            ("token".into(), message.code.clone())
        ]
    );

    let (user, _) = auth
        .verify_magic_link(&message.code, None, None)
        .await
        .unwrap();
    assert_eq!(user.email.as_deref(), Some(EMAIL));
    let err = auth
        .verify_magic_link(&message.code, None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, FutureAuthError::InvalidMagicLink), "{err:?}");
}

async fn magic_links_expire(db: TestDb) {
    let (auth, outbox) = db.auth(config()).await;
    auth.send_magic_link(EMAIL, "https://app.example/auth/verify")
        .await
        .unwrap();
    let token = code_for(&outbox, EMAIL);
    db.set_expiry(
        "verification",
        "kind",
        "magic_link",
        Utc::now() - chrono::TimeDelta::seconds(1),
    )
    .await;
    let err = auth
        .verify_magic_link(&token, None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, FutureAuthError::MagicLinkExpired), "{err:?}");
}

async fn magic_link_callbacks_are_checked(db: TestDb) {
    let cfg = FutureAuthConfig {
        app_url: String::new(),
        allowed_origins: vec!["https://app.example".into()],
        callback_urls: vec!["https://mobile.example/open".into()],
        ..config()
    };
    let (auth, outbox) = db.auth(cfg).await;
    for bad in [
        "https://evil.example/auth",
        "javascript:alert(1)",
        "/relative",
        "ftp://app.example/x",
        // Same host, other scheme or port: another origin.
        "http://app.example/auth",
        "https://app.example:8443/auth",
        // Credentials in the URL.
        "https://user:pw@app.example/auth",
        // Only this exact URL of mobile.example is allowed, not its origin.
        "https://mobile.example/other",
        // A token of the attacker's own: the link would carry two, and the landing page
        // might sign the victim into the attacker's account.
        "https://app.example/auth/verify?token=attackers",
        "https://app.example/auth/verify?a=1&Token=attackers",
        "https://app.example/auth/verify?%74oken=attackers",
        "https://mobile.example/open?token=x",
    ] {
        let err = auth.send_magic_link(EMAIL, bad).await.unwrap_err();
        assert_eq!(err.code(), "callback_not_allowed", "{bad}");
    }
    assert!(outbox.messages().is_empty());
    assert_eq!(
        db.count("verification").await,
        0,
        "a refused request writes nothing"
    );
    auth.send_magic_link(EMAIL, "https://app.example/auth?next=%2Fhome")
        .await
        .unwrap();
    auth.send_magic_link(EMAIL, "https://mobile.example/open")
        .await
        .unwrap();
    let link = outbox.latest_for(EMAIL).unwrap().link.unwrap();
    assert!(
        link.starts_with("https://mobile.example/open?token="),
        "{link}"
    );
}

async fn magic_links_without_configured_origins_fail_with_a_fix(db: TestDb) {
    // The dev outbox and custom deliveries check no callback list of their own: without
    // app_url, allowed_origins or callback_urls, nothing says which pages are the app's.
    let cfg = FutureAuthConfig {
        app_url: String::new(),
        ..config()
    };
    for delivery_fails in [false, true] {
        let err = if delivery_fails {
            db.auth_with(cfg.clone(), FailingDelivery::default())
                .await
                .send_magic_link(EMAIL, "https://evil.example/steal")
                .await
                .unwrap_err()
        } else {
            let (auth, outbox) = db.auth(cfg.clone()).await;
            let err = auth
                .send_magic_link(EMAIL, "https://evil.example/steal")
                .await
                .unwrap_err();
            assert!(outbox.messages().is_empty());
            // Codes need no origin and keep working.
            auth.send_otp(OtpChannel::Email, EMAIL).await.unwrap();
            err
        };
        assert!(
            matches!(err, FutureAuthError::Misconfigured(ref m) if m.contains("FUTUREAUTH_APP_URL")),
            "{err:?}"
        );
        assert_eq!(err.code(), "misconfigured");
    }
    assert_eq!(db.strings("SELECT kind FROM verification").await, ["otp"]);
}

async fn invalid_origins_fail_at_start_with_a_fix(db: TestDb) {
    for (cfg, needle) in [
        (
            FutureAuthConfig {
                app_url: "app.example".into(),
                ..config()
            },
            "FUTUREAUTH_APP_URL",
        ),
        (
            FutureAuthConfig {
                allowed_origins: vec!["https://a.example/path".into()],
                ..config()
            },
            "allowed_origins",
        ),
        (
            FutureAuthConfig {
                callback_urls: vec!["https://a.example/v?token=1".into()],
                ..config()
            },
            "callback_urls",
        ),
    ] {
        let auth = db.new_auth(cfg);
        let err = auth.ensure_tables().await.unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
        // A FutureAuth used without ensure_tables fails closed too.
        assert_eq!(
            auth.send_magic_link(EMAIL, "https://a.example/v")
                .await
                .unwrap_err()
                .code(),
            "invalid_config"
        );
    }
}

async fn phone_codes_sign_in_by_e164(db: TestDb) {
    let (auth, outbox) = db.auth(config()).await;
    auth.send_otp(OtpChannel::Phone, "+1 (555) 123-4567")
        .await
        .unwrap();
    let message = outbox.latest_for("+15551234567").unwrap();
    assert_eq!(message.channel, futureauth::delivery::Channel::Sms);
    let (user, _) = auth
        .verify_otp("+1 555 123 4567", &message.code, None, None)
        .await
        .unwrap();
    assert_eq!(user.phone_number.as_deref(), Some("+15551234567"));
    assert!(user.phone_number_verified);
    assert_eq!(
        auth.get_user_by_phone("+15551234567")
            .await
            .unwrap()
            .unwrap()
            .id,
        user.id
    );
}

async fn bad_identifiers_are_refused_and_write_nothing(db: TestDb) {
    let (auth, outbox) = db.auth(config()).await;
    assert_eq!(
        auth.send_otp(OtpChannel::Email, "nope")
            .await
            .unwrap_err()
            .code(),
        "invalid_email"
    );
    assert_eq!(
        auth.send_otp(OtpChannel::Phone, "5551234567")
            .await
            .unwrap_err()
            .code(),
        "invalid_phone"
    );
    assert_eq!(
        auth.send_magic_link("a@", "https://app.example/")
            .await
            .unwrap_err()
            .code(),
        "invalid_email"
    );
    assert!(outbox.messages().is_empty());
    assert_eq!(db.count("verification").await, 0);
    assert_eq!(db.count("futureauth_rate_limit").await, 0);
}

async fn one_person_is_one_user(db: TestDb) {
    let (auth, outbox) = db.auth(config()).await;
    auth.send_otp(OtpChannel::Email, " ADA@example.com ")
        .await
        .unwrap();
    let (first, _) = auth
        .verify_otp("Ada@Example.com", &code_for(&outbox, EMAIL), None, None)
        .await
        .unwrap();
    auth.send_otp(OtpChannel::Email, EMAIL).await.unwrap();
    let (second, _) = auth
        .verify_otp(EMAIL, &code_for(&outbox, EMAIL), None, None)
        .await
        .unwrap();
    assert_eq!(first.id, second.id);
    assert_eq!(db.count("\"user\"").await, 1);
}

async fn simultaneous_first_sign_ins_make_one_user(db: TestDb) {
    let (auth, outbox) = db.auth(config()).await;
    let auth = std::sync::Arc::new(auth);
    for i in 0..5 {
        let email = format!("new{i}@example.com");
        // A code and a link are both live, and used at the same moment.
        auth.send_otp(OtpChannel::Email, &email).await.unwrap();
        let code = code_for(&outbox, &email);
        auth.send_magic_link(&email, "https://app.example/cb")
            .await
            .unwrap();
        let token = code_for(&outbox, &email);
        let (a, b) = (auth.clone(), auth.clone());
        let e = email.clone();
        let (r1, r2) = tokio::join!(
            tokio::spawn(async move { a.verify_otp(&e, &code, None, None).await }),
            tokio::spawn(async move { b.verify_magic_link(&token, None, None).await }),
        );
        let (u1, _) = r1.unwrap().unwrap();
        let (u2, _) = r2.unwrap().unwrap();
        assert_eq!(u1.id, u2.id, "{email}");
    }
    assert_eq!(db.count("\"user\"").await, 5);
}

async fn sends_are_rate_limited_per_identifier(db: TestDb) {
    let mut cfg = config();
    cfg.rate_limits.send_per_identifier = RateLimit::new(2, Duration::from_secs(600));
    let (auth, _) = db.auth(cfg).await;
    auth.send_otp(OtpChannel::Email, EMAIL).await.unwrap();
    auth.send_magic_link(EMAIL, "https://app.example/cb")
        .await
        .unwrap();
    match auth.send_otp(OtpChannel::Email, EMAIL).await {
        Err(FutureAuthError::RateLimited { retry_after }) => {
            assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(600));
        }
        other => panic!("expected rate limit, got {other:?}"),
    }
    auth.send_otp(OtpChannel::Email, "other@example.com")
        .await
        .unwrap();
}

async fn sends_are_rate_limited_per_ip_and_ipv6_slash_64(db: TestDb) {
    let mut cfg = config();
    cfg.rate_limits.send_per_ip = RateLimit::new(2, Duration::from_secs(600));
    let (auth, _) = db.auth(cfg).await;
    let a: IpAddr = "2001:db8:0:1::1".parse().unwrap();
    let b: IpAddr = "2001:db8:0:1:ffff::2".parse().unwrap(); // same /64
    let c: IpAddr = "2001:db8:0:2::1".parse().unwrap();
    let from = |ip: IpAddr| futureauth::RequestContext {
        client_ip: Some(ip),
        ..Default::default()
    };
    auth.send_otp_with(OtpChannel::Email, "a@example.com", &from(a))
        .await
        .unwrap();
    auth.send_otp_with(OtpChannel::Email, "b@example.com", &from(b))
        .await
        .unwrap();
    let err = auth
        .send_otp_with(OtpChannel::Email, "c@example.com", &from(a))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "rate_limited");
    auth.send_otp_with(OtpChannel::Email, "c@example.com", &from(c))
        .await
        .unwrap();
}

async fn verifies_are_rate_limited_per_ip(db: TestDb) {
    let mut cfg = config();
    cfg.rate_limits.verify_per_ip = RateLimit::new(3, Duration::from_secs(600));
    let (auth, outbox) = db.auth(cfg).await;
    for i in 0..3 {
        let email = format!("u{i}@example.com");
        auth.send_otp(OtpChannel::Email, &email).await.unwrap();
        let _ = auth
            .verify_otp(&email, "zzzzzz", Some("198.51.100.4"), None)
            .await;
    }
    auth.send_otp(OtpChannel::Email, EMAIL).await.unwrap();
    let code = code_for(&outbox, EMAIL);
    let err = auth
        .verify_otp(EMAIL, &code, Some("198.51.100.4"), None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "rate_limited");
    auth.verify_otp(EMAIL, &code, Some("198.51.100.5"), None)
        .await
        .unwrap();
}

async fn failed_delivery_leaves_no_usable_code(db: TestDb) {
    let failing = FailingDelivery::default();
    let auth = db.auth_with(config(), failing.clone()).await;
    let err = auth.send_otp(OtpChannel::Email, EMAIL).await.unwrap_err();
    assert_eq!(err.code(), "delivery_failed");
    let err = auth
        .send_magic_link(EMAIL, "https://app.example/cb")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "delivery_failed");
    assert_eq!(db.count("verification").await, 0);
    let seen = failing.seen.lock().unwrap().clone();
    assert!(matches!(
        auth.verify_otp(EMAIL, &seen[0].code, None, None).await,
        Err(FutureAuthError::InvalidCode)
    ));
    assert!(auth
        .verify_magic_link(&seen[1].code, None, None)
        .await
        .is_err());
}

async fn sessions_slide_once_per_half_life(db: TestDb) {
    let (auth, outbox) = db.auth(config()).await;
    auth.send_otp(OtpChannel::Email, EMAIL).await.unwrap();
    let (_, session) = auth
        .verify_otp(EMAIL, &code_for(&outbox, EMAIL), None, None)
        .await
        .unwrap();
    let stored = db.session_expiry(&session.id).await;

    // Fresh session: reading it writes nothing.
    auth.get_session(&session.token).await.unwrap().unwrap();
    assert_eq!(db.session_expiry(&session.id).await, stored);

    // Past half its life: extended to a full TTL, once.
    let aged = Utc::now() + chrono::TimeDelta::days(10);
    db.set_expiry("session", "id", &session.id, aged).await;
    let (_, seen) = auth.get_session(&session.token).await.unwrap().unwrap();
    assert!(seen.expires_at - Utc::now() > chrono::TimeDelta::days(29));
    let extended = db.session_expiry(&session.id).await;
    assert!(extended > aged + chrono::TimeDelta::days(19));
    auth.get_session(&session.token).await.unwrap().unwrap();
    assert_eq!(
        db.session_expiry(&session.id).await,
        extended,
        "no second write"
    );
}

async fn sessions_end_at_their_max_lifetime(db: TestDb) {
    let cfg = FutureAuthConfig {
        session_ttl: Duration::from_secs(86_400),
        session_max_lifetime: Duration::from_secs(2 * 86_400),
        ..config()
    };
    let (auth, outbox) = db.auth(cfg).await;
    let sign_in = || async {
        auth.send_otp(OtpChannel::Email, EMAIL).await.unwrap();
        auth.verify_otp(EMAIL, &code_for(&outbox, EMAIL), None, None)
            .await
            .unwrap()
            .1
    };
    let old = sign_in().await;
    let aging = sign_in().await;
    let now = Utc::now();

    // Used all along, so its expiry is still ahead, but it was created past the limit.
    db.set_time(
        "session",
        "created_at",
        "id",
        &old.id,
        now - chrono::TimeDelta::days(2),
    )
    .await;
    db.set_expiry("session", "id", &old.id, now + chrono::TimeDelta::hours(20))
        .await;
    assert!(auth.get_session(&old.token).await.unwrap().is_none());
    assert!(auth
        .get_session_checked(&old.token)
        .await
        .unwrap()
        .is_none());

    // Sliding stops at created_at + max lifetime.
    let created = now - chrono::TimeDelta::hours(40);
    db.set_time("session", "created_at", "id", &aging.id, created)
        .await;
    db.set_expiry(
        "session",
        "id",
        &aging.id,
        now + chrono::TimeDelta::hours(1),
    )
    .await;
    let (_, seen, extended) = auth
        .get_session_checked(&aging.token)
        .await
        .unwrap()
        .unwrap();
    assert!(extended);
    let end = created + chrono::TimeDelta::days(2);
    let stored = db.session_expiry(&aging.id).await;
    assert!((stored - end).num_seconds().abs() <= 1, "{stored} vs {end}");
    assert!((seen.expires_at - end).num_seconds().abs() <= 1);
}

async fn expired_and_revoked_sessions_never_authenticate(db: TestDb) {
    let (auth, outbox) = db.auth(config()).await;
    let mut tokens = vec![];
    for _ in 0..3 {
        auth.send_otp(OtpChannel::Email, EMAIL).await.unwrap();
        let (_, s) = auth
            .verify_otp(EMAIL, &code_for(&outbox, EMAIL), None, None)
            .await
            .unwrap();
        tokens.push(s);
    }
    db.set_expiry(
        "session",
        "id",
        &tokens[0].id,
        Utc::now() - chrono::TimeDelta::seconds(1),
    )
    .await;
    assert!(
        auth.get_session(&tokens[0].token).await.unwrap().is_none(),
        "expired"
    );
    let user = auth.get_session(&tokens[1].token).await.unwrap().unwrap().0;
    assert_eq!(auth.list_sessions(&user.id).await.unwrap().len(), 2);
    assert!(auth
        .revoke_user_session(&user.id, &tokens[1].id)
        .await
        .unwrap());
    assert!(
        auth.get_session(&tokens[1].token).await.unwrap().is_none(),
        "revoked by id"
    );
    let report = auth.cleanup_expired().await.unwrap();
    assert_eq!(report.sessions, 1, "the expired session is cleaned up");
    assert_eq!(auth.revoke_all_sessions(&user.id).await.unwrap(), 1);
    assert!(
        auth.get_session(&tokens[2].token).await.unwrap().is_none(),
        "revoked everywhere"
    );
    for junk in ["", "x", &"a".repeat(10_000)] {
        assert!(auth.get_session(junk).await.unwrap().is_none());
    }
}

async fn users_can_be_looked_up_and_updated(db: TestDb) {
    let (auth, outbox) = db.auth(config()).await;
    auth.send_otp(OtpChannel::Email, EMAIL).await.unwrap();
    let (user, _) = auth
        .verify_otp(EMAIL, &code_for(&outbox, EMAIL), None, None)
        .await
        .unwrap();
    assert_eq!(auth.get_user(&user.id).await.unwrap().unwrap(), user);
    assert_eq!(
        auth.get_user_by_email(" ADA@example.com")
            .await
            .unwrap()
            .unwrap()
            .id,
        user.id
    );
    assert!(auth
        .get_user_by_email("nobody@example.com")
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        auth.update_user_name(&user.id, "Ada").await.unwrap().name,
        "Ada"
    );
    let u = auth
        .set_user_metadata(&user.id, serde_json::json!({"a": 1, "n": {"x": 1}}))
        .await
        .unwrap();
    assert_eq!(u.metadata, serde_json::json!({"a": 1, "n": {"x": 1}}));
    let u = auth
        .merge_user_metadata(&user.id, serde_json::json!({"b": 2, "n": {"y": 2}}))
        .await
        .unwrap();
    assert_eq!(
        u.metadata,
        serde_json::json!({"a": 1, "b": 2, "n": {"y": 2}}),
        "shallow merge"
    );
    assert!(matches!(
        auth.update_user_name("missing", "x").await,
        Err(FutureAuthError::UserNotFound)
    ));
}

async fn ensure_tables_is_idempotent(db: TestDb) {
    let (auth, outbox) = db.auth(config()).await;
    auth.send_otp(OtpChannel::Email, EMAIL).await.unwrap();
    let (_, session) = auth
        .verify_otp(EMAIL, &code_for(&outbox, EMAIL), None, None)
        .await
        .unwrap();
    auth.ensure_tables().await.unwrap();
    auth.ensure_tables().await.unwrap();
    assert!(auth.get_session(&session.token).await.unwrap().is_some());
}

async fn ensure_tables_runs_from_several_instances_at_once(db: TestDb) {
    // Several app instances starting together on a fresh database.
    let auths: Vec<_> = futures::future::join_all((0..4).map(|_| {
        let db = db.clone();
        async move {
            match &db {
                TestDb::Postgres { pool, .. } => {
                    futureauth::FutureAuth::new(pool.clone(), config())
                }
                TestDb::Sqlite { pool, .. } => futureauth::FutureAuth::new(pool.clone(), config()),
            }
        }
    }))
    .await;
    let results = futures::future::join_all(auths.iter().map(|a| a.ensure_tables())).await;
    for r in results {
        r.unwrap();
    }
    assert_eq!(db.count("session").await, 0);
}

async fn cleanup_removes_expired_rows(db: TestDb) {
    let (auth, _) = db.auth(config()).await;
    auth.send_otp(OtpChannel::Email, EMAIL).await.unwrap();
    db.set_expiry(
        "verification",
        "identifier",
        EMAIL,
        Utc::now() - chrono::TimeDelta::seconds(1),
    )
    .await;
    let report = auth.cleanup_expired().await.unwrap();
    assert_eq!(report.verifications, 1);
    assert_eq!(db.count("verification").await, 0);
}

async fn expired_rows_go_away_without_cleanup_expired(db: TestDb) {
    let (auth, outbox) = db.auth(config()).await;
    auth.send_otp(OtpChannel::Email, EMAIL).await.unwrap();
    let (_, session) = auth
        .verify_otp(EMAIL, &code_for(&outbox, EMAIL), None, None)
        .await
        .unwrap();
    auth.send_otp(OtpChannel::Email, EMAIL).await.unwrap();
    let past = Utc::now() - chrono::TimeDelta::seconds(5);
    db.set_expiry("session", "id", &session.id, past).await;
    db.set_expiry("verification", "identifier", EMAIL, past)
        .await;
    db.exec("UPDATE futureauth_rate_limit SET window_end = 0")
        .await;

    // Another instance starts (or this one's interval passes) and serves one sign-in
    // request: the expired rows are gone, and nobody called cleanup_expired.
    let (other, _) = db.auth(config()).await;
    other
        .send_otp(OtpChannel::Email, "grace@example.com")
        .await
        .unwrap();
    assert_eq!(db.count("session").await, 0, "expired session removed");
    assert_eq!(
        db.strings("SELECT identifier FROM verification").await,
        ["grace@example.com"],
        "expired code removed"
    );
    assert_eq!(
        db.count("futureauth_rate_limit WHERE window_end = 0").await,
        0,
        "stale counters removed"
    );
}

async fn a_custom_delivery_needs_a_code_key(db: TestDb) {
    // Without a shared key, codes would be hashed with a random key per process and fail
    // on the next instance or after a restart.
    let keyless = FutureAuthConfig {
        secret_key: String::new(),
        ..config()
    };
    let err = db
        .new_auth(keyless.clone())
        .with_delivery(FailingDelivery::default())
        .ensure_tables()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("FUTUREAUTH_CODE_SECRET"), "{err}");

    // With code_secret, a code sent by one instance verifies on another.
    let keyed = FutureAuthConfig {
        code_secret: "a long random string shared by every instance".into(),
        ..keyless.clone()
    };
    let outbox = DevOutbox::quiet();
    let sender = db.auth_with(keyed.clone(), Recorder(outbox.clone())).await;
    let verifier = db.auth_with(keyed, Recorder(DevOutbox::quiet())).await;
    sender.send_otp(OtpChannel::Email, EMAIL).await.unwrap();
    verifier
        .verify_otp(EMAIL, &code_for(&outbox, EMAIL), None, None)
        .await
        .unwrap();

    // The dev outbox declares itself dev-only: it may run with no key (the demo does).
    db.auth(keyless).await;
}

/// A custom delivery (not dev-only) that keeps messages in a dev outbox.
struct Recorder(DevOutbox);

#[futureauth::async_trait]
impl Delivery for Recorder {
    async fn deliver(&self, message: &Message) -> Result<(), DeliveryError> {
        self.0.deliver(message).await
    }
}

async fn nul_bytes_never_reach_the_database(db: TestDb) {
    let (auth, outbox) = db.auth(config()).await;
    auth.send_otp(OtpChannel::Email, EMAIL).await.unwrap();
    let (user, session) = auth
        .verify_otp(
            EMAIL,
            &code_for(&outbox, EMAIL),
            Some("203.0.113.7\0"),
            Some("Mozilla/5.0\0\r\nX-Evil: 1\u{7f}"),
        )
        .await
        .unwrap();
    assert_eq!(session.user_agent.as_deref(), Some("Mozilla/5.0X-Evil: 1"));
    assert_eq!(session.ip_address.as_deref(), Some("203.0.113.7"));
    let listed = auth.list_sessions(&user.id).await.unwrap();
    assert_eq!(listed[0].user_agent, session.user_agent);

    let invalid = |r: Result<(), FutureAuthError>| {
        let err = r.unwrap_err();
        assert!(matches!(err, FutureAuthError::InvalidInput(_)), "{err:?}");
    };
    invalid(auth.revoke_user_session(&user.id, "a\0b").await.map(drop));
    invalid(
        auth.revoke_user_session("a\0b", &session.id)
            .await
            .map(drop),
    );
    invalid(auth.revoke_all_sessions("\0").await.map(drop));
    invalid(auth.list_sessions("\0").await.map(drop));
    invalid(auth.get_user("a\0").await.map(drop));
    invalid(auth.update_user_name(&user.id, "Ada\0").await.map(drop));
    invalid(
        auth.set_user_metadata(&user.id, serde_json::json!({"a": ["\u{0}"]}))
            .await
            .map(drop),
    );
    invalid(
        auth.merge_user_metadata(&user.id, serde_json::json!({"k\u{0}": 1}))
            .await
            .map(drop),
    );
    for junk in ["a\0", "\0"] {
        assert!(auth.get_session(junk).await.unwrap().is_none());
        auth.revoke_session(junk).await.unwrap();
        assert!(auth.verify_magic_link(junk, None, None).await.is_err());
        assert!(auth.get_user_by_email(junk).await.unwrap().is_none());
        assert!(auth.get_user_by_phone(junk).await.unwrap().is_none());
        assert_eq!(
            auth.verify_otp(EMAIL, junk, None, None)
                .await
                .unwrap_err()
                .code(),
            "invalid_code"
        );
    }
    assert!(auth.get_session(&session.token).await.unwrap().is_some());
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Lock-out: an attacker who knows the address sends codes to it from other networks and
/// guesses wrong codes with and without bindings of their own. The code the victim asked
/// for is neither replaced nor spent, and the right code signs in.
async fn a_bound_code_survives_other_clients_sends_and_guesses(db: TestDb) {
    let mut cfg = config();
    cfg.rate_limits.failed_verify_per_identifier = RateLimit::new(3, Duration::from_secs(3600));
    let (auth, outbox) = db.auth(cfg).await;
    let victim = OtpBinding::generate();
    auth.send_otp_bound(OtpChannel::Email, EMAIL, Some(ip("198.51.100.7")), &victim)
        .await
        .unwrap();
    let code = code_for(&outbox, EMAIL);

    for i in 0..4 {
        let attacker = OtpBinding::generate();
        let from = ip(&format!("203.0.113.{i}"));
        auth.send_otp_bound(OtpChannel::Email, EMAIL, Some(from), &attacker)
            .await
            .unwrap();
        for _ in 0..5 {
            let _ = auth
                .verify_otp_bound(EMAIL, &wrong(&code), &attacker, None, None)
                .await;
        }
        // A forged binding finds no code of the victim to spend.
        let _ = auth
            .verify_otp_bound(EMAIL, &wrong(&code), &OtpBinding::generate(), None, None)
            .await;
    }
    auth.send_otp(OtpChannel::Email, EMAIL).await.unwrap();
    for _ in 0..5 {
        let _ = auth.verify_otp(EMAIL, &wrong(&code), None, None).await;
    }
    let unbound = auth.verify_otp(EMAIL, &code, None, None).await.unwrap_err();
    assert!(
        matches!(unbound, FutureAuthError::RateLimited { .. }),
        "the unbound path is throttled: {unbound:?}"
    );

    let (user, _) = auth
        .verify_otp_bound(EMAIL, &code, &victim, Some("198.51.100.7"), None)
        .await
        .expect("the victim's own code still signs in");
    assert_eq!(user.email.as_deref(), Some(EMAIL));
}

/// The sign-in resets the unbound failure count: NIST's ceiling is on consecutive failures.
async fn a_sign_in_resets_the_unbound_failure_count(db: TestDb) {
    let mut cfg = config();
    cfg.rate_limits.failed_verify_per_identifier = RateLimit::new(3, Duration::from_secs(3600));
    let (auth, outbox) = db.auth(cfg).await;
    auth.send_otp(OtpChannel::Email, EMAIL).await.unwrap();
    let code = code_for(&outbox, EMAIL);
    for _ in 0..2 {
        let _ = auth.verify_otp(EMAIL, &wrong(&code), None, None).await;
    }
    auth.verify_otp(EMAIL, &code, None, None).await.unwrap();
    auth.send_otp(OtpChannel::Email, EMAIL).await.unwrap();
    let code = code_for(&outbox, EMAIL);
    for _ in 0..2 {
        let err = auth
            .verify_otp(EMAIL, &wrong(&code), None, None)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_code");
    }
    auth.verify_otp(EMAIL, &code, None, None).await.unwrap();
}

/// Brute force stays bounded on the bound path: a binding's code dies after
/// `max_otp_attempts` wrong guesses, and a resend under the same binding replaces it.
async fn a_bound_code_dies_after_max_attempts(db: TestDb) {
    let (auth, outbox) = db.auth(config()).await;
    let binding = OtpBinding::generate();
    auth.send_otp_bound(OtpChannel::Email, EMAIL, None, &binding)
        .await
        .unwrap();
    let first = code_for(&outbox, EMAIL);
    for attempt in 1..=5 {
        let err = auth
            .verify_otp_bound(EMAIL, &wrong(&first), &binding, None, None)
            .await
            .unwrap_err();
        let expected = if attempt < 5 {
            "invalid_code"
        } else {
            "too_many_attempts"
        };
        assert_eq!(err.code(), expected, "attempt {attempt}");
    }
    let err = auth
        .verify_otp_bound(EMAIL, &first, &binding, None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, FutureAuthError::TooManyAttempts), "{err:?}");
    // The unbound path cannot reach a bound code either.
    let err = auth
        .verify_otp(EMAIL, &first, None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, FutureAuthError::InvalidCode), "{err:?}");

    // Resend: same binding, one row, a fresh code with fresh attempts.
    let second = loop {
        auth.send_otp_bound(OtpChannel::Email, EMAIL, None, &binding)
            .await
            .unwrap();
        let code = code_for(&outbox, EMAIL);
        if code != first {
            break code;
        }
    };
    assert_eq!(db.count("verification").await, 1);
    auth.verify_otp_bound(EMAIL, &second, &binding, None, None)
        .await
        .unwrap();
}

/// A request refused for its own network costs the address nothing: per-IP limits are
/// counted before per-address ones, for sends and for verifies.
async fn per_ip_limits_are_counted_before_the_address(db: TestDb) {
    let mut cfg = config();
    cfg.rate_limits.send_per_ip = RateLimit::new(1, Duration::from_secs(900));
    cfg.rate_limits.send_per_identifier = RateLimit::new(2, Duration::from_secs(3600));
    cfg.rate_limits.verify_per_ip = RateLimit::new(1, Duration::from_secs(900));
    cfg.rate_limits.failed_verify_per_identifier = RateLimit::new(2, Duration::from_secs(3600));
    let (auth, outbox) = db.auth(cfg).await;
    let attacker = ip("203.0.113.9");
    auth.send_otp_from(OtpChannel::Email, EMAIL, Some(attacker))
        .await
        .unwrap();
    for _ in 0..5 {
        let err = auth
            .send_otp_from(OtpChannel::Email, EMAIL, Some(attacker))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "rate_limited");
    }
    auth.send_otp_from(OtpChannel::Email, EMAIL, Some(ip("198.51.100.7")))
        .await
        .expect("refused sends did not use the address's budget");
    let code = code_for(&outbox, EMAIL);

    let _ = auth
        .verify_otp(EMAIL, &wrong(&code), Some("203.0.113.9"), None)
        .await;
    for _ in 0..5 {
        let err = auth
            .verify_otp(EMAIL, &wrong(&code), Some("203.0.113.9"), None)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "rate_limited");
    }
    auth.verify_otp(EMAIL, &code, Some("198.51.100.7"), None)
        .await
        .expect("refused verifies did not use the address's failure budget");
}

/// Sends to one mailbox are throttled per client network (`ada+1@x` and `ada+2@x` are one
/// mailbox), other networks are not held back, and the ceiling counts everyone.
async fn sends_to_one_mailbox_share_the_throttle_and_ceiling(db: TestDb) {
    let mut cfg = config();
    cfg.rate_limits.send_per_identifier = RateLimit::new(4, Duration::from_secs(3600));
    let (auth, _) = db.auth(cfg).await;
    let send = |to: &'static str, from: &'static str| {
        let auth = &auth;
        async move {
            auth.send_otp_from(OtpChannel::Email, to, Some(ip(from)))
                .await
        }
    };
    send("ada+1@example.com", "198.51.100.7").await.unwrap();
    let err = send("ada+2@example.com", "198.51.100.7").await.unwrap_err();
    assert_eq!(err.code(), "rate_limited", "same mailbox, same client");
    send("bob@example.com", "198.51.100.7")
        .await
        .expect("another mailbox is not throttled");
    send("ada+3@example.com", "203.0.113.1")
        .await
        .expect("another client is not throttled");
    // IPv6: the throttle counts the /48, so hopping /64s gains nothing.
    send("ada@example.com", "2001:db8:1:1::1").await.unwrap();
    let err = send("ada@example.com", "2001:db8:1:2::1")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "rate_limited", "same /48");
    send("ada+4@example.com", "203.0.113.2").await.unwrap();
    // The ceiling (4) is reached; everybody waits for the window.
    let err = send("ada+5@example.com", "203.0.113.3").await.unwrap_err();
    assert_eq!(err.code(), "rate_limited", "inbox-flood ceiling");
}

/// IPv6 sends are limited per /48 as well as per /64.
async fn sends_are_rate_limited_per_ipv6_slash_48(db: TestDb) {
    let mut cfg = config();
    cfg.rate_limits.send_per_ipv6_48 = RateLimit::new(2, Duration::from_secs(900));
    let (auth, _) = db.auth(cfg).await;
    for (i, to) in ["a@example.com", "b@example.com"].iter().enumerate() {
        let from = ip(&format!("2001:db8:7:{i}::1"));
        auth.send_otp_from(OtpChannel::Email, to, Some(from))
            .await
            .unwrap();
    }
    let err = auth
        .send_otp_from(
            OtpChannel::Email,
            "c@example.com",
            Some(ip("2001:db8:7:ff::1")),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "rate_limited");
    auth.send_otp_from(
        OtpChannel::Email,
        "c@example.com",
        Some(ip("2001:db8:8::1")),
    )
    .await
    .unwrap();
}

/// Magic links do not replace each other, so a link somebody else requests never voids
/// the one in the person's inbox.
async fn a_new_magic_link_does_not_void_the_last_one(db: TestDb) {
    let (auth, outbox) = db.auth(config()).await;
    auth.send_magic_link(EMAIL, "https://app.example/cb")
        .await
        .unwrap();
    let first = code_for(&outbox, EMAIL);
    auth.send_magic_link(EMAIL, "https://app.example/cb")
        .await
        .unwrap();
    auth.verify_magic_link(&first, None, None).await.unwrap();
}

/// Tables made by this crate before codes were bound (unique key `(identifier, kind)`) are
/// upgraded in place, twice over, keeping live links; afterwards two clients' codes for
/// one address live side by side.
async fn upgrades_tables_made_before_codes_were_bound(db: TestDb) {
    const TOKEN: &str = "pre-binding-magic-token-0123456789abcdefgh";
    let hash = hex::encode(Sha256::digest(TOKEN.as_bytes()));
    let insert = "INSERT INTO verification (id, identifier, code_hash, expires_at, attempts, created_at, kind) \
                  VALUES ('v1', $1, $2, $3, 0, $4, 'magic_link')";
    let expires = Utc::now() + chrono::TimeDelta::minutes(10);
    match &db {
        TestDb::Postgres { pool, .. } => {
            let old = include_str!("fixtures/pre_binding_postgres.sql");
            sqlx::raw_sql(old).execute(pool).await.unwrap();
            sqlx::query(insert)
                .bind(EMAIL)
                .bind(&hash)
                .bind(expires)
                .bind(Utc::now())
                .execute(pool)
                .await
                .unwrap();
        }
        TestDb::Sqlite { pool, .. } => {
            let old = include_str!("fixtures/pre_binding_sqlite.sql");
            sqlx::raw_sql(old).execute(pool).await.unwrap();
            sqlx::query(insert)
                .bind(EMAIL)
                .bind(&hash)
                .bind(expires.timestamp_millis())
                .bind(Utc::now().timestamp_millis())
                .execute(pool)
                .await
                .unwrap();
        }
    }
    let (auth, outbox) = db.auth(config()).await;
    auth.ensure_tables().await.unwrap();

    let (a, b) = (OtpBinding::generate(), OtpBinding::generate());
    auth.send_otp_bound(OtpChannel::Email, EMAIL, None, &a)
        .await
        .unwrap();
    let code_a = code_for(&outbox, EMAIL);
    auth.send_otp_bound(OtpChannel::Email, EMAIL, None, &b)
        .await
        .unwrap();
    let code_b = code_for(&outbox, EMAIL);
    assert_eq!(db.count("verification").await, 3);
    auth.ensure_tables().await.unwrap();
    auth.verify_otp_bound(EMAIL, &code_a, &a, None, None)
        .await
        .unwrap();
    auth.verify_otp_bound(EMAIL, &code_b, &b, None, None)
        .await
        .unwrap();
    auth.verify_magic_link(TOKEN, None, None)
        .await
        .expect("a link from before the upgrade still works");
}

/// The bound path keeps the atomic guarantees: concurrent wrong guesses with the binding
/// count exactly `max_otp_attempts`, and the right code used concurrently yields one session.
async fn bound_codes_hold_under_concurrent_requests(db: TestDb) {
    let (auth, outbox) = db.auth(config()).await;
    let auth = std::sync::Arc::new(auth);
    let binding = OtpBinding::generate();
    auth.send_otp_bound(OtpChannel::Email, EMAIL, None, &binding)
        .await
        .unwrap();
    let code = code_for(&outbox, EMAIL);
    let guesses = (0..20).map(|_| {
        let (auth, binding, bad) = (auth.clone(), binding.clone(), wrong(&code));
        tokio::spawn(async move {
            auth.verify_otp_bound(EMAIL, &bad, &binding, None, None)
                .await
        })
    });
    for result in futures::future::join_all(guesses).await {
        assert!(result.unwrap().is_err());
    }
    assert_eq!(db.attempts(EMAIL).await, 5, "exactly the limit was counted");

    let fresh = OtpBinding::generate();
    auth.send_otp_bound(OtpChannel::Email, "bob@example.com", None, &fresh)
        .await
        .unwrap();
    let code = code_for(&outbox, "bob@example.com");
    let uses = (0..8).map(|_| {
        let (auth, fresh, code) = (auth.clone(), fresh.clone(), code.clone());
        tokio::spawn(async move {
            auth.verify_otp_bound("bob@example.com", &code, &fresh, None, None)
                .await
        })
    });
    let wins = futures::future::join_all(uses)
        .await
        .into_iter()
        .filter(|r| r.as_ref().unwrap().is_ok())
        .count();
    assert_eq!(wins, 1);
}

/// A send whose delivery failed does not hold its client back: the person may try again at
/// once, instead of waiting out the resend throttle for a code that never arrived.
async fn a_failed_delivery_refunds_the_resend_throttle(db: TestDb) {
    let failing = db.auth_with(config(), FailingDelivery::default()).await;
    let from = Some(ip("198.51.100.7"));
    for attempt in 1..=3 {
        let err = failing
            .send_otp_from(OtpChannel::Email, EMAIL, from)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "delivery_failed", "attempt {attempt}");
    }
    let (working, outbox) = db.auth(config()).await;
    working
        .send_otp_from(OtpChannel::Email, EMAIL, from)
        .await
        .expect("the service is back: the send goes through");
    assert!(!code_for(&outbox, EMAIL).is_empty());
    let err = working
        .send_otp_from(OtpChannel::Email, EMAIL, from)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "rate_limited", "a delivered send is throttled");
}

/// A `verification` table from before links were bound to browsers (no `requester_hash`)
/// gains the column in place on both backends, twice over, keeping its live links; after
/// that a link is bound to the browser that asked, and with `magic_link_same_browser` only
/// that browser's binding uses it.
async fn links_bound_to_the_asking_browser_after_an_in_place_upgrade(db: TestDb) {
    {
        let (auth, _) = db.auth(config()).await;
        auth.ensure_tables().await.unwrap();
    }
    // (SQLite drops no indexed column: its index first.)
    let drop = [
        "DROP INDEX IF EXISTS idx_verification_requester_hash",
        "ALTER TABLE verification DROP COLUMN requester_hash",
    ];
    for statement in drop {
        match &db {
            TestDb::Postgres { pool, .. } => {
                sqlx::query(statement).execute(pool).await.unwrap();
            }
            TestDb::Sqlite { pool, .. } => {
                sqlx::query(statement).execute(pool).await.unwrap();
            }
        }
    }
    let same_browser = FutureAuthConfig {
        magic_link_same_browser: true,
        ..config()
    };
    let (auth, outbox) = db.auth(same_browser).await;
    auth.ensure_tables().await.unwrap();
    auth.ensure_tables().await.unwrap();

    let asker = futureauth::RequestContext {
        binding: Some(OtpBinding::generate()),
        ..Default::default()
    };
    auth.send_magic_link_with(EMAIL, "https://app.example/cb", &asker)
        .await
        .unwrap();
    let token = code_for(&outbox, EMAIL);
    let other = futureauth::RequestContext {
        binding: Some(OtpBinding::generate()),
        ..Default::default()
    };
    for stranger in [&other, &futureauth::RequestContext::default()] {
        assert!(matches!(
            auth.verify_magic_link_with(&token, stranger).await,
            Err(FutureAuthError::MagicLinkOtherBrowser)
        ));
    }
    auth.verify_magic_link_with(&token, &asker).await.unwrap();
    assert!(matches!(
        auth.verify_magic_link_with(&token, &asker).await,
        Err(FutureAuthError::InvalidMagicLink)
    ));
}

/// Approving a link from another device is race-free: of concurrent approvals with the
/// right number one wins, and of concurrent polls of the asking browser one is signed in.
async fn a_link_is_approved_once_and_claimed_once(db: TestDb) {
    let (auth, outbox) = db.auth(config()).await;
    let auth = std::sync::Arc::new(auth);
    let asker = futureauth::RequestContext {
        binding: Some(OtpBinding::generate()),
        ..Default::default()
    };
    auth.send_magic_link_with(EMAIL, "https://app.example/cb", &asker)
        .await
        .unwrap();
    let token = code_for(&outbox, EMAIL);
    let futureauth::LinkStatus::Waiting { match_number } =
        auth.magic_link_status(&asker).await.unwrap()
    else {
        panic!("a link waits");
    };
    let opener = futureauth::RequestContext::default();
    let seen = auth
        .magic_link_request(&token, &opener)
        .await
        .unwrap()
        .expect("a live link");
    assert!(seen.approvable && seen.sign_in_here && !seen.same_browser);
    let approvals = (0..8).map(|_| {
        let (auth, token, number) = (auth.clone(), token.clone(), match_number.clone());
        tokio::spawn(async move {
            auth.approve_magic_link(&token, &number, &futureauth::RequestContext::default())
                .await
        })
    });
    let approved = futures::future::join_all(approvals)
        .await
        .into_iter()
        .filter(|r| r.as_ref().unwrap().is_ok())
        .count();
    assert_eq!(approved, 1);
    assert!(auth
        .magic_link_request(&token, &opener)
        .await
        .unwrap()
        .is_none());
    let polls = (0..8).map(|_| {
        let (auth, asker) = (auth.clone(), asker.clone());
        tokio::spawn(async move { auth.magic_link_status(&asker).await })
    });
    let signed_in: Vec<_> = futures::future::join_all(polls)
        .await
        .into_iter()
        .filter_map(|r| match r.unwrap().unwrap() {
            futureauth::LinkStatus::SignedIn(signed_in) => Some(*signed_in),
            _ => None,
        })
        .collect();
    assert_eq!(signed_in.len(), 1);
    let (user, session) = &signed_in[0];
    assert_eq!(user.email.as_deref(), Some(EMAIL));
    assert!(auth.get_session(&session.token).await.unwrap().is_some());
}

both_backends!(
    a_link_is_approved_once_and_claimed_once,
    links_bound_to_the_asking_browser_after_an_in_place_upgrade,
    email_code_signs_in,
    codes_are_single_use,
    codes_expire,
    a_new_code_replaces_the_old_one,
    codes_die_after_five_wrong_guesses,
    concurrent_wrong_guesses_never_exceed_the_limit,
    concurrent_guesses_never_pass_the_failure_ceiling,
    a_code_used_concurrently_yields_one_session,
    a_link_used_concurrently_yields_one_session,
    failures_are_limited_per_identifier_across_codes,
    secrets_are_stored_only_as_hashes,
    the_code_hash_key_is_not_in_the_database,
    magic_links_sign_in_once,
    magic_links_expire,
    magic_link_callbacks_are_checked,
    magic_links_without_configured_origins_fail_with_a_fix,
    invalid_origins_fail_at_start_with_a_fix,
    phone_codes_sign_in_by_e164,
    bad_identifiers_are_refused_and_write_nothing,
    one_person_is_one_user,
    simultaneous_first_sign_ins_make_one_user,
    sends_are_rate_limited_per_identifier,
    sends_are_rate_limited_per_ip_and_ipv6_slash_64,
    verifies_are_rate_limited_per_ip,
    failed_delivery_leaves_no_usable_code,
    sessions_slide_once_per_half_life,
    sessions_end_at_their_max_lifetime,
    expired_and_revoked_sessions_never_authenticate,
    users_can_be_looked_up_and_updated,
    ensure_tables_is_idempotent,
    ensure_tables_runs_from_several_instances_at_once,
    cleanup_removes_expired_rows,
    expired_rows_go_away_without_cleanup_expired,
    a_custom_delivery_needs_a_code_key,
    nul_bytes_never_reach_the_database,
    a_bound_code_survives_other_clients_sends_and_guesses,
    a_sign_in_resets_the_unbound_failure_count,
    a_bound_code_dies_after_max_attempts,
    per_ip_limits_are_counted_before_the_address,
    sends_to_one_mailbox_share_the_throttle_and_ceiling,
    sends_are_rate_limited_per_ipv6_slash_48,
    a_new_magic_link_does_not_void_the_last_one,
    upgrades_tables_made_before_codes_were_bound,
    bound_codes_hold_under_concurrent_requests,
    a_failed_delivery_refunds_the_resend_throttle,
);

#[tokio::test]
async fn an_empty_secret_key_with_the_http_delivery_fails_at_start() {
    let db = TestDb::sqlite().await;
    let TestDb::Sqlite { pool, .. } = &db else {
        unreachable!()
    };
    let auth = futureauth::FutureAuth::new(pool.clone(), FutureAuthConfig::default());
    let err = auth.ensure_tables().await.unwrap_err();
    assert!(err.to_string().contains("FUTUREAUTH_SECRET_KEY"), "{err}");
    let bad = futureauth::FutureAuth::new(
        pool.clone(),
        FutureAuthConfig {
            otp_length: 4,
            ..config()
        },
    );
    assert!(bad
        .ensure_tables()
        .await
        .unwrap_err()
        .to_string()
        .contains("otp_length"));
    db.cleanup().await;
}
