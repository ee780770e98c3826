//! Per-app rate limits for the server API: one limiter for writes and one for reads per
//! app, at the rates in the app's settings. Limiters of apps not seen for ten minutes are
//! dropped, so memory stays proportional to the apps that are active.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tern_platform::domain::App;
use tern_platform::ids::AppId;

const IDLE: Duration = Duration::from_secs(600);

struct Pair {
    rates: (u32, u32),
    write: DefaultDirectRateLimiter,
    read: DefaultDirectRateLimiter,
    last_used: Instant,
}

#[derive(Default, Clone)]
pub struct AppLimiters {
    apps: Arc<Mutex<HashMap<AppId, Arc<Mutex<Pair>>>>>,
}

fn limiter(rate: u32) -> DefaultDirectRateLimiter {
    let r = NonZeroU32::new(rate.max(1)).unwrap_or(NonZeroU32::MIN);
    RateLimiter::direct(Quota::per_second(r))
}

impl AppLimiters {
    /// `Err(seconds to wait)` if the app is over its rate for this kind of request.
    pub fn check(&self, app: &App, write: bool) -> Result<(), u64> {
        let rates = (app.settings.write_rate_per_second, app.settings.read_rate_per_second);
        let pair = {
            let mut apps = self.apps.lock().unwrap_or_else(|p| p.into_inner());
            if apps.len() > 1024 && apps.len().is_power_of_two() {
                let now = Instant::now();
                apps.retain(|_, p| {
                    let p = p.lock().unwrap_or_else(|p| p.into_inner());
                    now.duration_since(p.last_used) < IDLE
                });
            }
            apps.entry(app.id.clone())
                .or_insert_with(|| {
                    Arc::new(Mutex::new(Pair {
                        rates,
                        write: limiter(rates.0),
                        read: limiter(rates.1),
                        last_used: Instant::now(),
                    }))
                })
                .clone()
        };
        let mut p = pair.lock().unwrap_or_else(|p| p.into_inner());
        if p.rates != rates {
            // The app's settings changed: start over at the new rates.
            *p = Pair {
                rates,
                write: limiter(rates.0),
                read: limiter(rates.1),
                last_used: Instant::now(),
            };
        }
        p.last_used = Instant::now();
        let lim = if write { &p.write } else { &p.read };
        lim.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_platform::domain::{AppSettings, AppStatus};
    use tern_platform::ids::{AppKey, TenantId};

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

    #[test]
    fn writes_past_the_rate_are_refused_with_a_wait() {
        let l = AppLimiters::default();
        let a = app(5);
        let ok = (0..20).filter(|_| l.check(&a, true).is_ok()).count();
        assert!((5..20).contains(&ok), "{ok}");
        assert!(l.check(&a, true).unwrap_err() >= 1);
        // Reads have their own budget, and other apps are unaffected.
        assert!(l.check(&a, false).is_ok());
        assert!(l.check(&app(5), true).is_ok());
    }
}
