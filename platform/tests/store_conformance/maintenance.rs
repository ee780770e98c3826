//! Conformance of `MaintenanceStore`: migrations and readiness, and how each backend fails
//! to open.

use std::sync::Arc;

use tern_platform::store::*;

use crate::fixtures::*;

async fn migrating_twice_is_a_no_op(store: Arc<dyn Store>) {
    assert!(store.ready().await.unwrap());
    let t = tenant("kept");
    store.create_tenant(&t).await.unwrap();
    store.migrate().await.unwrap();
    assert!(store.ready().await.unwrap());
    assert_eq!(store.tenant(&t.id).await.unwrap(), Some(t));
}

conformance!(migrating_twice_is_a_no_op,);

// ---- backend-specific lifecycle ------------------------------------------------------

#[tokio::test]
async fn sqlite_is_not_ready_until_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("fresh.db").display());
    let store = tern_platform::store::connect(&url).await.unwrap();
    assert!(!store.ready().await.unwrap());
    store.migrate().await.unwrap();
    assert!(store.ready().await.unwrap());
}

#[tokio::test]
async fn postgres_is_not_ready_until_migrated() {
    if let Some(store) = tern_platform::store::testing::postgres_unmigrated().await {
        assert!(!store.ready().await.unwrap());
        store.migrate().await.unwrap();
        assert!(store.ready().await.unwrap());
    }
}

#[tokio::test]
async fn a_corrupted_sqlite_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.db");
    std::fs::write(
        &path,
        b"this is certainly not a SQLite database, just some garbage bytes".repeat(100),
    )
    .unwrap();
    let url = format!("sqlite://{}", path.display());
    let err = match tern_platform::store::connect(&url).await {
        Ok(store) => store
            .migrate()
            .await
            .err()
            .unwrap_or_else(|| panic!("a corrupted file was accepted")),
        Err(e) => e,
    };
    assert!(
        err.to_string().contains("corrupt.db"),
        "the error names the file: {err}"
    );
}

#[tokio::test]
async fn an_unreachable_postgres_is_unavailable() {
    // Port 1 on loopback: nothing listens there.
    let err = tern_platform::store::connect("postgres://postgres@127.0.0.1:1/none")
        .await
        .err();
    assert!(matches!(err, Some(StoreError::Unavailable(_))), "{err:?}");
}
