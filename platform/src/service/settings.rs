//! An app's settings, as the app itself changes them (rates, limits, its webhook).

use crate::auth::credentials::CredentialCache;
use crate::delivery::Pipeline;
use crate::domain::{App, AppSettings};
use crate::ids::AppId;
use crate::store::StoreResult;

/// Replaces the app's settings (already validated) and drops this node's cached copy of the
/// app, so they take effect here at once rather than when the credential cache expires.
pub async fn replace(
    p: &Pipeline,
    credentials: &CredentialCache,
    app: &App,
    settings: &AppSettings,
) -> StoreResult<()> {
    p.store().update_app_settings(&app.id, settings).await?;
    credentials.invalidate(&app.app_key);
    p.announce(crate::bus::Invalidation::App {
        app_key: app.app_key.clone(),
    });
    Ok(())
}

/// The app as stored now (its settings included), for a door that keeps its own copy
/// fresh; `None` once the app is deleted.
pub async fn current(p: &Pipeline, id: &AppId) -> StoreResult<Option<App>> {
    p.store().app(id).await
}
