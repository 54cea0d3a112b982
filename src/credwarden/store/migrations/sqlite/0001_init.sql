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

-- The head (last seq and hash, with a MAC) is the row at seq 2^62: the largest key, so it shares
-- the b-tree leaf of the newest events and an append writes one page. It always exists.
INSERT INTO audit_events (seq, body, hash)
VALUES (4611686018427387904, '0 0000000000000000000000000000000000000000000000000000000000000000', '');
