//! `ConsoleState`: what every console handler needs, as one cheap clone of `Arc`s.

use std::sync::Arc;

use tern_platform::auth::credentials::CredentialCache;
use tern_platform::delivery::Pipeline;
use tern_platform::mail::Mailer;
use tern_platform::push::worker::Pusher;
use tern_platform::secret_box::SecretBox;
use tern_platform::service::signup::SignupPolicy;
use tern_platform::webhook::{HttpBeforeSendHook, TestSender};

use crate::auth::LoginLimiter;

#[derive(Clone)]
pub struct ConsoleState(Arc<ConsoleInner>);

pub struct ConsoleInner {
    /// The engine's pipeline: every operation of `tern_platform::service` takes it.
    pub pipeline: Arc<Pipeline>,
    /// Seals new secrets (app creation, rotation) under the master key.
    pub secrets: SecretBox,
    /// The server API's credential cache: dropped for an app whose secrets or status change,
    /// so the change holds on this node at once.
    pub credentials: Arc<CredentialCache>,
    /// Whether webhook URLs may point at private addresses (`TERN_WEBHOOK_ALLOW_PRIVATE`).
    pub webhook_allow_private: bool,
    /// The operator's ceiling on an app's own API rates (`TERN_MAX_APP_RATE_LIMIT`).
    pub max_app_rate_per_second: u32,
    /// Mark the session cookie `Secure` on every answer, not only behind an HTTPS proxy.
    pub secure_cookies: bool,
    pub login_limiter: LoginLimiter,
    /// Sign-up, verification, decisions on tenants and invitations go out through it.
    pub mailer: Arc<Mailer>,
    /// Whether the public may sign up, and whether an operator approves new tenants.
    pub signup: SignupPolicy,
    /// Sign-ups allowed per client address (the same one-minute windows as sign-in).
    pub signup_limiter: LoginLimiter,
    /// Sends test pushes (the engine's pusher, the one the server API's test push uses).
    pub pusher: Arc<Pusher>,
    /// The engine's before-send hook: its circuit breaker is shown on the webhooks page.
    pub before_send: Arc<HttpBeforeSendHook>,
    /// Sends "test events" to an app's webhook endpoint.
    pub webhook_test: Arc<TestSender>,
    /// Wakes the broadcast worker when a broadcast starts.
    pub broadcast_wake: Arc<tokio::sync::Notify>,
}

impl std::ops::Deref for ConsoleState {
    type Target = ConsoleInner;
    fn deref(&self) -> &ConsoleInner {
        &self.0
    }
}

impl ConsoleState {
    /// The console's view of a node's engine, sending mail through `mailer`.
    pub fn from_engine(e: &tern_platform::engine::Engine, mailer: Arc<Mailer>) -> Self {
        Self(Arc::new(ConsoleInner {
            pipeline: e.pipeline.clone(),
            secrets: e.secrets.clone(),
            credentials: e.request_verifier.credentials().clone(),
            webhook_allow_private: e.config.webhook_allow_private,
            max_app_rate_per_second: tern_platform::domain::DEFAULT_MAX_APP_RATE_PER_SECOND,
            secure_cookies: false,
            login_limiter: LoginLimiter::default(),
            mailer,
            signup: SignupPolicy::default(),
            signup_limiter: LoginLimiter::default(),
            pusher: e.pusher.clone(),
            before_send: e.before_send.clone(),
            webhook_test: e.webhook_test.clone(),
            broadcast_wake: e.broadcast_wake.clone(),
        }))
    }

    /// Builder-style tweaks, before the state is shared.
    pub fn with(self, f: impl FnOnce(&mut ConsoleInner)) -> Self {
        match Arc::try_unwrap(self.0) {
            Ok(mut inner) => {
                f(&mut inner);
                Self(Arc::new(inner))
            }
            Err(shared) => Self(shared),
        }
    }
}
