//! Broadcasts as the server API starts and reads them: a start that wakes the worker, and
//! the jobs a page at a time, around the operations of `crate::broadcasts`.

use tokio::sync::Notify;

use crate::broadcasts::{self, StartBroadcast};
use crate::delivery::{clamp_limit, DeliveryError, Pipeline};
use crate::domain::{App, Broadcast};

use super::paging::{decode_cursor, Page};

/// Starts a broadcast (or answers the job its key started before) and, when the job is
/// new, wakes the broadcast worker `wake` stands for.
pub async fn start(p: &Pipeline, app: &App, req: StartBroadcast, wake: &Notify) -> Result<Broadcast, DeliveryError> {
    Ok(start_or_find(p, app, req, wake).await?.0)
}

/// [`start`], also saying whether the job is new (`false`: its key started it before), for
/// a door that answers a repeat differently.
pub async fn start_or_find(
    p: &Pipeline,
    app: &App,
    req: StartBroadcast,
    wake: &Notify,
) -> Result<(Broadcast, bool), DeliveryError> {
    let (job, created) = broadcasts::start(p, app, req).await?;
    if created {
        wake.notify_one();
    }
    Ok((job, created))
}

/// A page of the app's broadcasts, newest first, before the job a `cursor` names.
pub async fn list_page(
    p: &Pipeline,
    app: &App,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page<Broadcast>, DeliveryError> {
    let before = cursor.map(decode_cursor).transpose()?;
    let limit = clamp_limit(limit);
    let list = broadcasts::list(p, app, before.as_deref(), limit).await?;
    Ok(Page::of(list, limit, |b| b.id.clone()))
}
