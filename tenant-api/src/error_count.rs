//! Counts a server API call that answered an error (4xx or 5xx) as an error of its app
//! (`UsageMeter::api_error`, beside the call itself): the console's overview, usage page
//! and error-rate alert rules read these counts.
//!
//! Only a request whose signature checked out is counted, as calls are: which app a
//! refused signature meant cannot be trusted. `Signed` (the extractor every REST handler
//! takes) fills the request's `CallerSlot` once it knows the app; this middleware reads it
//! after the answer, so an error from the handler, a rate limit or a malformed body counts
//! alike. gRPC counts in its signature layer (`grpc::auth`) from the `grpc-status`.

use std::sync::{Arc, OnceLock};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tern_platform::ids::AppId;

use crate::state::ApiState;

/// The app a request was authenticated as, once `Signed` knows it.
#[derive(Clone, Default)]
pub struct CallerSlot(Arc<OnceLock<AppId>>);

impl CallerSlot {
    pub fn set(&self, app: &AppId) {
        let _ = self.0.set(app.clone());
    }
}

/// The middleware.
pub async fn count_errors(State(st): State<ApiState>, mut request: Request, next: Next) -> Response {
    let slot = CallerSlot::default();
    request.extensions_mut().insert(slot.clone());
    let response = next.run(request).await;
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        if let Some(app) = slot.0.get() {
            st.pipeline.usage().api_error(app);
        }
    }
    response
}
