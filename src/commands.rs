//! The admin commands (`migrate`, `tenant`, `app`, `token`): each opens the configured store,
//! checks the master key like `serve` does, calls `tern_platform::tenancy`, and prints the
//! result as text or `--json` on stdout.

use std::sync::Arc;

use serde_json::json;
use tern_platform::admins::AdminError;
use tern_platform::bootstrap::{load_master_key, BootstrapError, MasterKey};
use tern_platform::store::{self, Store, StoreError};
use tern_platform::tenancy::{self, TenancyError};

use crate::cli::{AppCommand, TenantCommand, TokenArgs};
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
    #[error("{0}")]
    Serve(String),
}

/// Opens the configured store (no migration). On the embedded default the data dir is
/// created first, since SQLite will not create missing directories.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, CommandError> {
    if config.database_url.expose().starts_with("sqlite:") {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| CommandError::DataDir {
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
    }
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
