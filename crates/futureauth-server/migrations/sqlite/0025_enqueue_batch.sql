-- Postgres writes the sends that arrive together in one statement (futureauth_enqueue_batch);
-- SQLite, one writer on one file, writes each send in a transaction of its own
-- (Store::enqueue). This step keeps both backends' migration lists the same.
SELECT 1;
