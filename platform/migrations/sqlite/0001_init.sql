-- Tern's schema on SQLite. Times are unix milliseconds (INTEGER); JSON documents are TEXT.
-- Every table of tenant data is keyed by app_id first, so each query is scoped to one app.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    status      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE apps (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    name            TEXT NOT NULL,
    app_key         TEXT NOT NULL UNIQUE,
    status          TEXT NOT NULL,
    settings        TEXT NOT NULL,
    webhook_secret  BLOB NOT NULL,
    created_at      INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE app_secrets (
    id          TEXT PRIMARY KEY,
    app_id      TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    ciphertext  BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER
);
CREATE INDEX app_secrets_by_app ON app_secrets (app_id, created_at);

-- The per-app change version that conversation entries are stamped with (sync cursor).
CREATE TABLE app_versions (
    app_id   TEXT PRIMARY KEY,
    version  INTEGER NOT NULL
);

CREATE TABLE users (
    app_id                 TEXT NOT NULL,
    id                     TEXT NOT NULL,
    name                   TEXT NOT NULL,
    avatar_url             TEXT,
    metadata               TEXT NOT NULL,
    banned_until           INTEGER,
    tokens_revoked_before  INTEGER,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL,
    PRIMARY KEY (app_id, id)
);

-- sender_key is the user id, or '' for messages the app sends as itself.
CREATE TABLE messages (
    app_id           TEXT NOT NULL,
    msg_id           TEXT NOT NULL,
    conversation_id  TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    sender_key       TEXT NOT NULL,
    client_msg_id    TEXT NOT NULL,
    msg_type         TEXT NOT NULL,
    content          TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    recalled         BOOLEAN NOT NULL DEFAULT FALSE,
    edited_at        INTEGER,
    PRIMARY KEY (app_id, msg_id),
    UNIQUE (app_id, conversation_id, seq),
    UNIQUE (app_id, sender_key, client_msg_id)
);

CREATE TABLE conversations (
    app_id       TEXT NOT NULL,
    id           TEXT NOT NULL,
    last_seq     INTEGER NOT NULL,
    last_msg_id  TEXT,
    version      INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (app_id, id)
);

-- One line of a user's conversation list. Group timelines are shared (read diffusion):
-- a member has an entry here, never a copy of the messages.
CREATE TABLE user_conversations (
    app_id           TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    conversation_id  TEXT NOT NULL,
    read_seq         INTEGER NOT NULL,
    joined_seq       INTEGER NOT NULL,
    version          INTEGER NOT NULL,
    PRIMARY KEY (app_id, user_id, conversation_id)
);

CREATE TABLE groups (
    app_id        TEXT NOT NULL,
    id            TEXT NOT NULL,
    name          TEXT NOT NULL,
    owner         TEXT NOT NULL,
    metadata      TEXT NOT NULL,
    member_count  INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (app_id, id)
);

CREATE TABLE group_members (
    app_id      TEXT NOT NULL,
    group_id    TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    role        TEXT NOT NULL,
    joined_at   INTEGER NOT NULL,
    joined_seq  INTEGER NOT NULL,
    PRIMARY KEY (app_id, group_id, user_id),
    FOREIGN KEY (app_id, group_id) REFERENCES groups (app_id, id) ON DELETE CASCADE
);

CREATE TABLE outbox_events (
    id               TEXT PRIMARY KEY,
    app_id           TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    body             TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT
);
CREATE INDEX outbox_events_due ON outbox_events (next_attempt_at, created_at) WHERE state = 'pending';
CREATE INDEX outbox_events_by_app_state ON outbox_events (app_id, state, id);

CREATE TABLE platform_admins (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    email          TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    created_at     INTEGER NOT NULL
);
