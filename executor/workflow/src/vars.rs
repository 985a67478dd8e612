//! Values that `{{...}}` tags resolve to: workflow globals, a template's
//! inputs, the outcomes of sibling steps and tasks, and loop items.

use crate::aggregate;
use crate::expr::Resolved;
use crate::expression;
use crate::values::{ArtifactValue, Outputs, Phase};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// What a finished step or task left for its siblings.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The node (the loop's group node for loops).
    pub id: String,
    /// Its phase.
    pub phase: Phase,
    /// Its outputs (for a loop: none; see `children`).
    pub outputs: Outputs,
    /// Loop iterations, in order.
    pub children: Option<Vec<(Phase, Outputs)>>,
    /// Unix ms.
    pub started: Option<i64>,
    /// Unix ms.
    pub finished: Option<i64>,
}

/// The outcomes of a steps or DAG template's children, shared by every
/// clone: a DAG of 10,000 tasks hands each task a handle, not a copy.
#[derive(Clone, Debug, Default)]
pub struct Siblings(Arc<RwLock<BTreeMap<String, Outcome>>>);

impl Siblings {
    /// Records a child's outcome.
    pub fn insert(&self, name: String, outcome: Outcome) {
        if let Ok(mut map) = self.0.write() {
            map.insert(name, outcome);
        }
    }

    /// A child's outcome.
    pub fn get(&self, name: &str) -> Option<Outcome> {
        self.0.read().ok()?.get(name).cloned()
    }

    /// A copy of its own, with `name` set to `outcome`: what a step's hooks
    /// see (the step itself, whatever its siblings see of it).
    pub fn with(&self, name: String, outcome: Outcome) -> Siblings {
        let mut map = self.0.read().map(|m| m.clone()).unwrap_or_default();
        map.insert(name, outcome);
        Siblings(Arc::new(RwLock::new(map)))
    }

    /// Every child's key (`steps.X` / `tasks.X`), in order.
    pub fn names(&self) -> Vec<String> {
        self.0.read().map(|map| map.keys().cloned().collect()).unwrap_or_default()
    }
}

/// The variables in force where a text is substituted.
#[derive(Clone, Debug, Default)]
pub struct Vars {
    /// `workflow.*`, `pod.name`, `retries`, ... by full name.
    pub plain: BTreeMap<String, String>,
    /// `inputs.parameters.*` values.
    pub inputs: BTreeMap<String, String>,
    /// Outcomes of steps (`steps.X`) or tasks (`tasks.X`), by `steps.X` / `tasks.X`.
    pub siblings: Siblings,
    /// The template's bound input artifacts (`inputs.artifacts.X`).
    pub input_artifacts: BTreeMap<String, ArtifactValue>,
    /// Artifacts exported with `globalName` (`workflow.outputs.artifacts.X`).
    pub global_artifacts: BTreeMap<String, ArtifactValue>,
    /// The loop item.
    pub item: Option<serde_json::Value>,
    /// Names to leave for a later pass (prefixes such as `steps.`).
    pub keep: Vec<&'static str>,
}

fn text_of(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Vars {
    /// Resolves one tag name; `=expr` is an expression tag.
    pub fn resolve(&self, name: &str) -> Resolved {
        if let Some(expression) = name.strip_prefix('=') {
            return self.resolve_expression(expression);
        }
        if let Some(v) = self.plain.get(name) {
            return Resolved::Value(v.clone());
        }
        if let Some(p) = name.strip_prefix("inputs.parameters.")
            && let Some(v) = self.inputs.get(p)
        {
            return Resolved::Value(v.clone());
        }
        if name == "inputs.parameters" {
            return Resolved::Value(serde_json::to_string(&self.inputs).unwrap_or_default());
        }
        if (name == "item" || name.starts_with("item."))
            && let Some(item) = &self.item
        {
            let mut v = item;
            for part in name.split('.').skip(1) {
                match v.get(part) {
                    Some(x) => v = x,
                    None => return Resolved::Unknown,
                }
            }
            return Resolved::Value(text_of(v));
        }
        if let Some(v) = self.sibling(name) {
            return Resolved::Value(v);
        }
        if let Some(why) = self.absent(name) {
            return Resolved::Absent(why);
        }
        if self.keep.iter().any(|k| name.starts_with(k)) {
            return Resolved::Keep;
        }
        Resolved::Unknown
    }

    /// An expression tag: left for later when it reads a variable kept for a
    /// later pass, else evaluated with every variable it may read.
    fn resolve_expression(&self, expression: &str) -> Resolved {
        let refs = expression::references(expression);
        let kept = |r: &String| self.keep.iter().any(|k| r.starts_with(k) || k.starts_with(&format!("{r}.")));
        if refs.iter().any(kept) {
            return Resolved::Keep;
        }
        let vars = self.expression_vars(&refs);
        match expression::evaluate(expression, &vars).and_then(|v| expression::tag_text(expression, &v)) {
            Ok(text) => Resolved::Value(text),
            Err(e) => Resolved::Failed(e),
        }
    }

    /// Whether a condition (a hook's `expression`) holds with these variables.
    pub fn holds(&self, condition: &str) -> Result<bool, expression::ExpressionError> {
        expression::evaluate_bool(condition, &self.expression_vars(&expression::references(condition)))
    }

    /// Every variable in force by its dotted name, as Argo's expression
    /// environment holds them. Of the siblings only those `refs` name are
    /// included (all when an expression indexes `steps`/`tasks` itself), so
    /// a DAG of 10,000 tasks does not copy every outcome per expression.
    pub fn expression_vars(&self, refs: &[String]) -> BTreeMap<String, String> {
        let mut vars = self.plain.clone();
        // The strftime parts of `workflow.creationTimestamp` exist for key
        // formats; in an expression it is the RFC 3339 text, as in Argo.
        vars.retain(|k, _| !k.starts_with("workflow.creationTimestamp."));
        for (k, v) in &self.inputs {
            vars.insert(format!("inputs.parameters.{k}"), v.clone());
        }
        vars.insert("inputs.parameters".into(), serde_json::to_string(&self.inputs).unwrap_or_default());
        if let Some(item) = &self.item {
            vars.insert("item".into(), text_of(item));
            if let serde_json::Value::Object(fields) = item {
                for (k, v) in fields {
                    vars.insert(format!("item.{k}"), text_of(v));
                }
            }
        }
        let mut siblings: Vec<String> = Vec::new();
        for r in refs {
            let mut parts = r.splitn(3, '.');
            match (parts.next(), parts.next()) {
                (Some(scope @ ("steps" | "tasks")), Some(name)) => siblings.push(format!("{scope}.{name}")),
                (Some("steps" | "tasks"), None) => siblings.extend(self.siblings.names()),
                _ => {}
            }
        }
        for key in siblings {
            self.sibling_vars(&key, &mut vars);
        }
        vars
    }

    /// Every field of the sibling `key` (`steps.X`) into `vars`.
    fn sibling_vars(&self, key: &str, vars: &mut BTreeMap<String, String>) {
        let Some(o) = self.siblings.get(key) else { return };
        let mut fields: Vec<String> = [
            "status",
            "id",
            "startedAt",
            "finishedAt",
            "exitCode",
            "ip",
            "hostNodeName",
            "outputs.result",
            "outputs.parameters",
        ]
        .map(String::from)
        .to_vec();
        let mut params: Vec<&String> = o.outputs.parameters.keys().collect();
        for (_, child) in o.children.iter().flatten() {
            params.extend(child.parameters.keys());
        }
        fields.extend(params.into_iter().map(|p| format!("outputs.parameters.{p}")));
        for field in fields {
            let name = format!("{key}.{field}");
            if let Some(v) = self.sibling(&name) {
                vars.insert(name, v);
            }
        }
    }

    fn sibling(&self, name: &str) -> Option<String> {
        let mut parts = name.splitn(3, '.');
        let (scope, step, rest) = (parts.next()?, parts.next()?, parts.next()?);
        if scope != "steps" && scope != "tasks" {
            return None;
        }
        let o = self.siblings.get(&format!("{scope}.{step}"))?;
        let fmt_time = |t: Option<i64>| t.map(crate::time::rfc3339).unwrap_or_default();
        match rest {
            "status" => Some(o.phase.to_string()),
            "id" => Some(o.id.clone()),
            "startedAt" => Some(fmt_time(o.started)),
            "finishedAt" => Some(fmt_time(o.finished)),
            "exitCode" => o.outputs.exit_code.map(|c| c.to_string()),
            "ip" => o.outputs.ip.clone(),
            // Every local step runs on this machine.
            "hostNodeName" => Some(host_name()),
            "outputs.result" => match &o.children {
                Some(children) => Some(aggregate::results(children)),
                None => Some(o.outputs.result.clone().unwrap_or_default()),
            },
            "outputs.parameters" => o.children.as_deref().map(aggregate::parameters),
            _ => {
                let p = rest.strip_prefix("outputs.parameters.")?;
                match &o.children {
                    Some(children) => Some(aggregate::parameter(children, p)),
                    None => o.outputs.parameters.get(p).cloned(),
                }
            }
        }
    }

    /// Why `steps.X.outputs.parameters.P` has no value, when X was skipped
    /// or omitted (it produced nothing) and its template declares no
    /// `valueFrom.default` for P (the defaults it declares are in its
    /// outcome's parameters). Lint has checked that P is declared.
    fn absent(&self, name: &str) -> Option<String> {
        let mut parts = name.splitn(3, '.');
        let (scope, step, rest) = (parts.next()?, parts.next()?, parts.next()?);
        let param = rest.strip_prefix("outputs.parameters.")?;
        if scope != "steps" && scope != "tasks" {
            return None;
        }
        let o = self.siblings.get(&format!("{scope}.{step}"))?;
        let not_run = matches!(o.phase, Phase::Skipped | Phase::Omitted) && o.children.is_none();
        not_run.then(|| {
            format!(
                "{scope}.{step} was {} and its output parameter {param} declares no valueFrom.default \
                 (give it one, or give the consuming input parameter a default)",
                o.phase
            )
        })
    }

    /// The artifact a reference such as `steps.X.outputs.artifacts.A` names.
    pub fn artifact(&self, reference: &str) -> Option<ArtifactValue> {
        if let Some(name) = reference.strip_prefix("inputs.artifacts.") {
            return self.input_artifacts.get(name).cloned();
        }
        if let Some(name) = reference.strip_prefix("workflow.outputs.artifacts.") {
            return self.global_artifacts.get(name).cloned();
        }
        let mut parts = reference.splitn(3, '.');
        let (scope, step, rest) = (parts.next()?, parts.next()?, parts.next()?);
        let name = rest.strip_prefix("outputs.artifacts.")?;
        if scope != "steps" && scope != "tasks" {
            return None;
        }
        let o = self.siblings.get(&format!("{scope}.{step}"))?;
        o.outputs.artifacts.get(name).cloned()
    }

    /// Substitutes every tag of `text`.
    pub fn substitute(&self, text: &str) -> Result<String, crate::expr::Error> {
        if !text.contains("{{") {
            return Ok(text.to_string());
        }
        crate::expr::substitute(text, &mut |name| self.resolve(name))
    }
}

/// This machine's name: the node every local step runs on (`hostNodeName`).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}

/// The text Argo puts in a loop child's name: `0:a` for a scalar, `1:k:v,k2:v2` for an object.
pub fn item_label(index: usize, item: &serde_json::Value) -> String {
    let value = match item {
        serde_json::Value::Object(map) => {
            let mut pairs: Vec<String> = map.iter().map(|(k, v)| format!("{k}:{}", text_of(v))).collect();
            pairs.sort();
            pairs.join(",")
        }
        other => text_of(other),
    };
    format!("{index}:{value}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::Error;

    fn vars() -> Vars {
        let mut v = Vars::default();
        v.plain.insert("workflow.name".into(), "wf".into());
        v.plain.insert("workflow.creationTimestamp".into(), "2026-12-05T09:00:00Z".into());
        v.plain.insert("workflow.creationTimestamp.Y".into(), "2026".into());
        v.inputs.insert("n".into(), "4".into());
        v.item = Some(serde_json::json!({"colour": "red", "size": 2}));
        let outputs = Outputs {
            result: Some("[1, 2, 3]".into()),
            parameters: BTreeMap::from([("p".into(), "x".into())]),
            exit_code: Some(0),
            ..Default::default()
        };
        let outcome =
            Outcome { id: "7".into(), phase: Phase::Succeeded, outputs, children: None, started: None, finished: None };
        v.siblings.insert("steps.gen-1".into(), outcome);
        v
    }

    #[test]
    fn expression_tags_read_every_kind_of_variable() {
        let v = vars();
        let table = [
            ("{{=asInt(inputs.parameters.n) * 2}}", "8"),
            ("{{=item.colour}}-{{=asInt(item.size) + 1}}", "red-3"),
            ("{{=len(fromJSON(steps['gen-1'].outputs.result))}}", "3"),
            ("{{=steps['gen-1'].outputs.parameters.p + steps['gen-1'].status}}", "xSucceeded"),
            ("{{=workflow.name}}/{{workflow.name}}", "wf/wf"),
            ("{{=sprig.date('2006-01', workflow.creationTimestamp)}} {{workflow.creationTimestamp.Y}}", "2026-12 2026"),
            ("{{=inputs.parameters}}", r#"{"n":"4"}"#),
        ];
        for (text, want) in table {
            assert_eq!(v.substitute(text).unwrap_or_else(|e| panic!("{text}: {e}")), want, "{text}");
        }
    }

    #[test]
    fn expression_tags_reading_kept_variables_wait_for_a_later_pass() {
        let mut v = vars();
        v.keep = vec!["steps.", "item"];
        let text = "{{=steps.a.outputs.result}} {{=item}} {{=workflow.name}}";
        assert_eq!(v.substitute(text).unwrap(), "{{=steps.a.outputs.result}} {{=item}} wf");
    }

    #[test]
    fn a_failing_expression_is_an_error_naming_it() {
        let err = vars().substitute("x {{=asInt(workflow.name)}}").unwrap_err();
        assert!(matches!(err, Error::Expression(_)), "{err:?}");
        assert!(err.to_string().contains("asInt(workflow.name)"), "{err}");
        assert!(vars().substitute("{{=steps.nope.status}}").is_err(), "nil is no value");
    }
}
