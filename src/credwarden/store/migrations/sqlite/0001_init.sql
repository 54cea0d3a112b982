-- Records: keys, credentials, versions. Secret material is ciphertext inside `body`.
CREATE TABLE records (
    ns   TEXT    NOT NULL,
    key  TEXT    NOT NULL,
    rev  INTEGER NOT NULL,
    body BLOB    NOT NULL,
    PRIMARY KEY (ns, key)
) WITHOUT ROWID;

-- The audit log: append-only, hash-chained, one small row per event (every audited read writes
-- one, so no duplicated columns and no secondary index; queries filter on the JSON body and
-- usage is derived from the log incrementally by watch/usage.py).
CREATE TABLE audit_events (
    seq  INTEGER PRIMARY KEY,
    body TEXT    NOT NULL,
    hash TEXT    NOT NULL
);

CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT    NOT NULL,
    mac  TEXT    NOT NULL
);

-- The head always exists: appending is then one UPDATE (and, on PostgreSQL, a row lock).
INSERT INTO audit_head (id, seq, hash, mac)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', '');
