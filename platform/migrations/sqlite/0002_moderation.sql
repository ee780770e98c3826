-- Moderation: app-wide mutes, sensitive-word lists and the version that tells every node's
-- matcher cache that an app's lists changed.

ALTER TABLE users ADD COLUMN muted_until INTEGER;

-- words is a JSON array of strings.
CREATE TABLE word_lists (
    app_id      TEXT NOT NULL,
    name        TEXT NOT NULL,
    policy      TEXT NOT NULL,
    words       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (app_id, name)
);

-- One row per app that ever had a list; bumped by every change to its lists.
CREATE TABLE word_list_versions (
    app_id   TEXT PRIMARY KEY,
    version  INTEGER NOT NULL
);
