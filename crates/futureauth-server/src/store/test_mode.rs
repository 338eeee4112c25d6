//! A project's test mode: destinations that are never sent to and their fixed code.

use super::{Store, UnixMillis};
use crate::error::StoreError;

/// Test mode as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestMode {
    /// Normalised emails and E.164 numbers.
    pub destinations: Vec<String>,
    /// The code those destinations sign in with.
    pub code: String,
    /// An operator confirmed it for a production server.
    pub allow_in_production: bool,
    /// When it was last set.
    pub updated_at: UnixMillis,
}

/// The row, before its JSON list is read.
#[derive(sqlx::FromRow)]
pub(super) struct TestModeRow {
    pub(super) test_destinations: Option<String>,
    pub(super) test_code: Option<String>,
    pub(super) test_allow_in_production: Option<i64>,
    pub(super) test_updated_at: Option<UnixMillis>,
}

impl TestModeRow {
    pub(super) fn into_test_mode(self) -> Result<Option<TestMode>, StoreError> {
        let (Some(list), Some(code)) = (self.test_destinations, self.test_code) else {
            return Ok(None);
        };
        let destinations: Vec<String> =
            serde_json::from_str(&list).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Some(TestMode {
            destinations,
            code,
            allow_in_production: self.test_allow_in_production == Some(1),
            updated_at: self.test_updated_at.unwrap_or_default(),
        }))
    }
}

/// The columns of [`TestModeRow`], from `project_test_mode` aliased `tm`.
pub(super) const TEST_MODE_COLUMNS: &str = "tm.destinations AS test_destinations, \
     tm.code AS test_code, tm.allow_in_production AS test_allow_in_production, \
     tm.updated_at AS test_updated_at";

impl Store {
    /// The project's test mode, if on.
    pub async fn test_mode(&self, project_id: &str) -> Result<Option<TestMode>, StoreError> {
        let sql = format!(
            "SELECT {TEST_MODE_COLUMNS} FROM project_test_mode tm WHERE tm.project_id = $1"
        );
        let row: Option<TestModeRow> = self.fetch_optional(&sql, &[project_id.into()]).await?;
        Ok(row.map(TestModeRow::into_test_mode).transpose()?.flatten())
    }

    /// Turns test mode on (or replaces it).
    pub async fn set_test_mode(&self, project_id: &str, t: &TestMode) -> Result<(), StoreError> {
        let list = serde_json::to_string(&t.destinations)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let args = [
            project_id.into(),
            list.as_str().into(),
            t.code.as_str().into(),
            i64::from(t.allow_in_production).into(),
            t.updated_at.into(),
        ];
        let done = self
            .execute(
                "INSERT INTO project_test_mode
                 (project_id, destinations, code, allow_in_production, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (project_id) DO UPDATE SET destinations = excluded.destinations,
                 code = excluded.code, allow_in_production = excluded.allow_in_production,
                 updated_at = excluded.updated_at",
                &args,
            )
            .await;
        self.changed(done)?;
        Ok(())
    }

    /// Turns test mode off; whether it was on.
    pub async fn clear_test_mode(&self, project_id: &str) -> Result<bool, StoreError> {
        self.delete_project_row(
            "DELETE FROM project_test_mode WHERE project_id = $1",
            project_id,
        )
        .await
        .map(|on| self.changed(on))
    }
}
