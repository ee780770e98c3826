//! The ports one node runs on, chosen once at start and handed to `Engine::with_ports`: the
//! store, the bus, presence and routing, the nonce record, the rate limits, the clock and
//! the file store. `Ports::in_process`
//! fills every port but the store with its in-process adapter (one process, no servers);
//! the binary's `adapters` module picks adapters from configuration, so the engine never
//! decides where its ports live.

use std::sync::Arc;

use crate::bus::memory::MemoryBus;
use crate::bus::Bus;
use crate::clock::{Clock, SystemClock};
use crate::files::FileStore;
use crate::nonce::{MemoryNonceStore, NonceStore};
use crate::presence::{MemoryPresence, Presence};
use crate::rate_limits::{LocalRateLimits, RateLimits};
use crate::store::Store;

/// The adapters behind each port of one node. Cheap to clone: every field is shared.
#[derive(Clone)]
pub struct Ports {
    pub store: Arc<dyn Store>,
    /// Carries deliveries to the nodes holding their recipients.
    pub bus: Arc<dyn Bus>,
    /// Presence and routing: which node holds which user's sessions, who is in which room.
    pub presence: Arc<dyn Presence>,
    /// The record of signed requests' nonces (replay protection).
    pub nonces: Arc<dyn NonceStore>,
    /// Every rate budget (an app's API rate, a user's sends, a room's sends).
    pub rate_limits: Arc<dyn RateLimits>,
    pub clock: Arc<dyn Clock>,
    /// Where files' bytes live (a local directory, S3; memory by default).
    pub files: Arc<dyn FileStore>,
}

impl Ports {
    /// `store` with the in-process bus, presence, nonce record, rate limits and the system
    /// clock.
    pub fn in_process(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            bus: Arc::new(MemoryBus::new()),
            presence: Arc::new(MemoryPresence::new()),
            nonces: Arc::new(MemoryNonceStore::new()),
            rate_limits: Arc::new(LocalRateLimits::new()),
            clock: Arc::new(SystemClock),
            files: crate::files::memory::open(),
        }
    }

    /// The same ports with files kept in `files`.
    pub fn with_files(mut self, files: Arc<dyn FileStore>) -> Self {
        self.files = files;
        self
    }

    /// The same ports on another clock (tests that move time by hand).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ports")
            .field("store", &self.store.backend())
            .finish_non_exhaustive()
    }
}
