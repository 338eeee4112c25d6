//! The real binary: admin CLI output and start-up configuration errors.

use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_futureauth-server"));
    for var in [
        "DATABASE_URL",
        "RESEND_API_KEY",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_FROM_NUMBER",
        "TWILIO_MESSAGING_SERVICE_SID",
        "FUTUREAUTH_ENV",
        "LISTEN_ADDR",
    ] {
        c.env_remove(var);
    }
    c.env("RUST_LOG", "error");
    c
}

fn temp_db() -> String {
    let path = std::env::temp_dir().join(format!(
        "fa_bin_{}_{:x}.db",
        std::process::id(),
        rand::random::<u64>()
    ));
    format!("sqlite://{}?mode=rwc", path.display())
}

#[test]
fn production_without_provider_keys_fails_at_start_with_a_helpful_message() {
    for (args, env) in [
        (vec!["--production"], None),
        (vec!["serve"], Some("production")),
    ] {
        let mut cmd = bin();
        cmd.args(&args)
            .env("DATABASE_URL", temp_db())
            .env("LISTEN_ADDR", "127.0.0.1:0");
        if let Some(e) = env {
            cmd.env("FUTUREAUTH_ENV", e);
        }
        let out = cmd.output().expect("run binary");
        assert!(!out.status.success(), "must not start");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("RESEND_API_KEY") && err.contains("TWILIO_ACCOUNT_SID"),
            "{err}"
        );
        assert!(err.contains("production"), "{err}");
    }
    // Only Resend configured in production: the message names what is still missing.
    let out = bin()
        .args(["--production"])
        .env("DATABASE_URL", temp_db())
        .env("RESEND_API_KEY", "re_x")
        .output()
        .expect("run binary");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("TWILIO_ACCOUNT_SID") && !err.contains("set RESEND_API_KEY"),
        "{err}"
    );
    // Half-configured Twilio is an error even in development.
    let out = bin()
        .env("DATABASE_URL", temp_db())
        .env("TWILIO_ACCOUNT_SID", "AC1")
        .output()
        .expect("run binary");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TWILIO_AUTH_TOKEN"));
}

#[test]
fn project_create_json_prints_exactly_the_id_and_key() {
    let db = temp_db();
    let out = bin()
        .args([
            "project",
            "create",
            "--name",
            "Acme",
            "--callback-url",
            "https://app.acme.test/cb",
            "--sms-prefix",
            "+1",
            "--json",
        ])
        .env("DATABASE_URL", &db)
        .output()
        .expect("run binary");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(
        stdout.starts_with("{\"project_id\": \"prj_")
            && stdout.contains("\", \"secret_key\": \"vx_sec_"),
        "{stdout}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let obj = v.as_object().unwrap();
    assert_eq!(obj.len(), 2);
    assert!(v["project_id"].as_str().unwrap().starts_with("prj_"));
    assert!(v["secret_key"].as_str().unwrap().starts_with("vx_sec_"));

    let out = bin()
        .args(["project", "list", "--json"])
        .env("DATABASE_URL", &db)
        .output()
        .unwrap();
    assert!(out.status.success());
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["name"], "Acme");
    assert_eq!(
        list[0]["allowed_origins"],
        serde_json::json!(["https://app.acme.test"])
    );
    assert_eq!(list[0]["sms_prefixes"], serde_json::json!(["+1"]));

    // Bad input is refused with a message naming the flag.
    let out = bin()
        .args([
            "project",
            "create",
            "--name",
            "X",
            "--callback-url",
            "ftp://nope",
        ])
        .env("DATABASE_URL", &db)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--callback-url"));
}
