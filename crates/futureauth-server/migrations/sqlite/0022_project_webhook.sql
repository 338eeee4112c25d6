-- A project's own webhook: where the server posts its message events, and the secret that
-- signs them (rotatable).
CREATE TABLE project_webhook (
    project_id TEXT PRIMARY KEY REFERENCES project(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
