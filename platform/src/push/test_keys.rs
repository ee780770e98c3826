//! Keys for tests and the provider double: fresh P-256 keys (what an APNs .p8 holds) and
//! one fixed RSA key (ring cannot make RSA keys) in a Google service-account JSON. Test
//! material only: the RSA key is public in this repository.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;

/// A 2048-bit RSA key in PKCS#8 PEM, made with `openssl genpkey` for tests.
pub const RSA_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDb0Ka8B4TNFJvH\njNgltjriCgnyi8zAb9leC0zXHIU3OMtKgLCokIIm9/GY4UWpulRlKgWjLARSN29d\nY9BPOcTeSQDlmBaCw2fFpm3Z552CJ4CwEaCSlr/PXXvGe2ZbqpinDl+fer7gbCeT\nOkpqDczRlFzTcOPonlCeebRC7GlMmvVRKO0PH/KvQhORw4rbwe35Y6+DU8zT1S4M\nObbRPqCMRbhz8xY+uy/1HVlPWnPJshmeDiUBcTfE9jGJBLaWIgvkNbfDTNOz4aSR\n1vzdW1HPPMWAuxYNyUybyNns9db3VwopG4XieXcidBTezNCXIsKI9gt06KxeUluJ\nbhU7li5RAgMBAAECggEAYFtsI6OmHuIoUYbXn1xtHnYpGyYWSMse/X81nVxWtzjR\nwKR+DD5gl2V8BjjF+VuBMGGF3Bvo/wNm8YjWIUyhFJHq7zpGr+apoDZPFETYQlw/\nqK7pdSjZBzUjE4Q3f/pd9WkzGK1NbAJtLLhSM4A+JycCs/taJLf1fiq6jtWkaRv6\nRrKX7P4KiUoxu3mj8oNYhSlIhF0s/RQtWfQ8oEHMuFmbVoxIejHE+XnRJvmYgokW\n9wdaLma6jfrN8aAUdb7qzZatereNOp0WlcqY4clSvB1hVoSa7kPkfPRC/u2uC4Yl\ngSnpCIiMboTIQjaXbyP9H1ZG3E6JilMVdru7AJEsEwKBgQD23Y0Ym4TWlKXkf+oM\nSejWUI+a/r8qgYcFKil6q9NvKlp/X658asqck3NeNTNxVCWq68YlChPfx82BNQ2j\nXX9KZrh4pzuZLtuZeoz3b90Mp3RPV1EOJQ+fbecYypuD4JG8Z4j7GDlqsEn8tcWF\nzTjO7zMlCcDQ+vQzxkXLpNn49wKBgQDj8t0TQXEQG1WTx8za1mFHdCFmP5XbL1Lb\nPqTCLmNoyjJxSvwmUbCTSALTtDeUa53JXo4VRlJKPMM1+v0MlYZ2giimM7rvUXB7\nzGvxogfejNQU+qwGu+ZoUhye+yWzaSR0jCbUGxukmvdO3E0ynZPsHMtQlER+byWk\nwRe99+rI9wKBgQCGJbyPm6si4+IF+lCX3u3s0BhJVJdTJNHXR6MEqyyZIv3Ma5Uo\nvOtfDG1Ly0MqGVzitX6WEBTerPeKd+byWFNcfddOkSm8ww7IJyVFLH+FadW1a7B7\nLD6CFznWafr6PeVT6Tsxn2dMB4IdFjXA0NVG9grn3JXvuf9LxzmUQP/F3wKBgQCS\nxnPRjUbW/zLIWFOw6W90CfPjmbfNjZhFcf22xxXdiKyYRJc9uUYAX9LqLFXJbM4J\ntqe4TTJ5eMyduoIsEy+kqUSxWAfbR04teMBcs19rzrRU2d/g6iZ/L7gcKkzpTB9c\nKE5sLxRKljn9/l564/o2g4fq172Ox9SuVGMMQFFemwKBgCVMWzB/qrCzL1QogF4/\nSCJ942I8XjF4f7IVp1hFrjW2UlkmIxjc6kVdFPDP5SWTvMC2pkGbb+1A9P8uUMJL\nji+mxkijDFic72a1SH6uYai6UyrPHLgvHHDFw384lLrrg+dI3z/SDI0GPI+l19Zp\nXsIR5wlSHLdeGTMUA4RxD+dp\n-----END PRIVATE KEY-----";

/// PEM text of DER bytes under `label`, 64 characters a line.
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A fresh P-256 key as an Apple .p8 file holds it, and its public key (uncompressed point).
#[allow(clippy::expect_used)]
pub fn p256() -> (String, Vec<u8>) {
    let rng = SystemRandom::new();
    let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("P-256 key generation");
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref(), &rng).expect("fresh key loads");
    (pem("PRIVATE KEY", doc.as_ref()), pair.public_key().as_ref().to_vec())
}

/// The public half of `RSA_PEM` (an RSAPublicKey in DER), for checking signatures.
#[allow(clippy::expect_used)]
pub fn rsa_public() -> Vec<u8> {
    let der = crate::push::credentials::pem_der(RSA_PEM, "PRIVATE KEY", "test key").expect("test key is PEM");
    let pair = RsaKeyPair::from_pkcs8(&der).expect("test key is RSA");
    pair.public().as_ref().to_vec()
}

/// A service-account JSON for `project` with `RSA_PEM` as its key.
pub fn service_account(project: &str, email: &str) -> serde_json::Value {
    json!({
        "type": "service_account",
        "project_id": project,
        "private_key_id": "0123456789abcdef",
        "private_key": RSA_PEM,
        "client_email": email,
        "client_id": "1234567890",
        "token_uri": "https://oauth2.googleapis.com/token",
    })
}
