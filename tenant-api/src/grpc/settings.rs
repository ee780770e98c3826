//! gRPC `Apps` (the app's own settings) and `Webhooks` (its webhook configuration and dead
//! events): the same operations as `/v1/app/settings` and `/v1/webhook`. Like the REST
//! handlers, these parse and call platform (`service::settings`, `service::webhooks`), so both doors check and store alike without either calling the
//! other.

use serde_json::{Map, Value};
use tern_platform::domain::{now_ms, App, AppSettings, PushSettings};
use tern_platform::proto::server_v1 as pb;
use tern_platform::store::{OutboxEvent, StoreError};
use tern_platform::webhook::{spec_of, BeforeSendSpec, WebhookSpec};
use tonic::Request;

use super::services::{app, ok, Answer, Server};
use crate::error::ApiError;
use crate::state::ApiState;

fn settings(v: &AppSettings) -> pb::AppSettings {
    pb::AppSettings {
        max_token_ttl_seconds: v.max_token_ttl_seconds,
        auto_create_users: v.auto_create_users,
        write_rate_per_second: v.write_rate_per_second,
        read_rate_per_second: v.read_rate_per_second,
        max_text_bytes: v.max_text_bytes as u64,
        max_content_bytes: v.max_content_bytes as u64,
        recall_window_seconds: v.recall_window_seconds,
        user_send_rate_per_second: v.user_send_rate_per_second,
        max_sessions_mobile: v.max_sessions_mobile,
        max_sessions_web: v.max_sessions_web,
        secret_grace_seconds: v.secret_grace_seconds,
        friendship_required_for_direct: v.friendship_required_for_direct,
        group_member_limit: v.group_member_limit as u64,
        users_may_create_groups: v.users_may_create_groups,
        group_read_receipt_limit: v.group_read_receipt_limit as u64,
        edit_window_seconds: v.edit_window_seconds,
        rooms_created_on_join: v.rooms_created_on_join,
        room_send_rate_per_second: v.room_send_rate_per_second,
        room_backlog: v.room_backlog,
        broadcast_rate_per_second: v.broadcast_rate_per_second,
        push: Some(push_to_pb(&v.push)),
    }
}

fn push_to_pb(p: &PushSettings) -> pb::AppPushSettings {
    pb::AppPushSettings {
        show_preview: Some(p.show_preview),
        badge: Some(p.badge),
        mention_only_group_size: p.mention_only_group_size as u64,
        templates: p
            .templates
            .iter()
            .map(|(k, t)| {
                let t = pb::PushTemplate {
                    title: t.title.clone(),
                    body: t.body.clone(),
                };
                (k.clone(), t)
            })
            .collect(),
    }
}

/// The push policy as the JSON REST's PATCH takes (an unset switch is its default, as an
/// absent JSON field is); the platform checks it (template placeholders, lengths).
fn push_patch(p: pb::AppPushSettings) -> Value {
    let defaults = PushSettings::default();
    let templates: Map<String, Value> = p
        .templates
        .into_iter()
        .map(|(k, t)| (k, serde_json::json!({"title": t.title, "body": t.body})))
        .collect();
    serde_json::json!({
        "show_preview": p.show_preview.unwrap_or(defaults.show_preview),
        "badge": p.badge.unwrap_or(defaults.badge),
        "mention_only_group_size": p.mention_only_group_size,
        "templates": templates,
    })
}

/// The fields that are set, as the JSON patch REST's `PATCH /v1/app/settings` takes.
fn patch_of(r: pb::UpdateAppSettingsRequest) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.to_owned(), v);
        }
    };
    put("max_token_ttl_seconds", r.max_token_ttl_seconds.map(Value::from));
    put("auto_create_users", r.auto_create_users.map(Value::from));
    put("write_rate_per_second", r.write_rate_per_second.map(Value::from));
    put("read_rate_per_second", r.read_rate_per_second.map(Value::from));
    put("max_text_bytes", r.max_text_bytes.map(Value::from));
    put("max_content_bytes", r.max_content_bytes.map(Value::from));
    put("recall_window_seconds", r.recall_window_seconds.map(Value::from));
    put(
        "user_send_rate_per_second",
        r.user_send_rate_per_second.map(Value::from),
    );
    put("max_sessions_mobile", r.max_sessions_mobile.map(Value::from));
    put("max_sessions_web", r.max_sessions_web.map(Value::from));
    put("secret_grace_seconds", r.secret_grace_seconds.map(Value::from));
    put(
        "friendship_required_for_direct",
        r.friendship_required_for_direct.map(Value::from),
    );
    put("group_member_limit", r.group_member_limit.map(Value::from));
    put("users_may_create_groups", r.users_may_create_groups.map(Value::from));
    put("group_read_receipt_limit", r.group_read_receipt_limit.map(Value::from));
    put("edit_window_seconds", r.edit_window_seconds.map(Value::from));
    put("rooms_created_on_join", r.rooms_created_on_join.map(Value::from));
    put(
        "room_send_rate_per_second",
        r.room_send_rate_per_second.map(Value::from),
    );
    put("room_backlog", r.room_backlog.map(Value::from));
    put(
        "broadcast_rate_per_second",
        r.broadcast_rate_per_second.map(Value::from),
    );
    put("push", r.push.map(push_patch));
    Value::Object(m)
}

#[tonic::async_trait]
impl pb::apps_server::Apps for Server {
    async fn get_app_settings(&self, req: Request<pb::Empty>) -> Answer<pb::AppSettings> {
        let app = app(&req)?;
        ok(Ok(&app.settings), settings)
    }

    async fn update_app_settings(&self, req: Request<pb::UpdateAppSettingsRequest>) -> Answer<pb::AppSettings> {
        let app = app(&req)?;
        let changes = patch_of(req.into_inner());
        let st = &self.state;
        let patched = tern_platform::service::settings::patch(
            &st.pipeline,
            st.verifier.credentials(),
            &app,
            &changes,
            st.max_app_rate_per_second,
        )
        .await
        .map_err(ApiError::from);
        ok(patched, |s| settings(&s))
    }
}

fn config_to_pb(c: WebhookSpec) -> pb::WebhookConfig {
    pb::WebhookConfig {
        url: c.url,
        events: c.events,
        before_send: c.before_send.map(|b| pb::BeforeSendConfig {
            enabled: b.enabled,
            sources: b.sources,
            types: b.types,
            timeout_ms: b.timeout_ms,
            policy: b.policy,
        }),
    }
}

/// Zero and empty mean "the default", as an absent JSON field does over REST.
fn config_from_pb(c: pb::WebhookConfig) -> WebhookSpec {
    WebhookSpec {
        url: c.url,
        events: c.events,
        before_send: c.before_send.map(|b| BeforeSendSpec {
            enabled: b.enabled,
            sources: b.sources,
            types: b.types,
            timeout_ms: if b.timeout_ms == 0 {
                tern_platform::webhook::settings::DEFAULT_TIMEOUT_MS
            } else {
                b.timeout_ms
            },
            policy: if b.policy.is_empty() {
                BeforeSendSpec::default().policy
            } else {
                b.policy
            },
        }),
    }
}

/// The configuration and this node's before-send breaker, as `GET /v1/webhook` shows them.
fn webhook(st: &ApiState, app: &App, spec: WebhookSpec) -> pb::WebhookResponse {
    pb::WebhookResponse {
        config: Some(config_to_pb(spec)),
        breaker: st.before_send.as_ref().map(|h| {
            let b = h.breaker_state(&app.id);
            pb::WebhookBreaker {
                paused_until: b.paused_until,
                consecutive_failures: b.consecutive_failures,
                cooldown_ms: b.cooldown_ms,
            }
        }),
    }
}

fn event(e: OutboxEvent) -> pb::WebhookEvent {
    // The state's wire name, as REST shows it (`pending`, `delivered`, `dead`).
    let state = serde_json::to_value(e.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    pb::WebhookEvent {
        id: e.id,
        r#type: e.event_type,
        state,
        attempts: e.attempts,
        created_at: e.created_at,
        next_attempt_at: e.next_attempt_at,
        last_error: e.last_error,
        body: e.body,
    }
}

#[tonic::async_trait]
impl pb::webhooks_server::Webhooks for Server {
    async fn get_webhook(&self, req: Request<pb::Empty>) -> Answer<pb::WebhookResponse> {
        let app = app(&req)?;
        let spec = spec_of(&app.settings.webhook);
        ok(Ok(spec), |spec| webhook(&self.state, &app, spec))
    }

    async fn set_webhook(&self, req: Request<pb::WebhookConfig>) -> Answer<pb::WebhookResponse> {
        let app = app(&req)?;
        let config = config_from_pb(req.into_inner());
        let replaced = async {
            let settings = tern_platform::service::webhooks::configure(
                &self.state.pipeline,
                self.state.verifier.credentials(),
                &app,
                config,
                self.state.webhook_allow_private,
            )
            .await?;
            Ok::<_, ApiError>(spec_of(&settings.webhook))
        };
        ok(replaced.await, |spec| webhook(&self.state, &app, spec))
    }

    async fn list_dead_events(&self, req: Request<pb::ListDeadEventsRequest>) -> Answer<pb::DeadEventsResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        let cursor = Some(r.cursor.as_str()).filter(|c| !c.is_empty());
        let page = tern_platform::service::webhooks::dead_page(&self.state.pipeline, &app, cursor, r.limit)
            .await
            .map_err(ApiError::from);
        ok(page, |page| pb::DeadEventsResponse {
            events: page.items.into_iter().map(event).collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
        })
    }

    async fn redeliver_event(&self, req: Request<pb::RedeliverEventRequest>) -> Answer<pb::RedeliverEventResponse> {
        let app = app(&req)?;
        let id = req.into_inner().event_id;
        let now = now_ms();
        let redelivered = tern_platform::service::webhooks::redeliver(&self.state.pipeline, &app, &id, now)
            .await
            .map_err(|e| match e {
                StoreError::NotFound(_) => ApiError::not_found("dead event"),
                e => e.into(),
            });
        ok(redelivered, |()| pb::RedeliverEventResponse { id, queued_at: now })
    }
}
