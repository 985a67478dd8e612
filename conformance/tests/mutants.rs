//! The suite must be able to fail: each deliberately broken driver
//! (`conformance/fixtures`) is caught by exactly the cases that detect its
//! defect, and by no other. A change that stops a case from catching its bug,
//! or makes an unrelated case fail, breaks this test.

use std::collections::BTreeSet;
use std::path::PathBuf;

fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(|deps| deps.parent()).unwrap().to_path_buf()
}

/// What a run against one broken driver left: its exit code, the IDs of the
/// failed cases, and its Markdown report.
fn run_against(defect: &str) -> (i32, BTreeSet<String>, String) {
    let broken = target_dir().join("ferry-broken-driver");
    assert!(broken.exists(), "{} missing: run `cargo build -p ferry-conformance-fixtures`", broken.display());
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("profile.yaml");
    std::fs::write(
        &profile,
        format!(
            "driver: {{name: fs}}\n\
             launch: {{command: [{:?}, {defect:?}]}}\n\
             plugin:\n  configuration: \"root: {{sharedDir}}/storage\"\n  altConfiguration: \"root: {{sharedDir}}/alt\"\n\
             limits: {{sigtermGraceSeconds: 2, maxRssMiB: 64, largeFileBytes: 67108864}}\n\
             hooks: {{backendDown: [sh, -c, 'truncate -s 4096 \"$FERRY_CONFORMANCE_SHARED_DIR/storage/$FERRY_CONFORMANCE_KEY\"']}}\n",
            broken.display().to_string()
        ),
    )
    .unwrap();
    let json = dir.path().join("results.json");
    let report = dir.path().join("report.md");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry-conformance"))
        .arg("--profile")
        .arg(&profile)
        .arg("--work-dir")
        .arg(dir.path())
        .arg("--json")
        .arg(&json)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let results: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap_or_default())
        .unwrap_or_else(|_| panic!("no results for {defect}: {}", String::from_utf8_lossy(&out.stderr)));
    let failed = results["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "fail")
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let report = std::fs::read_to_string(&report).unwrap_or_default();
    (out.status.code().unwrap_or(-1), failed, report)
}

fn check(defect: &str, expected: &[&str]) {
    let (code, failed, report) = run_against(defect);
    let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
    assert_eq!(failed, expected, "{defect}: caught by the wrong cases");
    assert_eq!(code, 1, "{defect}: a run with MUST failures must exit 1");
    // The report an author attaches names the verdict and each failing case
    // under its own heading, and nothing else as a failure.
    assert!(report.contains("Verdict: **FAIL**"), "{defect}: {report}");
    let headed: BTreeSet<String> = report
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .map(|l| l.split(' ').next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(headed, expected, "{defect}: the report's failures");
}

#[test]
fn data_in_the_is_end_frame() {
    // Every case that reads an object over 4 MiB through OpenStream sees it.
    check(
        "data-in-is-end",
        &[
            "AD-FILE-004",
            "AD-FILE-005",
            "AD-STREAM-001",
            "AD-STREAM-004",
            "AD-STREAM-008",
            "AD-STREAM-012",
            "AD-SSTR-001",
            "AD-RES-002",
        ],
    );
}

#[test]
fn silently_truncated_streams() {
    // Every case that streams more than 8 MiB and compares the bytes.
    check(
        "truncate-stream",
        &["AD-FILE-005", "AD-STREAM-001", "AD-STREAM-008", "AD-STREAM-012", "AD-SSTR-001", "AD-RES-002"],
    );
}

#[test]
fn delete_that_is_not_idempotent() {
    check("non-idempotent-delete", &["AD-DEL-002", "AD-DEL-003"]);
}

#[test]
fn delete_of_a_file_key_that_reaches_under_it() {
    check("recursive-file-delete", &["AD-DEL-009"]);
}

#[test]
fn a_file_save_acknowledged_where_load_returns_the_directory() {
    check("acknowledged-file-over-directory", &["AD-DIR-017"]);
}

#[test]
fn keys_that_escape_with_dot_dot() {
    check("dotdot-escape", &["AD-KEY-007"]);
}

#[test]
fn sigterm_ignored() {
    check("ignore-sigterm", &["AD-LIFE-007", "AD-LIFE-008", "AD-LIFE-009", "AD-LIFE-010"]);
}

#[test]
fn mid_stream_failure_reported_as_a_clean_end() {
    check("error-as-end", &["AD-STREAM-011"]);
}
