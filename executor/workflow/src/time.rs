//! Times and durations as Argo writes them: RFC 3339 timestamps, the
//! `creationTimestamp` letters of key formats, and Go durations.

use jiff::Timestamp;
use std::time::Duration;

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    Timestamp::now().as_millisecond()
}

/// The instant of unix milliseconds, clamped to the years jiff represents
/// (±9999), far beyond any time a run records.
fn timestamp(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 { Timestamp::MIN } else { Timestamp::MAX })
}

/// RFC 3339 UTC time of unix milliseconds, to the second, as Argo shows times.
pub fn rfc3339(ms: i64) -> String {
    timestamp(ms).strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `workflow.creationTimestamp.<letter>` values Argo offers for key formats
/// (strftime letters, in UTC).
pub fn strftime_parts(ms: i64) -> Vec<(&'static str, String)> {
    let at = timestamp(ms);
    ["Y", "y", "m", "d", "H", "M", "S", "s"]
        .into_iter()
        .map(|letter| (letter, at.strftime(&format!("%{letter}")).to_string()))
        .collect()
}

/// Parses a Go duration (`90s`, `1m30s`, `2h`, `500ms`, `1.5h`) or plain
/// seconds, as Argo's `ParseStringToDuration` does.
///
/// Written here rather than taken from a crate: jiff and humantime also read
/// `5 minutes` or `1 hour`, which Argo refuses, so a workflow Ferry accepted
/// would fail on a cluster.
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

/// A template's `activeDeadlineSeconds`: whole seconds or, as `ferry run`
/// has always read it, a Go duration. `ferry run` and `ferry render` both
/// read it here, so a workflow that runs also renders.
pub fn active_deadline(text: &str) -> Option<Duration> {
    parse_duration(text)
}

/// A template's `timeout`: a Go duration such as `"10s"`. A bare number is
/// refused, as Argo refuses it (it has no unit).
pub fn timeout(text: &str) -> Option<Duration> {
    if text.trim().parse::<i64>().is_ok() {
        return None;
    }
    parse_duration(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("10"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration(" 10 "), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("5 minutes"), None);
        assert_eq!(parse_duration("-5"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn a_timeout_needs_a_unit() {
        assert_eq!(timeout("10s"), Some(Duration::from_secs(10)));
        assert_eq!(timeout("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(timeout("10"), None);
        assert_eq!(timeout("soon"), None);
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000_000), "2026-11-18T11:06:40Z");
        // Milliseconds are cut, not rounded, and never printed.
        assert_eq!(rfc3339(1_795_000_000_999), "2026-11-18T11:06:40Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn key_format_letters_are_zero_padded_utc_fields() {
        let parts: Vec<(&str, String)> = strftime_parts(1_767_233_045_000);
        let want = [("Y", "2026"), ("y", "26"), ("m", "01"), ("d", "01"), ("H", "02"), ("M", "04"), ("S", "05")];
        for (letter, value) in want {
            assert!(parts.contains(&(letter, value.to_string())), "{letter}: {parts:?}");
        }
        assert!(parts.contains(&("s", "1767233045".to_string())), "{parts:?}");
    }
}
