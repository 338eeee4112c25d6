-- Postgres claims and completes deliveries through functions that reach each row by its key
-- (futureauth_claim, futureauth_complete_batch); SQLite keeps its statements. This step
-- keeps both backends' migration lists the same.
SELECT 1;
