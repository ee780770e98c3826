//! Conformance of `OperatorApiStore`: API tokens kept by hash (never by value), listed per
//! account, revoked once, gone with their account; and the tenant search by name.

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

conformance!(
    api_tokens_are_found_by_hash_listed_and_revoked_once,
    tenants_are_searched_by_part_of_their_name,
);
