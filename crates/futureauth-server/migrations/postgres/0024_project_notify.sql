-- Every instance keeps secret keys and send settings in memory (store/cache.rs) and empties
-- them when told of a change here, whoever makes it (another instance, the CLI, psql).
-- Statement triggers: one notification per statement, merged by Postgres within a
-- transaction. Key inserts need none (a new key is simply not cached yet); "last used"
-- writes (`UPDATE api_key SET last_used_at`) set no watched column and notify nobody.
CREATE FUNCTION futureauth_project_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('futureauth_server_project', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER project_changed AFTER UPDATE OR DELETE ON project
    FOR EACH STATEMENT EXECUTE FUNCTION futureauth_project_changed();
CREATE TRIGGER api_key_changed
    AFTER UPDATE OF key_hash, project_id, revoked_at OR DELETE ON api_key
    FOR EACH STATEMENT EXECUTE FUNCTION futureauth_project_changed();
CREATE TRIGGER project_limit_changed AFTER INSERT OR UPDATE OR DELETE ON project_limit
    FOR EACH STATEMENT EXECUTE FUNCTION futureauth_project_changed();
CREATE TRIGGER project_template_changed AFTER INSERT OR UPDATE OR DELETE ON project_template
    FOR EACH STATEMENT EXECUTE FUNCTION futureauth_project_changed();
CREATE TRIGGER project_test_mode_changed AFTER INSERT OR UPDATE OR DELETE ON project_test_mode
    FOR EACH STATEMENT EXECUTE FUNCTION futureauth_project_changed();
