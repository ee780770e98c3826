-- Groups, complete: profiles, join policies, mutes, join requests, @mentions.

-- The profile beyond name and metadata. `version` is the app change version of the group's
-- last change (membership, roles, mutes, profile): each node's member cache is valid while
-- the row still carries the version it was built at.
ALTER TABLE groups ADD COLUMN avatar_url TEXT;
ALTER TABLE groups ADD COLUMN announcement TEXT NOT NULL DEFAULT '';
-- free, approval or invite_only
ALTER TABLE groups ADD COLUMN join_policy TEXT NOT NULL DEFAULT 'approval';
ALTER TABLE groups ADD COLUMN mute_all BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE groups ADD COLUMN version BIGINT NOT NULL DEFAULT 0;

-- Until when the member may not send in this group (NULL: not muted).
ALTER TABLE group_members ADD COLUMN muted_until BIGINT;
-- "The groups a user is in".
CREATE INDEX group_members_by_user ON group_members (app_id, user_id, group_id);

-- One request per (group, user); asking again replaces an answered one. `inviter` is the
-- member whose invitation became this request (approval groups), NULL when the user asked.
CREATE TABLE group_join_requests (
    app_id      TEXT NOT NULL,
    group_id    TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    message     TEXT NOT NULL,
    inviter     TEXT,
    -- pending, accepted or declined
    state       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (app_id, group_id, user_id),
    FOREIGN KEY (app_id, group_id) REFERENCES groups (app_id, id) ON DELETE CASCADE
);
CREATE INDEX group_join_requests_pending ON group_join_requests (app_id, group_id, state, user_id);

-- @mentions. A message keeps whom it mentions (JSON array of user ids, NULL for none) and
-- whether it mentions everyone. A member's entry remembers the last seq that mentioned them
-- by name, the conversation the last seq that mentioned everyone: an entry is "mentioned"
-- while either is above its read_seq, so a send writes rows only for the users it names.
ALTER TABLE messages ADD COLUMN mentions TEXT;
ALTER TABLE messages ADD COLUMN mention_all BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE user_conversations ADD COLUMN mention_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN mention_all_seq BIGINT NOT NULL DEFAULT 0;
