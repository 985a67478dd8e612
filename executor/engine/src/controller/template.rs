//! A template's variables, the binding of its inputs, and the substitution
//! of `{{...}}` in it.

use super::{Call, Controller};
use crate::error::StepError;
use ferry_workflow::binding::{self, Bound, BoundArtifact};
use ferry_workflow::model::{AnyString, Template};
use ferry_workflow::naming;
use ferry_workflow::plan::Plan;
use ferry_workflow::time::{rfc3339, strftime_parts};
use ferry_workflow::vars::Vars;
use std::collections::BTreeMap;

/// The variables of a node's metrics once it ended: its template's, and
/// Argo's `status`, `duration` (seconds), `exitCode`, `outputs.result` and
/// `outputs.parameters.X`.
pub(super) fn node_metric_vars(mut vars: Vars, ended: &super::outcome::Ended, started: i64) -> Vars {
    let seconds = (ferry_workflow::time::now_ms() - started).max(0) as f64 / 1000.0;
    vars.plain.insert("status".into(), ended.phase.to_string());
    vars.plain.insert("duration".into(), format!("{seconds:.6}"));
    if let Some(code) = ended.outputs.exit_code {
        vars.plain.insert("exitCode".into(), code.to_string());
    }
    if let Some(result) = &ended.outputs.result {
        vars.plain.insert("outputs.result".into(), result.clone());
    }
    for (k, v) in &ended.outputs.parameters {
        vars.plain.insert(format!("outputs.parameters.{k}"), v.clone());
    }
    vars
}

impl Controller {
    pub(super) fn template_vars(&self, call: &Call, template: &Template, pod: bool) -> Vars {
        let mut vars = self.workflow_vars();
        vars.plain.extend(call.extra.clone());
        vars.plain.insert("node.name".into(), call.name.clone());
        if pod {
            vars.plain.insert("pod.name".into(), naming::pod_name(&self.plan.name, &template.name, &call.name));
        }
        for a in &template.inputs.artifacts {
            vars.plain.insert(format!("inputs.artifacts.{}.path", a.name), a.path.clone());
        }
        for p in &template.outputs.parameters {
            if let Some(vf) = &p.value_from {
                vars.plain.insert(format!("outputs.parameters.{}.path", p.name), vf.path.clone());
            }
        }
        for a in &template.outputs.artifacts {
            vars.plain.insert(format!("outputs.artifacts.{}.path", a.name), a.path.clone());
        }
        if !pod {
            vars.keep = vec!["steps.", "tasks.", "item", "workflow.status", "workflow.failures", "inputs.artifacts."];
        }
        vars
    }

    pub(super) fn bind(&self, call: &Call, template: &Template, vars: &Vars) -> Result<Bound, StepError> {
        let mut vars = vars.clone();
        for p in &template.inputs.parameters {
            let substituted = |v: &AnyString| {
                vars.substitute(&v.0).map_err(|e| StepError::invalid(format!("inputs.parameters.{}", p.name), e))
            };
            let value = match (call.args.parameters.get(&p.name), &p.value) {
                (Some(v), _) => v.clone(),
                (None, Some(v)) => substituted(v)?,
                (None, None) => match (p.config_map_value(&self.plan.config_maps), &p.default) {
                    (Some(v), _) => v.clone(),
                    (None, Some(v)) => substituted(v)?,
                    (None, None) if call.args.absent.contains(&p.name) => {
                        let problem = "its argument names an output of a skipped or omitted step that declares no \
                                       valueFrom.default, and this input has no default";
                        return Err(StepError::invalid(format!("inputs.parameters.{}", p.name), problem));
                    }
                    (None, None) => return Err(StepError::Missing { at: format!("inputs.parameters.{}", p.name) }),
                },
            };
            if !p.allowed.is_empty() && !p.allowed.iter().any(|a| a.0 == value) {
                let allowed = p.allowed.iter().map(|a| a.0.as_str()).collect::<Vec<_>>().join(", ");
                let problem = format!("value {value:?} is not one of {allowed}");
                return Err(StepError::invalid(format!("inputs.parameters.{}", p.name), problem));
            }
            vars.inputs.insert(p.name.clone(), value);
        }
        let mut bound_artifacts = Vec::new();
        for a in &template.inputs.artifacts {
            let value = match call.args.artifacts.get(&a.name) {
                Some(v) => v.clone(),
                None => binding::argument_value(a, &vars, &self.plan.repository)
                    .map_err(|e| StepError::invalid(format!("inputs.artifacts.{}", a.name), e))?,
            };
            if value.is_none() && !a.optional {
                return Err(StepError::Missing { at: format!("inputs.artifacts.{}", a.name) });
            }
            let mut decl = a.clone();
            decl.path = (vars.substitute(&a.path))
                .map_err(|e| StepError::invalid(format!("inputs.artifacts.{}.path", a.name), e))?;
            vars.plain.insert(format!("inputs.artifacts.{}.path", a.name), decl.path.clone());
            if let Some(v) = &value {
                vars.input_artifacts.insert(a.name.clone(), v.clone());
            }
            bound_artifacts.push(BoundArtifact { decl, value });
        }
        Ok(Bound { vars, artifacts: bound_artifacts })
    }
}

/// The `workflow.*` variables that do not change during a run.
pub(super) fn fixed_workflow_vars(p: &Plan) -> BTreeMap<String, String> {
    let mut plain = BTreeMap::new();
    plain.insert("workflow.name".into(), p.name.clone());
    plain.insert("workflow.uid".into(), p.uid.clone());
    plain.insert("workflow.namespace".into(), p.namespace.clone());
    plain.insert("workflow.mainEntrypoint".into(), p.spec.entrypoint.clone());
    plain.insert("workflow.creationTimestamp".into(), rfc3339(p.created));
    for (k, v) in strftime_parts(p.created) {
        plain.insert(format!("workflow.creationTimestamp.{k}"), v);
    }
    for (k, v) in &p.parameters {
        plain.insert(format!("workflow.parameters.{k}"), v.clone());
    }
    plain.insert("workflow.parameters".into(), serde_json::to_string(&p.parameters).unwrap_or_default());
    // Argo's `workflow.parameters.json`: all of them, unless one is named so.
    if !p.parameters.contains_key("json") {
        plain.insert("workflow.parameters.json".into(), serde_json::to_string(&p.parameters).unwrap_or_default());
    }
    for (k, v) in &p.metadata.labels {
        plain.insert(format!("workflow.labels.{k}"), v.clone());
    }
    for (k, v) in &p.metadata.annotations {
        plain.insert(format!("workflow.annotations.{k}"), v.clone());
    }
    // Kubernetes settings a step may print: recorded, so only their text.
    for (name, value) in [("priority", &p.spec.priority), ("serviceAccountName", &p.spec.service_account_name)] {
        let text = match value {
            Some(serde_yaml_ng::Value::String(s)) => s.clone(),
            Some(serde_yaml_ng::Value::Number(n)) => n.to_string(),
            _ => continue,
        };
        plain.insert(format!("workflow.{name}"), text);
    }
    // As Argo: a CronWorkflow's run carries its tick as an annotation.
    if let Some(at) = p.metadata.annotations.get(ferry_workflow::cron::SCHEDULED_TIME_ANNOTATION) {
        plain.insert("workflow.scheduledTime".into(), at.clone());
    }
    plain
}

/// Substitutes every string of a template.
///
/// Steps and DAG tasks are left as they are: each is substituted when it
/// starts, with the same variables, so a DAG of 100,000 tasks is never turned
/// into one JSON tree at once.
pub(super) fn substitute_template(t: &Template, vars: &Vars) -> Result<Template, StepError> {
    // Metrics are substituted when the node has ended: they read its
    // status, duration and outputs.
    let mut shell = Template { steps: None, dag: None, metrics: None, ..t.clone_without_children() };
    let mut value = serde_json::to_value(&shell)?;
    walk(&mut value, vars, &mut Vec::new())?;
    shell = serde_json::from_value(value).map_err(|e| StepError::invalid("after substitution", e))?;
    shell.steps.clone_from(&t.steps);
    shell.dag.clone_from(&t.dag);
    shell.metrics.clone_from(&t.metrics);
    Ok(shell)
}

fn walk(v: &mut serde_json::Value, vars: &Vars, path: &mut Vec<String>) -> Result<(), StepError> {
    match v {
        serde_json::Value::String(s) if s.contains("{{") => {
            *s = vars.substitute(s).map_err(|e| StepError::invalid(path.join("."), e))?;
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(format!("[{i}]"));
                walk(item, vars, path)?;
                path.pop();
            }
        }
        serde_json::Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                path.push(k.clone());
                walk(item, vars, path)?;
                path.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

pub(super) fn substitute_json(v: &serde_json::Value, vars: &Vars) -> Result<serde_json::Value, StepError> {
    let mut v = v.clone();
    walk(&mut v, vars, &mut vec!["withItems".into()])?;
    Ok(v)
}
