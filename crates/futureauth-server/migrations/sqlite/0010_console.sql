-- The console: operators (people who sign in at /dashboard), their project memberships,
-- the audit log, operator tokens for the management API, server-generated secrets, key
-- last-use and overlap, and the keyed hash of each delivery's destination (for exact search
-- without keeping the address in clear). Times are Unix epoch milliseconds.
CREATE TABLE operator (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE project_member (
    project_id TEXT NOT NULL REFERENCES project(id) ON DELETE CASCADE,
    operator_id TEXT NOT NULL REFERENCES operator(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (project_id, operator_id)
);
CREATE INDEX project_member_operator_idx ON project_member(operator_id);

CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES project(id) ON DELETE CASCADE,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX audit_log_project_idx ON audit_log(project_id, created_at);

CREATE TABLE operator_token (
    token_hash TEXT PRIMARY KEY,
    token_prefix TEXT NOT NULL,
    operator_id TEXT NOT NULL REFERENCES operator(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER
);
CREATE INDEX operator_token_operator_idx ON operator_token(operator_id);

CREATE TABLE server_secret (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE project_limit (
    project_id TEXT PRIMARY KEY REFERENCES project(id) ON DELETE CASCADE,
    per_destination INTEGER,
    per_minute INTEGER
);

-- One row per finished delivery attempt; deleted with its message.
CREATE TABLE delivery_attempt (
    message_id TEXT NOT NULL REFERENCES outbox(id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT,
    at INTEGER NOT NULL,
    PRIMARY KEY (message_id, attempt)
);

-- A project's own wording of its sign-in code messages (NULL = the built-in text).
CREATE TABLE project_template (
    project_id TEXT PRIMARY KEY REFERENCES project(id) ON DELETE CASCADE,
    email_subject TEXT,
    email_text TEXT,
    sms_text TEXT
);

ALTER TABLE api_key ADD COLUMN last_used_at INTEGER;
ALTER TABLE outbox ADD COLUMN destination_hash TEXT;
CREATE INDEX outbox_project_created_idx ON outbox(project_id, created_at);
CREATE INDEX outbox_destination_hash_idx ON outbox(project_id, destination_hash);
