//! The owner-only services (project webhook, test mode) check the acting operator
//! themselves: a member is refused and nothing is written, neither the change nor an audit
//! entry, whichever edge (console or management API) calls them.

mod common;

use common::*;
use futureauth_server::error::ServiceError;
use futureauth_server::service::{project_webhook, test_mode};
use futureauth_server::store::{Operator, Role, Store};
use secrecy::ExposeSecret;

const HOOK: &str = "https://app.acme.test/hooks/futureauth";

struct Project {
    store: Store,
    id: String,
    owner: Operator,
    member: Operator,
}

async fn project(backend: Backend) -> Project {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let (id, _) = acme(&store).await;
    let owner = owner_of(&store, &id).await;
    let member = operator_of(&store, &id, "member@acme.test", Role::Member).await;
    Project {
        store,
        id,
        owner,
        member,
    }
}

impl Project {
    /// The webhook (URL, secret), the test mode and the number of audit entries.
    async fn state(&self) -> (Option<(String, String)>, Option<Vec<String>>, usize) {
        let hook = self.store.project_webhook(&self.id).await.unwrap();
        let mode = self.store.test_mode(&self.id).await.unwrap();
        let audit = self.store.audit_log(&self.id, 100).await.unwrap();
        (
            hook.map(|h| (h.url, h.secret.expose_secret().to_owned())),
            mode.map(|m| m.destinations),
            audit.len(),
        )
    }

    async fn with_webhook_and_test_mode(self) -> Self {
        project_webhook::set(&self.store, &self.owner, &self.id, HOOK, false)
            .await
            .unwrap();
        test_mode::enable(&self.store, &self.owner, &self.id, &input(), false)
            .await
            .unwrap();
        self
    }
}

fn input() -> test_mode::TestModeInput {
    test_mode::TestModeInput {
        destinations: vec!["review@example.com".into()],
        code: "424242".into(),
        allow_in_production: false,
    }
}

fn owners_only<T: std::fmt::Debug>(r: Result<T, ServiceError>) {
    assert!(matches!(r, Err(ServiceError::OwnersOnly)), "{r:?}");
}

async fn a_member_cannot_set_the_webhook(backend: Backend) {
    let p = project(backend).await;
    let before = p.state().await;
    owners_only(project_webhook::set(&p.store, &p.member, &p.id, HOOK, false).await);
    assert_eq!(p.state().await, before);
    assert_eq!(before, (None, None, 0), "nothing was there, nothing is");
    // A stranger does not learn that the project exists.
    let stranger = futureauth_server::service::console::add_operator(&p.store, "eve@evil.test")
        .await
        .unwrap();
    let r = project_webhook::set(&p.store, &stranger, &p.id, HOOK, false).await;
    assert!(matches!(r, Err(ServiceError::NotFound)), "{r:?}");
    // The owner may, and it is audited.
    project_webhook::set(&p.store, &p.owner, &p.id, HOOK, false)
        .await
        .unwrap();
    let audit = p.store.audit_log(&p.id, 10).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "webhook.set");
    assert_eq!(audit[0].actor, "owner@acme.test");
}

async fn a_member_cannot_rotate_the_webhook_secret(backend: Backend) {
    let p = project(backend).await.with_webhook_and_test_mode().await;
    let before = p.state().await;
    owners_only(project_webhook::rotate(&p.store, &p.member, &p.id).await);
    assert_eq!(p.state().await, before);
}

async fn a_member_cannot_remove_the_webhook(backend: Backend) {
    let p = project(backend).await.with_webhook_and_test_mode().await;
    let before = p.state().await;
    owners_only(project_webhook::remove(&p.store, &p.member, &p.id).await);
    assert_eq!(p.state().await, before);
    assert!(before.0.is_some());
}

async fn a_member_cannot_enable_test_mode(backend: Backend) {
    let p = project(backend).await;
    let before = p.state().await;
    owners_only(test_mode::enable(&p.store, &p.member, &p.id, &input(), false).await);
    assert_eq!(p.state().await, before);
}

async fn a_member_cannot_disable_test_mode(backend: Backend) {
    let p = project(backend).await.with_webhook_and_test_mode().await;
    let before = p.state().await;
    owners_only(test_mode::disable(&p.store, &p.member, &p.id).await);
    assert_eq!(p.state().await, before);
    assert!(before.1.is_some());
}

backend_tests!(
    a_member_cannot_set_the_webhook,
    a_member_cannot_rotate_the_webhook_secret,
    a_member_cannot_remove_the_webhook,
    a_member_cannot_enable_test_mode,
    a_member_cannot_disable_test_mode,
);
