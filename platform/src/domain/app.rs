//! Apps: an app's status, its settings document (limits, webhooks, before-send policy) and
//! its secrets as stored (encrypted).

use serde::{Deserialize, Serialize};

use super::UnixMillis;
use crate::ids::{AppId, AppKey, SecretId, TenantId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumString)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum AppStatus {
    Active,
    Suspended,
}

impl AppStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

/// Per-app settings, stored as one JSON document so new settings need no migration.
/// Every field has a default, so an old document still reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppSettings {
    /// Longest lifetime a user token may have (`exp - iat`), seconds. Default 30 days.
    pub max_token_ttl_seconds: i64,
    /// Users unknown to the app are created when they first log in with a valid token.
    pub auto_create_users: bool,
    /// Server API writes (sends, upserts, ...) per second, per app.
    pub write_rate_per_second: u32,
    /// Server API reads per second, per app.
    pub read_rate_per_second: u32,
    /// Largest `content.text` of a text message, bytes.
    pub max_text_bytes: usize,
    /// Largest serialised `content` of any other message type, bytes.
    pub max_content_bytes: usize,
    /// How long a sender may recall their own message, seconds.
    pub recall_window_seconds: i64,
    /// Messages per second one user may send from the SDK.
    pub user_send_rate_per_second: u32,
    /// Sessions per user per platform before the oldest is closed.
    pub max_sessions_mobile: u32,
    pub max_sessions_web: u32,
    /// How long a rotated-out AppSecret stays valid, seconds. Default 24 h.
    pub secret_grace_seconds: i64,
    /// Where and how Tern calls the app's backend (SIGNING.md §3).
    pub webhook: WebhookSettings,
    /// Direct messages between users who are not friends (on both sides) fail with
    /// `not_friends`. Off by default.
    pub friendship_required_for_direct: bool,
    /// Most members of one group: 2 to 100,000. Default 2,000.
    pub group_member_limit: usize,
    /// App users may create groups from the SDK (the server API always may).
    pub users_may_create_groups: bool,
    /// Groups of at most this many members keep per-message read counts (0 turns them off).
    pub group_read_receipt_limit: usize,
    /// How long a sender may edit their own message, seconds.
    pub edit_window_seconds: i64,
    /// A room that does not exist is created when a user first joins it; otherwise rooms
    /// are created by the server API only.
    pub rooms_created_on_join: bool,
    /// Messages per second one room accepts, from all its members together.
    pub room_send_rate_per_second: u32,
    /// Messages a new room member gets when joining.
    pub room_backlog: u32,
    /// Users a broadcast reaches per second (each running broadcast, per worker): keeps a
    /// broadcast to millions from crowding out live traffic.
    pub broadcast_rate_per_second: u32,
    /// Limits of uploaded files (docs/files.md).
    pub files: FileSettings,
    /// What offline pushes show and when they are sent (docs/push.md).
    pub push: PushSettings,
}

/// An app's offline push policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushSettings {
    /// Show the message's text on the lock screen; off: the body is "New message".
    pub show_preview: bool,
    /// Set the app icon's badge to the user's total unread count.
    pub badge: bool,
    /// Messages to groups with more members than this are pushed only to the members they
    /// @mention (and to everyone for @all); 0 pushes every group message.
    pub mention_only_group_size: usize,
    /// Title and body per message type (`text`, `image`, ...), with `{sender}`, `{group}`
    /// and `{preview}` filled in; a type without one uses the default.
    pub templates: std::collections::BTreeMap<String, PushTemplate>,
}

impl Default for PushSettings {
    fn default() -> Self {
        Self {
            show_preview: true,
            badge: true,
            mention_only_group_size: 0,
            templates: Default::default(),
        }
    }
}

/// A notification's title and body for one message type; an absent part keeps the default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushTemplate {
    pub title: Option<String>,
    pub body: Option<String>,
}

/// The placeholders a push template may use.
pub const PUSH_TEMPLATE_FIELDS: [&str; 3] = ["sender", "group", "preview"];
/// Longest title or body template, characters.
pub const MAX_PUSH_TEMPLATE_CHARS: usize = 200;

impl PushTemplate {
    /// Fills `{sender}`, `{group}` and `{preview}`; `{{` and `}}` are literal braces.
    pub fn fill(template: &str, values: &[(&str, &str); 3]) -> String {
        let mut out = String::with_capacity(template.len() + 32);
        let mut rest = template;
        while let Some(i) = rest.find(['{', '}']) {
            out.push_str(&rest[..i]);
            let tail = &rest[i..];
            if tail.starts_with("{{") || tail.starts_with("}}") {
                out.push_str(&tail[..1]);
                rest = &tail[2..];
                continue;
            }
            if let Some(end) = tail.find('}').filter(|_| tail.starts_with('{')) {
                let name = &tail[1..end];
                if let Some((_, v)) = values.iter().find(|(k, _)| *k == name) {
                    out.push_str(v);
                    rest = &tail[end + 1..];
                    continue;
                }
            }
            out.push_str(&tail[..1]);
            rest = &tail[1..];
        }
        out.push_str(rest);
        out
    }

    /// A template must name only known fields, balance its braces and stay short.
    fn check(key: &str, part: &str, t: &str) -> Result<(), String> {
        if t.chars().count() > MAX_PUSH_TEMPLATE_CHARS {
            return Err(format!(
                "push.templates.{key}.{part} must be at most {MAX_PUSH_TEMPLATE_CHARS} characters"
            ));
        }
        let mut rest = t;
        while let Some(i) = rest.find(['{', '}']) {
            let tail = &rest[i..];
            if tail.starts_with("{{") || tail.starts_with("}}") {
                rest = &tail[2..];
                continue;
            }
            let field = tail
                .strip_prefix('{')
                .and_then(|t| t.split_once('}'))
                .filter(|(name, _)| PUSH_TEMPLATE_FIELDS.contains(name));
            match field {
                Some((_, after)) => rest = after,
                None => {
                    return Err(format!(
                        "push.templates.{key}.{part}: only {{sender}}, {{group}} and {{preview}} may be filled in \
                         (write {{{{ and }}}} for braces)"
                    ))
                }
            }
        }
        Ok(())
    }
}

/// An app's limits on uploaded files.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileSettings {
    /// Largest file, bytes; `None` is the default, 100 MB (and never more than the node allows).
    pub max_file_bytes: Option<u64>,
    /// Content types an upload may have (`image/png`, `image/*`); empty allows every type.
    pub allowed_content_types: Vec<String>,
    /// Most bytes the app may keep (complete files and uploads in progress); `None`: no quota.
    pub storage_quota_bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// The endpoint every webhook is POSTed to; `None` turns webhooks off.
    pub url: Option<String>,
    /// After-events to deliver (`message.sent`, ...); empty means all of them.
    pub events: Vec<String>,
    pub before_send: BeforeSendSettings,
}

impl WebhookSettings {
    /// Whether an after-event of this type is to be written to the outbox.
    pub fn wants(&self, event_type: &str) -> bool {
        self.url.is_some() && (self.events.is_empty() || self.events.iter().any(|e| e == event_type))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicy {
    FailOpen,
    FailClosed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BeforeSendSettings {
    pub enabled: bool,
    /// Which doors' messages the hook sees: `sdk`, `server_api`; empty means both.
    pub sources: Vec<super::Source>,
    /// Which message types it sees; empty means all.
    pub types: Vec<super::MessageType>,
    /// 100 to 5000 ms.
    pub timeout_ms: u64,
    pub policy: FailurePolicy,
}

impl Default for BeforeSendSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            sources: Vec::new(),
            types: Vec::new(),
            timeout_ms: 1500,
            policy: FailurePolicy::FailOpen,
        }
    }
}

impl BeforeSendSettings {
    pub fn selects(&self, source: super::Source, msg_type: super::MessageType) -> bool {
        self.enabled
            && (self.sources.is_empty() || self.sources.contains(&source))
            && (self.types.is_empty() || self.types.contains(&msg_type))
    }
}

impl Default for AppSettings {
    fn default() -> Self {
        Self {
            max_token_ttl_seconds: 30 * 24 * 3600,
            auto_create_users: true,
            write_rate_per_second: 10_000,
            read_rate_per_second: 10_000,
            max_text_bytes: 12 * 1024,
            max_content_bytes: 16 * 1024,
            recall_window_seconds: 120,
            user_send_rate_per_second: 20,
            max_sessions_mobile: 3,
            max_sessions_web: 10,
            secret_grace_seconds: 24 * 3600,
            webhook: WebhookSettings::default(),
            friendship_required_for_direct: false,
            group_member_limit: super::DEFAULT_GROUP_MEMBER_LIMIT,
            users_may_create_groups: true,
            group_read_receipt_limit: 500,
            edit_window_seconds: 24 * 3600,
            rooms_created_on_join: true,
            room_send_rate_per_second: 40,
            room_backlog: 50,
            broadcast_rate_per_second: 2_000,
            files: FileSettings::default(),
            push: PushSettings::default(),
        }
    }
}

/// The largest group member limit an app may set.
pub const MAX_GROUP_MEMBER_LIMIT: usize = 100_000;
/// The operator's default ceiling on an app's server API rates (`TERN_MAX_APP_RATE_LIMIT`):
/// the rates an app sets bound how many nonces each node must remember for it.
pub const DEFAULT_MAX_APP_RATE_PER_SECOND: u32 = 10_000;

impl AppSettings {
    /// Checks every setting against its documented range; the message names the setting.
    /// The webhook part is checked by `webhook::settings`, which also resolves its URL.
    pub fn validate(&self) -> Result<(), String> {
        fn range<T: PartialOrd + std::fmt::Display>(name: &str, v: T, min: T, max: T) -> Result<(), String> {
            if v < min || v > max {
                return Err(format!("{name} must be from {min} to {max}"));
            }
            Ok(())
        }
        range("max_token_ttl_seconds", self.max_token_ttl_seconds, 60, 366 * 24 * 3600)?;
        range("write_rate_per_second", self.write_rate_per_second, 1, 1_000_000)?;
        range("read_rate_per_second", self.read_rate_per_second, 1, 1_000_000)?;
        range("max_text_bytes", self.max_text_bytes, 1, 64 * 1024)?;
        range("max_content_bytes", self.max_content_bytes, 64, 64 * 1024)?;
        range("recall_window_seconds", self.recall_window_seconds, 0, 7 * 24 * 3600)?;
        range("user_send_rate_per_second", self.user_send_rate_per_second, 1, 10_000)?;
        range("max_sessions_mobile", self.max_sessions_mobile, 1, 100)?;
        range("max_sessions_web", self.max_sessions_web, 1, 100)?;
        range("secret_grace_seconds", self.secret_grace_seconds, 0, 30 * 24 * 3600)?;
        range("group_member_limit", self.group_member_limit, 2, MAX_GROUP_MEMBER_LIMIT)?;
        range("group_read_receipt_limit", self.group_read_receipt_limit, 0, 10_000)?;
        range("edit_window_seconds", self.edit_window_seconds, 0, 30 * 24 * 3600)?;
        range("room_send_rate_per_second", self.room_send_rate_per_second, 1, 100_000)?;
        range("room_backlog", self.room_backlog, 0, 100)?;
        range("broadcast_rate_per_second", self.broadcast_rate_per_second, 1, 100_000)?;
        if let Some(max) = self.files.max_file_bytes {
            range("files.max_file_bytes", max, 1, 5 * 1024 * 1024 * 1024)?;
        }
        range(
            "push.mention_only_group_size",
            self.push.mention_only_group_size,
            0,
            MAX_GROUP_MEMBER_LIMIT,
        )?;
        for (key, t) in &self.push.templates {
            if super::MessageType::parse_stored(key).is_none() {
                return Err(format!(
                    "push.templates: {key:?} is not a message type (text, image, file, audio, video, location, custom, system)"
                ));
            }
            for (part, v) in [("title", &t.title), ("body", &t.body)] {
                if let Some(v) = v {
                    PushTemplate::check(key, part, v)?;
                }
            }
        }
        if self.files.allowed_content_types.len() > 100 {
            return Err("files.allowed_content_types may list at most 100 types".into());
        }
        for t in &self.files.allowed_content_types {
            let wildcard = t == "*/*"
                || t.strip_suffix("/*")
                    .is_some_and(|ty| super::ContentType::parse(&format!("{ty}/x")).is_ok());
            if !wildcard && super::ContentType::parse(t).map(|c| c.as_str() != t).unwrap_or(true) {
                return Err(format!(
                    "files.allowed_content_types: {t:?} is not a lowercase type like image/png or image/*"
                ));
            }
        }
        Ok(())
    }

    /// Refuses server API rates raised above `max_rate`, the operator's ceiling. A rate
    /// this change leaves as it was passes, so an app set before the ceiling was lowered
    /// can still change its other settings.
    pub fn check_rate_ceiling(&self, before: &AppSettings, max_rate: u32) -> Result<(), String> {
        for (name, now, was) in [
            (
                "write_rate_per_second",
                self.write_rate_per_second,
                before.write_rate_per_second,
            ),
            (
                "read_rate_per_second",
                self.read_rate_per_second,
                before.read_rate_per_second,
            ),
        ] {
            if now > max_rate && now != was {
                return Err(format!(
                    "{name} must be at most {max_rate}, this platform's maximum (TERN_MAX_APP_RATE_LIMIT)"
                ));
            }
        }
        Ok(())
    }

    /// These settings with the top-level keys of `patch` (a JSON object) replaced, checked.
    /// `webhook` is refused here: it has its own validation (`PUT /v1/webhook`).
    pub fn with_patch(&self, patch: &serde_json::Value) -> Result<AppSettings, String> {
        let patch = patch.as_object().ok_or("settings must be a JSON object")?;
        if patch.contains_key("webhook") {
            return Err("webhook settings are changed with PUT /v1/webhook or `tern webhook set`".into());
        }
        let base = serde_json::to_value(self).map_err(|e| e.to_string())?;
        let mut doc = base.clone();
        for (k, v) in patch {
            let Some(current) = doc.as_object_mut() else { break };
            if !current.contains_key(k) {
                return Err(format!("unknown setting {k:?}"));
            }
            current.insert(k.clone(), v.clone());
            // Each key on its own, so the error names the setting that does not parse.
            let mut alone = base.clone();
            if let Some(o) = alone.as_object_mut() {
                o.insert(k.clone(), v.clone());
            }
            if let Err(e) = serde_json::from_value::<AppSettings>(alone) {
                return Err(format!("invalid setting {k}: {e}"));
            }
        }
        let next: AppSettings = serde_json::from_value(doc).map_err(|e| format!("invalid settings: {e}"))?;
        next.validate()?;
        Ok(next)
    }
}

#[cfg(test)]
mod push_template_tests {
    use super::*;

    #[test]
    fn templates_fill_known_fields_and_refuse_others() {
        let v = [("sender", "Alice"), ("group", "Climbers"), ("preview", "hi")];
        assert_eq!(
            PushTemplate::fill("{sender} in {group}: {preview}", &v),
            "Alice in Climbers: hi"
        );
        assert_eq!(PushTemplate::fill("{{literal}} {sender}", &v), "{literal} Alice");
        let mut s = AppSettings::default();
        s.push.templates.insert(
            "image".into(),
            PushTemplate {
                title: Some("{sender} sent a photo".into()),
                body: None,
            },
        );
        s.validate().unwrap();
        for bad in ["{name}", "{sender", "oops}", &"x".repeat(201)] {
            s.push.templates.insert(
                "text".into(),
                PushTemplate {
                    title: None,
                    body: Some(bad.to_owned()),
                },
            );
            assert!(s.validate().unwrap_err().contains("push.templates.text.body"), "{bad}");
        }
        s.push.templates.clear();
        s.push.templates.insert("sticker".into(), PushTemplate::default());
        assert!(s.validate().unwrap_err().contains("sticker"));
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct App {
    pub id: AppId,
    pub tenant_id: TenantId,
    /// Unique within the tenant; 1–100 characters.
    pub name: String,
    pub app_key: AppKey,
    pub status: AppStatus,
    pub settings: AppSettings,
    pub created_at: UnixMillis,
}

/// An AppSecret as the store keeps it: the secret itself only encrypted.
#[derive(Clone, PartialEq)]
pub struct AppSecretRecord {
    pub id: SecretId,
    pub app_id: AppId,
    /// AES-256-GCM ciphertext from `SecretBox::seal`, with the app id as associated data.
    pub ciphertext: Vec<u8>,
    pub created_at: UnixMillis,
    /// When a rotation or revocation ends this secret's validity; `None` while it is current.
    pub expires_at: Option<UnixMillis>,
}

impl AppSecretRecord {
    pub fn is_active_at(&self, now: UnixMillis) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }
}

impl std::fmt::Debug for AppSecretRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppSecretRecord")
            .field("id", &self.id)
            .field("app_id", &self.app_id)
            .field("ciphertext", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// App names follow the same rule as tenant names.
pub fn validate_app_name(name: &str) -> Result<(), &'static str> {
    if name.trim().is_empty() {
        return Err("app name must not be empty");
    }
    if name.chars().count() > 100 {
        return Err("app name must be at most 100 characters");
    }
    if super::has_forbidden_chars(name) {
        return Err("app name must not contain control or bidirectional formatting characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(AppSettings::default().validate(), Ok(()));
    }

    #[test]
    fn a_patch_changes_only_the_keys_it_names() {
        let s = AppSettings::default()
            .with_patch(&json!({"group_member_limit": 10000, "rooms_created_on_join": false}))
            .unwrap();
        assert_eq!(s.group_member_limit, 10_000);
        assert!(!s.rooms_created_on_join);
        assert_eq!(s.recall_window_seconds, AppSettings::default().recall_window_seconds);
    }

    #[test]
    fn a_bad_patch_names_the_setting() {
        let base = AppSettings::default();
        let e = base.with_patch(&json!({"group_member_limit": 100_001})).unwrap_err();
        assert!(e.contains("group_member_limit"), "{e}");
        let e = base.with_patch(&json!({"no_such_thing": 1})).unwrap_err();
        assert!(e.contains("no_such_thing"), "{e}");
        let e = base.with_patch(&json!({"room_backlog": "many"})).unwrap_err();
        assert!(e.contains("invalid"), "{e}");
        assert!(base.with_patch(&json!({"webhook": {}})).is_err());
        assert!(base.with_patch(&json!([1])).is_err());
    }

    #[test]
    fn rates_above_the_operator_ceiling_are_refused_when_raised() {
        let base = AppSettings::default();
        let raised = base.with_patch(&json!({"write_rate_per_second": 1_000_000})).unwrap();
        let e = raised.check_rate_ceiling(&base, 10_000).unwrap_err();
        assert!(e.contains("write_rate_per_second") && e.contains("10000"), "{e}");
        let raised = base.with_patch(&json!({"read_rate_per_second": 10_001})).unwrap();
        assert!(raised.check_rate_ceiling(&base, 10_000).is_err());
        let at = base.with_patch(&json!({"read_rate_per_second": 10_000})).unwrap();
        assert_eq!(at.check_rate_ceiling(&base, 10_000), Ok(()));
        // An app already above a lowered ceiling may still change something else.
        let other = raised.with_patch(&json!({"room_backlog": 10})).unwrap();
        assert_eq!(other.check_rate_ceiling(&raised, 10_000), Ok(()));
    }
}
