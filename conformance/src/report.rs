//! Results and their three renderings: TAP on stdout, JUnit XML, JSON.

use crate::case::Level;
use serde::Serialize;
use std::fmt::Write as _;

/// How a case ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Passed.
    Pass,
    /// Failed.
    Fail,
    /// Not applicable, with a reason.
    Skip,
    /// Failed, but listed in the profile's expected failures.
    Todo,
}

/// One case's result.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseResult {
    /// Case ID.
    pub id: &'static str,
    /// MUST, SHOULD or INFO.
    pub level: &'static str,
    /// Tags.
    pub tags: &'static [&'static str],
    /// One-line description.
    pub title: &'static str,
    /// Outcome.
    pub status: Status,
    /// Failure message or skip reason.
    pub message: String,
    /// Wall time.
    pub duration_ms: u64,
}

impl CaseResult {
    /// Whether this result fails the run.
    pub fn fails_run(&self, certify: bool) -> bool {
        self.level == Level::Must.as_str()
            && (self.status == Status::Fail || (certify && matches!(self.status, Status::Skip | Status::Todo)))
    }
}

/// The TAP line (and YAML diagnostic block) for result number `n`.
pub fn tap_line(n: usize, r: &CaseResult) -> String {
    let mut out = String::new();
    let ok = matches!(r.status, Status::Pass | Status::Skip | Status::Todo);
    let _ = write!(out, "{} {n} - {} {}", if ok { "ok" } else { "not ok" }, r.id, r.title);
    match r.status {
        Status::Skip => {
            let _ = write!(out, " # SKIP {}", one_line(&r.message));
        }
        Status::Todo => {
            let _ = write!(out, " # TODO {}", one_line(&r.message));
        }
        _ => {
            let _ = write!(out, " # time={}ms", r.duration_ms);
        }
    }
    if r.status == Status::Fail {
        let _ = write!(
            out,
            "\n  ---\n  level: {}\n  tags: [{}]\n  message: {}\n  durationMs: {}\n  ...",
            r.level,
            r.tags.join(", "),
            serde_json::to_string(&r.message).unwrap_or_default(),
            r.duration_ms
        );
    }
    out
}

fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

/// The closing line every runner prints: `N passed, N failed, N skipped`.
pub fn summary_line(results: &[CaseResult]) -> String {
    let count = |st: Status| results.iter().filter(|r| r.status == st).count();
    format!(
        "{} passed, {} failed, {} skipped",
        count(Status::Pass),
        count(Status::Fail) + count(Status::Todo),
        count(Status::Skip)
    )
}

/// JUnit XML: one testsuite per area, one testcase per ID.
pub fn junit(driver: &str, results: &[CaseResult]) -> String {
    let mut areas: Vec<&str> = results.iter().map(|r| area(r.id)).collect();
    areas.dedup();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(xml, "<testsuites name=\"ferry-conformance {}\">", esc(driver));
    for a in areas {
        let cases: Vec<&CaseResult> = results.iter().filter(|r| area(r.id) == a).collect();
        let failures = cases.iter().filter(|r| r.status == Status::Fail).count();
        let skipped = cases.iter().filter(|r| matches!(r.status, Status::Skip | Status::Todo)).count();
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{a}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\">",
            cases.len()
        );
        for r in cases {
            let _ = write!(
                xml,
                "    <testcase classname=\"{a}\" name=\"{} {}\" time=\"{:.3}\"",
                r.id,
                esc(r.title),
                r.duration_ms as f64 / 1000.0
            );
            match r.status {
                Status::Pass => xml.push_str("/>\n"),
                Status::Fail => {
                    let _ = writeln!(xml, "><failure message=\"{}\"/></testcase>", esc(&r.message));
                }
                Status::Skip | Status::Todo => {
                    let _ = writeln!(xml, "><skipped message=\"{}\"/></testcase>", esc(&r.message));
                }
            }
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

/// The JSON results document.
pub fn json(driver: &str, run_id: &str, seed: u64, capabilities: &serde_json::Value, results: &[CaseResult]) -> String {
    let count = |lvl: Level, st: Status| results.iter().filter(|r| r.level == lvl.as_str() && r.status == st).count();
    let summary = |lvl: Level| {
        serde_json::json!({"pass": count(lvl, Status::Pass), "fail": count(lvl, Status::Fail),
                           "skip": count(lvl, Status::Skip), "todo": count(lvl, Status::Todo)})
    };
    let doc = serde_json::json!({
        "suite": {"name": "ferry-conformance", "version": env!("CARGO_PKG_VERSION")},
        "driver": {"name": driver},
        "run": {"id": run_id, "seed": seed},
        "summary": {"must": summary(Level::Must), "should": summary(Level::Should), "info": summary(Level::Info)},
        "capabilities": capabilities,
        "results": results,
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

fn area(id: &str) -> &str {
    id.split('-').nth(1).unwrap_or("OTHER")
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(id: &'static str, level: Level, status: Status) -> CaseResult {
        CaseResult {
            id,
            level: level.as_str(),
            tags: &["Core"],
            title: "t <&>",
            status,
            message: "m\n2".into(),
            duration_ms: 5,
        }
    }

    #[test]
    fn tap_lines_and_summary() {
        assert_eq!(tap_line(1, &r("AD-X-001", Level::Must, Status::Pass)), "ok 1 - AD-X-001 t <&> # time=5ms");
        assert!(tap_line(2, &r("AD-X-002", Level::Must, Status::Skip)).ends_with("# SKIP m 2"));
        let fail = tap_line(3, &r("AD-X-003", Level::Must, Status::Fail));
        assert!(fail.starts_with("not ok 3 - AD-X-003"));
        assert!(fail.contains("\n  ---\n  level: MUST"));
        let all = [
            r("A-X-1", Level::Must, Status::Pass),
            r("A-X-2", Level::Must, Status::Fail),
            r("A-X-3", Level::Should, Status::Skip),
        ];
        assert_eq!(summary_line(&all), "1 passed, 1 failed, 1 skipped");
    }

    #[test]
    fn certify_counts_skipped_musts() {
        let skipped = r("A-X-1", Level::Must, Status::Skip);
        assert!(!skipped.fails_run(false));
        assert!(skipped.fails_run(true));
        assert!(!r("A-X-2", Level::Should, Status::Fail).fails_run(true));
    }

    #[test]
    fn junit_escapes_and_groups() {
        let xml =
            junit("d", &[r("AD-FILE-001", Level::Must, Status::Fail), r("AD-DEL-001", Level::Must, Status::Pass)]);
        assert!(xml.contains("<testsuite name=\"FILE\" tests=\"1\" failures=\"1\""));
        assert!(xml.contains("t &lt;&amp;&gt;"));
    }
}
