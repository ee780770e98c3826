-- A rotated-out webhook secret stays valid (and is signed with) until its grace period ends.
ALTER TABLE apps ADD COLUMN previous_webhook_secret BLOB;
ALTER TABLE apps ADD COLUMN previous_webhook_secret_expires_at BIGINT;
