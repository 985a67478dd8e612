//! `withSequence`: the loop items a number range stands for.

use crate::model::{AnyString, Sequence};
use crate::vars::Vars;

/// Why a `withSequence` stands for no items.
#[derive(Debug, thiserror::Error)]
pub enum SequenceError {
    /// A field whose `{{...}}` tags cannot be substituted.
    #[error("withSequence.{field}: {source}")]
    Substitution {
        /// `start`, `count` or `end`.
        field: &'static str,
        /// Why.
        #[source]
        source: crate::expr::Error,
    },
    /// A field that is not a whole number.
    #[error("withSequence.{field}: {text:?} is not a number")]
    NotANumber {
        /// `start`, `count` or `end`.
        field: &'static str,
        /// What it said.
        text: String,
    },
    /// Both `count` and `end`.
    #[error("withSequence: give count or end, not both")]
    CountAndEnd,
    /// Neither `count` nor `end`.
    #[error("withSequence: needs count or end")]
    NoBound,
    /// A `format` Ferry cannot apply.
    #[error("withSequence.format {format:?}: {problem}")]
    Format {
        /// The format.
        format: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// Expands `withSequence` into loop items (strings, as Argo makes them).
pub fn sequence(seq: &Sequence, vars: &Vars) -> Result<Vec<serde_json::Value>, SequenceError> {
    let num = |v: &Option<AnyString>, field: &'static str| -> Result<Option<i64>, SequenceError> {
        match v {
            None => Ok(None),
            Some(v) => {
                let text = vars.substitute(&v.0).map_err(|source| SequenceError::Substitution { field, source })?;
                let number = text.trim().parse::<i64>();
                number.map(Some).map_err(|_| SequenceError::NotANumber { field, text })
            }
        }
    };
    let start = num(&seq.start, "start")?.unwrap_or(0);
    let (count, end) = (num(&seq.count, "count")?, num(&seq.end, "end")?);
    let values: Vec<i64> = match (count, end) {
        (Some(_), Some(_)) => return Err(SequenceError::CountAndEnd),
        (Some(c), None) => (0..c.max(0)).map(|i| start + i).collect(),
        (None, Some(e)) if e >= start => (start..=e).collect(),
        (None, Some(e)) => (e..=start).rev().collect(),
        (None, None) => return Err(SequenceError::NoBound),
    };
    values.into_iter().map(|v| format_number(&seq.format, v).map(serde_json::Value::String)).collect()
}

/// printf-style `%d`, `%5d`, `%05d`, `%x`, `%X`, `%o` with surrounding text,
/// the verbs Argo's `format` takes (Go's fmt; no Rust crate formats from a
/// runtime printf string with Go's rules).
fn format_number(format: &str, v: i64) -> Result<String, SequenceError> {
    let problem = |problem: String| SequenceError::Format { format: format.to_string(), problem };
    if format.is_empty() {
        return Ok(v.to_string());
    }
    let Some(at) = format.find('%') else {
        return Err(problem("it has no % verb".into()));
    };
    let spec = &format[at + 1..];
    let verb_at = spec.find(|c: char| c.is_ascii_alphabetic()).ok_or_else(|| problem("no verb".into()))?;
    let (flags, verb) = (&spec[..verb_at], &spec[verb_at..verb_at + 1]);
    let zero = flags.starts_with('0');
    let width: usize = flags.trim_start_matches('0').parse().unwrap_or(0);
    let body = match verb {
        "d" => v.to_string(),
        "x" => format!("{v:x}"),
        "X" => format!("{v:X}"),
        "o" => format!("{v:o}"),
        other => return Err(problem(format!("verb %{other} is not supported (use d, x, X or o)"))),
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
