//! Platform administrators: the operators who sign in to the console and the operator API.
//! On first start there are none, so `ensure_first_admin` creates one (the configured email,
//! the configured password or a random one shown once). Passwords are kept only as argon2id
//! hashes; `verify_admin_password` is what sign-in calls.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::distributions::{Alphanumeric, DistString};
use rand::RngCore;

use crate::domain::now_ms;
use crate::store::{Store, StoreError};

/// The first admin's email when `TERN_ADMIN_EMAIL` is not set.
pub const DEFAULT_ADMIN_EMAIL: &str = "admin@localhost";
/// Length of a generated first-admin password.
pub const GENERATED_PASSWORD_LEN: usize = 20;
/// Shortest password accepted from `TERN_ADMIN_PASSWORD`.
pub const MIN_PASSWORD_LEN: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("TERN_ADMIN_EMAIL {0:?} is not an email address")]
    BadEmail(String),
    #[error("TERN_ADMIN_PASSWORD must be at least {MIN_PASSWORD_LEN} characters")]
    WeakPassword,
    #[error("could not hash the password: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What became of the first admin's password at this start.
#[derive(Clone, PartialEq, Eq)]
pub enum FirstAdminPassword {
    /// Created now with a random password: show it once, it is not kept anywhere.
    Generated(String),
    /// Created now with the password from `TERN_ADMIN_PASSWORD`.
    FromEnvironment,
    /// An admin existed already; nothing was changed.
    AlreadyCreated,
}

impl std::fmt::Debug for FirstAdminPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Generated(_) => f.write_str("Generated(<redacted>)"),
            Self::FromEnvironment => f.write_str("FromEnvironment"),
            Self::AlreadyCreated => f.write_str("AlreadyCreated"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstAdmin {
    pub email: String,
    pub password: FirstAdminPassword,
}

/// Hashes a password as an argon2id PHC string with a random salt.
pub fn hash_password(password: &str) -> Result<String, AdminError> {
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| AdminError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AdminError::Hash(e.to_string()))
}

/// Creates the first platform admin unless one exists.
pub async fn ensure_first_admin(
    store: &dyn Store,
    email: &str,
    password: Option<&str>,
) -> Result<FirstAdmin, AdminError> {
    let email = email.trim();
    if email.is_empty() || !email.contains('@') || email.chars().any(char::is_whitespace) {
        return Err(AdminError::BadEmail(email.to_owned()));
    }
    if let Some(p) = password {
        if p.chars().count() < MIN_PASSWORD_LEN {
            return Err(AdminError::WeakPassword);
        }
    }
    if store.admin_count().await? > 0 {
        return Ok(FirstAdmin {
            email: email.to_owned(),
            password: FirstAdminPassword::AlreadyCreated,
        });
    }
    let (plain, outcome) = match password {
        Some(p) => (p.to_owned(), FirstAdminPassword::FromEnvironment),
        None => {
            let p = Alphanumeric.sample_string(&mut rand::thread_rng(), GENERATED_PASSWORD_LEN);
            (p.clone(), FirstAdminPassword::Generated(p))
        }
    };
    let hash = hash_password(&plain)?;
    match store.create_admin(email, &hash, now_ms()).await {
        Ok(_) => Ok(FirstAdmin {
            email: email.to_owned(),
            password: outcome,
        }),
        // Another process started at the same moment and created it first.
        Err(StoreError::Conflict(_)) => Ok(FirstAdmin {
            email: email.to_owned(),
            password: FirstAdminPassword::AlreadyCreated,
        }),
        Err(e) => Err(e.into()),
    }
}

/// Whether `password` is the admin's. An unknown email is `false`, like a wrong password.
pub async fn verify_admin_password(store: &dyn Store, email: &str, password: &str) -> Result<bool, AdminError> {
    let Some(admin) = store.admin_by_email(email.trim()).await? else {
        return Ok(false);
    };
    let Ok(parsed) = PasswordHash::new(&admin.password_hash) else {
        return Ok(false);
    };
    Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn first_start_creates_an_admin_with_a_random_password_shown_once() {
        let (store, _db) = crate::store::testing::sqlite_temp().await;
        let first = ensure_first_admin(&*store, DEFAULT_ADMIN_EMAIL, None).await.unwrap();
        let FirstAdminPassword::Generated(pw) = &first.password else {
            panic!("expected a generated password, got {:?}", first.password);
        };
        assert_eq!(pw.len(), GENERATED_PASSWORD_LEN);
        assert!(!format!("{first:?}").contains(pw.as_str()));
        let stored = store.admin_by_email(DEFAULT_ADMIN_EMAIL).await.unwrap().unwrap();
        assert!(stored.password_hash.starts_with("$argon2id$"));
        assert!(!stored.password_hash.contains(pw.as_str()));
        assert!(verify_admin_password(&*store, DEFAULT_ADMIN_EMAIL, pw).await.unwrap());
        assert!(!verify_admin_password(&*store, DEFAULT_ADMIN_EMAIL, "wrong-password")
            .await
            .unwrap());
        assert!(!verify_admin_password(&*store, "nobody@localhost", pw).await.unwrap());

        // The second start changes nothing and shows no password.
        let again = ensure_first_admin(&*store, DEFAULT_ADMIN_EMAIL, Some("another-password"))
            .await
            .unwrap();
        assert_eq!(again.password, FirstAdminPassword::AlreadyCreated);
        assert_eq!(store.admin_count().await.unwrap(), 1);
        assert!(verify_admin_password(&*store, DEFAULT_ADMIN_EMAIL, pw).await.unwrap());
    }

    #[tokio::test]
    async fn the_configured_email_and_password_are_used() {
        let (store, _db) = crate::store::testing::sqlite_temp().await;
        let first = ensure_first_admin(&*store, "ops@example.com", Some("correct horse"))
            .await
            .unwrap();
        assert_eq!(first.password, FirstAdminPassword::FromEnvironment);
        assert_eq!(first.email, "ops@example.com");
        assert!(verify_admin_password(&*store, "ops@example.com", "correct horse")
            .await
            .unwrap());
        assert!(!verify_admin_password(&*store, "ops@example.com", "correct horsE")
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn bad_email_and_short_password_are_refused() {
        let (store, _db) = crate::store::testing::sqlite_temp().await;
        assert!(matches!(
            ensure_first_admin(&*store, "not-an-email", None).await,
            Err(AdminError::BadEmail(_))
        ));
        assert!(matches!(
            ensure_first_admin(&*store, DEFAULT_ADMIN_EMAIL, Some("short")).await,
            Err(AdminError::WeakPassword)
        ));
        assert_eq!(store.admin_count().await.unwrap(), 0);
    }
}
