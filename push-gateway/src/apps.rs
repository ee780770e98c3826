//! The apps of this node's sessions, shared and kept fresh.
//!
//! A session used to keep the `App` it logged in with for as long as it lived, so a
//! settings change (a lower send rate, a smaller text limit, friendship required) never
//! reached connections already open. Now every session of an app holds the same
//! `Arc<App>` from this cache and asks it again before each command: within `max_age` of
//! the last check that is a map lookup; after it, the first session to ask reloads the app
//! from the store while the others go on with what they hold. A change therefore reaches
//! open sessions within `max_age` (plus one store read), and an idle session costs one
//! pointer, not a copy of the app.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tern_platform::domain::App;
use tern_platform::ids::AppId;
use tern_platform::store::Store;
use tokio::time::Instant;

/// Past this many apps, those no session holds any more are dropped.
const TRIM_AT: usize = 10_000;

pub(crate) struct AppCache {
    store: Arc<dyn Store>,
    max_age: Duration,
    entries: Mutex<HashMap<AppId, Entry>>,
}

struct Entry {
    app: Arc<App>,
    /// When the app was last read from the store, or a reload of it began.
    checked_at: Instant,
}

impl AppCache {
    pub fn new(store: Arc<dyn Store>, max_age: Duration) -> Self {
        Self {
            store,
            max_age,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AppId, Entry>> {
        // Every operation leaves the map consistent, so a poisoned lock is usable.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The app a session just logged in with, as the node shares it: the cached one while
    /// it is fresh, else `app` (just read by the authenticator), which becomes the cached one.
    pub fn adopt(&self, app: App) -> Arc<App> {
        let mut map = self.lock();
        if let Some(e) = map.get_mut(&app.id) {
            if e.checked_at.elapsed() < self.max_age {
                return e.app.clone();
            }
            if *e.app != app {
                e.app = Arc::new(app);
            }
            e.checked_at = Instant::now();
            return e.app.clone();
        }
        if map.len() >= TRIM_AT {
            map.retain(|_, e| Arc::strong_count(&e.app) > 1);
        }
        let shared = Arc::new(app);
        map.insert(
            shared.id.clone(),
            Entry {
                app: shared.clone(),
                checked_at: Instant::now(),
            },
        );
        shared
    }

    /// The app as this node knows it now (`held` is the caller's copy). A store failure
    /// keeps the known app and is retried after `max_age`.
    pub async fn current(&self, held: &Arc<App>) -> Arc<App> {
        {
            let mut map = self.lock();
            let e = map.entry(held.id.clone()).or_insert_with(|| Entry {
                app: held.clone(),
                checked_at: Instant::now(),
            });
            if e.checked_at.elapsed() < self.max_age {
                return e.app.clone();
            }
            // Claim the reload: others see a fresh entry and keep the app they hold
            // until it is done (if this task is dropped mid-way, the next one after
            // `max_age` tries again).
            e.checked_at = Instant::now();
        }
        let loaded = self.store.app(&held.id).await;
        let mut map = self.lock();
        let e = map.entry(held.id.clone()).or_insert_with(|| Entry {
            app: held.clone(),
            checked_at: Instant::now(),
        });
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
}
