-- Records: keys, credentials, versions. Secret material is ciphertext inside `body`.
CREATE TABLE records (
    ns   TEXT    NOT NULL,
    key  TEXT    NOT NULL,
    rev  INTEGER NOT NULL,
    body BLOB    NOT NULL,
    PRIMARY KEY (ns, key)
) WITHOUT ROWID;

-- The audit log: append-only, hash-chained. Indexed columns repeat the body for queries.
CREATE TABLE audit_events (
    seq       INTEGER PRIMARY KEY,
    ts        TEXT    NOT NULL,
    principal TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    address   TEXT,
    result    TEXT    NOT NULL,
    body      TEXT    NOT NULL,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
);
CREATE INDEX audit_events_address ON audit_events (address, seq);
CREATE INDEX audit_events_principal ON audit_events (principal, seq);
CREATE INDEX audit_events_ts ON audit_events (ts);

CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT    NOT NULL,
    mac  TEXT    NOT NULL
);
