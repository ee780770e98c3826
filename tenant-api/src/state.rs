//! `ApiState`: everything a handler needs, as one cheap clone of `Arc`s.

use std::sync::Arc;

use tern_platform::auth::request::RequestVerifier;
use tern_platform::delivery::Pipeline;
use tern_platform::files::{Files, UrlSigner};
use tern_platform::secret_box::SecretBox;
use tern_platform::webhook::before_send::HttpBeforeSendHook;

/// Default request body limit (256 KiB).
pub const DEFAULT_BODY_LIMIT: usize = 256 * 1024;

#[derive(Clone)]
pub struct ApiState(Arc<ApiInner>);

pub struct ApiInner {
    /// The engine's pipeline: the application layer (`tern_platform::service` and the
    /// feature modules) is called with it.
    pub pipeline: Arc<Pipeline>,
    pub secrets: SecretBox,
    pub verifier: Arc<RequestVerifier>,
    /// Wakes the broadcast worker when a broadcast starts (the engine's, on a node that
    /// runs one; otherwise a worker elsewhere finds the job at its next poll).
    pub broadcast_wake: Arc<tokio::sync::Notify>,
    pub body_limit: usize,
    /// Whether webhook URLs may point at private addresses (development and tests).
    pub webhook_allow_private: bool,
    /// The before-send hook, for its breaker state.
    pub before_send: Option<Arc<HttpBeforeSendHook>>,
    /// Sends test pushes (the engine's pusher).
    pub pusher: Option<Arc<tern_platform::push::worker::Pusher>>,
    /// The operator's ceiling on an app's own server API rates (`TERN_MAX_APP_RATE_LIMIT`).
    pub max_app_rate_per_second: u32,
    /// Uploads and downloads (the engine's; a memory file store when built without one).
    pub files: Arc<Files>,
    /// `scheme://host[:port]` in the URLs Tern hands out (`TERN_PUBLIC_URL`); without it,
    /// the request's `Host`.
    pub public_url: Option<String>,
    /// The OpenAPI document served at `GET /v1/openapi.json`: the server API's own
    /// (`openapi::document_json`) unless the builder of the state sets the full one (the
    /// binary adds the operator API's part with `openapi::document_json_with`).
    pub openapi_json: Arc<str>,
}

impl std::ops::Deref for ApiState {
    type Target = ApiInner;
    fn deref(&self) -> &ApiInner {
        &self.0
    }
}

impl ApiState {
    pub fn new(pipeline: Arc<Pipeline>, secrets: SecretBox, verifier: Arc<RequestVerifier>) -> Self {
        let files = Arc::new(Files::new(
            pipeline.store().clone(),
            tern_platform::files::memory::open(),
            UrlSigner::new(secrets.derive_key("file urls")),
            Default::default(),
        ));
        Self(Arc::new(ApiInner {
            pipeline,
            secrets,
            verifier,
            broadcast_wake: Arc::new(tokio::sync::Notify::new()),
            body_limit: DEFAULT_BODY_LIMIT,
            webhook_allow_private: false,
            before_send: None,
            pusher: None,
            max_app_rate_per_second: tern_platform::domain::DEFAULT_MAX_APP_RATE_PER_SECOND,
            files,
            public_url: None,
            openapi_json: crate::openapi::document_json().into(),
        }))
    }

    /// The API's view of a node's engine.
    pub fn from_engine(e: &tern_platform::engine::Engine) -> Self {
        Self::new(e.pipeline.clone(), e.secrets.clone(), e.request_verifier.clone()).with(|s| {
            s.webhook_allow_private = e.config.webhook_allow_private;
            s.before_send = Some(e.before_send.clone());
            s.broadcast_wake = e.broadcast_wake.clone();
            s.files = e.files.clone();
            s.pusher = Some(e.pusher.clone());
        })
    }

    /// Builder-style tweaks, before the state is shared.
    pub fn with(self, f: impl FnOnce(&mut ApiInner)) -> Self {
        match Arc::try_unwrap(self.0) {
            Ok(mut inner) => {
                f(&mut inner);
                Self(Arc::new(inner))
            }
            Err(shared) => Self(shared),
        }
    }
}
