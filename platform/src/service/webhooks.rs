//! The app's view of its after-event webhooks: the events given up, and redelivery.

use crate::delivery::{clamp_limit, DeliveryError, Pipeline};
use crate::domain::{App, UnixMillis};
use crate::store::{OutboxEvent, StoreResult};

use super::paging::{decode_cursor, Page};

/// After-events that failed for 24 hours and were given up, by id after `after` (the
/// console pages by event id).
pub async fn dead_events(p: &Pipeline, app: &App, after: Option<&str>, limit: u32) -> StoreResult<Vec<OutboxEvent>> {
    p.store().dead_events(&app.id, after, limit).await
}

/// A page of the after-events that failed for 24 hours and were given up, by id after the
/// opaque `cursor` (`invalid_argument` if malformed); at most `limit`, clamped as every
/// page is. REST's `GET /v1/webhook/dead-events` and gRPC `Webhooks.ListDeadEvents`.
pub async fn dead_page(
    p: &Pipeline,
    app: &App,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page<OutboxEvent>, DeliveryError> {
    let limit = clamp_limit(limit);
    let after = cursor.map(decode_cursor).transpose()?;
    let list = dead_events(p, app, after.as_deref(), limit).await?;
    Ok(Page::of(list, limit, |e| e.id.clone()))
}

/// Puts a dead event back in the queue, due `now`, and wakes the worker;
/// `NotFound` if the app has no such dead event.
pub async fn redeliver(p: &Pipeline, app: &App, id: &str, now: UnixMillis) -> StoreResult<()> {
    p.store().redeliver_event(&app.id, id, now).await?;
    p.outbox_written(true);
    Ok(())
}
