//! Conformance of `UserStore`: users, bans and mutes, word lists.

use std::sync::Arc;

use serde_json::json;
use tern_platform::domain::*;
use tern_platform::store::*;

use crate::fixtures::*;

async fn users_upsert_list_delete_ban(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let a = &app.id;
    let profile = UserProfile {
        name: Some("Alice".into()),
        avatar_url: Some(Some("https://img/a.png".into())),
        metadata: Some(json!({ "level": 3 })),
    };
    let users = store
        .upsert_users(a, &[(uid("alice"), profile), (uid("bob"), UserProfile::default())], 100)
        .await
        .unwrap();
    assert_eq!(users[0].id, uid("alice"));
    assert_eq!(users[1].id, uid("bob"));
    assert_eq!(users[0].name, "Alice");

    // Fields left out keep their value; `Some(None)` clears the avatar.
    let update = UserProfile {
        name: None,
        avatar_url: Some(None),
        metadata: None,
    };
    let updated = store.upsert_users(a, &[(uid("alice"), update)], 200).await.unwrap();
    assert_eq!(updated[0].name, "Alice");
    assert_eq!(updated[0].avatar_url, None);
    assert_eq!(updated[0].metadata, json!({ "level": 3 }));
    assert_eq!((updated[0].created_at, updated[0].updated_at), (100, 200));
    assert_eq!(store.user(a, &uid("alice")).await.unwrap(), Some(updated[0].clone()));

    let more: Vec<_> = ["carol", "dave", "erin"]
        .iter()
        .map(|n| (uid(n), UserProfile::default()))
        .collect();
    store.upsert_users(a, &more, 300).await.unwrap();
    let page1 = store.list_users(a, None, 2).await.unwrap();
    let page2 = store.list_users(a, Some(&page1[1].id), 2).await.unwrap();
    let page3 = store.list_users(a, Some(&page2[1].id), 2).await.unwrap();
    let names: Vec<_> = page1
        .iter()
        .chain(&page2)
        .chain(&page3)
        .map(|u| u.id.to_string())
        .collect();
    assert_eq!(names, ["alice", "bob", "carol", "dave", "erin"]);

    let existing = store
        .existing_users(a, &[uid("erin"), uid("zed"), uid("alice")])
        .await
        .unwrap();
    assert_eq!(existing, vec![uid("erin"), uid("alice")]);

    store.set_user_ban(a, &uid("bob"), Some(5_000)).await.unwrap();
    store.revoke_user_tokens(a, &uid("bob"), 4_000).await.unwrap();
    let bob = store.user(a, &uid("bob")).await.unwrap().unwrap();
    assert!(bob.is_banned_at(4_999));
    assert_eq!(bob.tokens_revoked_before, Some(4_000));
    store.set_user_ban(a, &uid("bob"), None).await.unwrap();
    assert!(!store.user(a, &uid("bob")).await.unwrap().unwrap().is_banned_at(4_999));

    store.delete_user(a, &uid("bob")).await.unwrap();
    assert_eq!(store.user(a, &uid("bob")).await.unwrap(), None);
    let again = store.delete_user(a, &uid("bob")).await;
    assert!(matches!(again, Err(StoreError::NotFound(_))), "{again:?}");
    let ghost = store.set_user_ban(a, &uid("ghost"), Some(1)).await;
    assert!(matches!(ghost, Err(StoreError::NotFound(_))), "{ghost:?}");
}

fn word_list(name: &str, policy: WordPolicy, words: &[&str], at: UnixMillis) -> WordList {
    WordList {
        name: name.into(),
        policy,
        words: words.iter().map(|w| w.to_string()).collect(),
        created_at: at,
        updated_at: at,
    }
}

async fn word_lists_are_versioned_per_app(store: Arc<dyn Store>) {
    let a = &app(&*store).await.id;
    let b = &app_of_other_tenant(&*store).await;
    assert_eq!(store.word_lists_version(a).await.unwrap(), 0);
    assert_eq!(store.word_lists(a).await.unwrap(), vec![]);

    let first = store
        .put_word_list(a, &word_list("zh", WordPolicy::Replace, &["坏蛋"], 10), 2)
        .await
        .unwrap();
    assert_eq!(first, word_list("zh", WordPolicy::Replace, &["坏蛋"], 10));
    let v1 = store.word_lists_version(a).await.unwrap();
    assert!(v1 > 0);

    // Replacing keeps created_at, takes the rest, and moves the version.
    let replaced = store
        .put_word_list(a, &word_list("zh", WordPolicy::Reject, &["坏蛋", "笨蛋"], 20), 2)
        .await
        .unwrap();
    assert_eq!(replaced.created_at, 10);
    assert_eq!(replaced.updated_at, 20);
    assert_eq!(replaced.policy, WordPolicy::Reject);
    assert_eq!(replaced.words, vec!["坏蛋".to_owned(), "笨蛋".to_owned()]);
    let v2 = store.word_lists_version(a).await.unwrap();
    assert!(v2 > v1);

    store
        .put_word_list(a, &word_list("en", WordPolicy::Replace, &["darn"], 30), 2)
        .await
        .unwrap();
    let names: Vec<String> = store.word_lists(a).await.unwrap().into_iter().map(|l| l.name).collect();
    assert_eq!(names, vec!["en".to_owned(), "zh".to_owned()]);
    // A third list is over the limit of 2; replacing an existing one is not.
    let over = store
        .put_word_list(a, &word_list("fr", WordPolicy::Replace, &["zut"], 40), 2)
        .await;
    assert!(matches!(over, Err(StoreError::Rejected(_))), "{over:?}");
    store
        .put_word_list(a, &word_list("en", WordPolicy::Reject, &["darn"], 40), 2)
        .await
        .unwrap();

    // Another app sees none of it and cannot delete it.
    assert_eq!(store.word_lists(b).await.unwrap(), vec![]);
    assert_eq!(store.word_list(b, "zh").await.unwrap(), None);
    assert_eq!(store.word_lists_version(b).await.unwrap(), 0);
    let cross = store.delete_word_list(b, "zh").await;
    assert!(matches!(cross, Err(StoreError::NotFound(_))), "{cross:?}");

    let before = store.word_lists_version(a).await.unwrap();
    store.delete_word_list(a, "zh").await.unwrap();
    assert_eq!(store.word_list(a, "zh").await.unwrap(), None);
    assert!(store.word_lists_version(a).await.unwrap() > before);
    let again = store.delete_word_list(a, "zh").await;
    assert!(matches!(again, Err(StoreError::NotFound(_))), "{again:?}");
}

async fn users_are_muted_until_a_time(store: Arc<dyn Store>) {
    let a = &app(&*store).await.id;
    let b = &app_of_other_tenant(&*store).await;
    store
        .upsert_users(a, &[(uid("alice"), UserProfile::default())], 1)
        .await
        .unwrap();
    assert_eq!(store.user(a, &uid("alice")).await.unwrap().unwrap().muted_until, None);
    store.set_user_mute(a, &uid("alice"), Some(5_000)).await.unwrap();
    let alice = store.user(a, &uid("alice")).await.unwrap().unwrap();
    assert_eq!(alice.muted_until, Some(5_000));
    assert!(alice.is_muted_at(4_999) && !alice.is_muted_at(5_000));
    // A profile update keeps the mute; the ban is independent of it.
    store
        .upsert_users(a, &[(uid("alice"), UserProfile::default())], 2)
        .await
        .unwrap();
    let alice = store.user(a, &uid("alice")).await.unwrap().unwrap();
    assert_eq!((alice.muted_until, alice.banned_until), (Some(5_000), None));
    store.set_user_mute(a, &uid("alice"), None).await.unwrap();
    assert_eq!(store.user(a, &uid("alice")).await.unwrap().unwrap().muted_until, None);

    let missing = store.set_user_mute(a, &uid("nobody"), Some(1)).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");
    let cross = store.set_user_mute(b, &uid("alice"), Some(1)).await;
    assert!(matches!(cross, Err(StoreError::NotFound(_))), "{cross:?}");
}

conformance!(
    users_upsert_list_delete_ban,
    word_lists_are_versioned_per_app,
    users_are_muted_until_a_time,
);
