//! Conformance of `FriendStore`: friend requests, friends and blocklists.

use std::sync::Arc;

use tern_platform::domain::*;
use tern_platform::store::*;

use crate::fixtures::*;

async fn friend_requests_friends_and_deletes(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let a = &app.id;
    let (alice, bob, carol) = (uid("alice"), uid("bob"), uid("carol"));

    let r = store
        .create_friend_request(a, &alice, &bob, "hi bob", 10)
        .await
        .unwrap();
    assert_eq!((r.state, r.message.as_str()), (FriendRequestState::Pending, "hi bob"));
    // Asking again refreshes the message; still one pending request.
    store
        .create_friend_request(a, &alice, &bob, "hello?", 11)
        .await
        .unwrap();
    store.create_friend_request(a, &carol, &bob, "", 12).await.unwrap();
    let incoming = store.incoming_friend_requests(a, &bob, None, 10).await.unwrap();
    assert_eq!(
        incoming
            .iter()
            .map(|r| (r.from.as_str(), r.message.as_str()))
            .collect::<Vec<_>>(),
        vec![("alice", "hello?"), ("carol", "")]
    );
    let page = store.incoming_friend_requests(a, &bob, Some(&alice), 10).await.unwrap();
    assert_eq!(page.len(), 1);
    assert!(store
        .incoming_friend_requests(a, &alice, None, 10)
        .await
        .unwrap()
        .is_empty());

    // Accepting makes both sides, writes the event, and answers the reverse request too.
    store
        .create_friend_request(a, &bob, &alice, "me too", 13)
        .await
        .unwrap();
    let ev = event(a, 14);
    let accepted = store
        .answer_friend_request(a, &alice, &bob, true, std::slice::from_ref(&ev), 14)
        .await
        .unwrap();
    assert_eq!(accepted.state, FriendRequestState::Accepted);
    assert_eq!(
        store.friend_request(a, &bob, &alice).await.unwrap().unwrap().state,
        FriendRequestState::Accepted
    );
    assert!(store.due_events(14, 10).await.unwrap().iter().any(|e| e.id == ev.id));
    assert!(store.friend(a, &alice, &bob).await.unwrap().is_some());
    assert!(store.friend(a, &bob, &alice).await.unwrap().is_some());
    let again = store.answer_friend_request(a, &alice, &bob, true, &[], 15).await;
    assert!(matches!(again, Err(StoreError::NotFound(_))), "{again:?}");
    let dup = store.create_friend_request(a, &alice, &bob, "", 15).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");

    // Declining adds nobody.
    let declined = store
        .answer_friend_request(a, &carol, &bob, false, &[], 16)
        .await
        .unwrap();
    assert_eq!(declined.state, FriendRequestState::Declined);
    assert!(store.friend(a, &bob, &carol).await.unwrap().is_none());
    assert!(store
        .incoming_friend_requests(a, &bob, None, 10)
        .await
        .unwrap()
        .is_empty());

    // Remarks and tags are per side.
    let f = store
        .update_friend(a, &alice, &bob, Some("Bobby"), &["work".to_owned()], 17)
        .await
        .unwrap();
    assert_eq!(
        (f.remark.as_deref(), f.tags.clone()),
        (Some("Bobby"), vec!["work".to_owned()])
    );
    assert_eq!(store.friend(a, &bob, &alice).await.unwrap().unwrap().remark, None);
    let missing = store.update_friend(a, &alice, &carol, None, &[], 17).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");

    // Paging the list.
    store.create_friend_request(a, &carol, &alice, "", 18).await.unwrap();
    store
        .answer_friend_request(a, &carol, &alice, true, &[], 18)
        .await
        .unwrap();
    let list = store.friends(a, &alice, None, 1).await.unwrap();
    assert_eq!(
        list.iter().map(|f| f.friend_id.as_str()).collect::<Vec<_>>(),
        vec!["bob"]
    );
    let list = store.friends(a, &alice, Some(&bob), 10).await.unwrap();
    assert_eq!(
        list.iter().map(|f| f.friend_id.as_str()).collect::<Vec<_>>(),
        vec!["carol"]
    );

    // One-sided delete keeps the other side; both-sided removes both.
    store.delete_friend(a, &alice, &bob, false, &[]).await.unwrap();
    assert!(store.friend(a, &alice, &bob).await.unwrap().is_none());
    assert!(store.friend(a, &bob, &alice).await.unwrap().is_some());
    let gone = store.delete_friend(a, &alice, &bob, false, &[]).await;
    assert!(matches!(gone, Err(StoreError::NotFound(_))), "{gone:?}");
    store.delete_friend(a, &carol, &alice, true, &[]).await.unwrap();
    assert!(store.friend(a, &alice, &carol).await.unwrap().is_none());

    // Another app sees none of it.
    let other = app_of_other_tenant(&*store).await;
    assert!(store.friends(&other, &bob, None, 10).await.unwrap().is_empty());
    assert!(store.friend_request(&other, &alice, &bob).await.unwrap().is_none());
    let cross = store.delete_friend(&other, &bob, &alice, true, &[]).await;
    assert!(matches!(cross, Err(StoreError::NotFound(_))), "{cross:?}");
    assert!(store.friend(a, &bob, &alice).await.unwrap().is_some());
}

async fn mutual_acceptance_at_once(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    for round in 0..5 {
        let (a, b) = (uid(&format!("a{round}")), uid(&format!("b{round}")));
        store.create_friend_request(&app.id, &a, &b, "", 1).await.unwrap();
        store.create_friend_request(&app.id, &b, &a, "", 1).await.unwrap();
        let (s1, s2, id) = (store.clone(), store.clone(), app.id.clone());
        let (a1, b1, a2, b2, id2) = (a.clone(), b.clone(), a.clone(), b.clone(), id.clone());
        let one = tokio::spawn(async move { s1.answer_friend_request(&id, &a1, &b1, true, &[], 2).await });
        let two = tokio::spawn(async move { s2.answer_friend_request(&id2, &b2, &a2, true, &[], 2).await });
        let results = [one.await.unwrap(), two.await.unwrap()];
        assert!(results.iter().any(Result::is_ok), "{results:?}");
        for r in &results {
            assert!(matches!(r, Ok(_) | Err(StoreError::NotFound(_))), "{r:?}");
        }
        assert!(store.friend(&app.id, &a, &b).await.unwrap().is_some());
        assert!(store.friend(&app.id, &b, &a).await.unwrap().is_some());
    }
}

async fn blocklists(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let a = &app.id;
    let (alice, bob, carol) = (uid("alice"), uid("bob"), uid("carol"));
    let first = store.block_user(a, &alice, &bob, 10).await.unwrap();
    let again = store.block_user(a, &alice, &bob, 20).await.unwrap();
    assert_eq!(first, again, "blocking twice keeps the first block");
    store.block_user(a, &alice, &carol, 30).await.unwrap();
    assert!(store.blocks_user(a, &alice, &bob).await.unwrap());
    assert!(!store.blocks_user(a, &bob, &alice).await.unwrap(), "blocks go one way");
    let list = store.blocks(a, &alice, None, 10).await.unwrap();
    assert_eq!(
        list.iter().map(|b| b.blocked_id.as_str()).collect::<Vec<_>>(),
        vec!["bob", "carol"]
    );
    assert_eq!(store.blocks(a, &alice, Some(&bob), 10).await.unwrap().len(), 1);
    let other = app_of_other_tenant(&*store).await;
    assert!(!store.blocks_user(&other, &alice, &bob).await.unwrap());
    let cross = store.unblock_user(&other, &alice, &bob).await;
    assert!(matches!(cross, Err(StoreError::NotFound(_))), "{cross:?}");
    store.unblock_user(a, &alice, &bob).await.unwrap();
    assert!(!store.blocks_user(a, &alice, &bob).await.unwrap());
    let missing = store.unblock_user(a, &alice, &bob).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");
}

conformance!(
    friend_requests_friends_and_deletes,
    mutual_acceptance_at_once,
    blocklists,
);
