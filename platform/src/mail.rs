//! Outgoing mail: sign-up verification, an operator's decision on a tenant, invitations.
//! Sent over SMTP (`lettre`; `TERN_SMTP_URL`, from `TERN_SMTP_FROM`) or, when no SMTP server
//! is configured, written as `.eml` files to a folder (`<data_dir>/mail/`) that an operator
//! can read. Every attempt is noted in the store's outbox (`console_mail`) without its body,
//! whose links carry single-use tokens.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::{header::ContentType, Mailbox};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::domain::{now_ms, NewMail};
use crate::ids::TenantId;
use crate::store::Store;

/// How long one SMTP exchange may take before the send counts as failed.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// A setting is wrong (the SMTP URL, the sender address); said at start.
    #[error("{0}")]
    Config(String),
    /// The mail could not be sent or written; noted in the outbox as failed.
    #[error("the mail could not be sent: {0}")]
    Send(String),
}

enum Transport {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// `host:port`, without credentials, for the banner.
        server: String,
    },
    Folder(PathBuf),
}

/// One mail to send.
pub struct Mail {
    pub tenant_id: Option<TenantId>,
    pub to: String,
    /// What it is, for the outbox: `signup.verify`, `tenant.approved`, …
    pub kind: &'static str,
    pub subject: String,
    /// Plain text.
    pub body: String,
}

/// Sends the platform's mail; one per node, shared.
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    /// Where the console is reached from outside, for links in mails (no trailing slash).
    public_url: String,
}

fn sender(from: &str) -> Result<Mailbox, MailError> {
    from.parse::<Mailbox>()
        .map_err(|e| MailError::Config(format!("TERN_SMTP_FROM {from:?} is not a mail address: {e}")))
}

fn trim_url(public_url: &str) -> String {
    public_url.trim_end_matches('/').to_owned()
}

impl Mailer {
    /// Over the SMTP server the URL names: `smtp://host:port` (plain, or STARTTLS when the
    /// server offers it with `?tls=opportunistic`), `smtp://…?tls=required`, `smtps://host`
    /// (TLS from the start); `user:password@` for authentication.
    pub fn smtp(url: &str, from: &str, public_url: &str) -> Result<Self, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailError::Config(format!("TERN_SMTP_URL is not a usable SMTP URL: {e}")))?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        let after_scheme = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
        let authority = after_scheme.split(['/', '?']).next().unwrap_or("");
        let server = authority.rsplit('@').next().unwrap_or(authority).to_owned();
        Ok(Self {
            transport: Transport::Smtp { transport, server },
            from: sender(from)?,
            public_url: trim_url(public_url),
        })
    }

    /// Writes each mail as a file in `dir` (made if missing, readable only by this user).
    pub fn folder(dir: PathBuf, from: &str, public_url: &str) -> Result<Self, MailError> {
        Ok(Self {
            transport: Transport::Folder(dir),
            from: sender(from)?,
            public_url: trim_url(public_url),
        })
    }

    /// For the banner: where mails go.
    pub fn describe(&self) -> String {
        match &self.transport {
            Transport::Smtp { server, .. } => format!("SMTP via {server}"),
            Transport::Folder(dir) => format!("written to {} (no TERN_SMTP_URL set)", dir.display()),
        }
    }

    /// The folder mails are written to, when there is no SMTP server.
    pub fn folder_path(&self) -> Option<&Path> {
        match &self.transport {
            Transport::Folder(dir) => Some(dir),
            Transport::Smtp { .. } => None,
        }
    }

    /// An absolute link to `path` (which starts with `/`) on the public URL.
    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.public_url)
    }

    /// Sends (or writes) the mail and notes it in the outbox, sent or failed.
    pub async fn send(&self, store: &dyn Store, mail: Mail) -> Result<(), MailError> {
        let outcome = self.deliver(&mail).await;
        let note = NewMail {
            tenant_id: mail.tenant_id.clone(),
            recipient: mail.to.clone(),
            kind: mail.kind.to_owned(),
            subject: mail.subject.clone(),
            transport: match self.transport {
                Transport::Smtp { .. } => "smtp".into(),
                Transport::Folder(_) => "file".into(),
            },
            status: if outcome.is_ok() {
                "sent".into()
            } else {
                "failed".into()
            },
            error: outcome.as_ref().err().map(ToString::to_string).unwrap_or_default(),
        };
        if let Err(e) = store.record_mail(&note, now_ms()).await {
            tracing::warn!(error = %e, kind = mail.kind, "could not note a mail in the outbox");
        }
        if let Err(e) = &outcome {
            tracing::warn!(error = %e, kind = mail.kind, "mail not sent");
        }
        outcome
    }

    async fn deliver(&self, mail: &Mail) -> Result<(), MailError> {
        let to = mail
            .to
            .parse::<Mailbox>()
            .map_err(|e| MailError::Send(format!("{:?} is not a mail address: {e}", mail.to)))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|e| MailError::Send(e.to_string()))?;
        match &self.transport {
            Transport::Smtp { transport, .. } => transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Send(e.to_string())),
            Transport::Folder(dir) => {
                let name = format!("{}-{}-{:08x}.eml", now_ms(), mail.kind, rand::random::<u32>());
                let path = dir.join(name);
                let dir = dir.clone();
                let bytes = message.formatted();
                tokio::task::spawn_blocking(move || write_private(&dir, &path, &bytes))
                    .await
                    .map_err(|e| MailError::Send(e.to_string()))?
                    .map_err(|e| MailError::Send(format!("writing to the mail folder: {e}")))
            }
        }
    }
}

fn write_private(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    std::fs::write(path, bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_and_the_banner_hides_credentials() {
        let m = Mailer::smtp(
            "smtp://user:pw@mail.example.com:2525",
            "Tern <tern@example.com>",
            "https://x/",
        )
        .unwrap();
        assert_eq!(m.describe(), "SMTP via mail.example.com:2525");
        assert_eq!(m.link("/console/verify"), "https://x/console/verify");
        assert!(matches!(
            Mailer::smtp("http://nope", "tern@example.com", "http://x"),
            Err(MailError::Config(_))
        ));
        assert!(matches!(
            Mailer::folder("/tmp/m".into(), "not an address", "http://x"),
            Err(MailError::Config(_))
        ));
    }
}
