//! An app's settings, as the app itself changes them (rates, limits, its webhook): one
//! operation for REST's `PATCH /v1/app/settings` and gRPC `Apps.UpdateAppSettings`.

use crate::auth::credentials::CredentialCache;
use crate::delivery::{DeliveryError, Pipeline};
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

/// Applies a patch (a JSON object of setting → value) with every check a door makes, then
/// replaces the settings as [`replace`] does: `invalid_argument` for a setting that is
/// unknown, malformed or out of range, and for a rate above the platform's ceiling
/// `max_rate` that the app was not already allowed.
pub async fn patch(
    p: &Pipeline,
    credentials: &CredentialCache,
    app: &App,
    patch: &serde_json::Value,
    max_rate: u32,
) -> Result<AppSettings, DeliveryError> {
    let settings = app.settings.with_patch(patch).map_err(DeliveryError::InvalidArgument)?;
    settings
        .check_rate_ceiling(&app.settings, max_rate)
        .map_err(DeliveryError::InvalidArgument)?;
    replace(p, credentials, app, &settings).await?;
    Ok(settings)
}

/// The app as stored now (its settings included), for a door that keeps its own copy
/// fresh; `None` once the app is deleted.
pub async fn current(p: &Pipeline, id: &AppId) -> StoreResult<Option<App>> {
    p.store().app(id).await
}
