-- FutureAuth schema for SQLite. Idempotent: safe on every start.
-- Semicolons end statements and stand nowhere else: an upgrade runs this statement by statement.
-- Timestamps are INTEGER milliseconds since the Unix epoch (UTC).
CREATE TABLE IF NOT EXISTS "user" (
    id TEXT PRIMARY KEY,
    email TEXT UNIQUE,
    phone_number TEXT UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    email_verified INTEGER NOT NULL DEFAULT 0,
    phone_number_verified INTEGER NOT NULL DEFAULT 0,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    -- Disabled by the app: while disabled_at is set and disabled_until is NULL or later.
    disabled_at INTEGER,
    disabled_until INTEGER
);

CREATE TABLE IF NOT EXISTS session (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES "user"(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    expires_at INTEGER NOT NULL,
    ip_address TEXT,
    user_agent TEXT,
    created_at INTEGER NOT NULL,
    -- 'otp' | 'magic_link' | 'passkey', and when (NULL: made before 0.7).
    auth_method TEXT,
    authenticated_at INTEGER
);
CREATE INDEX IF NOT EXISTS idx_session_user ON session(user_id);
-- The periodic clean-up finds expired rows by these without scanning the tables.
CREATE INDEX IF NOT EXISTS idx_session_expires_at ON session(expires_at);

CREATE TABLE IF NOT EXISTS verification (
    id TEXT PRIMARY KEY,
    identifier TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    kind TEXT NOT NULL DEFAULT 'otp',
    -- Hash of the secret cookie of the client that asked for the code ('' = unbound).
    binding_hash TEXT NOT NULL DEFAULT '',
    -- For the code in a magic-link email: the link's token hash (both are consumed together).
    link_hash TEXT,
    -- Magic links: hash of the secret cookie of the browser that asked (NULL: none).
    requester_hash TEXT,
    -- Magic links opened on another device: who asked, the number the asking browser
    -- shows, and when it was approved (ms).
    requester_ip TEXT,
    requester_agent TEXT,
    match_number TEXT,
    approved_at INTEGER,
    UNIQUE (identifier, kind, binding_hash)
);
-- Older tables get the newer columns from FutureAuth::ensure_tables (add-column helper).
-- Tables of earlier versions, keyed UNIQUE (identifier, kind), are rebuilt with this key by
-- FutureAuth::ensure_tables (SQLite cannot drop a table constraint in place).
CREATE INDEX IF NOT EXISTS idx_verification_code_hash ON verification(code_hash);
CREATE INDEX IF NOT EXISTS idx_verification_expires_at ON verification(expires_at);

CREATE TABLE IF NOT EXISTS futureauth_rate_limit (
    key TEXT PRIMARY KEY,
    window_end INTEGER NOT NULL,
    count INTEGER NOT NULL
);
