-- When to push (docs/push.md): conversations a user muted (their messages are not pushed
-- to that user; live delivery is unchanged) and a user's do-not-disturb hours.

CREATE TABLE push_mutes (
    app_id          TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (app_id, user_id, conversation_id)
);

-- No pushes from start_minute to end_minute (minutes after local midnight; end before
-- start runs over midnight), local time being UTC plus utc_offset_minutes.
CREATE TABLE push_dnd (
    app_id             TEXT NOT NULL,
    user_id            TEXT NOT NULL,
    start_minute       INTEGER NOT NULL,
    end_minute         INTEGER NOT NULL,
    utc_offset_minutes INTEGER NOT NULL,
    updated_at         BIGINT NOT NULL,
    PRIMARY KEY (app_id, user_id)
);
