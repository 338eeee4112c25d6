-- FutureAuth delivery service schema (SQLite). Times are Unix epoch milliseconds.
CREATE TABLE project (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    allowed_origins TEXT NOT NULL,
    callback_url TEXT,
    email_from TEXT,
    sms_prefixes TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE api_key (
    key_hash TEXT PRIMARY KEY,
    key_prefix TEXT NOT NULL,
    project_id TEXT NOT NULL REFERENCES project(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX api_key_project_idx ON api_key(project_id);
CREATE INDEX api_key_prefix_idx ON api_key(key_prefix);

CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES project(id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    destination TEXT NOT NULL,
    payload TEXT,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    locked_until INTEGER,
    last_error TEXT,
    idempotency_key TEXT,
    request_hash TEXT,
    created_at INTEGER NOT NULL,
    sent_at INTEGER,
    UNIQUE (project_id, idempotency_key)
);
CREATE INDEX outbox_due_idx ON outbox(status, next_attempt_at);

CREATE TABLE rate_counter (
    bucket TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (bucket, window_start)
);
