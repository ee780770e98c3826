//! Conformance of `ConsoleStore`: accounts and lockout counting, memberships, sessions,
//! the audit log (its append-only triggers: `tests/console_audit.rs`); and the users explorer's search (`UserStore::search_users`).

use std::sync::Arc;

use tern_platform::domain::*;
use tern_platform::store::*;

use crate::fixtures::*;

async fn accounts_count_wrong_passwords_and_lock(store: Arc<dyn Store>) {
    let op = store
        .create_account("ops@example.com", "$argon2id$x", true, 10)
        .await
        .unwrap();
    assert!(op.operator);
    assert_eq!((op.failed_logins, op.locked_until), (0, None));
    let dup = store.create_account("ops@example.com", "$argon2id$y", false, 11).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    // The platform admins are the operator accounts.
    assert_eq!(store.admin_count().await.unwrap(), 1);
    let member = store
        .create_account("dev@acme.test", "$argon2id$z", false, 12)
        .await
        .unwrap();
    assert_eq!(store.admin_count().await.unwrap(), 1, "a tenant member is no admin");
    assert_eq!(store.admin_by_email("dev@acme.test").await.unwrap(), None);
    assert_eq!(
        store.account_by_email("dev@acme.test").await.unwrap(),
        Some(member.clone())
    );
    assert_eq!(
        store.account_by_email("Dev@ACME.test").await.unwrap(),
        Some(member.clone()),
        "emails match whatever their case"
    );
    assert_eq!(store.account(member.id).await.unwrap(), Some(member.clone()));

    for n in 1..3 {
        let a = store.record_failed_login(member.id, 3, 1_000).await.unwrap();
        assert_eq!((a.failed_logins, a.locked_until), (n, None));
    }
    let locked = store.record_failed_login(member.id, 3, 1_000).await.unwrap();
    assert_eq!((locked.failed_logins, locked.locked_until), (0, Some(1_000)));
    store.clear_failed_logins(member.id).await.unwrap();
    let cleared = store.account(member.id).await.unwrap().unwrap();
    assert_eq!((cleared.failed_logins, cleared.locked_until), (0, None));
    let missing = store.record_failed_login(member.id + 1000, 3, 1).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");
}

async fn memberships_belong_to_one_tenant_each(store: Arc<dyn Store>) {
    let acme = tenant("Acme");
    let globex = tenant("Globex");
    store.create_tenant(&acme).await.unwrap();
    store.create_tenant(&globex).await.unwrap();
    let dev = store.create_account("dev@acme.test", "h", false, 1).await.unwrap();
    let boss = store.create_account("boss@acme.test", "h", false, 1).await.unwrap();
    store
        .set_membership(dev.id, &acme.id, ConsoleRole::Viewer, 5)
        .await
        .unwrap();
    store
        .set_membership(dev.id, &acme.id, ConsoleRole::Developer, 6)
        .await
        .unwrap();
    store
        .set_membership(boss.id, &acme.id, ConsoleRole::Owner, 7)
        .await
        .unwrap();
    let mine = store.memberships_of(dev.id).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!((&mine[0].tenant_id, mine[0].role), (&acme.id, ConsoleRole::Developer));
    let members = store.tenant_members(&acme.id).await.unwrap();
    let emails: Vec<_> = members.iter().map(|m| m.email.as_str()).collect();
    assert_eq!(emails, ["boss@acme.test", "dev@acme.test"]);
    assert!(store.tenant_members(&globex.id).await.unwrap().is_empty());
    let nowhere = store
        .set_membership(dev.id, &tern_platform::ids::TenantId::generate(), ConsoleRole::Owner, 8)
        .await;
    assert!(matches!(nowhere, Err(StoreError::NotFound(_))), "{nowhere:?}");
}

async fn sessions_expire_and_end_everywhere(store: Arc<dyn Store>) {
    let a = store.create_account("ops@example.com", "h", true, 1).await.unwrap();
    let session = |hash: &str, expires_at| ConsoleSession {
        token_hash: hash.into(),
        account_id: a.id,
        csrf_token: format!("csrf-{hash}"),
        ip: "127.0.0.1".into(),
        created_at: 100,
        expires_at,
    };
    store.create_session(&session("one", 1_000)).await.unwrap();
    store.create_session(&session("two", 2_000)).await.unwrap();
    store.create_session(&session("three", 2_000)).await.unwrap();
    assert_eq!(store.session("one", 999).await.unwrap(), Some(session("one", 1_000)));
    assert_eq!(store.session("one", 1_000).await.unwrap(), None, "expired");
    assert_eq!(store.session("nope", 0).await.unwrap(), None);
    store.delete_session("two").await.unwrap();
    assert_eq!(store.session("two", 0).await.unwrap(), None);
    assert_eq!(store.delete_sessions_of(a.id).await.unwrap(), 2);
    assert_eq!(store.session("three", 0).await.unwrap(), None);
}

async fn audit_log_is_append_only_and_scoped(store: Arc<dyn Store>) {
    let acme = tenant("Acme");
    store.create_tenant(&acme).await.unwrap();
    let entry = |tenant: Option<&Tenant>, action: &str| NewAuditEntry {
        actor: "ops@example.com".into(),
        ip: "127.0.0.1".into(),
        tenant_id: tenant.map(|t| t.id.clone()),
        app_id: None,
        action: action.into(),
        target: "x".into(),
        detail: String::new(),
    };
    let first = store.append_audit(&entry(None, "tenant.create"), 10).await.unwrap();
    let second = store.append_audit(&entry(Some(&acme), "app.create"), 11).await.unwrap();
    let third = store
        .append_audit(&entry(Some(&acme), "app.secret.rotate"), 12)
        .await
        .unwrap();
    assert!(first < second && second < third);

    let all = store.audit_log(None, None, 10).await.unwrap();
    let actions: Vec<_> = all.iter().map(|e| e.entry.action.as_str()).collect();
    assert_eq!(actions, ["app.secret.rotate", "app.create", "tenant.create"]);
    assert_eq!(all[0].at, 12);
    let acme_only = store.audit_log(Some(&acme.id), None, 10).await.unwrap();
    assert_eq!(acme_only.len(), 2);
    let older = store.audit_log(Some(&acme.id), Some(third), 10).await.unwrap();
    assert_eq!(older.len(), 1);
    assert_eq!(older[0].entry, entry(Some(&acme), "app.create"));
}

async fn users_are_searched_by_id_prefix_and_name(store: Arc<dyn Store>) {
    let t = tenant("Acme");
    store.create_tenant(&t).await.unwrap();
    let app = store.create_app(&new_app(&t.id, "chat")).await.unwrap();
    let other = store.create_app(&new_app(&t.id, "other")).await.unwrap();
    let profile = |name: &str| UserProfile {
        name: Some(name.into()),
        ..UserProfile::default()
    };
    store
        .upsert_users(
            &app.id,
            &[
                (uid("alice"), profile("Alice Liddell")),
                (uid("alfred"), profile("Alfred")),
                (uid("bob"), profile("Bob 100%_sure")),
            ],
            1,
        )
        .await
        .unwrap();
    store
        .upsert_users(&other.id, &[(uid("alan"), profile("Alan"))], 1)
        .await
        .unwrap();
    let ids = |users: Vec<User>| users.into_iter().map(|u| u.id.as_str().to_owned()).collect::<Vec<_>>();
    assert_eq!(
        ids(store.search_users(&app.id, "al", None, 10).await.unwrap()),
        ["alfred", "alice"]
    );
    assert_eq!(
        ids(store.search_users(&app.id, "LIDDELL", None, 10).await.unwrap()),
        ["alice"]
    );
    assert_eq!(
        ids(store
            .search_users(&app.id, "al", Some(&uid("alfred")), 10)
            .await
            .unwrap()),
        ["alice"]
    );
    assert_eq!(ids(store.search_users(&app.id, "%_", None, 10).await.unwrap()), ["bob"]);
    assert!(
        store.search_users(&app.id, "a_i", None, 10).await.unwrap().is_empty(),
        "_ is no wildcard"
    );
    assert!(
        store.search_users(&app.id, "alan", None, 10).await.unwrap().is_empty(),
        "another app's user"
    );
}

fn signup(token: &str, email: &str, name: &str, expires_at: UnixMillis) -> NewSignup {
    NewSignup {
        token_hash: token.into(),
        email: email.into(),
        password_hash: "$argon2id$s".into(),
        tenant_name: name.into(),
        ip: "127.0.0.1".into(),
        created_at: 100,
        expires_at,
    }
}

async fn a_signup_completes_once_and_all_or_nothing(store: Arc<dyn Store>) {
    use tern_platform::ids::TenantId;
    store
        .create_signup(&signup("h1", "founder@acme.test", "Acme", 1_000))
        .await
        .unwrap();
    assert_eq!(
        store.pending_signup("h1", 500).await.unwrap().map(|s| s.tenant_name),
        Some("Acme".to_owned())
    );
    assert_eq!(store.pending_signup("h1", 1_000).await.unwrap(), None, "expired");
    assert_eq!(store.pending_signup("nope", 500).await.unwrap(), None);
    let late = store
        .complete_signup("h1", &TenantId::generate(), TenantStatus::PendingApproval, 1_000)
        .await;
    assert!(
        matches!(late, Err(StoreError::NotFound(_))),
        "an expired link: {late:?}"
    );

    let id = TenantId::generate();
    let (tenant, owner) = store
        .complete_signup("h1", &id, TenantStatus::PendingApproval, 600)
        .await
        .unwrap();
    assert_eq!((&tenant.id, tenant.name.as_str()), (&id, "Acme"));
    assert_eq!(store.tenant(&id).await.unwrap(), Some(tenant.clone()));
    assert_eq!(owner.email, "founder@acme.test");
    assert!(!owner.operator);
    let members = store.tenant_members(&id).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!((members[0].account_id, members[0].role), (owner.id, ConsoleRole::Owner));
    let again = store
        .complete_signup("h1", &TenantId::generate(), TenantStatus::PendingApproval, 601)
        .await;
    assert!(
        matches!(again, Err(StoreError::NotFound(_))),
        "a link works once: {again:?}"
    );
    assert_eq!(store.pending_signup("h1", 602).await.unwrap(), None);

    // A name taken meanwhile: nothing is written and the link still works.
    store
        .create_signup(&signup("h2", "second@acme.test", "Acme", 10_000))
        .await
        .unwrap();
    let clash = store
        .complete_signup("h2", &TenantId::generate(), TenantStatus::Active, 700)
        .await;
    assert!(matches!(clash, Err(StoreError::Conflict(_))), "{clash:?}");
    assert_eq!(store.account_by_email("second@acme.test").await.unwrap(), None);
    assert!(store.pending_signup("h2", 701).await.unwrap().is_some());
    // And an email that got an account meanwhile.
    store
        .create_signup(&signup("h3", "founder@acme.test", "Acme Two", 10_000))
        .await
        .unwrap();
    let clash = store
        .complete_signup("h3", &TenantId::generate(), TenantStatus::Active, 700)
        .await;
    assert!(matches!(clash, Err(StoreError::Conflict(_))), "{clash:?}");
    assert_eq!(store.tenant_by_name("Acme Two").await.unwrap(), None);
}

async fn pending_tenants_are_decided_once(store: Arc<dyn Store>) {
    let mut waiting = tenant("Waiting");
    waiting.status = TenantStatus::PendingApproval;
    store.create_tenant(&waiting).await.unwrap();
    store.create_tenant(&tenant("Working")).await.unwrap();
    let pending = store
        .tenants_with_status(TenantStatus::PendingApproval, 10)
        .await
        .unwrap();
    assert_eq!(pending, vec![waiting.clone()]);
    assert!(store
        .change_tenant_status(&waiting.id, TenantStatus::PendingApproval, TenantStatus::Declined)
        .await
        .unwrap());
    assert!(
        !store
            .change_tenant_status(&waiting.id, TenantStatus::PendingApproval, TenantStatus::Active)
            .await
            .unwrap(),
        "decided already"
    );
    assert_eq!(
        store.tenant(&waiting.id).await.unwrap().unwrap().status,
        TenantStatus::Declined
    );
    assert!(store
        .tenants_with_status(TenantStatus::PendingApproval, 10)
        .await
        .unwrap()
        .is_empty());
    let missing = store
        .change_tenant_status(
            &tern_platform::ids::TenantId::generate(),
            TenantStatus::PendingApproval,
            TenantStatus::Active,
        )
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");
}

async fn the_mail_outbox_lists_newest_first(store: Arc<dyn Store>) {
    let t = tenant("Acme");
    store.create_tenant(&t).await.unwrap();
    let mail = |to: &str, status: &str| NewMail {
        tenant_id: Some(t.id.clone()),
        recipient: to.into(),
        kind: "signup.verify".into(),
        subject: "Confirm".into(),
        transport: "smtp".into(),
        status: status.into(),
        error: if status == "failed" {
            "refused".into()
        } else {
            String::new()
        },
    };
    let first = store.record_mail(&mail("a@x.test", "sent"), 10).await.unwrap();
    let second = store.record_mail(&mail("b@x.test", "failed"), 11).await.unwrap();
    let log = store.mail_log(None, 10).await.unwrap();
    assert_eq!(log.iter().map(|m| m.id).collect::<Vec<_>>(), [second, first]);
    assert_eq!(log[0].mail, mail("b@x.test", "failed"));
    assert_eq!(log[0].at, 11);
    let older = store.mail_log(Some(second), 10).await.unwrap();
    assert_eq!(older.len(), 1);
    assert_eq!(older[0].mail.recipient, "a@x.test");
}

async fn invitations_are_accepted_once_and_revoked(store: Arc<dyn Store>) {
    let acme = tenant("Acme");
    store.create_tenant(&acme).await.unwrap();
    let inv = |hash: &str, email: &str, role: ConsoleRole| Invitation {
        token_hash: hash.into(),
        tenant_id: acme.id.clone(),
        email: email.into(),
        role,
        invited_by: "boss@acme.test".into(),
        created_at: 100,
        expires_at: 1_000,
        accepted_at: None,
    };
    store
        .create_invitation(&inv("i1", "new@acme.test", ConsoleRole::Developer))
        .await
        .unwrap();
    store
        .create_invitation(&inv("i2", "old@acme.test", ConsoleRole::Admin))
        .await
        .unwrap();
    store
        .create_invitation(&inv("i3", "ops@acme.test", ConsoleRole::Viewer))
        .await
        .unwrap();
    let mut orphan = inv("i4", "x@acme.test", ConsoleRole::Viewer);
    orphan.tenant_id = tern_platform::ids::TenantId::generate();
    assert!(store.create_invitation(&orphan).await.is_err(), "no such tenant");
    assert_eq!(store.tenant_invitations(&acme.id, 500).await.unwrap().len(), 3);
    assert!(
        store.tenant_invitations(&acme.id, 1_000).await.unwrap().is_empty(),
        "expired"
    );

    // A new account needs a password; without one nothing is written.
    let none = store.accept_invitation("i1", None, 200).await;
    assert!(matches!(none, Err(StoreError::Rejected(_))), "{none:?}");
    assert!(store.pending_invitation("i1", 201).await.unwrap().is_some());
    let (accepted, account) = store.accept_invitation("i1", Some("$argon2id$n"), 202).await.unwrap();
    assert_eq!(
        (accepted.role, account.email.as_str()),
        (ConsoleRole::Developer, "new@acme.test")
    );
    let members = store.tenant_members(&acme.id).await.unwrap();
    assert_eq!(
        (members[0].account_id, members[0].role),
        (account.id, ConsoleRole::Developer)
    );
    let again = store.accept_invitation("i1", Some("$argon2id$n"), 203).await;
    assert!(matches!(again, Err(StoreError::NotFound(_))), "once: {again:?}");

    // An existing account keeps its password; an operator cannot join.
    let old = store
        .create_account("OLD@acme.test", "$argon2id$o", false, 1)
        .await
        .unwrap();
    let (_, joined) = store.accept_invitation("i2", None, 204).await.unwrap();
    assert_eq!(joined.id, old.id);
    assert_eq!(joined.password_hash, "$argon2id$o");
    store
        .create_account("ops@acme.test", "$argon2id$p", true, 1)
        .await
        .unwrap();
    let op = store.accept_invitation("i3", None, 205).await;
    assert!(matches!(op, Err(StoreError::Rejected(_))), "{op:?}");
    assert!(store.revoke_invitation(&acme.id, "i3", 206).await.unwrap());
    assert!(
        !store.revoke_invitation(&acme.id, "i3", 207).await.unwrap(),
        "revoked already"
    );
    assert!(store.pending_invitation("i3", 208).await.unwrap().is_none());

    assert!(store.remove_membership(old.id, &acme.id).await.unwrap());
    assert!(!store.remove_membership(old.id, &acme.id).await.unwrap());
    assert_eq!(store.tenant_members(&acme.id).await.unwrap().len(), 1);
}

async fn usage_hours_add_up_and_keep_the_peak(store: Arc<dyn Store>) {
    use tern_platform::usage::{UsageCounts, UsageHour, HOUR_MS};
    let app = crate::fixtures::app(store.as_ref()).await;
    let other = crate::fixtures::app(store.as_ref()).await;
    let h = 100 * HOUR_MS;
    let hour = |app: &App, hour, m, c, p| UsageHour {
        app_id: app.id.clone(),
        hour,
        counts: UsageCounts {
            messages: m,
            api_calls: c,
            connections: p,
            errors: c / 2,
        },
    };
    store
        .add_usage(
            &[
                hour(&app, h, 2, 5, 3),
                hour(&app, h + HOUR_MS, 1, 0, 1),
                hour(&other, h, 9, 9, 9),
            ],
            &[],
        )
        .await
        .unwrap();
    // Another node's counts for the same hour: summed, the peak is the larger.
    store.add_usage(&[hour(&app, h, 1, 1, 2)], &[]).await.unwrap();
    let got = store.usage(&app.id, h, h + 2 * HOUR_MS).await.unwrap();
    let mut first = hour(&app, h, 3, 6, 3);
    first.counts.errors = 2; // 5 / 2 + 1 / 2, as each node counted them
    assert_eq!(got, vec![first, hour(&app, h + HOUR_MS, 1, 0, 1)]);
    assert_eq!(
        store.usage(&app.id, h + HOUR_MS, h + 2 * HOUR_MS).await.unwrap().len(),
        1
    );
    assert!(store.usage(&app.id, 0, h).await.unwrap().is_empty());
    // The platform: every app's hours added up (the peaks too), hour by hour.
    let sum = |m, c, p, e| UsageCounts {
        messages: m,
        api_calls: c,
        connections: p,
        errors: e,
    };
    assert_eq!(
        store.platform_usage(h, h + 2 * HOUR_MS).await.unwrap(),
        vec![(h, sum(12, 15, 12, 6)), (h + HOUR_MS, sum(1, 0, 1, 0))]
    );
    assert_eq!(
        store.platform_usage(h + HOUR_MS, h + 2 * HOUR_MS).await.unwrap(),
        vec![(h + HOUR_MS, sum(1, 0, 1, 0))]
    );
    assert!(store.platform_usage(0, h).await.unwrap().is_empty());
}

conformance!(
    accounts_count_wrong_passwords_and_lock,
    memberships_belong_to_one_tenant_each,
    sessions_expire_and_end_everywhere,
    audit_log_is_append_only_and_scoped,
    users_are_searched_by_id_prefix_and_name,
    a_signup_completes_once_and_all_or_nothing,
    pending_tenants_are_decided_once,
    the_mail_outbox_lists_newest_first,
    invitations_are_accepted_once_and_revoked,
    usage_hours_add_up_and_keep_the_peak,
);
