-- The operations console: accounts (operators and tenant members), their tenant
-- memberships, sign-in sessions, and the append-only audit log of console changes.
-- The platform admins become console accounts: every existing one is an operator.

ALTER TABLE platform_admins RENAME TO console_accounts;
ALTER TABLE console_accounts ADD COLUMN operator BOOLEAN NOT NULL DEFAULT TRUE;
-- Wrong passwords since the last sign-in; reaching the limit locks the account a while.
ALTER TABLE console_accounts ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE console_accounts ADD COLUMN locked_until INTEGER;

CREATE TABLE console_memberships (
    account_id  INTEGER NOT NULL REFERENCES console_accounts (id) ON DELETE CASCADE,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    role        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (account_id, tenant_id)
);
CREATE INDEX console_memberships_by_tenant ON console_memberships (tenant_id);

-- Only the SHA-256 of a session token is kept: a copy of this table signs nobody in.
CREATE TABLE console_sessions (
    token_hash  TEXT PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES console_accounts (id) ON DELETE CASCADE,
    csrf_token  TEXT NOT NULL,
    ip          TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX console_sessions_by_account ON console_sessions (account_id);

CREATE TABLE console_audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    ip         TEXT NOT NULL,
    tenant_id  TEXT,
    app_id     TEXT,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    detail     TEXT NOT NULL
);
CREATE INDEX console_audit_by_tenant ON console_audit (tenant_id, id);

CREATE TRIGGER console_audit_no_update BEFORE UPDATE ON console_audit
BEGIN
    SELECT RAISE(ABORT, 'console_audit is append-only');
END;
CREATE TRIGGER console_audit_no_delete BEFORE DELETE ON console_audit
BEGIN
    SELECT RAISE(ABORT, 'console_audit is append-only');
END;
