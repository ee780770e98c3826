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
