//! The `tern` config (`tern.toml` overlaid by `TERN_*` variables, src/config.rs, compiled in
//! here as it is): any file text and environment is accepted or refused with a
//! `ConfigError` without panicking, and an accepted config's `Debug` (what a log shows)
//! never holds the master key or the admin password.
//!
//! Input: the file's text, then optionally a line `--env--` and `NAME=value` lines.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;

#[allow(dead_code, unreachable_pub)]
#[path = "../../../src/config.rs"]
mod config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (file, env_text) = text.split_once("\n--env--\n").unwrap_or((text, ""));
    let env: HashMap<String, String> = env_text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let Ok(cfg) = config::Config::from_sources(Some(("tern.toml", file)), &env) else {
        return;
    };
    let shown = format!("{cfg:?}");
    for secret in [&cfg.master_key, &cfg.admin_password].into_iter().flatten() {
        let s = secret.expose();
        assert_eq!(format!("{secret:?}"), "<redacted>");
        // A short or repeated value may appear elsewhere by chance.
        if s.len() >= 16 && text.matches(s).count() == 1 {
            assert!(!shown.contains(s), "a secret in Debug: {shown}");
        }
    }
});
