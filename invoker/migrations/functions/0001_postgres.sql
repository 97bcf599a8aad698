-- Functions, published versions, aliases, triggers and dependency packages.
CREATE TABLE functions (
    seq        BIGSERIAL PRIMARY KEY,
    project_id TEXT NOT NULL,
    package    TEXT NOT NULL,
    func_name  TEXT NOT NULL,
    record     TEXT NOT NULL,
    UNIQUE (project_id, package, func_name)
);
CREATE TABLE function_versions (
    seq        BIGSERIAL PRIMARY KEY,
    project_id TEXT NOT NULL,
    package    TEXT NOT NULL,
    func_name  TEXT NOT NULL,
    version    TEXT NOT NULL,
    record     TEXT NOT NULL,
    UNIQUE (project_id, package, func_name, version)
);
CREATE TABLE function_aliases (
    seq        BIGSERIAL PRIMARY KEY,
    project_id TEXT NOT NULL,
    package    TEXT NOT NULL,
    func_name  TEXT NOT NULL,
    name       TEXT NOT NULL,
    alias      TEXT NOT NULL,
    UNIQUE (project_id, package, func_name, name)
);
CREATE TABLE triggers (
    seq        BIGSERIAL PRIMARY KEY,
    trigger_id TEXT NOT NULL UNIQUE,
    project_id TEXT NOT NULL,
    package    TEXT NOT NULL,
    func_name  TEXT NOT NULL,
    record     TEXT NOT NULL
);
CREATE TABLE dependency_versions (
    seq        BIGSERIAL PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    project_id TEXT NOT NULL,
    record     TEXT NOT NULL
);
