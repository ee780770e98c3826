//! An app's webhook configuration as a person or a program writes it (names, not enums),
//! and the one validation that turns it into [`WebhookSettings`]. The server API
//! (`PUT /v1/webhook`) and the CLI (`tern webhook set`) both go through [`parse_spec`], so
//! they accept and refuse exactly the same things with the same messages.

use crate::domain::{BeforeSendSettings, FailurePolicy, MessageType, Source, WebhookSettings};

use super::client::validate_webhook_url;

/// After-events Tern can deliver (SIGNING.md §3).
pub const EVENT_TYPES: &[&str] = &[
    "message.sent",
    "message.recalled",
    "message.edited",
    "user.online",
    "user.offline",
    "user.kicked",
    "group.created",
    "group.updated",
    "group.dismissed",
    "group.member_added",
    "group.member_removed",
    "friend.added",
    "friend.removed",
    // rooms and broadcasts
    "room.created",
    "room.updated",
    "room.dismissed",
    "broadcast.finished",
];

/// The default before-send timeout, and its bounds.
pub const DEFAULT_TIMEOUT_MS: u64 = 1500;
pub const MIN_TIMEOUT_MS: u64 = 100;
pub const MAX_TIMEOUT_MS: u64 = 5000;

/// The webhook configuration in its written form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSpec {
    /// The endpoint; `None` turns webhooks off.
    pub url: Option<String>,
    /// After-events to deliver; empty: all.
    pub events: Vec<String>,
    /// `None`: the hook off, with default settings.
    pub before_send: Option<BeforeSendSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeforeSendSpec {
    pub enabled: bool,
    /// `sdk`, `server_api`; empty: both.
    pub sources: Vec<String>,
    /// Message types the hook sees; empty: all.
    pub types: Vec<String>,
    pub timeout_ms: u64,
    /// `fail_open` or `fail_closed`.
    pub policy: String,
}

impl Default for BeforeSendSpec {
    fn default() -> Self {
        Self {
            enabled: false,
            sources: Vec::new(),
            types: Vec::new(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            policy: "fail_open".into(),
        }
    }
}

/// Why a configuration was refused; the message names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidWebhookConfig(pub String);

fn invalid(msg: impl Into<String>) -> InvalidWebhookConfig {
    InvalidWebhookConfig(msg.into())
}

/// Validates a written configuration. The URL must resolve to a public address unless
/// `allow_private` (the operator's `TERN_WEBHOOK_ALLOW_PRIVATE=1`).
pub async fn parse_spec(spec: WebhookSpec, allow_private: bool) -> Result<WebhookSettings, InvalidWebhookConfig> {
    if let Some(url) = &spec.url {
        validate_webhook_url(url, allow_private)
            .await
            .map_err(|e| invalid(format!("url: {e}")))?;
    }
    settings_of(spec)
}

/// Every check of [`parse_spec`] but the URL's (which resolves its host): the events and
/// the before-send hook. `parse_spec` is this after the URL has passed.
pub fn settings_of(spec: WebhookSpec) -> Result<WebhookSettings, InvalidWebhookConfig> {
    for e in &spec.events {
        if !EVENT_TYPES.contains(&e.as_str()) {
            return Err(invalid(format!("unknown event {e:?}")));
        }
    }
    let before_send = match spec.before_send {
        None => BeforeSendSettings::default(),
        Some(b) => parse_before_send(b)?,
    };
    if before_send.enabled && spec.url.is_none() {
        return Err(invalid("before_send needs a url"));
    }
    Ok(WebhookSettings {
        url: spec.url,
        events: spec.events,
        before_send,
    })
}

fn parse_before_send(b: BeforeSendSpec) -> Result<BeforeSendSettings, InvalidWebhookConfig> {
    if !(MIN_TIMEOUT_MS..=MAX_TIMEOUT_MS).contains(&b.timeout_ms) {
        return Err(invalid(format!(
            "before_send.timeout_ms must be from {MIN_TIMEOUT_MS} to {MAX_TIMEOUT_MS}"
        )));
    }
    let sources = b
        .sources
        .iter()
        .map(|s| match s.as_str() {
            "sdk" => Ok(Source::Sdk),
            "server_api" => Ok(Source::ServerApi),
            _ => Err(invalid(format!("unknown before_send source {s:?}"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let types = b
        .types
        .iter()
        .map(|t| MessageType::parse_sendable(t).ok_or_else(|| invalid(format!("unknown message type {t:?}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let policy = match b.policy.as_str() {
        "fail_open" => FailurePolicy::FailOpen,
        "fail_closed" => FailurePolicy::FailClosed,
        p => return Err(invalid(format!("unknown policy {p:?}: fail_open or fail_closed"))),
    };
    Ok(BeforeSendSettings {
        enabled: b.enabled,
        sources,
        types,
        timeout_ms: b.timeout_ms,
        policy,
    })
}

/// The written form of stored settings (what `GET /v1/webhook` and `tern webhook show` print).
/// A URL with credentials (refused today, perhaps stored earlier) is shown redacted.
pub fn spec_of(w: &WebhookSettings) -> WebhookSpec {
    let b = &w.before_send;
    WebhookSpec {
        url: w.url.as_deref().map(super::client::url_for_display),
        events: w.events.clone(),
        before_send: Some(BeforeSendSpec {
            enabled: b.enabled,
            sources: b
                .sources
                .iter()
                .map(|s| match s {
                    Source::Sdk => "sdk".to_owned(),
                    Source::ServerApi => "server_api".to_owned(),
                })
                .collect(),
            types: b.types.iter().map(|t| t.as_str().to_owned()).collect(),
            timeout_ms: b.timeout_ms,
            policy: match b.policy {
                FailurePolicy::FailOpen => "fail_open".to_owned(),
                FailurePolicy::FailClosed => "fail_closed".to_owned(),
            },
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn spec(url: Option<&str>) -> WebhookSpec {
        WebhookSpec {
            url: url.map(str::to_owned),
            events: Vec::new(),
            before_send: None,
        }
    }

    #[tokio::test]
    async fn a_valid_spec_round_trips() {
        let s = WebhookSpec {
            url: Some("http://127.0.0.1:9/hook".into()),
            events: vec!["message.sent".into()],
            before_send: Some(BeforeSendSpec {
                enabled: true,
                sources: vec!["sdk".into()],
                types: vec!["text".into()],
                timeout_ms: 250,
                policy: "fail_closed".into(),
            }),
        };
        let settings = parse_spec(s.clone(), true).await.unwrap();
        assert_eq!(settings.before_send.policy, FailurePolicy::FailClosed);
        assert_eq!(spec_of(&settings), s);
    }

    #[test]
    fn settings_of_checks_everything_but_the_url_and_never_resolves() {
        // `.invalid` never resolves: only `parse_spec` would look it up (and refuse it).
        let s = WebhookSpec {
            url: Some("https://hooks.example.invalid/tern".into()),
            events: vec!["message.sent".into()],
            before_send: None,
        };
        let settings = settings_of(s.clone()).unwrap();
        assert_eq!(settings.url.as_deref(), Some("https://hooks.example.invalid/tern"));
        assert!(settings_of(WebhookSpec {
            events: vec!["message.exploded".into()],
            ..s
        })
        .unwrap_err()
        .0
        .contains("unknown event"));
        assert!(crate::webhook::check_webhook_url_syntax("https://hooks.example.invalid/tern").is_ok());
        assert!(crate::webhook::check_webhook_url_syntax("https://u:p@example.com/").is_err());
        assert!(crate::webhook::check_webhook_url_syntax("ftp://example.com/").is_err());
    }

    #[tokio::test]
    async fn every_bad_field_is_named() {
        let cases: Vec<(WebhookSpec, &str)> = vec![
            (spec(Some("http://127.0.0.1:9/")), "TERN_WEBHOOK_ALLOW_PRIVATE"),
            (
                WebhookSpec {
                    events: vec!["message.exploded".into()],
                    ..spec(None)
                },
                "unknown event",
            ),
            (
                WebhookSpec {
                    before_send: Some(BeforeSendSpec {
                        timeout_ms: 99,
                        ..Default::default()
                    }),
                    ..spec(None)
                },
                "timeout_ms",
            ),
            (
                WebhookSpec {
                    before_send: Some(BeforeSendSpec {
                        policy: "maybe".into(),
                        ..Default::default()
                    }),
                    ..spec(None)
                },
                "unknown policy",
            ),
            (
                WebhookSpec {
                    before_send: Some(BeforeSendSpec {
                        sources: vec!["fax".into()],
                        ..Default::default()
                    }),
                    ..spec(None)
                },
                "before_send source",
            ),
            (
                WebhookSpec {
                    before_send: Some(BeforeSendSpec {
                        enabled: true,
                        ..Default::default()
                    }),
                    ..spec(None)
                },
                "needs a url",
            ),
        ];
        for (s, needle) in cases {
            let e = parse_spec(s, false).await.unwrap_err();
            assert!(e.0.contains(needle), "{needle:?} not in {e}");
        }
    }
}
