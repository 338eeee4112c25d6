//! The published `futureauth` 0.5.1 crate as a client, unchanged, against a project created
//! through the CLI code path. The SDK keeps its state in its own fresh Postgres database; the
//! server runs on each backend.

mod common;

use common::*;
use futureauth05::{FutureAuth, FutureAuthConfig, OtpChannel};
use serde_json::Value;
use sqlx::Connection;

/// A fresh Postgres database for the SDK's own tables.
async fn sdk_pool() -> sqlx::PgPool {
    let base = pg_base_url();
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("Postgres is required and unreachable at {base}: {e}"));
    let name = format!(
        "fa_sdk05_{}_{:x}",
        std::process::id(),
        rand::random::<u64>()
    );
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .expect("create database");
    let mut url = url::Url::parse(&base).expect("DATABASE_URL");
    url.set_path(&format!("/{name}"));
    sqlx::PgPool::connect(url.as_str())
        .await
        .expect("connect to the SDK database")
}

async fn futureauth_05_client_round_trip(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fakes = Fakes::accepting().await;
    let store = db.store().await;
    let (_, secret_key) = cli_create_project(
        &store,
        &[
            "--name",
            "Acme",
            "--callback-url",
            "https://app.acme.test/auth/magic",
        ],
    )
    .await;
    let s = TestServer::start(&db, &config(&db, &fakes)).await;

    let auth = FutureAuth::new(
        sdk_pool().await,
        FutureAuthConfig {
            api_url: s.server.url(),
            secret_key,
            project_name: "Name From The Client".into(),
            ..Default::default()
        },
    );
    auth.ensure_tables().await.expect("ensure_tables");

    auth.send_otp(OtpChannel::Email, "sdk@example.com")
        .await
        .expect("send_otp email");
    auth.send_otp(OtpChannel::Sms, "+12015550123")
        .await
        .expect("send_otp sms");
    auth.send_magic_link("link@example.com")
        .await
        .expect("send_magic_link");

    eventually(10, "two emails at the fake Resend", || async {
        fakes.emails().await.len() == 2
    })
    .await;
    eventually(10, "one SMS at the fake Twilio", || async {
        fakes.sms().await.len() == 1
    })
    .await;

    let emails: Vec<Value> = fakes
        .emails()
        .await
        .iter()
        .map(|r| serde_json::from_slice(&r.body).expect("json"))
        .collect();
    for e in &emails {
        for field in ["subject", "text", "html"] {
            let t = e[field].as_str().unwrap();
            assert!(
                t.contains("Acme") && !t.contains("Name From The Client"),
                "{field}: {t}"
            );
        }
    }

    // The emailed code signs the user in with the SDK.
    let otp = emails
        .iter()
        .find(|e| e["to"][0] == "sdk@example.com")
        .expect("otp email");
    let code = otp["subject"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(code.len(), 6);
    let (user, _) = auth
        .verify_otp("sdk@example.com", &code, None, None)
        .await
        .expect("verify emailed code");
    assert_eq!(user.email.as_deref(), Some("sdk@example.com"));

    // So does the SMS code.
    let sms = &fakes.sms().await[0];
    let form: std::collections::HashMap<String, String> = url::form_urlencoded::parse(&sms.body)
        .into_owned()
        .collect();
    assert_eq!(form["To"], "+12015550123");
    let sms_code = form["Body"].split_whitespace().next().unwrap().to_owned();
    auth.verify_otp("+12015550123", &sms_code, None, None)
        .await
        .expect("verify SMS code");

    // And the magic link, built from the project's callback URL.
    let link_email = emails
        .iter()
        .find(|e| e["to"][0] == "link@example.com")
        .expect("magic link email");
    let text = link_email["text"].as_str().unwrap();
    let start = text
        .find("https://app.acme.test/auth/magic?token=")
        .expect("link in the email");
    let link: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let token = link.split("token=").nth(1).unwrap();
    assert_eq!(token.len(), 48);
    let (user, _) = auth
        .verify_magic_link(token, None, None)
        .await
        .expect("verify magic link");
    assert_eq!(user.email.as_deref(), Some("link@example.com"));

    // Clean up the SDK's database.
    let name = auth
        .pool()
        .connect_options()
        .get_database()
        .unwrap_or_default()
        .to_owned();
    auth.pool().close().await;
    let mut conn = sqlx::PgConnection::connect(&pg_base_url()).await.unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();
}

backend_tests!(futureauth_05_client_round_trip);
