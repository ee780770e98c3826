//! What startup and health checks ask of the store: which backend it is, its migrations,
//! whether it is ready, and a ciphertext to prove the master key on.

use async_trait::async_trait;

use crate::ids::AppId;

use super::{Backend, StoreResult};

/// The store as a database: backend, migrations, readiness.
#[async_trait]
pub trait MaintenanceStore: Send + Sync {
    fn backend(&self) -> Backend;
    /// Applies pending migrations of this adapter.
    async fn migrate(&self) -> StoreResult<()>;
    /// The database answers and every migration this binary knows is applied.
    async fn ready(&self) -> StoreResult<bool>;
    /// Some stored ciphertext (an app secret), so startup can prove the master key opens it.
    async fn sample_ciphertext(&self) -> StoreResult<Option<(AppId, Vec<u8>)>>;
    /// The master key's proof sealed at the first start, if there is one.
    async fn key_check(&self) -> StoreResult<Option<Vec<u8>>>;
    /// Stores the master key's proof unless one is stored already (the first start of
    /// several at once wins); read it back with `key_check`.
    async fn put_key_check(&self, sealed: &[u8], now: i64) -> StoreResult<()>;
}

/// `impl MaintenanceStore` for a SQL adapter, with the readers and steps only this area uses.
/// Expanded by `shared_sql::sql_store!` into the adapter's module, beside the other areas.
macro_rules! maintenance_sql {
    ($store:ty, $db:ty, $backend:expr) => {
        #[async_trait]
        impl $crate::store::MaintenanceStore for $store {
            fn backend(&self) -> Backend {
                $backend
            }

            async fn migrate(&self) -> StoreResult<()> {
                MIGRATOR
                    .run(self.writer())
                    .await
                    .map_err(|e| StoreError::Database(format!("migration failed: {e}")))
            }

            async fn ready(&self) -> StoreResult<bool> {
                let applied: Vec<i64> = match sqlx::query_scalar::<$db, i64>(
                    "SELECT version FROM _sqlx_migrations WHERE success",
                )
                .fetch_all(self.reader())
                .await
                {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::debug!(error = %e, "store not ready");
                        return Ok(false);
                    }
                };
                Ok(MIGRATOR
                    .iter()
                    .filter(|m| !m.migration_type.is_down_migration())
                    .all(|m| applied.contains(&m.version)))
            }

            async fn sample_ciphertext(&self) -> StoreResult<Option<(AppId, Vec<u8>)>> {
                let row = sqlx::query::<$db>(
                    "SELECT app_id, ciphertext FROM app_secrets ORDER BY created_at, id LIMIT 1",
                )
                .fetch_optional(self.reader())
                .await
                .map_err(map_err)?;
                match row {
                    None => Ok(None),
                    Some(row) => {
                        let app: String = col(&row, "app_id")?;
                        let app = AppId::parse(&app).map_err(|_| corrupt("app id", &app))?;
                        Ok(Some((app, col(&row, "ciphertext")?)))
                    }
                }
            }

            async fn key_check(&self) -> StoreResult<Option<Vec<u8>>> {
                sqlx::query_scalar::<$db, Vec<u8>>("SELECT sealed FROM key_check WHERE id = 1")
                    .fetch_optional(self.reader())
                    .await
                    .map_err(map_err)
            }

            async fn put_key_check(&self, sealed: &[u8], now: i64) -> StoreResult<()> {
                sqlx::query::<$db>(
                    "INSERT INTO key_check (id, sealed, created_at) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING",
                )
                .bind(sealed)
                .bind(now)
                .execute(self.writer())
                .await
                .map_err(map_err)?;
                Ok(())
            }
        }
    };
}
pub(crate) use maintenance_sql;
