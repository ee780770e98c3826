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

    pub async fn add_group_members(&self, group: &str, members: &[&str]) -> Result<Value, ServerError> {
        let path = format!("/v1/groups/{}/members", encode_segment(group));
        self.request("POST", &path, Some(&json!({ "members": members }))).await
    }

    pub async fn remove_group_member(&self, group: &str, user: &str) -> Result<Value, ServerError> {
        let path = format!("/v1/groups/{}/members/{}", encode_segment(group), encode_segment(user));
        self.request("DELETE", &path, None).await
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
}
