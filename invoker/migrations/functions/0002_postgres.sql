-- Code and dependency packages, for hosts that share the database: each host unpacks a
-- package into its own code store (by digest) the first time it needs it. A package is split
-- into chunks of at most 1 MiB.
CREATE TABLE code_packages (
    digest   TEXT PRIMARY KEY,
    kind     TEXT NOT NULL,
    filename TEXT NOT NULL,
    size     BIGINT NOT NULL
);
CREATE TABLE code_chunks (
    digest TEXT NOT NULL REFERENCES code_packages (digest) ON DELETE CASCADE,
    n      BIGINT NOT NULL,
    data   BYTEA NOT NULL,
    PRIMARY KEY (digest, n)
);
