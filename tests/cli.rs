//! The admin CLI as a user runs it: success prints what the docs promise (and `--json`
//! parses), failures exit non-zero with exactly one `error: ...` line on stderr.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use assert_cmd::assert::Assert;
use assert_cmd::prelude::*;
use common::{tern_command, UNREACHABLE_PG};

fn tern(dir: &Path, args: &[&str]) -> Assert {
    tern_command(dir).args(args).assert()
}

/// Asserts failure with one `error:` line containing `needle`; returns the line.
fn fails_with(assert: Assert, needle: &str) -> String {
    let out = assert.failure().get_output().clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr, got {stderr:?}");
    assert!(lines[0].starts_with("error: "), "{stderr:?}");
    assert!(lines[0].contains(needle), "{needle:?} not in {stderr:?}");
    assert!(out.stdout.is_empty(), "nothing on stdout on failure");
    lines[0].to_owned()
}

fn json_of(assert: Assert) -> serde_json::Value {
    let out = assert.success().get_output().stdout.clone();
    serde_json::from_slice(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out)))
}

#[test]
fn bad_arguments_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    fails_with(tern(dir.path(), &["token", "--app", "ak_abc"]), "--user");
    fails_with(tern(dir.path(), &["frobnicate"]), "frobnicate");
    fails_with(tern(dir.path(), &["serve", "--roles", "database"]), "database");
    fails_with(tern(dir.path(), &["tenant"]), "");
    fails_with(tern(dir.path(), &[]), "command");
}

#[test]
fn help_and_version_exit_zero() {
    let dir = tempfile::tempdir().unwrap();
    let out = tern(dir.path(), &["--help"]).success().get_output().stdout.clone();
    let text = String::from_utf8(out).unwrap();
    for cmd in ["serve", "migrate", "tenant", "app", "token"] {
        assert!(text.contains(cmd), "{text}");
    }
    tern(dir.path(), &["--version"]).success();
}

#[test]
fn bad_configuration_is_a_one_line_error_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    fails_with(
        tern_command(dir.path())
            .env("TERN_HTTP_ADDR", "localhost")
            .args(["tenant", "create", "Acme"])
            .assert(),
        "TERN_HTTP_ADDR",
    );
    fails_with(
        tern_command(dir.path())
            .env("TERN_MASTER_KEY", "abc")
            .args(["tenant", "create", "Acme"])
            .assert(),
        "TERN_MASTER_KEY",
    );
    fails_with(
        tern_command(dir.path())
            .env("TERN_DATABASE_URL", "mysql://root@localhost/tern")
            .args(["tenant", "create", "Acme"])
            .assert(),
        "TERN_DATABASE_URL",
    );
    let file = dir.path().join("custom.toml");
    std::fs::write(&file, "http_addr = \"127.0.0.1:1\"\nmax_conections = 5\n").unwrap();
    fails_with(
        tern(
            dir.path(),
            &["--config", file.to_str().unwrap(), "tenant", "create", "Acme"],
        ),
        "max_conections",
    );
    std::fs::write(dir.path().join("tern.toml"), "heartbeat_seconds = \"soon\"\n").unwrap();
    fails_with(tern(dir.path(), &["tenant", "create", "Acme"]), "heartbeat_seconds");
    fails_with(
        tern(dir.path(), &["--config", "/nonexistent/tern.toml", "migrate"]),
        "/nonexistent/tern.toml",
    );
}

#[test]
fn an_unreachable_database_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let line = fails_with(
        tern_command(dir.path())
            .env("TERN_DATABASE_URL", "postgres://tern:s3cret-pw@127.0.0.1:1/none")
            .args(["tenant", "create", "Acme"])
            .assert(),
        "database",
    );
    assert!(!line.contains("s3cret-pw"), "the password leaked: {line}");
    fails_with(
        tern_command(dir.path())
            .env("TERN_DATABASE_URL", UNREACHABLE_PG)
            .args(["token", "--app", "ak_abcdefgh", "--user", "alice"])
            .assert(),
        "database",
    );
}

#[test]
fn tenants_apps_secrets_and_tokens_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tenant = json_of(tern(d, &["tenant", "create", "Acme", "--json"]));
    let tenant_id = tenant["tenant_id"].as_str().unwrap().to_owned();
    assert!(tenant_id.starts_with("tn_"));
    assert_eq!(tenant["name"], "Acme");
    fails_with(tern(d, &["tenant", "create", "Acme"]), "already exists");
    fails_with(tern(d, &["tenant", "create", ""]), "tenant name");

    // By name, and by id.
    let app = json_of(tern(
        d,
        &["app", "create", "--tenant", "Acme", "--name", "chat", "--json"],
    ));
    let app_key = app["app_key"].as_str().unwrap().to_owned();
    assert!(app_key.starts_with("ak_"));
    assert!(app["app_secret"].as_str().unwrap().starts_with("sk_"));
    assert!(app["webhook_secret"].as_str().unwrap().starts_with("whsec_"));
    let second = json_of(tern(
        d,
        &["app", "create", "--tenant", &tenant_id, "--name", "support", "--json"],
    ));
    assert_ne!(second["app_key"], app["app_key"]);
    fails_with(
        tern(d, &["app", "create", "--tenant", "Acme", "--name", "chat"]),
        "chat",
    );
    fails_with(
        tern(d, &["app", "create", "--tenant", "Nobody", "--name", "x"]),
        "unknown tenant",
    );

    // Text output shows the secrets once, labelled.
    let out = tern(d, &["app", "create", "--tenant", "Acme", "--name", "text"])
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    for label in ["app_key:", "app_secret:", "webhook_secret:"] {
        assert!(text.contains(label), "{text}");
    }

    let rotated = json_of(tern(d, &["app", "rotate-secret", "--app", &app_key, "--json"]));
    assert!(rotated["app_secret"].as_str().unwrap().starts_with("sk_"));
    assert_ne!(rotated["app_secret"], app["app_secret"]);
    fails_with(
        tern(d, &["app", "rotate-secret", "--app", "ak_nosuchapp1"]),
        "unknown app",
    );
    let webhook = json_of(tern(d, &["app", "rotate-webhook-secret", "--app", &app_key, "--json"]));
    assert!(webhook["webhook_secret"].as_str().unwrap().starts_with("whsec_"));
    assert_ne!(webhook["webhook_secret"], app["webhook_secret"]);
    fails_with(
        tern(d, &["app", "rotate-webhook-secret", "--app", "ak_nosuchapp1"]),
        "unknown app",
    );

    let settings = json_of(tern(d, &["app", "settings", "--app", &app_key, "--json"]));
    assert_eq!(settings["group_member_limit"], 2000);
    let changed = json_of(tern(
        d,
        &[
            "app",
            "settings",
            "--app",
            &app_key,
            "--set",
            "group_member_limit=10000",
            "--set",
            "rooms_created_on_join=false",
            "--json",
        ],
    ));
    assert_eq!(changed["group_member_limit"], 10000);
    assert_eq!(changed["rooms_created_on_join"], false);
    assert_eq!(changed["recall_window_seconds"], settings["recall_window_seconds"]);
    fails_with(
        tern(
            d,
            &["app", "settings", "--app", &app_key, "--set", "group_member_limit=1"],
        ),
        "group_member_limit",
    );
    fails_with(
        tern(d, &["app", "settings", "--app", &app_key, "--set", "colour=blue"]),
        "colour",
    );
    fails_with(
        tern(d, &["app", "settings", "--app", &app_key, "--set", "novalue"]),
        "NAME=VALUE",
    );
    let kept = json_of(tern(d, &["app", "settings", "--app", &app_key, "--json"]));
    assert_eq!(kept["group_member_limit"], 10000, "a refused change keeps the settings");

    let token = json_of(tern(
        d,
        &["token", "--app", &app_key, "--user", "alice", "--ttl", "600", "--json"],
    ));
    assert_eq!(token["token"].as_str().unwrap().split('.').count(), 3);
    assert!(token["expires_at"].as_i64().unwrap() > 0);
    let plain = tern(d, &["token", "--app", &app_key, "--user", "alice"])
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(String::from_utf8(plain).unwrap().trim().split('.').count(), 3);
    fails_with(
        tern(d, &["token", "--app", "ak_nosuchapp1", "--user", "alice"]),
        "unknown app",
    );
    fails_with(
        tern(d, &["token", "--app", &app_key, "--user", "alice", "--ttl", "0"]),
        "ttl",
    );
    fails_with(tern(d, &["token", "--app", &app_key, "--user", "no spaces"]), "user id");

    // The key file was created with the first secret; without it the CLI refuses to go on.
    std::fs::remove_file(d.join("data").join("master.key")).unwrap();
    fails_with(tern(d, &["token", "--app", &app_key, "--user", "alice"]), "master key");
}

/// Runs `f` against the test's SQLite store, as a running server would see it.
fn with_store<T>(d: &Path, f: impl AsyncFnOnce(std::sync::Arc<dyn tern_platform::store::Store>) -> T) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}/tern.db", d.join("data").display());
        let store = tern_platform::store::connect(&url).await.unwrap();
        f(store).await
    })
}

#[test]
fn webhook_set_show_dead_and_redeliver() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tern(d, &["tenant", "create", "Acme"]).success();
    let app = json_of(tern(
        d,
        &["app", "create", "--tenant", "Acme", "--name", "chat", "--json"],
    ));
    let key = app["app_key"].as_str().unwrap().to_owned();
    let other = json_of(tern(
        d,
        &["app", "create", "--tenant", "Acme", "--name", "other", "--json"],
    ));
    let other_key = other["app_key"].as_str().unwrap().to_owned();

    // Nothing configured yet.
    let shown = json_of(tern(d, &["webhook", "show", "--app", &key, "--json"]));
    assert_eq!(shown["url"], serde_json::Value::Null);
    assert_eq!(shown["before_send"]["enabled"], false);

    // The same validation as PUT /v1/webhook: internal addresses need the operator's
    // permission, and the error says how to give it.
    let hook = "http://127.0.0.1:9/hook";
    fails_with(
        tern(d, &["webhook", "set", "--app", &key, "--url", hook]),
        "TERN_WEBHOOK_ALLOW_PRIVATE",
    );
    let private = |args: &[&str]| {
        tern_command(d)
            .env("TERN_WEBHOOK_ALLOW_PRIVATE", "1")
            .args(args)
            .assert()
    };
    fails_with(
        private(&[
            "webhook",
            "set",
            "--app",
            &key,
            "--url",
            hook,
            "--events",
            "message.sent,message.exploded",
        ]),
        "unknown event \"message.exploded\"",
    );
    fails_with(
        private(&[
            "webhook",
            "set",
            "--app",
            &key,
            "--url",
            hook,
            "--before-send",
            "--timeout-ms",
            "99",
        ]),
        "timeout_ms must be from 100 to 5000",
    );
    fails_with(
        private(&["webhook", "set", "--app", &key, "--url", hook, "--policy", "maybe"]),
        "unknown policy",
    );
    fails_with(
        private(&["webhook", "set", "--app", &key, "--url", hook, "--sources", "fax"]),
        "before_send source",
    );
    fails_with(private(&["webhook", "set", "--app", &key]), "--url");
    fails_with(
        private(&["webhook", "set", "--app", "ak_nosuchapp1", "--url", hook]),
        "unknown app",
    );
    // Refusals change nothing.
    assert_eq!(
        json_of(tern(d, &["webhook", "show", "--app", &key, "--json"]))["url"],
        serde_json::Value::Null
    );

    let set = json_of(private(&[
        "webhook",
        "set",
        "--app",
        &key,
        "--url",
        hook,
        "--events",
        "message.sent,user.online",
        "--before-send",
        "--types",
        "text",
        "--timeout-ms",
        "800",
        "--policy",
        "fail_closed",
        "--json",
    ]));
    let shown = json_of(tern(d, &["webhook", "show", "--app", &key, "--json"]));
    assert_eq!(set, shown);
    assert_eq!(shown["url"], hook);
    assert_eq!(shown["events"], serde_json::json!(["message.sent", "user.online"]));
    assert_eq!(shown["before_send"]["enabled"], true);
    assert_eq!(shown["before_send"]["types"], serde_json::json!(["text"]));
    assert_eq!(shown["before_send"]["timeout_ms"], 800);
    assert_eq!(shown["before_send"]["policy"], "fail_closed");
    let text = String::from_utf8(
        tern(d, &["webhook", "show", "--app", &key])
            .success()
            .get_output()
            .stdout
            .clone(),
    )
    .unwrap();
    assert!(text.contains(hook) && text.contains("fail_closed"), "{text}");
    // The other app is untouched.
    assert_eq!(
        json_of(tern(d, &["webhook", "show", "--app", &other_key, "--json"]))["url"],
        serde_json::Value::Null
    );

    // A dead event, as the worker leaves one after 24 hours of failures.
    let app_id = tern_platform::ids::AppId::parse(app["app_id"].as_str().unwrap()).unwrap();
    with_store(d, async |store| {
        let e = tern_platform::store::NewOutboxEvent {
            id: "wh_dead1".into(),
            app_id: app_id.clone(),
            event_type: "message.sent".into(),
            body: "{}".into(),
            created_at: 1,
        };
        store.enqueue_events(&[e]).await.unwrap();
        store.mark_event_dead("wh_dead1", 30, "HTTP 500").await.unwrap();
    });
    let dead = json_of(tern(d, &["webhook", "dead", "--app", &key, "--json"]));
    assert_eq!(dead["events"].as_array().unwrap().len(), 1);
    assert_eq!(dead["events"][0]["id"], "wh_dead1");
    assert_eq!(dead["events"][0]["last_error"], "HTTP 500");
    let text = String::from_utf8(
        tern(d, &["webhook", "dead", "--app", &key])
            .success()
            .get_output()
            .stdout
            .clone(),
    )
    .unwrap();
    assert!(text.contains("wh_dead1") && text.contains("HTTP 500"), "{text}");
    // Another app sees none of it and cannot redeliver it.
    assert_eq!(
        json_of(tern(d, &["webhook", "dead", "--app", &other_key, "--json"]))["events"],
        serde_json::json!([])
    );
    fails_with(
        tern(d, &["webhook", "redeliver", "--app", &other_key, "wh_dead1"]),
        "no dead event",
    );

    let r = json_of(tern(d, &["webhook", "redeliver", "--app", &key, "wh_dead1", "--json"]));
    assert_eq!(r["id"], "wh_dead1");
    assert_eq!(
        json_of(tern(d, &["webhook", "dead", "--app", &key, "--json"]))["events"],
        serde_json::json!([])
    );
    let pending = with_store(d, async |store| store.due_events(i64::MAX, 10).await.unwrap());
    assert_eq!(pending.len(), 1);
    assert_eq!((pending[0].id.as_str(), pending[0].attempts), ("wh_dead1", 0));
    // Twice is an error: it is no longer dead.
    fails_with(
        tern(d, &["webhook", "redeliver", "--app", &key, "wh_dead1"]),
        "no dead event",
    );

    // Off again.
    tern(d, &["webhook", "set", "--app", &key, "--off"]).success();
    assert_eq!(
        json_of(tern(d, &["webhook", "show", "--app", &key, "--json"]))["url"],
        serde_json::Value::Null
    );
}

#[test]
fn push_log_shows_each_attempt_with_the_providers_answer() {
    use tern_platform::domain::{PushLogEntry, PushOutcome, PushProvider};
    use tern_platform::ids::{DeviceId, MsgId, UserId};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tern(d, &["tenant", "create", "Acme"]).success();
    let app = json_of(tern(
        d,
        &["app", "create", "--tenant", "Acme", "--name", "chat", "--json"],
    ));
    let key = app["app_key"].as_str().unwrap().to_owned();
    let other = json_of(tern(
        d,
        &["app", "create", "--tenant", "Acme", "--name", "other", "--json"],
    ));
    let other_key = other["app_key"].as_str().unwrap().to_owned();
    assert_eq!(
        json_of(tern(d, &["push", "log", "--app", &key, "--json"]))["entries"],
        serde_json::json!([])
    );

    // Two attempts at one message to bob's phone (a 503 then a success) and a dead token
    // of carol's, as the worker writes them.
    let phone = DeviceId::generate();
    let msg = MsgId::generate();
    let line = |user: &str, device: &DeviceId, outcome, status, reason: Option<&str>, attempt| PushLogEntry {
        id: PushLogEntry::new_id(),
        at: tern_platform::domain::now_ms(),
        user_id: UserId::parse(user).unwrap(),
        device_id: device.clone(),
        msg_id: Some(msg.clone()),
        provider: PushProvider::Apns,
        outcome,
        http_status: status,
        reason: reason.map(str::to_owned),
        provider_id: None,
        latency_ms: 12,
        attempt,
    };
    let app_id = tern_platform::ids::AppId::parse(app["app_id"].as_str().unwrap()).unwrap();
    let carols = DeviceId::generate();
    with_store(d, async |store| {
        // Each line is made when it is written, a few ms apart: the log's order is its ids'
        // (ULIDs, by millisecond), so lines made in one millisecond would come in any order.
        for (user, device, outcome, status, reason, attempt) in [
            ("bob", &phone, PushOutcome::Retrying, 503, Some("ServiceUnavailable"), 1),
            ("bob", &phone, PushOutcome::Sent, 200, None, 2),
            (
                "carol",
                &carols,
                PushOutcome::TokenRemoved,
                410,
                Some("Unregistered"),
                1,
            ),
        ] {
            let l = line(user, device, outcome, status, reason, attempt);
            store.append_push_log(&app_id, &l, false).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        }
    });

    let all = json_of(tern(d, &["push", "log", "--app", &key, "--json"]));
    let outcomes: Vec<&str> = all["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["token_removed", "sent", "retrying"], "newest first");
    let bobs = json_of(tern(
        d,
        &["push", "log", "--app", &key, "--user", "bob", "--limit", "1", "--json"],
    ));
    assert_eq!(bobs["entries"].as_array().unwrap().len(), 1);
    assert_eq!(bobs["entries"][0]["attempt"], 2);
    let by_device = json_of(tern(
        d,
        &["push", "log", "--app", &key, "--device", phone.as_str(), "--json"],
    ));
    assert_eq!(by_device["entries"].as_array().unwrap().len(), 2);
    let text = String::from_utf8(
        tern(d, &["push", "log", "--app", &key, "--msg", msg.as_str()])
            .success()
            .get_output()
            .stdout
            .clone(),
    )
    .unwrap();
    assert!(
        text.contains("token_removed") && text.contains("http=410") && text.contains("reason=Unregistered"),
        "{text}"
    );
    // Another app sees none of it; bad filters are one-line errors.
    assert_eq!(
        json_of(tern(d, &["push", "log", "--app", &other_key, "--json"]))["entries"],
        serde_json::json!([])
    );
    fails_with(
        tern(d, &["push", "log", "--app", &key, "--device", "phone"]),
        "--device",
    );
    fails_with(tern(d, &["push", "log", "--app", &key, "--limit", "0"]), "--limit");
}
