//! JWTs (user tokens and server bearer tokens, SIGNING.md §1-2): any string is split,
//! decoded and checked without panicking; a token Tern mints verifies with its secret to
//! the claims it was given, and not with another secret; no one-character change to a
//! minted token verifies.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tern_platform::auth::token::{
    mint_server_token, mint_user_token, verify_hs256, ServerClaims, UnverifiedJwt, UserClaims,
};
use tern_platform::ids::{AppKey, UserId};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    token: &'a str,
    app_key: &'a str,
    user: &'a str,
    secret: &'a str,
    iat: i64,
    exp: i64,
    jti: Option<&'a str>,
    tamper_at: usize,
    tamper_with: u8,
}

const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fuzz_target!(|input: Input<'_>| {
    // Any string: parse, read claims, verify.
    if let Ok(jwt) = UnverifiedJwt::parse(input.token) {
        let _ = jwt.claims::<UserClaims>();
        let _ = jwt.claims::<ServerClaims>();
    }
    let _ = verify_hs256::<UserClaims>(input.token, &[input.secret]);
    let _ = verify_hs256::<ServerClaims>(input.token, &[input.secret, "another"]);

    // Minted tokens.
    let (Ok(app_key), Ok(user)) = (AppKey::parse(input.app_key), UserId::parse(input.user)) else {
        return;
    };
    let token = mint_user_token(&app_key, input.secret, &user, input.iat, input.exp, input.jti);
    let claims: UserClaims = verify_hs256(&token, &[input.secret]).unwrap_or_else(|e| panic!("{token}: {e:?}"));
    assert_eq!(claims.iss, app_key.as_str());
    assert_eq!(claims.sub, user.as_str());
    assert_eq!((claims.iat, claims.exp), (input.iat, input.exp));
    assert_eq!(claims.jti.as_deref(), input.jti);
    assert_eq!(claims.nbf, None);
    let other = format!("{}x", input.secret);
    assert!(verify_hs256::<UserClaims>(&token, &[&other]).is_err());

    // One character replaced by another of the alphabet: the token no longer verifies.
    let bytes = token.as_bytes();
    let at = input.tamper_at % bytes.len();
    let with = BASE64URL[usize::from(input.tamper_with) % BASE64URL.len()];
    if bytes[at] != b'.' && bytes[at] != with {
        let mut tampered = bytes.to_vec();
        tampered[at] = with;
        let tampered = String::from_utf8(tampered).expect("ASCII");
        assert!(
            verify_hs256::<UserClaims>(&tampered, &[input.secret]).is_err(),
            "tampered token verifies: {tampered}"
        );
    }

    let server = mint_server_token(&app_key, input.secret, input.iat, input.exp);
    let claims: ServerClaims = verify_hs256(&server, &[input.secret]).unwrap_or_else(|e| panic!("{server}: {e:?}"));
    assert_eq!(claims.iss, app_key.as_str());
    assert_eq!(claims.scope, "server");
    assert_eq!((claims.iat, claims.exp), (input.iat, input.exp));
});
