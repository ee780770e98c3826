//! File records: announce, advance by compare-and-set, finish, references, usage, the sweep's
//! query, and that one app never sees another's files.

use std::sync::Arc;

use tern_platform::domain::*;
use tern_platform::ids::*;
use tern_platform::store::*;

use super::fixtures::*;

conformance!(
    a_file_moves_from_uploading_to_complete_by_compare_and_set,
    references_and_usage_are_per_app,
    stale_uploads_are_the_expired_and_the_failed,
    write_leases_exclude_other_writers_until_they_lapse,
    released_files_are_listed_after_their_release_until_kept
);

fn new_file(uploader: &str, size: u64, created_at: UnixMillis, expires_at: UnixMillis) -> NewFile {
    NewFile {
        id: FileId::generate(),
        uploader: uid(uploader),
        name: FileName::parse("photo 1.png").unwrap(),
        content_type: ContentType::parse("image/png").unwrap(),
        size,
        sha256: "ab".repeat(32),
        created_at,
        upload_expires_at: expires_at,
    }
}

async fn a_file_moves_from_uploading_to_complete_by_compare_and_set(store: Arc<dyn Store>) {
    let app = app(store.as_ref()).await;
    let other = app_of_another_tenant(store.as_ref()).await;
    let f = new_file("alice", 100, 1_000, 9_000);
    let rec = store.create_file(&app.id, &f).await.unwrap();
    assert_eq!((rec.state, rec.received, rec.size), (FileState::Uploading, 0, 100));
    assert_eq!(rec.name, "photo 1.png");
    assert_eq!(rec.content_type, "image/png");
    assert!(matches!(
        store.create_file(&app.id, &f).await,
        Err(StoreError::Conflict(_))
    ));

    // Another app sees nothing of it; by id alone it is found with its app.
    assert_eq!(store.file(&other.id, &f.id).await.unwrap(), None);
    assert!(!store.advance_upload(&other.id, &f.id, 0, 10).await.unwrap());
    assert_eq!(store.file_by_id(&f.id).await.unwrap().unwrap().app_id, app.id);

    assert!(store.advance_upload(&app.id, &f.id, 0, 40).await.unwrap());
    // A second writer that read the old offset loses.
    assert!(!store.advance_upload(&app.id, &f.id, 0, 30).await.unwrap());
    // Never past the announced size.
    assert!(!store.advance_upload(&app.id, &f.id, 40, 101).await.unwrap());
    assert!(store.advance_upload(&app.id, &f.id, 40, 100).await.unwrap());
    assert!(store
        .finish_upload(&app.id, &f.id, FileState::Complete, 5_000)
        .await
        .unwrap());
    assert!(!store
        .finish_upload(&app.id, &f.id, FileState::Failed, 6_000)
        .await
        .unwrap());
    let done = store.file(&app.id, &f.id).await.unwrap().unwrap();
    assert_eq!(
        (done.state, done.received, done.completed_at),
        (FileState::Complete, 100, Some(5_000))
    );
    assert!(!store.advance_upload(&app.id, &f.id, 100, 100).await.unwrap());

    assert!(!store.delete_file(&other.id, &f.id).await.unwrap());
    assert!(store.delete_file(&app.id, &f.id).await.unwrap());
    assert_eq!(store.file(&app.id, &f.id).await.unwrap(), None);
}

async fn app_of_another_tenant(store: &dyn Store) -> App {
    app(store).await
}

async fn references_and_usage_are_per_app(store: Arc<dyn Store>) {
    let app = app(store.as_ref()).await;
    let other = app_of_another_tenant(store.as_ref()).await;
    let done = new_file("alice", 1_000, 1_000, 9_000);
    let busy = new_file("alice", 300, 1_000, 9_000);
    store.create_file(&app.id, &done).await.unwrap();
    store.create_file(&app.id, &busy).await.unwrap();
    store
        .create_file(&other.id, &new_file("zed", 7, 1_000, 9_000))
        .await
        .unwrap();
    assert!(store.advance_upload(&app.id, &done.id, 0, 1_000).await.unwrap());
    assert!(store
        .finish_upload(&app.id, &done.id, FileState::Complete, 2_000)
        .await
        .unwrap());

    let usage = store.storage_usage(&app.id).await.unwrap();
    assert_eq!(
        usage,
        StorageUsage {
            files: 1,
            bytes: 1_000,
            uploads_in_progress: 1,
            bytes_reserved: 300
        }
    );
    assert_eq!(store.storage_usage(&other.id).await.unwrap().bytes_reserved, 7);

    let g = ConversationId::Group(gid("g1"));
    let d = direct("alice", "bob");
    store.add_file_ref(&app.id, &done.id, &g).await.unwrap();
    store.add_file_ref(&app.id, &done.id, &d).await.unwrap();
    store.add_file_ref(&app.id, &done.id, &d).await.unwrap();
    let mut refs = store.file_refs(&app.id, &done.id).await.unwrap();
    refs.sort();
    let mut want = vec![g.clone(), d.clone()];
    want.sort();
    assert_eq!(refs, want);
    assert!(store.file_refs(&other.id, &done.id).await.unwrap().is_empty());
    // A reference to a file the app does not have is refused.
    assert!(matches!(
        store.add_file_ref(&other.id, &done.id, &d).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.delete_file(&app.id, &done.id).await.unwrap());
    assert!(store.file_refs(&app.id, &done.id).await.unwrap().is_empty());
}

async fn stale_uploads_are_the_expired_and_the_failed(store: Arc<dyn Store>) {
    let app = app(store.as_ref()).await;
    let fresh = new_file("alice", 10, 1_000, 50_000);
    let old = new_file("alice", 10, 1_000, 2_000);
    let failed = new_file("alice", 10, 1_000, 50_000);
    let complete = new_file("alice", 10, 1_000, 2_000);
    for f in [&fresh, &old, &failed, &complete] {
        store.create_file(&app.id, f).await.unwrap();
    }
    assert!(store.advance_upload(&app.id, &failed.id, 0, 10).await.unwrap());
    assert!(store
        .finish_upload(&app.id, &failed.id, FileState::Failed, 3_000)
        .await
        .unwrap());
    assert!(store.advance_upload(&app.id, &complete.id, 0, 10).await.unwrap());
    assert!(store
        .finish_upload(&app.id, &complete.id, FileState::Complete, 1_500)
        .await
        .unwrap());

    let stale: Vec<FileId> = store
        .stale_uploads(10_000, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(stale.len(), 2, "{stale:?}");
    assert!(stale.contains(&old.id) && stale.contains(&failed.id));
    assert_eq!(store.stale_uploads(10_000, 1).await.unwrap().len(), 1);
}

async fn write_leases_exclude_other_writers_until_they_lapse(store: Arc<dyn Store>) {
    let app = app(store.as_ref()).await;
    let other = app_of_another_tenant(store.as_ref()).await;
    let f = new_file("alice", 100, 1_000, 9_000);
    store.create_file(&app.id, &f).await.unwrap();
    assert!(store.lease_upload(&app.id, &f.id, "a", 1_000, 2_000).await.unwrap());
    // Another writer is refused while it holds; the holder renews.
    assert!(!store.lease_upload(&app.id, &f.id, "b", 1_500, 2_500).await.unwrap());
    assert!(store.lease_upload(&app.id, &f.id, "a", 1_500, 3_000).await.unwrap());
    assert!(!store.lease_upload(&app.id, &f.id, "b", 2_999, 4_000).await.unwrap());
    // Another app's lease request names nothing.
    assert!(!store.lease_upload(&other.id, &f.id, "c", 9_000, 9_500).await.unwrap());
    // Lapsed: taken over; the old holder's end leaves the new lease alone.
    assert!(store.lease_upload(&app.id, &f.id, "b", 3_001, 4_000).await.unwrap());
    store.end_upload_lease(&app.id, &f.id, "a").await.unwrap();
    assert!(!store.lease_upload(&app.id, &f.id, "a", 3_500, 4_500).await.unwrap());
    store.end_upload_lease(&app.id, &f.id, "b").await.unwrap();
    assert!(store.lease_upload(&app.id, &f.id, "a", 3_500, 4_500).await.unwrap());
    // A complete file takes no lease.
    store.advance_upload(&app.id, &f.id, 0, 100).await.unwrap();
    store
        .finish_upload(&app.id, &f.id, FileState::Complete, 5_000)
        .await
        .unwrap();
    store.end_upload_lease(&app.id, &f.id, "a").await.unwrap();
    assert!(!store.lease_upload(&app.id, &f.id, "a", 6_000, 7_000).await.unwrap());
}

async fn released_files_are_listed_after_their_release_until_kept(store: Arc<dyn Store>) {
    let app = app(store.as_ref()).await;
    let f = new_file("alice", 10, 1_000, 9_000);
    store.create_file(&app.id, &f).await.unwrap();
    store.advance_upload(&app.id, &f.id, 0, 10).await.unwrap();
    store
        .finish_upload(&app.id, &f.id, FileState::Complete, 2_000)
        .await
        .unwrap();
    store
        .add_file_ref(&app.id, &f.id, &direct("alice", "bob"))
        .await
        .unwrap();
    let listed = |before| {
        let store = store.clone();
        let app_id = app.id.clone();
        async move {
            store
                .released_files(before, 100)
                .await
                .unwrap()
                .into_iter()
                .filter(|r| r.app_id == app_id)
                .map(|r| r.id)
                .collect::<Vec<_>>()
        }
    };
    assert!(listed(i64::MAX / 2).await.is_empty(), "not released");
    store.release_file(&app.id, &f.id, 10_000).await.unwrap();
    // A second release keeps the first time.
    store.release_file(&app.id, &f.id, 20_000).await.unwrap();
    assert!(listed(9_999).await.is_empty());
    assert_eq!(listed(10_000).await, vec![f.id.clone()]);
    // No message names it: not in use.
    assert!(!store.file_in_use(&app.id, &f.id).await.unwrap());
    store.keep_file(&app.id, &f.id).await.unwrap();
    assert!(listed(i64::MAX / 2).await.is_empty());
}
