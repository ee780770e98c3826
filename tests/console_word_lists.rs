//! An app's sensitive-word lists in the console and the operator API, against the real
//! binary on SQLite and PostgreSQL: a list made on the page filters the server API's sends
//! at once and is what the server API reads; the platform's checks answer a 400 page (the
//! console) or `invalid_argument` naming the field (the operator API) and keep nothing; a
//! form without the CSRF token and a viewer change nothing; every change is audited;
//! another tenant's owner gets 404 from every word-list URL and changes nothing.
#![allow(clippy::unwrap_used)]

mod common;

use common::browser::{admin, between, databases, error_code, member_of, operator, start_console, tenant_with_app};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tern_sdk::server::{ServerClient, ServerError};

async fn server_lists(api: &ServerClient) -> Value {
    api.request::<Value>("GET", "/v1/moderation/word-lists", None)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn word_lists_are_edited_in_the_console_and_the_operator_api() {
    for pg in databases().await {
        eprintln!("on {}", if pg.is_some() { "postgres" } else { "sqlite" });
        let env: Vec<(&str, &str)> = pg.iter().map(|u| ("TERN_DATABASE_URL", u.as_str())).collect();
        let (server, _dir) = start_console(&env);
        let mut op = operator(&server).await;
        let mine = tenant_with_app(&mut op, "Words").await;
        let other = tenant_with_app(&mut op, "Elsewhere").await;
        let app = format!("/console/t/{}/apps/{}", mine.tenant, mine.app);
        let rest = format!("/tenants/{}/apps/{}", mine.tenant, mine.app);
        let api = ServerClient::new(&server.base, &mine.app_key, &mine.app_secret);
        api.create_user("alice", "Alice").await.unwrap();
        api.create_user("bob", "Bob").await.unwrap();

        // The app's page links to the lists; there are none yet.
        let page = op.get(&app).await;
        let summary = between(&page.body, "<section id=\"word-lists-summary\">", "</section>");
        assert!(
            summary.contains("No word lists") && summary.contains("/word-lists\">View and edit"),
            "{summary}"
        );

        // A list made on the page: the sends are filtered by it at once.
        let saved = op
            .change(
                &format!("{app}/word-lists"),
                &[
                    ("name", "banned"),
                    ("policy", "reject"),
                    ("words", "durian\n  spoiler  \n\nDURIAN\n"),
                ],
            )
            .await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
        assert!(saved.location().ends_with("/word-lists?done=word-list-saved"));
        let page = op.get(&format!("{app}/word-lists")).await;
        assert_eq!(page.status, StatusCode::OK);
        let list = between(&page.body, "id=\"list-banned\"", "</div>");
        assert!(
            list.contains("reject") && list.contains("<span class=\"word-count\">2</span>"),
            "{list}"
        );
        assert!(list.contains("durian\nspoiler</textarea>"), "{list}");
        let refused = api.send_text("alice", "bob", "m1", "I love Durian").await;
        assert!(
            matches!(&refused, Err(ServerError::Api { code, .. }) if code == "content_rejected"),
            "{refused:?}"
        );
        api.send_text("alice", "bob", "m2", "I love mango").await.unwrap();
        assert_eq!(
            server_lists(&api).await["word_lists"][0]["words"],
            json!(["durian", "spoiler"])
        );

        // The platform's checks: a 400 page saying why, and nothing kept.
        // 10,001 words (the same one: the count is checked before duplicates are dropped),
        // within the form's 64 KiB.
        let too_many = "a\n".repeat(10_001);
        let long_word = "x".repeat(65);
        for (name, policy, words, says) in [
            ("banned", "reject", too_many.as_str(), "at most 10000 words"),
            ("banned", "reject", long_word.as_str(), "at most 64 characters"),
            ("banned", "reject", "", "at least one word"),
            ("has space", "reject", "a", "name must be"),
            ("banned", "burn", "a", "policy must be"),
        ] {
            let answer = op
                .change(
                    &format!("{app}/word-lists"),
                    &[("name", name), ("policy", policy), ("words", words)],
                )
                .await;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{says}: {}", answer.body);
            assert!(
                answer.body.contains("role=\"alert\"") && answer.body.contains(says),
                "{says}: {}",
                answer.body
            );
        }
        let lists = server_lists(&api).await;
        assert_eq!(lists["word_lists"].as_array().unwrap().len(), 1, "{lists}");
        assert_eq!(
            lists["word_lists"][0]["words"],
            json!(["durian", "spoiler"]),
            "nothing half-written"
        );

        // Without the session's CSRF token: refused, nothing kept.
        let forged = op
            .post(
                &format!("{app}/word-lists"),
                &[("name", "forged"), ("policy", "replace"), ("words", "x")],
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
        let forged = op.post(&format!("{app}/word-lists/banned/delete"), &[]).await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        assert_eq!(server_lists(&api).await["word_lists"].as_array().unwrap().len(), 1);

        // The operator API: the same lists, the same checks.
        let (s, v) = admin(&mut op, "GET", &format!("{rest}/word-lists"), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["word_lists"][0]["name"], "banned", "{v}");
        assert_eq!(v["word_lists"][0]["policy"], "reject", "{v}");
        let (s, v) = admin(
            &mut op,
            "PUT",
            &format!("{rest}/word-lists/soft"),
            Some(json!({"policy": "replace", "words": ["heck", "darn"]})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["words"], json!(["heck", "darn"]), "{v}");
        let (s, v) = admin(&mut op, "GET", &format!("{rest}/word-lists/soft"), None).await;
        assert_eq!((s, v["policy"].as_str()), (StatusCode::OK, Some("replace")), "{v}");
        let too_many = vec!["a"; 10_001];
        for (body, field) in [
            (json!({"policy": "replace", "words": too_many}), "words"),
            (json!({"policy": "replace", "words": ["y".repeat(65)]}), "words"),
            (json!({"policy": "burn", "words": ["a"]}), "policy"),
        ] {
            let (s, v) = admin(&mut op, "PUT", &format!("{rest}/word-lists/soft"), Some(body)).await;
            assert_eq!(
                (s, error_code(&v)),
                (StatusCode::BAD_REQUEST, "invalid_argument"),
                "{v}"
            );
            assert_eq!(v["error"]["field"], field, "{v}");
        }
        let (s, v) = admin(
            &mut op,
            "PUT",
            &format!("{rest}/word-lists/has%20space"),
            Some(json!({"policy": "replace", "words": ["a"]})),
        )
        .await;
        assert_eq!(
            (s, error_code(&v), v["error"]["field"].as_str()),
            (StatusCode::BAD_REQUEST, "invalid_argument", Some("name")),
            "{v}"
        );
        let (s, v) = admin(
            &mut op,
            "PUT",
            &format!("{rest}/word-lists/soft"),
            Some(json!({"policy": "replace", "words": ["a"], "extra": 1})),
        )
        .await;
        assert_eq!((s, error_code(&v)), (StatusCode::BAD_REQUEST, "invalid_json"), "{v}");
        let (_, v) = admin(&mut op, "GET", &format!("{rest}/word-lists/soft"), None).await;
        assert_eq!(v["words"], json!(["heck", "darn"]), "nothing half-written: {v}");
        let (s, v) = admin(&mut op, "GET", &format!("{rest}/word-lists/nope"), None).await;
        assert_eq!((s, error_code(&v)), (StatusCode::NOT_FOUND, "not_found"));

        // A viewer reads, and changes nothing.
        let mut viewer = member_of(&mut op, &server, &mine.tenant, "viewer@words.example", "viewer").await;
        let page = viewer.get(&format!("{app}/word-lists")).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("heck") && !page.body.contains("id=\"new-word-list\""));
        let denied = viewer
            .change(
                &format!("{app}/word-lists"),
                &[("name", "banned"), ("policy", "replace"), ("words", "x")],
            )
            .await;
        assert_eq!(denied.status, StatusCode::FORBIDDEN, "{}", denied.body);
        let denied = viewer.change(&format!("{app}/word-lists/banned/delete"), &[]).await;
        assert_eq!(denied.status, StatusCode::FORBIDDEN);
        let (s, v) = admin(&mut viewer, "DELETE", &format!("{rest}/word-lists/soft"), None).await;
        assert_eq!((s, error_code(&v)), (StatusCode::FORBIDDEN, "forbidden"), "{v}");
        assert_eq!(server_lists(&api).await["word_lists"].as_array().unwrap().len(), 2);

        // Another tenant's owner: 404 from every URL, also with the app under their own
        // tenant's URL, and nothing changes.
        let mut theirs = member_of(&mut op, &server, &other.tenant, "owner@elsewhere.example", "owner").await;
        let under_theirs = format!("/console/t/{}/apps/{}", other.tenant, mine.app);
        for path in [format!("{app}/word-lists"), format!("{under_theirs}/word-lists")] {
            let page = theirs.get(&path).await;
            assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
            assert!(!page.body.contains("durian"), "{path}");
            let page = theirs
                .change(&path, &[("name", "banned"), ("policy", "replace"), ("words", "x")])
                .await;
            assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
            let page = theirs.change(&format!("{path}/banned/delete"), &[]).await;
            assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        }
        let their_rest = format!("/tenants/{}/apps/{}", other.tenant, mine.app);
        for base in [&rest, &their_rest] {
            for (method, path, body) in [
                ("GET", format!("{base}/word-lists"), None),
                ("GET", format!("{base}/word-lists/banned"), None),
                (
                    "PUT",
                    format!("{base}/word-lists/banned"),
                    Some(json!({"policy": "replace", "words": ["x"]})),
                ),
                ("DELETE", format!("{base}/word-lists/banned"), None),
            ] {
                let (s, v) = admin(&mut theirs, method, &path, body).await;
                assert_eq!(
                    (s, error_code(&v)),
                    (StatusCode::NOT_FOUND, "not_found"),
                    "{method} {path}"
                );
            }
        }
        let lists = server_lists(&api).await;
        assert_eq!(lists["word_lists"][0]["words"], json!(["durian", "spoiler"]), "{lists}");
        assert_eq!(lists["word_lists"][0]["policy"], "reject", "{lists}");

        // Deleting on the page: sends pass again. Every change is in the audit log.
        let gone = op.change(&format!("{app}/word-lists/banned/delete"), &[]).await;
        assert_eq!(gone.status, StatusCode::SEE_OTHER, "{}", gone.body);
        api.send_text("alice", "bob", "m3", "durian again").await.unwrap();
        let (s, _) = admin(&mut op, "DELETE", &format!("{rest}/word-lists/soft"), None).await;
        assert_eq!(s, StatusCode::OK);
        assert!(server_lists(&api).await["word_lists"].as_array().unwrap().is_empty());
        let log = op.get(&format!("/console/t/{}/audit", mine.tenant)).await;
        assert_eq!(log.body.matches("app.word_list.put").count(), 2, "{}", log.body);
        assert_eq!(log.body.matches("app.word_list.delete").count(), 2, "{}", log.body);
        assert!(log.body.contains("reject, 2 words"), "{}", log.body);
    }
}
