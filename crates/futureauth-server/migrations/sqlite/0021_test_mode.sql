-- Test mode of a project: exact destinations (normalised emails, E.164 numbers; a JSON array)
-- that are never sent to, and the fixed code they sign in with.
CREATE TABLE project_test_mode (
    project_id TEXT PRIMARY KEY REFERENCES project(id) ON DELETE CASCADE,
    destinations TEXT NOT NULL,
    code TEXT NOT NULL,
    -- 1 when an operator confirmed test mode for a production server.
    allow_in_production INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL
);
