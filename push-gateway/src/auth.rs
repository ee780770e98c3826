//! How a session proves who it is. The gateway only needs "this token is (app, user) or
//! here is why not"; the checks themselves (SIGNING.md §2) live in
//! `tern_platform::auth::token::UserTokenVerifier`, which implements this trait.

use async_trait::async_trait;
use tern_platform::domain::{App, User};

/// Why a token was refused; `code` is the stable code the client sees in its `error` frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AuthRejection {
    pub code: String,
    pub message: String,
}

#[async_trait]
pub trait SessionAuthenticator: Send + Sync + 'static {
    async fn authenticate(&self, token: &str) -> Result<(App, User), AuthRejection>;
}

#[async_trait]
impl SessionAuthenticator for tern_platform::auth::token::UserTokenVerifier {
    async fn authenticate(&self, token: &str) -> Result<(App, User), AuthRejection> {
        self.verify(token, tern_platform::domain::now_ms()).await.map_err(|e| {
            let code = e.code();
            let message = if code == "internal" {
                tracing::error!(error = %e, "token verification failed internally");
                "internal error".to_owned()
            } else {
                e.to_string()
            };
            AuthRejection {
                code: code.to_owned(),
                message,
            }
        })
    }
}
