//! The store at scale: PostgreSQL, shared by every node.
//!
//! Batches from several nodes commit concurrently here, so the shared SQL takes its row
//! locks in one order (see `shared_sql`); the conversation row's `last_seq + 1` under its
//! row lock keeps seqs gapless.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::shared_sql::sql_store;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections per node: enough for group commit plus API reads, modest for the server.
const POOL_SIZE: u32 = 10;

/// The PostgreSQL adapter of the `Store` port.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    fn writer(&self) -> &PgPool {
        &self.pool
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }
}

/// Opens the database the URL names, as a `Store`. Does not migrate.
pub async fn open(url: &str) -> StoreResult<Arc<dyn Store>> {
    Ok(Arc::new(open_postgres(url).await?))
}

/// Connects to PostgreSQL. An unreachable server is `Unavailable`; a malformed URL `Rejected`.
pub async fn open_postgres(url: &str) -> StoreResult<PostgresStore> {
    let options =
        PgConnectOptions::from_str(url).map_err(|e| StoreError::Rejected(format!("invalid PostgreSQL URL: {e}")))?;
    let pool = PgPoolOptions::new()
        .max_connections(POOL_SIZE)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(|e| StoreError::Unavailable(format!("cannot connect to PostgreSQL: {e}")))?;
    Ok(PostgresStore { pool })
}

sql_store!(PostgresStore, sqlx::Postgres, Backend::Postgres);
