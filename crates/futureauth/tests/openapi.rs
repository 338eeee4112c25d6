//! The `openapi` feature: the document lists exactly the routes `auth_router` serves, each
//! with its answers, and merges into an app's own document.

use std::collections::BTreeSet;

use serde_json::json;
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
    // The confirm page of an email change by link: HTML, GET and form POST.
    let confirm_page = "/api/auth/confirm-identifier-change";
    assert_eq!(
        paths,
        served
            .iter()
            .copied()
            .chain([landing, confirm_page])
            .collect()
    );
    for (method, status) in [
        ("get", "200"),
        ("get", "400"),
        ("post", "200"),
        ("post", "400"),
        ("post", "401"),
        ("post", "403"),
    ] {
        assert!(
            serde_json::to_value(&doc).unwrap()["paths"][confirm_page][method]["responses"][status]
                .is_object(),
            "{method} {confirm_page} {status}"
        );
    }

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

    // The landing page refuses an approval number that is not two digits with a 422.
    assert!(json["paths"][landing]["post"]["responses"]["422"].is_object());

    let mut mine = AppDoc::openapi();
    mine.merge(doc);
    assert!(mine.paths.paths.contains_key("/api/auth/send-otp"));
    assert_eq!(mine.info.title, "My app");
}

/// The request bodies say what the routes accept (issue 18 item 17): a schema-valid request
/// is one the route can take, so schema-based fuzzing (scripts/schemathesis-sdk) passes.
#[test]
fn request_bodies_declare_what_the_routes_accept() {
    let json = serde_json::to_value(futureauth::axum::openapi()).unwrap();
    let schemas = &json["components"]["schemas"];
    for name in [
        "SendOtp",
        "VerifyOtp",
        "ChangeIdentifier",
        "VerifyIdentifierChange",
    ] {
        let branches = schemas[name]["oneOf"].as_array().unwrap_or_else(|| {
            panic!(
                "{name}: exactly one of email and phone is a oneOf: {}",
                schemas[name]
            )
        });
        assert_eq!(branches.len(), 2, "{name}");
        for (branch, with, without) in [
            (&branches[0], "email", "phone"),
            (&branches[1], "phone", "email"),
        ] {
            assert!(
                branch["required"]
                    .as_array()
                    .unwrap()
                    .contains(&json!(with)),
                "{name}"
            );
            assert_eq!(branch["properties"][without]["type"], "null", "{name}");
        }
        let email = &branches[0]["properties"]["email"];
        // `{"email": ""}` was schema-valid and refused.
        assert!(email["minLength"].as_u64().unwrap() >= 5, "{name}");
        assert_eq!(email["maxLength"], 254);
        assert!(email["pattern"].as_str().unwrap().contains('@'));
        let phone = &branches[1]["properties"]["phone"];
        assert!(phone["pattern"].as_str().unwrap().starts_with("^\\+"));
        assert_eq!(phone["maxLength"], 16);
    }
    assert_eq!(
        schemas["RemoveIdentifier"]["properties"]["which"]["enum"],
        json!(["email", "phone", "sms"])
    );
    let code = &schemas["VerifyOtp"]["oneOf"][0]["properties"]["code"];
    assert_eq!(code["pattern"], "^[A-Za-z0-9]{4,12}$");
    assert_eq!(
        schemas["VerifyMagicLink"]["properties"]["token"]["pattern"],
        "^[A-Za-z0-9_-]{32,64}$"
    );
    let callback = &schemas["SendMagicLink"]["properties"]["callback_url"];
    assert_eq!(callback["type"], json!(["string", "null"]));
    // No query, so never a `token` of its own; no `user:pass@`.
    let pattern = callback["pattern"].as_str().unwrap();
    assert!(pattern.starts_with("^https?://"), "{pattern}");
    assert!(
        !pattern.contains("\\?") && !pattern.contains('@'),
        "{pattern}"
    );
    let landing = &json["paths"]["/api/auth/magic-link"];
    assert_eq!(landing["get"]["parameters"][0]["schema"]["minLength"], 32);
    let form =
        &landing["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"];
    assert_eq!(form["oneOf"][0]["required"], json!(["token"]));
    assert_eq!(
        form["oneOf"][1]["required"],
        json!(["token", "action", "number"])
    );
}

/// The links that make schemathesis' stateful phase (and clients) follow one answer to the
/// next call, spelled as OpenAPI spells them (`operationId`, `requestBody`).
#[test]
fn responses_link_to_the_calls_they_enable() {
    let json = serde_json::to_value(futureauth::axum::openapi()).unwrap();
    let ok = |path: &str, method: &str| json["paths"][path][method]["responses"]["200"].clone();
    let revoke = &ok("/api/auth/sessions", "get")["links"]["RevokeListedSession"];
    assert_eq!(revoke["operationId"], "revoke_session");
    assert_eq!(revoke["requestBody"]["id"], "$response.body#/sessions/0/id");
    assert_eq!(
        ok("/api/auth/send-magic-link", "post")["links"]["PollLinkStatus"]["operationId"],
        "magic_link_status"
    );
    let session = ok("/api/auth/session", "get");
    assert_eq!(session["links"]["SignOut"]["operationId"], "sign_out");
    // Every linked operation exists.
    let ids: BTreeSet<String> = json["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|op| op["operationId"].as_str().map(str::to_owned))
        .collect();
    for id in [
        "revoke_session",
        "magic_link_status",
        "list_sessions",
        "sign_out",
    ] {
        assert!(ids.contains(id), "{id}");
    }
}

/// The phone pattern is built from the numbering plans' calling codes: numbers that parse
/// match it, and numbers with a calling code that does not exist do not.
#[test]
fn the_phone_pattern_follows_the_calling_codes() {
    let pattern = futureauth_proto::Phone::e164_pattern();
    for code in ["1", "44", "49", "351", "880"] {
        assert!(
            pattern.contains(&format!("|{code}|"))
                || pattern.contains(&format!("(?:{code}|"))
                || pattern.contains(&format!("|{code})")),
            "{code}"
        );
    }
    for missing in ["|999|", "|0|", "(?:0|"] {
        assert!(!pattern.contains(missing), "{missing}");
    }
}
