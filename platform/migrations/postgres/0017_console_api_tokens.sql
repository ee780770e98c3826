-- Operator API tokens (docs/console.md, "The operator API"): a named token an operator or a
-- tenant member makes in the console to script /admin/v1. Only the token's SHA-256 is kept;
-- the token itself is shown once. A revoked token keeps its row (marked) so a caller is told
-- it was revoked; removing the account removes its tokens.

CREATE TABLE console_api_tokens (
    -- at_ + random hex: how the console and the audit log name a token
    id          TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    account_id  BIGINT NOT NULL REFERENCES console_accounts (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    -- NULL: a platform token (an operator's, every tenant); else the one tenant it acts in
    tenant_id   TEXT REFERENCES tenants (id) ON DELETE CASCADE,
    -- the most it may do in its tenant (owner, admin, developer, viewer); NULL for platform tokens
    role        TEXT,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX console_api_tokens_by_account ON console_api_tokens (account_id, created_at);
CREATE INDEX console_api_tokens_by_tenant ON console_api_tokens (tenant_id);
