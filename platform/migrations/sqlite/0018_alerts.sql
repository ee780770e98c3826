-- API errors and alerts (docs/console.md, "Alerts").
--
-- Server API calls that answered an error (4xx or 5xx), per app per hour beside api_calls.
ALTER TABLE usage_hourly ADD COLUMN errors INTEGER NOT NULL DEFAULT 0;

-- The same calls and errors per minute, for alert rules on an error rate over a few minutes
-- (the hourly rows are too coarse). Kept two days; the alert evaluator deletes older rows.
CREATE TABLE usage_minutely (
    app_id     TEXT NOT NULL REFERENCES apps (id),
    -- the minute's first millisecond
    minute     INTEGER NOT NULL,
    api_calls  INTEGER NOT NULL DEFAULT 0,
    errors     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, minute)
);
CREATE INDEX usage_minutely_by_minute ON usage_minutely (minute);

-- An app's alert rules: one condition each (kind and thresholds), checked every minute.
CREATE TABLE alert_rules (
    -- ar_ + ULID
    id              TEXT PRIMARY KEY,
    app_id          TEXT NOT NULL REFERENCES apps (id),
    -- error_rate, webhook_failures, dead_events or connection_drop
    kind            TEXT NOT NULL,
    -- percent (error_rate, connection_drop) or a count (webhook_failures, dead_events)
    threshold       INTEGER NOT NULL,
    -- how far back the condition looks (error_rate, webhook_failures)
    window_minutes  INTEGER NOT NULL,
    -- the least volume for the rule to judge: calls (error_rate), the earlier hour's peak (connection_drop)
    min_volume      INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX alert_rules_by_app ON alert_rules (app_id, id);

-- Raised alerts: one row per episode of a rule's condition holding; resolved_at is set when
-- it stops holding (or the rule is deleted). The rule's settings are copied, so an alert
-- still says what it was about after the rule changes or goes.
CREATE TABLE alerts (
    -- al_ + ULID: newest first by id
    id           TEXT PRIMARY KEY,
    app_id       TEXT NOT NULL REFERENCES apps (id),
    rule_id      TEXT NOT NULL,
    kind         TEXT NOT NULL,
    threshold    INTEGER NOT NULL,
    -- what was seen when it was raised, in words
    summary      TEXT NOT NULL,
    raised_at    INTEGER NOT NULL,
    resolved_at  INTEGER
);
-- At most one open alert per rule: a second node's raise of the same episode is a no-op.
CREATE UNIQUE INDEX alerts_one_open_per_rule ON alerts (rule_id) WHERE resolved_at IS NULL;
CREATE INDEX alerts_by_app ON alerts (app_id, id);
CREATE INDEX alerts_open ON alerts (resolved_at, app_id);

-- A lease per singleton background job (the alert evaluator): one node holds it until
-- `until_ms` and renews it; another takes it over when it lapses.
CREATE TABLE worker_leases (
    name      TEXT PRIMARY KEY,
    owner     TEXT NOT NULL,
    until_ms  INTEGER NOT NULL
);
