//! The OpenAPI document is complete: every operation, response, parameter and field is
//! described and has an example, and every error response names its codes.

use serde_json::Value;
use utoipa::OpenApi;

use super::ApiDoc;

fn doc() -> Value {
    serde_json::to_value(ApiDoc::openapi()).expect("serialisable")
}

fn non_empty(v: &Value) -> bool {
    v.as_str().is_some_and(|s| !s.trim().is_empty())
}

fn has_example(v: &Value) -> bool {
    !v["example"].is_null() || v["examples"].as_array().is_some_and(|a| !a.is_empty())
}

fn operations(doc: &Value) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            out.push((format!("{} {path}", method.to_uppercase()), op));
        }
    }
    out
}

#[test]
fn every_operation_and_response_is_described() {
    let doc = doc();
    let mut missing = Vec::new();
    for (name, op) in operations(&doc) {
        if !non_empty(&op["summary"]) || !non_empty(&op["description"]) {
            missing.push(format!("{name}: summary and description"));
        }
        for (status, resp) in op["responses"].as_object().expect("responses") {
            if !non_empty(&resp["description"]) {
                missing.push(format!("{name} {status}: description"));
            }
            // An error response names the `code`s it can carry.
            if status.starts_with('4') || status.starts_with('5') {
                let d = resp["description"].as_str().unwrap_or("");
                if !d.contains('`') {
                    missing.push(format!("{name} {status}: error codes in the description"));
                }
                let body = &resp["content"]["application/json"];
                if !has_example(body) {
                    missing.push(format!("{name} {status}: example error body"));
                }
            }
        }
        for p in op["parameters"].as_array().into_iter().flatten() {
            let pname = p["name"].as_str().unwrap_or("?");
            if !non_empty(&p["description"]) {
                missing.push(format!("{name} parameter {pname}: description"));
            }
            if !has_example(p) && !has_example(&p["schema"]) {
                missing.push(format!("{name} parameter {pname}: example"));
            }
        }
    }
    assert!(missing.is_empty(), "undocumented:\n{}", missing.join("\n"));
}

#[test]
fn every_schema_field_is_described_with_an_example() {
    let doc = doc();
    let mut missing = Vec::new();
    for (schema, s) in doc["components"]["schemas"].as_object().expect("schemas") {
        if !non_empty(&s["description"]) {
            missing.push(format!("{schema}: description"));
        }
        for (field, p) in s["properties"].as_object().into_iter().flatten() {
            // A field that is another schema is described there.
            let is_ref = !p["$ref"].is_null()
                || !p["items"]["$ref"].is_null()
                || p["oneOf"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| !x["$ref"].is_null()));
            if is_ref {
                continue;
            }
            if !non_empty(&p["description"]) {
                missing.push(format!("{schema}.{field}: description"));
            }
            if !has_example(p) {
                missing.push(format!("{schema}.{field}: example"));
            }
        }
    }
    assert!(missing.is_empty(), "undocumented:\n{}", missing.join("\n"));
}

#[test]
fn idempotency_key_constraints_are_declared() {
    let doc = doc();
    let params = doc["paths"]["/api/v1/otp/send"]["post"]["parameters"]
        .as_array()
        .expect("parameters");
    let key = params
        .iter()
        .find(|p| p["name"] == "Idempotency-Key")
        .expect("Idempotency-Key parameter");
    assert_eq!(key["in"], "header");
    assert_eq!(key["required"], false);
    let schema = &key["schema"];
    assert_eq!(schema["minLength"], 1, "{schema}");
    assert_eq!(schema["maxLength"], 255, "{schema}");
    assert_eq!(schema["pattern"], "^[\\x21-\\x7E]+$", "{schema}");
}
