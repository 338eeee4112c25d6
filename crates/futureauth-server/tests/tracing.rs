//! Tracing: one message id follows a message from accept through claim to the provider call.
//!
//! A recording `tracing_subscriber` layer (the process-wide default: one test in this binary)
//! keeps every span's name, fields and parent; after an email and an SMS are sent through a
//! real server against the wiremock providers, the test finds the `accept` span, the worker's
//! `deliver` span (opened right after the claim) and the `provider_call` span inside it, each
//! carrying the message id the API answered with.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use common::*;
use serde_json::json;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// One recorded span.
#[derive(Clone, Debug)]
struct SpanRec {
    name: &'static str,
    fields: HashMap<String, String>,
    /// Index of the parent span in the recording, if any.
    parent: Option<usize>,
}

/// All spans opened in this process, in order.
#[derive(Clone, Default)]
struct Recording(Arc<Mutex<Vec<SpanRec>>>);

/// The index of a span's record, kept in the span's extensions.
struct Index(usize);

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S> Layer<S> for Recording
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let parent = span
            .parent()
            .and_then(|p| p.extensions().get::<Index>().map(|i| i.0));
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        let mut all = self.0.lock().expect("recording");
        all.push(SpanRec {
            name: attrs.metadata().name(),
            fields,
            parent,
        });
        span.extensions_mut().insert(Index(all.len() - 1));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let Some(index) = span.extensions().get::<Index>().map(|i| i.0) else {
            return;
        };
        let mut all = self.0.lock().expect("recording");
        if let Some(rec) = all.get_mut(index) {
            values.record(&mut Fields(&mut rec.fields));
        }
    }
}

fn recording() -> &'static Recording {
    static REC: OnceLock<Recording> = OnceLock::new();
    REC.get_or_init(|| {
        let rec = Recording::default();
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(rec.clone()))
            .expect("the only subscriber in this test binary");
        rec
    })
}

/// Asserts the three spans of message `id` exist and are linked, and that the provider
/// call is named after `provider`.
fn assert_traced(rec: &Recording, id: &str, provider: &str) {
    let all = rec.0.lock().expect("recording").clone();
    let has_id = |s: &SpanRec| s.fields.get("id").map(String::as_str) == Some(id);
    assert!(
        all.iter().any(|s| s.name == "accept" && has_id(s)),
        "no accept span carries {id}"
    );
    let delivers: Vec<usize> = all
        .iter()
        .enumerate()
        .filter(|(_, s)| s.name == "deliver" && has_id(s))
        .map(|(i, _)| i)
        .collect();
    assert!(!delivers.is_empty(), "no deliver span carries {id}");
    let call = all
        .iter()
        .find(|s| s.name == "provider_call" && s.parent.is_some_and(|p| delivers.contains(&p)))
        .unwrap_or_else(|| panic!("no provider_call span inside the deliver span of {id}"));
    assert!(
        has_id(call),
        "provider_call carries the id itself: {call:?}"
    );
    assert_eq!(
        call.fields.get("provider").map(String::as_str),
        Some(provider)
    );
}

async fn message_id_is_traced_on(backend: Backend, rec: &Recording) {
    let db = TestDb::new(backend).await;
    let fakes = Fakes::accepting().await;
    let store = db.store().await;
    let (_, key) = acme(&store).await;
    let s = TestServer::start(&db, &config(&db, &fakes)).await;

    let email = s
        .send_ok(
            &key,
            &json!({"channel": "email", "destination": "trace@example.com", "code": "123456"}),
        )
        .await;
    let sms = s
        .send_ok(
            &key,
            &json!({"channel": "sms", "destination": "+447400123456", "code": "654321"}),
        )
        .await;
    assert_eq!(s.wait_final(&key, &email).await["status"], "sent");
    assert_eq!(s.wait_final(&key, &sms).await["status"], "sent");
    assert_traced(rec, &email, "resend");
    assert_traced(rec, &sms, "twilio");
    // The two messages have spans of their own: the email's id is nowhere in the SMS's.
    assert_ne!(email, sms);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_id_is_traced_from_accept_to_provider_call() {
    let rec = recording();
    message_id_is_traced_on(Backend::Sqlite, rec).await;
    message_id_is_traced_on(Backend::Postgres, rec).await;
}
