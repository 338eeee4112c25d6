//! The documents users read name only routes that exist: every `/api/auth/...` path in the
//! README and in the service's `llms.txt` is served by `auth_router`.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

fn auth_paths(text: &str) -> Vec<String> {
    let mut paths: Vec<String> = text
        .match_indices("/api/auth/")
        .map(|(i, _)| {
            text[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_'))
                .collect::<String>()
        })
        .filter(|p| p.len() > "/api/auth/".len())
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

#[tokio::test]
async fn documented_auth_routes_exist() {
    let db = common::TestDb::sqlite().await;
    let (auth, _) = db.auth(common::config()).await;
    let router: axum::Router = futureauth::axum::auth_router(Arc::new(auth));
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    for doc in ["README.md", "crates/futureauth-server/docs/llms.md"] {
        let text = std::fs::read_to_string(format!("{root}/{doc}")).unwrap();
        let paths = auth_paths(&text);
        assert!(
            paths.len() >= 6,
            "{doc} documents the auth routes: {paths:?}"
        );
        for path in paths {
            for method in ["GET", "POST"] {
                let request = Request::builder()
                    .method(method)
                    .uri(&path)
                    .body(Body::empty())
                    .unwrap();
                let status = router.clone().oneshot(request).await.unwrap().status();
                assert_ne!(
                    status,
                    StatusCode::NOT_FOUND,
                    "{doc} names {path}, which is not served"
                );
            }
        }
    }
    db.cleanup().await;
}
