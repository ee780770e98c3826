//! The admin commands (`migrate`, `tenant`, `app`, `token`, `webhook`, `push log`): each
//! opens the configured store, checks the master key like `serve` does, calls
//! `tern_platform::tenancy`, and prints the result as text or `--json` on stdout.

use std::sync::Arc;

use serde_json::json;
use tern_platform::admins::AdminError;
use tern_platform::bootstrap::{load_master_key, BootstrapError, MasterKey};
use tern_platform::domain::{now_ms, NewAuditEntry, Tenant, TenantStatus};
use tern_platform::store::{self, Store, StoreError};
use tern_platform::tenancy::{self, TenancyError};
use tern_platform::webhook::{self as hooks, BeforeSendSpec, WebhookSpec};

use crate::cli::{AppCommand, PushCommand, TenantCommand, TokenArgs, WebhookCommand, WebhookSetArgs};
use crate::config::{Config, ConfigError};
use crate::telemetry::TelemetryError;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot open the database {url}: {reason}")]
    Database { url: String, reason: String },
    #[error("could not create the data directory {path}: {reason}")]
    DataDir { path: String, reason: String },
    #[error("database error: {0}")]
    Store(#[from] StoreError),
    #[error("refusing to start: {0}")]
    Bootstrap(#[from] BootstrapError),
    #[error(transparent)]
    Tenancy(#[from] TenancyError),
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error(transparent)]
    Telemetry(#[from] TelemetryError),
    #[error("refusing to start: {0}")]
    Adapters(#[from] crate::adapters::AdapterError),
    #[error("{0}")]
    Serve(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
}

/// The platform's mailer: over `TERN_SMTP_URL`, or into `<data_dir>/mail/` without it.
pub fn mailer(config: &Config) -> Result<tern_platform::mail::Mailer, CommandError> {
    use tern_platform::mail::Mailer;
    let public = config.public_base();
    match &config.smtp_url {
        Some(url) => Mailer::smtp(url.expose(), &config.smtp_from, &public),
        None => Mailer::folder(config.data_dir.join("mail"), &config.smtp_from, &public),
    }
    .map_err(|e| CommandError::Invalid(format!("refusing to start: {e}")))
}

/// Opens the configured store (no migration). On the embedded default the data dir is
/// created first (SQLite will not create missing directories), private to Tern's user.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, CommandError> {
    if config.database_url.expose().starts_with("sqlite:") {
        let db_file = crate::data_dir::sqlite_file(config.database_url.expose());
        crate::data_dir::prepare(&config.data_dir, db_file.as_deref()).map_err(|e| CommandError::DataDir {
            path: config.data_dir.display().to_string(),
            reason: e.to_string(),
        })?;
    }
    store::connect(config.database_url.expose())
        .await
        .map_err(|e| CommandError::Database {
            url: config.database_url.redacted(),
            reason: e.to_string(),
        })
}

/// The master key for this config, proven against the stored secrets.
pub async fn master_key(store: &dyn Store, config: &Config) -> Result<MasterKey, CommandError> {
    let env_key = config.master_key.as_ref().map(|k| k.expose());
    Ok(load_master_key(store, env_key, &config.data_dir).await?)
}

async fn migrated_store(config: &Config) -> Result<Arc<dyn Store>, CommandError> {
    let store = open_store(config).await?;
    store.migrate().await?;
    Ok(store)
}

pub async fn migrate(config: &Config) -> Result<(), CommandError> {
    let store = open_store(config).await?;
    store.migrate().await?;
    println!("database {} is up to date", config.database_url.redacted());
    Ok(())
}

fn print_json(value: &serde_json::Value) {
    println!("{value}");
}

pub async fn tenant(config: &Config, cmd: TenantCommand) -> Result<(), CommandError> {
    let store = migrated_store(config).await?;
    match cmd {
        TenantCommand::Create { name, json } => {
            let t = tenancy::create_tenant(store.as_ref(), &name).await?;
            if json {
                print_json(&json!({"tenant_id": t.id, "name": t.name, "status": t.status}));
            } else {
                println!("tenant_id: {}", t.id);
                println!("name:      {}", t.name);
            }
        }
        TenantCommand::List { json } => {
            let mut all = Vec::new();
            loop {
                let page = store.list_tenants(all.last().map(|t: &Tenant| &t.id), 500).await?;
                let done = page.len() < 500;
                all.extend(page);
                if done {
                    break;
                }
            }
            if json {
                let rows: Vec<_> = all
                    .iter()
                    .map(|t| json!({"tenant_id": t.id, "name": t.name, "status": t.status}))
                    .collect();
                print_json(&serde_json::Value::Array(rows));
            } else {
                for t in &all {
                    println!("{}  {:<16}  {}", t.id, t.status.as_str(), t.name);
                }
            }
        }
        TenantCommand::Suspend { tenant } => {
            set_tenant_status(store.as_ref(), &tenant, TenantStatus::Suspended).await?
        }
        TenantCommand::Activate { tenant } => set_tenant_status(store.as_ref(), &tenant, TenantStatus::Active).await?,
        TenantCommand::Approve { tenant } => decide(config, store.as_ref(), &tenant, true, "").await?,
        TenantCommand::Decline { tenant, reason } => {
            decide(config, store.as_ref(), &tenant, false, reason.as_deref().unwrap_or("")).await?
        }
    }
    Ok(())
}

/// Sets a tenant's status and writes the change to the console's audit log (actor `cli`).
/// Running nodes see it when their cached credentials expire (seconds).
async fn set_tenant_status(store: &dyn Store, tenant: &str, status: TenantStatus) -> Result<(), CommandError> {
    let t = tenancy::find_tenant(store, tenant).await?;
    store.set_tenant_status(&t.id, status).await?;
    store
        .append_audit(
            &NewAuditEntry {
                actor: "cli".into(),
                ip: "local".into(),
                tenant_id: Some(t.id.clone()),
                app_id: None,
                action: "tenant.status".into(),
                target: t.name.clone(),
                detail: format!("{} → {}", t.status.as_str(), status.as_str()),
            },
            now_ms(),
        )
        .await?;
    println!("tenant {} ({}) is {}", t.id, t.name, status.as_str());
    Ok(())
}

/// Approves or declines a tenant that signed up (by id or name); its owners are emailed,
/// and the decision is written to the console's audit log (actor `cli`).
async fn decide(
    config: &Config,
    store: &dyn Store,
    tenant: &str,
    approve: bool,
    reason: &str,
) -> Result<(), CommandError> {
    use tern_platform::service::console::ConsoleError;
    let t = tenancy::find_tenant(store, tenant).await?;
    let mailer = mailer(config)?;
    let decided = tern_platform::service::signup::decide(store, &mailer, &t.id, approve, reason)
        .await
        .map_err(|e| match e {
            ConsoleError::NotFound(what) => CommandError::NotFound(format!("{what} not found")),
            other => CommandError::Invalid(other.to_string()),
        })?;
    store
        .append_audit(
            &NewAuditEntry {
                actor: "cli".into(),
                ip: "local".into(),
                tenant_id: Some(t.id.clone()),
                app_id: None,
                action: if approve { "tenant.approve" } else { "tenant.decline" }.into(),
                target: t.name.clone(),
                detail: if reason.trim().is_empty() {
                    format!("{} → {}", t.status.as_str(), decided.status.as_str())
                } else {
                    format!("{} → {}: {}", t.status.as_str(), decided.status.as_str(), reason.trim())
                },
            },
            now_ms(),
        )
        .await?;
    println!("tenant {} ({}) is {}", t.id, t.name, decided.status.as_str());
    Ok(())
}

pub async fn app(config: &Config, cmd: AppCommand) -> Result<(), CommandError> {
    let store = migrated_store(config).await?;
    let key = master_key(store.as_ref(), config).await?;
    match cmd {
        AppCommand::Create { tenant, name, json } => {
            let created = tenancy::create_app(store.as_ref(), &key.secrets, &tenant, &name).await?;
            if json {
                print_json(&json!({
                    "app_id": created.app_id,
                    "tenant_id": created.tenant_id,
                    "name": created.name,
                    "app_key": created.app_key,
                    "app_secret": created.app_secret,
                    "webhook_secret": created.webhook_secret,
                }));
            } else {
                println!("app_id:         {}", created.app_id);
                println!("app_key:        {}", created.app_key);
                println!("app_secret:     {}", created.app_secret);
                println!("webhook_secret: {}", created.webhook_secret);
                println!("(the secrets are shown only now: store them safely)");
            }
        }
        AppCommand::RotateSecret { app, json } => {
            let r = tenancy::rotate_secret(store.as_ref(), &key.secrets, &app).await?;
            if json {
                print_json(&json!({
                    "app_key": r.app_key,
                    "secret_id": r.secret_id,
                    "app_secret": r.app_secret,
                    "previous_expire_at": r.previous_expire_at,
                }));
            } else {
                println!("secret_id:  {}", r.secret_id);
                println!("app_secret: {}", r.app_secret);
                println!(
                    "(shown only now; the previous secrets stay valid until {} ms since the epoch)",
                    r.previous_expire_at
                );
            }
        }
        AppCommand::RotateWebhookSecret { app, json } => {
            let r = tenancy::rotate_webhook_secret(store.as_ref(), &key.secrets, &app).await?;
            if json {
                print_json(&json!({
                    "app_key": r.app_key,
                    "webhook_secret": r.webhook_secret,
                    "previous_expire_at": r.previous_expire_at,
                }));
            } else {
                println!("webhook_secret: {}", r.webhook_secret);
                println!(
                    "(shown only now; webhooks carry a signature with the previous secret too until {} ms since the epoch)",
                    r.previous_expire_at
                );
            }
        }
        AppCommand::Settings { app, set, json } => {
            let app = tenancy::find_app(store.as_ref(), &app).await?;
            let mut patch = serde_json::Map::new();
            for pair in &set {
                let (name, value) = pair
                    .split_once('=')
                    .ok_or_else(|| CommandError::Invalid(format!("--set {pair:?}: expected NAME=VALUE")))?;
                let value = serde_json::from_str(value).unwrap_or_else(|_| serde_json::Value::String(value.to_owned()));
                patch.insert(name.trim().to_owned(), value);
            }
            let mut settings = app.settings.clone();
            if !patch.is_empty() {
                settings = settings
                    .with_patch(&serde_json::Value::Object(patch))
                    .map_err(CommandError::Invalid)?;
                store.update_app_settings(&app.id, &settings).await?;
            }
            let mut shown = serde_json::to_value(&settings).unwrap_or_default();
            if let Some(o) = shown.as_object_mut() {
                o.remove("webhook");
            }
            if json {
                print_json(&shown);
            } else {
                for (k, v) in shown.as_object().into_iter().flatten() {
                    println!("{k:<32} {v}");
                }
            }
        }
        AppCommand::RevokeSecret { app, secret, json } => {
            tenancy::revoke_secret(store.as_ref(), &app, &secret).await?;
            if json {
                print_json(&json!({"revoked": secret}));
            } else {
                println!("revoked {secret}");
            }
        }
    }
    Ok(())
}

pub async fn token(config: &Config, args: TokenArgs) -> Result<(), CommandError> {
    let store = migrated_store(config).await?;
    let key = master_key(store.as_ref(), config).await?;
    let minted = tenancy::mint_token(store.as_ref(), &key.secrets, &args.app, &args.user, args.ttl).await?;
    if args.json {
        print_json(&json!({"token": minted.token, "expires_at": minted.expires_at}));
    } else {
        println!("{}", minted.token);
    }
    Ok(())
}

fn spec_json(spec: &WebhookSpec) -> serde_json::Value {
    let b = spec.before_send.clone().unwrap_or_default();
    json!({
        "url": spec.url,
        "events": spec.events,
        "before_send": {
            "enabled": b.enabled,
            "sources": b.sources,
            "types": b.types,
            "timeout_ms": b.timeout_ms,
            "policy": b.policy,
        },
    })
}

fn print_spec(spec: &WebhookSpec) {
    let list = |v: &[String]| if v.is_empty() { "all".to_owned() } else { v.join(",") };
    let b = spec.before_send.clone().unwrap_or_default();
    println!(
        "url:         {}",
        spec.url.as_deref().unwrap_or("(none: webhooks are off)")
    );
    println!("events:      {}", list(&spec.events));
    println!("before_send: {}", if b.enabled { "on" } else { "off" });
    println!(
        "  sources:   {}",
        if b.sources.is_empty() {
            "sdk,server_api".to_owned()
        } else {
            b.sources.join(",")
        }
    );
    println!("  types:     {}", list(&b.types));
    println!("  timeout:   {} ms", b.timeout_ms);
    println!("  policy:    {}", b.policy);
}

fn set_spec(args: WebhookSetArgs) -> WebhookSpec {
    WebhookSpec {
        url: if args.off { None } else { args.url },
        events: args.events,
        before_send: Some(BeforeSendSpec {
            enabled: args.before_send,
            sources: args.sources,
            types: args.types,
            timeout_ms: args.timeout_ms,
            policy: args.policy,
        }),
    }
}

/// The most dead events `tern webhook dead` reads per store call.
const DEAD_PAGE: u32 = 200;

pub async fn webhook(config: &Config, cmd: WebhookCommand) -> Result<(), CommandError> {
    let store = migrated_store(config).await?;
    match cmd {
        WebhookCommand::Set(args) => {
            let app = tenancy::find_app(store.as_ref(), &args.app).await?;
            let json = args.json;
            let webhook = hooks::parse_spec(set_spec(args), config.webhook_allow_private)
                .await
                .map_err(|e| CommandError::Invalid(e.0))?;
            let mut settings = app.settings.clone();
            settings.webhook = webhook;
            store.update_app_settings(&app.id, &settings).await?;
            let spec = hooks::spec_of(&settings.webhook);
            if json {
                print_json(&spec_json(&spec));
            } else {
                print_spec(&spec);
            }
        }
        WebhookCommand::Show { app, json } => {
            let app = tenancy::find_app(store.as_ref(), &app).await?;
            let spec = hooks::spec_of(&app.settings.webhook);
            if json {
                print_json(&spec_json(&spec));
            } else {
                print_spec(&spec);
            }
        }
        WebhookCommand::Dead { app, json } => {
            let app = tenancy::find_app(store.as_ref(), &app).await?;
            let mut events = Vec::new();
            loop {
                let after = events.last().map(|e: &store::OutboxEvent| e.id.clone());
                let page = store.dead_events(&app.id, after.as_deref(), DEAD_PAGE).await?;
                let full = page.len() == DEAD_PAGE as usize;
                events.extend(page);
                if !full {
                    break;
                }
            }
            if json {
                let list: Vec<_> = events
                    .iter()
                    .map(|e| {
                        json!({
                            "id": e.id,
                            "type": e.event_type,
                            "attempts": e.attempts,
                            "created_at": e.created_at,
                            "last_error": e.last_error,
                            "body": e.body,
                        })
                    })
                    .collect();
                print_json(&json!({ "events": list }));
            } else if events.is_empty() {
                println!("no dead events");
            } else {
                for e in &events {
                    println!(
                        "{}  {}  attempts={}  created_at={}  last_error={}",
                        e.id,
                        e.event_type,
                        e.attempts,
                        hooks::rfc3339(e.created_at),
                        e.last_error.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        WebhookCommand::Redeliver { app, event_id, json } => {
            let app = tenancy::find_app(store.as_ref(), &app).await?;
            let now = tern_platform::domain::now_ms();
            match store.redeliver_event(&app.id, &event_id, now).await {
                Ok(()) => {}
                Err(StoreError::NotFound(_)) => {
                    return Err(CommandError::NotFound(format!(
                        "the app has no dead event {event_id:?} (see `tern webhook dead`)"
                    )))
                }
                Err(e) => return Err(e.into()),
            }
            if json {
                print_json(&json!({"id": event_id, "queued_at": now}));
            } else {
                println!("queued {event_id} for delivery (a running worker sends it within its poll interval)");
            }
        }
    }
    Ok(())
}

/// The most push log lines `tern push log` prints.
const MAX_PUSH_LOG: u32 = 1_000;

pub async fn push(config: &Config, cmd: PushCommand) -> Result<(), CommandError> {
    use tern_platform::domain::PushLogFilter;
    use tern_platform::ids::{DeviceId, MsgId, UserId};
    let PushCommand::Log {
        app,
        user,
        device,
        msg,
        limit,
        json,
    } = cmd;
    if !(1..=MAX_PUSH_LOG).contains(&limit) {
        return Err(CommandError::Invalid(format!(
            "--limit must be from 1 to {MAX_PUSH_LOG}"
        )));
    }
    let bad = |what: &str, e: String| CommandError::Invalid(format!("--{what}: {e}"));
    let filter = PushLogFilter {
        user_id: user
            .as_deref()
            .map(|u| UserId::parse(u).map_err(|e| bad("user", e.to_string())))
            .transpose()?,
        device_id: device
            .as_deref()
            .map(|d| DeviceId::parse(d).map_err(|e| bad("device", e.to_string())))
            .transpose()?,
        msg_id: msg
            .as_deref()
            .map(|m| MsgId::parse(m).map_err(|e| bad("msg", e.to_string())))
            .transpose()?,
        before: None,
    };
    let store = migrated_store(config).await?;
    let app = tenancy::find_app(store.as_ref(), &app).await?;
    let mut lines = Vec::new();
    let mut filter = filter;
    // The store answers at most a page at a time; read pages until `limit`.
    while (lines.len() as u32) < limit {
        let want = (limit - lines.len() as u32).min(100);
        let page = store.push_log(&app.id, &filter, want).await?;
        let done = (page.len() as u32) < want;
        filter.before = page.last().map(|l| l.id.clone());
        lines.extend(page);
        if done {
            break;
        }
    }
    if json {
        let list: Vec<_> = lines
            .iter()
            .map(|l| {
                json!({
                    "id": l.id,
                    "at": l.at,
                    "user_id": l.user_id.as_str(),
                    "device_id": l.device_id.as_str(),
                    "msg_id": l.msg_id.as_ref().map(|m| m.as_str()),
                    "provider": l.provider.as_str(),
                    "outcome": l.outcome.as_str(),
                    "http_status": l.http_status,
                    "reason": l.reason,
                    "provider_id": l.provider_id,
                    "latency_ms": l.latency_ms,
                    "attempt": l.attempt,
                })
            })
            .collect();
        print_json(&json!({ "entries": list }));
    } else if lines.is_empty() {
        println!("no push attempts (see docs/push.md, \"no line at all\", for why none were made)");
    } else {
        for l in &lines {
            println!(
                "{}  {}  {}  {}/{}  msg={}  {}  http={}  reason={}  {}ms  attempt={}",
                hooks::rfc3339(l.at),
                l.id,
                l.provider.as_str(),
                l.user_id.as_str(),
                l.device_id.as_str(),
                l.msg_id.as_ref().map_or("(test push)", |m| m.as_str()),
                l.outcome.as_str(),
                l.http_status,
                l.reason.as_deref().unwrap_or("-"),
                l.latency_ms,
                l.attempt,
            );
        }
    }
    Ok(())
}
