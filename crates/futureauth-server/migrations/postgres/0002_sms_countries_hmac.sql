-- SMS destinations by country (ISO regions; NULL = derived from the old sms_prefixes) and
-- per-project SMS caps (NULL = the server's default).
ALTER TABLE project ADD COLUMN sms_countries TEXT;
ALTER TABLE project ADD COLUMN sms_per_country_per_hour BIGINT;
ALTER TABLE project ADD COLUMN sms_per_hour BIGINT;
ALTER TABLE project ADD COLUMN sms_per_day BIGINT;
-- Request fingerprints were unsalted SHA-256 over destination and code: drop them. New ones
-- are HMACs keyed by the server secret, kept only with an Idempotency-Key.
UPDATE outbox SET request_hash = NULL;
