//! An app: its AppKey, its secrets (rotate and revoke; a new secret is shown once and
//! never again), its webhook secret, every setting with its range and help, and its
//! sensitive-word lists (edited on their own page, `word_lists`).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use tern_platform::domain::{App, AppSettings, ConsoleRole};
use tern_platform::service::console;

use super::tenants::DoneQuery;
use super::{audit, notice, see_other};
use crate::auth::{app_scope, tenant_scope, Auth, NoFields, Posted};
use crate::error::{html, PageError};
use crate::state::ConsoleState;
use crate::views::{when, when_or, Chrome};

/// Each setting the page offers, with what it does and its range. The platform checks
/// the ranges again (`AppSettings::validate`); the page only explains them.
const SETTING_HELP: &[(&str, &str)] = &[
    (
        "max_token_ttl_seconds",
        "Longest lifetime of a user token, seconds (60 to 31,622,400).",
    ),
    (
        "auto_create_users",
        "Users unknown to the app are created when they first log in with a valid token.",
    ),
    (
        "write_rate_per_second",
        "Server API writes per second (1 to 1,000,000, at most the platform's ceiling).",
    ),
    (
        "read_rate_per_second",
        "Server API reads per second (1 to 1,000,000, at most the platform's ceiling).",
    ),
    ("max_text_bytes", "Largest text message, bytes (1 to 65,536)."),
    (
        "max_content_bytes",
        "Largest content of other message types, bytes (64 to 65,536).",
    ),
    (
        "recall_window_seconds",
        "How long a sender may recall their own message, seconds (0 to 604,800).",
    ),
    (
        "user_send_rate_per_second",
        "Messages per second one user may send from the SDK (1 to 10,000).",
    ),
    (
        "max_sessions_mobile",
        "Sessions per user on each native platform before the oldest is closed (1 to 100).",
    ),
    (
        "max_sessions_web",
        "Browser sessions per user before the oldest is closed (1 to 100).",
    ),
    (
        "secret_grace_seconds",
        "How long a rotated-out AppSecret keeps working, seconds (0 to 2,592,000).",
    ),
    (
        "friendship_required_for_direct",
        "Direct messages need friendship on both sides.",
    ),
    ("group_member_limit", "Most members of one group (2 to 100,000)."),
    ("users_may_create_groups", "App users may create groups from the SDK."),
    (
        "group_read_receipt_limit",
        "Groups up to this size keep per-message read counts (0 to 10,000; 0 is off).",
    ),
    (
        "edit_window_seconds",
        "How long a sender may edit their own message, seconds (0 to 2,592,000).",
    ),
    (
        "rooms_created_on_join",
        "Joining a room that does not exist creates it.",
    ),
    (
        "room_send_rate_per_second",
        "Messages per second one room accepts (1 to 100,000).",
    ),
    ("room_backlog", "Messages a new room member gets on joining (0 to 100)."),
    (
        "broadcast_rate_per_second",
        "Users each broadcast reaches per second (1 to 100,000).",
    ),
];

pub struct SettingRow {
    pub key: &'static str,
    pub help: &'static str,
    pub is_bool: bool,
    pub checked: bool,
    pub value: String,
}

fn setting_rows(s: &AppSettings) -> Vec<SettingRow> {
    let doc = serde_json::to_value(s).unwrap_or_default();
    SETTING_HELP
        .iter()
        .filter_map(|(key, help)| {
            let v = doc.get(key)?;
            Some(SettingRow {
                key,
                help,
                is_bool: v.is_boolean(),
                checked: v.as_bool().unwrap_or(false),
                value: if v.is_boolean() { String::new() } else { v.to_string() },
            })
        })
        .collect()
}

pub struct SecretRow {
    pub id: String,
    pub created: String,
    pub expires: String,
    /// Revoking the last working secret is refused; the button is not offered.
    pub revocable: bool,
}

#[derive(Template)]
#[template(path = "app.html")]
struct AppPage {
    chrome: Chrome,
    app_key: String,
    status: String,
    created: String,
    secrets: Vec<SecretRow>,
    settings: Vec<SettingRow>,
    can_edit: bool,
    can_manage: bool,
    error: Option<String>,
    /// The sensitive-word lists: (name, policy, words), edited on their own page.
    word_lists: Vec<(String, &'static str, usize)>,
}

async fn app_page(
    st: &ConsoleState,
    auth: &Auth,
    tenant: &str,
    app: &str,
    done: Option<&str>,
    error: Option<String>,
    shown: Option<AppSettings>,
) -> Result<AppPage, PageError> {
    let (scope, app) = app_scope(st, &auth.viewer, tenant, app).await?;
    let secrets = console::secrets_of(&st.pipeline, &app).await?;
    let count = secrets.len();
    let secrets = secrets
        .into_iter()
        .map(|s| SecretRow {
            id: s.id.to_string(),
            created: when(s.created_at),
            expires: when_or(s.expires_at, "no end"),
            revocable: count > 1,
        })
        .collect();
    let settings = setting_rows(shown.as_ref().unwrap_or(&app.settings));
    let word_lists = tern_platform::service::moderation::word_lists(&st.pipeline, &app)
        .await?
        .into_iter()
        .map(|l| (l.name, l.policy.as_str(), l.words.len()))
        .collect();
    let chrome = Chrome::new(&auth.viewer, app.name.clone())
        .in_tenant(&scope)
        .in_app(&app, "app")
        .notice(notice(done));
    Ok(AppPage {
        chrome,
        app_key: app.app_key.to_string(),
        status: app.status.as_str().into(),
        created: when(app.created_at),
        secrets,
        settings,
        can_edit: scope.role >= ConsoleRole::Developer,
        can_manage: scope.role >= ConsoleRole::Admin,
        error,
        word_lists,
    })
}

pub async fn show(
    State(st): State<ConsoleState>,
    auth: Auth,
    Path((tenant, app)): Path<(String, String)>,
    Query(q): Query<DoneQuery>,
) -> Result<Response, PageError> {
    Ok(html(
        app_page(&st, &auth, &tenant, &app, q.done.as_deref(), None, None).await?,
    ))
}

/// A reload of the page that showed a new app's secrets (its URL is the form's): back to
/// the tenant, the secrets are not shown again.
pub async fn to_tenant(Path(tenant): Path<String>) -> Response {
    see_other(&format!("{}/t/{}", crate::BASE, super::users::percent(&tenant)))
}

/// A reload of the page that showed a rotated secret: back to the app.
pub async fn to_app(Path((tenant, app)): Path<(String, String)>) -> Response {
    see_other(&format!(
        "{}/t/{}/apps/{}",
        crate::BASE,
        super::users::percent(&tenant),
        super::users::percent(&app)
    ))
}

/// A secret in plaintext, on the one page that ever shows it.
#[derive(Template)]
#[template(path = "secret.html")]
struct SecretPage {
    chrome: Chrome,
    heading: String,
    app_key: String,
    /// (label, value) pairs shown once.
    values: Vec<(String, String)>,
    note: String,
}

#[derive(Deserialize)]
pub struct CreateApp {
    #[serde(default)]
    name: String,
}

pub async fn create(
    State(st): State<ConsoleState>,
    Path(tenant): Path<String>,
    posted: Posted<CreateApp>,
) -> Result<Response, PageError> {
    let auth = &posted.auth;
    let scope = tenant_scope(&st, &auth.viewer, &tenant).await?;
    scope.require(ConsoleRole::Admin, "Creating apps")?;
    let created = console::create_app(&st.pipeline, &st.secrets, &scope.tenant.id, &posted.form.name).await?;
    let app = console::app_of(&st.pipeline, &scope.tenant.id, &created.app_id).await?;
    audit(
        &st,
        auth,
        Some(&scope.tenant.id),
        Some(&app),
        "app.create",
        &app.name,
        format!("app key {}", app.app_key),
    )
    .await?;
    let chrome = Chrome::new(&auth.viewer, format!("{} created", app.name))
        .in_tenant(&scope)
        .in_app(&app, "app");
    Ok(html(SecretPage {
        chrome,
        heading: format!("App {} created", app.name),
        app_key: app.app_key.to_string(),
        values: vec![
            ("AppSecret".into(), created.app_secret.clone()),
            ("Webhook secret".into(), created.webhook_secret.clone()),
        ],
        note: "Copy these secrets now: they are shown only this once. Tern keeps them encrypted and cannot show them again; rotate to get new ones.".into(),
    }))
}

pub async fn save_settings(
    State(st): State<ConsoleState>,
    Path((tenant, app_raw)): Path<(String, String)>,
    posted: Posted<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let auth = &posted.auth;
    let (scope, app) = app_scope(&st, &auth.viewer, &tenant, &app_raw).await?;
    scope.require(ConsoleRole::Developer, "Changing settings")?;
    let doc = serde_json::to_value(&app.settings).unwrap_or_default();
    let mut patch = serde_json::Map::new();
    let mut problem = None;
    for (key, _) in SETTING_HELP {
        let Some(current) = doc.get(key) else { continue };
        if current.is_boolean() {
            patch.insert((*key).into(), serde_json::Value::Bool(posted.form.contains_key(*key)));
        } else if let Some(raw) = posted.form.get(*key) {
            match raw.trim().parse::<i64>() {
                Ok(n) => {
                    patch.insert((*key).into(), serde_json::Value::from(n));
                }
                Err(_) => {
                    problem.get_or_insert_with(|| format!("{key} must be a whole number"));
                }
            }
        }
    }
    let checked = match problem {
        Some(p) => Err(p),
        None => app
            .settings
            .with_patch(&serde_json::Value::Object(patch))
            .and_then(|s| {
                s.check_rate_ceiling(&app.settings, st.max_app_rate_per_second)
                    .map(|()| s)
            }),
    };
    let settings = match checked {
        Ok(s) => s,
        Err(message) => {
            // The page again, with what was typed and why it was refused.
            let mut page = app_page(&st, auth, &tenant, &app_raw, None, Some(message), None).await?;
            for row in &mut page.settings {
                if let Some(v) = posted.form.get(row.key) {
                    row.value = v.clone();
                }
                if row.is_bool {
                    row.checked = posted.form.contains_key(row.key);
                }
            }
            let mut response = html(page);
            *response.status_mut() = axum::http::StatusCode::BAD_REQUEST;
            return Ok(response);
        }
    };
    let changes = changed_settings(&app.settings, &settings);
    tern_platform::service::settings::replace(&st.pipeline, &st.credentials, &app, &settings).await?;
    audit(&st, auth, None, Some(&app), "app.settings", &app.name, changes).await?;
    Ok(see_other(&format!("{}?done=settings-saved", app_url(&app))))
}

/// `key: old → new` for each setting that changed.
fn changed_settings(before: &AppSettings, after: &AppSettings) -> String {
    let (b, a) = (
        serde_json::to_value(before).unwrap_or_default(),
        serde_json::to_value(after).unwrap_or_default(),
    );
    SETTING_HELP
        .iter()
        .filter_map(|(k, _)| {
            let (old, new) = (b.get(k)?, a.get(k)?);
            (old != new).then(|| format!("{k}: {old} → {new}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn app_url(app: &App) -> String {
    format!("{}/t/{}/apps/{}", crate::BASE, app.tenant_id, app.id)
}

pub async fn rotate_secret(
    State(st): State<ConsoleState>,
    Path((tenant, app)): Path<(String, String)>,
    posted: Posted<NoFields>,
) -> Result<Response, PageError> {
    let auth = &posted.auth;
    let (scope, app) = app_scope(&st, &auth.viewer, &tenant, &app).await?;
    scope.require(ConsoleRole::Admin, "Rotating secrets")?;
    let rotated = console::rotate_secret(&st.pipeline, &st.credentials, &st.secrets, &app).await?;
    audit(
        &st,
        auth,
        None,
        Some(&app),
        "app.secret.rotate",
        &app.name,
        format!(
            "new secret {}; earlier ones expire {}",
            rotated.secret_id,
            when(rotated.previous_expire_at)
        ),
    )
    .await?;
    let chrome = Chrome::new(&auth.viewer, "New AppSecret")
        .in_tenant(&scope)
        .in_app(&app, "app");
    Ok(html(SecretPage {
        chrome,
        heading: "New AppSecret".into(),
        app_key: app.app_key.to_string(),
        values: vec![("AppSecret".into(), rotated.app_secret.clone())],
        note: format!(
            "Copy it now: it is shown only this once. The secrets that were active keep working until {}.",
            when(rotated.previous_expire_at)
        ),
    }))
}

pub async fn revoke_secret(
    State(st): State<ConsoleState>,
    Path((tenant, app, secret)): Path<(String, String, String)>,
    posted: Posted<NoFields>,
) -> Result<Response, PageError> {
    let auth = &posted.auth;
    let (scope, app) = app_scope(&st, &auth.viewer, &tenant, &app).await?;
    scope.require(ConsoleRole::Admin, "Revoking secrets")?;
    console::revoke_secret(&st.pipeline, &st.credentials, &app, &secret).await?;
    audit(
        &st,
        auth,
        None,
        Some(&app),
        "app.secret.revoke",
        &app.name,
        format!("secret {secret}"),
    )
    .await?;
    Ok(see_other(&format!("{}?done=secret-revoked", app_url(&app))))
}

pub async fn rotate_webhook_secret(
    State(st): State<ConsoleState>,
    Path((tenant, app)): Path<(String, String)>,
    posted: Posted<NoFields>,
) -> Result<Response, PageError> {
    let auth = &posted.auth;
    let (scope, app) = app_scope(&st, &auth.viewer, &tenant, &app).await?;
    scope.require(ConsoleRole::Admin, "Rotating the webhook secret")?;
    let rotated = console::rotate_webhook_secret(&st.pipeline, &st.credentials, &st.secrets, &app).await?;
    audit(
        &st,
        auth,
        None,
        Some(&app),
        "app.webhook_secret.rotate",
        &app.name,
        format!("the earlier one signs until {}", when(rotated.previous_expire_at)),
    )
    .await?;
    let chrome = Chrome::new(&auth.viewer, "New webhook secret")
        .in_tenant(&scope)
        .in_app(&app, "webhooks");
    Ok(html(SecretPage {
        chrome,
        heading: "New webhook secret".into(),
        app_key: app.app_key.to_string(),
        values: vec![("Webhook secret".into(), rotated.webhook_secret.clone())],
        note: format!(
            "Copy it now: it is shown only this once. Until {}, webhooks carry a signature by each secret.",
            when(rotated.previous_expire_at)
        ),
    }))
}
