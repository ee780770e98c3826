//! The app's view of its after-event webhooks: the events given up, and redelivery.

use crate::delivery::Pipeline;
use crate::domain::{App, UnixMillis};
use crate::store::{OutboxEvent, StoreResult};

/// After-events that failed for 24 hours and were given up, by id after `after`.
pub async fn dead_events(p: &Pipeline, app: &App, after: Option<&str>, limit: u32) -> StoreResult<Vec<OutboxEvent>> {
    p.store().dead_events(&app.id, after, limit).await
}

/// Puts a dead event back in the queue, due `now`, and wakes the worker;
/// `NotFound` if the app has no such dead event.
pub async fn redeliver(p: &Pipeline, app: &App, id: &str, now: UnixMillis) -> StoreResult<()> {
    p.store().redeliver_event(&app.id, id, now).await?;
    p.outbox_written(true);
    Ok(())
}
