-- Files whose messages went away (recalled, or their group or room deleted): when that was
-- noticed (unix ms). The worker's sweep deletes such a file once the grace period has passed
-- and no message that is not recalled still names it; NULL for a file in use.
ALTER TABLE files ADD COLUMN released_at BIGINT;

CREATE INDEX files_released ON files (released_at) WHERE released_at IS NOT NULL;

-- The request writing to an upload, on whichever node (`upload_busy` for a second one): a
-- token of its own and until when (unix ms) the lease holds unless renewed; a node that
-- dies lets it lapse.
ALTER TABLE files ADD COLUMN writer_token TEXT;
ALTER TABLE files ADD COLUMN writer_until BIGINT;
