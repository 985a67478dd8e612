//! The sprig functions Argo offers as `sprig.<name>(...)`, with sprig's
//! argument order (the value last: `sprig.replace(old, new, text)`) and its
//! forgiving conversions (`sprig.add("3", 4)` is 7, text that is no number
//! counts as 0). expr-lang has no sprig, so each is written here; they are
//! registered as `sprig_<name>`, which `scan::rewrite_sprig` calls.

use super::functions::{arity, fail, go_string};
use super::render::{from_json, to_json};
use super::sprig_time;
use expr::{Environment, Value};
use sha2::Digest;

type Out = expr::Result<Value>;

/// sprig's `strval`: a string as it is, anything else as Go's `%v`.
fn text(v: &Value) -> String {
    go_string(v)
}

/// sprig's `toInt64` (spf13/cast): numbers truncated, text in Go's base-0
/// syntax (`0x1f`, `010` is octal), `true` is 1, anything else 0.
pub(super) fn to_int(v: &Value) -> i64 {
    match v {
        Value::Integer(n) => *n,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::String(s) => parse_go_int(s).unwrap_or(0),
        _ => 0,
    }
}

fn parse_go_int(s: &str) -> Option<i64> {
    // cast drops a zero fraction first: "3.00" reads as 3.
    let s = match s.split_once('.') {
        Some((whole, frac)) if !frac.is_empty() && frac.bytes().all(|b| b == b'0') => whole,
        _ => s,
    };
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let digits = digits.replace('_', "");
    let (body, radix) = match digits.as_bytes() {
        [b'0', b'x' | b'X', ..] => (&digits[2..], 16),
        [b'0', b'b' | b'B', ..] => (&digits[2..], 2),
        [b'0', b'o' | b'O', ..] => (&digits[2..], 8),
        [b'0', _, ..] => (&digits[1..], 8),
        _ => (digits.as_str(), 10),
    };
    let n = i64::from_str_radix(body, radix).ok()?;
    Some(if negative { -n } else { n })
}

/// sprig's `toFloat64`: numbers, numeric text, `true` as 1; else 0.
fn to_float(v: &Value) -> f64 {
    match v {
        Value::Integer(n) => *n as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(s) => s.trim().parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// sprig's `empty`: nil, zero, false, and empty text, lists and maps.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Nil => true,
        Value::Bool(b) => !b,
        Value::Integer(n) => *n == 0,
        Value::Float(f) => *f == 0.0,
        Value::String(s) => s.is_empty(),
        Value::Bytes(b) => b.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Map(m) => m.is_empty(),
        Value::KeyedMap(m) => m.is_empty(),
    }
}

/// sprig's `strslice`: a list's items as text (nil left out), or one text.
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().filter(|i| !i.is_nil()).map(text).collect(),
        Value::Nil => Vec::new(),
        other => vec![text(other)],
    }
}

fn list(name: &str, v: &Value) -> expr::Result<Vec<Value>> {
    match v {
        Value::Array(items) => Ok(items.clone()),
        other => Err(fail(format!("sprig.{name}(): {} is not a list", go_string(other)))),
    }
}

/// Go's `strings.Split`: an empty separator splits into characters.
fn split(text: &str, sep: &str) -> Vec<String> {
    if sep.is_empty() {
        return text.chars().map(String::from).collect();
    }
    text.split(sep).map(String::from).collect()
}

fn regex(pattern: &str) -> expr::Result<regex::Regex> {
    regex::Regex::new(pattern).map_err(|e| fail(format!("invalid regular expression {pattern:?}: {e}")))
}

/// Characters `start..end` of `s`, clamped (sprig slices bytes; Ferry
/// counts characters so a cut never splits one).
fn chars(s: &str, start: usize, end: usize) -> String {
    s.chars().skip(start).take(end.saturating_sub(start)).collect()
}

fn string_functions(env: &mut Environment<'_>) {
    env.add_function("sprig_trim", |c| one(c.args, "trim", |s| s.trim().into()));
    env.add_function("sprig_upper", |c| one(c.args, "upper", |s| s.to_uppercase().into()));
    env.add_function("sprig_lower", |c| one(c.args, "lower", |s| s.to_lowercase().into()));
    env.add_function("sprig_nospace", |c| {
        one(c.args, "nospace", |s| s.chars().filter(|c| !c.is_whitespace()).collect::<String>().into())
    });
    env.add_function("sprig_title", |c| one(c.args, "title", |s| title(&s).into()));
    env.add_function("sprig_b64enc", |c| {
        use base64::Engine;
        one(c.args, "b64enc", |s| base64::engine::general_purpose::STANDARD.encode(s).into())
    });
    env.add_function("sprig_b64dec", |c| {
        use base64::Engine;
        // sprig returns the decoding error as the text.
        one(c.args, "b64dec", |s| match base64::engine::general_purpose::STANDARD.decode(&s) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned().into(),
            Err(e) => e.to_string().into(),
        })
    });
    env.add_function("sprig_sha256sum", |c| {
        one(c.args, "sha256sum", |s| {
            sha2::Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect::<String>().into()
        })
    });
    env.add_function("sprig_toString", |c| one(c.args, "toString", Value::String));
    env.add_function("sprig_trimAll", |c| {
        two(c.args, "trimAll", |cut, s| s.trim_matches(|ch| cut.contains(ch)).into())
    });
    env.add_function("sprig_trimPrefix", |c| {
        two(c.args, "trimPrefix", |p, s| s.strip_prefix(p.as_str()).unwrap_or(&s).into())
    });
    env.add_function("sprig_trimSuffix", |c| {
        two(c.args, "trimSuffix", |p, s| s.strip_suffix(p.as_str()).unwrap_or(&s).into())
    });
    env.add_function("sprig_contains", |c| two(c.args, "contains", |sub, s| s.contains(sub.as_str()).into()));
    env.add_function("sprig_hasPrefix", |c| two(c.args, "hasPrefix", |p, s| s.starts_with(p.as_str()).into()));
    env.add_function("sprig_hasSuffix", |c| two(c.args, "hasSuffix", |p, s| s.ends_with(p.as_str()).into()));
    env.add_function("sprig_splitList", |c| two(c.args, "splitList", |sep, s| split(&s, &sep).into()));
    env.add_function("sprig_split", |c| {
        two(c.args, "split", |sep, s| {
            split(&s, &sep).into_iter().enumerate().map(|(i, p)| (format!("_{i}"), p)).collect()
        })
    });
    env.add_function("sprig_replace", |c| {
        arity("sprig.replace", &c.args, 3)?;
        Ok(text(&c.args[2]).replace(&text(&c.args[0]), &text(&c.args[1])).into())
    });
    string_functions_2(env);
}

fn string_functions_2(env: &mut Environment<'_>) {
    env.add_function("sprig_repeat", |c| {
        arity("sprig.repeat", &c.args, 2)?;
        let count = usize::try_from(to_int(&c.args[0])).map_err(|_| fail("sprig.repeat(): negative count".into()))?;
        let s = text(&c.args[1]);
        if count.saturating_mul(s.len()) > 1 << 20 {
            return Err(fail("sprig.repeat(): the result would be over 1 MiB".into()));
        }
        Ok(s.repeat(count).into())
    });
    env.add_function("sprig_trunc", |c| {
        arity("sprig.trunc", &c.args, 2)?;
        let (n, s) = (to_int(&c.args[0]), text(&c.args[1]));
        let len = s.chars().count() as i64;
        Ok(match n {
            n if n >= 0 && len > n => chars(&s, 0, n as usize),
            n if n < 0 && len > -n => chars(&s, (len + n) as usize, len as usize),
            _ => s,
        }
        .into())
    });
    env.add_function("sprig_substr", |c| {
        arity("sprig.substr", &c.args, 3)?;
        let (start, end, s) = (to_int(&c.args[0]), to_int(&c.args[1]), text(&c.args[2]));
        let len = s.chars().count() as i64;
        Ok(match (start, end) {
            (start, end) if start < 0 => chars(&s, 0, end.clamp(0, len) as usize),
            (start, end) if end < 0 || end > len => chars(&s, start as usize, len as usize),
            (start, end) => chars(&s, start as usize, end as usize),
        }
        .into())
    });
    env.add_function("sprig_quote", |c| {
        let quoted: Vec<String> =
            c.args.iter().filter(|v| !v.is_nil()).map(|v| serde_json::Value::String(text(v)).to_string()).collect();
        Ok(quoted.join(" ").into())
    });
    env.add_function("sprig_squote", |c| {
        let quoted: Vec<String> = c.args.iter().filter(|v| !v.is_nil()).map(|v| format!("'{}'", text(v))).collect();
        Ok(quoted.join(" ").into())
    });
    env.add_function("sprig_cat", |c| {
        Ok(c.args.iter().filter(|v| !v.is_nil()).map(text).collect::<Vec<_>>().join(" ").into())
    });
    env.add_function("sprig_indent", |c| {
        arity("sprig.indent", &c.args, 2)?;
        Ok(indent(&c.args[0], &c.args[1]).into())
    });
    env.add_function("sprig_nindent", |c| {
        arity("sprig.nindent", &c.args, 2)?;
        Ok(format!("\n{}", indent(&c.args[0], &c.args[1])).into())
    });
    env.add_function("sprig_join", |c| {
        arity("sprig.join", &c.args, 2)?;
        Ok(strings(&c.args[1]).join(&text(&c.args[0])).into())
    });
}

fn indent(spaces: &Value, v: &Value) -> String {
    let pad = " ".repeat(usize::try_from(to_int(spaces)).unwrap_or(0).min(1024));
    format!("{pad}{}", text(v).replace('\n', &format!("\n{pad}")))
}

/// Go's `strings.Title`: the first letter of each word in upper case.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut at_start = true;
    for ch in s.chars() {
        if at_start {
            out.extend(ch.to_uppercase());
        } else {
            out.push(ch);
        }
        at_start = ch.is_whitespace() || (!ch.is_alphanumeric() && ch != '_' && ch != '\'');
    }
    out
}

fn one(args: Vec<Value>, name: &str, f: impl Fn(String) -> Value) -> Out {
    arity(&format!("sprig.{name}"), &args, 1)?;
    Ok(f(text(&args[0])))
}

fn two(args: Vec<Value>, name: &str, f: impl Fn(String, String) -> Value) -> Out {
    arity(&format!("sprig.{name}"), &args, 2)?;
    Ok(f(text(&args[0]), text(&args[1])))
}

fn regex_functions(env: &mut Environment<'_>) {
    env.add_function("sprig_regexMatch", |c| {
        arity("sprig.regexMatch", &c.args, 2)?;
        Ok(regex(&text(&c.args[0]))?.is_match(&text(&c.args[1])).into())
    });
    env.add_function("sprig_regexFind", |c| {
        arity("sprig.regexFind", &c.args, 2)?;
        let s = text(&c.args[1]);
        Ok(regex(&text(&c.args[0]))?.find(&s).map_or(String::new(), |m| m.as_str().to_string()).into())
    });
    env.add_function("sprig_regexFindAll", |c| {
        arity("sprig.regexFindAll", &c.args, 3)?;
        let (s, n) = (text(&c.args[1]), to_int(&c.args[2]));
        let re = regex(&text(&c.args[0]))?;
        let all = re.find_iter(&s).map(|m| m.as_str().to_string());
        Ok(all.take(usize::try_from(n).unwrap_or(usize::MAX)).collect::<Vec<_>>().into())
    });
    env.add_function("sprig_regexReplaceAll", |c| {
        arity("sprig.regexReplaceAll", &c.args, 3)?;
        let (s, repl) = (text(&c.args[1]), text(&c.args[2]));
        Ok(regex(&text(&c.args[0]))?.replace_all(&s, repl.as_str()).into_owned().into())
    });
    env.add_function("sprig_regexReplaceAllLiteral", |c| {
        arity("sprig.regexReplaceAllLiteral", &c.args, 3)?;
        let (s, repl) = (text(&c.args[1]), text(&c.args[2]));
        Ok(regex(&text(&c.args[0]))?.replace_all(&s, regex::NoExpand(&repl)).into_owned().into())
    });
}

fn math_functions(env: &mut Environment<'_>) {
    env.add_function("sprig_add", |c| Ok(c.args.iter().fold(0i64, |a, v| a.wrapping_add(to_int(v))).into()));
    env.add_function("sprig_add1", |c| {
        arity("sprig.add1", &c.args, 1)?;
        Ok(to_int(&c.args[0]).wrapping_add(1).into())
    });
    env.add_function("sprig_mul", |c| Ok(c.args.iter().fold(1i64, |a, v| a.wrapping_mul(to_int(v))).into()));
    env.add_function("sprig_sub", |c| int2(c.args, "sub", |a, b| Ok(a.wrapping_sub(b))));
    env.add_function("sprig_div", |c| int2(c.args, "div", |a, b| a.checked_div(b).ok_or("integer divide by zero")));
    env.add_function("sprig_mod", |c| int2(c.args, "mod", |a, b| a.checked_rem(b).ok_or("integer divide by zero")));
    env.add_function("sprig_max", |c| fold_ints(c.args, "max", i64::max));
    env.add_function("sprig_min", |c| fold_ints(c.args, "min", i64::min));
    env.add_function("sprig_addf", |c| Ok(c.args.iter().map(to_float).sum::<f64>().into()));
    env.add_function("sprig_mulf", |c| Ok(c.args.iter().map(to_float).product::<f64>().into()));
    env.add_function("sprig_subf", |c| fold_floats(c.args, "subf", |a, b| a - b));
    env.add_function("sprig_divf", |c| fold_floats(c.args, "divf", |a, b| a / b));
    env.add_function("sprig_floor", |c| {
        arity("sprig.floor", &c.args, 1)?;
        Ok(to_float(&c.args[0]).floor().into())
    });
    env.add_function("sprig_ceil", |c| {
        arity("sprig.ceil", &c.args, 1)?;
        Ok(to_float(&c.args[0]).ceil().into())
    });
    for name in ["int", "int64"] {
        env.add_function(&format!("sprig_{name}"), move |c| {
            arity(&format!("sprig.{name}"), &c.args, 1)?;
            Ok(to_int(&c.args[0]).into())
        });
    }
    env.add_function("sprig_float64", |c| {
        arity("sprig.float64", &c.args, 1)?;
        Ok(to_float(&c.args[0]).into())
    });
    env.add_function("sprig_atoi", |c| {
        arity("sprig.atoi", &c.args, 1)?;
        Ok(text(&c.args[0]).parse::<i64>().unwrap_or(0).into())
    });
}

fn int2(args: Vec<Value>, name: &str, f: impl Fn(i64, i64) -> Result<i64, &'static str>) -> Out {
    arity(&format!("sprig.{name}"), &args, 2)?;
    f(to_int(&args[0]), to_int(&args[1])).map(Value::Integer).map_err(|e| fail(format!("sprig.{name}(): {e}")))
}

fn fold_ints(args: Vec<Value>, name: &str, f: fn(i64, i64) -> i64) -> Out {
    let mut items = args.iter().map(to_int);
    let first = items.next().ok_or_else(|| fail(format!("sprig.{name}() needs at least one argument")))?;
    Ok(items.fold(first, f).into())
}

fn fold_floats(args: Vec<Value>, name: &str, f: fn(f64, f64) -> f64) -> Out {
    let mut items = args.iter().map(to_float);
    let first = items.next().ok_or_else(|| fail(format!("sprig.{name}() needs at least one argument")))?;
    Ok(items.fold(first, f).into())
}

fn list_functions(env: &mut Environment<'_>) {
    env.add_function("sprig_list", |c| Ok(Value::Array(c.args)));
    env.add_function("sprig_first", |c| pick(c.args, "first", |l| l.first().cloned().unwrap_or(Value::Nil)));
    env.add_function("sprig_last", |c| pick(c.args, "last", |l| l.last().cloned().unwrap_or(Value::Nil)));
    env.add_function("sprig_rest", |c| pick(c.args, "rest", |l| Value::Array(l.iter().skip(1).cloned().collect())));
    env.add_function("sprig_initial", |c| {
        pick(c.args, "initial", |l| Value::Array(l[..l.len().saturating_sub(1)].to_vec()))
    });
    env.add_function("sprig_reverse", |c| pick(c.args, "reverse", |l| Value::Array(l.iter().rev().cloned().collect())));
    env.add_function("sprig_uniq", |c| {
        pick(c.args, "uniq", |l| {
            let mut out: Vec<Value> = Vec::new();
            for v in l {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            Value::Array(out)
        })
    });
    env.add_function("sprig_sortAlpha", |c| {
        arity("sprig.sortAlpha", &c.args, 1)?;
        let mut items = strings(&c.args[0]);
        items.sort();
        Ok(items.into())
    });
    env.add_function("sprig_append", |c| {
        arity("sprig.append", &c.args, 2)?;
        let mut items = list("append", &c.args[0])?;
        items.push(c.args[1].clone());
        Ok(Value::Array(items))
    });
    env.add_function("sprig_prepend", |c| {
        arity("sprig.prepend", &c.args, 2)?;
        let mut items = list("prepend", &c.args[0])?;
        items.insert(0, c.args[1].clone());
        Ok(Value::Array(items))
    });
    env.add_function("sprig_concat", |c| {
        let lists = c.args.iter().map(|l| list("concat", l)).collect::<expr::Result<Vec<_>>>()?;
        Ok(Value::Array(lists.concat()))
    });
    env.add_function("sprig_has", |c| {
        arity("sprig.has", &c.args, 2)?;
        Ok(list("has", &c.args[1])?.contains(&c.args[0]).into())
    });
    env.add_function("sprig_until", |c| {
        arity("sprig.until", &c.args, 1)?;
        let n = to_int(&c.args[0]).clamp(-100_000, 100_000);
        let items: Vec<Value> =
            if n >= 0 { (0..n).map(Value::Integer).collect() } else { (n + 1..=0).rev().map(Value::Integer).collect() };
        Ok(Value::Array(items))
    });
}

fn pick(args: Vec<Value>, name: &str, f: impl Fn(&[Value]) -> Value) -> Out {
    arity(&format!("sprig.{name}"), &args, 1)?;
    Ok(f(&list(name, &args[0])?))
}

fn value_functions(env: &mut Environment<'_>) {
    env.add_function("sprig_empty", |c| {
        arity("sprig.empty", &c.args, 1)?;
        Ok(is_empty(&c.args[0]).into())
    });
    env.add_function("sprig_default", |c| {
        let Some(fallback) = c.args.first() else { return Err(fail("sprig.default() needs a default".into())) };
        Ok(match c.args.get(1) {
            Some(given) if !is_empty(given) => given.clone(),
            _ => fallback.clone(),
        })
    });
    env.add_function("sprig_coalesce", |c| Ok(c.args.into_iter().find(|v| !is_empty(v)).unwrap_or(Value::Nil)));
    env.add_function("sprig_ternary", |c| {
        arity("sprig.ternary", &c.args, 3)?;
        let Value::Bool(cond) = c.args[2] else {
            return Err(fail("sprig.ternary(): the condition is not a boolean".into()));
        };
        Ok(if cond { c.args[0].clone() } else { c.args[1].clone() })
    });
    env.add_function("sprig_toJson", |c| {
        arity("sprig.toJson", &c.args, 1)?;
        // sprig writes nothing when the value has no JSON.
        Ok(to_json(&c.args[0]).unwrap_or_default().into())
    });
    env.add_function("sprig_fromJson", |c| {
        arity("sprig.fromJson", &c.args, 1)?;
        Ok(serde_json::from_str(&text(&c.args[0])).map(from_json).unwrap_or(Value::Nil))
    });
    env.add_function("sprig_dict", |c| {
        let pairs = c.args.chunks(2).map(|p| (text(&p[0]), p.get(1).cloned().unwrap_or(Value::String(String::new()))));
        Ok(pairs.collect())
    });
    env.add_function("sprig_get", |c| {
        arity("sprig.get", &c.args, 2)?;
        let found = c.args[0].as_map().and_then(|m| m.get(&text(&c.args[1])).cloned());
        Ok(found.unwrap_or(Value::String(String::new())))
    });
    env.add_function("sprig_hasKey", |c| {
        arity("sprig.hasKey", &c.args, 2)?;
        Ok(c.args[0].as_map().is_some_and(|m| m.contains_key(&text(&c.args[1]))).into())
    });
    env.add_function("sprig_keys", |c| {
        let mut keys: Vec<String> = c.args.iter().filter_map(Value::as_map).flat_map(|m| m.keys().cloned()).collect();
        keys.sort();
        Ok(keys.into())
    });
}

/// Adds every sprig function Ferry has to `env`.
pub(super) fn add_sprig_functions(env: &mut Environment<'_>) {
    string_functions(env);
    regex_functions(env);
    math_functions(env);
    list_functions(env);
    value_functions(env);
    sprig_time::add_time_functions(env);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_integer_text_is_read_as_cast_reads_it() {
        for (text, want) in
            [("42", 42), ("-3", -3), ("0x1f", 31), ("010", 8), ("3.00", 3), ("1_000", 1000), ("x", 0), ("", 0)]
        {
            assert_eq!(to_int(&Value::String(text.into())), want, "{text}");
        }
        assert_eq!(to_int(&Value::Float(-2.7)), -2);
        assert_eq!(to_float(&Value::String("2.5".into())), 2.5);
        assert_eq!(to_float(&Value::String("no".into())), 0.0);
    }

    #[test]
    fn emptiness_follows_sprig() {
        for v in [Value::Nil, Value::Integer(0), Value::String(String::new()), Value::Array(vec![]), Value::Bool(false)]
        {
            assert!(is_empty(&v), "{v:?}");
        }
        assert!(!is_empty(&Value::String("0".into())));
        assert_eq!(title("hello big-world"), "Hello Big-World");
        assert_eq!(split("a,b,,c", ","), ["a", "b", "", "c"]);
        assert_eq!(split("ab", ""), ["a", "b"]);
    }
}
