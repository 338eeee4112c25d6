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
    // Passkeys on, so that their documented routes are served too.
    let config = futureauth::FutureAuthConfig {
        passkeys: Some(futureauth::PasskeyConfig::default()),
        ..common::config()
    };
    let (auth, _) = db.auth(config).await;
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

/// The README's error paragraph lists exactly the codes of `ErrorCode`, each with the status
/// the Axum integration answers it with.
#[test]
fn documented_error_codes_are_the_table() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let start = readme
        .find("Errors are `{\"error\"")
        .expect("the README has its error paragraph");
    let paragraph = &readme[start..start + readme[start..].find("\n\n").unwrap()];
    // Backticked snake_case words, and the status number written before each group.
    let mut documented = Vec::new();
    let mut status = 0u16;
    for (i, part) in paragraph.split('`').enumerate() {
        if i % 2 == 0 {
            if let Some(n) = part
                .split(|c: char| !c.is_ascii_digit())
                .filter(|w| w.len() == 3)
                .filter_map(|w| w.parse::<u16>().ok())
                .next_back()
            {
                status = n;
            }
        } else if !part.is_empty()
            && part.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            && !["app_url", "allowed_origins", "callback_urls"].contains(&part)
        {
            documented.push((part.to_string(), status));
        }
    }
    let codes: Vec<&str> = futureauth::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    for code in &codes {
        assert!(
            documented.iter().any(|(d, _)| d == code),
            "the README's error paragraph does not list `{code}`"
        );
    }
    for (code, status) in &documented {
        let known = futureauth::ErrorCode::ALL
            .iter()
            .find(|c| c.as_str() == code)
            .unwrap_or_else(|| panic!("the README lists `{code}`, which is no ErrorCode"));
        let answered = futureauth::axum::ApiError::from_code(*known, "x").status();
        assert_eq!(
            answered.as_u16(),
            *status,
            "the README puts `{code}` under {status}, the router answers {answered}"
        );
    }
}
