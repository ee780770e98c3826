//! An app's push delivery log (docs/push.md): every attempt to push to a device with the
//! provider's answer, newest first, filtered by user, device or message and paged by log id;
//! with a user chosen, their devices, each with a "send test push" button that shows what
//! the provider answered (the platform's `push::test_push`, the REST door's operation).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use tern_platform::domain::{ConsoleRole, PushDevice, PushLogEntry, PushLogFilter, PushOutcome};
use tern_platform::error::DeliveryError;
use tern_platform::ids::{DeviceId, MsgId, UserId};
use tern_platform::push;

use super::audit;
use super::users::percent;
use crate::auth::{app_scope, Auth, Posted};
use crate::error::{html, PageError};
use crate::state::ConsoleState;
use crate::views::{when, Chrome};

/// Log lines per page.
const PAGE: u32 = 50;
/// Characters of a device token shown (the whole one is in the device's `title`).
const TOKEN_CHARS: usize = 16;

pub struct LogRow {
    pub at: String,
    pub user: String,
    pub device: String,
    pub msg: String,
    pub provider: &'static str,
    pub outcome: &'static str,
    /// The outcome is a failure (shown in warning colours).
    pub bad: bool,
    /// The provider answered (an HTTP status); otherwise the network or a local error failed.
    pub reached: bool,
    pub http_status: String,
    pub reason: String,
    pub provider_id: String,
    pub latency_ms: i64,
    pub attempt: i32,
}

impl From<PushLogEntry> for LogRow {
    fn from(l: PushLogEntry) -> Self {
        Self {
            at: when(l.at),
            user: l.user_id.to_string(),
            device: l.device_id.to_string(),
            msg: l.msg_id.map(|m| m.to_string()).unwrap_or_default(),
            provider: l.provider.as_str(),
            outcome: l.outcome.as_str(),
            bad: l.outcome != PushOutcome::Sent,
            reached: l.http_status != 0,
            http_status: if l.http_status == 0 {
                "—".into()
            } else {
                l.http_status.to_string()
            },
            reason: l.reason.unwrap_or_default(),
            provider_id: l.provider_id.unwrap_or_default(),
            latency_ms: l.latency_ms,
            attempt: l.attempt,
        }
    }
}

pub struct DeviceRow {
    pub id: String,
    pub provider: &'static str,
    pub token: String,
    pub short_token: String,
    pub environment: &'static str,
    pub locale: String,
    pub registered: String,
}

impl From<PushDevice> for DeviceRow {
    fn from(d: PushDevice) -> Self {
        let token = d.token.as_str().to_owned();
        let short_token = if token.chars().count() > TOKEN_CHARS {
            format!("{}…", token.chars().take(TOKEN_CHARS).collect::<String>())
        } else {
            token.clone()
        };
        Self {
            id: d.id.to_string(),
            provider: d.provider.as_str(),
            token,
            short_token,
            environment: d.environment.as_str(),
            locale: d.locale.unwrap_or_default(),
            registered: when(d.created_at),
        }
    }
}

/// What a test push came to: the provider's answer (its log line), or why nothing was sent.
pub struct TestResult {
    pub device: String,
    pub row: Option<LogRow>,
    pub why: String,
}

#[derive(Template)]
#[template(path = "push.html")]
struct PushPage {
    chrome: Chrome,
    user: String,
    device: String,
    msg: String,
    /// The filters as a URL query (`user=..&device=..&msg=..`), for the next page's link.
    query: String,
    rows: Vec<LogRow>,
    next: Option<String>,
    /// `Some` when a user is chosen: their devices (empty: none registered).
    devices: Option<Vec<DeviceRow>>,
    can_test: bool,
    test: Option<TestResult>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct LogQuery {
    user: Option<String>,
    device: Option<String>,
    msg: Option<String>,
    /// The last log id of the previous page.
    before: Option<String>,
}

#[derive(Deserialize)]
pub struct TestForm {
    user: String,
    device: String,
}

fn trimmed(v: Option<&str>) -> String {
    v.unwrap_or_default().trim().to_owned()
}

/// The filters parsed; a malformed one says which.
fn filter_of(user: &str, device: &str, msg: &str, before: Option<&str>) -> Result<PushLogFilter, String> {
    let opt = |s: &str| (!s.is_empty()).then_some(s.to_owned());
    Ok(PushLogFilter {
        user_id: opt(user)
            .map(|u| UserId::parse(&u).map_err(|_| format!("“{u}” is not a user id.")))
            .transpose()?,
        device_id: opt(device)
            .map(|d| DeviceId::parse(&d).map_err(|_| format!("“{d}” is not a device id (dev_…).")))
            .transpose()?,
        msg_id: opt(msg)
            .map(|m| MsgId::parse(&m).map_err(|_| format!("“{m}” is not a message id.")))
            .transpose()?,
        // Log ids are `pl_` and a ULID; anything else would only page nowhere.
        before: match before.map(str::trim).filter(|b| !b.is_empty()) {
            None => None,
            Some(b) if b.starts_with("pl_") && b.len() == 29 && b.is_ascii() => Some(b.to_owned()),
            Some(_) => return Err("That page link is malformed.".into()),
        },
    })
}

/// Builds the page for these filters (and a test push's result); answers 400 when a filter
/// does not parse.
async fn page(
    st: &ConsoleState,
    auth: &Auth,
    tenant: &str,
    app: &str,
    q: LogQuery,
    test: Option<TestResult>,
) -> Result<Response, PageError> {
    let (scope, app) = app_scope(st, &auth.viewer, tenant, app).await?;
    let chrome = Chrome::new(&auth.viewer, format!("Push log of {}", app.name))
        .in_tenant(&scope)
        .in_app(&app, "push");
    let (user, device, msg) = (
        trimmed(q.user.as_deref()),
        trimmed(q.device.as_deref()),
        trimmed(q.msg.as_deref()),
    );
    let query = format!(
        "user={}&device={}&msg={}",
        percent(&user),
        percent(&device),
        percent(&msg)
    );
    let mut page = PushPage {
        chrome,
        user,
        device,
        msg,
        query,
        rows: Vec::new(),
        next: None,
        devices: None,
        can_test: scope.role >= ConsoleRole::Developer,
        test,
        error: None,
    };
    let filter = match filter_of(&page.user, &page.device, &page.msg, q.before.as_deref()) {
        Ok(f) => f,
        Err(e) => {
            page.error = Some(e);
            let mut r = html(page);
            *r.status_mut() = StatusCode::BAD_REQUEST;
            return Ok(r);
        }
    };
    if let Some(user) = &filter.user_id {
        page.devices = Some(match push::devices(&st.pipeline, &app, user).await {
            Ok(list) => list.into_iter().map(DeviceRow::from).collect(),
            // A user removed since: their log stays, they have no devices.
            Err(DeliveryError::NotFound(_)) => Vec::new(),
            Err(e) => return Err(e.into()),
        });
    }
    let entries = push::log(&st.pipeline, &app, &filter, PAGE).await?;
    page.next = (entries.len() as u32 == PAGE)
        .then(|| entries.last().map(|l| l.id.clone()))
        .flatten();
    page.rows = entries.into_iter().map(LogRow::from).collect();
    Ok(html(page))
}

pub async fn show(
    State(st): State<ConsoleState>,
    auth: Auth,
    Path((tenant, app)): Path<(String, String)>,
    Query(q): Query<LogQuery>,
) -> Result<Response, PageError> {
    page(&st, &auth, &tenant, &app, q, None).await
}

/// Sends a test push to one device of a user and shows the page with the provider's answer
/// at the top (it is also the newest line of the log). Nothing to repeat on a reload but a
/// test notification, so the answer is the page itself rather than a redirect.
pub async fn test(
    State(st): State<ConsoleState>,
    Path((tenant, app_raw)): Path<(String, String)>,
    posted: Posted<TestForm>,
) -> Result<Response, PageError> {
    let auth = &posted.auth;
    let (scope, app) = app_scope(&st, &auth.viewer, &tenant, &app_raw).await?;
    scope.require(ConsoleRole::Developer, "Sending a test push")?;
    let form = &posted.form;
    let user = UserId::parse(form.user.trim()).map_err(|_| PageError::NotFound)?;
    let device = DeviceId::parse(form.device.trim()).map_err(|_| PageError::NotFound)?;
    let result = match push::test_push(&st.pusher, &app, &user, &device).await {
        Ok(entry) => TestResult {
            device: device.to_string(),
            row: Some(entry.into()),
            why: String::new(),
        },
        Err(DeliveryError::NotFound(_)) => return Err(PageError::NotFound),
        Err(e @ (DeliveryError::Unavailable(_) | DeliveryError::Internal(_))) => return Err(e.into()),
        Err(e) => TestResult {
            device: device.to_string(),
            row: None,
            why: e.to_string(),
        },
    };
    audit(
        &st,
        auth,
        None,
        Some(&app),
        "app.push.test",
        device.as_str(),
        match &result.row {
            Some(row) => format!("user {user}: {} {}", row.outcome, row.http_status),
            None => format!("user {user}: not sent: {}", result.why),
        },
    )
    .await?;
    let q = LogQuery {
        user: Some(user.to_string()),
        ..LogQuery::default()
    };
    page(&st, auth, &tenant, &app_raw, q, Some(result)).await
}

#[cfg(test)]
mod tests {
    use super::filter_of;

    #[test]
    fn filters_are_checked_and_say_which_one_is_wrong() {
        let f = filter_of("bob", "", "", None).unwrap();
        assert_eq!(f.user_id.unwrap().as_str(), "bob");
        assert!(f.device_id.is_none() && f.msg_id.is_none() && f.before.is_none());
        assert!(filter_of("bad id", "", "", None).unwrap_err().contains("user id"));
        assert!(filter_of("", "phone", "", None).unwrap_err().contains("device id"));
        assert!(filter_of("", "", "not a msg", None).unwrap_err().contains("message id"));
        assert!(filter_of("", "", "", Some("x' or 1=1")).is_err());
        let ok = filter_of("", "", "", Some("pl_01jz000000000000000000000a")).unwrap();
        assert_eq!(ok.before.as_deref(), Some("pl_01jz000000000000000000000a"));
    }
}
