//! What the conformance tests build their data from: ids, tenants and apps, messages,
//! groups and events.

use serde_json::json;
use tern_platform::domain::*;
use tern_platform::ids::*;
use tern_platform::store::*;

pub fn uid(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

pub fn gid(s: &str) -> GroupId {
    GroupId::parse(s).unwrap()
}

pub fn cmid(s: &str) -> ClientMsgId {
    ClientMsgId::parse(s).unwrap()
}

pub fn tenant(name: &str) -> Tenant {
    Tenant {
        id: TenantId::generate(),
        name: name.into(),
        status: TenantStatus::Active,
        created_at: 1_000,
    }
}

pub fn secret(app: &AppId, created_at: UnixMillis) -> AppSecretRecord {
    AppSecretRecord {
        id: SecretId::generate(),
        app_id: app.clone(),
        ciphertext: vec![1, 2, 3, created_at as u8],
        created_at,
        expires_at: None,
    }
}

pub fn new_app(tenant: &TenantId, name: &str) -> NewApp {
    let id = AppId::generate();
    NewApp {
        first_secret: secret(&id, 1_000),
        id,
        tenant_id: tenant.clone(),
        name: name.into(),
        app_key: AppKey::generate(),
        settings: AppSettings::default(),
        webhook_secret_ciphertext: vec![9, 9, 9],
    }
}

/// A tenant with one app; returns the app.
pub async fn app(store: &dyn Store) -> App {
    let t = tenant(&format!("tenant-{}", rand::random::<u64>()));
    store.create_tenant(&t).await.unwrap();
    store.create_app(&new_app(&t.id, "app")).await.unwrap()
}

pub fn direct(a: &str, b: &str) -> ConversationId {
    ConversationId::direct(&uid(a), &uid(b))
}

/// A direct message from `from` to `to`, with `client_msg_id` `key`.
pub fn dm(app: &AppId, from: &str, to: &str, key: &str, created_at: UnixMillis) -> NewMessage {
    NewMessage {
        app_id: app.clone(),
        msg_id: MsgId::generate(),
        conversation_id: direct(from, to),
        sender: Sender::User(uid(from)),
        client_msg_id: cmid(key),
        msg_type: MessageType::Text,
        content: json!({ "text": key }),
        created_at,
        participants: vec![uid(from), uid(to)],
        events: Vec::new(),
        reply_to: None,
        mentions: Vec::new(),
        mention_all: false,
        push: false,
    }
}

pub fn group_msg(app: &AppId, group: &str, from: &str, key: &str, created_at: UnixMillis) -> NewMessage {
    NewMessage {
        app_id: app.clone(),
        msg_id: MsgId::generate(),
        conversation_id: ConversationId::Group(gid(group)),
        sender: Sender::User(uid(from)),
        client_msg_id: cmid(key),
        msg_type: MessageType::Text,
        content: json!({ "text": key }),
        created_at,
        participants: Vec::new(),
        events: Vec::new(),
        reply_to: None,
        mentions: Vec::new(),
        mention_all: false,
        push: false,
    }
}

pub fn event(app: &AppId, created_at: UnixMillis) -> NewOutboxEvent {
    NewOutboxEvent {
        id: format!("wh_{}", ulid::Ulid::new()),
        app_id: app.clone(),
        event_type: "message.sent".into(),
        body: "{}".into(),
        created_at,
    }
}

pub fn new_group(id: &str, owner: &str, members: &[&str], limit: usize) -> NewGroup {
    NewGroup {
        id: gid(id),
        name: format!("group {id}"),
        owner: uid(owner),
        members: members.iter().map(|m| uid(m)).collect(),
        metadata: json!({ "topic": "tests" }),
        avatar_url: None,
        announcement: String::new(),
        join_policy: JoinPolicy::Approval,
        member_limit: limit,
        notice: None,
        events: Vec::new(),
    }
}

pub async fn commit_one(store: &dyn Store, m: NewMessage) -> CommitOutcome {
    store.commit_messages(&[m]).await.unwrap().pop().unwrap()
}

pub fn stored(o: &CommitOutcome) -> &Message {
    match o {
        CommitOutcome::Stored(m) => m,
        CommitOutcome::Duplicate(m) => panic!("expected a new message, got a duplicate of {}", m.msg_id),
    }
}

pub async fn app_of_other_tenant(store: &dyn Store) -> AppId {
    app(store).await.id
}

pub fn rid(s: &str) -> RoomId {
    RoomId::parse(s).unwrap()
}
