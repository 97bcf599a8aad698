-- Functions, published versions, aliases, triggers and dependency packages (the schema
-- fgs had before migrations were numbered: IF NOT EXISTS keeps those files as they are).
CREATE TABLE IF NOT EXISTS functions (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id TEXT NOT NULL,
    package    TEXT NOT NULL,
    func_name  TEXT NOT NULL,
    record     TEXT NOT NULL,
    UNIQUE (project_id, package, func_name)
);
CREATE TABLE IF NOT EXISTS function_versions (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id TEXT NOT NULL,
    package    TEXT NOT NULL,
    func_name  TEXT NOT NULL,
    version    TEXT NOT NULL,
    record     TEXT NOT NULL,
    UNIQUE (project_id, package, func_name, version)
);
CREATE TABLE IF NOT EXISTS function_aliases (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id TEXT NOT NULL,
    package    TEXT NOT NULL,
    func_name  TEXT NOT NULL,
    name       TEXT NOT NULL,
    alias      TEXT NOT NULL,
    UNIQUE (project_id, package, func_name, name)
);
CREATE TABLE IF NOT EXISTS triggers (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    trigger_id TEXT NOT NULL UNIQUE,
    project_id TEXT NOT NULL,
    package    TEXT NOT NULL,
    func_name  TEXT NOT NULL,
    record     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dependency_versions (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    project_id TEXT NOT NULL,
    record     TEXT NOT NULL
);
