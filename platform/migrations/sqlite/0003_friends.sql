-- Friends and blocks. Each friendship is two rows, one per side, so either side may keep
-- its own remark and tags and may delete only its own row (a one-sided delete).

CREATE TABLE friends (
    app_id      TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    friend_id   TEXT NOT NULL,
    remark      TEXT,
    -- JSON array of strings.
    tags        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (app_id, user_id, friend_id)
);

-- One request per ordered pair; a new request replaces an answered one.
CREATE TABLE friend_requests (
    app_id      TEXT NOT NULL,
    from_user   TEXT NOT NULL,
    to_user     TEXT NOT NULL,
    message     TEXT NOT NULL,
    -- pending, accepted or declined
    state       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (app_id, from_user, to_user)
);
CREATE INDEX friend_requests_to ON friend_requests (app_id, to_user, state, from_user);

CREATE TABLE blocks (
    app_id      TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    blocked_id  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (app_id, user_id, blocked_id)
);
