-- Async requests (the schema fgs had before migrations were numbered: IF NOT EXISTS keeps
-- such a file as it is; a table older still, without `depth`, gets it before migrating).
CREATE TABLE IF NOT EXISTS async_requests (
    request_id    TEXT PRIMARY KEY,
    project_id    TEXT NOT NULL,
    package       TEXT NOT NULL,
    func_name     TEXT NOT NULL,
    func_id       TEXT NOT NULL,
    event         BLOB NOT NULL,
    status        TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    error_code    INTEGER NOT NULL DEFAULT 0,
    error_message TEXT NOT NULL DEFAULT '',
    accepted_ms   INTEGER NOT NULL,
    end_ms        INTEGER,
    depth         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS async_requests_by_function ON async_requests (func_id, accepted_ms);
CREATE INDEX IF NOT EXISTS async_requests_unfinished ON async_requests (status) WHERE status IN ('WAIT', 'RUNNING');
CREATE INDEX IF NOT EXISTS async_requests_by_end ON async_requests (end_ms) WHERE end_ms IS NOT NULL;
