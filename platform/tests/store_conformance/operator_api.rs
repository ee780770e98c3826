//! Conformance of `OperatorApiStore`: API tokens kept by hash (never by value), listed per
//! account, revoked once, gone with their account; the tenant search by name; operator
//! invitations accepted once, in time, making a new or an existing account an operator.

use std::sync::Arc;

use tern_platform::domain::*;
use tern_platform::ids::TenantId;
use tern_platform::store::*;

use crate::fixtures::*;

fn token(id: &str, account: &ConsoleAccount, tenant: Option<&TenantId>, at: i64) -> ApiToken {
    ApiToken {
        id: id.into(),
        account_id: account.id,
        email: account.email.clone(),
        name: format!("name of {id}"),
        tenant_id: tenant.cloned(),
        role: tenant.map(|_| ConsoleRole::Developer),
        created_at: at,
        revoked_at: None,
        expires_at: tenant.map(|_| at + 1000),
        last_used_at: None,
    }
}

async fn api_tokens_are_found_by_hash_listed_and_revoked_once(store: Arc<dyn Store>) {
    let acme = tenant("Acme");
    store.create_tenant(&acme).await.unwrap();
    let dev = store.create_account("dev@acme.test", "h", false, 1).await.unwrap();
    let ops = store.create_account("ops@example.com", "h", true, 1).await.unwrap();
    let t1 = token("at_1", &dev, Some(&acme.id), 10);
    let t2 = token("at_2", &dev, None, 20);
    store.create_api_token(&t1, "hash-1").await.unwrap();
    store.create_api_token(&t2, "hash-2").await.unwrap();
    store
        .create_api_token(&token("at_3", &ops, None, 30), "hash-3")
        .await
        .unwrap();
    let same_hash = store.create_api_token(&token("at_4", &ops, None, 40), "hash-3").await;
    assert!(same_hash.is_err(), "a token hash is unique");
    let no_tenant = store
        .create_api_token(&token("at_5", &dev, Some(&TenantId::generate()), 50), "hash-5")
        .await;
    assert!(matches!(no_tenant, Err(StoreError::NotFound(_))), "{no_tenant:?}");

    assert_eq!(store.api_token_by_hash("hash-1").await.unwrap(), Some(t1.clone()));
    assert_eq!(
        store.api_token_by_hash("at_1").await.unwrap(),
        None,
        "found by hash only"
    );
    assert_eq!(store.api_token("at_2").await.unwrap(), Some(t2.clone()));
    assert_eq!(
        store.api_tokens_of(dev.id).await.unwrap(),
        vec![t2.clone(), t1.clone()],
        "newest first, only the account's"
    );

    assert!(store.revoke_api_token("at_1", 99).await.unwrap());
    assert!(!store.revoke_api_token("at_1", 100).await.unwrap(), "once");
    assert!(!store.revoke_api_token("at_none", 100).await.unwrap());
    let revoked = store.api_token_by_hash("hash-1").await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(99), "a revoked token is still found, marked");
    assert_eq!(revoked.expires_at, Some(1010), "its end is kept");

    // A use is written at most once per interval.
    assert!(store.touch_api_token("at_2", 1_000, 60_000).await.unwrap());
    assert!(
        !store.touch_api_token("at_2", 30_000, 60_000).await.unwrap(),
        "too soon"
    );
    assert_eq!(
        store.api_token("at_2").await.unwrap().unwrap().last_used_at,
        Some(1_000)
    );
    assert!(store.touch_api_token("at_2", 61_000, 60_000).await.unwrap());
    assert_eq!(
        store.api_token("at_2").await.unwrap().unwrap().last_used_at,
        Some(61_000)
    );
    assert!(!store.touch_api_token("at_none", 1, 60_000).await.unwrap());
}

async fn tenants_are_searched_by_part_of_their_name(store: Arc<dyn Store>) {
    for name in ["Acme Corp", "acme labs", "Globex", "100%_real"] {
        store.create_tenant(&tenant(name)).await.unwrap();
    }
    let names = |ts: Vec<Tenant>| {
        let mut n: Vec<String> = ts.into_iter().map(|t| t.name).collect();
        n.sort();
        n
    };
    assert_eq!(
        names(store.search_tenants("ACME", None, 10).await.unwrap()),
        vec!["Acme Corp", "acme labs"]
    );
    assert_eq!(
        names(store.search_tenants("%_", None, 10).await.unwrap()),
        vec!["100%_real"],
        "LIKE wildcards match themselves"
    );
    let first = store.search_tenants("acme", None, 1).await.unwrap();
    let rest = store.search_tenants("acme", Some(&first[0].id), 10).await.unwrap();
    assert_eq!(rest.len(), 1, "paged by id");
    assert_ne!(rest[0].id, first[0].id);
}

fn operator_invitation(hash: &str, email: &str, at: i64) -> OperatorInvitation {
    OperatorInvitation {
        token_hash: hash.into(),
        email: email.into(),
        invited_by: "ops@example.com".into(),
        created_at: at,
        expires_at: at + 1000,
        accepted_at: None,
    }
}

async fn operator_invitations_are_accepted_once_and_in_time(store: Arc<dyn Store>) {
    for (hash, email, at) in [
        ("h-new", "new@ops.test", 10),
        ("h-old", "old@ops.test", 20),
        ("h-dev", "dev@acme.test", 30),
    ] {
        store
            .create_operator_invitation(&operator_invitation(hash, email, at))
            .await
            .unwrap();
    }
    let dev = store
        .create_account("dev@acme.test", "dev-hash", false, 1)
        .await
        .unwrap();
    let open = store.operator_invitations(100).await.unwrap();
    assert_eq!(
        open.iter().map(|i| i.token_hash.as_str()).collect::<Vec<_>>(),
        ["h-dev", "h-old", "h-new"],
        "newest first"
    );
    assert!(store.pending_operator_invitation("h-new", 100).await.unwrap().is_some());
    assert!(
        store
            .pending_operator_invitation("h-new", 1010)
            .await
            .unwrap()
            .is_none(),
        "expired"
    );

    // A new account needs a password; without one nothing is used up.
    let r = store.accept_operator_invitation("h-new", None, 100).await;
    assert!(matches!(r, Err(StoreError::Rejected(_))), "{r:?}");
    assert!(store.pending_operator_invitation("h-new", 100).await.unwrap().is_some());
    let (inv, account) = store
        .accept_operator_invitation("h-new", Some("new-hash"), 100)
        .await
        .unwrap();
    assert_eq!((inv.email.as_str(), inv.accepted_at), ("new@ops.test", Some(100)));
    assert!(account.operator && account.email == "new@ops.test");
    let again = store.accept_operator_invitation("h-new", Some("other"), 101).await;
    assert!(matches!(again, Err(StoreError::NotFound(_))), "once: {again:?}");

    // Expired, and revoked: refused; revoking twice is false.
    let late = store.accept_operator_invitation("h-old", Some("x"), 1020).await;
    assert!(matches!(late, Err(StoreError::NotFound(_))), "{late:?}");
    assert!(store.account_by_email("old@ops.test").await.unwrap().is_none());
    assert!(store.revoke_operator_invitation("h-dev", 200).await.unwrap());
    store
        .create_operator_invitation(&operator_invitation("h-dev2", "DEV@acme.test", 300))
        .await
        .unwrap();
    assert!(!store.revoke_operator_invitation("h-dev", 301).await.unwrap());
    assert!(matches!(
        store.accept_operator_invitation("h-dev", None, 301).await,
        Err(StoreError::NotFound(_))
    ));

    // An existing account becomes an operator and keeps its password.
    let (_, account) = store.accept_operator_invitation("h-dev2", None, 310).await.unwrap();
    assert_eq!((account.id, account.operator), (dev.id, true));
    let stored = store.account(dev.id).await.unwrap().unwrap();
    assert_eq!((stored.operator, stored.password_hash.as_str()), (true, "dev-hash"));
    let open = store.operator_invitations(320).await.unwrap();
    assert_eq!(
        open.iter().map(|i| i.token_hash.as_str()).collect::<Vec<_>>(),
        ["h-old"],
        "accepted and revoked ones are no longer open"
    );
    assert!(store.operator_invitations(1020).await.unwrap().is_empty());
}

conformance!(
    operator_invitations_are_accepted_once_and_in_time,
    api_tokens_are_found_by_hash_listed_and_revoked_once,
    tenants_are_searched_by_part_of_their_name,
);
