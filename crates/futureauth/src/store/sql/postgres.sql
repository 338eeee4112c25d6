-- FutureAuth schema for Postgres.
-- Idempotent: safe on every start. Upgrades tables made by futureauth 0.4 and 0.5 in place.
-- Several app instances may run it at once; the advisory lock serialises them.
SELECT pg_advisory_xact_lock(4012460581);

CREATE TABLE IF NOT EXISTS "user" (
    id TEXT PRIMARY KEY,
    email TEXT UNIQUE,
    phone_number TEXT UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    phone_number_verified BOOLEAN NOT NULL DEFAULT FALSE,
    metadata JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
ALTER TABLE "user" ADD COLUMN IF NOT EXISTS metadata JSONB NOT NULL DEFAULT '{}';
-- Disabled by the app (FutureAuth::disable_user): while disabled_at is set and
-- disabled_until is NULL (for good) or in the future. NULL for everyone before 0.7.
ALTER TABLE "user" ADD COLUMN IF NOT EXISTS disabled_at TIMESTAMPTZ;
ALTER TABLE "user" ADD COLUMN IF NOT EXISTS disabled_until TIMESTAMPTZ;

CREATE TABLE IF NOT EXISTS session (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES "user"(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    expires_at TIMESTAMPTZ NOT NULL,
    ip_address TEXT,
    user_agent TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

DROP INDEX IF EXISTS idx_session_token;
DROP INDEX IF EXISTS idx_session_token_hash; -- futureauth 0.5's copy of the unique index
CREATE INDEX IF NOT EXISTS idx_session_user ON session(user_id);
-- How and when the user proved who they are ('otp' | 'magic_link' | 'passkey'); NULL for
-- sessions made before 0.7 (authenticated_at then reads as created_at). Nobody is signed out.
ALTER TABLE session ADD COLUMN IF NOT EXISTS auth_method TEXT;
ALTER TABLE session ADD COLUMN IF NOT EXISTS authenticated_at TIMESTAMPTZ;
-- The periodic clean-up finds expired rows by these without scanning the tables.
CREATE INDEX IF NOT EXISTS idx_session_expires_at ON session(expires_at);

CREATE TABLE IF NOT EXISTS verification (
    id TEXT PRIMARY KEY,
    identifier TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    kind TEXT NOT NULL DEFAULT 'otp'
);
ALTER TABLE verification ADD COLUMN IF NOT EXISTS attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE verification ADD COLUMN IF NOT EXISTS kind TEXT NOT NULL DEFAULT 'otp';

-- futureauth 0.4 stored session tokens, codes and magic-link tokens in plain text. Hash
-- them in place (hex SHA-256, the format 0.5 and this crate look up), so that nobody is
-- signed out by the upgrade. A session's hash is unique, as its token was.
DO $$ DECLARE t record; BEGIN
    FOR t IN SELECT * FROM (VALUES ('session', 'token', 'token_hash', TRUE),
                                   ('verification', 'code', 'code_hash', FALSE))
                        AS upgrade(tbl, plain, hashed, is_unique) LOOP
        IF EXISTS (SELECT 1 FROM information_schema.columns
                   WHERE table_schema = current_schema() AND table_name = t.tbl AND column_name = t.plain) THEN
            EXECUTE format('ALTER TABLE %I ADD COLUMN IF NOT EXISTS %I TEXT', t.tbl, t.hashed);
            EXECUTE format('UPDATE %I SET %I = encode(sha256(convert_to(%I, ''UTF8'')), ''hex'') WHERE %I IS NULL',
                           t.tbl, t.hashed, t.plain, t.hashed);
            EXECUTE format('ALTER TABLE %I ALTER COLUMN %I SET NOT NULL', t.tbl, t.hashed);
            EXECUTE format('ALTER TABLE %I DROP COLUMN %I', t.tbl, t.plain);
            IF t.is_unique THEN
                EXECUTE format('CREATE UNIQUE INDEX IF NOT EXISTS %I ON %I(%I)',
                               t.tbl || '_' || t.hashed || '_key', t.tbl, t.hashed);
            END IF;
        END IF;
    END LOOP;
END $$;

-- One-time upgrade steps, run while the rate-limit table (new in this version) is absent.
DO $$ BEGIN
    IF to_regclass('futureauth_rate_limit') IS NULL THEN
        -- Pending one-time codes of 0.4/0.5 were hashed without a key and cannot be checked
        -- under the keyed hash; they live minutes and a new code is one click away.
        -- Magic-link tokens use the same hash as before and keep working.
        DELETE FROM verification WHERE kind = 'otp' AND code_hash NOT LIKE 'hmac-sha256:%';
        -- One live code per identifier and kind.
        DELETE FROM verification v USING verification w
         WHERE v.identifier = w.identifier AND v.kind = w.kind
           AND (v.created_at, v.id) < (w.created_at, w.id);
        -- Emails are compared lower-cased from now on; fold old ones where that merges nobody.
        UPDATE "user" u SET email = lower(btrim(u.email))
         WHERE u.email IS NOT NULL AND u.email <> lower(btrim(u.email))
           AND NOT EXISTS (SELECT 1 FROM "user" o
                            WHERE o.id <> u.id AND lower(btrim(o.email)) = lower(btrim(u.email)));
    END IF;
END $$;
-- A code may be bound to the client that asked for it (the hash of a secret cookie); ''
-- marks the one unbound row. One live code per identifier, kind AND binding, so nobody
-- else's send replaces the code a person is typing. This key replaces the older
-- (identifier, kind) one, which would forbid two bindings.
ALTER TABLE verification ADD COLUMN IF NOT EXISTS binding_hash TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX IF NOT EXISTS verification_identifier_kind_binding_key
    ON verification(identifier, kind, binding_hash);
DROP INDEX IF EXISTS verification_identifier_kind_key;
-- Magic links: hash of the secret cookie of the browser that asked (NULL: none, or a link
-- sent before links were bound).
ALTER TABLE verification ADD COLUMN IF NOT EXISTS requester_hash TEXT;
CREATE INDEX IF NOT EXISTS idx_verification_code_hash ON verification(code_hash);
CREATE INDEX IF NOT EXISTS idx_verification_expires_at ON verification(expires_at);
DROP INDEX IF EXISTS idx_verification_identifier; -- covered by verification_identifier_kind_binding_key
DROP INDEX IF EXISTS idx_verification_code;
-- The code sent in a magic-link email: its row names the link (the link's token hash), so
-- that using either one consumes both.
ALTER TABLE verification ADD COLUMN IF NOT EXISTS link_hash TEXT;
CREATE INDEX IF NOT EXISTS idx_verification_link_hash ON verification(link_hash)
    WHERE link_hash IS NOT NULL;
-- Magic links opened on another device: who asked (shown to the person who opened it), the
-- number the asking browser shows (typed on the approving page), and when it was approved
-- (then the asking browser, polling, takes the session).
ALTER TABLE verification ADD COLUMN IF NOT EXISTS requester_ip TEXT;
ALTER TABLE verification ADD COLUMN IF NOT EXISTS requester_agent TEXT;
ALTER TABLE verification ADD COLUMN IF NOT EXISTS match_number TEXT;
ALTER TABLE verification ADD COLUMN IF NOT EXISTS approved_at TIMESTAMPTZ;
CREATE INDEX IF NOT EXISTS idx_verification_requester_hash ON verification(requester_hash)
    WHERE requester_hash IS NOT NULL;

CREATE TABLE IF NOT EXISTS futureauth_rate_limit (
    key TEXT PRIMARY KEY,
    window_end BIGINT NOT NULL,
    count INTEGER NOT NULL
);
