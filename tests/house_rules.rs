//! The rules of docs/architecture.md that a reviewer would otherwise check by hand: the gRPC
//! door (and what both doors share) never reaches into the REST door, no door reads or
//! writes the store itself, no hand-written source file grows past ~1,000 lines, and every
//! module opens with a `//!` line. A change that breaks one fails here with
//! the file named, instead of being found in review.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

/// The hand-written source trees of the workspace (tests and generated code are not in them).
const TREES: &[&str] = &[
    "src",
    "platform/src",
    "tenant-api/src",
    "push-gateway/src",
    "console/src",
    "sdks/rust/src",
    "bench/src",
];

/// Longest hand-written file allowed; the rule says "about 1,000", this leaves a margin.
const MAX_LINES: usize = 1_100;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn sources(trees: &[&str]) -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for tree in trees {
        let path = root.join(tree);
        if path.is_file() {
            files.push(path);
        } else {
            rust_files(&path, &mut files);
        }
    }
    assert!(!files.is_empty(), "no sources found under {trees:?}");
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p.strip_prefix(root).unwrap().to_path_buf(), text)
        })
        .collect()
}

/// Every line of the sources under `trees` whose code (comments cut off) `breaks` the rule,
/// as `path:line: text`.
fn offending_lines(trees: &[&str], breaks: impl Fn(&str) -> bool) -> Vec<String> {
    sources(trees)
        .into_iter()
        .flat_map(|(path, text)| {
            text.lines()
                .enumerate()
                .filter(|(_, line)| breaks(line.split("//").next().unwrap_or("")))
                .map(|(n, line)| format!("{}:{}: {}", path.display(), n + 1, line.trim()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_grpc_door_never_calls_the_rest_door() {
    // The gRPC door, and the modules both doors share, which must not lean on REST either.
    let offenders = offending_lines(
        &[
            "tenant-api/src/grpc",
            "tenant-api/src/input.rs",
            "tenant-api/src/push_ops.rs",
        ],
        |code| code.contains("crate::rest") || code.contains("super::rest") || code.contains("super::super::rest"),
    );
    assert!(
        offenders.is_empty(),
        "gRPC and REST both call platform, never each other; move the shared operation into \
         platform (or a door-neutral module):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn no_hand_written_file_is_over_about_a_thousand_lines() {
    let long: Vec<String> = sources(TREES)
        .into_iter()
        .filter(|(_, text)| text.lines().count() > MAX_LINES)
        .map(|(path, text)| format!("{} ({} lines)", path.display(), text.lines().count()))
        .collect();
    assert!(long.is_empty(), "split these by area:\n{}", long.join("\n"));
}

#[test]
fn every_module_says_what_it_holds() {
    let bare: Vec<String> = sources(TREES)
        .into_iter()
        .filter(|(_, text)| !text.trim_start().starts_with("//!"))
        .map(|(path, _)| path.display().to_string())
        .collect();
    assert!(
        bare.is_empty(),
        "open these with a `//!` line saying what the module holds:\n{}",
        bare.join("\n")
    );
}

#[test]
fn no_door_calls_the_store_itself() {
    // A door may hand the store to a platform operation (`store().as_ref()`, `.clone()`), but
    // every read and write of it is a platform operation, so each door gives the same answer.
    let offenders = offending_lines(&["tenant-api/src", "push-gateway/src", "console/src"], |code| {
        code.match_indices("store().").any(|(at, m)| {
            !["as_ref()", "clone()"]
                .iter()
                .any(|ok| code[at + m.len()..].starts_with(ok))
        })
    });
    assert!(
        offenders.is_empty(),
        "doors translate, platform decides: put these reads and writes in a platform operation:\n{}",
        offenders.join("\n")
    );
}
