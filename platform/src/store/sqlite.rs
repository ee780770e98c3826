//! The embedded store: one SQLite file, the default for a single node.
//!
//! SQLite allows one writer at a time, so writes go through a pool of exactly one
//! connection (transactions queue in the pool instead of failing with SQLITE_BUSY), and
//! reads use a separate pool so they never wait behind a group commit. WAL journaling lets
//! the readers run while the writer commits; `synchronous=FULL` makes every commit durable
//! before a sender is told their message is stored (measured at about 1.3x the cost of
//! `NORMAL` for batched commits, well under the 2x that would have justified `NORMAL`).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use super::shared_sql::sql_store;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Readers beside the one writer; enough for a node's API and gateway queries.
const READ_CONNECTIONS: u32 = 4;

/// The SQLite adapter of the `Store` port.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    fn reader(&self) -> &SqlitePool {
        &self.reader
    }
}

/// Opens the database the URL names, as a `Store`. Does not migrate.
pub async fn open(url: &str) -> StoreResult<Arc<dyn Store>> {
    Ok(Arc::new(open_sqlite(url).await?))
}

/// Opens (creating if missing) the SQLite database at `url` (`sqlite://path` or
/// `sqlite::memory:`). A file that is not a SQLite database is an error naming the file.
pub async fn open_sqlite(url: &str) -> StoreResult<SqliteStore> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::Rejected(format!("invalid SQLite URL {url:?}: {e}")))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true);
    let file = options.get_filename().display().to_string();
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    let cannot_open = |e: sqlx::Error| match &e {
        // SQLITE_NOTADB and SQLITE_CORRUPT: the file is there but is not (or no longer) a database.
        sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("26" | "11")) => {
            StoreError::Database(format!("{file} is not a usable SQLite database: {e}"))
        }
        _ => StoreError::Unavailable(format!("cannot open SQLite database {file}: {e}")),
    };

    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options.clone())
        .await
        .map_err(cannot_open)?;
    // Opening only reads the header lazily: read the schema to prove the file is a database.
    sqlx::query("SELECT COUNT(*) FROM sqlite_master")
        .execute(&writer)
        .await
        .map_err(|e| StoreError::Database(format!("{file} is not a usable SQLite database: {e}")))?;
    // An in-memory database exists per connection: reads must share the writer's.
    let reader = if in_memory {
        writer.clone()
    } else {
        SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(cannot_open)?
    };
    Ok(SqliteStore { writer, reader })
}

sql_store!(SqliteStore, sqlx::Sqlite, Backend::Sqlite);
