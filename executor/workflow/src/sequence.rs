//! `withSequence`: the loop items a number range stands for.

use crate::model::{AnyString, Sequence};
use crate::vars::Vars;

/// Expands `withSequence` into loop items (strings, as Argo makes them).
pub fn sequence(seq: &Sequence, vars: &Vars) -> Result<Vec<serde_json::Value>, String> {
    let num = |v: &Option<AnyString>, field: &str| -> Result<Option<i64>, String> {
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

/// printf-style `%d`, `%5d`, `%05d`, `%x`, `%X`, `%o` with surrounding text,
/// the verbs Argo's `format` takes (Go's fmt; no Rust crate formats from a
/// runtime printf string with Go's rules).
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
    fn sequences_count_and_format() {
        let v = Vars::default();
        let s = Sequence {
            count: Some(AnyString("3".into())),
            start: Some(AnyString("8".into())),
            end: None,
            format: "f%02d".into(),
        };
        assert_eq!(sequence(&s, &v).unwrap(), vec!["f08", "f09", "f10"]);
        let s = Sequence {
            count: None,
            start: Some(AnyString("3".into())),
            end: Some(AnyString("1".into())),
            format: String::new(),
        };
        assert_eq!(sequence(&s, &v).unwrap(), vec!["3", "2", "1"]);
    }
}
