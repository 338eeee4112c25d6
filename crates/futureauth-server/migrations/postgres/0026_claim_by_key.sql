-- Every hot statement of the outbox reaches its rows by key, whatever the planner thinks of
-- the tables' sizes.
--
-- Why: a connection keeps the generic plan of a prepared statement (and of a function's
-- statements) that it made after five runs. Made while the outbox and the counters were
-- nearly empty (a new deployment, a first burst), that plan joined them by scanning them
-- whole, and it stayed: as they grew, the claim, the lock on the counters and the writing
-- of outcomes each cost as much as the table was long, until autovacuum's next ANALYZE.
-- Measured on a fresh database under load: the counters' lock 1.06 ms a group instead of
-- about 0.07, the claim 0.63 ms instead of about 0.2.
--
-- So each row is looked up by its key in a way no plan can turn into a scan: a LATERAL
-- subquery that locks (FOR UPDATE keeps it from being merged into a join) or has a LIMIT,
-- a statement per row whose only indexed condition is the primary key, or INSERT … ON
-- CONFLICT (which probes the unique index). What each function does is unchanged: see 0025
-- for the sends.

CREATE OR REPLACE FUNCTION futureauth_enqueue_batch(
    p_rows TEXT[],
    p_windows BIGINT[],
    p_bases TEXT[],
    p_shards INT,
    p_entry_send INT[],
    p_entry_row INT[],
    p_entry_limit BIGINT[],
    p_id TEXT[],
    p_project_id TEXT[],
    p_channel TEXT[],
    p_destination TEXT[],
    p_payload TEXT[],
    p_idempotency_key TEXT[],
    p_request_hash TEXT[],
    p_destination_hash TEXT[],
    p_status TEXT[],
    p_now BIGINT[]
) RETURNS TABLE (place INT, over TEXT)
LANGUAGE plpgsql AS $$
DECLARE
    n_sends INT := coalesce(array_length(p_id, 1), 0);
    n_rows INT := coalesce(array_length(p_rows, 1), 0);
    n_entries INT := coalesce(array_length(p_entry_send, 1), 0);
    counts BIGINT[];
    added BIGINT[] := array_fill(0::BIGINT, ARRAY[n_rows]);
    taken INT[];
    keys TEXT[] := '{}';
    write BOOLEAN[] := array_fill(false, ARRAY[n_sends]);
    refused TEXT[];
    wanted INT := 0;
    wrote INT;
    e INT := 1;
    first INT;
    k INT;
    r INT;
BEGIN
    -- Lock every counter row of the group, creating the missing ones, in sorted order: the
    -- nested loop over the sorted rows locks them one by one, in that order.
    INSERT INTO rate_counter (bucket, window_start, count)
    SELECT b, w, 0 FROM unnest(p_rows, p_windows) AS t(b, w) ORDER BY b, w
    ON CONFLICT (bucket, window_start) DO NOTHING;
    PERFORM 1
    FROM (SELECT b, w FROM unnest(p_rows, p_windows) AS t(b, w) ORDER BY b, w) t,
        LATERAL (SELECT 1 FROM rate_counter c
                 WHERE c.bucket = t.b AND c.window_start = t.w
                 FOR UPDATE) l;
    -- Each row's count before the group: a shard's is its bucket's sum.
    SELECT coalesce(array_agg(coalesce(s.n, 0) ORDER BY t.i), '{}') INTO counts
    FROM unnest(p_rows, p_windows, p_bases) WITH ORDINALITY AS t(b, w, base, i)
    LEFT JOIN LATERAL (
        SELECT sum(c.count) AS n FROM rate_counter c
        WHERE c.window_start = t.w
          AND c.bucket = ANY (CASE WHEN t.base IS NULL THEN ARRAY[t.b] ELSE ARRAY(
              SELECT t.base || '#' || n FROM generate_series(0, p_shards - 1) n
          ) || t.base END)
    ) s ON true;
    -- Sends whose idempotency key an earlier message holds (LIMIT: one lookup per send).
    SELECT coalesce(array_agg(m.i), '{}') INTO taken
    FROM unnest(p_project_id, p_idempotency_key) WITH ORDINALITY AS m(p, key, i),
        LATERAL (SELECT 1 FROM outbox o
                 WHERE o.project_id = m.p AND o.idempotency_key = m.key
                 LIMIT 1) o
    WHERE m.key IS NOT NULL;
    FOR i IN 1 .. n_sends LOOP
        refused := '{}';
        first := e;
        k := 0;
        WHILE e <= n_entries AND p_entry_send[e] = i LOOP
            k := k + 1;
            r := p_entry_row[e];
            IF counts[r] + added[r] + 1 > p_entry_limit[e] THEN
                refused := refused || k::TEXT;
            END IF;
            e := e + 1;
        END LOOP;
        IF cardinality(refused) > 0 THEN
            place := i;
            over := array_to_string(refused, ',');
            RETURN NEXT;
        ELSIF i = ANY (taken)
            OR (p_idempotency_key[i] IS NOT NULL
                AND p_project_id[i] || ' ' || p_idempotency_key[i] = ANY (keys)) THEN
            place := i;
            over := '';
            RETURN NEXT;
        ELSE
            write[i] := true;
            wanted := wanted + 1;
            IF p_idempotency_key[i] IS NOT NULL THEN
                keys := keys || (p_project_id[i] || ' ' || p_idempotency_key[i]);
            END IF;
            FOR x IN first .. e - 1 LOOP
                added[p_entry_row[x]] := added[p_entry_row[x]] + 1;
            END LOOP;
        END IF;
    END LOOP;
    INSERT INTO outbox (id, project_id, channel, destination, payload, status, attempts,
        next_attempt_at, idempotency_key, request_hash, created_at, destination_hash)
    SELECT m.id, m.project_id, m.channel, m.destination, m.payload, m.status, 0, m.now,
        m.idempotency_key, m.request_hash, m.now, m.destination_hash
    FROM unnest(p_id, p_project_id, p_channel, p_destination, p_payload, p_status, p_now,
        p_idempotency_key, p_request_hash, p_destination_hash)
        WITH ORDINALITY AS m(id, project_id, channel, destination, payload, status, now,
            idempotency_key, request_hash, destination_hash, i)
    WHERE write[m.i]
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS wrote = ROW_COUNT;
    IF wrote <> wanted THEN
        RAISE EXCEPTION USING ERRCODE = 'FA409',
            MESSAGE = 'an idempotency key of the group was taken meanwhile';
    END IF;
    -- One write per counter row, for every send written (the rows exist and are locked: the
    -- insert's conflict finds each by its key).
    INSERT INTO rate_counter AS c (bucket, window_start, count)
    SELECT b, w, n FROM unnest(p_rows, p_windows, added) AS a(b, w, n) WHERE n > 0
    ON CONFLICT (bucket, window_start) DO UPDATE SET count = c.count + excluded.count;
END
$$;

-- Claims up to `p_limit` due messages until `p_lease` (`p_now` now); concurrent workers skip
-- each other's locked rows. Each claimed row is updated by its key.
CREATE FUNCTION futureauth_claim(p_lease BIGINT, p_now BIGINT, p_limit BIGINT)
RETURNS SETOF outbox
LANGUAGE plpgsql AS $$
DECLARE
    due TEXT;
BEGIN
    FOR due IN
        SELECT id FROM outbox
        WHERE status = 'queued' AND next_attempt_at <= p_now
          AND (locked_until IS NULL OR locked_until <= p_now)
        ORDER BY next_attempt_at
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    LOOP
        RETURN QUERY
        UPDATE outbox SET locked_until = p_lease, attempts = attempts + 1
        WHERE id = due
        RETURNING *;
    END LOOP;
END
$$;

-- The outcomes of a group of deliveries, each written as `Store::complete` writes one alone:
-- fenced by its attempt (a row no longer queued, or claimed again since, is left as it is),
-- with its timeline entry. `p_outcome` is `sent`, `failed` or `retry`. Returns the outcomes
-- that applied.
CREATE FUNCTION futureauth_complete_batch(
    p_id TEXT[],
    p_attempt BIGINT[],
    p_outcome TEXT[],
    p_destination TEXT[],
    p_sent_at BIGINT[],
    p_provider_id TEXT[],
    p_error TEXT[],
    p_next_at BIGINT[],
    p_at BIGINT[]
) RETURNS TABLE (done_id TEXT, done_attempt BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    applied INT[] := '{}';
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_id, 1), 0) LOOP
        UPDATE outbox o SET
            status = CASE WHEN p_outcome[i] = 'retry' THEN o.status ELSE p_outcome[i] END,
            payload = CASE WHEN p_outcome[i] = 'retry' THEN o.payload END,
            destination = CASE WHEN p_outcome[i] = 'retry' THEN o.destination
                               ELSE p_destination[i] END,
            sent_at = CASE WHEN p_outcome[i] = 'sent' THEN p_sent_at[i] ELSE o.sent_at END,
            provider_message_id = CASE WHEN p_outcome[i] = 'sent' THEN p_provider_id[i]
                                       ELSE o.provider_message_id END,
            next_attempt_at = CASE WHEN p_outcome[i] = 'retry' THEN p_next_at[i]
                                   ELSE o.next_attempt_at END,
            last_error = p_error[i],
            locked_until = NULL
        WHERE o.id = p_id[i]
          -- The fence, as one expression that no index answers: a plan made on a small
          -- outbox could otherwise find the row through `status = 'queued'` (the due
          -- index), which reads every queued message, a retry backlog included.
          AND CASE WHEN o.status = 'queued' THEN o.attempts = p_attempt[i] ELSE false END;
        IF FOUND THEN
            applied := applied || i;
        END IF;
    END LOOP;
    INSERT INTO delivery_attempt (message_id, attempt, outcome, error, at)
    SELECT p_id[i], p_attempt[i], p_outcome[i], p_error[i], p_at[i] FROM unnest(applied) AS i
    ON CONFLICT (message_id, attempt) DO NOTHING;
    RETURN QUERY SELECT p_id[i], p_attempt[i] FROM unnest(applied) AS i;
END
$$;
