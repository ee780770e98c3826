//! Conformance of `GroupStore` and `JoinRequestStore`: timelines, members, notices, roles,
//! transfers, join requests, dismissal, mentions, read positions, the app's groups searched.

use std::sync::Arc;

use serde_json::json;
use tern_platform::domain::*;
use tern_platform::ids::*;
use tern_platform::store::*;

use crate::fixtures::*;

async fn groups_are_one_timeline_with_members(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let a = &app.id;
    let g = gid("team");
    let group = store
        .create_group(
            a,
            &new_group("team", "alice", &["bob", "carol", "alice", "bob"], 5),
            100,
        )
        .await
        .unwrap()
        .value;
    assert_eq!((group.member_count, group.owner.clone()), (3, uid("alice")));
    assert_eq!(store.group(a, &g).await.unwrap(), Some(group.clone()));
    let dup = store.create_group(a, &new_group("team", "bob", &[], 5), 100).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    let too_big = store
        .create_group(a, &new_group("big", "alice", &["b", "c", "d"], 3), 100)
        .await;
    assert!(matches!(too_big, Err(StoreError::Rejected(_))), "{too_big:?}");
    assert_eq!(store.group(a, &gid("big")).await.unwrap(), None);

    let owner = store.group_member(a, &g, &uid("alice")).await.unwrap().unwrap();
    assert_eq!((owner.role, owner.joined_seq), (GroupRole::Owner, 0));
    let entry = store
        .conversation(a, &uid("carol"), &ConversationId::Group(g.clone()))
        .await
        .unwrap();
    assert_eq!(entry.map(|e| (e.last_seq, e.unread)), Some((0, 0)));

    // Two messages, then dave joins: he starts at seq 2.
    let out = store
        .commit_messages(&[
            group_msg(a, "team", "alice", "g1", 200),
            group_msg(a, "team", "bob", "g2", 210),
        ])
        .await
        .unwrap();
    assert_eq!(out.iter().map(|o| stored(o).seq).collect::<Vec<_>>(), [1, 2]);
    let added = store
        .add_group_members(a, &g, &[uid("dave"), uid("bob")], 5, 300, &|_| GroupRecord::default())
        .await
        .unwrap()
        .value;
    assert_eq!(added, vec![uid("dave")], "existing members are skipped");
    let dave = store.group_member(a, &g, &uid("dave")).await.unwrap().unwrap();
    assert_eq!(
        (dave.role, dave.joined_seq, dave.joined_at),
        (GroupRole::Member, 2, 300)
    );
    let dave_entry = store
        .conversation(a, &uid("dave"), &ConversationId::Group(g.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((dave_entry.read_seq, dave_entry.unread), (2, 0));
    let carol_entry = store
        .conversation(a, &uid("carol"), &ConversationId::Group(g.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        carol_entry.unread, 2,
        "read diffusion: one timeline, every member sees it"
    );
    let bob_entry = store
        .conversation(a, &uid("bob"), &ConversationId::Group(g.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bob_entry.read_seq, 2, "the sender read their own message");

    let over = store
        .add_group_members(a, &g, &[uid("erin"), uid("frank")], 5, 400, &|_| GroupRecord::default())
        .await;
    assert!(matches!(over, Err(StoreError::Rejected(_))), "{over:?}");
    assert_eq!(store.group(a, &g).await.unwrap().unwrap().member_count, 4);

    let page1 = store.group_members(a, &g, None, 3).await.unwrap();
    let page2 = store.group_members(a, &g, Some(&page1[2].user_id), 3).await.unwrap();
    let ids: Vec<_> = page1.iter().chain(&page2).map(|m| m.user_id.to_string()).collect();
    assert_eq!(ids, ["alice", "bob", "carol", "dave"]);

    store
        .remove_group_member(a, &g, &uid("carol"), &GroupRecord::default(), 1)
        .await
        .unwrap();
    let gone = store
        .remove_group_member(a, &g, &uid("carol"), &GroupRecord::default(), 1)
        .await;
    assert!(matches!(gone, Err(StoreError::NotFound(_))), "{gone:?}");
    assert_eq!(
        store.group_member_ids(a, &g).await.unwrap(),
        vec![uid("alice"), uid("bob"), uid("dave")]
    );
    assert_eq!(store.group(a, &g).await.unwrap().unwrap().member_count, 3);
    let history = store
        .messages(a, &ConversationId::Group(g.clone()), SeqRange::After(0), 10)
        .await
        .unwrap();
    assert_eq!(history.len(), 2, "one copy of each message, not one per member");
}

fn record(notice: serde_json::Value, events: Vec<NewOutboxEvent>) -> GroupRecord {
    GroupRecord {
        notice: Some(notice),
        actor: None,
        personal: Vec::new(),
        events,
    }
}

fn gconv(g: &str) -> ConversationId {
    ConversationId::Group(gid(g))
}

async fn entry_of(store: &dyn Store, a: &AppId, user: &str, c: &ConversationId) -> Option<ConversationEntry> {
    store.conversation(a, &uid(user), c).await.unwrap()
}

async fn pending_event_types(store: &dyn Store, a: &AppId) -> Vec<String> {
    store
        .due_events(i64::MAX, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.app_id == *a)
        .map(|e| e.event_type)
        .collect()
}

fn typed_event(app: &AppId, event_type: &str) -> NewOutboxEvent {
    NewOutboxEvent {
        event_type: event_type.into(),
        ..event(app, 1)
    }
}

/// A group's opening notice, membership changes with their notices, events and personal
/// notices, and what each member's entry shows.
async fn group_changes_write_their_notices(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let a = &app.id;
    let g = gid("crew");
    let mut spec = new_group("crew", "alice", &["bob"], 4);
    spec.notice = Some(json!({"event": "group_created"}));
    spec.events = vec![typed_event(a, "group.created")];
    spec.announcement = "welcome".into();
    spec.join_policy = JoinPolicy::Free;
    let created = store.create_group(a, &spec, 100).await.unwrap();
    let opening = created.notice.clone().unwrap();
    assert_eq!(
        (opening.seq, opening.msg_type, opening.sender.clone()),
        (1, MessageType::System, Sender::System)
    );
    assert_eq!(created.value.announcement, "welcome");
    assert_eq!(created.value.join_policy, JoinPolicy::Free);
    assert!(created.value.version > 0);
    let bob = entry_of(&*store, a, "bob", &gconv("crew")).await.unwrap();
    assert_eq!(
        (bob.last_seq, bob.read_seq, bob.unread),
        (1, 1, 0),
        "members see the opening notice, already read"
    );
    let bob_member = store.group_member(a, &g, &uid("bob")).await.unwrap().unwrap();
    assert_eq!((bob_member.joined_seq, bob_member.muted_until), (0, None));

    // A message, then carol joins: she sees her own "joined" notice, not what came before.
    commit_one(&*store, group_msg(a, "crew", "bob", "m1", 110)).await;
    let added = store
        .add_group_members(a, &g, &[uid("carol"), uid("bob")], 4, 120, &|added: &[UserId]| {
            record(
                json!({"event": "members_added", "users": added}),
                vec![typed_event(a, "group.member_added")],
            )
        })
        .await
        .unwrap();
    assert_eq!(added.value, vec![uid("carol")]);
    let joined = added.notice.unwrap();
    assert_eq!((joined.seq, joined.content["users"].clone()), (3, json!(["carol"])));
    let carol = store.group_member(a, &g, &uid("carol")).await.unwrap().unwrap();
    assert_eq!(carol.joined_seq, 2);
    let carol_entry = entry_of(&*store, a, "carol", &gconv("crew")).await.unwrap();
    assert_eq!((carol_entry.read_seq, carol_entry.unread), (3, 0));
    let bob = entry_of(&*store, a, "bob", &gconv("crew")).await.unwrap();
    assert_eq!((bob.last_seq, bob.unread), (3, 1), "the notice is news to the others");
    let group = store.group(a, &g).await.unwrap().unwrap();
    assert_eq!(group.member_count, 3);
    assert!(
        group.version > created.value.version,
        "membership changes bump the version"
    );

    // Removal: the notice goes to the timeline, the personal one to the removed user.
    let removal = GroupRecord {
        notice: Some(json!({"event": "member_removed", "user": "carol"})),
        actor: Some(uid("alice")),
        personal: vec![(uid("carol"), json!({"event": "removed_from_group"}))],
        events: vec![typed_event(a, "group.member_removed")],
    };
    let removed = store
        .remove_group_member(a, &g, &uid("carol"), &removal, 130)
        .await
        .unwrap();
    assert_eq!(removed.notice.as_ref().map(|m| m.seq), Some(4));
    let alice = entry_of(&*store, a, "alice", &gconv("crew")).await.unwrap();
    assert_eq!(
        (alice.read_seq, alice.unread),
        (4, 0),
        "the one who removed carol has read the notice"
    );
    let bob = entry_of(&*store, a, "bob", &gconv("crew")).await.unwrap();
    assert_eq!((bob.read_seq, bob.unread), (2, 2), "for the others it is news");
    assert_eq!(removed.personal.len(), 1);
    let personal = &removed.personal[0];
    assert_eq!(personal.conversation_id, ConversationId::System(uid("carol")));
    assert_eq!(personal.content["event"], "removed_from_group");
    assert_eq!(entry_of(&*store, a, "carol", &gconv("crew")).await, None);
    let inbox = entry_of(&*store, a, "carol", &ConversationId::System(uid("carol")))
        .await
        .unwrap();
    assert_eq!(
        (inbox.last_seq, inbox.unread),
        (1, 1),
        "kept for carol like any message"
    );
    let owner_out = store
        .remove_group_member(a, &g, &uid("alice"), &GroupRecord::default(), 140)
        .await;
    assert!(matches!(owner_out, Err(StoreError::Rejected(_))), "{owner_out:?}");
    assert!(store.group_member(a, &g, &uid("alice")).await.unwrap().is_some());

    let types = pending_event_types(&*store, a).await;
    for t in ["group.created", "group.member_added", "group.member_removed"] {
        assert!(types.contains(&t.to_owned()), "{t} in {types:?}");
    }
    let history = store.messages(a, &gconv("crew"), SeqRange::After(0), 10).await.unwrap();
    let events: Vec<_> = history
        .iter()
        .map(|m| {
            m.content
                .get("event")
                .and_then(|e| e.as_str())
                .unwrap_or("-")
                .to_owned()
        })
        .collect();
    assert_eq!(events, ["group_created", "-", "members_added", "member_removed"]);
}

async fn group_profiles_roles_mutes_and_transfers(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let a = &app.id;
    let g = gid("club");
    let v0 = store
        .create_group(a, &new_group("club", "alice", &["bob", "carol"], 10), 100)
        .await
        .unwrap()
        .value
        .version;

    let patch = GroupPatch {
        name: Some("The Club".into()),
        avatar_url: Some(Some("https://x/a.png".into())),
        announcement: Some("be nice".into()),
        join_policy: Some(JoinPolicy::InviteOnly),
        mute_all: Some(true),
        ..GroupPatch::default()
    };
    let changed = store
        .update_group(
            a,
            &g,
            &patch,
            &record(json!({"event": "group_updated"}), Vec::new()),
            200,
        )
        .await
        .unwrap();
    let read = store.group(a, &g).await.unwrap().unwrap();
    assert_eq!(read, changed.value);
    assert_eq!(
        (
            read.name.as_str(),
            read.avatar_url.as_deref(),
            read.announcement.as_str(),
            read.join_policy,
            read.mute_all,
            read.updated_at
        ),
        (
            "The Club",
            Some("https://x/a.png"),
            "be nice",
            JoinPolicy::InviteOnly,
            true,
            200
        )
    );
    assert_eq!(read.metadata, json!({"topic": "tests"}), "fields not patched are kept");
    assert!(read.version > v0);
    assert_eq!(changed.notice.unwrap().seq, 1);
    let clear = GroupPatch {
        avatar_url: Some(None),
        ..GroupPatch::default()
    };
    let cleared = store
        .update_group(a, &g, &clear, &GroupRecord::default(), 210)
        .await
        .unwrap();
    assert_eq!((cleared.value.avatar_url, cleared.notice), (None, None));

    // Roles and mutes; the owner is untouchable here.
    let bob = store
        .change_group_member(
            a,
            &g,
            &uid("bob"),
            MemberChange::Role(GroupRole::Admin),
            &GroupRecord::default(),
            300,
        )
        .await
        .unwrap()
        .value;
    assert_eq!(bob.role, GroupRole::Admin);
    let carol = store
        .change_group_member(
            a,
            &g,
            &uid("carol"),
            MemberChange::Mute(Some(9_000)),
            &GroupRecord::default(),
            310,
        )
        .await
        .unwrap()
        .value;
    assert_eq!(carol.muted_until, Some(9_000));
    assert_eq!(
        store.group_member(a, &g, &uid("carol")).await.unwrap(),
        Some(carol.clone())
    );
    assert!(carol.is_muted_at(8_999) && !carol.is_muted_at(9_000));
    let unmuted = store
        .change_group_member(
            a,
            &g,
            &uid("carol"),
            MemberChange::Mute(None),
            &GroupRecord::default(),
            320,
        )
        .await
        .unwrap()
        .value;
    assert_eq!((unmuted.muted_until, unmuted.role), (None, GroupRole::Member));
    for change in [MemberChange::Role(GroupRole::Member), MemberChange::Mute(Some(5))] {
        let r = store
            .change_group_member(a, &g, &uid("alice"), change, &GroupRecord::default(), 330)
            .await;
        assert!(matches!(r, Err(StoreError::Rejected(_))), "{r:?}");
    }
    let to_owner = store
        .change_group_member(
            a,
            &g,
            &uid("bob"),
            MemberChange::Role(GroupRole::Owner),
            &GroupRecord::default(),
            330,
        )
        .await;
    assert!(matches!(to_owner, Err(StoreError::Rejected(_))), "{to_owner:?}");
    let stranger = store
        .change_group_member(
            a,
            &g,
            &uid("zed"),
            MemberChange::Mute(None),
            &GroupRecord::default(),
            330,
        )
        .await;
    assert!(matches!(stranger, Err(StoreError::NotFound(_))), "{stranger:?}");

    // Transfer: carol (muted before) becomes owner, alice a member.
    store
        .change_group_member(
            a,
            &g,
            &uid("carol"),
            MemberChange::Mute(Some(9_000)),
            &GroupRecord::default(),
            340,
        )
        .await
        .unwrap();
    let moved = store
        .transfer_group_owner(
            a,
            &g,
            &uid("alice"),
            &uid("carol"),
            &record(json!({"event": "owner_transferred"}), Vec::new()),
            400,
        )
        .await
        .unwrap();
    assert_eq!(moved.value.owner, uid("carol"));
    assert_eq!(store.group(a, &g).await.unwrap().unwrap().owner, uid("carol"));
    let carol = store.group_member(a, &g, &uid("carol")).await.unwrap().unwrap();
    assert_eq!((carol.role, carol.muted_until), (GroupRole::Owner, None));
    let alice = store.group_member(a, &g, &uid("alice")).await.unwrap().unwrap();
    assert_eq!(alice.role, GroupRole::Member);
    let stale = store
        .transfer_group_owner(a, &g, &uid("alice"), &uid("bob"), &GroupRecord::default(), 410)
        .await;
    assert!(matches!(stale, Err(StoreError::Rejected(_))), "{stale:?}");
    let outsider = store
        .transfer_group_owner(a, &g, &uid("carol"), &uid("zed"), &GroupRecord::default(), 410)
        .await;
    assert!(matches!(outsider, Err(StoreError::NotFound(_))), "{outsider:?}");
    assert_eq!(store.group(a, &g).await.unwrap().unwrap().owner, uid("carol"));

    // The groups a user is in, paged by id.
    store
        .create_group(a, &new_group("alpha", "bob", &["alice"], 10), 500)
        .await
        .unwrap();
    store
        .create_group(a, &new_group("zulu", "dave", &[], 10), 500)
        .await
        .unwrap();
    let first = store.user_groups(a, &uid("alice"), None, 1).await.unwrap();
    let rest = store
        .user_groups(a, &uid("alice"), Some(&first[0].id), 10)
        .await
        .unwrap();
    let ids: Vec<_> = first.iter().chain(&rest).map(|g| g.id.to_string()).collect();
    assert_eq!(ids, ["alpha", "club"]);
    assert_eq!(rest[0].name, "The Club");
}

async fn join_requests_are_answered_once(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let a = &app.id;
    let g = gid("book");
    store
        .create_group(a, &new_group("book", "alice", &["bob"], 3), 100)
        .await
        .unwrap();
    let ask = |user: &str, message: &str, at: UnixMillis| GroupJoinRequest {
        group_id: g.clone(),
        user_id: uid(user),
        message: message.into(),
        inviter: None,
        state: JoinRequestState::Pending,
        created_at: at,
        updated_at: at,
    };
    let first = store
        .put_group_join_request(a, &ask("carol", "hi", 200), &[typed_event(a, "group.join_requested")])
        .await
        .unwrap();
    assert_eq!((first.state, first.created_at), (JoinRequestState::Pending, 200));
    let again = store
        .put_group_join_request(
            a,
            &GroupJoinRequest {
                inviter: Some(uid("bob")),
                ..ask("carol", "please", 210)
            },
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            again.message.as_str(),
            again.inviter.clone(),
            again.created_at,
            again.updated_at
        ),
        ("please", Some(uid("bob")), 200, 210),
        "asking again while pending replaces the message and keeps the first time"
    );
    store
        .put_group_join_request(a, &ask("dave", "", 220), &[])
        .await
        .unwrap();
    store
        .put_group_join_request(a, &ask("erin", "", 230), &[])
        .await
        .unwrap();
    let missing = store
        .put_group_join_request(
            a,
            &GroupJoinRequest {
                group_id: gid("nope"),
                ..ask("dave", "", 1)
            },
            &[],
        )
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");
    let page = store.group_join_requests(a, &g, None, 2).await.unwrap();
    let next = store
        .group_join_requests(a, &g, Some(&page[1].user_id), 2)
        .await
        .unwrap();
    let ids: Vec<_> = page.iter().chain(&next).map(|r| r.user_id.to_string()).collect();
    assert_eq!(ids, ["carol", "dave", "erin"]);

    // Carol is accepted: a member with her notice, the request answered for good.
    let accepted = store
        .answer_group_join_request(
            a,
            &g,
            &uid("carol"),
            JoinAnswer::Accept { member_limit: 3 },
            300,
            &|joined: &[UserId]| record(json!({"event": "member_joined", "users": joined}), Vec::new()),
        )
        .await
        .unwrap();
    assert_eq!(accepted.value.state, JoinRequestState::Accepted);
    assert_eq!(accepted.notice.unwrap().content["users"], json!(["carol"]));
    assert!(store.group_member(a, &g, &uid("carol")).await.unwrap().is_some());
    assert_eq!(store.group(a, &g).await.unwrap().unwrap().member_count, 3);
    let twice = store
        .answer_group_join_request(
            a,
            &g,
            &uid("carol"),
            JoinAnswer::Accept { member_limit: 3 },
            310,
            &|_| GroupRecord::default(),
        )
        .await;
    assert!(matches!(twice, Err(StoreError::NotFound(_))), "{twice:?}");

    // The group is full now: accepting dave fails and changes nothing.
    let full = store
        .answer_group_join_request(
            a,
            &g,
            &uid("dave"),
            JoinAnswer::Accept { member_limit: 3 },
            320,
            &|_| GroupRecord::default(),
        )
        .await;
    assert!(matches!(full, Err(StoreError::Rejected(_))), "{full:?}");
    assert_eq!(
        store
            .group_join_request(a, &g, &uid("dave"))
            .await
            .unwrap()
            .unwrap()
            .state,
        JoinRequestState::Pending
    );
    assert!(store.group_member(a, &g, &uid("dave")).await.unwrap().is_none());
    let declined = store
        .answer_group_join_request(a, &g, &uid("dave"), JoinAnswer::Decline, 330, &|_| {
            GroupRecord::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (declined.value.state, declined.notice),
        (JoinRequestState::Declined, None)
    );
    // Adding erin directly settles her pending request.
    store
        .add_group_members(a, &g, &[uid("erin")], 4, 340, &|_| GroupRecord::default())
        .await
        .unwrap();
    assert_eq!(
        store
            .group_join_request(a, &g, &uid("erin"))
            .await
            .unwrap()
            .unwrap()
            .state,
        JoinRequestState::Accepted
    );
    assert!(store.group_join_requests(a, &g, None, 10).await.unwrap().is_empty());
    // Dave asks again after the decline: pending once more, with a new time.
    let reopened = store
        .put_group_join_request(a, &ask("dave", "again", 400), &[])
        .await
        .unwrap();
    assert_eq!((reopened.state, reopened.created_at), (JoinRequestState::Pending, 400));
}

async fn dismissing_removes_everything_of_the_group(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let a = &app.id;
    let g = gid("gone");
    let mut spec = new_group("gone", "alice", &["bob", "carol"], 10);
    spec.notice = Some(json!({"event": "group_created"}));
    store.create_group(a, &spec, 100).await.unwrap();
    commit_one(&*store, group_msg(a, "gone", "bob", "m1", 110)).await;
    let ask = GroupJoinRequest {
        group_id: g.clone(),
        user_id: uid("dave"),
        message: String::new(),
        inviter: None,
        state: JoinRequestState::Pending,
        created_at: 120,
        updated_at: 120,
    };
    store.put_group_join_request(a, &ask, &[]).await.unwrap();
    let dismissed = store
        .dismiss_group(a, &g, 200, &|members: &[UserId]| GroupRecord {
            notice: Some(json!({"event": "ignored: the timeline is gone"})),
            actor: None,
            personal: members
                .iter()
                .map(|m| (m.clone(), json!({"event": "group_dismissed"})))
                .collect(),
            events: vec![typed_event(a, "group.dismissed")],
        })
        .await
        .unwrap();
    assert_eq!(dismissed.value, vec![uid("alice"), uid("bob"), uid("carol")]);
    assert_eq!(dismissed.notice, None);
    let told: Vec<_> = dismissed
        .personal
        .iter()
        .map(|m| m.conversation_id.to_string())
        .collect();
    assert_eq!(told, ["s:alice", "s:bob", "s:carol"]);
    assert_eq!(store.group(a, &g).await.unwrap(), None);
    assert!(store.group_member_ids(a, &g).await.unwrap().is_empty());
    assert!(store
        .messages(a, &gconv("gone"), SeqRange::After(0), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(entry_of(&*store, a, "bob", &gconv("gone")).await, None);
    assert_eq!(store.group_join_request(a, &g, &uid("dave")).await.unwrap(), None);
    let bob_inbox = entry_of(&*store, a, "bob", &ConversationId::System(uid("bob")))
        .await
        .unwrap();
    assert_eq!(bob_inbox.last_message.unwrap().content["event"], "group_dismissed");
    assert!(pending_event_types(&*store, a)
        .await
        .contains(&"group.dismissed".to_owned()));
    let again = store.dismiss_group(a, &g, 210, &|_| GroupRecord::default()).await;
    assert!(matches!(again, Err(StoreError::NotFound(_))), "{again:?}");

    // The id is free again, and the new group's timeline starts over.
    store
        .create_group(a, &new_group("gone", "dave", &["bob"], 10), 300)
        .await
        .unwrap();
    let first = stored(&commit_one(&*store, group_msg(a, "gone", "bob", "m2", 310)).await).clone();
    assert_eq!(first.seq, 1);
}

async fn mentions_mark_only_the_named_entries(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let a = &app.id;
    store
        .create_group(a, &new_group("talk", "alice", &["bob", "carol", "dave"], 10), 100)
        .await
        .unwrap();
    let mentioned = |user: &'static str| {
        let store = store.clone();
        let a = a.clone();
        async move { entry_of(&*store, &a, user, &gconv("talk")).await.unwrap().mentioned }
    };
    let mut named = group_msg(a, "talk", "alice", "m1", 200);
    named.mentions = vec![uid("bob"), uid("carol")];
    let plain = group_msg(a, "talk", "dave", "m2", 201);
    let out = store.commit_messages(&[named, plain]).await.unwrap();
    let m1 = stored(&out[0]).clone();
    assert_eq!(
        (m1.mentions.clone(), m1.mention_all),
        (vec![uid("bob"), uid("carol")], false)
    );
    assert_eq!(store.message(a, &m1.msg_id).await.unwrap(), Some(m1.clone()));
    assert!(mentioned("bob").await && mentioned("carol").await);
    assert!(!mentioned("dave").await && !mentioned("alice").await);
    let history = store.messages(a, &gconv("talk"), SeqRange::After(0), 10).await.unwrap();
    assert_eq!(history[0].mentions, vec![uid("bob"), uid("carol")]);
    assert!(history[1].mentions.is_empty());

    // Reading up to the mention clears it; reading short of it does not.
    store.mark_read(a, &uid("bob"), &gconv("talk"), 1).await.unwrap();
    assert!(!mentioned("bob").await);
    store.mark_read(a, &uid("carol"), &gconv("talk"), 0).await.unwrap();
    assert!(mentioned("carol").await);

    // @all marks everyone but its sender, without writing their entries.
    let mut all = group_msg(a, "talk", "bob", "m3", 300);
    all.mention_all = true;
    let m3 = stored(&commit_one(&*store, all).await).clone();
    assert!(m3.mention_all);
    for u in ["alice", "carol", "dave"] {
        assert!(mentioned(u).await, "{u}");
    }
    assert!(!mentioned("bob").await, "the sender has read their own @all");
    store.mark_read(a, &uid("dave"), &gconv("talk"), m3.seq).await.unwrap();
    assert!(!mentioned("dave").await);
    let listed = store.conversations(a, &uid("carol"), None, 10).await.unwrap();
    assert!(listed[0].mentioned, "the list shows the flag too");
    let synced = store
        .conversations_changed_since(a, &uid("alice"), 0, 10)
        .await
        .unwrap();
    assert!(synced[0].mentioned);
    assert_eq!(synced[0].last_message.as_ref().map(|m| m.mention_all), Some(true));
}

/// Another app's group operations find nothing and change nothing.
async fn group_operations_are_scoped_by_app(store: Arc<dyn Store>) {
    let mine = app(&*store).await;
    let theirs = app(&*store).await;
    let (a, b) = (&mine.id, &theirs.id);
    let g = gid("private");
    store
        .create_group(a, &new_group("private", "alice", &["bob"], 10), 100)
        .await
        .unwrap();
    let nothing = GroupRecord::default();
    let r = store
        .update_group(
            b,
            &g,
            &GroupPatch {
                name: Some("x".into()),
                ..GroupPatch::default()
            },
            &nothing,
            1,
        )
        .await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    let r = store
        .change_group_member(b, &g, &uid("bob"), MemberChange::Mute(Some(9)), &nothing, 1)
        .await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    let r = store
        .transfer_group_owner(b, &g, &uid("alice"), &uid("bob"), &nothing, 1)
        .await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    let r = store.dismiss_group(b, &g, 1, &|_| GroupRecord::default()).await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    let ask = GroupJoinRequest {
        group_id: g.clone(),
        user_id: uid("eve"),
        message: String::new(),
        inviter: None,
        state: JoinRequestState::Pending,
        created_at: 1,
        updated_at: 1,
    };
    let r = store.put_group_join_request(b, &ask, &[]).await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    store.put_group_join_request(a, &ask, &[]).await.unwrap();
    assert!(store.group_join_requests(b, &g, None, 10).await.unwrap().is_empty());
    assert_eq!(store.group_join_request(b, &g, &uid("eve")).await.unwrap(), None);
    let r = store
        .answer_group_join_request(b, &g, &uid("eve"), JoinAnswer::Accept { member_limit: 10 }, 1, &|_| {
            GroupRecord::default()
        })
        .await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    assert!(store.user_groups(b, &uid("alice"), None, 10).await.unwrap().is_empty());
    assert!(store.group_read_positions(b, &g).await.unwrap().is_empty());
    // Nothing of A changed.
    let group = store.group(a, &g).await.unwrap().unwrap();
    assert_eq!((group.name.as_str(), group.owner.as_str()), ("group private", "alice"));
    assert_eq!(
        store
            .group_member(a, &g, &uid("bob"))
            .await
            .unwrap()
            .unwrap()
            .muted_until,
        None
    );
    assert_eq!(store.group_join_requests(a, &g, None, 10).await.unwrap().len(), 1);
}

async fn read_positions_of_members(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let a = &app.id;
    let g = gid("rr");
    store
        .create_group(a, &new_group("rr", "alice", &["bob", "carol"], 10), 100)
        .await
        .unwrap();
    for (k, from) in ["m1", "m2", "m3"].iter().zip(["alice", "alice", "bob"]) {
        commit_one(&*store, group_msg(a, "rr", from, k, 200)).await;
    }
    store.mark_read(a, &uid("carol"), &gconv("rr"), 2).await.unwrap();
    store
        .add_group_members(a, &g, &[uid("dave")], 10, 300, &|_| GroupRecord::default())
        .await
        .unwrap();
    let positions = store.group_read_positions(a, &g).await.unwrap();
    let seen: Vec<_> = positions
        .iter()
        .map(|p| (p.user_id.to_string(), p.read_seq, p.joined_seq))
        .collect();
    assert_eq!(
        seen,
        [
            ("alice".to_owned(), 2, 0),
            ("bob".to_owned(), 3, 0),
            ("carol".to_owned(), 2, 0),
            ("dave".to_owned(), 3, 3)
        ]
    );
}

/// The console's list: by id, after a key, an id prefix or part of the name (ignoring case),
/// LIKE's wildcards taken literally, only the app's own.
async fn groups_are_listed_and_searched_by_id_and_name(store: Arc<dyn Store>) {
    let mine = app(&*store).await;
    let theirs = app(&*store).await;
    let (a, b) = (&mine.id, &theirs.id);
    for (id, name) in [
        ("team-b", "Blue Team"),
        ("team-a", "Alpha"),
        ("club", "Chess team"),
        ("x_1", "under_score"),
    ] {
        let mut g = new_group(id, "alice", &[], 10);
        g.name = name.into();
        store.create_group(a, &g, 100).await.unwrap();
    }
    store
        .create_group(b, &new_group("team-z", "zed", &[], 10), 100)
        .await
        .unwrap();
    let ids = |gs: Vec<Group>| gs.into_iter().map(|g| g.id.to_string()).collect::<Vec<_>>();
    assert_eq!(
        ids(store.search_groups(a, "", None, 10).await.unwrap()),
        ["club", "team-a", "team-b", "x_1"]
    );
    assert_eq!(
        ids(store.search_groups(a, "", None, 2).await.unwrap()),
        ["club", "team-a"]
    );
    assert_eq!(
        ids(store.search_groups(a, "", Some(&gid("team-a")), 10).await.unwrap()),
        ["team-b", "x_1"]
    );
    // "team": two ids start with it, one name holds it; case is ignored on both backends.
    for q in ["team", "TEAM"] {
        assert_eq!(
            ids(store.search_groups(a, q, None, 10).await.unwrap()),
            ["club", "team-a", "team-b"],
            "{q}"
        );
    }
    assert_eq!(ids(store.search_groups(a, "blue", None, 10).await.unwrap()), ["team-b"]);
    assert_eq!(ids(store.search_groups(a, "_", None, 10).await.unwrap()), ["x_1"]);
    assert!(store.search_groups(a, "%", None, 10).await.unwrap().is_empty());
    assert_eq!(ids(store.search_groups(b, "", None, 10).await.unwrap()), ["team-z"]);
}

conformance!(
    groups_are_listed_and_searched_by_id_and_name,
    groups_are_one_timeline_with_members,
    group_changes_write_their_notices,
    group_profiles_roles_mutes_and_transfers,
    join_requests_are_answered_once,
    dismissing_removes_everything_of_the_group,
    mentions_mark_only_the_named_entries,
    group_operations_are_scoped_by_app,
    read_positions_of_members,
);
