-- One round trip per accepted send (`Store::enqueue` on Postgres). Counts every rate-limit
-- bucket of the send and, if none went over its limit, writes the message and returns it.
-- Over a limit it raises SQLSTATE FA429, whose message lists the (1-based) buckets over, so
-- the whole statement rolls back: a refused send counts nowhere and writes nothing.
--
-- A sharded bucket (counted by every send of a project) increments one of `p_shards` rows
-- `<key>#<n>`, picked at random, and reads the sum of all of them and of the unsharded row
-- that versions before sharding wrote, so the sends of one project don't queue on one row
-- lock until they commit.
CREATE FUNCTION futureauth_enqueue(
    p_buckets TEXT[],
    p_windows BIGINT[],
    p_limits BIGINT[],
    p_sharded BOOLEAN[],
    p_shards INT,
    p_id TEXT,
    p_project_id TEXT,
    p_channel TEXT,
    p_destination TEXT,
    p_payload TEXT,
    p_now BIGINT,
    p_idempotency_key TEXT,
    p_request_hash TEXT,
    p_destination_hash TEXT,
    p_status TEXT
) RETURNS SETOF outbox
LANGUAGE plpgsql AS $$
DECLARE
    counted BIGINT;
    over TEXT[] := '{}';
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_buckets, 1), 0) LOOP
        IF p_sharded[i] THEN
            INSERT INTO rate_counter (bucket, window_start, count)
            VALUES (p_buckets[i] || '#' || floor(random() * p_shards)::INT, p_windows[i], 1)
            ON CONFLICT (bucket, window_start) DO UPDATE SET count = rate_counter.count + 1;
            SELECT coalesce(sum(count), 0) INTO counted FROM rate_counter
            WHERE window_start = p_windows[i]
              AND bucket = ANY (ARRAY(
                  SELECT p_buckets[i] || '#' || n FROM generate_series(0, p_shards - 1) n
              ) || p_buckets[i]);
        ELSE
            INSERT INTO rate_counter (bucket, window_start, count)
            VALUES (p_buckets[i], p_windows[i], 1)
            ON CONFLICT (bucket, window_start) DO UPDATE SET count = rate_counter.count + 1
            RETURNING count INTO counted;
        END IF;
        IF counted > p_limits[i] THEN
            over := over || i::TEXT;
        END IF;
    END LOOP;
    IF cardinality(over) > 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'FA429', MESSAGE = array_to_string(over, ',');
    END IF;
    RETURN QUERY
    INSERT INTO outbox (id, project_id, channel, destination, payload, status, attempts,
        next_attempt_at, idempotency_key, request_hash, created_at, destination_hash)
    VALUES (p_id, p_project_id, p_channel, p_destination, p_payload, p_status, 0, p_now,
        p_idempotency_key, p_request_hash, p_now, p_destination_hash)
    RETURNING *;
END
$$;
