//! Fresh, migrated stores for tests, shared by every crate's test suites so that each
//! suite runs against SQLite always and PostgreSQL when one is configured.
//!
//! PostgreSQL is configured by `TERN_TEST_DATABASE_URL` (a server URL; each call creates
//! its own database there). When it is unset the PostgreSQL half of a suite is skipped with
//! a printed line, unless `TERN_TEST_REQUIRE_SERVICES=1`, which turns the skip into a failure.

use std::sync::Arc;

use sqlx::{Connection as _, Executor as _};

use super::{postgres, sqlite, Store};

/// A migrated SQLite store in a new temporary directory; the store lives as long as the
/// returned directory.
pub async fn sqlite_temp() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
    let url = format!("sqlite://{}", dir.path().join("tern.db").display());
    let store = sqlite::open(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    store
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("cannot migrate {url}: {e}"));
    (store, dir)
}

/// The PostgreSQL server URL to test against, or `None` (after printing the skip) when none
/// is configured. Panics when services are required and none is configured.
pub fn postgres_url() -> Option<String> {
    match std::env::var("TERN_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let message = "skipped: TERN_TEST_DATABASE_URL not set";
            if std::env::var("TERN_TEST_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("{message} (and TERN_TEST_REQUIRE_SERVICES=1)");
            }
            println!("{message}");
            None
        }
    }
}

/// A migrated PostgreSQL store in a database of its own (`tern_test_<time>_<random>`) on
/// the server `TERN_TEST_DATABASE_URL` names; `None` when that is unset (see module doc).
/// Test databases left by runs more than an hour old are dropped first.
pub async fn postgres_fresh() -> Option<Arc<dyn Store>> {
    let store = postgres_unmigrated().await?;
    store
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("cannot migrate the test database: {e}"));
    Some(store)
}

/// The URL of a migrated PostgreSQL database of its own, as [`postgres_fresh`] makes it,
/// for tests that open their own connections to it (or restart a server on it).
pub async fn postgres_fresh_url() -> Option<String> {
    let url = postgres_url()?;
    let db = with_database(&url, &create_test_database(&url).await);
    let store = postgres::open(&db)
        .await
        .unwrap_or_else(|e| panic!("cannot open test database {db}: {e}"));
    store
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("cannot migrate the test database: {e}"));
    Some(db)
}

/// Like [`postgres_fresh`] without running the migrations (for tests of `migrate`/`ready`).
pub async fn postgres_unmigrated() -> Option<Arc<dyn Store>> {
    let url = postgres_url()?;
    let name = create_test_database(&url).await;
    let store = postgres::open(&with_database(&url, &name))
        .await
        .unwrap_or_else(|e| panic!("cannot open test database {name}: {e}"));
    Some(store)
}

/// Creates an empty `tern_test_<time>_<random>` database on the server `url` names.
async fn create_test_database(url: &str) -> String {
    let mut admin = sqlx::PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to TERN_TEST_DATABASE_URL: {e}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    drop_stale_databases(&mut admin, now).await;
    let name = format!("tern_test_{now}_{}", rand::random::<u32>());
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
    let _ = admin.close().await;
    name
}

/// Drops `tern_test_<secs>_*` databases created more than an hour before `now`; failures
/// (another run still using one) are ignored, a later run retries.
async fn drop_stale_databases(admin: &mut sqlx::PgConnection, now: u64) {
    let names: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'tern\\_test\\_%'")
        .fetch_all(&mut *admin)
        .await
        .unwrap_or_default();
    for name in names {
        let created = name
            .strip_prefix("tern_test_")
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok());
        if created.is_some_and(|t| t + 3600 < now) {
            let _ = admin
                .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                .await;
        }
    }
}

/// `url` with its database name replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let server = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{server}/{db}?{q}"),
        None => format!("{server}/{db}"),
    }
}

/// Every configured backend, each with a fresh migrated store: SQLite always, PostgreSQL
/// when `TERN_TEST_DATABASE_URL` is set. Keep the returned directory alive while testing.
pub async fn all_backends() -> (Vec<(&'static str, Arc<dyn Store>)>, tempfile::TempDir) {
    let (sqlite, dir) = sqlite_temp().await;
    let mut stores = vec![("sqlite", sqlite)];
    if let Some(pg) = postgres_fresh().await {
        stores.push(("postgres", pg));
    }
    (stores, dir)
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_name_is_replaced_keeping_the_query() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:5432", "x"), "postgres://h:5432/x");
    }
}
