//! The `tern` binary: parses the command line and the configuration, then hands over to
//! `serve` or to one admin command. Nothing here but composition; the engine is in
//! `tern_platform`, the front doors in their crates.

mod adapters;
mod cli;
mod commands;
mod config;
mod data_dir;
mod serve;
mod telemetry;

use std::process::ExitCode;

use cli::{Cli, Command, Early};
use commands::CommandError;
use config::Config;

fn main() -> ExitCode {
    let cli = match cli::parse() {
        Ok(cli) => cli,
        Err(Early::Info(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(Early::Error(reason)) => return fail(&reason),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e.to_string()),
    }
}

/// Failures are one line on stderr, so scripts can show them as they are.
fn fail(reason: &str) -> ExitCode {
    let one_line = reason.split_whitespace().collect::<Vec<_>>().join(" ");
    eprintln!("error: {one_line}");
    ExitCode::FAILURE
}

async fn run(cli: Cli) -> Result<(), CommandError> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve(args) => {
            let telemetry = telemetry::init(config.log_format, &config.log, &config.node_id)?;
            tracing::debug!(?config, traces_exported = telemetry.exporting(), "configuration");
            serve::run(config, args, telemetry).await
        }
        Command::Migrate => {
            let telemetry = telemetry::init(config.log_format, &config.log, &config.node_id)?;
            let result = commands::migrate(&config).await;
            telemetry.shutdown().await;
            result
        }
        Command::Tenant(cmd) => commands::tenant(&config, cmd).await,
        Command::App(cmd) => commands::app(&config, cmd).await,
        Command::Token(args) => commands::token(&config, args).await,
        Command::Webhook(cmd) => commands::webhook(&config, cmd).await,
        Command::Push(cmd) => commands::push(&config, cmd).await,
    }
}
