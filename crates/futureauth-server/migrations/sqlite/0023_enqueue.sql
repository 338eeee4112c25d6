-- Postgres counts and inserts a send in one function call (futureauth_enqueue); SQLite has
-- one writer and no stored functions, and keeps its transaction of two statements
-- (Store::enqueue). This step keeps both backends' migration lists the same.
SELECT 1;
