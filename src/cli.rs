//! The command line: `tern serve`, `tern migrate`, and the admin commands that work on the
//! configured store directly (so they run beside a live server). Parsing only; `commands`
//! and `serve` do the work.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "tern", version, about = "Tern: a multi-tenant IM cloud")]
pub struct Cli {
    /// TOML config file (default: tern.toml in the working directory, if present).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: REST, WebSocket and console on the HTTP port, gRPC, and the workers.
    Serve(ServeArgs),
    /// Bring the configured database up to date.
    Migrate,
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage apps and their secrets.
    #[command(subcommand)]
    App(AppCommand),
    /// Mint a user token, for trying things by hand.
    Token(TokenArgs),
    /// Configure an app's webhooks; list and redeliver dead after-events.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Offline push: the delivery log (why a notification did or did not arrive).
    #[command(subcommand)]
    Push(PushCommand),
}

#[derive(Debug, Subcommand)]
pub enum PushCommand {
    /// Push attempts, newest first, with each provider's status and reason; filter by
    /// user, device or message (any of them together).
    Log {
        /// The app's AppKey.
        #[arg(long)]
        app: String,
        #[arg(long)]
        user: Option<String>,
        /// A device id (dev_...).
        #[arg(long)]
        device: Option<String>,
        /// A message id (m_...).
        #[arg(long = "msg")]
        msg: Option<String>,
        /// At most this many lines, 1 to 1000.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum Role {
    /// Server API (REST and gRPC), operator API, console.
    Api,
    /// SDK WebSocket sessions.
    Gateway,
    /// Webhook delivery and offline push.
    Worker,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Roles this process runs, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "api,gateway,worker")]
    pub roles: Vec<Role>,
    /// Do not apply migrations; wait until `tern migrate` has.
    #[arg(long)]
    pub no_migrate: bool,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant; prints its id.
    Create {
        /// The tenant's name, unique on the platform.
        name: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the tenants: id, status, name.
    List {
        /// Print JSON (one array) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Suspend a tenant (by id or name): its apps refuse API calls and SDK logins
    /// (`app_suspended`) within seconds on every node. Written to the console's audit log.
    Suspend { tenant: String },
    /// Reactivate a suspended tenant (by id or name). Written to the console's audit log.
    Activate { tenant: String },
    /// Approve a tenant that signed up and waits for approval (by id or name); its owners
    /// are emailed. Written to the console's audit log.
    Approve { tenant: String },
    /// Decline a tenant that signed up and waits for approval (by id or name); its owners
    /// are emailed, with the reason if given. Written to the console's audit log.
    Decline {
        tenant: String,
        /// Why, sent to the owners (at most 500 characters).
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Create an app; prints its AppKey, AppSecret and webhook secret (shown only now).
    Create {
        /// The tenant, by id (tn_...) or name.
        #[arg(long)]
        tenant: String,
        /// The app's name, unique in the tenant.
        #[arg(long)]
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Add a new AppSecret; the current ones stay valid for the app's grace period.
    RotateSecret {
        /// The app's AppKey.
        #[arg(long)]
        app: String,
        #[arg(long)]
        json: bool,
    },
    /// Replace the webhook secret; the old one keeps signing (a second `v1=`) for the grace period.
    RotateWebhookSecret {
        /// The app's AppKey.
        #[arg(long)]
        app: String,
        #[arg(long)]
        json: bool,
    },
    /// Show the app's settings, or change some with `--set NAME=VALUE` (repeatable).
    Settings {
        /// The app's AppKey.
        #[arg(long)]
        app: String,
        /// A setting to change, e.g. `group_member_limit=10000` or `rooms_created_on_join=false`.
        /// The value is read as JSON when it parses as JSON, else as a string.
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// End one AppSecret's validity now (not the last one).
    RevokeSecret {
        #[arg(long)]
        app: String,
        /// The secret's id (sec_...), as printed by rotate-secret.
        #[arg(long)]
        secret: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Replace the app's webhook configuration (the same rules as `PUT /v1/webhook`).
    Set(WebhookSetArgs),
    /// Print the app's webhook configuration.
    Show {
        /// The app's AppKey.
        #[arg(long)]
        app: String,
        #[arg(long)]
        json: bool,
    },
    /// List the app's dead after-events (failed for 24 hours), oldest id first.
    Dead {
        /// The app's AppKey.
        #[arg(long)]
        app: String,
        #[arg(long)]
        json: bool,
    },
    /// Put a dead event back in the queue, due now.
    Redeliver {
        /// The app's AppKey.
        #[arg(long)]
        app: String,
        /// The event's webhook id (wh_...).
        event_id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct WebhookSetArgs {
    /// The app's AppKey.
    #[arg(long)]
    pub app: String,
    /// The endpoint every webhook is POSTed to. Internal addresses are refused unless the
    /// operator set TERN_WEBHOOK_ALLOW_PRIVATE=1.
    #[arg(long, required_unless_present = "off", conflicts_with = "off")]
    pub url: Option<String>,
    /// Turn webhooks off (no URL).
    #[arg(long)]
    pub off: bool,
    /// After-events to deliver, comma separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub events: Vec<String>,
    /// Call the before-send hook for the messages it selects.
    #[arg(long)]
    pub before_send: bool,
    /// Which senders' messages the hook sees, comma separated: sdk, server_api (default: both).
    #[arg(long, value_delimiter = ',')]
    pub sources: Vec<String>,
    /// Which message types the hook sees, comma separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub types: Vec<String>,
    /// The before-send timeout, 100 to 5000 ms.
    #[arg(long, default_value_t = tern_platform::webhook::settings::DEFAULT_TIMEOUT_MS)]
    pub timeout_ms: u64,
    /// What happens when the hook fails: fail_open (the message goes through) or fail_closed.
    #[arg(long, default_value = "fail_open")]
    pub policy: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The app's AppKey.
    #[arg(long)]
    pub app: String,
    /// The user id the token logs in as.
    #[arg(long)]
    pub user: String,
    /// Lifetime in seconds (at most the app's maximum, 30 days by default).
    #[arg(long, default_value_t = tern_platform::tenancy::DEFAULT_TOKEN_TTL_SECONDS, allow_negative_numbers = true)]
    pub ttl: i64,
    #[arg(long)]
    pub json: bool,
}

/// What parsing the command line ended in when it did not give a command to run.
pub enum Early {
    /// `--help` or `--version`: print this to stdout and exit 0.
    Info(String),
    /// A usage error, as one line.
    Error(String),
}

/// Parses `std::env::args`. Usage errors come back as a single line (no usage dump), as
/// scripts calling the CLI expect.
pub fn parse() -> Result<Cli, Early> {
    Cli::try_parse().map_err(|e| {
        use clap::error::ErrorKind;
        match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Early::Info(e.render().to_string()),
            _ => {
                let rendered = e.render().to_string();
                // The message, plus the indented lines that complete it (such as the list
                // of missing arguments), without the usage block after it.
                let mut lines = rendered.lines().skip_while(|l| l.trim().is_empty());
                let first = lines.next().unwrap_or("invalid arguments").trim();
                let mut reason = first.strip_prefix("error:").unwrap_or(first).trim().to_owned();
                for more in lines.take_while(|l| l.starts_with(' ') && !l.trim().is_empty()) {
                    reason.push(' ');
                    reason.push_str(more.trim());
                }
                let reason = if reason.is_empty() || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    "a command is required (try `tern --help`)".to_owned()
                } else {
                    reason
                };
                Early::Error(reason)
            }
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_commands_parse() {
        let c = Cli::try_parse_from(["tern", "serve", "--roles", "api,worker"]).unwrap();
        let Command::Serve(s) = c.command else { panic!() };
        assert_eq!(s.roles, vec![Role::Api, Role::Worker]);
        let c = Cli::try_parse_from(["tern", "serve"]).unwrap();
        let Command::Serve(s) = c.command else { panic!() };
        assert_eq!(s.roles, vec![Role::Api, Role::Gateway, Role::Worker]);
        let c = Cli::try_parse_from([
            "tern", "--config", "x.toml", "app", "create", "--tenant", "t", "--name", "n",
        ])
        .unwrap();
        assert_eq!(c.config.unwrap(), PathBuf::from("x.toml"));
        let c =
            Cli::try_parse_from(["tern", "token", "--app", "ak_x", "--user", "u", "--ttl", "60", "--json"]).unwrap();
        let Command::Token(t) = c.command else { panic!() };
        assert_eq!((t.ttl, t.json), (60, true));
        assert!(Cli::try_parse_from(["tern", "serve", "--roles", "db"]).is_err());
        let c = Cli::try_parse_from([
            "tern",
            "webhook",
            "set",
            "--app",
            "ak_x",
            "--url",
            "https://h/x",
            "--events",
            "message.sent,user.online",
            "--before-send",
            "--policy",
            "fail_closed",
        ])
        .unwrap();
        let Command::Webhook(WebhookCommand::Set(w)) = c.command else {
            panic!()
        };
        assert_eq!(w.events, vec!["message.sent", "user.online"]);
        assert!(w.before_send && w.timeout_ms == 1500 && w.policy == "fail_closed");
        assert!(Cli::try_parse_from(["tern", "webhook", "set", "--app", "ak_x"]).is_err());
        assert!(Cli::try_parse_from(["tern", "webhook", "set", "--app", "ak_x", "--url", "u", "--off"]).is_err());
        let c = Cli::try_parse_from(["tern", "webhook", "redeliver", "--app", "ak_x", "wh_1"]).unwrap();
        let Command::Webhook(WebhookCommand::Redeliver { event_id, .. }) = c.command else {
            panic!()
        };
        assert_eq!(event_id, "wh_1");
        assert!(Cli::try_parse_from(["tern", "token", "--app", "ak_x"]).is_err());
        let c = Cli::try_parse_from(["tern", "push", "log", "--app", "ak_x", "--user", "bob", "--limit", "5"]).unwrap();
        let Command::Push(PushCommand::Log { user, limit, json, .. }) = c.command else {
            panic!()
        };
        assert_eq!((user.as_deref(), limit, json), (Some("bob"), 5, false));
    }
}
