//! `ServerClient`: the signed server API (REST) for a tenant's backend. Every request is
//! signed as SIGNING.md §1 says, with a fresh nonce and the current time.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::distributions::{Alphanumeric, DistString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::signing::sign_request;

/// An error answer of the server API, or a failure to reach it.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The server answered with an error: `code` is the stable code (docs/errors.md).
    #[error("{status} {code}: {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
        request_id: String,
    },
    #[error("transport: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("unexpected answer: {0}")]
    Decode(String),
}

impl ServerError {
    /// The stable error code, if the server answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// The answer to a send: the message is durable once you have it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendAnswer {
    pub msg_id: String,
    pub conversation_id: String,
    pub seq: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryMessage {
    pub msg_id: String,
    pub conversation_id: String,
    pub seq: i64,
    pub from: Option<String>,
    pub client_msg_id: String,
    #[serde(rename = "type")]
    pub msg_type: String,
    pub content: Value,
    pub created_at: i64,
    pub recalled: bool,
    pub edited_at: Option<i64>,
    // ---- message lifecycle ----
    #[serde(default)]
    pub reply_to: Option<String>,
    /// The quoted message as it is now (`msg_id`, `seq`, `from`, `type`, `content`, ...).
    #[serde(default)]
    pub quoted: Option<Value>,
    #[serde(default)]
    pub version: i64,
    #[serde(default)]
    pub extensions: Vec<ExtensionView>,
    #[serde(default)]
    pub reactions: Vec<ReactionView>,
    /// Group members the message mentions by name.
    #[serde(default)]
    pub mentions: Vec<String>,
    #[serde(default)]
    pub mention_all: bool,
}

/// An extension key as the server API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionView {
    pub key: String,
    pub value: String,
    pub version: i64,
    pub updated_by: Option<String>,
    pub updated_at: i64,
}

/// A reaction as the server API shows it (`reacted` for the user acted for).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionView {
    pub reaction: String,
    pub count: i64,
    pub reacted: bool,
    pub users: Vec<String>,
}

/// A message's extensions and its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionsAnswer {
    pub extensions: Vec<ExtensionView>,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserToken {
    pub token: String,
    pub expires_at: i64,
}

/// A room as the server API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Room {
    pub id: String,
    pub name: String,
    pub metadata: Value,
    /// `server_api` or `join`.
    pub created_by: String,
    /// Users in the room now.
    pub member_count: u64,
    /// Seq of the room's newest message (0 when none).
    pub last_seq: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A page of rooms; `next_cursor` is absent on the last page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomsPage {
    pub rooms: Vec<Room>,
    pub next_cursor: Option<String>,
}

/// A broadcast job and its progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Broadcast {
    pub id: String,
    /// `running`, `done`, `cancelled` or `failed`.
    pub status: String,
    /// `all` or `list`.
    pub audience: String,
    pub total: Option<u64>,
    pub users_seen: u64,
    pub sent: u64,
    pub failed: u64,
    #[serde(rename = "type")]
    pub msg_type: String,
    pub content: Value,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    pub error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    code: String,
    message: String,
    #[serde(default)]
    request_id: String,
}

/// A signed client of Tern's REST server API.
#[derive(Clone)]
pub struct ServerClient {
    http: reqwest::Client,
    base: String,
    app_key: String,
    app_secret: String,
}

impl std::fmt::Debug for ServerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerClient")
            .field("base", &self.base)
            .field("app_key", &self.app_key)
            .finish_non_exhaustive()
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Percent-encodes one path segment (ids may hold `@`, `.`, and conversation ids `:`).
pub fn encode_segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl ServerClient {
    /// `base` is the server's HTTP root, e.g. `http://127.0.0.1:8080`.
    pub fn new(base: &str, app_key: &str, app_secret: &str) -> Self {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .unwrap_or_default();
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            app_key: app_key.to_owned(),
            app_secret: app_secret.to_owned(),
        }
    }

    /// `new`, for an `https://` server whose certificate is signed by the CA in `ca_pem`
    /// (a private CA or a self-signed certificate) rather than a public one.
    pub fn with_ca_pem(base: &str, app_key: &str, app_secret: &str, ca_pem: &[u8]) -> Result<Self, ServerError> {
        let ca = reqwest::Certificate::from_pem(ca_pem)?;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            app_key: app_key.to_owned(),
            app_secret: app_secret.to_owned(),
        })
    }

    /// Sends a signed request; `path_and_query` is sent exactly as given and signed as such.
    pub async fn request<T: DeserializeOwned>(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<T, ServerError> {
        let bytes = body
            .map(|b| serde_json::to_vec(b).unwrap_or_default())
            .unwrap_or_default();
        let nonce = Alphanumeric.sample_string(&mut rand::thread_rng(), 24);
        let headers = sign_request(
            &self.app_key,
            &self.app_secret,
            method,
            path_and_query,
            &bytes,
            unix_now(),
            &nonce,
        );
        let m = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| ServerError::Decode(e.to_string()))?;
        let mut req = self.http.request(m, format!("{}{}", self.base, path_and_query));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        if body.is_some() {
            req = req.header("content-type", "application/json").body(bytes);
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        let text = res.bytes().await?;
        if !(200..300).contains(&status) {
            return Err(match serde_json::from_slice::<ErrorEnvelope>(&text) {
                Ok(e) => ServerError::Api {
                    status,
                    code: e.error.code,
                    message: e.error.message,
                    request_id: e.error.request_id,
                },
                Err(_) => ServerError::Decode(format!("status {status}: {}", String::from_utf8_lossy(&text))),
            });
        }
        serde_json::from_slice(&text).map_err(|e| ServerError::Decode(e.to_string()))
    }

    /// Creates or updates users: each a JSON object with `id` and optional `name`,
    /// `avatar_url`, `metadata`.
    pub async fn upsert_users(&self, users: &[Value]) -> Result<Value, ServerError> {
        self.request("POST", "/v1/users", Some(&json!({ "users": users })))
            .await
    }

    /// Creates (or updates) one user by id and name.
    pub async fn create_user(&self, id: &str, name: &str) -> Result<Value, ServerError> {
        self.upsert_users(&[json!({"id": id, "name": name})]).await
    }

    pub async fn get_user(&self, id: &str) -> Result<Value, ServerError> {
        self.request("GET", &format!("/v1/users/{}", encode_segment(id)), None)
            .await
    }

    pub async fn delete_user(&self, id: &str) -> Result<Value, ServerError> {
        self.request("DELETE", &format!("/v1/users/{}", encode_segment(id)), None)
            .await
    }

    /// Mints a user token for SDK login.
    pub async fn user_token(&self, user: &str, ttl_seconds: Option<i64>) -> Result<UserToken, ServerError> {
        let body = json!({ "ttl_seconds": ttl_seconds });
        self.request(
            "POST",
            &format!("/v1/users/{}/tokens", encode_segment(user)),
            Some(&body),
        )
        .await
    }

    pub async fn revoke_tokens(&self, user: &str) -> Result<Value, ServerError> {
        self.request(
            "POST",
            &format!("/v1/users/{}/tokens/revoke", encode_segment(user)),
            None,
        )
        .await
    }

    pub async fn kick(&self, user: &str) -> Result<Value, ServerError> {
        self.request("POST", &format!("/v1/users/{}/kick", encode_segment(user)), None)
            .await
    }

    /// Sends a text message from one user to another.
    pub async fn send_text(
        &self,
        from: &str,
        to: &str,
        client_msg_id: &str,
        text: &str,
    ) -> Result<SendAnswer, ServerError> {
        let body = json!({"from": from, "to": {"user": to}, "client_msg_id": client_msg_id, "type": "text", "content": {"text": text}});
        self.send(&body).await
    }

    /// Sends any message: the body of `POST /v1/messages`.
    pub async fn send(&self, body: &Value) -> Result<SendAnswer, ServerError> {
        self.request("POST", "/v1/messages", Some(body)).await
    }

    /// Messages with seq > `after_seq`, oldest first.
    pub async fn history(
        &self,
        conversation_id: &str,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<HistoryMessage>, ServerError> {
        #[derive(Deserialize)]
        struct Answer {
            messages: Vec<HistoryMessage>,
        }
        let path = format!(
            "/v1/conversations/{}/messages?after_seq={after_seq}&limit={limit}",
            encode_segment(conversation_id)
        );
        let a: Answer = self.request("GET", &path, None).await?;
        Ok(a.messages)
    }

    pub async fn recall(&self, msg_id: &str) -> Result<HistoryMessage, ServerError> {
        self.request("POST", &format!("/v1/messages/{}/recall", encode_segment(msg_id)), None)
            .await
    }

    pub async fn conversations(&self, user: &str) -> Result<Value, ServerError> {
        self.request(
            "GET",
            &format!("/v1/users/{}/conversations", encode_segment(user)),
            None,
        )
        .await
    }

    pub async fn mark_read(&self, user: &str, conversation_id: &str, seq: i64) -> Result<Value, ServerError> {
        let path = format!(
            "/v1/users/{}/conversations/{}/read",
            encode_segment(user),
            encode_segment(conversation_id)
        );
        self.request("POST", &path, Some(&json!({ "seq": seq }))).await
    }

    // ---- groups (docs/groups.md) ----

    /// Creates a group with its owner and members (join policy `approval`).
    pub async fn create_group(
        &self,
        id: &str,
        name: &str,
        owner: &str,
        members: &[&str],
    ) -> Result<Value, ServerError> {
        let body = json!({"id": id, "name": name, "owner": owner, "members": members});
        self.request("POST", "/v1/groups", Some(&body)).await
    }

    /// Creates a group from a full body: `{"id"?, "name", "owner", "members", "metadata",
    /// "avatar_url", "announcement", "join_policy"}`.
    pub async fn create_group_with(&self, body: &Value) -> Result<Value, ServerError> {
        self.request("POST", "/v1/groups", Some(body)).await
    }

    pub async fn group(&self, group: &str) -> Result<Value, ServerError> {
        self.request("GET", &format!("/v1/groups/{}", encode_segment(group)), None)
            .await
    }

    /// Changes the fields `patch` names (`name`, `avatar_url`, `announcement`, `metadata`,
    /// `join_policy`, `mute_all`).
    pub async fn update_group(&self, group: &str, patch: &Value) -> Result<Value, ServerError> {
        self.request("PATCH", &format!("/v1/groups/{}", encode_segment(group)), Some(patch))
            .await
    }

    pub async fn dismiss_group(&self, group: &str) -> Result<Value, ServerError> {
        self.request("DELETE", &format!("/v1/groups/{}", encode_segment(group)), None)
            .await
    }

    pub async fn add_group_members(&self, group: &str, members: &[&str]) -> Result<Value, ServerError> {
        let path = format!("/v1/groups/{}/members", encode_segment(group));
        self.request("POST", &path, Some(&json!({ "members": members }))).await
    }

    pub async fn remove_group_member(&self, group: &str, user: &str) -> Result<Value, ServerError> {
        let path = format!("/v1/groups/{}/members/{}", encode_segment(group), encode_segment(user));
        self.request("DELETE", &path, None).await
    }

    /// One page of members (`{"members": [...], "next_cursor": ...}`).
    pub async fn group_members(&self, group: &str, cursor: Option<&str>, limit: u32) -> Result<Value, ServerError> {
        let mut path = format!("/v1/groups/{}/members?limit={limit}", encode_segment(group));
        if let Some(c) = cursor {
            path.push_str(&format!("&cursor={}", encode_segment(c)));
        }
        self.request("GET", &path, None).await
    }

    pub async fn group_member(&self, group: &str, user: &str) -> Result<Value, ServerError> {
        let path = format!("/v1/groups/{}/members/{}", encode_segment(group), encode_segment(user));
        self.request("GET", &path, None).await
    }

    /// `role`: `admin` or `member`.
    pub async fn set_group_role(&self, group: &str, user: &str, role: &str) -> Result<Value, ServerError> {
        let path = format!(
            "/v1/groups/{}/members/{}/role",
            encode_segment(group),
            encode_segment(user)
        );
        self.request("POST", &path, Some(&json!({ "role": role }))).await
    }

    /// Mutes a member in the group until `until` (unix ms; `None`: until lifted).
    pub async fn mute_group_member(&self, group: &str, user: &str, until: Option<i64>) -> Result<Value, ServerError> {
        let path = format!(
            "/v1/groups/{}/members/{}/mute",
            encode_segment(group),
            encode_segment(user)
        );
        self.request("POST", &path, Some(&json!({ "until": until }))).await
    }

    pub async fn unmute_group_member(&self, group: &str, user: &str) -> Result<Value, ServerError> {
        let path = format!(
            "/v1/groups/{}/members/{}/mute",
            encode_segment(group),
            encode_segment(user)
        );
        self.request("DELETE", &path, None).await
    }

    /// `user` leaves the group.
    pub async fn leave_group(&self, group: &str, user: &str) -> Result<Value, ServerError> {
        let path = format!(
            "/v1/groups/{}/members/{}/leave",
            encode_segment(group),
            encode_segment(user)
        );
        self.request("POST", &path, None).await
    }

    pub async fn transfer_group(&self, group: &str, new_owner: &str) -> Result<Value, ServerError> {
        let path = format!("/v1/groups/{}/owner", encode_segment(group));
        self.request("POST", &path, Some(&json!({ "user_id": new_owner })))
            .await
    }

    /// `user` asks to join: `{"joined", "member", "request"}`.
    pub async fn join_group(&self, group: &str, user: &str, message: &str) -> Result<Value, ServerError> {
        let path = format!("/v1/groups/{}/join", encode_segment(group));
        self.request("POST", &path, Some(&json!({"user_id": user, "message": message})))
            .await
    }

    /// One page of pending join requests (`{"requests": [...], "next_cursor": ...}`).
    pub async fn group_join_requests(&self, group: &str, cursor: Option<&str>) -> Result<Value, ServerError> {
        let mut path = format!("/v1/groups/{}/join-requests", encode_segment(group));
        if let Some(c) = cursor {
            path.push_str(&format!("?cursor={}", encode_segment(c)));
        }
        self.request("GET", &path, None).await
    }

    pub async fn answer_group_join_request(&self, group: &str, user: &str, accept: bool) -> Result<Value, ServerError> {
        let answer = if accept { "accept" } else { "decline" };
        let path = format!(
            "/v1/groups/{}/join-requests/{}/{answer}",
            encode_segment(group),
            encode_segment(user)
        );
        self.request("POST", &path, None).await
    }

    /// One page of the groups `user` is in (`{"groups": [...], "next_cursor": ...}`).
    pub async fn user_groups(&self, user: &str, cursor: Option<&str>) -> Result<Value, ServerError> {
        let mut path = format!("/v1/users/{}/groups", encode_segment(user));
        if let Some(c) = cursor {
            path.push_str(&format!("?cursor={}", encode_segment(c)));
        }
        self.request("GET", &path, None).await
    }

    /// Read counts of up to 100 of the group's messages (`{"counts": [...]}`).
    pub async fn group_read_counts(&self, group: &str, msg_ids: &[&str]) -> Result<Value, ServerError> {
        let path = format!("/v1/groups/{}/read-counts", encode_segment(group));
        self.request("POST", &path, Some(&json!({ "msg_ids": msg_ids }))).await
    }

    /// Who has read a message (with `unread`, who has not): `{"user_ids": [...], "next_cursor"}`.
    pub async fn group_message_readers(&self, group: &str, msg_id: &str, unread: bool) -> Result<Value, ServerError> {
        let path = format!(
            "/v1/groups/{}/messages/{}/readers?unread={unread}",
            encode_segment(group),
            encode_segment(msg_id)
        );
        self.request("GET", &path, None).await
    }

    pub async fn presence(&self, users: &[&str]) -> Result<Value, ServerError> {
        self.request("POST", "/v1/presence/query", Some(&json!({ "users": users })))
            .await
    }

    // ---- moderation ----

    /// Creates or replaces the sensitive-word list `name`; `policy` is `replace` or `reject`.
    pub async fn put_word_list(&self, name: &str, policy: &str, words: &[&str]) -> Result<Value, ServerError> {
        let path = format!("/v1/moderation/word-lists/{}", encode_segment(name));
        self.request("PUT", &path, Some(&json!({ "policy": policy, "words": words })))
            .await
    }

    /// Every word list of the app: `{"word_lists": [...]}`.
    pub async fn word_lists(&self) -> Result<Value, ServerError> {
        self.request("GET", "/v1/moderation/word-lists", None).await
    }

    pub async fn delete_word_list(&self, name: &str) -> Result<Value, ServerError> {
        let path = format!("/v1/moderation/word-lists/{}", encode_segment(name));
        self.request("DELETE", &path, None).await
    }

    /// Bans a user until `until` (unix ms; `None`: forever) and closes their sessions.
    pub async fn ban_user(&self, user: &str, until: Option<i64>, reason: &str) -> Result<Value, ServerError> {
        let path = format!("/v1/users/{}/ban", encode_segment(user));
        self.request("POST", &path, Some(&json!({ "until": until, "reason": reason })))
            .await
    }

    pub async fn unban_user(&self, user: &str) -> Result<Value, ServerError> {
        self.request("DELETE", &format!("/v1/users/{}/ban", encode_segment(user)), None)
            .await
    }

    /// Mutes a user app-wide until `until` (unix ms; `None`: forever).
    pub async fn mute_user(&self, user: &str, until: Option<i64>) -> Result<Value, ServerError> {
        let path = format!("/v1/users/{}/mute", encode_segment(user));
        self.request("POST", &path, Some(&json!({ "until": until }))).await
    }

    pub async fn unmute_user(&self, user: &str) -> Result<Value, ServerError> {
        self.request("DELETE", &format!("/v1/users/{}/mute", encode_segment(user)), None)
            .await
    }

    // ---- webhooks ----
    /// The app's webhook configuration and this node's before-send breaker
    /// (`{"config": {...}, "breaker": {...}}`).
    pub async fn webhook(&self) -> Result<Value, ServerError> {
        self.request("GET", "/v1/webhook", None).await
    }

    /// Replaces the app's webhook configuration: `{"url", "events", "before_send": {"enabled",
    /// "sources", "types", "timeout_ms", "policy"}}`. Answers like [`Self::webhook`].
    pub async fn set_webhook(&self, config: &Value) -> Result<Value, ServerError> {
        self.request("PUT", "/v1/webhook", Some(config)).await
    }

    /// One page of dead after-events (`{"events": [...], "next_cursor": ...}`).
    pub async fn dead_webhook_events(&self, cursor: Option<&str>) -> Result<Value, ServerError> {
        let path = match cursor {
            Some(c) => format!("/v1/webhook/dead-events?cursor={}", encode_segment(c)),
            None => "/v1/webhook/dead-events".to_owned(),
        };
        self.request("GET", &path, None).await
    }

    /// Puts a dead after-event back in the queue, due now.
    pub async fn redeliver_webhook_event(&self, event_id: &str) -> Result<Value, ServerError> {
        let path = format!("/v1/webhook/dead-events/{}/redeliver", encode_segment(event_id));
        self.request("POST", &path, None).await
    }

    // ---- message lifecycle (docs/messages.md) ----

    /// One message, with its quote, extensions and reactions.
    pub async fn get_message(&self, msg_id: &str) -> Result<HistoryMessage, ServerError> {
        self.request("GET", &format!("/v1/messages/{}", encode_segment(msg_id)), None)
            .await
    }

    /// Replaces a message's content (the server API may edit any message at any time).
    pub async fn edit_message(&self, msg_id: &str, content: &Value) -> Result<HistoryMessage, ServerError> {
        let path = format!("/v1/messages/{}", encode_segment(msg_id));
        self.request("PATCH", &path, Some(&json!({ "content": content }))).await
    }

    /// Deletes a message for one user (`{"deleted": false}` if it was already).
    pub async fn delete_for_user(&self, msg_id: &str, user: &str) -> Result<Value, ServerError> {
        let path = format!("/v1/messages/{}/delete-for-user", encode_segment(msg_id));
        self.request("POST", &path, Some(&json!({ "user_id": user }))).await
    }

    pub async fn extensions(&self, msg_id: &str) -> Result<ExtensionsAnswer, ServerError> {
        let path = format!("/v1/messages/{}/extensions", encode_segment(msg_id));
        self.request("GET", &path, None).await
    }

    /// Sets and deletes extension keys: `{"user_id"?, "set": [{"key", "value",
    /// "expected_version"?}], "delete": [{"key", "expected_version"?}]}`.
    pub async fn update_extensions(&self, msg_id: &str, update: &Value) -> Result<ExtensionsAnswer, ServerError> {
        let path = format!("/v1/messages/{}/extensions", encode_segment(msg_id));
        self.request("POST", &path, Some(update)).await
    }

    fn reaction_path(msg_id: &str, reaction: &str, user: &str) -> String {
        format!(
            "/v1/messages/{}/reactions/{}/users/{}",
            encode_segment(msg_id),
            encode_segment(reaction),
            encode_segment(user)
        )
    }

    /// `user` reacts to a message; answers the reaction as `user` sees it.
    pub async fn add_reaction(&self, msg_id: &str, reaction: &str, user: &str) -> Result<ReactionView, ServerError> {
        self.request("PUT", &Self::reaction_path(msg_id, reaction, user), None)
            .await
    }

    pub async fn remove_reaction(&self, msg_id: &str, reaction: &str, user: &str) -> Result<ReactionView, ServerError> {
        self.request("DELETE", &Self::reaction_path(msg_id, reaction, user), None)
            .await
    }

    /// Who reacted with `reaction`: `{"users": [{"user_id", "reacted_at"}], "next_cursor"}`.
    pub async fn reaction_users(
        &self,
        msg_id: &str,
        reaction: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Value, ServerError> {
        let mut path = format!(
            "/v1/messages/{}/reactions/{}/users?limit={limit}",
            encode_segment(msg_id),
            encode_segment(reaction)
        );
        if let Some(c) = cursor {
            path.push_str(&format!("&cursor={}", encode_segment(c)));
        }
        self.request("GET", &path, None).await
    }

    // ---- app settings ----
    /// The app's settings (every one but the webhook's).
    pub async fn app_settings(&self) -> Result<Value, ServerError> {
        self.request("GET", "/v1/app/settings", None).await
    }

    /// Changes the settings named in `patch` (e.g. `{"group_member_limit": 10000}`) and
    /// answers with all of them.
    pub async fn update_app_settings(&self, patch: &Value) -> Result<Value, ServerError> {
        self.request("PATCH", "/v1/app/settings", Some(patch)).await
    }

    // ---- rooms (docs/rooms.md) ----

    /// Creates a room; `name` defaults to the id, `metadata` to `{}`.
    pub async fn create_room(
        &self,
        id: &str,
        name: Option<&str>,
        metadata: Option<Value>,
    ) -> Result<Room, ServerError> {
        let body = json!({"id": id, "name": name, "metadata": metadata});
        self.request("POST", "/v1/rooms", Some(&body)).await
    }

    /// One room, with its online member count.
    pub async fn room(&self, id: &str) -> Result<Room, ServerError> {
        self.request("GET", &format!("/v1/rooms/{}", encode_segment(id)), None)
            .await
    }

    /// A page of the app's rooms, by id.
    pub async fn rooms(&self, cursor: Option<&str>, limit: u32) -> Result<RoomsPage, ServerError> {
        let path = match cursor {
            Some(c) => format!("/v1/rooms?cursor={}&limit={limit}", encode_segment(c)),
            None => format!("/v1/rooms?limit={limit}"),
        };
        self.request("GET", &path, None).await
    }

    /// Changes the name and/or the metadata (`None` keeps them).
    pub async fn update_room(
        &self,
        id: &str,
        name: Option<&str>,
        metadata: Option<Value>,
    ) -> Result<Room, ServerError> {
        let body = json!({"name": name, "metadata": metadata});
        self.request("PATCH", &format!("/v1/rooms/{}", encode_segment(id)), Some(&body))
            .await
    }

    /// Dismisses the room: its members are told and leave, its history is deleted. Returns
    /// how many connections were in it.
    pub async fn dismiss_room(&self, id: &str) -> Result<u64, ServerError> {
        let v: Value = self
            .request("DELETE", &format!("/v1/rooms/{}", encode_segment(id)), None)
            .await?;
        Ok(v["sessions"].as_u64().unwrap_or(0))
    }

    /// Takes a user out of the room now (they may join again). Returns how many of their
    /// connections left.
    pub async fn remove_from_room(&self, room: &str, user: &str) -> Result<u64, ServerError> {
        let path = format!("/v1/rooms/{}/members/{}", encode_segment(room), encode_segment(user));
        let v: Value = self.request("DELETE", &path, None).await?;
        Ok(v["sessions"].as_u64().unwrap_or(0))
    }

    /// Mutes a user in the room until `until` (unix ms; `None`: forever).
    pub async fn mute_in_room(&self, room: &str, user: &str, until: Option<i64>) -> Result<Value, ServerError> {
        let path = format!("/v1/rooms/{}/mutes/{}", encode_segment(room), encode_segment(user));
        self.request("PUT", &path, Some(&json!({ "until": until }))).await
    }

    pub async fn unmute_in_room(&self, room: &str, user: &str) -> Result<Value, ServerError> {
        let path = format!("/v1/rooms/{}/mutes/{}", encode_segment(room), encode_segment(user));
        self.request("DELETE", &path, None).await
    }

    /// The mutes in force in the room (`{"mutes": [{"user_id", "until"}], "next_cursor"}`).
    pub async fn room_mutes(&self, room: &str) -> Result<Value, ServerError> {
        self.request("GET", &format!("/v1/rooms/{}/mutes", encode_segment(room)), None)
            .await
    }

    /// Sends a text message to a room as `from` (the room must exist).
    pub async fn send_room_text(
        &self,
        from: &str,
        room: &str,
        client_msg_id: &str,
        text: &str,
    ) -> Result<SendAnswer, ServerError> {
        let body = json!({"from": from, "to": {"room": room}, "client_msg_id": client_msg_id, "type": "text", "content": {"text": text}});
        self.send(&body).await
    }

    // ---- broadcasts (docs/broadcasts.md) ----

    /// Starts a broadcast of a notification to `users`, or to every user of the app with
    /// `None`. A `client_msg_id` makes it idempotent.
    pub async fn broadcast(
        &self,
        msg_type: &str,
        content: Value,
        users: Option<&[&str]>,
        client_msg_id: Option<&str>,
    ) -> Result<Broadcast, ServerError> {
        let mut body = json!({"type": msg_type, "content": content});
        if let Some(u) = users {
            body["users"] = json!(u);
        }
        if let Some(k) = client_msg_id {
            body["client_msg_id"] = json!(k);
        }
        self.request("POST", "/v1/broadcasts", Some(&body)).await
    }

    /// A broadcast and its progress.
    pub async fn get_broadcast(&self, id: &str) -> Result<Broadcast, ServerError> {
        self.request("GET", &format!("/v1/broadcasts/{}", encode_segment(id)), None)
            .await
    }

    /// The app's broadcasts, newest first (`{"broadcasts": [...], "next_cursor"}`).
    pub async fn broadcasts(&self, cursor: Option<&str>) -> Result<Value, ServerError> {
        let path = match cursor {
            Some(c) => format!("/v1/broadcasts?cursor={}", encode_segment(c)),
            None => "/v1/broadcasts".to_owned(),
        };
        self.request("GET", &path, None).await
    }

    /// Stops a running broadcast; users it reached keep their notification.
    pub async fn cancel_broadcast(&self, id: &str) -> Result<Broadcast, ServerError> {
        let path = format!("/v1/broadcasts/{}/cancel", encode_segment(id));
        self.request("POST", &path, None).await
    }
}
