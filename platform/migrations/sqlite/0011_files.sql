-- Files and media (docs/files.md). A file is announced first (name, size, type, SHA-256),
-- then its bytes arrive through the resumable upload endpoint; it becomes usable (state
-- 'complete') only after the whole content was read back and its SHA-256 matched.
-- The bytes live in the file store (a local directory or S3), never in the database.

CREATE TABLE files (
    app_id            TEXT NOT NULL,
    id                TEXT NOT NULL,
    -- the user the file was uploaded for (or by); may always download it
    uploader          TEXT NOT NULL,
    name              TEXT NOT NULL,
    content_type      TEXT NOT NULL,
    size              INTEGER NOT NULL,
    -- lowercase hex SHA-256 the content must have
    sha256            TEXT NOT NULL,
    -- uploading, complete or failed (checksum mismatch)
    state             TEXT NOT NULL,
    -- bytes received so far: the tus Upload-Offset
    received          INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    -- an upload still incomplete at this time is swept with its staged bytes
    upload_expires_at INTEGER NOT NULL,
    completed_at      INTEGER,
    PRIMARY KEY (app_id, id)
);

-- Upload URLs name only the file; its id is unique across apps.
CREATE UNIQUE INDEX files_by_id ON files (id);
CREATE INDEX files_by_state ON files (state, upload_expires_at);

-- The conversations a file was sent in: their members may download it.
CREATE TABLE file_refs (
    app_id          TEXT NOT NULL,
    file_id         TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    PRIMARY KEY (app_id, file_id, conversation_id),
    FOREIGN KEY (app_id, file_id) REFERENCES files (app_id, id) ON DELETE CASCADE
);
