-- Operator invitations (docs/console.md, "Operators"): an operator invites another by email.
-- The mailed link works once, for 24 hours; only its token's SHA-256 is kept. Revoking sets
-- expires_at to the moment of revoking, as console_invitations does.

CREATE TABLE console_operator_invitations (
    token_hash   TEXT PRIMARY KEY,
    email        TEXT NOT NULL,
    invited_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    accepted_at  BIGINT
);
CREATE INDEX console_operator_invitations_open ON console_operator_invitations (expires_at);
