//! Conformance of `RoomStore`: the room registry with its history, and room mutes.

use std::sync::Arc;

use serde_json::json;
use tern_platform::domain::*;
use tern_platform::ids::*;
use tern_platform::store::*;

use crate::fixtures::*;

fn new_room(id: &str, origin: RoomOrigin) -> NewRoom {
    NewRoom {
        id: rid(id),
        name: format!("room {id}"),
        metadata: json!({ "topic": id }),
        created_by: origin,
    }
}

fn room_msg(app: &AppId, room: &str, from: &str, key: &str) -> NewMessage {
    NewMessage {
        app_id: app.clone(),
        msg_id: MsgId::generate(),
        conversation_id: ConversationId::Room(rid(room)),
        sender: Sender::User(uid(from)),
        client_msg_id: cmid(key),
        msg_type: MessageType::Text,
        content: json!({ "text": key }),
        created_at: 2_000,
        participants: Vec::new(),
        events: Vec::new(),
        reply_to: None,
        mentions: Vec::new(),
        mention_all: false,
        push: false,
    }
}

async fn rooms_registry_with_history(store: Arc<dyn Store>) {
    let a = app(&*store).await.id;
    let b = app_of_other_tenant(&*store).await;
    let ev = event(&a, 1_000);
    let lobby = store
        .create_room(
            &a,
            &new_room("lobby", RoomOrigin::ServerApi),
            1_000,
            std::slice::from_ref(&ev),
        )
        .await
        .unwrap();
    assert_eq!(
        (lobby.name.as_str(), lobby.created_by, lobby.last_seq, lobby.created_at),
        ("room lobby", RoomOrigin::ServerApi, 0, 1_000)
    );
    assert_eq!(
        store.due_events(i64::MAX, 10).await.unwrap()[0].id,
        ev.id,
        "the event is written with the room"
    );
    let again = store
        .create_room(&a, &new_room("lobby", RoomOrigin::ServerApi), 1_001, &[])
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    // Another app has its own namespace: the same id is a different room, and A's is unseen.
    assert!(store.room(&b, &rid("lobby")).await.unwrap().is_none());
    store
        .create_room(&b, &new_room("lobby", RoomOrigin::ServerApi), 1_000, &[])
        .await
        .unwrap();

    // Created on join once, however many join at once; events only with the creation.
    let joins: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let a = a.clone();
            tokio::spawn(async move {
                let ev = event(&a, 1_000 + i);
                loop {
                    match store
                        .room_or_create(
                            &a,
                            &new_room("live", RoomOrigin::Join),
                            1_500,
                            std::slice::from_ref(&ev),
                        )
                        .await
                    {
                        Err(StoreError::Unavailable(_)) => tokio::task::yield_now().await,
                        r => return r.unwrap(),
                    }
                }
            })
        })
        .collect();
    let mut created = 0;
    for j in joins {
        let (room, c) = j.await.unwrap();
        assert_eq!(room.created_by, RoomOrigin::Join);
        created += usize::from(c);
    }
    assert_eq!(created, 1, "the room was created by exactly one join");
    let (existing, c) = store
        .room_or_create(&a, &new_room("lobby", RoomOrigin::Join), 9_999, &[])
        .await
        .unwrap();
    assert!(!c);
    assert_eq!(
        existing.created_by,
        RoomOrigin::ServerApi,
        "an existing room is left alone"
    );
    assert_eq!(store.due_events(i64::MAX, 100).await.unwrap().len(), 2);

    // History: the room's conversation keeps seqs; last_seq shows on the room.
    for i in 1..=3 {
        let m = stored(&commit_one(&*store, room_msg(&a, "lobby", "alice", &format!("l{i}"))).await).clone();
        assert_eq!(m.seq, i);
    }
    assert_eq!(store.room(&a, &rid("lobby")).await.unwrap().unwrap().last_seq, 3);
    assert_eq!(store.room(&b, &rid("lobby")).await.unwrap().unwrap().last_seq, 0);

    // Pages by id.
    for id in ["a1", "a2", "a3"] {
        store
            .create_room(&a, &new_room(id, RoomOrigin::ServerApi), 1_000, &[])
            .await
            .unwrap();
    }
    let first = store.rooms(&a, None, 2).await.unwrap();
    assert_eq!(
        first.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        vec!["a1", "a2"]
    );
    let rest = store.rooms(&a, Some(&rid("a2")), 10).await.unwrap();
    assert_eq!(
        rest.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        vec!["a3", "live", "lobby"]
    );
    assert_eq!(rest[2].last_seq, 3);

    // Updates keep what they do not name.
    let u = store
        .update_room(&a, &rid("lobby"), Some("Lobby"), None, 3_000, &[])
        .await
        .unwrap();
    assert_eq!(
        (u.name.as_str(), &u.metadata, u.updated_at),
        ("Lobby", &json!({"topic": "lobby"}), 3_000)
    );
    let u = store
        .update_room(&a, &rid("lobby"), None, Some(&json!({"pinned": true})), 3_001, &[])
        .await
        .unwrap();
    assert_eq!((u.name.as_str(), &u.metadata), ("Lobby", &json!({"pinned": true})));
    let missing = store.update_room(&b, &rid("a1"), Some("x"), None, 1, &[]).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");

    // Deleting takes the history and the mutes with it; the id can be used again, from seq 1.
    store
        .mute_in_room(&a, &rid("lobby"), &uid("bob"), i64::MAX, 3_000)
        .await
        .unwrap();
    let conv = ConversationId::Room(rid("lobby"));
    let old = store.messages(&a, &conv, SeqRange::After(0), 1).await.unwrap()[0].clone();
    store
        .set_reaction(&a, &old.msg_id, &uid("bob"), "+1", true, 3_000)
        .await
        .unwrap();
    assert_eq!(
        store
            .message_changes(&a, &conv, &uid("bob"), 0, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let missing = store.delete_room(&b, &rid("a1"), &[]).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");
    store.delete_room(&a, &rid("lobby"), &[]).await.unwrap();
    // What the lifecycle kept of its messages goes too (a new room of that id starts clean).
    assert!(store
        .reaction_summaries(&a, std::slice::from_ref(&old.msg_id), None, 3)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .message_changes(&a, &conv, &uid("bob"), 0, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store.room(&a, &rid("lobby")).await.unwrap().is_none());
    assert!(store
        .messages(&a, &conv, SeqRange::After(0), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        store.delete_room(&a, &rid("lobby"), &[]).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.room(&b, &rid("lobby")).await.unwrap().unwrap().id,
        rid("lobby"),
        "B's room stays"
    );
    let again = store
        .create_room(&a, &new_room("lobby", RoomOrigin::ServerApi), 4_000, &[])
        .await
        .unwrap();
    assert_eq!(again.last_seq, 0);
    assert_eq!(store.room_mute(&a, &rid("lobby"), &uid("bob")).await.unwrap(), None);
    let m = stored(&commit_one(&*store, room_msg(&a, "lobby", "alice", "after")).await).clone();
    assert_eq!(m.seq, 1);
}

async fn room_mutes_until_a_time(store: Arc<dyn Store>) {
    let a = app(&*store).await.id;
    let b = app_of_other_tenant(&*store).await;
    let missing = store.mute_in_room(&a, &rid("nowhere"), &uid("bob"), 5_000, 1_000).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");
    store
        .create_room(&a, &new_room("r", RoomOrigin::ServerApi), 1_000, &[])
        .await
        .unwrap();
    let m = store
        .mute_in_room(&a, &rid("r"), &uid("bob"), 5_000, 1_000)
        .await
        .unwrap();
    assert_eq!(
        m,
        RoomMute {
            user_id: uid("bob"),
            until: 5_000
        }
    );
    // Muting again replaces the time.
    store
        .mute_in_room(&a, &rid("r"), &uid("bob"), 9_000, 1_100)
        .await
        .unwrap();
    store
        .mute_in_room(&a, &rid("r"), &uid("carol"), 2_000, 1_100)
        .await
        .unwrap();
    assert_eq!(store.room_mute(&a, &rid("r"), &uid("bob")).await.unwrap(), Some(9_000));
    assert_eq!(store.room_mute(&a, &rid("r"), &uid("dave")).await.unwrap(), None);
    assert_eq!(
        store.room_mute(&b, &rid("r"), &uid("bob")).await.unwrap(),
        None,
        "scoped by app"
    );
    // Lists only mutes still in force.
    let now = store.room_mutes(&a, &rid("r"), 1_500, None, 10).await.unwrap();
    assert_eq!(now.len(), 2);
    let later = store.room_mutes(&a, &rid("r"), 3_000, None, 10).await.unwrap();
    assert_eq!(
        later,
        vec![RoomMute {
            user_id: uid("bob"),
            until: 9_000
        }]
    );
    let paged = store
        .room_mutes(&a, &rid("r"), 1_500, Some(&uid("bob")), 10)
        .await
        .unwrap();
    assert_eq!(
        paged.iter().map(|m| m.user_id.as_str()).collect::<Vec<_>>(),
        vec!["carol"]
    );
    store.unmute_in_room(&a, &rid("r"), &uid("bob")).await.unwrap();
    assert!(matches!(
        store.unmute_in_room(&a, &rid("r"), &uid("bob")).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.unmute_in_room(&b, &rid("r"), &uid("carol")).await,
        Err(StoreError::NotFound(_))
    ));
}

conformance!(rooms_registry_with_history, room_mutes_until_a_time,);
