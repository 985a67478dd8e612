//! Small pieces of Argo's naming and formats: pod names, durations, times,
//! sequences.

use crate::vars::Vars;
use crate::workflow::Sequence;
use std::time::Duration;

/// 32-bit FNV-1a, the hash Argo uses in pod names.
fn fnv32a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// Argo's pod name (v2 naming): `<workflow>-<template>-<fnv32a(node name)>`,
/// or the workflow's own name for a workflow that is a single pod.
pub fn pod_name(workflow: &str, template: &str, node: &str) -> String {
    if workflow == node {
        return workflow.to_string();
    }
    let hash = fnv32a(node);
    let mut prefix = format!("{workflow}-{template}");
    // Kubernetes names are at most 253 characters; Argo keeps room for the hash.
    if prefix.len() > 242 {
        let mut cut = 242;
        while !prefix.is_char_boundary(cut) {
            cut -= 1;
        }
        prefix.truncate(cut);
    }
    format!("{prefix}-{hash}")
}

/// Parses a Go-style duration (`90s`, `1m30s`, `2h`, `500ms`) or plain seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let mut total = 0f64;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    Some(Duration::from_secs_f64(total))
}

fn civil(ms: i64) -> (i64, u32, u32, u32, u32, u32) {
    // Howard Hinnant's days-to-civil, for UTC without a date crate.
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, (rem / 3600) as u32, ((rem % 3600) / 60) as u32, (rem % 60) as u32)
}

/// RFC 3339 UTC time of unix milliseconds.
pub fn rfc3339(ms: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `workflow.creationTimestamp.<letter>` values Argo offers for key formats.
pub fn strftime_parts(ms: i64) -> Vec<(&'static str, String)> {
    let (y, mo, d, h, mi, s) = civil(ms);
    vec![
        ("Y", format!("{y:04}")),
        ("y", format!("{:02}", y % 100)),
        ("m", format!("{mo:02}")),
        ("d", format!("{d:02}")),
        ("H", format!("{h:02}")),
        ("M", format!("{mi:02}")),
        ("S", format!("{s:02}")),
        ("s", (ms / 1000).to_string()),
    ]
}

/// Expands `withSequence` into loop items (strings, as Argo makes them).
pub fn sequence(seq: &Sequence, vars: &Vars) -> Result<Vec<serde_json::Value>, String> {
    let num = |v: &Option<crate::workflow::AnyString>, field: &str| -> Result<Option<i64>, String> {
        match v {
            None => Ok(None),
            Some(v) => {
                let text = vars.substitute(&v.0).map_err(|e| format!("withSequence.{field}: {e}"))?;
                text.trim()
                    .parse::<i64>()
                    .map(Some)
                    .map_err(|_| format!("withSequence.{field}: {text:?} is not a number"))
            }
        }
    };
    let start = num(&seq.start, "start")?.unwrap_or(0);
    let (count, end) = (num(&seq.count, "count")?, num(&seq.end, "end")?);
    let values: Vec<i64> = match (count, end) {
        (Some(_), Some(_)) => return Err("withSequence: give count or end, not both".into()),
        (Some(c), None) => (0..c.max(0)).map(|i| start + i).collect(),
        (None, Some(e)) if e >= start => (start..=e).collect(),
        (None, Some(e)) => (e..=start).rev().collect(),
        (None, None) => return Err("withSequence: needs count or end".into()),
    };
    values.into_iter().map(|v| format_number(&seq.format, v).map(serde_json::Value::String)).collect()
}

/// printf-style `%d`, `%5d`, `%05d`, `%x`, `%X`, `%o` with surrounding text.
fn format_number(format: &str, v: i64) -> Result<String, String> {
    if format.is_empty() {
        return Ok(v.to_string());
    }
    let Some(at) = format.find('%') else {
        return Err(format!("withSequence.format {format:?} has no % verb"));
    };
    let spec = &format[at + 1..];
    let verb_at = spec
        .find(|c: char| c.is_ascii_alphabetic())
        .ok_or_else(|| format!("withSequence.format {format:?}: no verb"))?;
    let (flags, verb) = (&spec[..verb_at], &spec[verb_at..verb_at + 1]);
    let zero = flags.starts_with('0');
    let width: usize = flags.trim_start_matches('0').parse().unwrap_or(0);
    let body = match verb {
        "d" => v.to_string(),
        "x" => format!("{v:x}"),
        "X" => format!("{v:X}"),
        "o" => format!("{v:o}"),
        other => return Err(format!("withSequence.format: verb %{other} is not supported (use d, x, X or o)")),
    };
    let padded = if zero { format!("{body:0>width$}") } else { format!("{body:>width$}") };
    Ok(format!("{}{padded}{}", &format[..at], &spec[verb_at + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_names_follow_argo_v2() {
        assert_eq!(pod_name("wf", "main", "wf"), "wf");
        let p = pod_name("hello-abc", "print", "hello-abc[0].print");
        assert!(p.starts_with("hello-abc-print-"), "{p}");
        assert_eq!(p, pod_name("hello-abc", "print", "hello-abc[0].print"));
        assert_ne!(p, pod_name("hello-abc", "print", "hello-abc[1].print"));
    }

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("10"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("5 minutes"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000_000), "2026-11-18T11:06:40Z");
    }

    #[test]
    fn sequences_count_and_format() {
        let v = Vars::default();
        let s = Sequence {
            count: Some(crate::workflow::AnyString("3".into())),
            start: Some(crate::workflow::AnyString("8".into())),
            end: None,
            format: "f%02d".into(),
        };
        assert_eq!(sequence(&s, &v).unwrap(), vec!["f08", "f09", "f10"]);
        let s = Sequence {
            count: None,
            start: Some(crate::workflow::AnyString("3".into())),
            end: Some(crate::workflow::AnyString("1".into())),
            format: String::new(),
        };
        assert_eq!(sequence(&s, &v).unwrap(), vec!["3", "2", "1"]);
    }
}
