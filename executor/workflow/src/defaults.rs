//! `spec.templateDefaults`: fields every template gets unless it sets them
//! itself, merged the way Argo merges them (a Kubernetes strategic merge of
//! the template over the defaults).
//!
//! - A field the template sets wins; objects merge field by field.
//! - Lists are the template's, except those Argo merges by `name`: input and
//!   output `parameters` and `artifacts`, and a container's `env`, where the
//!   template's entry replaces the default of the same name and the other
//!   defaults are kept.
//! - `container`, `script`, `steps` and `dag` defaults apply only to
//!   templates of that kind; `timeout` only to container and script
//!   templates (Argo ignores it elsewhere).
//! - As with Go's `omitempty`, an empty text, list or object in the template
//!   counts as not set.

use crate::model::Template;
use serde_json::{Map, Value};

/// Lists merged entry by entry on `name` rather than replaced.
const MERGED_BY_NAME: &[&str] = &["parameters", "artifacts", "env"];
/// Fields that say what kind of template it is.
const KINDS: &[&str] = &["container", "script", "steps", "dag"];

/// `template` with `defaults` merged under it.
pub fn apply(defaults: &Template, template: &Template) -> Result<Template, serde_json::Error> {
    let Value::Object(mut base) = serde_json::to_value(defaults)? else { return Ok(template.clone()) };
    let Value::Object(own) = serde_json::to_value(template)? else { return Ok(template.clone()) };
    base.remove("name");
    for kind in KINDS {
        if !is_set(own.get(*kind)) {
            base.remove(*kind);
        }
    }
    if !template.kind().is_pod() {
        base.remove("timeout");
    }
    serde_json::from_value(Value::Object(merge(base, own)))
}

fn is_set(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    }
}

/// `own` over `base`.
fn merge(mut base: Map<String, Value>, own: Map<String, Value>) -> Map<String, Value> {
    for (key, value) in own {
        if !is_set(Some(&value)) {
            continue;
        }
        let merged = match (base.remove(&key), value) {
            (Some(Value::Object(b)), Value::Object(o)) => Value::Object(merge(b, o)),
            (Some(Value::Array(b)), Value::Array(o)) if MERGED_BY_NAME.contains(&key.as_str()) => {
                Value::Array(merge_by_name(b, o))
            }
            (_, value) => value,
        };
        base.insert(key, merged);
    }
    base
}

/// The defaults' entries, each replaced by the template's of the same
/// name, then the template's other entries.
fn merge_by_name(base: Vec<Value>, own: Vec<Value>) -> Vec<Value> {
    let name = |v: &Value| v.get("name").and_then(Value::as_str).map(str::to_string);
    let mut out: Vec<Value> = base
        .into_iter()
        .map(|b| match own.iter().find(|o| name(o).is_some() && name(o) == name(&b)) {
            Some(o) => match (b, o.clone()) {
                (Value::Object(b), Value::Object(o)) => Value::Object(merge(b, o)),
                (_, o) => o,
            },
            None => b,
        })
        .collect();
    let taken: Vec<Option<String>> = out.iter().map(name).collect();
    out.extend(own.into_iter().filter(|o| name(o).is_none() || !taken.contains(&name(o))));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(yaml: &str) -> Template {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn the_template_wins_and_env_merges_by_name() {
        let defaults = template(
            "name: ''\ntimeout: 5s\ncontainer: {image: alpine, command: [sh], env: [{name: A, value: a}, {name: B, value: b}]}\nscript: {image: py, source: x}\n",
        );
        let t =
            apply(&defaults, &template("name: t\ncontainer: {image: '', args: [x], env: [{name: B, value: own}]}\n"))
                .unwrap();
        let c = t.container.as_ref().unwrap();
        assert_eq!(
            (t.name.as_str(), c.image.as_str(), c.command.clone(), c.args.clone()),
            ("t", "alpine", vec!["sh".to_string()], vec!["x".to_string()])
        );
        let env: Vec<(&str, &str)> = c.env.iter().map(|e| (e.name.as_str(), e.value.as_str())).collect();
        assert_eq!(env, [("A", "a"), ("B", "own")]);
        assert!(t.script.is_none(), "a script default does not make a container template a script");
        assert_eq!(t.timeout.map(|x| x.0), Some("5s".to_string()));
    }

    #[test]
    fn kind_defaults_and_timeout_stay_off_steps_templates() {
        let defaults = template("name: ''\ntimeout: 5s\nparallelism: 2\ncontainer: {image: alpine}\n");
        let t = apply(&defaults, &template("name: s\nsteps: [[{name: a, template: b}]]\n")).unwrap();
        assert!(t.container.is_none() && t.timeout.is_none() && t.steps.is_some());
        assert_eq!(t.parallelism, Some(2));
    }
}
