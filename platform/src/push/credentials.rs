//! An app's provider credentials: parsed and proved when they are set (a key that does
//! not load or sign is refused then, not at the first push), sealed at rest like the app's
//! secrets, and the signed tokens each provider wants made from them: APNs' ES256 provider
//! JWT and the RS256 assertion Google exchanges for an OAuth2 access token.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::domain::{parse_topic, PushProvider};

/// The OAuth2 scope FCM HTTP v1 needs.
pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";

/// Why credentials were refused; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CredentialError(pub String);

fn bad(m: impl Into<String>) -> CredentialError {
    CredentialError(m.into())
}

/// APNs token-based authentication, as the app gives it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApnsCredentials {
    /// The 10-character id of the .p8 key in Apple's developer account.
    pub key_id: String,
    /// The 10-character Apple team id the key belongs to.
    pub team_id: String,
    /// The app's bundle id: the default `apns-topic`.
    pub bundle_id: String,
    /// The .p8 file's text (a PKCS#8 PEM of a P-256 key).
    pub private_key: String,
}

/// A Google service account (the JSON file the Firebase console downloads).
#[derive(Clone, Serialize, Deserialize)]
pub struct FcmCredentials {
    #[serde(rename = "type")]
    pub kind: String,
    pub project_id: String,
    #[serde(default)]
    pub private_key_id: String,
    pub private_key: String,
    pub client_email: String,
}

impl std::fmt::Debug for ApnsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApnsCredentials")
            .field("key_id", &self.key_id)
            .field("team_id", &self.team_id)
            .field("bundle_id", &self.bundle_id)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for FcmCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FcmCredentials")
            .field("project_id", &self.project_id)
            .field("client_email", &self.client_email)
            .finish_non_exhaustive()
    }
}

fn apple_id(field: &str, s: &str) -> Result<(), CredentialError> {
    if s.len() == 10 && s.bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
        Ok(())
    } else {
        Err(bad(format!(
            "{field} must be the 10 characters (A-Z, 0-9) Apple shows, not {s:?}"
        )))
    }
}

/// The DER inside a PEM block labelled `label` (`PRIVATE KEY`).
pub fn pem_der(pem: &str, label: &str, what: &str) -> Result<Vec<u8>, CredentialError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem
        .find(&begin)
        .ok_or_else(|| bad(format!("{what} is not a PEM \"{label}\" (no {begin} line)")))?;
    let rest = &pem[start + begin.len()..];
    let stop = rest
        .find(&end)
        .ok_or_else(|| bad(format!("{what} has no {end} line")))?;
    let b64: String = rest[..stop].chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD
        .decode(b64)
        .map_err(|_| bad(format!("{what} is not valid base64 inside its PEM lines")))
}

impl ApnsCredentials {
    /// Checks every field and that the key loads as a P-256 signing key.
    pub fn validate(&self) -> Result<(), CredentialError> {
        apple_id("key_id", &self.key_id)?;
        apple_id("team_id", &self.team_id)?;
        parse_topic(&self.bundle_id).map_err(|e| bad(format!("bundle_id: {e}")))?;
        self.signing_key().map(|_| ())
    }

    fn signing_key(&self) -> Result<EcdsaKeyPair, CredentialError> {
        let der = pem_der(&self.private_key, "PRIVATE KEY", "private_key")?;
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &SystemRandom::new())
            .map_err(|_| bad("private_key is not a P-256 (ES256) key in PKCS#8: use the .p8 file Apple gave for APNs"))
    }

    /// The provider token APNs wants in `authorization: bearer`: a JWT signed with ES256,
    /// `kid` the key id, `iss` the team id, `iat` in seconds.
    pub fn provider_token(&self, iat_seconds: i64) -> Result<String, CredentialError> {
        let key = self.signing_key()?;
        let header = json!({"alg": "ES256", "kid": self.key_id});
        let claims = json!({"iss": self.team_id, "iat": iat_seconds});
        let input = signing_input(&header, &claims);
        let sig = key
            .sign(&SystemRandom::new(), input.as_bytes())
            .map_err(|_| bad("the APNs key could not sign"))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref())))
    }

    pub fn summary(&self) -> serde_json::Value {
        json!({"key_id": self.key_id, "team_id": self.team_id, "bundle_id": self.bundle_id})
    }
}

impl FcmCredentials {
    /// Parses the service-account JSON and checks that its key loads as an RSA signing key.
    pub fn parse(json_text: &str) -> Result<Self, CredentialError> {
        let c: Self = serde_json::from_str(json_text)
            .map_err(|e| bad(format!("service_account is not a Google service-account JSON: {e}")))?;
        c.validate()?;
        Ok(c)
    }

    pub fn validate(&self) -> Result<(), CredentialError> {
        if self.kind != "service_account" {
            return Err(bad(format!(
                "service_account.type must be \"service_account\", not {:?}",
                self.kind
            )));
        }
        if self.project_id.is_empty()
            || self.project_id.len() > 63
            || !self
                .project_id
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        {
            return Err(bad(
                "service_account.project_id must be a Firebase project id (a-z, 0-9, -)",
            ));
        }
        if !self.client_email.contains('@') || self.client_email.len() > 254 {
            return Err(bad("service_account.client_email must be the service account's email"));
        }
        self.signing_key().map(|_| ())
    }

    fn signing_key(&self) -> Result<RsaKeyPair, CredentialError> {
        let der = pem_der(&self.private_key, "PRIVATE KEY", "service_account.private_key")?;
        RsaKeyPair::from_pkcs8(&der)
            .map_err(|_| bad("service_account.private_key is not an RSA key in PKCS#8 (2048 bits or more)"))
    }

    /// The JWT-bearer assertion exchanged at `token_url` for an access token (RFC 7523):
    /// RS256, `iss` the service account, `aud` the token endpoint, one hour.
    pub fn assertion(&self, token_url: &str, iat_seconds: i64) -> Result<String, CredentialError> {
        let key = self.signing_key()?;
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
        if !self.private_key_id.is_empty() {
            header["kid"] = json!(self.private_key_id);
        }
        let claims = json!({
            "iss": self.client_email,
            "scope": FCM_SCOPE,
            "aud": token_url,
            "iat": iat_seconds,
            "exp": iat_seconds + 3600,
        });
        let input = signing_input(&header, &claims);
        let mut sig = vec![0u8; key.public().modulus_len()];
        key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut sig)
            .map_err(|_| bad("the service account key could not sign"))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }

    pub fn summary(&self) -> serde_json::Value {
        json!({
            "project_id": self.project_id,
            "client_email": self.client_email,
            "private_key_id": self.private_key_id,
        })
    }
}

fn signing_input(header: &serde_json::Value, claims: &serde_json::Value) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// Credentials of either provider, as they are sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "snake_case")]
pub enum ProviderCredentials {
    Apns(ApnsCredentials),
    Fcm(FcmCredentials),
}

impl ProviderCredentials {
    pub fn provider(&self) -> PushProvider {
        match self {
            Self::Apns(_) => PushProvider::Apns,
            Self::Fcm(_) => PushProvider::Fcm,
        }
    }

    pub fn summary(&self) -> serde_json::Value {
        match self {
            Self::Apns(c) => c.summary(),
            Self::Fcm(c) => c.summary(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::push::test_keys;

    #[test]
    fn an_apns_key_signs_a_provider_token_that_verifies() {
        let (pem, public) = test_keys::p256();
        let c = ApnsCredentials {
            key_id: "ABC123DEFG".into(),
            team_id: "TEAM123456".into(),
            bundle_id: "com.example.chat".into(),
            private_key: pem,
        };
        c.validate().unwrap();
        let jwt = c.provider_token(1_700_000_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header, json!({"alg": "ES256", "kid": "ABC123DEFG"}));
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &public)
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
            .unwrap();
    }

    #[test]
    fn malformed_apns_credentials_are_refused_with_the_field_named() {
        let (pem, _) = test_keys::p256();
        let good = ApnsCredentials {
            key_id: "ABC123DEFG".into(),
            team_id: "TEAM123456".into(),
            bundle_id: "com.example.chat".into(),
            private_key: pem,
        };
        let cases: Vec<(ApnsCredentials, &str)> = vec![
            (
                ApnsCredentials {
                    key_id: "short".into(),
                    ..good.clone()
                },
                "key_id",
            ),
            (
                ApnsCredentials {
                    team_id: "team123456".into(),
                    ..good.clone()
                },
                "team_id",
            ),
            (
                ApnsCredentials {
                    bundle_id: "com example".into(),
                    ..good.clone()
                },
                "bundle_id",
            ),
            (
                ApnsCredentials {
                    private_key: "not a key".into(),
                    ..good.clone()
                },
                "private_key",
            ),
            (
                ApnsCredentials {
                    private_key: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----".into(),
                    ..good.clone()
                },
                "P-256",
            ),
            (
                ApnsCredentials {
                    private_key: test_keys::RSA_PEM.into(),
                    ..good.clone()
                },
                "P-256",
            ),
        ];
        for (c, needle) in cases {
            let e = c.validate().unwrap_err();
            assert!(e.0.contains(needle), "{e} should name {needle}");
        }
    }

    #[test]
    fn a_service_account_signs_an_assertion_and_bad_ones_are_refused() {
        let sa = test_keys::service_account("demo-project", "push@demo-project.iam.gserviceaccount.com");
        let c = FcmCredentials::parse(&sa.to_string()).unwrap();
        let jwt = c.assertion("https://oauth2.example/token", 1_700_000_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["scope"], FCM_SCOPE);
        assert_eq!(claims["aud"], "https://oauth2.example/token");
        let public = test_keys::rsa_public();
        ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, &public)
            .verify(
                format!("{}.{}", parts[0], parts[1]).as_bytes(),
                &URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
            )
            .unwrap();

        let mut wrong_type = sa.clone();
        wrong_type["type"] = json!("authorized_user");
        assert!(FcmCredentials::parse(&wrong_type.to_string())
            .unwrap_err()
            .0
            .contains("type"));
        let mut ec_key = sa.clone();
        ec_key["private_key"] = json!(test_keys::p256().0);
        assert!(FcmCredentials::parse(&ec_key.to_string())
            .unwrap_err()
            .0
            .contains("RSA"));
        assert!(FcmCredentials::parse("{").unwrap_err().0.contains("service-account"));
    }
}
