//! The apps of this node's sessions, shared and kept fresh.
//!
//! A session used to keep the `App` it logged in with for as long as it lived, so a
//! settings change (a lower send rate, a smaller text limit, friendship required) never
//! reached connections already open. Now every session of an app holds the same
//! `Arc<App>` from this cache and asks it again before each command: within `max_age` of
//! the last check that is a map lookup; after it, the first session to ask reloads the app
//! (`tern_platform::service::settings::current`) while the others go on with what they hold.
//! A change announced on the bus (`Ctx::app_changes`, from this node or another) marks the
//! app stale at once, so it reaches open sessions on their next command; a change the bus did
//! not carry (Redis away) still arrives within `max_age` (plus one store read). An idle
//! session costs one pointer, not a copy of the app. The map is a size-bounded `quick_cache`
//! (asked before every command, so a hit must cost no more than a read lock): past
//! `CAPACITY` apps the least used leave it, and a session that still holds one puts it back
//! on its next command.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use quick_cache::sync::Cache;
use tern_platform::delivery::Pipeline;
use tern_platform::domain::App;
use tern_platform::ids::{AppId, AppKey};
use tokio::time::Instant;

/// Most apps kept at once.
const CAPACITY: usize = 100_000;

type Slot = Arc<Mutex<Entry>>;

pub(crate) struct AppCache {
    pipeline: Arc<Pipeline>,
    max_age: Duration,
    entries: Cache<AppId, Slot>,
}

struct Entry {
    app: Arc<App>,
    /// When the app was last read from the store, or a reload of it began.
    checked_at: Instant,
    /// The bus said the app changed: reload on the next ask, whatever `checked_at` says.
    stale: bool,
}

impl Entry {
    fn fresh(&self, max_age: Duration) -> bool {
        !self.stale && self.checked_at.elapsed() < max_age
    }
}

fn lock(slot: &Slot) -> std::sync::MutexGuard<'_, Entry> {
    // Every operation leaves the entry consistent, so a poisoned lock is usable.
    slot.lock().unwrap_or_else(|p| p.into_inner())
}

fn new_slot(app: Arc<App>) -> Slot {
    Arc::new(Mutex::new(Entry {
        app,
        checked_at: Instant::now(),
        stale: false,
    }))
}

impl AppCache {
    pub fn new(pipeline: Arc<Pipeline>, max_age: Duration) -> Self {
        Self {
            pipeline,
            max_age,
            entries: Cache::new(CAPACITY),
        }
    }

    /// The app a session just logged in with, as the node shares it: the cached one while
    /// it is fresh, else `app` (just read by the authenticator), which becomes the cached one.
    pub fn adopt(&self, app: App) -> Arc<App> {
        if let Some(slot) = self.entries.get(&app.id) {
            let mut e = lock(&slot);
            if e.fresh(self.max_age) {
                return e.app.clone();
            }
            if *e.app != app {
                e.app = Arc::new(app);
            }
            e.checked_at = Instant::now();
            e.stale = false;
            return e.app.clone();
        }
        let shared = Arc::new(app);
        // Another session may have put it there since: then theirs is the shared one.
        let Ok(slot) = self.entries.get_or_insert_with(&shared.id, || {
            Ok::<_, std::convert::Infallible>(new_slot(shared.clone()))
        });
        let e = lock(&slot);
        e.app.clone()
    }

    /// The app as this node knows it now (`held` is the caller's copy). A store failure
    /// keeps the known app and is retried after `max_age`.
    pub async fn current(&self, held: &Arc<App>) -> Arc<App> {
        let Ok(slot) = self
            .entries
            .get_or_insert_with(&held.id, || Ok::<_, std::convert::Infallible>(new_slot(held.clone())));
        {
            let mut e = lock(&slot);
            if e.fresh(self.max_age) {
                return e.app.clone();
            }
            // Claim the reload: others see a fresh entry and keep the app they hold
            // until it is done (if this task is dropped mid-way, the next one after
            // `max_age` tries again).
            e.checked_at = Instant::now();
            e.stale = false;
        }
        let loaded = tern_platform::service::settings::current(&self.pipeline, &held.id).await;
        let mut e = lock(&slot);
        match loaded {
            Ok(Some(app)) => {
                if *e.app != app {
                    e.app = Arc::new(app);
                }
                e.checked_at = Instant::now();
            }
            // A deleted app keeps its last known settings until its sessions end.
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(error = %err, app = %held.id, "could not reload app settings; keeping the known ones")
            }
        }
        e.app.clone()
    }

    /// The bus said `app_key`'s settings or status changed (on this node or another):
    /// its sessions reload it on their next command instead of after `max_age`.
    pub fn changed(&self, app_key: &AppKey) {
        for (_, slot) in self.entries.iter() {
            let mut e = lock(&slot);
            if e.app.app_key == *app_key {
                e.stale = true;
            }
        }
    }

    /// Changes were missed (a listener that fell behind): every app is reloaded on its
    /// next ask.
    pub fn all_changed(&self) {
        for (_, slot) in self.entries.iter() {
            lock(&slot).stale = true;
        }
    }
}
