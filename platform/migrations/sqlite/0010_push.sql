-- Offline push (docs/push.md): devices with their provider tokens, each app's provider
-- credentials (sealed like its secrets), the push outbox written with each message, the
-- per-device jobs the worker sends, and the per-device delivery log.

-- A device a user registered for offline pushes. A token belongs to one device of one
-- user in an app: registering it again (for any user) moves it.
CREATE TABLE push_devices (
    app_id      TEXT NOT NULL,
    id          TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    -- apns or fcm
    provider    TEXT NOT NULL,
    token       TEXT NOT NULL,
    -- APNs: the app's bundle id (apns-topic); FCM: empty (the credentials name the project).
    topic       TEXT NOT NULL,
    -- sandbox or production (APNs only; FCM is always production)
    environment TEXT NOT NULL,
    locale      TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (app_id, id),
    UNIQUE (app_id, provider, token)
);
CREATE INDEX push_devices_by_user ON push_devices (app_id, user_id);

-- An app's credentials for one provider: the secret part only as a SecretBox ciphertext
-- (the app id is its associated data); `summary` holds what may be shown (key id, team id,
-- bundle id; FCM project id and client email), as JSON.
CREATE TABLE push_credentials (
    app_id      TEXT NOT NULL,
    provider    TEXT NOT NULL,
    ciphertext  BLOB NOT NULL,
    summary     TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (app_id, provider)
);

-- One row per stored message that may need pushing, written in the message's transaction,
-- so a crash after the send loses no push. The worker leases a row, expands it into jobs
-- for the recipients who were offline, and deletes it in one transaction.
CREATE TABLE push_outbox (
    app_id          TEXT NOT NULL,
    msg_id          TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, msg_id)
);
CREATE INDEX push_outbox_due ON push_outbox (next_attempt_at);

-- One push of one message to one device: at most one row per message and device, so a
-- message is never queued twice for a device. `payload` is the provider-neutral
-- notification, fixed when the job is made.
CREATE TABLE push_jobs (
    app_id          TEXT NOT NULL,
    msg_id          TEXT NOT NULL,
    device_id       TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    payload         TEXT NOT NULL,
    -- pending, sent or failed
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (app_id, msg_id, device_id)
);
CREATE INDEX push_jobs_due ON push_jobs (state, next_attempt_at);

-- Every push attempt, with the provider's answer: why a notification did or did not arrive.
CREATE TABLE push_log (
    app_id      TEXT NOT NULL,
    id          TEXT NOT NULL,
    at          INTEGER NOT NULL,
    user_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    -- empty for a test push
    msg_id      TEXT NOT NULL,
    provider    TEXT NOT NULL,
    -- sent, retrying, failed or token_removed
    outcome     TEXT NOT NULL,
    -- the provider's HTTP status, 0 when it was not reached
    http_status INTEGER NOT NULL,
    -- the provider's reason (BadDeviceToken, UNREGISTERED, ...) or the local error
    reason      TEXT,
    -- the provider's id of the notification (apns-id, FCM message name)
    provider_id TEXT,
    latency_ms  INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,
    PRIMARY KEY (app_id, id)
);
CREATE INDEX push_log_by_user ON push_log (app_id, user_id, id);
CREATE INDEX push_log_by_device ON push_log (app_id, device_id, id);
CREATE INDEX push_log_by_msg ON push_log (app_id, msg_id, id);
