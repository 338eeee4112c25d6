//! Test mode end to end: the futureauth 0.6 SDK against this server, with fake providers
//! that would record any message. A test destination receives nothing and signs in with the
//! project's fixed code; every other destination gets a real message and never accepts the
//! fixed code.

mod common;

use common::*;
use futureauth::{FutureAuth, FutureAuthConfig, OtpChannel};
use futureauth_server::service::test_mode::{code_for, enable, TestModeInput};
use serde_json::json;

const REVIEWER: &str = "review@example.com";
const FIXED: &str = "424242";

async fn sdk(server: &TestServer, key: &str) -> (FutureAuth, sqlx::SqlitePool) {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    let auth = FutureAuth::new(
        pool.clone(),
        FutureAuthConfig {
            api_url: server.server.url(),
            secret_key: key.to_owned(),
            project_name: "Acme".into(),
            ..Default::default()
        },
    );
    auth.ensure_tables().await.expect("tables");
    (auth, pool)
}

async fn test_destinations_sign_in_with_the_fixed_code_and_nothing_is_sent(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fakes = Fakes::accepting().await;
    let store = db.store().await;
    let (project_id, key) = acme(&store).await;
    let owner = owner_of(&store, &project_id).await;
    let input = TestModeInput {
        destinations: vec!["Review@Example.com".into(), "+12015550100".into()],
        code: FIXED.into(),
        allow_in_production: false,
    };
    enable(&store, &owner, &project_id, &input, false)
        .await
        .unwrap();
    let s = TestServer::start(&db, &config(&db, &fakes)).await;
    let (auth, _pool) = sdk(&s, &key).await;

    // The reviewer: no provider call, the fixed code signs in.
    auth.send_otp(OtpChannel::Email, REVIEWER).await.unwrap();
    auth.send_otp(OtpChannel::Phone, "+12015550100")
        .await
        .unwrap();
    let (user, _) = auth
        .verify_otp(REVIEWER, FIXED, Some("127.0.0.1"), None)
        .await
        .expect("the fixed code signs the test destination in");
    assert_eq!(user.email.as_deref(), Some(REVIEWER));
    auth.verify_otp("+12015550100", FIXED, Some("127.0.0.1"), None)
        .await
        .expect("the fixed code signs the test number in");

    // Anyone else: a real message, and the fixed code is just a wrong guess.
    auth.send_otp(OtpChannel::Email, "ada@example.com")
        .await
        .unwrap();
    let err = auth
        .verify_otp("ada@example.com", FIXED, Some("127.0.0.1"), None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_code");
    eventually(10, "ada's email reaches the fake Resend", || async {
        fakes.emails().await.len() == 1
    })
    .await;
    // Give the workers time to send anything else they (wrongly) would.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let emails = fakes.emails().await;
    assert_eq!(emails.len(), 1, "only ada's email is sent");
    let sent: serde_json::Value = serde_json::from_slice(&emails[0].body).unwrap();
    assert_eq!(sent["to"], json!(["ada@example.com"]));
    assert!(fakes.sms().await.is_empty(), "the test number gets no SMS");

    // The server's log shows the two test sends as `test`.
    let filter = futureauth_server::store::DeliveryFilter {
        status: Some("test".into()),
        ..Default::default()
    };
    let (tests, total) = s
        .store()
        .deliveries(&project_id, &filter, 10, 0)
        .await
        .unwrap();
    assert_eq!(total, 2, "{tests:?}");
}

async fn production_needs_a_confirmation(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let (project_id, _) = acme(&store).await;
    let owner = owner_of(&store, &project_id).await;
    let mut input = TestModeInput {
        destinations: vec![REVIEWER.into()],
        code: FIXED.into(),
        allow_in_production: false,
    };
    let refused = enable(&store, &owner, &project_id, &input, true)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("allow_in_production"),
        "{refused}"
    );
    assert!(
        store.test_mode(&project_id).await.unwrap().is_none(),
        "nothing saved"
    );
    input.allow_in_production = true;
    let on = enable(&store, &owner, &project_id, &input, true)
        .await
        .unwrap();
    assert_eq!(code_for(&on, REVIEWER, true), Some(FIXED));
}

backend_tests!(
    test_destinations_sign_in_with_the_fixed_code_and_nothing_is_sent,
    production_needs_a_confirmation,
);
