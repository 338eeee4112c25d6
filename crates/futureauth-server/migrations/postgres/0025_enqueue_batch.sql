-- Many sends in one statement and one commit (`Store::enqueue` on Postgres groups the sends
-- that arrive while the previous group is being written): the commit's flush to disk, which
-- bounds how many commits a second the database makes, and the statements' own cost are
-- shared by the whole group.
--
-- Each send gets what `futureauth_enqueue` (0023) gives it alone, in the order given: it is
-- written only if none of its counters would pass its limit, counting the sends before it
-- in the group; a refused send counts nowhere and writes nothing; a send whose idempotency
-- key is taken (by an earlier message, or by a send before it in the group) writes nothing
-- either. Returns one row per send not written: its 1-based place in the group and the
-- (1-based) buckets of it over their limit, or '' for a taken idempotency key. Every send not
-- returned was written. Should a key be taken meanwhile by a send not yet committed, the
-- whole statement fails with SQLSTATE FA409 and writes nothing; the caller then writes each
-- send alone.
--
-- Counter rows (`p_rows`, each with its window `p_windows`; a sharded bucket's row is the
-- shard the caller picked for the group, `p_bases` its bucket, and its count is the sum of
-- every shard and of the unsharded row older versions wrote) are locked first, all of them,
-- in one sorted order: two groups (of this instance or another) never wait on each other in
-- a cycle. The caller passes them distinct. Sends point at them by 1-based index: bucket
-- entry `e` belongs to send `p_entry_send[e]` (entries grouped by send, in order), counts in
-- row `p_entry_row[e]` and allows `p_entry_limit[e]`.
--
-- Every step but the decisions is one set-based statement for the whole group; the
-- decisions, send by send, only read and write this function's arrays.
CREATE FUNCTION futureauth_enqueue_batch(
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
    -- Lock every counter row of the group, creating the missing ones, in sorted order.
    INSERT INTO rate_counter (bucket, window_start, count)
    SELECT b, w, 0 FROM unnest(p_rows, p_windows) AS t(b, w) ORDER BY b, w
    ON CONFLICT (bucket, window_start) DO NOTHING;
    PERFORM 1 FROM rate_counter
    WHERE (bucket, window_start) IN (SELECT b, w FROM unnest(p_rows, p_windows) AS t(b, w))
    ORDER BY bucket, window_start
    FOR UPDATE;
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
    -- Sends whose idempotency key an earlier message holds.
    SELECT coalesce(array_agg(m.i), '{}') INTO taken
    FROM unnest(p_project_id, p_idempotency_key) WITH ORDINALITY AS m(p, key, i)
    WHERE m.key IS NOT NULL
      AND EXISTS (SELECT 1 FROM outbox o WHERE o.project_id = m.p AND o.idempotency_key = m.key);
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
    -- One write per counter row, for every send written.
    UPDATE rate_counter c SET count = c.count + a.n
    FROM unnest(p_rows, p_windows, added) AS a(b, w, n)
    WHERE c.bucket = a.b AND c.window_start = a.w AND a.n > 0;
END
$$;

