//! An app's webhooks: where they go, which after-events, the before-send hook's policy; the
//! events given up after 24 hours of failures, each with a redeliver button.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use tern_platform::domain::{now_ms, ConsoleRole};
use tern_platform::webhook::settings::{parse_spec, spec_of, BeforeSendSpec, WebhookSpec, EVENT_TYPES};

use super::{audit, notice, see_other};
use crate::auth::{app_scope, Auth, NoFields, Posted};
use crate::error::{html, PageError};
use crate::state::ConsoleState;
use crate::views::{when, Chrome};

/// Dead events per page.
const PAGE: u32 = 50;
/// Characters of an event's body shown in the list.
const EXCERPT_CHARS: usize = 240;

pub struct EventChoice {
    pub name: &'static str,
    pub checked: bool,
}

pub struct DeadRow {
    pub id: String,
    pub event_type: String,
    pub created: String,
    pub attempts: i32,
    pub last_error: String,
    pub excerpt: String,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    chrome: Chrome,
    url: String,
    events: Vec<EventChoice>,
    all_events: bool,
    before_send_enabled: bool,
    timeout_ms: u64,
    fail_closed: bool,
    dead: Vec<DeadRow>,
    next: Option<String>,
    can_edit: bool,
    can_manage: bool,
}

#[derive(Deserialize)]
pub struct WebhooksQuery {
    after: Option<String>,
    done: Option<String>,
}

pub async fn show(
    State(st): State<ConsoleState>,
    auth: Auth,
    Path((tenant, app)): Path<(String, String)>,
    Query(q): Query<WebhooksQuery>,
) -> Result<Response, PageError> {
    let (scope, app) = app_scope(&st, &auth.viewer, &tenant, &app).await?;
    let spec = spec_of(&app.settings.webhook);
    let before = spec.before_send.clone().unwrap_or_default();
    let dead_events =
        tern_platform::service::webhooks::dead_events(&st.pipeline, &app, q.after.as_deref(), PAGE).await?;
    let next = (dead_events.len() as u32 == PAGE)
        .then(|| dead_events.last().map(|e| e.id.clone()))
        .flatten();
    let dead = dead_events
        .into_iter()
        .map(|e| DeadRow {
            excerpt: e.body.chars().take(EXCERPT_CHARS).collect(),
            id: e.id,
            event_type: e.event_type,
            created: when(e.created_at),
            attempts: e.attempts,
            last_error: e.last_error.unwrap_or_default(),
        })
        .collect();
    let chrome = Chrome::new(&auth.viewer, format!("Webhooks of {}", app.name))
        .in_tenant(&scope)
        .in_app(&app, "webhooks")
        .notice(notice(q.done.as_deref()));
    Ok(html(WebhooksPage {
        chrome,
        url: spec.url.clone().unwrap_or_default(),
        all_events: spec.events.is_empty(),
        events: EVENT_TYPES
            .iter()
            .map(|name| EventChoice {
                name,
                checked: spec.events.iter().any(|e| e == name),
            })
            .collect(),
        before_send_enabled: before.enabled,
        timeout_ms: before.timeout_ms,
        fail_closed: before.policy == "fail_closed",
        dead,
        next,
        can_edit: scope.role >= ConsoleRole::Developer,
        can_manage: scope.role >= ConsoleRole::Admin,
    }))
}

/// Saves the webhook: URL (empty turns webhooks off), events (none checked: all), and the
/// before-send hook's switch, timeout and failure policy. Checked by the platform
/// (`parse_spec`: a public URL unless private addresses are allowed, known events).
pub async fn save(
    State(st): State<ConsoleState>,
    Path((tenant, app)): Path<(String, String)>,
    posted: Posted<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let auth = &posted.auth;
    let (scope, app) = app_scope(&st, &auth.viewer, &tenant, &app).await?;
    scope.require(ConsoleRole::Developer, "Changing webhooks")?;
    let form = &posted.form;
    let url = form.get("url").map(|u| u.trim().to_owned()).filter(|u| !u.is_empty());
    let events = EVENT_TYPES
        .iter()
        .filter(|e| form.contains_key(&format!("event.{e}")))
        .map(|e| (*e).to_owned())
        .collect();
    let current = spec_of(&app.settings.webhook).before_send.unwrap_or_default();
    let timeout_ms = match form.get("timeout_ms").map(|t| t.trim()) {
        None | Some("") => current.timeout_ms,
        Some(t) => t
            .parse()
            .map_err(|_| PageError::Invalid("timeout_ms must be a whole number of milliseconds".into()))?,
    };
    let spec = WebhookSpec {
        url,
        events,
        before_send: Some(BeforeSendSpec {
            enabled: form.contains_key("before_send"),
            timeout_ms,
            policy: if form.get("policy").map(String::as_str) == Some("fail_closed") {
                "fail_closed".into()
            } else {
                "fail_open".into()
            },
            ..current
        }),
    };
    let webhook = parse_spec(spec, st.webhook_allow_private)
        .await
        .map_err(|e| PageError::Invalid(e.to_string()))?;
    let mut settings = app.settings.clone();
    settings.webhook = webhook;
    let shown = spec_of(&settings.webhook);
    tern_platform::service::settings::replace(&st.pipeline, &st.credentials, &app, &settings).await?;
    audit(
        &st,
        auth,
        None,
        Some(&app),
        "app.webhook",
        &app.name,
        format!(
            "url {}, events {}, before-send {}",
            shown.url.as_deref().unwrap_or("(off)"),
            if shown.events.is_empty() {
                "all".into()
            } else {
                shown.events.join(" ")
            },
            if settings.webhook.before_send.enabled {
                "on"
            } else {
                "off"
            }
        ),
    )
    .await?;
    Ok(see_other(&format!(
        "{}/t/{}/apps/{}/webhooks?done=webhook-saved",
        crate::BASE,
        app.tenant_id,
        app.id
    )))
}

pub async fn redeliver(
    State(st): State<ConsoleState>,
    Path((tenant, app, event)): Path<(String, String, String)>,
    posted: Posted<NoFields>,
) -> Result<Response, PageError> {
    let auth = &posted.auth;
    let (scope, app) = app_scope(&st, &auth.viewer, &tenant, &app).await?;
    scope.require(ConsoleRole::Developer, "Redelivering events")?;
    tern_platform::service::webhooks::redeliver(&st.pipeline, &app, &event, now_ms()).await?;
    audit(
        &st,
        auth,
        None,
        Some(&app),
        "app.webhook.redeliver",
        &event,
        String::new(),
    )
    .await?;
    Ok(see_other(&format!(
        "{}/t/{}/apps/{}/webhooks?done=redelivered",
        crate::BASE,
        app.tenant_id,
        app.id
    )))
}
