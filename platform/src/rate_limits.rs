//! The rate-limit port: every budget a door or the pipeline enforces (an app's server API
//! writes and reads, a user's sends over the WebSocket, a room's sends) is asked of one
//! `RateLimits`, so a node-spanning adapter (Redis) can later replace the in-process one
//! without any door changing.
//!
//! `LocalRateLimits` is the in-process adapter: one `governor` limiter per key, kept in a
//! size-bounded `quick_cache` (past `MAX_KEYS` the least used keys go first; a limiter idle
//! for a second is full again anyway, so dropping it changes no answer). It is asked once
//! per request or send, so it is a cache that costs a read lock and a reference bit per
//! hit rather than one that keeps usage bookkeeping.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::delivery::DeliveryError;
use crate::domain::App;
use crate::ids::{AppId, RoomId, UserId};

/// What a budget is for. Each key has its own budget; the rate comes with every check, so a
/// change to an app's settings takes effect at the next check.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RateKey {
    /// The app's writes through the server API (REST and gRPC).
    AppWrites(AppId),
    /// The app's reads through the server API.
    AppReads(AppId),
    /// One user's sends through the WebSocket.
    UserSends(AppId, UserId),
    /// Sends into one room, from any door.
    RoomSends(AppId, RoomId),
}

/// Over the budget: the next request fits after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("rate limited; retry after {retry_after:?}")]
pub struct RateLimited {
    pub retry_after: Duration,
}

impl RateLimited {
    /// Whole seconds to wait, rounded up (the server API's `Retry-After`).
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0)
    }

    /// Milliseconds to wait, at least 1.
    pub fn retry_after_ms(&self) -> u64 {
        u64::try_from(self.retry_after.as_millis()).unwrap_or(u64::MAX).max(1)
    }
}

impl From<RateLimited> for DeliveryError {
    fn from(e: RateLimited) -> Self {
        DeliveryError::RateLimited {
            retry_after_ms: e.retry_after_ms(),
        }
    }
}

/// The port. Object safe; one per node (`Ports::rate_limits`), shared by every door.
#[async_trait]
pub trait RateLimits: Send + Sync {
    /// Takes one request from `key`'s budget of `per_second` (0 counts as 1); the burst is
    /// one second's worth.
    async fn check(&self, key: RateKey, per_second: u32) -> Result<(), RateLimited>;
    /// Drops `key`'s budget on this node (it starts full at its next check). A budget held
    /// outside the node (Redis) expires by itself instead.
    fn forget(&self, key: &RateKey);
}

/// Takes one server API request of `app` from its write or read budget.
pub async fn check_api_rate(limits: &dyn RateLimits, app: &App, write: bool) -> Result<(), RateLimited> {
    if write {
        limits
            .check(RateKey::AppWrites(app.id.clone()), app.settings.write_rate_per_second)
            .await
    } else {
        limits
            .check(RateKey::AppReads(app.id.clone()), app.settings.read_rate_per_second)
            .await
    }
}

/// Takes one WebSocket send of `user` from their budget (`user_send_rate_per_second`).
pub async fn check_user_send_rate(limits: &dyn RateLimits, app: &App, user: &UserId) -> Result<(), RateLimited> {
    limits
        .check(
            RateKey::UserSends(app.id.clone(), user.clone()),
            app.settings.user_send_rate_per_second,
        )
        .await
}

/// Takes one send into `room` from its budget (`room_send_rate_per_second`).
pub async fn check_room_send_rate(limits: &dyn RateLimits, app: &App, room: &RoomId) -> Result<(), RateLimited> {
    limits
        .check(
            RateKey::RoomSends(app.id.clone(), room.clone()),
            app.settings.room_send_rate_per_second,
        )
        .await
}

/// Most keys one node keeps; past it the least used go first.
const MAX_KEYS: usize = 1_000_000;

/// One key's limiter, and the rate it was made for.
struct Budget {
    per_second: u32,
    limiter: DefaultDirectRateLimiter,
}

impl Budget {
    fn new(per_second: u32) -> Self {
        let quota = Quota::per_second(NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN));
        Self {
            per_second,
            limiter: RateLimiter::direct(quota),
        }
    }
}

/// The in-process adapter: budgets on this node only.
pub struct LocalRateLimits {
    budgets: quick_cache::sync::Cache<RateKey, Arc<Budget>>,
}

impl Default for LocalRateLimits {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalRateLimits {
    pub fn new() -> Self {
        Self {
            budgets: quick_cache::sync::Cache::new(MAX_KEYS),
        }
    }
}

#[async_trait]
impl RateLimits for LocalRateLimits {
    async fn check(&self, key: RateKey, per_second: u32) -> Result<(), RateLimited> {
        let Ok(mut budget) = self.budgets.get_or_insert_with(&key, || {
            Ok::<_, std::convert::Infallible>(Arc::new(Budget::new(per_second)))
        });
        if budget.per_second != per_second {
            // The app changed the setting: start over at the new rate.
            budget = Arc::new(Budget::new(per_second));
            self.budgets.insert(key, budget.clone());
        }
        budget.limiter.check().map_err(|not_until| RateLimited {
            retry_after: not_until.wait_time_from(DefaultClock::default().now()),
        })
    }

    fn forget(&self, key: &RateKey) {
        self.budgets.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AppSettings, AppStatus};
    use crate::ids::{AppKey, TenantId};

    fn app(rate: u32) -> App {
        App {
            id: AppId::generate(),
            tenant_id: TenantId::generate(),
            name: "a".into(),
            app_key: AppKey::generate(),
            status: AppStatus::Active,
            settings: AppSettings {
                write_rate_per_second: rate,
                read_rate_per_second: rate * 2,
                ..Default::default()
            },
            created_at: 0,
        }
    }

    #[tokio::test]
    async fn writes_past_the_rate_are_refused_with_a_wait() {
        let l = LocalRateLimits::new();
        let a = app(5);
        let mut ok = 0;
        for _ in 0..20 {
            ok += usize::from(check_api_rate(&l, &a, true).await.is_ok());
        }
        assert!((5..20).contains(&ok), "{ok}");
        let refused = check_api_rate(&l, &a, true).await.unwrap_err();
        assert!(refused.retry_after_secs() >= 1);
        assert!(refused.retry_after_ms() >= 1);
        // Reads have their own budget, and other apps are unaffected.
        assert!(check_api_rate(&l, &a, false).await.is_ok());
        assert!(check_api_rate(&l, &app(5), true).await.is_ok());
    }

    #[tokio::test]
    async fn a_new_rate_or_a_forgotten_key_starts_full() {
        let l = LocalRateLimits::new();
        let key = RateKey::RoomSends(AppId::generate(), RoomId::parse("r1").unwrap());
        assert!(l.check(key.clone(), 1).await.is_ok());
        assert!(l.check(key.clone(), 1).await.is_err());
        assert!(l.check(key.clone(), 2).await.is_ok());
        l.forget(&key);
        assert!(l.check(key, 2).await.is_ok());
    }

    #[tokio::test]
    async fn a_zero_rate_counts_as_one() {
        let l = LocalRateLimits::new();
        let key = RateKey::UserSends(AppId::generate(), UserId::parse("u").unwrap());
        assert!(l.check(key.clone(), 0).await.is_ok());
        assert!(l.check(key, 0).await.is_err());
    }
}
