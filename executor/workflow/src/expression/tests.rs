//! The evaluator with Argo's environment, end to end: text in, text out.

use super::*;

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn env() -> BTreeMap<String, String> {
    vars(&[
        ("inputs.parameters.n", "3"),
        ("inputs.parameters.ratio", "0.5"),
        ("inputs.parameters.my-param", "dashed"),
        ("inputs.parameters", r#"{"n":"3"}"#),
        ("steps.gen-1.outputs.result", r#"{"items": [{"name": "a"}, {"name": "b"}], "count": 2}"#),
        ("steps.gen-1.status", "Succeeded"),
        ("workflow.name", "wf-abc"),
        ("item.colour", "red"),
        ("retries", "2"),
        ("lastRetry.exitCode", "1"),
    ])
}

/// Evaluates and renders as a `{{=...}}` tag would.
fn tag(expression: &str) -> String {
    let value = evaluate(expression, &env()).unwrap_or_else(|e| panic!("{expression}: {e}"));
    tag_text(expression, &value).unwrap_or_else(|e| panic!("{expression}: {e}"))
}

#[test]
fn argo_variables_and_functions() {
    let table = [
        ("inputs.parameters.n", "3"),
        ("asInt(inputs.parameters.n) + 1", "4"),
        ("asFloat(inputs.parameters.ratio) * 2", "1"),
        ("asFloat(inputs.parameters.ratio) * 3", "1.5"),
        ("inputs.parameters['my-param']", "dashed"),
        ("inputs.parameters.n == '3'", "true"),
        ("steps['gen-1'].status", "Succeeded"),
        ("jsonpath(steps['gen-1'].outputs.result, '$.count')", "2"),
        ("jsonpath(steps['gen-1'].outputs.result, '$.items[*].name')", r#"["a","b"]"#),
        ("workflow.name + '-' + item.colour", "wf-abc-red"),
        ("asInt(retries) > 1 && asInt(lastRetry.exitCode) == 1", "true"),
        ("toJson([1, 'a', nil])", r#"[1,"a",null]"#),
        ("string(7) + string(2.5)", "72.5"),
        ("filter([1, 2, 3], {# > 1})", "[2,3]"),
        ("map([1, 2], {# * 2})", "[2,4]"),
        ("{'b': 1, 'a': 'x'}", r#"{"a":"x","b":1}"#),
        ("'x' matches '^x$'", "true"),
        ("inputs.parameters.n in ['1', '3']", "true"),
        ("len(inputs.parameters)", "3"),
    ];
    for (expression, want) in table {
        assert_eq!(tag(expression), want, "{expression}");
    }
}

#[test]
fn numbers_follow_go() {
    let table = [
        ("5 / 2", "2.5"),
        ("4 / 2", "2"),
        ("7 % 3", "1"),
        ("1.5 + 1.5", "3"),
        ("2 ** 10", "1024"),
        ("-3", "-3"),
        ("int(5.9)", "5"),
        ("float(2)", "2"),
        ("1e21 * 1", "1e+21"),
    ];
    for (expression, want) in table {
        assert_eq!(tag(expression), want, "{expression}");
    }
    assert_eq!(parameter_text("x", &Value::Float(3.0)).unwrap(), "3");
    assert_eq!(parameter_text("x", &Value::Float(1234567.0)).unwrap(), "1.234567e+06");
    assert_eq!(parameter_text("x", &Value::Bool(true)).unwrap(), "true");
}

#[test]
fn sprig_functions() {
    let table = [
        ("sprig.trim('  a b ')", "a b"),
        ("sprig.upper('abc') + sprig.lower('DEF')", "ABCdef"),
        ("sprig.replace('-', '_', 'a-b-c')", "a_b_c"),
        ("sprig.splitList(',', 'a,b,c')", r#"["a","b","c"]"#),
        ("sprig.join('+', sprig.splitList(',', 'a,b'))", "a+b"),
        ("sprig.join(',', [1, 2])", "1,2"),
        ("sprig.toJson({'a': 1})", r#"{"a":1}"#),
        ("sprig.fromJson('{\"a\": [1, 2]}').a[1]", "2"),
        ("sprig.add(1, '2', 3.9)", "6"),
        ("sprig.sub(10, 4)", "6"),
        ("sprig.mul(2, 3, 4)", "24"),
        ("sprig.div(7, 2)", "3"),
        ("sprig.int('42') + 1", "43"),
        ("sprig.float64('2.5')", "2.5"),
        ("sprig.default('dflt', '')", "dflt"),
        ("sprig.default('dflt', 'given')", "given"),
        ("sprig.empty('') && !sprig.empty('x')", "true"),
        ("sprig.contains('ell', 'hello')", "true"),
        ("sprig.hasPrefix('he', 'hello') && sprig.hasSuffix('lo', 'hello')", "true"),
        ("sprig.trimSuffix('.txt', 'a.txt') + sprig.trimPrefix('x-', 'x-b')", "ab"),
        ("sprig.repeat(3, 'ab')", "ababab"),
        ("sprig.list(1, 'a')", r#"[1,"a"]"#),
        ("sprig.first([3, 4]) + sprig.last([3, 4])", "7"),
        ("sprig.dateInZone('2006-01-02 15:04', 0, 'UTC')", "1970-01-01 00:00"),
        ("sprig.date('2006', '2024-03-05T07:08:09Z') != ''", "true"),
        ("sprig.sha256sum('hello world')", "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"),
        ("sprig.b64enc('hi') + sprig.b64dec('aGk=')", "aGk=hi"),
        ("sprig.regexReplaceAll('a(x*)b', '-ab-axxb-', '${1}W')", "-W-xxW-"),
        ("sprig.until(3)", "[0,1,2]"),
        ("sprig.dict('k', 'v').k", "v"),
        ("sprig.title('hello world')", "Hello World"),
        ("sprig.trunc(3, 'abcdef') + sprig.substr(1, 3, 'abcdef')", "abcbc"),
    ];
    for (expression, want) in table {
        assert_eq!(tag(expression), want, "{expression}");
    }
}

#[test]
fn errors_name_the_expression() {
    let unknown = evaluate("nope + 1", &env()).unwrap_err();
    assert!(matches!(&unknown, ExpressionError::Evaluate { expression, .. } if expression == "nope + 1"), "{unknown}");
    assert!(unknown.to_string().contains("`nope + 1`"), "{unknown}");
    let parse = check("1 +").unwrap_err();
    assert!(matches!(parse, ExpressionError::Parse { .. }), "{parse}");
    assert!(matches!(check(""), Err(ExpressionError::Parse { .. })));
    // A map literal's values may be any expression (the crate alone takes constants only).
    let map = evaluate("toJson({'a': [1], b: 1 + 1, c: {d: sprig.add(1, 2)}})", &env()).unwrap();
    assert_eq!(tag_text("toJson(...)", &map).unwrap(), r#"{"a":[1],"b":2,"c":{"d":3}}"#);
    let bad_int = evaluate("asInt('x')", &env()).unwrap_err().to_string();
    assert!(bad_int.contains("asInt(\"x\")"), "{bad_int}");
    let sprig = evaluate("sprig.nope(1)", &env()).unwrap_err().to_string();
    assert!(sprig.contains("sprig.nope"), "{sprig}");
    assert!(evaluate("sprig.div(1, 0)", &env()).unwrap_err().to_string().contains("divide by zero"));
    assert!(evaluate("inputs.parameters.n + 1", &env()).is_err(), "text and a number do not add, as in Argo");
    let nil = evaluate("nil", &env()).unwrap();
    assert!(tag_text("nil", &nil).is_err());
    assert!(matches!(evaluate_bool("1 + 1", &env()), Err(ExpressionError::Result { .. })));
    assert_eq!(evaluate_bool("asInt(lastRetry.exitCode) == 1", &env()), Ok(true));
}

#[test]
fn deep_nesting_is_refused_before_parsing() {
    let deep = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
    let err = check(&deep).unwrap_err().to_string();
    assert!(err.contains("more than 100"), "{}", &err[err.len().saturating_sub(200)..]);
    let fine = format!("{}1{}", "(".repeat(50), ")".repeat(50));
    assert_eq!(tag(&fine), "1");
}

#[test]
fn a_name_that_is_also_a_prefix_becomes_the_map() {
    let ctx = context(&vars(&[("a", "x"), ("a.b", "1"), ("a-c", "2")]));
    assert!(ctx.get("a").and_then(Value::as_map).is_some_and(|m| m.contains_key("b")));
    assert_eq!(ctx.get("a-c"), Some(&Value::String("2".into())));
}
