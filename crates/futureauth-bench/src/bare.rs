//! The bare handler: what any session check must at least do. Shared by the bench
//! (`apps::bare`) and the `check_cost` example (which includes this file by path), so that
//! both measure the same handler.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

/// Hashes the cookie's token and runs one indexed join of `session` and `"user"`; no
/// extractor, no sliding, no constant-time compare: the practical limit.
pub async fn bare_me(
    State(db): State<PgPool>,
    headers: HeaderMap,
) -> Result<Json<Value>, StatusCode> {
    let token = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("futureauth_session="))
        .ok_or(StatusCode::UNAUTHORIZED)?;
    let hash = hex::encode(Sha256::digest(token.as_bytes()));
    let row: Option<(String, Option<String>)> = sqlx::query_as(
        "SELECT u.id, u.email FROM session s JOIN \"user\" u ON u.id = s.user_id \
         WHERE s.token_hash = $1 AND s.expires_at > now()",
    )
    .bind(hash)
    .fetch_optional(&db)
    .await
    .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    let (id, email) = row.ok_or(StatusCode::UNAUTHORIZED)?;
    Ok(Json(json!({ "id": id, "email": email })))
}
