//! HS256 JWTs (SIGNING.md §2 and the bearer alternative of §1), written by hand over
//! hmac, sha2 and base64 so that parsing is as strict as we want and no algorithm but
//! HS256 is ever considered.
//!
//! - User tokens log an SDK in: claims `iss` (AppKey), `sub` (user id), `iat`, `exp`,
//!   optional `jti`. `UserTokenVerifier` applies every rule of §2.
//! - Server bearer tokens stand in for a request signature where a body cannot be
//!   signed (gRPC streams, tools): claims `iss`, `scope` = `"server"`, `iat`, `exp`, with a
//!   lifetime of at most one hour. `authenticate_server_token` checks them.
//!
//! Times in claims are Unix seconds (JWT); the `now` the verifiers take is Unix
//! milliseconds like everywhere else in Tern.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::Mac;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::credentials::{keyed_hmac, AppCredentials, CredentialCache, HmacSha256};
use super::AuthError;
use crate::domain::{App, UnixMillis, User, UserProfile};
use crate::ids::{AppKey, UserId};
use crate::secret_box::SecretBox;
use crate::store::Store;

/// Longest token accepted, in bytes. A user token is about 200 bytes; the limit keeps a
/// hostile caller from making us decode and parse megabytes.
pub const MAX_TOKEN_BYTES: usize = 4096;
/// How far `iat` (or `nbf`) may be ahead of the server's clock.
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 60;
/// Longest lifetime (`exp - iat`) of a server bearer token.
pub const MAX_SERVER_TOKEN_TTL_SECONDS: i64 = 3600;
/// The `scope` claim of a server bearer token.
pub const SERVER_SCOPE: &str = "server";
/// Earliest `iat`, `nbf` or `exp` a token may carry (2000-01-01T00:00:00Z): older times
/// are forged or broken clocks, and bounding them keeps every time sum far from overflow.
pub const EARLIEST_TOKEN_TIME: i64 = 946_684_800;
/// Latest `iat`, `nbf` or `exp` a token may carry (2100-01-01T00:00:00Z).
pub const LATEST_TOKEN_TIME: i64 = 4_102_444_800;

/// The header every token Tern mints carries, byte for byte.
const HEADER_JSON: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// Why a token is not a well-formed HS256 JWT (or, for `BadSignature`, not signed by any
/// of the given secrets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is longer than 4096 bytes")]
    TooLong,
    #[error("token must have exactly three dot-separated parts")]
    NotThreeParts,
    #[error("token {0} is not unpadded base64url")]
    BadBase64(&'static str),
    #[error("token {0} is not the JSON object Tern requires")]
    BadJson(&'static str),
    #[error("token algorithm must be HS256")]
    UnsupportedAlgorithm,
    #[error("token typ must be JWT when present")]
    UnsupportedType,
    #[error("token header carries critical extensions Tern does not understand")]
    CriticalHeader,
    #[error("token signature must be 32 bytes (HS256)")]
    BadSignatureLength,
    #[error("token exp must be after iat")]
    ExpiresBeforeIssued,
    #[error("token iat, nbf and exp must be between 2000 and 2100")]
    TimeOutOfRange,
    #[error("token scope must be \"server\"")]
    WrongScope,
    #[error("token sub is not a valid user id")]
    BadSubject,
    #[error("no active secret gives this token's signature")]
    BadSignature,
}

impl From<TokenError> for AuthError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::BadSignature => AuthError::BadSignature,
            TokenError::TooLong => AuthError::TokenInvalid("token is longer than 4096 bytes"),
            TokenError::NotThreeParts => AuthError::TokenInvalid("token must have three dot-separated parts"),
            TokenError::BadBase64(_) => AuthError::TokenInvalid("token is not unpadded base64url"),
            TokenError::BadJson(_) => AuthError::TokenInvalid("token header or claims are not as required"),
            TokenError::UnsupportedAlgorithm => AuthError::TokenInvalid("token algorithm must be HS256"),
            TokenError::UnsupportedType => AuthError::TokenInvalid("token typ must be JWT"),
            TokenError::CriticalHeader => AuthError::TokenInvalid("token header has critical extensions"),
            TokenError::BadSignatureLength => AuthError::TokenInvalid("token signature is not HS256"),
            TokenError::ExpiresBeforeIssued => AuthError::TokenInvalid("token exp must be after iat"),
            TokenError::TimeOutOfRange => {
                AuthError::TokenInvalid("token iat, nbf and exp must be between 2000 and 2100")
            }
            TokenError::WrongScope => AuthError::TokenInvalid("token scope must be server"),
            TokenError::BadSubject => AuthError::TokenInvalid("token sub is not a valid user id"),
        }
    }
}

/// Claims of a user token. Unknown claims are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UserClaims {
    pub iss: String,
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(default)]
    pub jti: Option<String>,
    /// Not minted by Tern, but honoured when a tenant's JWT library adds it.
    #[serde(default)]
    pub nbf: Option<i64>,
}

/// Claims of a server bearer token. Unknown claims are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ServerClaims {
    pub iss: String,
    pub scope: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(default)]
    pub nbf: Option<i64>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// A token split and decoded, its header checked, its signature not yet verified.
pub struct UnverifiedJwt<'a> {
    signing_input: &'a str,
    signature: [u8; 32],
    claims_json: Vec<u8>,
}

impl<'a> UnverifiedJwt<'a> {
    pub fn parse(token: &'a str) -> Result<Self, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLong);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::NotThreeParts);
        };
        let header_json = URL_SAFE_NO_PAD
            .decode(header_b64)
            .map_err(|_| TokenError::BadBase64("header"))?;
        let claims_json = URL_SAFE_NO_PAD
            .decode(claims_b64)
            .map_err(|_| TokenError::BadBase64("claims"))?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| TokenError::BadBase64("signature"))?;
        let header: Header = crate::json_strict::from_slice(&header_json).map_err(|_| TokenError::BadJson("header"))?;
        if header.alg != "HS256" {
            return Err(TokenError::UnsupportedAlgorithm);
        }
        if header.typ.as_deref().is_some_and(|t| !t.eq_ignore_ascii_case("JWT")) {
            return Err(TokenError::UnsupportedType);
        }
        if header.crit.is_some() {
            return Err(TokenError::CriticalHeader);
        }
        let signature: [u8; 32] = signature.try_into().map_err(|_| TokenError::BadSignatureLength)?;
        let signing_input_len = header_b64.len() + 1 + claims_b64.len();
        Ok(Self {
            signing_input: &token[..signing_input_len],
            signature,
            claims_json,
        })
    }

    /// The claims, parsed into `C`; read before verifying only to find the issuer's secrets.
    pub fn claims<C: DeserializeOwned>(&self) -> Result<C, TokenError> {
        crate::json_strict::from_slice(&self.claims_json).map_err(|_| TokenError::BadJson("claims"))
    }

    /// Whether `mac` (keyed with a secret) gives this token's signature, compared in
    /// constant time.
    pub fn is_signed_by(&self, mut mac: HmacSha256) -> bool {
        mac.update(self.signing_input.as_bytes());
        let expected = mac.finalize().into_bytes();
        bool::from(expected.as_slice().ct_eq(&self.signature))
    }
}

/// Checks `token` against `secrets` (any one may have signed it) and returns its claims.
/// Checks structure and signature only; the time and app rules are the verifiers'.
pub fn verify_hs256<C: DeserializeOwned>(token: &str, secrets: &[&str]) -> Result<C, TokenError> {
    let jwt = UnverifiedJwt::parse(token)?;
    let claims = jwt.claims()?;
    if secrets.iter().any(|s| jwt.is_signed_by(keyed_hmac(s.as_bytes()))) {
        Ok(claims)
    } else {
        Err(TokenError::BadSignature)
    }
}

/// `s` as a JSON string literal. Infallible, unlike `serde_json::to_string`.
fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

fn encode_jwt(secret: &str, claims_json: &str) -> String {
    let mut token = URL_SAFE_NO_PAD.encode(HEADER_JSON);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(claims_json));
    let mut mac = keyed_hmac(secret.as_bytes());
    mac.update(token.as_bytes());
    let signature = mac.finalize().into_bytes();
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));
    token
}

/// A user token for `user`, signed with `secret`, claims in the order `iss, sub, iat, exp`
/// (then `jti` when given): byte for byte what PyJWT produces for the same claims.
pub fn mint_user_token(app_key: &AppKey, secret: &str, user: &UserId, iat: i64, exp: i64, jti: Option<&str>) -> String {
    let mut claims = format!(
        r#"{{"iss":{},"sub":{},"iat":{iat},"exp":{exp}"#,
        json_string(app_key.as_str()),
        json_string(user.as_str()),
    );
    if let Some(jti) = jti {
        claims.push_str(r#","jti":"#);
        claims.push_str(&json_string(jti));
    }
    claims.push('}');
    encode_jwt(secret, &claims)
}

/// A server bearer token (`Authorization: Bearer ...`), claims `iss, scope, iat, exp`.
pub fn mint_server_token(app_key: &AppKey, secret: &str, iat: i64, exp: i64) -> String {
    let claims = format!(
        r#"{{"iss":{},"scope":"{SERVER_SCOPE}","iat":{iat},"exp":{exp}}}"#,
        json_string(app_key.as_str()),
    );
    encode_jwt(secret, &claims)
}

/// Parses the token, finds the issuing app and checks the signature against the app's
/// secrets active at `now`: the steps user and server tokens share.
async fn signed_by_app<C: DeserializeOwned>(
    cache: &CredentialCache,
    token: &str,
    now: UnixMillis,
    issuer: impl Fn(&C) -> &str,
) -> Result<(C, Arc<AppCredentials>), AuthError> {
    let jwt = UnverifiedJwt::parse(token)?;
    let claims: C = jwt.claims()?;
    let key = AppKey::parse(issuer(&claims)).map_err(|_| AuthError::UnknownAppKey)?;
    let app = cache.get(&key, now).await?;
    if signed_by_any(&jwt, &app, now) {
        return Ok((claims, app));
    }
    // Perhaps a secret added since the app was cached.
    match cache.refresh(&app, now).await? {
        Some(fresh) if signed_by_any(&jwt, &fresh, now) => Ok((claims, fresh)),
        _ => Err(AuthError::BadSignature),
    }
}

/// Every active secret is tried (no early exit), so timing does not tell which one matched.
fn signed_by_any(jwt: &UnverifiedJwt<'_>, app: &AppCredentials, now: UnixMillis) -> bool {
    app.secrets_at(now)
        .fold(false, |ok, secret| jwt.is_signed_by(secret.mac()) | ok)
}

/// The time rules of both token kinds, in SIGNING.md's order: not expired, lifetime
/// within `max_ttl`, not issued (or valid from) too far in the future.
/// Every time must lie between 2000 and 2100 first, so no difference below can wrap.
fn check_times(iat: i64, exp: i64, nbf: Option<i64>, max_ttl: i64, now: UnixMillis) -> Result<(), AuthError> {
    let plausible = |t: i64| (EARLIEST_TOKEN_TIME..=LATEST_TOKEN_TIME).contains(&t);
    if !plausible(iat) || !plausible(exp) || nbf.is_some_and(|t| !plausible(t)) {
        return Err(TokenError::TimeOutOfRange.into());
    }
    let now_s = now.div_euclid(1000);
    if exp <= iat {
        return Err(TokenError::ExpiresBeforeIssued.into());
    }
    if exp <= now_s {
        return Err(AuthError::TokenExpired);
    }
    // Checked even though the bounds above make overflow impossible: a lifetime that
    // cannot be computed is never a lifetime to accept.
    if exp.checked_sub(iat).is_none_or(|lifetime| lifetime > max_ttl) {
        return Err(AuthError::TokenLifetimeTooLong);
    }
    let ahead_limit = now_s.saturating_add(MAX_CLOCK_SKEW_SECONDS);
    if iat > ahead_limit || nbf.is_some_and(|nbf| nbf > ahead_limit) {
        return Err(AuthError::TokenNotYetValid);
    }
    Ok(())
}

/// Authenticates a server bearer token (SIGNING.md §1, bearer alternative) and returns
/// the app. Order: `token_invalid` (malformed, or scope not `server`), `unknown_app_key`,
/// `bad_signature`, `token_expired`, `token_lifetime_too_long`, `token_not_yet_valid`,
/// `app_suspended`.
pub async fn authenticate_server_token(
    cache: &CredentialCache,
    token: &str,
    now: UnixMillis,
) -> Result<App, AuthError> {
    let (claims, app) = signed_by_app::<ServerClaims>(cache, token, now, |c| &c.iss).await?;
    if claims.scope != SERVER_SCOPE {
        return Err(TokenError::WrongScope.into());
    }
    check_times(claims.iat, claims.exp, claims.nbf, MAX_SERVER_TOKEN_TTL_SECONDS, now)?;
    if !app.is_active() {
        return Err(AuthError::AppSuspended);
    }
    Ok(app.app.clone())
}

/// Checks user tokens for SDK login (SIGNING.md §2).
pub struct UserTokenVerifier {
    credentials: Arc<CredentialCache>,
}

impl UserTokenVerifier {
    pub fn new(store: Arc<dyn Store>, secret_box: SecretBox) -> Self {
        Self::with_cache(Arc::new(CredentialCache::new(store, secret_box)))
    }

    /// Shares a cache with a `RequestVerifier` (or uses one with other limits).
    pub fn with_cache(credentials: Arc<CredentialCache>) -> Self {
        Self { credentials }
    }

    /// The app and the user a token logs in, at `now` (Unix milliseconds). Checks, in
    /// order: `token_invalid`, `unknown_app_key`, `bad_signature`, `token_expired`,
    /// `token_lifetime_too_long` (over the app's `max_token_ttl_seconds`),
    /// `token_not_yet_valid`, `app_suspended` (app or tenant), `user_not_found` (unknown
    /// user and the app does not create users on login; otherwise the user is created
    /// now), `token_revoked` (`iat` before the user's revocation time), `user_banned`.
    pub async fn verify(&self, token: &str, now: UnixMillis) -> Result<(App, User), AuthError> {
        let (claims, app) = signed_by_app::<UserClaims>(&self.credentials, token, now, |c| &c.iss).await?;
        let settings = &app.app.settings;
        check_times(claims.iat, claims.exp, claims.nbf, settings.max_token_ttl_seconds, now)?;
        if !app.is_active() {
            return Err(AuthError::AppSuspended);
        }
        let user_id = UserId::parse(&claims.sub).map_err(|_| AuthError::from(TokenError::BadSubject))?;
        let store = self.credentials.store();
        let user = match store.user(&app.app.id, &user_id).await? {
            Some(user) => user,
            None if settings.auto_create_users => {
                let created = store
                    .upsert_users(&app.app.id, &[(user_id.clone(), UserProfile::default())], now)
                    .await?;
                created
                    .into_iter()
                    .next()
                    .ok_or_else(|| AuthError::Internal("upsert_users returned no user".into()))?
            }
            None => return Err(AuthError::UserNotFound),
        };
        // `iat` has whole seconds, the revocation time milliseconds: a token minted in the
        // same second as a revocation counts as before it, so it is refused.
        if user
            .tokens_revoked_before
            .is_some_and(|revoked| claims.iat.saturating_mul(1000) < revoked)
        {
            return Err(AuthError::TokenRevoked);
        }
        if user.is_banned_at(now) {
            return Err(AuthError::UserBanned);
        }
        Ok((app.app.clone(), user))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SECRET: &str = "sk_test_7f3a9c2e5b1d4f60a8e2c9b7d5f3a1e0";

    fn key() -> AppKey {
        AppKey::parse("ak_demo_4k2m9p7q").unwrap()
    }

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    /// A token with an arbitrary header and claims, correctly signed with SECRET.
    fn forge(header: &str, claims: &str) -> String {
        let input = format!("{}.{}", b64(header), b64(claims));
        let mut mac = keyed_hmac(SECRET.as_bytes());
        mac.update(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    const CLAIMS: &str = r#"{"iss":"ak_demo_4k2m9p7q","sub":"alice","iat":1767225600,"exp":1767229200}"#;

    #[test]
    fn minted_tokens_verify_and_carry_their_claims() {
        let user = UserId::parse("alice").unwrap();
        let token = mint_user_token(&key(), SECRET, &user, 1767225600, 1767229200, Some("j-1"));
        let claims: UserClaims = verify_hs256(&token, &["other", SECRET]).unwrap();
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.jti.as_deref(), Some("j-1"));
        assert_eq!(
            verify_hs256::<UserClaims>(&token, &["other"]),
            Err(TokenError::BadSignature)
        );
        let server = mint_server_token(&key(), SECRET, 10, 20);
        let claims: ServerClaims = verify_hs256(&server, &[SECRET]).unwrap();
        assert_eq!(claims.scope, "server");
    }

    #[test]
    fn only_hs256_is_accepted() {
        for header in [
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"alg":"HS512","typ":"JWT"}"#,
            r#"{"alg":"RS256"}"#,
            r#"{"alg":"hs256"}"#,
            r#"{"typ":"JWT"}"#,
        ] {
            assert!(
                verify_hs256::<UserClaims>(&forge(header, CLAIMS), &[SECRET]).is_err(),
                "{header} must be refused"
            );
        }
        // `none` with an empty signature, the classic downgrade.
        let unsigned = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(CLAIMS));
        assert_eq!(
            UnverifiedJwt::parse(&unsigned).err(),
            Some(TokenError::UnsupportedAlgorithm)
        );
        // No typ, or extra header fields such as kid, are fine.
        assert!(verify_hs256::<UserClaims>(&forge(r#"{"alg":"HS256"}"#, CLAIMS), &[SECRET]).is_ok());
        assert!(verify_hs256::<UserClaims>(&forge(r#"{"alg":"HS256","kid":"k1"}"#, CLAIMS), &[SECRET]).is_ok());
        assert_eq!(
            verify_hs256::<UserClaims>(&forge(r#"{"alg":"HS256","typ":"JWS"}"#, CLAIMS), &[SECRET]).err(),
            Some(TokenError::UnsupportedType)
        );
        assert_eq!(
            verify_hs256::<UserClaims>(&forge(r#"{"alg":"HS256","crit":["b64"]}"#, CLAIMS), &[SECRET]).err(),
            Some(TokenError::CriticalHeader)
        );
    }

    #[test]
    fn structure_is_parsed_strictly() {
        let good = forge(HEADER_JSON, CLAIMS);
        assert!(verify_hs256::<UserClaims>(&good, &[SECRET]).is_ok());
        assert_eq!(UnverifiedJwt::parse("a.b").err(), Some(TokenError::NotThreeParts));
        assert_eq!(
            UnverifiedJwt::parse(&format!("{good}.x")).err(),
            Some(TokenError::NotThreeParts)
        );
        // Padding and the standard alphabet are not base64url without padding.
        let (head, rest) = good.split_once('.').unwrap();
        let padded = format!("{head}=.{rest}");
        assert_eq!(
            UnverifiedJwt::parse(&padded).err(),
            Some(TokenError::BadBase64("header"))
        );
        let sig_start = good.rfind('.').unwrap();
        let short_sig = format!("{}.{}", &good[..sig_start], URL_SAFE_NO_PAD.encode([0u8; 16]));
        assert_eq!(
            UnverifiedJwt::parse(&short_sig).err(),
            Some(TokenError::BadSignatureLength)
        );
        let long = format!("{}.{}.x", b64(HEADER_JSON), "A".repeat(MAX_TOKEN_BYTES));
        assert_eq!(UnverifiedJwt::parse(&long).err(), Some(TokenError::TooLong));
        // Claims must have integer times and every required field.
        for claims in [
            r#"{"iss":"ak_demo_4k2m9p7q","sub":"alice","iat":1767225600.5,"exp":1767229200}"#,
            r#"{"iss":"ak_demo_4k2m9p7q","sub":"alice","iat":"1767225600","exp":1767229200}"#,
            r#"{"iss":"ak_demo_4k2m9p7q","iat":1767225600,"exp":1767229200}"#,
            r#"["ak_demo_4k2m9p7q"]"#,
        ] {
            assert_eq!(
                verify_hs256::<UserClaims>(&forge(HEADER_JSON, claims), &[SECRET]).err(),
                Some(TokenError::BadJson("claims")),
                "{claims}"
            );
        }
        // A tampered claim breaks the signature.
        let parts: Vec<&str> = good.split('.').collect();
        let tampered = format!("{}.{}.{}", parts[0], b64(&CLAIMS.replace("alice", "admin")), parts[2]);
        assert_eq!(
            verify_hs256::<UserClaims>(&tampered, &[SECRET]).err(),
            Some(TokenError::BadSignature)
        );
    }

    #[test]
    fn time_rules() {
        let now = 1_767_225_600 * 1000;
        let s = 1_767_225_600;
        assert!(check_times(s - 10, s + 10, None, 3600, now).is_ok());
        assert!(matches!(
            check_times(s - 10, s, None, 3600, now),
            Err(AuthError::TokenExpired)
        ));
        assert!(matches!(
            check_times(s - 10, s + 3591, None, 3600, now),
            Err(AuthError::TokenLifetimeTooLong)
        ));
        assert!(check_times(s - 10, s + 3590, None, 3600, now).is_ok());
        assert!(check_times(s + 60, s + 100, None, 3600, now).is_ok());
        assert!(matches!(
            check_times(s + 61, s + 100, None, 3600, now),
            Err(AuthError::TokenNotYetValid)
        ));
        assert!(matches!(
            check_times(s, s + 100, Some(s + 61), 3600, now),
            Err(AuthError::TokenNotYetValid)
        ));
        assert!(matches!(
            check_times(s + 100, s + 50, None, 3600, now),
            Err(AuthError::TokenInvalid(_))
        ));
    }

    #[test]
    fn times_at_the_extremes_are_refused_not_wrapped() {
        let now = 1_767_225_600 * 1000;
        let s = 1_767_225_600;
        let out_of_range = |r: Result<(), AuthError>| matches!(r, Err(AuthError::TokenInvalid(m)) if m.contains("between 2000 and 2100"));
        // The forged never-expiring token of the report: exp - iat would wrap to -1.
        assert!(out_of_range(check_times(i64::MIN, i64::MAX, None, 3600, now)));
        assert!(out_of_range(check_times(i64::MIN, s + 10, None, 3600, now)));
        assert!(out_of_range(check_times(s - 10, i64::MAX, None, i64::MAX, now)));
        assert!(out_of_range(check_times(s - 10, s + 10, Some(i64::MIN), 3600, now)));
        assert!(out_of_range(check_times(s - 10, s + 10, Some(i64::MAX), 3600, now)));
        assert!(out_of_range(check_times(0, s + 10, None, i64::MAX, now)));
        assert!(out_of_range(check_times(
            EARLIEST_TOKEN_TIME - 1,
            s + 10,
            None,
            i64::MAX,
            now
        )));
        assert!(out_of_range(check_times(s, LATEST_TOKEN_TIME + 1, None, i64::MAX, now)));
        // The bounds themselves are fine when the other rules hold.
        assert!(check_times(EARLIEST_TOKEN_TIME, LATEST_TOKEN_TIME, None, i64::MAX, now).is_ok());
        assert!(matches!(
            check_times(EARLIEST_TOKEN_TIME, LATEST_TOKEN_TIME, None, 3600, now),
            Err(AuthError::TokenLifetimeTooLong)
        ));
    }

    #[test]
    fn claims_are_escaped_json() {
        let user = UserId::parse("a.b@c-d_e").unwrap();
        let token = mint_user_token(&key(), SECRET, &user, 1, 2, Some("quote\"and\\slash"));
        let claims: UserClaims = verify_hs256(&token, &[SECRET]).unwrap();
        assert_eq!(claims.jti.as_deref(), Some("quote\"and\\slash"));
    }
}
