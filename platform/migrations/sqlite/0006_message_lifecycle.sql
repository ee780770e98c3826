-- The message lifecycle: replies, edits, recalls, deletes for one user, extensions and
-- reactions, and the log of changes that devices pull when they sync (docs/messages.md).

-- The message this one quotes (same conversation), and the app change version of the
-- message's last change (0: never changed). A change with a version at or below a message's
-- version is already part of it.
ALTER TABLE messages ADD COLUMN reply_to TEXT;
ALTER TABLE messages ADD COLUMN version INTEGER NOT NULL DEFAULT 0;

-- One row per change to a message (edit, recall, extensions, reaction), each with its own
-- app change version. A device that was away pulls a conversation's rows after the version
-- it last synced; a recall removes the message's earlier rows (their content is gone).
-- data is JSON whose shape depends on kind.
CREATE TABLE message_changes (
    app_id           TEXT NOT NULL,
    version          INTEGER NOT NULL,
    conversation_id  TEXT NOT NULL,
    msg_id           TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    kind             TEXT NOT NULL,
    actor            TEXT,
    data             TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (app_id, version)
);
CREATE INDEX message_changes_by_conversation ON message_changes (app_id, conversation_id, version);
CREATE INDEX message_changes_by_message ON message_changes (app_id, msg_id);

-- Messages a user deleted for themselves: left out of their history and conversation list,
-- on all their devices. Each row has its own app change version (what other devices sync).
CREATE TABLE message_deletions (
    app_id           TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    msg_id           TEXT NOT NULL,
    conversation_id  TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    version          INTEGER NOT NULL,
    deleted_at       INTEGER NOT NULL,
    PRIMARY KEY (app_id, user_id, msg_id)
);
CREATE INDEX message_deletions_by_conversation ON message_deletions (app_id, user_id, conversation_id, version);

-- Key-value pairs on a message. A deleted key keeps its row with value NULL, so its version
-- keeps growing and a compare-and-set against an old version never succeeds by accident.
CREATE TABLE message_extensions (
    app_id      TEXT NOT NULL,
    msg_id      TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT,
    version     INTEGER NOT NULL,
    updated_by  TEXT,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (app_id, msg_id, key)
);

CREATE TABLE message_reactions (
    app_id      TEXT NOT NULL,
    msg_id      TEXT NOT NULL,
    reaction    TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (app_id, msg_id, reaction, user_id)
);
-- Who reacted with one reaction, first reactors first (paging), and a user's reactions.
CREATE INDEX message_reactions_by_time ON message_reactions (app_id, msg_id, reaction, created_at, user_id);
CREATE INDEX message_reactions_by_user ON message_reactions (app_id, msg_id, user_id);
