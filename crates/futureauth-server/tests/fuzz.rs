//! Property test: arbitrary JSON bodies, header values and path segments thrown at every
//! route of a real server over loopback, on SQLite and on Postgres. Whatever comes in, the
//! answer is never a 5xx (a panic caught by the panic layer would be a 500), and the workers
//! still deliver afterwards.
//!
//! Bounded: 200 requests per backend by default (a few seconds); raise with `PROPTEST_CASES`.

mod common;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{json, Map, Value};

/// Requests per backend unless `PROPTEST_CASES` says otherwise.
const DEFAULT_CASES: u32 = 200;

/// One request to throw at the server.
#[derive(Clone)]
struct Attack {
    method: reqwest::Method,
    path: String,
    authorization: Option<Vec<u8>>,
    idempotency_key: Option<Vec<u8>>,
    content_type: Option<Vec<u8>>,
    host: Option<Vec<u8>>,
    body: Vec<u8>,
}

/// Shown with the bytes as (lossy) text, so a failure is readable.
impl std::fmt::Debug for Attack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn text(b: &Option<Vec<u8>>) -> Option<std::borrow::Cow<'_, str>> {
            b.as_deref().map(String::from_utf8_lossy)
        }
        f.debug_struct("Attack")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("authorization", &text(&self.authorization))
            .field("idempotency_key", &text(&self.idempotency_key))
            .field("content_type", &text(&self.content_type))
            .field("host", &text(&self.host))
            .field("body", &String::from_utf8_lossy(&self.body))
            .finish()
    }
}

/// Placeholders replaced per server: its secret key and its port.
const KEY: &str = "{KEY}";
const PORT: &str = "{PORT}";

/// Bytes a header value may carry on the wire: visible ASCII, space, tab and obs-text.
fn header_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![8 => 0x20u8..0x7f, 1 => 0x80u8..=0xff, 1 => Just(b'\t')],
        0..max,
    )
}

fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        1 => Just("\0".to_owned()),
        1 => Just("a\0b".to_owned()),
        1 => (1usize..20_000).prop_map(|n| "a".repeat(n)),
        1 => Just("\u{feff}\u{202e}\u{ffff}".to_owned()),
        1 => Just("a1b2c3".to_owned()),
        1 => Just("tok_ABCdef-123456789_tok_ABCdef-123456789xy".to_owned()),
        1 => Just("user@example.com".to_owned()),
        1 => Just("+12015550123".to_owned()),
        1 => Just("+18765550123".to_owned()),
        1 => Just("https://app.acme.test/auth/magic?token=x".to_owned()),
        1 => Just("javascript:alert(1)".to_owned()),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        tricky_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(tricky_string(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Something shaped like a send, each field valid, arbitrary or missing.
fn send_like() -> impl Strategy<Value = Value> {
    let field = |valid: Vec<&'static str>| {
        let valid: Vec<Value> = valid.into_iter().map(Value::from).collect();
        prop_oneof![
            3 => prop::sample::select(valid).prop_map(Some),
            2 => json_value().prop_map(Some),
            1 => Just(None),
        ]
    };
    (
        field(vec!["email", "sms", "magic_link"]),
        field(vec![
            "user@example.com",
            "+12015550123",
            "+18765550123",
            "+15551234567",
        ]),
        field(vec![
            "a1b2c3",
            "tok_ABCdef-123456789_tok_ABCdef-123456789xy",
        ]),
        field(vec!["Acme"]),
        field(vec![
            "https://app.acme.test/cb",
            "http://localhost:3000/v?token=a",
        ]),
        field(vec![
            "https://app.acme.test/cb?token=tok_ABCdef-123456789_tok_ABCdef-123456789xy",
        ]),
    )
        .prop_map(|(channel, destination, code, name, callback, link)| {
            let mut m = Map::new();
            for (k, v) in [
                ("channel", channel),
                ("destination", destination),
                ("code", code),
                ("project_name", name),
                ("callback_url", callback),
                ("link", link),
            ] {
                if let Some(v) = v {
                    m.insert(k.to_owned(), v);
                }
            }
            Value::Object(m)
        })
}

/// A path segment: arbitrary text, percent-encoded byte by byte (so NUL, invalid UTF-8 and
/// `/` all arrive), or a well-formed message id.
fn segment() -> impl Strategy<Value = String> {
    let encoded = prop_oneof![
        3 => any::<String>().prop_map(|s| s.into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..40),
    ]
    .prop_map(|bytes| {
        bytes
            .iter()
            .map(|&b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    });
    prop_oneof![
        4 => encoded,
        1 => "msg_[a-z0-9]{24}",
        1 => Just("msg_%00".to_owned()),
    ]
}

fn path() -> impl Strategy<Value = String> {
    let fixed = prop::sample::select(vec![
        "/healthz",
        "/readyz",
        "/dev/outbox",
        "/api/v1/otp/send",
        "/api/v1/openapi.json",
        "/docs",
        "/llms.txt",
    ])
    .prop_map(str::to_owned);
    prop_oneof![
        6 => fixed,
        3 => segment().prop_map(|s| format!("/api/v1/messages/{s}")),
        1 => (segment(), segment()).prop_map(|(a, b)| format!("/{a}/{b}")),
        1 => segment().prop_map(|s| format!("/api/v1/otp/send/{s}")),
    ]
}

fn attack() -> impl Strategy<Value = Attack> {
    let method = prop_oneof![
        4 => Just(reqwest::Method::POST),
        4 => Just(reqwest::Method::GET),
        1 => Just(reqwest::Method::PUT),
        1 => Just(reqwest::Method::DELETE),
    ];
    let authorization = prop_oneof![
        5 => Just(Some(format!("Bearer {KEY}").into_bytes())),
        1 => Just(None),
        1 => header_bytes(300).prop_map(|b| Some([b"Bearer ".to_vec(), b].concat())),
        1 => header_bytes(300).prop_map(Some),
    ];
    let idempotency_key = prop_oneof![
        3 => Just(None),
        1 => "[!-~]{1,255}".prop_map(|s| Some(s.into_bytes())),
        1 => header_bytes(400).prop_map(Some),
    ];
    let content_type = prop_oneof![
        5 => Just(Some(b"application/json".to_vec())),
        1 => Just(None),
        1 => header_bytes(100).prop_map(Some),
    ];
    let host = prop_oneof![
        4 => Just(None),
        1 => Just(Some(format!("localhost:{PORT}").into_bytes())),
        1 => Just(Some(format!("evil.example:{PORT}").into_bytes())),
        1 => header_bytes(100).prop_map(Some),
    ];
    let body = prop_oneof![
        4 => send_like().prop_map(|v| v.to_string().into_bytes()),
        2 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..200),
        1 => Just(Vec::new()),
    ];
    (
        method,
        path(),
        authorization,
        idempotency_key,
        content_type,
        host,
        body,
    )
        .prop_map(
            |(method, path, authorization, idempotency_key, content_type, host, body)| Attack {
                method,
                path,
                authorization,
                idempotency_key,
                content_type,
                host,
                body,
            },
        )
}

fn header(raw: &[u8], key: &str, port: u16) -> Option<HeaderValue> {
    let text = String::from_utf8_lossy(raw);
    let bytes: Vec<u8> = if text.contains(KEY) || text.contains(PORT) {
        text.replace(KEY, key)
            .replace(PORT, &port.to_string())
            .into_bytes()
    } else {
        raw.to_vec()
    };
    // Values the HTTP client itself cannot send are not part of the test.
    HeaderValue::from_bytes(&bytes).ok()
}

async fn throw(s: &TestServer, key: &str, a: &Attack) -> Result<u16, reqwest::Error> {
    let port = s.server.addr.port();
    let mut req = s
        .http
        .request(a.method.clone(), s.url(&a.path))
        .body(a.body.clone());
    for (name, raw) in [
        ("authorization", &a.authorization),
        ("idempotency-key", &a.idempotency_key),
        ("content-type", &a.content_type),
        ("host", &a.host),
    ] {
        if let Some(v) = raw.as_deref().and_then(|r| header(r, key, port)) {
            req = req.header(HeaderName::from_static(name), v);
        }
    }
    Ok(req.send().await?.status().as_u16())
}

fn fuzz(backend: Backend) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (s, key) = rt.block_on(async {
        let db = TestDb::new(backend).await;
        let store = db.store().await;
        let (_, key) = acme(&store).await;
        // No provider keys: the dev outbox, so `/dev/outbox` is live too.
        let cfg = outbox_config(&db);
        (TestServer::start(&db, &cfg).await, key)
    });
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&attack(), |a| {
        match rt.block_on(throw(&s, &key, &a)) {
            Ok(status) if status >= 500 => Err(TestCaseError::fail(format!("{status} for {a:?}"))),
            Ok(_) => Ok(()),
            // The client may refuse to build such a request; the server never saw it.
            Err(e) if e.is_builder() => Ok(()),
            Err(e) => Err(TestCaseError::fail(format!("{e} for {a:?}"))),
        }
    });
    if let Err(e) = result {
        panic!("{backend:?}: {e}");
    }
    // Still alive and still delivering (for a fresh project: the fuzzed one may be limited).
    rt.block_on(async {
        let (_, key) = cli_create_project(s.store(), &["--name", "After"]).await;
        let id = s
            .send_ok(
                &key,
                &json!({"channel": "email", "destination": "after-fuzz@example.com", "code": "a1b2c3"}),
            )
            .await;
        assert_eq!(s.wait_final(&key, &id).await["status"], "sent");
    });
}

#[test]
fn no_input_makes_a_5xx_on_sqlite() {
    fuzz(Backend::Sqlite);
}

#[test]
fn no_input_makes_a_5xx_on_postgres() {
    fuzz(Backend::Postgres);
}
