//! Results and their renderings: TAP on stdout, JUnit XML, JSON, and a
//! Markdown report an author attaches to a pull request.

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

/// A Markdown report of a run, for a driver author to attach to a pull
/// request: the verdict, passes and failures by area and level, each
/// failure with its message, the expected failures and skips with their
/// reasons, and the capabilities the suite observed. `passed` is the run's
/// verdict (its exit code), which depends on the mode.
pub fn markdown(
    driver: &str,
    run_id: &str,
    seed: u64,
    capabilities: &serde_json::Value,
    results: &[CaseResult],
    passed: bool,
) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Conformance report: `{}`\n", cell(driver));
    let _ = writeln!(
        md,
        "ferry-conformance {}, run `{run_id}`, seed `{seed}` (replay with `--seed {seed}`).\n",
        env!("CARGO_PKG_VERSION")
    );
    let must_failures = results.iter().filter(|r| r.fails_run(false)).count();
    let verdict = if passed { "**PASS**".to_string() } else { format!("**FAIL** ({must_failures} MUST cases failed)") };
    let _ = writeln!(md, "Verdict: {verdict}. {}.\n", summary_line(results));

    md.push_str("## By area and level\n\n");
    md.push_str(
        "| area | MUST passed | MUST failed | SHOULD passed | SHOULD failed | INFO | expected failures | skipped |\n",
    );
    md.push_str("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
    let mut areas: Vec<&str> = results.iter().map(|r| area(r.id)).collect();
    areas.sort_unstable();
    areas.dedup();
    for a in areas {
        let of = |level: Option<Level>, status: Status| {
            results
                .iter()
                .filter(|r| area(r.id) == a && r.status == status && level.is_none_or(|l| r.level == l.as_str()))
                .count()
        };
        let info = results.iter().filter(|r| area(r.id) == a && r.level == Level::Info.as_str()).count();
        let _ = writeln!(
            md,
            "| {a} | {} | {} | {} | {} | {info} | {} | {} |",
            of(Some(Level::Must), Status::Pass),
            of(Some(Level::Must), Status::Fail),
            of(Some(Level::Should), Status::Pass),
            of(Some(Level::Should), Status::Fail),
            of(None, Status::Todo),
            of(None, Status::Skip),
        );
    }

    let failed: Vec<&CaseResult> = results.iter().filter(|r| r.status == Status::Fail).collect();
    md.push_str("\n## Failures\n\n");
    if failed.is_empty() {
        md.push_str("None.\n");
    }
    for r in failed {
        let _ = writeln!(md, "### {} ({}): {}\n", r.id, r.level, r.title);
        let _ = writeln!(md, "{}\n", fenced(&r.message));
    }
    for (heading, status) in [("Expected failures (listed in the profile)", Status::Todo), ("Skipped", Status::Skip)] {
        let listed: Vec<&CaseResult> = results.iter().filter(|r| r.status == status).collect();
        if listed.is_empty() {
            continue;
        }
        let _ = writeln!(md, "\n## {heading}\n\n| case | level | why |\n| --- | --- | --- |");
        for r in listed {
            let _ = writeln!(md, "| {} | {} | {} |", r.id, r.level, cell(&r.message));
        }
    }
    md.push_str("\n## Observed capabilities\n\n");
    let _ = writeln!(md, "{}", fenced(&serde_json::to_string_pretty(capabilities).unwrap_or_default()));
    md
}

/// Text in a fenced block whose fence is longer than any backtick run inside it.
fn fenced(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}text\n{}\n{fence}", text.trim_end())
}

/// Text fit for one Markdown table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    one_line(text).replace('|', "\\|")
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
    fn markdown_reports_the_verdict_areas_failures_and_capabilities() {
        let mut failed = r("AD-FILE-001", Level::Must, Status::Fail);
        failed.message = "bytes differ at 12 ``` | here".into();
        let mut skipped = r("AD-DIR-001", Level::Should, Status::Skip);
        skipped.message = "no directories | claimed".into();
        let results = [
            failed,
            r("AD-FILE-002", Level::Must, Status::Pass),
            skipped,
            r("AD-DEL-001", Level::Must, Status::Todo),
            r("AD-DEL-002", Level::Info, Status::Pass),
        ];
        let caps = serde_json::json!({"directories": false});
        let md = markdown("my|driver", "r-1", 7, &caps, &results, false);
        assert!(md.starts_with("# Conformance report: `my\\|driver`"), "{md}");
        assert!(md.contains("Verdict: **FAIL** (1 MUST cases failed). 2 passed, 2 failed, 1 skipped."), "{md}");
        assert!(md.contains("| FILE | 1 | 1 | 0 | 0 | 0 | 0 | 0 |"), "{md}");
        assert!(md.contains("| DEL | 0 | 0 | 0 | 0 | 1 | 1 | 0 |"), "{md}");
        assert!(md.contains("| DIR | 0 | 0 | 0 | 0 | 0 | 0 | 1 |"), "{md}");
        assert!(md.contains("### AD-FILE-001 (MUST): t <&>\n\n````text\nbytes differ at 12 ``` | here\n````"), "{md}");
        assert!(md.contains("| AD-DIR-001 | SHOULD | no directories \\| claimed |"), "{md}");
        assert!(md.contains("## Expected failures (listed in the profile)"), "{md}");
        assert!(md.contains("\"directories\": false"), "{md}");
        let clean = markdown("d", "r", 1, &caps, &[r("AD-FILE-002", Level::Must, Status::Pass)], true);
        assert!(clean.contains("Verdict: **PASS**") && clean.contains("## Failures\n\nNone."), "{clean}");
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
