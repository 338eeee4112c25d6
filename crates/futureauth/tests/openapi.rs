//! The `openapi` feature: the document lists exactly the routes `auth_router` serves, each
//! with its answers, and merges into an app's own document.

use std::collections::BTreeSet;

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(info(title = "My app"))]
struct AppDoc;

#[test]
fn the_document_lists_every_auth_route_with_its_answers() {
    let doc = futureauth::axum::openapi();
    let paths: BTreeSet<&str> = doc.paths.paths.keys().map(String::as_str).collect();
    // The routes of auth_router (its rustdoc table), less the `get-session` alias.
    let served: BTreeSet<&str> = [
        "/api/auth/send-otp",
        "/api/auth/verify-otp",
        "/api/auth/send-magic-link",
        "/api/auth/verify-magic-link",
        "/api/auth/magic-link-status",
        "/api/auth/session",
        "/api/auth/sign-out",
        "/api/auth/sessions",
        "/api/auth/revoke-session",
        "/api/auth/sign-out-all",
        // The `passkeys` feature (on for this crate's tests); served when configured.
        "/api/auth/passkey/register/options",
        "/api/auth/passkey/register",
        "/api/auth/passkey/options",
        "/api/auth/passkey/verify",
        "/api/auth/passkeys",
        "/api/auth/passkey/rename",
        "/api/auth/passkey/delete",
        "/api/auth/change-identifier",
        "/api/auth/verify-identifier-change",
        "/api/auth/remove-identifier",
        "/api/auth/delete-account",
    ]
    .into();
    let landing = "/api/auth/magic-link";
    assert_eq!(paths, served.iter().copied().chain([landing]).collect());

    let json = serde_json::to_value(&doc).unwrap();
    for path in &served {
        let item = &json["paths"][path];
        let op = item["post"]
            .as_object()
            .or(item["get"].as_object())
            .unwrap();
        for status in ["200", "400", "422", "429", "503"] {
            assert!(op["responses"][status].is_object(), "{path} {status}");
        }
    }
    // The landing page answers HTML: a page on GET, a redirect after its form's POST.
    for (method, status) in [
        ("get", "200"),
        ("get", "400"),
        ("post", "303"),
        ("post", "200"),
        ("post", "400"),
        ("post", "403"),
    ] {
        assert!(
            json["paths"][landing][method]["responses"][status].is_object(),
            "{method} {landing} {status}"
        );
    }
    assert!(json["components"]["schemas"]["Passkey"]["properties"]["name"].is_object());
    // The account routes' own refusals (disabled, stale sign-in, last address).
    for path in ["/api/auth/delete-account", "/api/auth/remove-identifier"] {
        for status in ["403", "409"] {
            assert!(
                json["paths"][path]["post"]["responses"][status].is_object(),
                "{path} {status}"
            );
        }
    }
    let verify = &json["paths"]["/api/auth/verify-otp"]["post"];
    assert!(verify["requestBody"].is_object());
    assert!(json["components"]["schemas"]["User"]["properties"]["email"].is_object());
    // Never the session token: it is only ever in the cookie.
    assert!(json["components"]["schemas"]["Session"]["properties"]["token"].is_null());

    let mut mine = AppDoc::openapi();
    mine.merge(doc);
    assert!(mine.paths.paths.contains_key("/api/auth/send-otp"));
    assert_eq!(mine.info.title, "My app");
}
