//! The outputs of a loop as its siblings read them (`steps.X.outputs.result`,
//! `steps.X.outputs.parameters`, `steps.X.outputs.parameters.P` of a
//! `withItems`/`withParam`/`withSequence` step): JSON lists over the
//! iterations that succeeded, in item order. As in Argo, an iteration that
//! was skipped, failed or errored adds nothing.

use crate::values::{Outputs, Phase};
use std::collections::BTreeMap;

/// `outputs.result`: each result that is JSON text embedded as that JSON
/// (compacted, keys in the order the step printed them), any other text as
/// a JSON string. (Argo refuses a loop whose results are not all JSON; Ferry
/// keeps them as strings.)
pub fn results(children: &[(Phase, Outputs)]) -> String {
    let items: Vec<String> = succeeded(children)
        .filter_map(|o| o.result.as_deref())
        .map(|text| compact_json(text).unwrap_or_else(|| quoted(text)))
        .collect();
    format!("[{}]", items.join(","))
}

/// `outputs.parameters`: one object of every output parameter per iteration
/// that has any.
pub fn parameters(children: &[(Phase, Outputs)]) -> String {
    let maps: Vec<&BTreeMap<String, String>> =
        succeeded(children).map(|o| &o.parameters).filter(|p| !p.is_empty()).collect();
    serde_json::to_string(&maps).unwrap_or_default()
}

/// `outputs.parameters.<name>`: the values of one parameter. When every
/// value is a JSON object or array they are embedded as JSON; otherwise all
/// are strings (so `1` and `2` give `["1","2"]`, as Argo gives them).
pub fn parameter(children: &[(Phase, Outputs)], name: &str) -> String {
    let values: Vec<&str> = succeeded(children).filter_map(|o| o.parameters.get(name)).map(String::as_str).collect();
    let structured: Option<Vec<String>> = values.iter().map(|v| compact_structure(v)).collect();
    match structured {
        Some(items) => format!("[{}]", items.join(",")),
        None => serde_json::to_string(&values).unwrap_or_default(),
    }
}

fn succeeded(children: &[(Phase, Outputs)]) -> impl Iterator<Item = &Outputs> {
    children.iter().filter(|(phase, _)| *phase == Phase::Succeeded).map(|(_, o)| o)
}

fn quoted(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

/// `text` compacted when it is a JSON object or array.
fn compact_structure(text: &str) -> Option<String> {
    let t = text.trim_start();
    if t.starts_with('{') || t.starts_with('[') { compact_json(text) } else { None }
}

/// `text` without the whitespace between its tokens, when it is one JSON
/// value. Compacted by hand rather than through `serde_json::Value`, which
/// would sort object keys.
fn compact_json(text: &str) -> Option<String> {
    serde_json::from_str::<serde::de::IgnoredAny>(text).ok()?;
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if !c.is_ascii_whitespace() {
            in_string = c == '"';
            out.push(c);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(phase: Phase, result: &str, params: &[(&str, &str)]) -> (Phase, Outputs) {
        let parameters = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        (phase, Outputs { result: Some(result.to_string()), parameters, ..Outputs::default() })
    }

    #[test]
    fn json_results_are_embedded_and_other_text_is_a_string() {
        let children = [
            child(Phase::Succeeded, "{ \"z\": 1,\n \"a\": \"x y\" }", &[]),
            child(Phase::Succeeded, "42", &[]),
            child(Phase::Succeeded, "hello world", &[]),
            child(Phase::Skipped, "", &[]),
            child(Phase::Failed, "[1]", &[]),
        ];
        assert_eq!(results(&children), r#"[{"z":1,"a":"x y"},42,"hello world"]"#);
    }

    #[test]
    fn parameters_are_parsed_only_when_every_value_is_an_object_or_array() {
        let both = [child(Phase::Succeeded, "", &[("p", "[1, 2]")]), child(Phase::Succeeded, "", &[("p", "{}")])];
        assert_eq!(parameter(&both, "p"), "[[1,2],{}]");
        let mixed = [child(Phase::Succeeded, "", &[("p", "[1]")]), child(Phase::Succeeded, "", &[("p", "3")])];
        assert_eq!(parameter(&mixed, "p"), r#"["[1]","3"]"#);
        let skipped = [child(Phase::Succeeded, "", &[("p", "a")]), child(Phase::Skipped, "", &[])];
        assert_eq!(parameters(&skipped), r#"[{"p":"a"}]"#);
    }
}
