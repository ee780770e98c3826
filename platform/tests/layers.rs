//! The layering docs/architecture.md promises, checked on the source: the pipeline
//! (`delivery`), the features' context (`context`) and the features' rules (`rules`)
//! import no feature module, so a feature can change without the send path changing, and
//! the rules and the context never reach for the whole `Pipeline`.

use std::path::Path;

fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("the source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            // Code only: comments may name what they stand beside.
            let text = std::fs::read_to_string(&path).expect("a source file");
            let code: Vec<&str> = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect();
            out.push((path.display().to_string(), code.join("\n")));
        }
    }
}

fn layer(name: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(name), &mut out);
    assert!(!out.is_empty(), "no sources under src/{name}");
    out
}

const FEATURES: [&str; 5] = ["groups", "rooms", "lifecycle", "friends", "broadcasts"];

#[test]
fn the_pipeline_the_context_and_the_rules_import_no_feature() {
    for name in ["delivery", "context", "rules"] {
        for (file, text) in layer(name) {
            for feature in FEATURES {
                for needle in [format!("crate::{feature}::"), format!("crate::{feature};")] {
                    assert!(!text.contains(&needle), "{file} imports {needle}");
                }
            }
            assert!(!text.contains("crate::service"), "{file} imports the service layer");
        }
    }
}

#[test]
fn the_context_and_the_rules_never_take_the_pipeline() {
    for name in ["context", "rules"] {
        for (file, text) in layer(name) {
            assert!(!text.contains("Pipeline"), "{file} names the Pipeline");
        }
    }
}
