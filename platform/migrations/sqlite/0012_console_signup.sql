-- The console's sign-up, invitations, mail outbox and usage counters.

-- A public sign-up waiting for its email to be verified. Only the SHA-256 of the link's
-- token is kept. Verifying creates the tenant, the owner's account and membership in one
-- transaction and marks the row used, so a link works once.
CREATE TABLE console_signups (
    token_hash     TEXT PRIMARY KEY,
    email          TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    tenant_name    TEXT NOT NULL,
    ip             TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER
);
CREATE INDEX console_signups_by_email ON console_signups (email);

-- An invitation to join a tenant with a role, sent by email; accepted once.
CREATE TABLE console_invitations (
    token_hash   TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    email        TEXT NOT NULL,
    role         TEXT NOT NULL,
    invited_by   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    accepted_at  INTEGER
);
CREATE INDEX console_invitations_by_tenant ON console_invitations (tenant_id, created_at);

-- Every mail the platform sent (or wrote to the mail folder): to whom, what about, how it
-- went. Never the body: links in it carry single-use tokens.
CREATE TABLE console_mail (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    tenant_id  TEXT,
    recipient  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    transport  TEXT NOT NULL,
    status     TEXT NOT NULL,
    error      TEXT NOT NULL
);

-- Usage per app per hour (`hour`: the hour's first millisecond): messages sent, server API
-- calls, and the most live connections seen at once.
CREATE TABLE usage_hourly (
    app_id       TEXT NOT NULL REFERENCES apps (id),
    hour         INTEGER NOT NULL,
    messages     INTEGER NOT NULL DEFAULT 0,
    api_calls    INTEGER NOT NULL DEFAULT 0,
    connections  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, hour)
);
