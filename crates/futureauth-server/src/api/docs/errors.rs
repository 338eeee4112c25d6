//! The error responses of the management API, described once and listed by each operation.

// These types only describe responses to utoipa: nothing builds or reads them.
#![allow(dead_code)]

use utoipa::IntoResponses;

use crate::api::error::ErrorBody;

/// 401: no valid operator token.
#[derive(IntoResponses)]
#[response(status = 401, description = "Missing, unknown or revoked operator token (`invalid_operator_token`)",
    example = json!({"error": {"code": "invalid_operator_token", "message": "missing, unknown or revoked operator token: send `Authorization: Bearer vx_op_…` (create one in the console under API tokens)"}}))]
pub struct Unauthorized(#[to_schema] pub ErrorBody);

/// 403: the action needs the project's owner role.
#[derive(IntoResponses)]
#[response(status = 403, description = "The caller is a member, not an owner (`owners_only`)",
    example = json!({"error": {"code": "owners_only", "message": "only the project's owners can manage keys, members, webhooks, test mode and deletion"}}))]
pub struct OwnersOnly(#[to_schema] pub ErrorBody);

/// 404: no such project for this operator, or no such key or member.
#[derive(IntoResponses)]
#[response(status = 404, description = "No such project among the caller's, or no such key or member (`not_found`)",
    example = json!({"error": {"code": "not_found", "message": "no such resource"}}))]
pub struct NotFound(#[to_schema] pub ErrorBody);

/// 422: a field is invalid.
#[derive(IntoResponses)]
#[response(status = 422, description = "A field is missing or invalid (`invalid_request`; the message names the fields)",
    example = json!({"error": {"code": "invalid_request", "message": "name: must be 1 to 100 characters"}}))]
pub struct Invalid(#[to_schema] pub ErrorBody);

/// 400, 413, 415: the body is not a JSON document the server reads.
#[derive(IntoResponses)]
pub enum BodyRejected {
    /// 400: not valid JSON.
    #[response(status = 400, description = "Malformed JSON (`malformed_json`)",
        example = json!({"error": {"code": "malformed_json", "message": "malformed JSON: expected value at line 1 column 1"}}))]
    Malformed(#[to_schema] ErrorBody),
    /// 413: over the body limit.
    #[response(status = 413, description = "Body over 16 KiB (`payload_too_large`)",
        example = json!({"error": {"code": "payload_too_large", "message": "the request body is over the 16 KiB limit"}}))]
    TooLarge(#[to_schema] ErrorBody),
    /// 415: not `application/json`.
    #[response(status = 415, description = "Not `Content-Type: application/json` (`unsupported_media_type`)",
        example = json!({"error": {"code": "unsupported_media_type", "message": "send the body as JSON with `Content-Type: application/json`"}}))]
    NotJson(#[to_schema] ErrorBody),
}

/// 503: the database is unavailable.
#[derive(IntoResponses)]
#[response(status = 503, description = "Database unavailable (`storage_unavailable`); retry after `Retry-After` seconds",
    example = json!({"error": {"code": "storage_unavailable", "message": "the database is unavailable; retry later"}}))]
pub struct Unavailable(#[to_schema] pub ErrorBody);
