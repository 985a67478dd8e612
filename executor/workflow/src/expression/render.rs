//! Values as Argo writes them: `{{=...}}` and `toJson` go through Go's
//! `encoding/json` (so `3.0` is `3`, map keys are sorted), and a string
//! result is inserted without its quotes.

use expr::Value;
use std::fmt::Write;

/// Why a value has no text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RenderError {
    /// NaN or an infinity, which JSON cannot hold.
    #[error("json: unsupported value: {0}")]
    Unsupported(f64),
    /// A map keyed by something other than strings.
    #[error("json: a map with non-string keys cannot be written")]
    KeyedMap,
}

/// A float as Go's `encoding/json` writes it: plain decimals, except
/// exponents for magnitudes below 1e-6 or from 1e21 (`1e+21`, `1e-7`).
pub fn go_json_float(f: f64) -> Result<String, RenderError> {
    if !f.is_finite() {
        return Err(RenderError::Unsupported(f));
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Rust's `{:e}` is Go's shortest `e` form without the `+` and without
        // the padding Go then strips again for negative exponents.
        let text = format!("{f:e}");
        return Ok(match text.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
            _ => text,
        });
    }
    // Rust prints the shortest round-trip digits without an exponent, as Go's 'f' with -1.
    Ok(format!("{f}"))
}

/// `value` as Go's `json.Marshal` writes it.
pub fn to_json(value: &Value) -> Result<String, RenderError> {
    let mut out = String::new();
    write_json(value, &mut out)?;
    Ok(out)
}

fn write_json(value: &Value, out: &mut String) -> Result<(), RenderError> {
    match value {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Integer(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Float(f) => out.push_str(&go_json_float(*f)?),
        Value::String(s) => out.push_str(&serde_json::Value::String(s.clone()).to_string()),
        Value::Bytes(bytes) => {
            use base64::Engine;
            let text = base64::engine::general_purpose::STANDARD.encode(bytes);
            out.push_str(&serde_json::Value::String(text).to_string());
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out)?;
            }
            out.push(']');
        }
        Value::Map(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(k.clone()).to_string());
                out.push(':');
                write_json(v, out)?;
            }
            out.push('}');
        }
        Value::KeyedMap(_) => return Err(RenderError::KeyedMap),
    }
    Ok(())
}

/// A JSON document as an expression value: integers stay integers.
pub(super) fn from_json(json: serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::String(s),
        serde_json::Value::Array(items) => Value::Array(items.into_iter().map(from_json).collect()),
        serde_json::Value::Object(map) => Value::Map(map.into_iter().map(|(k, v)| (k, from_json(v))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_written_as_go_writes_json() {
        let table = [
            (3.0, "3"),
            (2.5, "2.5"),
            (-0.5, "-0.5"),
            (0.0, "0"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.5e-7, "1.5e-7"),
            (1e-6, "0.000001"),
            (1e-10, "1e-10"),
            (0.1 + 0.2, "0.30000000000000004"),
        ];
        for (f, want) in table {
            assert_eq!(go_json_float(f).unwrap(), want, "{f}");
        }
        assert!(go_json_float(f64::NAN).is_err());
    }

    #[test]
    fn maps_are_sorted_and_strings_escaped() {
        let value = from_json(serde_json::json!({"b": [1, 2.5, "x\"y"], "a": null, "c": {"z": true}}));
        assert_eq!(to_json(&value).unwrap(), r#"{"a":null,"b":[1,2.5,"x\"y"],"c":{"z":true}}"#);
    }
}
