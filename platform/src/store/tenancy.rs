//! Tenants, their apps (settings and signing secrets), and the platform's admins.

use async_trait::async_trait;

use crate::domain::*;
use crate::ids::*;

use super::StoreResult;

/// A new app with its first secret, both secrets already encrypted by the caller.
#[derive(Debug, Clone)]
pub struct NewApp {
    pub id: AppId,
    pub tenant_id: TenantId,
    pub name: String,
    pub app_key: AppKey,
    pub settings: AppSettings,
    pub first_secret: AppSecretRecord,
    /// `SecretBox::seal` of the webhook secret, app id as associated data.
    pub webhook_secret_ciphertext: Vec<u8>,
}

#[derive(Clone, PartialEq)]
pub struct AdminRecord {
    pub id: i64,
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub created_at: UnixMillis,
}

impl std::fmt::Debug for AdminRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminRecord")
            .field("id", &self.id)
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// Tenants, apps and their secrets, platform admins.
#[async_trait]
pub trait TenancyStore: Send + Sync {
    /// `Conflict` if the name is taken.
    async fn create_tenant(&self, tenant: &Tenant) -> StoreResult<()>;
    async fn tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>>;
    async fn tenant_by_name(&self, name: &str) -> StoreResult<Option<Tenant>>;
    async fn set_tenant_status(&self, id: &TenantId, status: TenantStatus) -> StoreResult<()>;
    async fn list_tenants(&self, after: Option<&TenantId>, limit: u32) -> StoreResult<Vec<Tenant>>;
    /// `Conflict` if the tenant already has an app of that name; `NotFound` for no tenant.
    async fn create_app(&self, app: &NewApp) -> StoreResult<App>;
    async fn app(&self, id: &AppId) -> StoreResult<Option<App>>;
    async fn app_by_key(&self, key: &AppKey) -> StoreResult<Option<App>>;
    async fn list_apps(&self, tenant: &TenantId) -> StoreResult<Vec<App>>;
    async fn update_app_settings(&self, id: &AppId, settings: &AppSettings) -> StoreResult<()>;
    async fn set_app_status(&self, id: &AppId, status: AppStatus) -> StoreResult<()>;
    /// Every secret of the app not yet expired at `now`, newest first.
    async fn active_app_secrets(&self, app: &AppId, now: UnixMillis) -> StoreResult<Vec<AppSecretRecord>>;
    /// Adds a secret; every other active one expires at `others_expire_at` (the grace
    /// period) unless it already expires sooner. Secrets that would leave more than two
    /// active are expired at once, oldest first.
    async fn add_app_secret(&self, secret: &AppSecretRecord, others_expire_at: UnixMillis) -> StoreResult<()>;
    /// Expires one secret now. `Rejected` if it is the app's last active secret.
    async fn revoke_app_secret(&self, app: &AppId, id: &SecretId, now: UnixMillis) -> StoreResult<()>;
    async fn admin_count(&self) -> StoreResult<i64>;
    async fn create_admin(&self, email: &str, password_hash: &str, now: UnixMillis) -> StoreResult<AdminRecord>;
    async fn admin_by_email(&self, email: &str) -> StoreResult<Option<AdminRecord>>;
}

/// `impl TenancyStore` for a SQL adapter, with the readers and steps only this area uses.
/// Expanded by `shared_sql::sql_store!` into the adapter's module, beside the other areas.
macro_rules! tenancy_sql {
    ($store:ty, $db:ty, $backend:expr) => {
        fn tenant_from_row(row: &DbRow) -> StoreResult<Tenant> {
            let id: String = col(row, "id")?;
            let status: String = col(row, "status")?;
            Ok(Tenant {
                id: TenantId::parse(&id).map_err(|_| corrupt("tenant id", &id))?,
                name: col(row, "name")?,
                status: TenantStatus::parse(&status).ok_or_else(|| corrupt("tenant status", &status))?,
                created_at: col(row, "created_at")?,
            })
        }

        const APP_COLUMNS: &str = "id, tenant_id, name, app_key, status, settings, created_at";

        fn app_from_row(row: &DbRow) -> StoreResult<App> {
            let id: String = col(row, "id")?;
            let tenant_id: String = col(row, "tenant_id")?;
            let key: String = col(row, "app_key")?;
            let status: String = col(row, "status")?;
            let settings: String = col(row, "settings")?;
            Ok(App {
                id: AppId::parse(&id).map_err(|_| corrupt("app id", &id))?,
                tenant_id: TenantId::parse(&tenant_id).map_err(|_| corrupt("tenant id", &tenant_id))?,
                name: col(row, "name")?,
                app_key: AppKey::parse(&key).map_err(|_| corrupt("app key", &key))?,
                status: AppStatus::parse(&status).ok_or_else(|| corrupt("app status", &status))?,
                settings: serde_json::from_str(&settings).map_err(|_| corrupt("app settings", &settings))?,
                created_at: col(row, "created_at")?,
            })
        }

        fn secret_from_row(row: &DbRow) -> StoreResult<AppSecretRecord> {
            let id: String = col(row, "id")?;
            let app_id: String = col(row, "app_id")?;
            Ok(AppSecretRecord {
                id: SecretId::parse(&id).map_err(|_| corrupt("secret id", &id))?,
                app_id: AppId::parse(&app_id).map_err(|_| corrupt("app id", &app_id))?,
                ciphertext: col(row, "ciphertext")?,
                created_at: col(row, "created_at")?,
                expires_at: col(row, "expires_at")?,
            })
        }

        fn admin_from_row(row: &DbRow) -> StoreResult<AdminRecord> {
            Ok(AdminRecord {
                id: col(row, "id")?,
                email: col(row, "email")?,
                password_hash: col(row, "password_hash")?,
                created_at: col(row, "created_at")?,
            })
        }

        #[async_trait]
        impl $crate::store::TenancyStore for $store {
            async fn create_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
                sqlx::query::<$db>("INSERT INTO tenants (id, name, status, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(tenant.id.as_str())
                    .bind(&tenant.name)
                    .bind(tenant.status.as_str())
                    .bind(tenant.created_at)
                    .execute(self.writer())
                    .await
                    .map_err(|e| conflict_as(e, || format!("a tenant named {:?} already exists", tenant.name)))?;
                Ok(())
            }

            async fn tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>> {
                let row = sqlx::query::<$db>("SELECT id, name, status, created_at FROM tenants WHERE id = $1")
                    .bind(id.as_str())
                    .fetch_optional(self.reader())
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(tenant_from_row).transpose()
            }

            async fn tenant_by_name(&self, name: &str) -> StoreResult<Option<Tenant>> {
                let row = sqlx::query::<$db>("SELECT id, name, status, created_at FROM tenants WHERE name = $1")
                    .bind(name)
                    .fetch_optional(self.reader())
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(tenant_from_row).transpose()
            }

            async fn set_tenant_status(&self, id: &TenantId, status: TenantStatus) -> StoreResult<()> {
                let r = sqlx::query::<$db>("UPDATE tenants SET status = $2 WHERE id = $1")
                    .bind(id.as_str())
                    .bind(status.as_str())
                    .execute(self.writer())
                    .await
                    .map_err(map_err)?;
                not_found_unless_changed(r.rows_affected(), "tenant")
            }

            async fn list_tenants(&self, after: Option<&TenantId>, limit: u32) -> StoreResult<Vec<Tenant>> {
                let rows = sqlx::query::<$db>(
                    "SELECT id, name, status, created_at FROM tenants WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(after.map(TenantId::as_str).unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter().map(tenant_from_row).collect()
            }

            async fn create_app(&self, app: &NewApp) -> StoreResult<App> {
                let settings = serde_json::to_string(&app.settings)
                    .map_err(|e| StoreError::Database(format!("app settings do not encode: {e}")))?;
                let created_at = now_ms();
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let tenant: Option<String> = sqlx::query_scalar::<$db, String>("SELECT id FROM tenants WHERE id = $1")
                    .bind(app.tenant_id.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?;
                if tenant.is_none() {
                    return Err(StoreError::NotFound("tenant"));
                }
                sqlx::query::<$db>(
                    "INSERT INTO apps (id, tenant_id, name, app_key, status, settings, webhook_secret, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(app.id.as_str())
                .bind(app.tenant_id.as_str())
                .bind(&app.name)
                .bind(app.app_key.as_str())
                .bind(AppStatus::Active.as_str())
                .bind(&settings)
                .bind(&app.webhook_secret_ciphertext)
                .bind(created_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    conflict_as(e, || {
                        format!(
                            "the tenant already has an app named {:?} (or the app id or key is taken)",
                            app.name
                        )
                    })
                })?;
                let s = &app.first_secret;
                sqlx::query::<$db>(
                    "INSERT INTO app_secrets (id, app_id, ciphertext, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(s.id.as_str())
                .bind(app.id.as_str())
                .bind(&s.ciphertext)
                .bind(s.created_at)
                .bind(s.expires_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict_as(e, || format!("secret id {} is taken", s.id)))?;
                sqlx::query::<$db>(
                    "INSERT INTO app_versions (app_id, version) VALUES ($1, 0) ON CONFLICT (app_id) DO NOTHING",
                )
                .bind(app.id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                Ok(App {
                    id: app.id.clone(),
                    tenant_id: app.tenant_id.clone(),
                    name: app.name.clone(),
                    app_key: app.app_key.clone(),
                    status: AppStatus::Active,
                    settings: app.settings.clone(),
                    created_at,
                })
            }

            async fn app(&self, id: &AppId) -> StoreResult<Option<App>> {
                let row = sqlx::query::<$db>(&format!("SELECT {APP_COLUMNS} FROM apps WHERE id = $1"))
                    .bind(id.as_str())
                    .fetch_optional(self.reader())
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(app_from_row).transpose()
            }

            async fn app_by_key(&self, key: &AppKey) -> StoreResult<Option<App>> {
                let row = sqlx::query::<$db>(&format!("SELECT {APP_COLUMNS} FROM apps WHERE app_key = $1"))
                    .bind(key.as_str())
                    .fetch_optional(self.reader())
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(app_from_row).transpose()
            }

            async fn list_apps(&self, tenant: &TenantId) -> StoreResult<Vec<App>> {
                let rows = sqlx::query::<$db>(&format!(
                    "SELECT {APP_COLUMNS} FROM apps WHERE tenant_id = $1 ORDER BY created_at, id"
                ))
                .bind(tenant.as_str())
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter().map(app_from_row).collect()
            }

            async fn update_app_settings(&self, id: &AppId, settings: &AppSettings) -> StoreResult<()> {
                let settings = serde_json::to_string(settings)
                    .map_err(|e| StoreError::Database(format!("app settings do not encode: {e}")))?;
                let r = sqlx::query::<$db>("UPDATE apps SET settings = $2 WHERE id = $1")
                    .bind(id.as_str())
                    .bind(settings)
                    .execute(self.writer())
                    .await
                    .map_err(map_err)?;
                not_found_unless_changed(r.rows_affected(), "app")
            }

            async fn set_app_status(&self, id: &AppId, status: AppStatus) -> StoreResult<()> {
                let r = sqlx::query::<$db>("UPDATE apps SET status = $2 WHERE id = $1")
                    .bind(id.as_str())
                    .bind(status.as_str())
                    .execute(self.writer())
                    .await
                    .map_err(map_err)?;
                not_found_unless_changed(r.rows_affected(), "app")
            }

            async fn active_app_secrets(&self, app: &AppId, now: UnixMillis) -> StoreResult<Vec<AppSecretRecord>> {
                let rows = sqlx::query::<$db>(
                    "SELECT id, app_id, ciphertext, created_at, expires_at FROM app_secrets \
                     WHERE app_id = $1 AND (expires_at IS NULL OR expires_at > $2) \
                     ORDER BY (expires_at IS NULL) DESC, created_at DESC, id DESC",
                )
                .bind(app.as_str())
                .bind(now)
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter().map(secret_from_row).collect()
            }

            async fn add_app_secret(&self, secret: &AppSecretRecord, others_expire_at: UnixMillis) -> StoreResult<()> {
                let app = secret.app_id.as_str();
                let now = secret.created_at;
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                sqlx::query::<$db>(
                    "INSERT INTO app_secrets (id, app_id, ciphertext, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(secret.id.as_str())
                .bind(app)
                .bind(&secret.ciphertext)
                .bind(secret.created_at)
                .bind(secret.expires_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| match map_err(e) {
                    StoreError::Conflict(_) => StoreError::Conflict(format!("secret id {} is taken", secret.id)),
                    // The only foreign key: the app.
                    StoreError::Database(m) if m.contains("FOREIGN KEY") || m.contains("foreign key") => {
                        StoreError::NotFound("app")
                    }
                    other => other,
                })?;
                sqlx::query::<$db>(
                    "UPDATE app_secrets SET expires_at = $3 WHERE app_id = $1 AND id <> $2 \
                     AND (expires_at IS NULL OR expires_at > $3)",
                )
                .bind(app)
                .bind(secret.id.as_str())
                .bind(others_expire_at)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                // At most two stay active: the new one and the newest other.
                let active: Vec<String> = sqlx::query_scalar::<$db, String>(
                    "SELECT id FROM app_secrets WHERE app_id = $1 AND id <> $2 \
                     AND (expires_at IS NULL OR expires_at > $3) ORDER BY created_at DESC, id DESC",
                )
                .bind(app)
                .bind(secret.id.as_str())
                .bind(now)
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err)?;
                for id in active.iter().skip(1) {
                    sqlx::query::<$db>("UPDATE app_secrets SET expires_at = $3 WHERE app_id = $1 AND id = $2")
                        .bind(app)
                        .bind(id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
                tx.commit().await.map_err(map_err)
            }

            async fn revoke_app_secret(&self, app: &AppId, id: &SecretId, now: UnixMillis) -> StoreResult<()> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let active: Vec<String> = sqlx::query_scalar::<$db, String>(
                    "SELECT id FROM app_secrets WHERE app_id = $1 AND (expires_at IS NULL OR expires_at > $2)",
                )
                .bind(app.as_str())
                .bind(now)
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err)?;
                if !active.iter().any(|a| a == id.as_str()) {
                    let exists: Option<String> = sqlx::query_scalar::<$db, String>(
                        "SELECT id FROM app_secrets WHERE app_id = $1 AND id = $2",
                    )
                    .bind(app.as_str())
                    .bind(id.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    // Revoking an expired secret changes nothing.
                    return match exists {
                        Some(_) => Ok(()),
                        None => Err(StoreError::NotFound("app secret")),
                    };
                }
                if active.len() <= 1 {
                    return Err(StoreError::Rejected(
                        "this is the app's last active secret: rotate before revoking it".into(),
                    ));
                }
                sqlx::query::<$db>("UPDATE app_secrets SET expires_at = $3 WHERE app_id = $1 AND id = $2")
                    .bind(app.as_str())
                    .bind(id.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)
            }

            async fn admin_count(&self) -> StoreResult<i64> {
                sqlx::query_scalar::<$db, i64>("SELECT COUNT(*) FROM console_accounts WHERE operator")
                    .fetch_one(self.reader())
                    .await
                    .map_err(map_err)
            }

            async fn create_admin(&self, email: &str, password_hash: &str, now: UnixMillis) -> StoreResult<AdminRecord> {
                let row = sqlx::query::<$db>(
                    "INSERT INTO console_accounts (email, password_hash, created_at, operator) VALUES ($1, $2, $3, TRUE) \
                     RETURNING id, email, password_hash, created_at",
                )
                .bind(email)
                .bind(password_hash)
                .bind(now)
                .fetch_one(self.writer())
                .await
                .map_err(|e| conflict_as(e, || format!("an admin with email {email:?} already exists")))?;
                admin_from_row(&row)
            }

            async fn admin_by_email(&self, email: &str) -> StoreResult<Option<AdminRecord>> {
                let row = sqlx::query::<$db>(
                    "SELECT id, email, password_hash, created_at FROM console_accounts WHERE email = $1 AND operator",
                )
                .bind(email)
                .fetch_optional(self.reader())
                .await
                .map_err(map_err)?;
                row.as_ref().map(admin_from_row).transpose()
            }
        }
    };
}
pub(crate) use tenancy_sql;
