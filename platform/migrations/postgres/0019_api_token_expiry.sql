-- Operator API tokens gain an optional end and a last use (docs/console.md, "The operator
-- API"). An expired token keeps its row, like a revoked one, so a caller is told it expired.
-- last_used_at is written at most once a minute per token (not on every request), so a busy
-- script does not turn every read into a write.

ALTER TABLE console_api_tokens ADD COLUMN expires_at BIGINT;
ALTER TABLE console_api_tokens ADD COLUMN last_used_at BIGINT;
