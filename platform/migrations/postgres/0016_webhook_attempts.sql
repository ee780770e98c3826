-- The webhook delivery log (docs/webhooks.md, "The delivery log"): one row per attempt to
-- POST an after-event, and per test event sent from the console. Kept 7 days; the worker
-- deletes older rows. And an index for the console's platform overview.

CREATE TABLE webhook_attempts (
    app_id           TEXT NOT NULL,
    -- wa_ + ULID: the log pages by it, newest first
    id               TEXT NOT NULL,
    at               BIGINT NOT NULL,
    -- the outbox event's wh_ id (the X-Tern-Webhook-Id)
    event_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    -- X-Tern-Attempt, from 1
    attempt          INTEGER NOT NULL,
    -- delivered, retrying, dead or failed (a test event, which is not retried)
    outcome          TEXT NOT NULL,
    -- the endpoint's HTTP status, 0 when it was not reached
    http_status      INTEGER NOT NULL,
    -- why the attempt failed, when it did
    error            TEXT,
    latency_ms       BIGINT NOT NULL,
    -- the start of the endpoint's answer, as text
    response_excerpt TEXT NOT NULL,
    PRIMARY KEY (app_id, id)
);
CREATE INDEX webhook_attempts_by_event ON webhook_attempts (app_id, event_id, id);
CREATE INDEX webhook_attempts_at ON webhook_attempts (at);
CREATE INDEX webhook_attempts_by_app_at ON webhook_attempts (app_id, at);

-- The overview's platform-wide usage reads every app's hours in a period.
CREATE INDEX usage_hourly_by_hour ON usage_hourly (hour);
