//! What every page shows around its content (`Chrome`: who is signed in, where they are,
//! the CSRF token the forms carry) and the formatting the pages share.

use tern_platform::domain::{App, UnixMillis};
use tern_platform::service::console::Viewer;

use crate::auth::TenantScope;
use crate::BASE;

/// The frame of every signed-in page.
pub struct Chrome {
    pub base: &'static str,
    pub title: String,
    pub email: String,
    pub operator: bool,
    /// Put in every form and in htmx's request headers.
    pub csrf: String,
    pub tenant: Option<TenantNav>,
    pub app: Option<AppNav>,
    /// Which tab of the app is open (`app`, `users`, `messages`, `push`, `webhooks`, `usage`).
    pub tab: &'static str,
    /// A line saying what the last change did.
    pub notice: Option<String>,
}

pub struct TenantNav {
    pub id: String,
    pub name: String,
    pub role: String,
    pub status: String,
}

pub struct AppNav {
    pub id: String,
    pub name: String,
}

impl Chrome {
    pub fn new(viewer: &Viewer, title: impl Into<String>) -> Self {
        Self {
            base: BASE,
            title: title.into(),
            email: viewer.account.email.clone(),
            operator: viewer.account.operator,
            csrf: viewer.session.csrf_token.clone(),
            tenant: None,
            app: None,
            tab: "",
            notice: None,
        }
    }

    pub fn in_tenant(mut self, scope: &TenantScope) -> Self {
        self.tenant = Some(TenantNav {
            id: scope.tenant.id.to_string(),
            name: scope.tenant.name.clone(),
            role: if self.operator {
                "operator".to_owned()
            } else {
                scope.role.as_str().to_owned()
            },
            status: scope.tenant.status.as_str().to_owned(),
        });
        self
    }

    pub fn in_app(mut self, app: &App, tab: &'static str) -> Self {
        self.app = Some(AppNav {
            id: app.id.to_string(),
            name: app.name.clone(),
        });
        self.tab = tab;
        self
    }

    pub fn notice(mut self, notice: Option<String>) -> Self {
        self.notice = notice;
        self
    }

    /// `/console/t/{tenant}`.
    pub fn tenant_url(&self) -> String {
        match &self.tenant {
            Some(t) => format!("{BASE}/t/{}", t.id),
            None => format!("{BASE}/tenants"),
        }
    }

    /// `/console/t/{tenant}/apps/{app}`.
    pub fn app_url(&self) -> String {
        match &self.app {
            Some(a) => format!("{}/apps/{}", self.tenant_url(), a.id),
            None => self.tenant_url(),
        }
    }
}

/// A time as `2026-12-06 02:18:29 UTC`.
pub fn when(ms: UnixMillis) -> String {
    match time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => ms.to_string(),
    }
}

/// `when`, or `fallback` for none.
pub fn when_or(ms: Option<UnixMillis>, fallback: &str) -> String {
    ms.map(when).unwrap_or_else(|| fallback.to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_shown_in_utc() {
        assert_eq!(super::when(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::when(1_796_523_509_000), "2026-12-06 02:18:29 UTC");
        assert_eq!(super::when_or(None, "never"), "never");
    }
}
