//! The catalogue's invariants, and the docs that list it.

use std::collections::HashSet;

#[test]
fn ids_are_unique_well_formed_and_at_least_100() {
    let cases = ferry_conformance::cases::all();
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    let mut seen = HashSet::new();
    let re = regex::Regex::new(r"^AD-[A-Z]+-\d{3}$").unwrap();
    for c in &cases {
        assert!(re.is_match(c.id), "{} is not AD-AREA-NNN", c.id);
        assert!(seen.insert(c.id), "{} twice", c.id);
        assert!(!c.title.is_empty() && !c.tags.is_empty(), "{} lacks a title or tags", c.id);
    }
}

#[test]
fn docs_list_exactly_the_catalogue() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry-conformance"))
        .args(["--list", "--format", "md"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let listed = String::from_utf8(out.stdout).unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let doc = std::fs::read_to_string(root.join("docs/conformance.md")).unwrap();
    assert!(
        doc.ends_with(&listed),
        "docs/conformance.md is stale: regenerate its case list with `ferry-conformance --list --format md`"
    );
}
