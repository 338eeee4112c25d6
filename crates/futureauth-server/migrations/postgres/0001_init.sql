-- FutureAuth delivery service schema (Postgres). Times are Unix epoch milliseconds.
CREATE TABLE project (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    allowed_origins TEXT NOT NULL,
    callback_url TEXT,
    email_from TEXT,
    sms_prefixes TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_key (
    key_hash TEXT PRIMARY KEY,
    key_prefix TEXT NOT NULL,
    project_id TEXT NOT NULL REFERENCES project(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
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
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    locked_until BIGINT,
    last_error TEXT,
    idempotency_key TEXT,
    request_hash TEXT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT,
    UNIQUE (project_id, idempotency_key)
);
CREATE INDEX outbox_due_idx ON outbox(status, next_attempt_at);

CREATE TABLE rate_counter (
    bucket TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (bucket, window_start)
);
