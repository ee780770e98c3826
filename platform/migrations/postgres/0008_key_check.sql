-- Proof of the master key: a known text sealed with it at the first start. A node started
-- with another key cannot open it and refuses to start, even before any app secret exists
-- (docs/scaling.md). One row at most.
CREATE TABLE key_check (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    sealed      BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);
