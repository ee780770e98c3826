//! The console's audit log is append-only in the database itself: an UPDATE or DELETE of
//! `console_audit` fails on SQLite and PostgreSQL, whoever issues it.
#![allow(clippy::unwrap_used)]

use sqlx::Connection as _;
use tern_platform::domain::NewAuditEntry;
use tern_platform::store::testing;

fn entry() -> NewAuditEntry {
    NewAuditEntry {
        actor: "ops@example.com".into(),
        ip: "127.0.0.1".into(),
        tenant_id: None,
        app_id: None,
        action: "tenant.create".into(),
        target: "Acme".into(),
        detail: String::new(),
    }
}

#[tokio::test]
async fn sqlite_refuses_to_change_the_audit_log() {
    let (store, dir) = testing::sqlite_temp().await;
    store.append_audit(&entry(), 1).await.unwrap();
    let url = format!("sqlite://{}", dir.path().join("tern.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    for sql in [
        "UPDATE console_audit SET actor = 'someone else'",
        "DELETE FROM console_audit",
    ] {
        let err = sqlx::query(sql).execute(&mut db).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(store.audit_log(None, None, 10).await.unwrap()[0].entry, entry());
}

#[tokio::test]
async fn postgres_refuses_to_change_the_audit_log() {
    let Some(url) = testing::postgres_fresh_url().await else {
        return;
    };
    let store = tern_platform::store::connect(&url).await.unwrap();
    store.append_audit(&entry(), 1).await.unwrap();
    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
    for sql in [
        "UPDATE console_audit SET actor = 'someone else'",
        "DELETE FROM console_audit",
    ] {
        let err = sqlx::query(sql).execute(&mut db).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(store.audit_log(None, None, 10).await.unwrap()[0].entry, entry());
}
