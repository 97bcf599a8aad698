-- Async requests.
CREATE TABLE IF NOT EXISTS async_requests (
    request_id    TEXT PRIMARY KEY,
    -- SQLite's implicit row id, made explicit: both engines order by insertion with `rowid`.
    rowid         BIGSERIAL,
    project_id    TEXT NOT NULL,
    package       TEXT NOT NULL,
    func_name     TEXT NOT NULL,
    func_id       TEXT NOT NULL,
    event         BYTEA NOT NULL,
    status        TEXT NOT NULL,
    attempts      BIGINT NOT NULL DEFAULT 0,
    error_code    BIGINT NOT NULL DEFAULT 0,
    error_message TEXT NOT NULL DEFAULT '',
    accepted_ms   BIGINT NOT NULL,
    end_ms        BIGINT,
    depth         BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS async_requests_by_function ON async_requests (func_id, accepted_ms);
CREATE INDEX IF NOT EXISTS async_requests_unfinished ON async_requests (status) WHERE status IN ('WAIT', 'RUNNING');
CREATE INDEX IF NOT EXISTS async_requests_by_end ON async_requests (end_ms) WHERE end_ms IS NOT NULL;
