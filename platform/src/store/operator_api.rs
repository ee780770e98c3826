//! What the operator API (`/admin/v1`) keeps beyond the console's tables: its named tokens
//! (only each token's SHA-256), a search of tenants by name, and the invitations operators
//! send to make other operators (only each link token's SHA-256).

use async_trait::async_trait;

use crate::domain::*;
use crate::ids::*;

use super::StoreResult;

#[async_trait]
pub trait OperatorApiStore: Send + Sync {
    /// Keeps a new token under the SHA-256 of its value. `NotFound` when the account or
    /// the tenant does not exist.
    async fn create_api_token(&self, token: &ApiToken, token_hash: &str) -> StoreResult<()>;
    /// The token whose value hashes to this, revoked or not.
    async fn api_token_by_hash(&self, token_hash: &str) -> StoreResult<Option<ApiToken>>;
    async fn api_token(&self, id: &str) -> StoreResult<Option<ApiToken>>;
    /// The account's tokens, newest first, revoked ones too.
    async fn api_tokens_of(&self, account: i64) -> StoreResult<Vec<ApiToken>>;
    /// Marks the token revoked at `now`; `false` when it was revoked already or is unknown.
    async fn revoke_api_token(&self, id: &str, now: UnixMillis) -> StoreResult<bool>;
    /// Records a use at `now` unless one was recorded after `now - every` (so at most one
    /// write per token per `every`, whichever node answers); `true` when it wrote.
    async fn touch_api_token(&self, id: &str, now: UnixMillis, every: i64) -> StoreResult<bool>;
    /// Tenants by id after `after` whose name contains `query` (ignoring case).
    async fn search_tenants(&self, query: &str, after: Option<&TenantId>, limit: u32) -> StoreResult<Vec<Tenant>>;
    /// Keeps an operator invitation.
    async fn create_operator_invitation(&self, invitation: &OperatorInvitation) -> StoreResult<()>;
    /// The operator invitation whose link token hashes to this, unless accepted or expired
    /// by `now`.
    async fn pending_operator_invitation(
        &self,
        token_hash: &str,
        now: UnixMillis,
    ) -> StoreResult<Option<OperatorInvitation>>;
    /// The operator invitations still open at `now`, newest first.
    async fn operator_invitations(&self, now: UnixMillis) -> StoreResult<Vec<OperatorInvitation>>;
    /// Ends an open operator invitation now; `false` when there is none by that hash.
    async fn revoke_operator_invitation(&self, token_hash: &str, now: UnixMillis) -> StoreResult<bool>;
    /// Accepts an operator invitation, once, in one transaction: marks it accepted, creates
    /// the account when the email has none (with `new_password_hash`, which must then be
    /// given) and makes it an operator. `NotFound` when the link is unknown, accepted or
    /// expired; `Rejected` when a new account has no password.
    async fn accept_operator_invitation(
        &self,
        token_hash: &str,
        new_password_hash: Option<&str>,
        now: UnixMillis,
    ) -> StoreResult<(OperatorInvitation, ConsoleAccount)>;
}

/// `impl OperatorApiStore` for a SQL adapter. Expanded by `shared_sql::sql_store!`.
macro_rules! operator_api_sql {
    ($store:ty, $db:ty, $backend:expr) => {
        const API_TOKEN_SELECT: &str = "SELECT t.id, t.account_id, a.email, t.name, t.tenant_id, t.role, \
             t.created_at, t.revoked_at, t.expires_at, t.last_used_at FROM console_api_tokens t JOIN console_accounts a ON a.id = t.account_id";

        fn api_token_from_row(row: &DbRow) -> StoreResult<ApiToken> {
            let tenant: Option<String> = col(row, "tenant_id")?;
            let role: Option<String> = col(row, "role")?;
            Ok(ApiToken {
                id: col(row, "id")?,
                account_id: col(row, "account_id")?,
                email: col(row, "email")?,
                name: col(row, "name")?,
                tenant_id: tenant
                    .map(|t| TenantId::parse(&t).map_err(|_| corrupt("tenant id", &t)))
                    .transpose()?,
                role: role
                    .map(|r| ConsoleRole::parse(&r).ok_or_else(|| corrupt("console role", &r)))
                    .transpose()?,
                created_at: col(row, "created_at")?,
                revoked_at: col(row, "revoked_at")?,
                expires_at: col(row, "expires_at")?,
                last_used_at: col(row, "last_used_at")?,
            })
        }

        const OPERATOR_INVITATION_COLUMNS: &str =
            "token_hash, email, invited_by, created_at, expires_at, accepted_at";

        fn operator_invitation_from_row(row: &DbRow) -> StoreResult<OperatorInvitation> {
            Ok(OperatorInvitation {
                token_hash: col(row, "token_hash")?,
                email: col(row, "email")?,
                invited_by: col(row, "invited_by")?,
                created_at: col(row, "created_at")?,
                expires_at: col(row, "expires_at")?,
                accepted_at: col(row, "accepted_at")?,
            })
        }

        #[async_trait]
        impl $crate::store::OperatorApiStore for $store {
            async fn create_api_token(&self, t: &ApiToken, token_hash: &str) -> StoreResult<()> {
                if self.account(t.account_id).await?.is_none() {
                    return Err(StoreError::NotFound("account"));
                }
                if let Some(tenant) = &t.tenant_id {
                    if self.tenant(tenant).await?.is_none() {
                        return Err(StoreError::NotFound("tenant"));
                    }
                }
                sqlx::query::<$db>(
                    "INSERT INTO console_api_tokens (id, token_hash, account_id, name, tenant_id, role, created_at, revoked_at, \
                     expires_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&t.id)
                .bind(token_hash)
                .bind(t.account_id)
                .bind(&t.name)
                .bind(t.tenant_id.as_ref().map(TenantId::as_str))
                .bind(t.role.map(ConsoleRole::as_str))
                .bind(t.created_at)
                .bind(t.revoked_at)
                .bind(t.expires_at)
                .bind(t.last_used_at)
                .execute(self.writer())
                .await
                .map_err(map_err)?;
                Ok(())
            }

            async fn api_token_by_hash(&self, token_hash: &str) -> StoreResult<Option<ApiToken>> {
                let row = sqlx::query::<$db>(&format!("{API_TOKEN_SELECT} WHERE t.token_hash = $1"))
                    .bind(token_hash)
                    .fetch_optional(self.reader())
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(api_token_from_row).transpose()
            }

            async fn api_token(&self, id: &str) -> StoreResult<Option<ApiToken>> {
                let row = sqlx::query::<$db>(&format!("{API_TOKEN_SELECT} WHERE t.id = $1"))
                    .bind(id)
                    .fetch_optional(self.reader())
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(api_token_from_row).transpose()
            }

            async fn api_tokens_of(&self, account: i64) -> StoreResult<Vec<ApiToken>> {
                let rows = sqlx::query::<$db>(&format!(
                    "{API_TOKEN_SELECT} WHERE t.account_id = $1 ORDER BY t.created_at DESC, t.id LIMIT 500"
                ))
                .bind(account)
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter().map(api_token_from_row).collect()
            }

            async fn revoke_api_token(&self, id: &str, now: UnixMillis) -> StoreResult<bool> {
                let r = sqlx::query::<$db>(
                    "UPDATE console_api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(id)
                .execute(self.writer())
                .await
                .map_err(map_err)?;
                Ok(r.rows_affected() == 1)
            }

            async fn touch_api_token(&self, id: &str, now: UnixMillis, every: i64) -> StoreResult<bool> {
                let r = sqlx::query::<$db>(
                    "UPDATE console_api_tokens SET last_used_at = $1 \
                     WHERE id = $2 AND (last_used_at IS NULL OR last_used_at <= $3)",
                )
                .bind(now)
                .bind(id)
                .bind(now.saturating_sub(every))
                .execute(self.writer())
                .await
                .map_err(map_err)?;
                Ok(r.rows_affected() == 1)
            }

            async fn search_tenants(
                &self,
                query: &str,
                after: Option<&TenantId>,
                limit: u32,
            ) -> StoreResult<Vec<Tenant>> {
                // LIKE's wildcards in the query match themselves.
                let escaped = query.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
                let rows = sqlx::query::<$db>(
                    "SELECT id, name, status, created_at FROM tenants WHERE id > $1 \
                     AND LOWER(name) LIKE LOWER($2) ESCAPE '\\' ORDER BY id LIMIT $3",
                )
                .bind(after.map(TenantId::as_str).unwrap_or(""))
                .bind(format!("%{escaped}%"))
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter().map(tenant_from_row).collect()
            }

            async fn create_operator_invitation(&self, i: &OperatorInvitation) -> StoreResult<()> {
                sqlx::query::<$db>(
                    "INSERT INTO console_operator_invitations \
                     (token_hash, email, invited_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&i.token_hash)
                .bind(&i.email)
                .bind(&i.invited_by)
                .bind(i.created_at)
                .bind(i.expires_at)
                .execute(self.writer())
                .await
                .map_err(map_err)?;
                Ok(())
            }

            async fn pending_operator_invitation(
                &self,
                token_hash: &str,
                now: UnixMillis,
            ) -> StoreResult<Option<OperatorInvitation>> {
                let row = sqlx::query::<$db>(&format!(
                    "SELECT {OPERATOR_INVITATION_COLUMNS} FROM console_operator_invitations \
                     WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > $2"
                ))
                .bind(token_hash)
                .bind(now)
                .fetch_optional(self.reader())
                .await
                .map_err(map_err)?;
                row.as_ref().map(operator_invitation_from_row).transpose()
            }

            async fn operator_invitations(&self, now: UnixMillis) -> StoreResult<Vec<OperatorInvitation>> {
                let rows = sqlx::query::<$db>(&format!(
                    "SELECT {OPERATOR_INVITATION_COLUMNS} FROM console_operator_invitations \
                     WHERE accepted_at IS NULL AND expires_at > $1 ORDER BY created_at DESC, token_hash LIMIT 500"
                ))
                .bind(now)
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter().map(operator_invitation_from_row).collect()
            }

            async fn revoke_operator_invitation(&self, token_hash: &str, now: UnixMillis) -> StoreResult<bool> {
                let r = sqlx::query::<$db>(
                    "UPDATE console_operator_invitations SET expires_at = $2 \
                     WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > $2",
                )
                .bind(token_hash)
                .bind(now)
                .execute(self.writer())
                .await
                .map_err(map_err)?;
                Ok(r.rows_affected() == 1)
            }

            async fn accept_operator_invitation(
                &self,
                token_hash: &str,
                new_password_hash: Option<&str>,
                now: UnixMillis,
            ) -> StoreResult<(OperatorInvitation, ConsoleAccount)> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                // Used up here, in the transaction: a second use finds nothing to update.
                let row = sqlx::query::<$db>(&format!(
                    "UPDATE console_operator_invitations SET accepted_at = $2 \
                     WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > $2 \
                     RETURNING {OPERATOR_INVITATION_COLUMNS}"
                ))
                .bind(token_hash)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?
                .ok_or(StoreError::NotFound("invitation"))?;
                let invitation = operator_invitation_from_row(&row)?;
                let existing = sqlx::query::<$db>(&format!(
                    "UPDATE console_accounts SET operator = TRUE WHERE LOWER(email) = LOWER($1) \
                     RETURNING {ACCOUNT_COLUMNS}"
                ))
                .bind(&invitation.email)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
                let account = match existing {
                    Some(row) => account_from_row(&row)?,
                    None => {
                        let hash = new_password_hash
                            .ok_or_else(|| StoreError::Rejected("a new account needs a password".into()))?;
                        let row = sqlx::query::<$db>(&format!(
                            "INSERT INTO console_accounts (email, password_hash, operator, created_at) \
                             VALUES ($1, $2, TRUE, $3) RETURNING {ACCOUNT_COLUMNS}"
                        ))
                        .bind(&invitation.email)
                        .bind(hash)
                        .bind(now)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(map_err)?;
                        account_from_row(&row)?
                    }
                };
                tx.commit().await.map_err(map_err)?;
                Ok((invitation, account))
            }
        }
    };
}
pub(crate) use operator_api_sql;
