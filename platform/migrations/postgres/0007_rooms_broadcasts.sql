-- Rooms (chatrooms and live rooms) and broadcasts (docs/rooms.md, docs/broadcasts.md).
--
-- A room is one registry row. Who is in it lives only in presence, for as long as their
-- connection does: there is no row per member. Its messages are the conversation
-- r:<id> in messages and conversations, like any other timeline.

CREATE TABLE rooms (
    app_id      TEXT NOT NULL,
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    metadata    TEXT NOT NULL,
    -- server_api (created by the app's backend) or join (created by a user's first join)
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (app_id, id)
);

-- Users who may read a room but not send to it, until a time. Dismissing the room drops them.
CREATE TABLE room_mutes (
    app_id      TEXT NOT NULL,
    room_id     TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    until       BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (app_id, room_id, user_id),
    FOREIGN KEY (app_id, room_id) REFERENCES rooms (app_id, id) ON DELETE CASCADE
);

-- A broadcast is a job that a worker runs in batches: each batch stores one notification
-- per user and moves the cursor in one transaction, so a job survives restarts and a
-- batch run twice stores nothing twice (each user's message is keyed by request_key).
CREATE TABLE broadcasts (
    app_id       TEXT NOT NULL,
    id           TEXT NOT NULL,
    -- The caller's client_msg_id, or the id itself: one job per key.
    request_key  TEXT NOT NULL,
    msg_type     TEXT NOT NULL,
    content      TEXT NOT NULL,
    -- NULL: every user of the app; else a JSON array of user ids.
    recipients   TEXT,
    -- running, done, cancelled or failed
    state        TEXT NOT NULL,
    -- Where the next batch starts: after this user id (every user), or at this index of
    -- recipients (a list).
    after_user   TEXT NOT NULL,
    next_index   BIGINT NOT NULL,
    total        BIGINT,
    users_seen   BIGINT NOT NULL,
    sent         BIGINT NOT NULL,
    failed       BIGINT NOT NULL,
    error        TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    finished_at  BIGINT,
    -- The worker holding the job, and until when (a worker that dies leaves it to the next).
    lease_owner  TEXT,
    lease_until  BIGINT NOT NULL,
    PRIMARY KEY (app_id, id),
    UNIQUE (app_id, request_key)
);
CREATE INDEX broadcasts_due ON broadcasts (state, lease_until);
