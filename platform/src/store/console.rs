//! The console's accounts, tenant memberships, sessions and audit log.

use async_trait::async_trait;

use crate::domain::*;
use crate::ids::*;

use super::StoreResult;

/// Console accounts and what hangs off them. Accounts are the platform admins' table, so
/// an operator made by `ensure_first_admin` signs in here.
#[async_trait]
pub trait ConsoleStore: Send + Sync {
    /// `Conflict` if an account has that email.
    async fn create_account(
        &self,
        email: &str,
        password_hash: &str,
        operator: bool,
        now: UnixMillis,
    ) -> StoreResult<ConsoleAccount>;
    async fn account(&self, id: i64) -> StoreResult<Option<ConsoleAccount>>;
    /// The account with this email, ignoring ASCII case.
    async fn account_by_email(&self, email: &str) -> StoreResult<Option<ConsoleAccount>>;
    /// Counts a wrong password. At `max_failures` the account is locked until `lock_until`
    /// and the count starts again. Returns the account as it is after. `NotFound` for none.
    async fn record_failed_login(
        &self,
        id: i64,
        max_failures: i32,
        lock_until: UnixMillis,
    ) -> StoreResult<ConsoleAccount>;
    /// A successful sign-in: the count of wrong passwords starts again, any lock is lifted.
    async fn clear_failed_logins(&self, id: i64) -> StoreResult<()>;
    /// Makes the account a member of the tenant with this role (or changes its role).
    /// `NotFound` when the tenant or the account does not exist.
    async fn set_membership(
        &self,
        account: i64,
        tenant: &TenantId,
        role: ConsoleRole,
        now: UnixMillis,
    ) -> StoreResult<()>;
    /// The tenants the account belongs to, oldest membership first.
    async fn memberships_of(&self, account: i64) -> StoreResult<Vec<Membership>>;
    /// The tenant's members, by email.
    async fn tenant_members(&self, tenant: &TenantId) -> StoreResult<Vec<Membership>>;
    async fn create_session(&self, session: &ConsoleSession) -> StoreResult<()>;
    /// The session with this token hash, unless it has expired by `now`.
    async fn session(&self, token_hash: &str, now: UnixMillis) -> StoreResult<Option<ConsoleSession>>;
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()>;
    /// Ends every session of the account; returns how many there were.
    async fn delete_sessions_of(&self, account: i64) -> StoreResult<u64>;
    /// Appends to the audit log (which the database refuses to change or delete); returns the id.
    async fn append_audit(&self, entry: &NewAuditEntry, at: UnixMillis) -> StoreResult<i64>;
    /// The log newest first, before id `before`: the tenant's entries, or with `None` all.
    async fn audit_log(
        &self,
        tenant: Option<&TenantId>,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<AuditEntry>>;

    /// Keeps a sign-up until its email is verified.
    async fn create_signup(&self, signup: &NewSignup) -> StoreResult<()>;
    /// The sign-up whose link token hashes to this, unless it was used or has expired by `now`.
    async fn pending_signup(&self, token_hash: &str, now: UnixMillis) -> StoreResult<Option<NewSignup>>;
    /// Verifies a sign-up, once: in one transaction marks it used and creates its tenant
    /// (`tenant`, with this `status`), the owner's account and their owner membership.
    /// `NotFound` when the link is unknown, used or expired; `Conflict` when the tenant
    /// name or the email was taken meanwhile (then nothing is written and the link still works).
    async fn complete_signup(
        &self,
        token_hash: &str,
        tenant: &TenantId,
        status: TenantStatus,
        now: UnixMillis,
    ) -> StoreResult<(Tenant, ConsoleAccount)>;
    /// Tenants with this status, oldest first.
    async fn tenants_with_status(&self, status: TenantStatus, limit: u32) -> StoreResult<Vec<Tenant>>;
    /// Sets a tenant's status only if it is `from` now; `false` when it was not (someone
    /// decided first), `NotFound` when there is no such tenant.
    async fn change_tenant_status(&self, id: &TenantId, from: TenantStatus, to: TenantStatus) -> StoreResult<bool>;
    /// Notes a mail in the outbox; returns its id.
    async fn record_mail(&self, mail: &NewMail, at: UnixMillis) -> StoreResult<i64>;
    /// The outbox newest first, before id `before`.
    async fn mail_log(&self, before: Option<i64>, limit: u32) -> StoreResult<Vec<MailRecord>>;
    /// Keeps an invitation. `NotFound` when the tenant does not exist.
    async fn create_invitation(&self, invitation: &Invitation) -> StoreResult<()>;
    /// The invitation whose link token hashes to this, unless accepted or expired by `now`.
    async fn pending_invitation(&self, token_hash: &str, now: UnixMillis) -> StoreResult<Option<Invitation>>;
    /// The tenant's invitations still open at `now`, newest first.
    async fn tenant_invitations(&self, tenant: &TenantId, now: UnixMillis) -> StoreResult<Vec<Invitation>>;
    /// Ends an open invitation of this tenant now; `false` when there is none by that hash.
    async fn revoke_invitation(&self, tenant: &TenantId, token_hash: &str, now: UnixMillis) -> StoreResult<bool>;
    /// Accepts an invitation, once, in one transaction: marks it accepted, creates the
    /// account when the email has none (with `new_password_hash`, which must then be
    /// given) and makes it a member with the invited role. `NotFound` when the link is
    /// unknown, accepted or expired; `Rejected` when a new account has no password or the
    /// email belongs to an operator.
    async fn accept_invitation(
        &self,
        token_hash: &str,
        new_password_hash: Option<&str>,
        now: UnixMillis,
    ) -> StoreResult<(Invitation, ConsoleAccount)>;
    /// Removes the account from the tenant; `false` when it was no member.
    async fn remove_membership(&self, account: i64, tenant: &TenantId) -> StoreResult<bool>;
    /// Adds a node's counts, in one transaction: messages, API calls and errors are summed,
    /// connections keep the largest; the per-minute calls and errors are summed too.
    async fn add_usage(
        &self,
        hours: &[crate::usage::UsageHour],
        minutes: &[crate::usage::UsageMinute],
    ) -> StoreResult<()>;
    /// The app's hours from `from` (inclusive) to `to` (exclusive), oldest first; hours with
    /// nothing counted are absent.
    async fn usage(&self, app: &AppId, from: UnixMillis, to: UnixMillis) -> StoreResult<Vec<crate::usage::UsageHour>>;
    /// Every app's hours from `from` to `to` added up, oldest first: messages and API calls
    /// summed, and the apps' peak connections summed (each app's peak, not the platform's).
    async fn platform_usage(
        &self,
        from: UnixMillis,
        to: UnixMillis,
    ) -> StoreResult<Vec<(UnixMillis, crate::usage::UsageCounts)>>;
}

/// `impl ConsoleStore` for a SQL adapter. Expanded by `shared_sql::sql_store!`.
macro_rules! console_sql {
    ($store:ty, $db:ty, $backend:expr) => {
        const ACCOUNT_COLUMNS: &str = "id, email, password_hash, operator, failed_logins, locked_until, created_at";

        fn account_from_row(row: &DbRow) -> StoreResult<ConsoleAccount> {
            Ok(ConsoleAccount {
                id: col(row, "id")?,
                email: col(row, "email")?,
                password_hash: col(row, "password_hash")?,
                operator: col(row, "operator")?,
                failed_logins: col(row, "failed_logins")?,
                locked_until: col(row, "locked_until")?,
                created_at: col(row, "created_at")?,
            })
        }

        fn membership_from_row(row: &DbRow) -> StoreResult<Membership> {
            let tenant: String = col(row, "tenant_id")?;
            let role: String = col(row, "role")?;
            Ok(Membership {
                account_id: col(row, "account_id")?,
                email: col(row, "email")?,
                tenant_id: TenantId::parse(&tenant).map_err(|_| corrupt("tenant id", &tenant))?,
                role: ConsoleRole::parse(&role).ok_or_else(|| corrupt("console role", &role))?,
                created_at: col(row, "created_at")?,
            })
        }

        fn session_from_row(row: &DbRow) -> StoreResult<ConsoleSession> {
            Ok(ConsoleSession {
                token_hash: col(row, "token_hash")?,
                account_id: col(row, "account_id")?,
                csrf_token: col(row, "csrf_token")?,
                ip: col(row, "ip")?,
                created_at: col(row, "created_at")?,
                expires_at: col(row, "expires_at")?,
            })
        }

        fn audit_from_row(row: &DbRow) -> StoreResult<AuditEntry> {
            let tenant: Option<String> = col(row, "tenant_id")?;
            let app: Option<String> = col(row, "app_id")?;
            Ok(AuditEntry {
                id: col(row, "id")?,
                at: col(row, "at")?,
                entry: NewAuditEntry {
                    actor: col(row, "actor")?,
                    ip: col(row, "ip")?,
                    tenant_id: tenant
                        .map(|t| TenantId::parse(&t).map_err(|_| corrupt("tenant id", &t)))
                        .transpose()?,
                    app_id: app
                        .map(|a| AppId::parse(&a).map_err(|_| corrupt("app id", &a)))
                        .transpose()?,
                    action: col(row, "action")?,
                    target: col(row, "target")?,
                    detail: col(row, "detail")?,
                },
            })
        }

        const INVITATION_COLUMNS: &str =
            "token_hash, tenant_id, email, role, invited_by, created_at, expires_at, accepted_at";

        fn invitation_from_row(row: &DbRow) -> StoreResult<Invitation> {
            let tenant: String = col(row, "tenant_id")?;
            let role: String = col(row, "role")?;
            Ok(Invitation {
                token_hash: col(row, "token_hash")?,
                tenant_id: TenantId::parse(&tenant).map_err(|_| corrupt("tenant id", &tenant))?,
                email: col(row, "email")?,
                role: ConsoleRole::parse(&role).ok_or_else(|| corrupt("console role", &role))?,
                invited_by: col(row, "invited_by")?,
                created_at: col(row, "created_at")?,
                expires_at: col(row, "expires_at")?,
                accepted_at: col(row, "accepted_at")?,
            })
        }

        const MEMBERSHIP_SELECT: &str = "SELECT m.account_id, a.email, m.tenant_id, m.role, m.created_at \
             FROM console_memberships m JOIN console_accounts a ON a.id = m.account_id";

        #[async_trait]
        impl $crate::store::ConsoleStore for $store {
            async fn create_account(
                &self,
                email: &str,
                password_hash: &str,
                operator: bool,
                now: UnixMillis,
            ) -> StoreResult<ConsoleAccount> {
                let row = sqlx::query::<$db>(&format!(
                    "INSERT INTO console_accounts (email, password_hash, operator, created_at) \
                     VALUES ($1, $2, $3, $4) RETURNING {ACCOUNT_COLUMNS}"
                ))
                .bind(email)
                .bind(password_hash)
                .bind(operator)
                .bind(now)
                .fetch_one(self.writer())
                .await
                .map_err(|e| conflict_as(e, || format!("an account with email {email:?} already exists")))?;
                account_from_row(&row)
            }

            async fn account(&self, id: i64) -> StoreResult<Option<ConsoleAccount>> {
                let row = sqlx::query::<$db>(&format!("SELECT {ACCOUNT_COLUMNS} FROM console_accounts WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(self.reader())
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(account_from_row).transpose()
            }

            async fn account_by_email(&self, email: &str) -> StoreResult<Option<ConsoleAccount>> {
                // Case-insensitive: the first admin's email is kept as configured.
                let sql = format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM console_accounts WHERE LOWER(email) = LOWER($1) ORDER BY id LIMIT 1"
                );
                let row = sqlx::query::<$db>(&sql)
                    .bind(email)
                    .fetch_optional(self.reader())
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(account_from_row).transpose()
            }

            async fn record_failed_login(
                &self,
                id: i64,
                max_failures: i32,
                lock_until: UnixMillis,
            ) -> StoreResult<ConsoleAccount> {
                // One statement, so two wrong passwords at the same moment both count.
                let row = sqlx::query::<$db>(&format!(
                    "UPDATE console_accounts SET \
                     locked_until = CASE WHEN failed_logins + 1 >= $2 THEN $3 ELSE locked_until END, \
                     failed_logins = CASE WHEN failed_logins + 1 >= $2 THEN 0 ELSE failed_logins + 1 END \
                     WHERE id = $1 RETURNING {ACCOUNT_COLUMNS}"
                ))
                .bind(id)
                .bind(max_failures)
                .bind(lock_until)
                .fetch_optional(self.writer())
                .await
                .map_err(map_err)?;
                row.as_ref()
                    .map(account_from_row)
                    .transpose()?
                    .ok_or(StoreError::NotFound("account"))
            }

            async fn clear_failed_logins(&self, id: i64) -> StoreResult<()> {
                sqlx::query::<$db>("UPDATE console_accounts SET failed_logins = 0, locked_until = NULL WHERE id = $1")
                    .bind(id)
                    .execute(self.writer())
                    .await
                    .map_err(map_err)?;
                Ok(())
            }

            async fn set_membership(
                &self,
                account: i64,
                tenant: &TenantId,
                role: ConsoleRole,
                now: UnixMillis,
            ) -> StoreResult<()> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let found: Option<i64> = sqlx::query_scalar::<$db, i64>(
                    "SELECT a.id FROM console_accounts a, tenants t WHERE a.id = $1 AND t.id = $2",
                )
                .bind(account)
                .bind(tenant.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
                if found.is_none() {
                    return Err(StoreError::NotFound("account or tenant"));
                }
                sqlx::query::<$db>(
                    "INSERT INTO console_memberships (account_id, tenant_id, role, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (account_id, tenant_id) DO UPDATE SET role = excluded.role",
                )
                .bind(account)
                .bind(tenant.as_str())
                .bind(role.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)
            }

            async fn memberships_of(&self, account: i64) -> StoreResult<Vec<Membership>> {
                let rows = sqlx::query::<$db>(&format!(
                    "{MEMBERSHIP_SELECT} WHERE m.account_id = $1 ORDER BY m.created_at, m.tenant_id"
                ))
                .bind(account)
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter().map(membership_from_row).collect()
            }

            async fn tenant_members(&self, tenant: &TenantId) -> StoreResult<Vec<Membership>> {
                let rows = sqlx::query::<$db>(&format!("{MEMBERSHIP_SELECT} WHERE m.tenant_id = $1 ORDER BY a.email"))
                    .bind(tenant.as_str())
                    .fetch_all(self.reader())
                    .await
                    .map_err(map_err)?;
                rows.iter().map(membership_from_row).collect()
            }

            async fn create_session(&self, s: &ConsoleSession) -> StoreResult<()> {
                sqlx::query::<$db>(
                    "INSERT INTO console_sessions (token_hash, account_id, csrf_token, ip, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&s.token_hash)
                .bind(s.account_id)
                .bind(&s.csrf_token)
                .bind(&s.ip)
                .bind(s.created_at)
                .bind(s.expires_at)
                .execute(self.writer())
                .await
                .map_err(map_err)?;
                Ok(())
            }

            async fn session(&self, token_hash: &str, now: UnixMillis) -> StoreResult<Option<ConsoleSession>> {
                let row = sqlx::query::<$db>(
                    "SELECT token_hash, account_id, csrf_token, ip, created_at, expires_at FROM console_sessions \
                     WHERE token_hash = $1 AND expires_at > $2",
                )
                .bind(token_hash)
                .bind(now)
                .fetch_optional(self.reader())
                .await
                .map_err(map_err)?;
                row.as_ref().map(session_from_row).transpose()
            }

            async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
                sqlx::query::<$db>("DELETE FROM console_sessions WHERE token_hash = $1")
                    .bind(token_hash)
                    .execute(self.writer())
                    .await
                    .map_err(map_err)?;
                Ok(())
            }

            async fn delete_sessions_of(&self, account: i64) -> StoreResult<u64> {
                let r = sqlx::query::<$db>("DELETE FROM console_sessions WHERE account_id = $1")
                    .bind(account)
                    .execute(self.writer())
                    .await
                    .map_err(map_err)?;
                Ok(r.rows_affected())
            }

            async fn append_audit(&self, e: &NewAuditEntry, at: UnixMillis) -> StoreResult<i64> {
                sqlx::query_scalar::<$db, i64>(
                    "INSERT INTO console_audit (at, actor, ip, tenant_id, app_id, action, target, detail) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                )
                .bind(at)
                .bind(&e.actor)
                .bind(&e.ip)
                .bind(e.tenant_id.as_ref().map(TenantId::as_str))
                .bind(e.app_id.as_ref().map(AppId::as_str))
                .bind(&e.action)
                .bind(&e.target)
                .bind(&e.detail)
                .fetch_one(self.writer())
                .await
                .map_err(map_err)
            }

            async fn audit_log(
                &self,
                tenant: Option<&TenantId>,
                before: Option<i64>,
                limit: u32,
            ) -> StoreResult<Vec<AuditEntry>> {
                let columns = "id, at, actor, ip, tenant_id, app_id, action, target, detail";
                let before = before.unwrap_or(i64::MAX);
                let rows = match tenant {
                    Some(t) => sqlx::query::<$db>(&format!(
                        "SELECT {columns} FROM console_audit WHERE tenant_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
                    ))
                    .bind(t.as_str())
                    .bind(before)
                    .bind(i64::from(limit))
                    .fetch_all(self.reader())
                    .await,
                    None => sqlx::query::<$db>(&format!(
                        "SELECT {columns} FROM console_audit WHERE id < $1 ORDER BY id DESC LIMIT $2"
                    ))
                    .bind(before)
                    .bind(i64::from(limit))
                    .fetch_all(self.reader())
                    .await,
                }
                .map_err(map_err)?;
                rows.iter().map(audit_from_row).collect()
            }

            async fn create_signup(&self, s: &NewSignup) -> StoreResult<()> {
                sqlx::query::<$db>(
                    "INSERT INTO console_signups (token_hash, email, password_hash, tenant_name, ip, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&s.token_hash)
                .bind(&s.email)
                .bind(&s.password_hash)
                .bind(&s.tenant_name)
                .bind(&s.ip)
                .bind(s.created_at)
                .bind(s.expires_at)
                .execute(self.writer())
                .await
                .map_err(map_err)?;
                Ok(())
            }

            async fn pending_signup(&self, token_hash: &str, now: UnixMillis) -> StoreResult<Option<NewSignup>> {
                let row = sqlx::query::<$db>(
                    "SELECT token_hash, email, password_hash, tenant_name, ip, created_at, expires_at \
                     FROM console_signups WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
                )
                .bind(token_hash)
                .bind(now)
                .fetch_optional(self.reader())
                .await
                .map_err(map_err)?;
                row.as_ref()
                    .map(|r| {
                        Ok(NewSignup {
                            token_hash: col(r, "token_hash")?,
                            email: col(r, "email")?,
                            password_hash: col(r, "password_hash")?,
                            tenant_name: col(r, "tenant_name")?,
                            ip: col(r, "ip")?,
                            created_at: col(r, "created_at")?,
                            expires_at: col(r, "expires_at")?,
                        })
                    })
                    .transpose()
            }

            async fn complete_signup(
                &self,
                token_hash: &str,
                tenant: &TenantId,
                status: TenantStatus,
                now: UnixMillis,
            ) -> StoreResult<(Tenant, ConsoleAccount)> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let row = sqlx::query::<$db>(
                    "UPDATE console_signups SET used_at = $2 \
                     WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 \
                     RETURNING email, password_hash, tenant_name",
                )
                .bind(token_hash)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?
                .ok_or(StoreError::NotFound("sign-up link"))?;
                let email: String = col(&row, "email")?;
                let password_hash: String = col(&row, "password_hash")?;
                let name: String = col(&row, "tenant_name")?;
                sqlx::query::<$db>("INSERT INTO tenants (id, name, status, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(tenant.as_str())
                    .bind(&name)
                    .bind(status.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| conflict_as(e, || format!("a tenant named {name:?} already exists")))?;
                let account = sqlx::query::<$db>(&format!(
                    "INSERT INTO console_accounts (email, password_hash, operator, created_at) \
                     VALUES ($1, $2, FALSE, $3) RETURNING {ACCOUNT_COLUMNS}"
                ))
                .bind(&email)
                .bind(&password_hash)
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| conflict_as(e, || format!("an account with email {email:?} already exists")))?;
                let account = account_from_row(&account)?;
                sqlx::query::<$db>(
                    "INSERT INTO console_memberships (account_id, tenant_id, role, created_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(account.id)
                .bind(tenant.as_str())
                .bind(ConsoleRole::Owner.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                let tenant = Tenant {
                    id: tenant.clone(),
                    name,
                    status,
                    created_at: now,
                };
                Ok((tenant, account))
            }

            async fn tenants_with_status(&self, status: TenantStatus, limit: u32) -> StoreResult<Vec<Tenant>> {
                let rows = sqlx::query::<$db>(
                    "SELECT id, name, status, created_at FROM tenants WHERE status = $1 ORDER BY created_at, id LIMIT $2",
                )
                .bind(status.as_str())
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter().map(tenant_from_row).collect()
            }

            async fn change_tenant_status(
                &self,
                id: &TenantId,
                from: TenantStatus,
                to: TenantStatus,
            ) -> StoreResult<bool> {
                let r = sqlx::query::<$db>("UPDATE tenants SET status = $3 WHERE id = $1 AND status = $2")
                    .bind(id.as_str())
                    .bind(from.as_str())
                    .bind(to.as_str())
                    .execute(self.writer())
                    .await
                    .map_err(map_err)?;
                if r.rows_affected() == 1 {
                    return Ok(true);
                }
                let exists = sqlx::query_scalar::<$db, String>("SELECT id FROM tenants WHERE id = $1")
                    .bind(id.as_str())
                    .fetch_optional(self.reader())
                    .await
                    .map_err(map_err)?;
                match exists {
                    Some(_) => Ok(false),
                    None => Err(StoreError::NotFound("tenant")),
                }
            }

            async fn record_mail(&self, m: &NewMail, at: UnixMillis) -> StoreResult<i64> {
                sqlx::query_scalar::<$db, i64>(
                    "INSERT INTO console_mail (at, tenant_id, recipient, kind, subject, transport, status, error) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                )
                .bind(at)
                .bind(m.tenant_id.as_ref().map(TenantId::as_str))
                .bind(&m.recipient)
                .bind(&m.kind)
                .bind(&m.subject)
                .bind(&m.transport)
                .bind(&m.status)
                .bind(&m.error)
                .fetch_one(self.writer())
                .await
                .map_err(map_err)
            }

            async fn mail_log(&self, before: Option<i64>, limit: u32) -> StoreResult<Vec<MailRecord>> {
                let rows = sqlx::query::<$db>(
                    "SELECT id, at, tenant_id, recipient, kind, subject, transport, status, error \
                     FROM console_mail WHERE id < $1 ORDER BY id DESC LIMIT $2",
                )
                .bind(before.unwrap_or(i64::MAX))
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter()
                    .map(|r| {
                        let tenant: Option<String> = col(r, "tenant_id")?;
                        Ok(MailRecord {
                            id: col(r, "id")?,
                            at: col(r, "at")?,
                            mail: NewMail {
                                tenant_id: tenant
                                    .map(|t| TenantId::parse(&t).map_err(|_| corrupt("tenant id", &t)))
                                    .transpose()?,
                                recipient: col(r, "recipient")?,
                                kind: col(r, "kind")?,
                                subject: col(r, "subject")?,
                                transport: col(r, "transport")?,
                                status: col(r, "status")?,
                                error: col(r, "error")?,
                            },
                        })
                    })
                    .collect()
            }

            async fn create_invitation(&self, i: &Invitation) -> StoreResult<()> {
                sqlx::query::<$db>(
                    "INSERT INTO console_invitations \
                     (token_hash, tenant_id, email, role, invited_by, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&i.token_hash)
                .bind(i.tenant_id.as_str())
                .bind(&i.email)
                .bind(i.role.as_str())
                .bind(&i.invited_by)
                .bind(i.created_at)
                .bind(i.expires_at)
                .execute(self.writer())
                .await
                .map_err(|e| match map_err(e) {
                    StoreError::Conflict(m) => StoreError::Conflict(m),
                    StoreError::Database(m) if m.to_lowercase().contains("foreign") => StoreError::NotFound("tenant"),
                    other => other,
                })?;
                Ok(())
            }

            async fn pending_invitation(&self, token_hash: &str, now: UnixMillis) -> StoreResult<Option<Invitation>> {
                let row = sqlx::query::<$db>(&format!(
                    "SELECT {INVITATION_COLUMNS} FROM console_invitations \
                     WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > $2"
                ))
                .bind(token_hash)
                .bind(now)
                .fetch_optional(self.reader())
                .await
                .map_err(map_err)?;
                row.as_ref().map(invitation_from_row).transpose()
            }

            async fn tenant_invitations(&self, tenant: &TenantId, now: UnixMillis) -> StoreResult<Vec<Invitation>> {
                let rows = sqlx::query::<$db>(&format!(
                    "SELECT {INVITATION_COLUMNS} FROM console_invitations \
                     WHERE tenant_id = $1 AND accepted_at IS NULL AND expires_at > $2 \
                     ORDER BY created_at DESC, token_hash"
                ))
                .bind(tenant.as_str())
                .bind(now)
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter().map(invitation_from_row).collect()
            }

            async fn revoke_invitation(&self, tenant: &TenantId, token_hash: &str, now: UnixMillis) -> StoreResult<bool> {
                let r = sqlx::query::<$db>(
                    "UPDATE console_invitations SET expires_at = $3 \
                     WHERE tenant_id = $1 AND token_hash = $2 AND accepted_at IS NULL AND expires_at > $3",
                )
                .bind(tenant.as_str())
                .bind(token_hash)
                .bind(now)
                .execute(self.writer())
                .await
                .map_err(map_err)?;
                Ok(r.rows_affected() == 1)
            }

            async fn accept_invitation(
                &self,
                token_hash: &str,
                new_password_hash: Option<&str>,
                now: UnixMillis,
            ) -> StoreResult<(Invitation, ConsoleAccount)> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let row = sqlx::query::<$db>(&format!(
                    "UPDATE console_invitations SET accepted_at = $2 \
                     WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > $2 \
                     RETURNING {INVITATION_COLUMNS}"
                ))
                .bind(token_hash)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?
                .ok_or(StoreError::NotFound("invitation"))?;
                let invitation = invitation_from_row(&row)?;
                let existing = sqlx::query::<$db>(&format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM console_accounts WHERE LOWER(email) = LOWER($1) ORDER BY id LIMIT 1"
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
                             VALUES ($1, $2, FALSE, $3) RETURNING {ACCOUNT_COLUMNS}"
                        ))
                        .bind(&invitation.email)
                        .bind(hash)
                        .bind(now)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(|e| conflict_as(e, || "that email has an account already".to_owned()))?;
                        account_from_row(&row)?
                    }
                };
                if account.operator {
                    return Err(StoreError::Rejected(
                        "that account is a platform operator and sees every tenant already".into(),
                    ));
                }
                sqlx::query::<$db>(
                    "INSERT INTO console_memberships (account_id, tenant_id, role, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (account_id, tenant_id) DO UPDATE SET role = excluded.role",
                )
                .bind(account.id)
                .bind(invitation.tenant_id.as_str())
                .bind(invitation.role.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                Ok((invitation, account))
            }

            async fn add_usage(
                &self,
                hours: &[crate::usage::UsageHour],
                minutes: &[crate::usage::UsageMinute],
            ) -> StoreResult<()> {
                let greatest = if $backend == Backend::Postgres { "GREATEST" } else { "MAX" };
                let sql = format!(
                    "INSERT INTO usage_hourly (app_id, hour, messages, api_calls, connections, errors) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (app_id, hour) DO UPDATE SET \
                     messages = usage_hourly.messages + excluded.messages, \
                     api_calls = usage_hourly.api_calls + excluded.api_calls, \
                     errors = usage_hourly.errors + excluded.errors, \
                     connections = {greatest}(usage_hourly.connections, excluded.connections)"
                );
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                for h in hours {
                    sqlx::query::<$db>(&sql)
                        .bind(h.app_id.as_str())
                        .bind(h.hour)
                        .bind(h.counts.messages)
                        .bind(h.counts.api_calls)
                        .bind(h.counts.connections)
                        .bind(h.counts.errors)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
                for m in minutes {
                    sqlx::query::<$db>(
                        "INSERT INTO usage_minutely (app_id, minute, api_calls, errors) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (app_id, minute) DO UPDATE SET \
                         api_calls = usage_minutely.api_calls + excluded.api_calls, \
                         errors = usage_minutely.errors + excluded.errors",
                    )
                    .bind(m.app_id.as_str())
                    .bind(m.minute)
                    .bind(m.api_calls)
                    .bind(m.errors)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
                tx.commit().await.map_err(map_err)
            }

            async fn usage(
                &self,
                app: &AppId,
                from: UnixMillis,
                to: UnixMillis,
            ) -> StoreResult<Vec<crate::usage::UsageHour>> {
                let rows = sqlx::query::<$db>(
                    "SELECT hour, messages, api_calls, connections, errors FROM usage_hourly \
                     WHERE app_id = $1 AND hour >= $2 AND hour < $3 ORDER BY hour",
                )
                .bind(app.as_str())
                .bind(from)
                .bind(to)
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter()
                    .map(|r| {
                        Ok(crate::usage::UsageHour {
                            app_id: app.clone(),
                            hour: col(r, "hour")?,
                            counts: crate::usage::UsageCounts {
                                messages: col(r, "messages")?,
                                api_calls: col(r, "api_calls")?,
                                connections: col(r, "connections")?,
                                errors: col(r, "errors")?,
                            },
                        })
                    })
                    .collect()
            }

            async fn platform_usage(
                &self,
                from: UnixMillis,
                to: UnixMillis,
            ) -> StoreResult<Vec<(UnixMillis, crate::usage::UsageCounts)>> {
                let rows = sqlx::query::<$db>(
                    "SELECT hour, CAST(SUM(messages) AS BIGINT) AS messages, \
                     CAST(SUM(api_calls) AS BIGINT) AS api_calls, \
                     CAST(SUM(errors) AS BIGINT) AS errors, \
                     CAST(SUM(connections) AS BIGINT) AS connections FROM usage_hourly \
                     WHERE hour >= $1 AND hour < $2 GROUP BY hour ORDER BY hour",
                )
                .bind(from)
                .bind(to)
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter()
                    .map(|r| {
                        Ok((
                            col(r, "hour")?,
                            crate::usage::UsageCounts {
                                messages: col(r, "messages")?,
                                api_calls: col(r, "api_calls")?,
                                connections: col(r, "connections")?,
                                errors: col(r, "errors")?,
                            },
                        ))
                    })
                    .collect()
            }

            async fn remove_membership(&self, account: i64, tenant: &TenantId) -> StoreResult<bool> {
                let r = sqlx::query::<$db>("DELETE FROM console_memberships WHERE account_id = $1 AND tenant_id = $2")
                    .bind(account)
                    .bind(tenant.as_str())
                    .execute(self.writer())
                    .await
                    .map_err(map_err)?;
                Ok(r.rows_affected() == 1)
            }
        }
    };
}
pub(crate) use console_sql;
