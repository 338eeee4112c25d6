-- Postgres notifies every instance of project changes so that they may cache keys and
-- settings; SQLite has no LISTEN/NOTIFY and its stores never cache (store/cache.rs). This
-- step keeps both backends' migration lists the same.
SELECT 1;
