//! Why a caller was not authenticated. Each variant is one stable snake_case code from
//! SIGNING.md (and docs/signing.md) with its HTTP status; front doors map `code()` and
//! `http_status()` into their error body and never show the `Display` text of the
//! internal variants to callers.

use crate::nonce::NonceError;
use crate::secret_box::SecretBoxError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A credential header is missing or malformed (which one is in the text).
    #[error("missing or malformed credentials: {0}")]
    MissingCredentials(&'static str),
    #[error("no app has this app key")]
    UnknownAppKey,
    #[error("the request timestamp is more than 300 s away from the server's clock")]
    TimestampOutOfWindow,
    #[error("no active secret of the app gives this signature")]
    BadSignature,
    #[error("this nonce was already used by the app within the last 600 s")]
    NonceReused,
    #[error("the app or its tenant is suspended")]
    AppSuspended,
    /// The app holds as many live nonces as one node keeps for it.
    #[error("too many signed requests: the app's nonce record is full")]
    RateLimited,
    /// A token that is not a well-formed HS256 JWT with the claims Tern requires.
    #[error("invalid token: {0}")]
    TokenInvalid(&'static str),
    #[error("the token has expired")]
    TokenExpired,
    #[error("the token's lifetime (exp - iat) exceeds the app's maximum")]
    TokenLifetimeTooLong,
    #[error("the token was issued in the future (iat or nbf more than 60 s ahead)")]
    TokenNotYetValid,
    #[error("the token was issued before the user's tokens were revoked")]
    TokenRevoked,
    #[error("the user is banned")]
    UserBanned,
    #[error("the user does not exist and the app does not create users on login")]
    UserNotFound,
    /// The store or the nonce record could not be reached; the caller may retry.
    #[error("authentication is temporarily unavailable: {0}")]
    Unavailable(String),
    /// Something that should not happen did (a stored secret that does not decrypt).
    #[error("internal error during authentication: {0}")]
    Internal(String),
}

impl AuthError {
    /// Every code this type can produce, for documentation tests.
    pub const ALL_CODES: [&'static str; 16] = [
        "missing_credentials",
        "unknown_app_key",
        "timestamp_out_of_window",
        "bad_signature",
        "nonce_reused",
        "app_suspended",
        "rate_limited",
        "token_invalid",
        "token_expired",
        "token_lifetime_too_long",
        "token_not_yet_valid",
        "token_revoked",
        "user_banned",
        "user_not_found",
        "unavailable",
        "internal",
    ];

    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingCredentials(_) => "missing_credentials",
            Self::UnknownAppKey => "unknown_app_key",
            Self::TimestampOutOfWindow => "timestamp_out_of_window",
            Self::BadSignature => "bad_signature",
            Self::NonceReused => "nonce_reused",
            Self::AppSuspended => "app_suspended",
            Self::RateLimited => "rate_limited",
            Self::TokenInvalid(_) => "token_invalid",
            Self::TokenExpired => "token_expired",
            Self::TokenLifetimeTooLong => "token_lifetime_too_long",
            Self::TokenNotYetValid => "token_not_yet_valid",
            Self::TokenRevoked => "token_revoked",
            Self::UserBanned => "user_banned",
            Self::UserNotFound => "user_not_found",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// 401 when the credentials do not prove who is calling, 403 when they do but the
    /// caller may not proceed, 5xx when Tern could not decide.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::AppSuspended | Self::UserBanned | Self::UserNotFound => 403,
            Self::RateLimited => 429,
            Self::Unavailable(_) => 503,
            Self::Internal(_) => 500,
            _ => 401,
        }
    }
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => Self::Unavailable(m),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<NonceError> for AuthError {
    fn from(e: NonceError) -> Self {
        match e {
            NonceError::Unavailable(m) => Self::Unavailable(m),
            NonceError::Full { .. } => Self::RateLimited,
        }
    }
}

impl From<SecretBoxError> for AuthError {
    fn from(e: SecretBoxError) -> Self {
        Self::Internal(e.to_string())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_listed() {
        let samples = [
            AuthError::MissingCredentials("x"),
            AuthError::UnknownAppKey,
            AuthError::TimestampOutOfWindow,
            AuthError::BadSignature,
            AuthError::NonceReused,
            AuthError::AppSuspended,
            AuthError::RateLimited,
            AuthError::TokenInvalid("x"),
            AuthError::TokenExpired,
            AuthError::TokenLifetimeTooLong,
            AuthError::TokenNotYetValid,
            AuthError::TokenRevoked,
            AuthError::UserBanned,
            AuthError::UserNotFound,
            AuthError::Unavailable("x".into()),
            AuthError::Internal("x".into()),
        ];
        let codes: Vec<_> = samples.iter().map(AuthError::code).collect();
        assert_eq!(codes, AuthError::ALL_CODES);
        let mut dedup = codes.clone();
        dedup.sort_unstable();
        dedup.dedup();
        assert_eq!(dedup.len(), codes.len());
        assert_eq!(AuthError::AppSuspended.http_status(), 403);
        assert_eq!(AuthError::BadSignature.http_status(), 401);
        assert_eq!(AuthError::RateLimited.http_status(), 429);
    }
}
