//! The functions Argo adds to expr-lang's own: `asInt`, `asFloat`,
//! `jsonpath`, `toJson` (Argo's `string` is expr-lang's, Go's `%v`). The
//! crate has none of them, so they are written here.

use super::render::{from_json, to_json};
use expr::{Context, Environment, Value};
use jsonpath_rust::JsonPath;
use std::sync::LazyLock;

/// An error raised by one of these functions, as the crate reports its own.
pub(super) fn fail(message: String) -> expr::Error {
    expr::Error::ExprError(message)
}

/// Checks that `name` got exactly `n` arguments.
pub(super) fn arity(name: &str, args: &[Value], n: usize) -> expr::Result<()> {
    if args.len() == n {
        return Ok(());
    }
    Err(fail(format!("{name}() takes {n} argument{}, got {}", if n == 1 { "" } else { "s" }, args.len())))
}

/// expr-lang's own functions, for Go's `%v` text of a value.
static BUILTINS: LazyLock<Environment<'static>> = LazyLock::new(Environment::new);

/// `value` as Go's `fmt.Sprintf("%v")` writes it (`3`, `2.5`, `[a b]`, `map[k:v]`).
pub fn go_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => match BUILTINS.eval_func(&Context::default(), "string", vec![other.clone()], None) {
            Ok(Value::String(s)) => s,
            _ => other.to_string(),
        },
    }
}

/// A map literal's value, from its keys and values in turn (see
/// `scan::rewrite_maps`).
fn map_of_pairs(args: Vec<Value>) -> expr::Result<Value> {
    let mut map = Value::Map(Default::default());
    let Value::Map(entries) = &mut map else { unreachable!("just made") };
    let mut args = args.into_iter();
    while let Some(key) = args.next() {
        let Value::String(key) = key else { return Err(fail(format!("a map key must be a string, not {key}"))) };
        entries.insert(key, args.next().unwrap_or_default());
    }
    Ok(map)
}

fn as_int(args: Vec<Value>) -> expr::Result<Value> {
    arity("asInt", &args, 1)?;
    match &args[0] {
        Value::Integer(n) => Ok(Value::Integer(*n)),
        // Go converts a float to an integer by dropping the fraction.
        Value::Float(f) => Ok(Value::Integer(*f as i64)),
        Value::String(s) => s
            .strip_prefix('+')
            .unwrap_or(s)
            .parse::<i64>()
            .map(Value::Integer)
            .map_err(|_| fail(format!("asInt({s:?}): not an integer"))),
        other => Err(fail(format!("asInt() not supported on {}", go_string(other)))),
    }
}

fn as_float(args: Vec<Value>) -> expr::Result<Value> {
    arity("asFloat", &args, 1)?;
    match &args[0] {
        Value::Integer(n) => Ok(Value::Float(*n as f64)),
        Value::Float(f) => Ok(Value::Float(*f)),
        Value::String(s) => {
            s.parse::<f64>().map(Value::Float).map_err(|_| fail(format!("asFloat({s:?}): not a number")))
        }
        other => Err(fail(format!("asFloat() not supported on {}", go_string(other)))),
    }
}

fn to_json_text(args: Vec<Value>) -> expr::Result<Value> {
    arity("toJson", &args, 1)?;
    to_json(&args[0]).map(Value::String).map_err(|e| fail(format!("toJson(): {e}")))
}

/// `jsonpath(json, path)`: the value at a definite path, or the list of
/// matches for a path with wildcards, slices, filters or `..`.
fn jsonpath(args: Vec<Value>) -> expr::Result<Value> {
    arity("jsonpath", &args, 2)?;
    let (Value::String(json), Value::String(path)) = (&args[0], &args[1]) else {
        return Err(fail("jsonpath(json, path) takes two strings".into()));
    };
    let doc: serde_json::Value =
        serde_json::from_str(json).map_err(|e| fail(format!("jsonpath(): the document is not JSON: {e}")))?;
    let found = doc.query(path).map_err(|e| fail(format!("jsonpath(): bad path {path:?}: {e}")))?;
    let definite = !path.contains(['*', '?', ':', ',']) && !path.contains("..");
    match (definite, found.as_slice()) {
        (true, [one]) => Ok(from_json((*one).clone())),
        (true, []) => Err(fail(format!("jsonpath(): nothing at {path:?}"))),
        _ => Ok(Value::Array(found.into_iter().map(|v| from_json(v.clone())).collect())),
    }
}

/// Adds Argo's functions to `env`.
pub(super) fn add_argo_functions(env: &mut Environment<'_>) {
    env.add_function("asInt", |c| as_int(c.args));
    env.add_function(super::scan::MAP_FUNCTION, |c| map_of_pairs(c.args));
    env.add_function("asFloat", |c| as_float(c.args));
    env.add_function("toJson", |c| to_json_text(c.args));
    env.add_function("jsonpath", |c| jsonpath(c.args));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::String(text.into())
    }

    #[test]
    fn conversions_follow_go() {
        assert_eq!(as_int(vec![s("42")]).unwrap(), Value::Integer(42));
        assert_eq!(as_int(vec![s("-7")]).unwrap(), Value::Integer(-7));
        assert_eq!(as_int(vec![Value::Float(2.9)]).unwrap(), Value::Integer(2));
        assert!(as_int(vec![s("4.5")]).is_err());
        assert!(as_int(vec![s(" 4")]).is_err());
        assert_eq!(as_float(vec![s("2.5")]).unwrap(), Value::Float(2.5));
        assert_eq!(as_float(vec![Value::Integer(2)]).unwrap(), Value::Float(2.0));
        assert!(as_float(vec![s("x")]).unwrap_err().to_string().contains("not a number"));
        assert_eq!(go_string(&Value::Float(3.0)), "3");
        assert_eq!(go_string(&Value::Array(vec![s("a"), Value::Integer(1)])), "[a 1]");
    }

    #[test]
    fn jsonpath_gives_one_value_or_a_list() {
        let doc = s(r#"{"a": {"b": [1, 2, 3]}, "items": [{"n": "x"}, {"n": "y"}]}"#);
        let get = |path: &str| jsonpath(vec![doc.clone(), s(path)]);
        assert_eq!(get("$.a.b[1]").unwrap(), Value::Integer(2));
        assert_eq!(get("$.items[*].n").unwrap(), Value::Array(vec![s("x"), s("y")]));
        assert!(get("$.nope").unwrap_err().to_string().contains("nothing at"));
        assert!(jsonpath(vec![s("{"), s("$")]).unwrap_err().to_string().contains("not JSON"));
    }
}
