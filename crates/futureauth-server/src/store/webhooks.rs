//! A project's own webhook: its URL and signing secret.

use secrecy::SecretString;

use super::{Store, UnixMillis};
use crate::error::StoreError;

/// A project's webhook as stored: its URL and signing secret.
#[derive(Debug, Clone)]
pub struct ProjectWebhook {
    /// `https://…` (plain http only to loopback, in development).
    pub url: String,
    /// The signing secret (`whsec_…`).
    pub secret: SecretString,
}

impl Store {
    /// The project's webhook, if it registered one.
    pub async fn project_webhook(
        &self,
        project_id: &str,
    ) -> Result<Option<ProjectWebhook>, StoreError> {
        let row: Option<(String, String)> = self
            .fetch_optional(
                "SELECT url, secret FROM project_webhook WHERE project_id = $1",
                &[project_id.into()],
            )
            .await?;
        Ok(row.map(|(url, secret)| ProjectWebhook {
            url,
            secret: SecretString::from(secret),
        }))
    }

    /// Registers (or moves) the project's webhook. A new registration gets `new_secret`;
    /// moving the URL keeps the secret unless `rotate`.
    pub async fn set_project_webhook(
        &self,
        project_id: &str,
        url: &str,
        new_secret: &str,
        rotate: bool,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let args = [
            project_id.into(),
            url.into(),
            new_secret.into(),
            rotate.into(),
            now.into(),
        ];
        self.execute(
            "INSERT INTO project_webhook (project_id, url, secret, updated_at)
             VALUES ($1, $2, $3, $5)
             ON CONFLICT (project_id) DO UPDATE SET url = excluded.url, updated_at = $5,
                 secret = CASE WHEN $4 THEN excluded.secret ELSE project_webhook.secret END",
            &args,
        )
        .await?;
        Ok(())
    }

    /// Removes the project's webhook; whether it had one. Queued events then fail.
    pub async fn clear_project_webhook(&self, project_id: &str) -> Result<bool, StoreError> {
        self.delete_project_row(
            "DELETE FROM project_webhook WHERE project_id = $1",
            project_id,
        )
        .await
    }
}
