//! The repository stands on its own: nothing refers outside it, every relative link in its
//! Markdown resolves, and the license `Cargo.toml` declares is there.

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The tracked files, as git lists them (the test suite runs in a git checkout).
fn tracked_files() -> Vec<String> {
    let output = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root())
        .output()
        .expect("git runs");
    assert!(output.status.success(), "git ls-files failed");
    String::from_utf8(output.stdout)
        .expect("utf-8 paths")
        .split('\0')
        .filter(|path| !path.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn no_tracked_file_refers_outside_the_repository() {
    // Built from parts so that this file does not match itself.
    let outside = ["..", "shared"].join("/");
    let mut offenders = Vec::new();
    for path in tracked_files() {
        let Ok(bytes) = std::fs::read(root().join(&path)) else {
            continue; // listed by git but removed in the work tree
        };
        if String::from_utf8_lossy(&bytes).contains(&outside) {
            offenders.push(path);
        }
    }
    assert!(offenders.is_empty(), "refer to {outside}: {offenders:?}");
}

#[test]
fn every_relative_markdown_link_resolves() {
    let link = |text: &str| -> Vec<String> {
        let mut links = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("](") {
            rest = &rest[start + 2..];
            if let Some(end) = rest.find(')') {
                links.push(rest[..end].to_owned());
            }
        }
        links
    };
    let mut broken = Vec::new();
    let mut checked = 0;
    for path in tracked_files().iter().filter(|path| path.ends_with(".md")) {
        let text = std::fs::read_to_string(root().join(path)).expect("readable");
        let dir = root()
            .join(path)
            .parent()
            .expect("in a directory")
            .to_path_buf();
        for target in link(&text) {
            if target.contains("://") || target.starts_with('#') || target.starts_with("mailto:") {
                continue;
            }
            let file = target.split('#').next().unwrap_or_default();
            checked += 1;
            if !dir.join(file).exists() {
                broken.push(format!("{path}: {target}"));
            }
        }
    }
    assert!(checked >= 10, "only {checked} links found");
    assert!(broken.is_empty(), "broken links: {broken:?}");
}

#[test]
fn the_declared_license_is_in_the_repository() {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).expect("readable");
    assert!(manifest.contains("license = \"Apache-2.0\""));
    let license = std::fs::read_to_string(root().join("LICENSE")).expect("LICENSE exists");
    assert!(license.contains("Apache License") && license.contains("Version 2.0, January 2004"));
}

#[test]
fn the_contract_and_the_design_live_in_docs() {
    for doc in [
        "docs/MAPPING.md",
        "docs/ARCHITECTURE.md",
        "docs/POSTHOG_AND_AMPLITUDE.md",
        "docs/MAPPING_DECISIONS.md",
    ] {
        let text = std::fs::read_to_string(root().join(doc)).expect(doc);
        assert!(text.len() > 2_000, "{doc} is nearly empty");
    }
    let mapping = std::fs::read_to_string(root().join("docs/MAPPING.md")).expect("readable");
    for section in [
        "## 1. Input",
        "## 3. Identity",
        "## 9. Groups",
        "## 10. Worked example",
    ] {
        assert!(mapping.contains(section), "docs/MAPPING.md lacks {section}");
    }
}
