//! Checks that find a broken workflow before anything runs: unknown
//! templates, cycles, missing inputs, unknown variables, bad expressions.
//! Each problem names the field path it is about.

use crate::expr;
use crate::model::{Artifact, EXIT_HOOK, LifecycleHook, Parameter, RetryStrategy, Step, Template, TemplateKind};
use crate::plan::{Draft, Origin, Plan};
use crate::problem::{PlanError, Problem};
use crate::repository::{Declared, declared, location_count};
use crate::synchronization::Synchronization;
use std::collections::BTreeMap;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

struct Scope<'a> {
    params: HashSet<&'a str>,
    in_artifacts: HashSet<&'a str>,
    out_params: HashSet<&'a str>,
    out_artifacts: HashSet<&'a str>,
    workflow_params: &'a HashSet<String>,
    /// The steps or tasks that may be referenced.
    siblings: Option<Siblings>,
    in_loop: bool,
    /// The template is inline: its step's loop and siblings are not in scope.
    inline: bool,
    /// The run is a `CronWorkflow`'s tick: `workflow.scheduledTime` is set.
    scheduled: bool,
}

/// Which sibling steps or tasks a field may reference. Shared by every step
/// of a template and asked per reference, so a template of 10,000 steps or
/// tasks costs neither a set per step nor time quadratic in its size.
#[derive(Clone)]
enum Siblings {
    /// Steps of a group before `before` (`usize::MAX`: any group).
    Steps { group_of: Rc<HashMap<String, usize>>, before: usize },
    /// Tasks `task` depends on, directly or not (`None`: any task).
    Tasks { index: Rc<HashMap<String, usize>>, edges: Rc<Vec<Vec<usize>>>, task: Option<usize> },
}

impl Siblings {
    fn kind(&self) -> &'static str {
        match self {
            Siblings::Steps { .. } => "steps",
            Siblings::Tasks { .. } => "tasks",
        }
    }

    /// The same, and the step or task itself (its hooks read its outcome).
    fn and_own(&self) -> Siblings {
        match self {
            Siblings::Steps { group_of, before } => Siblings::Steps { group_of: group_of.clone(), before: before + 1 },
            // Any task: a hook may read its task and what that task depends on.
            Siblings::Tasks { index, edges, .. } => {
                Siblings::Tasks { index: index.clone(), edges: edges.clone(), task: None }
            }
        }
    }

    fn may_reference(&self, name: &str) -> bool {
        match self {
            Siblings::Steps { group_of, before } => group_of.get(name).is_some_and(|g| g < before),
            Siblings::Tasks { index, edges, task } => {
                let Some(&target) = index.get(name) else { return false };
                match task {
                    None => true,
                    Some(from) => reaches(edges, *from, target),
                }
            }
        }
    }
}

/// Whether `target` is a dependency of `from`, directly or not.
fn reaches(edges: &[Vec<usize>], from: usize, target: usize) -> bool {
    if edges[from].contains(&target) {
        return true;
    }
    let mut seen = vec![false; edges.len()];
    let mut stack = edges[from].clone();
    while let Some(n) = stack.pop() {
        if n == target {
            return true;
        }
        if !std::mem::replace(&mut seen[n], true) {
            stack.extend(&edges[n]);
        }
    }
    false
}

/// The plan of a draft, if neither building it nor linting it found a
/// problem; else every problem found, the builder's first.
pub fn checked(draft: Draft) -> Result<Plan, PlanError> {
    let Draft { plan, mut problems, spec_path } = draft;
    problems.extend(check(&plan).into_iter().map(|p| crate::plan::under(p, spec_path)));
    if problems.is_empty() { Ok(plan) } else { Err(PlanError { file: plan.source, problems }) }
}

/// Every problem in `plan`.
pub fn check(plan: &Plan) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut push = |path: String, message: String| problems.push(Problem { path, message });
    let spec = &plan.spec;
    let root = Origin::default();
    if spec.entrypoint.is_empty() {
        push("spec.entrypoint".into(), "is required".into());
    } else if plan.find(&root, &spec.entrypoint, None).is_none() {
        push("spec.entrypoint".into(), format!("template {:?} not found", spec.entrypoint));
    }
    if !spec.on_exit.is_empty() && plan.find(&root, &spec.on_exit, None).is_none() {
        push("spec.onExit".into(), format!("template {:?} not found", spec.on_exit));
    }
    check_hooks(plan, &root, (&spec.hooks, &spec.on_exit), "spec", None, &mut problems);
    if let Some(metrics) = &spec.metrics {
        check_metrics(metrics, "spec.metrics", None, &mut problems);
    }
    let workflow_params: HashSet<String> = spec.arguments.parameters.iter().map(|p| p.name.clone()).collect();
    let mut origins = vec![(root, "spec".to_string())];
    origins.extend(plan.library.keys().map(|k| (Origin(Some(k.clone())), format!("WorkflowTemplate {k}: spec"))));
    for (origin, prefix) in origins {
        let mut seen = HashSet::new();
        for (i, t) in plan.templates(&origin).iter().enumerate() {
            let path = format!("{prefix}.templates[{i}]");
            if t.name.is_empty() {
                problems.push(Problem { path: format!("{path}.name"), message: "a template needs a name".into() });
            } else if !seen.insert(t.name.as_str()) {
                problems
                    .push(Problem { path: path.clone(), message: format!("template name {:?} is used twice", t.name) });
            }
            check_template(plan, &origin, t, &path, &workflow_params, &mut problems);
        }
    }
    for (i, a) in spec.arguments.artifacts.iter().enumerate() {
        check_artifact(plan, a, &format!("spec.arguments.artifacts[{i}]"), &mut problems);
    }
    check_synchronization(plan, spec.synchronization.as_ref(), "spec.synchronization", &mut problems);
    check_config_map_refs(plan, &spec.arguments.parameters, "spec.arguments.parameters", &mut problems);
    let config_maps = |name: &str| plan.config_maps.contains_key(name);
    for (i, v) in spec.volumes.iter().enumerate() {
        if let Some(message) = v.problem(&config_maps) {
            problems.push(Problem { path: format!("spec.volumes[{i}]"), message });
        }
    }
    problems
}

fn check_template(
    plan: &Plan,
    origin: &Origin,
    t: &Template,
    path: &str,
    wp: &HashSet<String>,
    problems: &mut Vec<Problem>,
) {
    check_kind(t, path, problems);
    let pod = t.kind().is_pod();
    let scope = Scope {
        params: t.inputs.parameters.iter().map(|p| p.name.as_str()).collect(),
        in_artifacts: t.inputs.artifacts.iter().map(|a| a.name.as_str()).collect(),
        out_params: t.outputs.parameters.iter().map(|p| p.name.as_str()).collect(),
        out_artifacts: t.outputs.artifacts.iter().map(|a| a.name.as_str()).collect(),
        workflow_params: wp,
        siblings: None,
        in_loop: false,
        inline: t.name.is_empty(),
        scheduled: plan.metadata.annotations.contains_key(crate::cron::SCHEDULED_TIME_ANNOTATION),
    };
    let mut own = serde_json::to_value(t.clone_without_children()).unwrap_or_default();
    if let Some(map) = own.as_object_mut() {
        map.remove("steps");
        map.remove("dag");
        // Checked below: they also read the node's status and outputs.
        map.remove("metrics");
        if !pod {
            map.remove("outputs");
        }
    }
    check_strings(&own, &scope, path, problems);
    if let Some(metrics) = &t.metrics {
        check_metrics(metrics, &format!("{path}.metrics"), Some(&scope), problems);
    }
    check_inputs_and_outputs(plan, t, path, pod, problems);
    check_env(plan, t, path, problems);
    check_volumes(plan, t, path, problems);
    check_config_map_refs(plan, &t.inputs.parameters, &format!("{path}.inputs.parameters"), problems);
    check_synchronization(plan, t.synchronization.as_ref(), &format!("{path}.synchronization"), problems);
    if let Some(r) = &t.retry_strategy {
        check_retry(r, path, problems);
    }
    if let Some(d) = &t.active_deadline_seconds
        && !d.0.contains("{{")
        && crate::time::active_deadline(&d.0).is_none()
    {
        problems.push(Problem {
            path: format!("{path}.activeDeadlineSeconds"),
            message: format!("{:?} is not a number of seconds", d.0),
        });
    }
    if let Some(timeout) = &t.timeout {
        check_timeout(&timeout.0, pod, path, problems);
    }
    if let Some(groups) = &t.steps {
        check_steps(plan, origin, t, groups, path, &scope, problems);
    }
    if let Some(dag) = &t.dag {
        check_dag(plan, origin, t, dag, path, &scope, problems);
    }
}

/// That each `valueFrom.configMapKeyRef` names a key of a ConfigMap among
/// the files, unless the parameter has a default or the ref is optional.
fn check_config_map_refs(plan: &Plan, params: &[Parameter], path: &str, problems: &mut Vec<Problem>) {
    for (i, p) in params.iter().enumerate() {
        let Some(r) = p.value_from.as_ref().and_then(|v| v.config_map_key_ref.as_ref()) else { continue };
        if p.config_map_value(&plan.config_maps).is_none() && p.default.is_none() && r.optional != Some(true) {
            problems.push(Problem {
                path: format!("{path}[{i}].valueFrom.configMapKeyRef"),
                message: format!("no ConfigMap {:?} with key {:?} among the workflow's files", r.name, r.key),
            });
        }
    }
}

/// That a synchronization block names locks that can be held.
fn check_synchronization(plan: &Plan, sync: Option<&Synchronization>, path: &str, problems: &mut Vec<Problem>) {
    if let Some(Err(e)) = sync.map(|s| s.locks(&plan.namespace, &plan.config_maps)) {
        problems.push(Problem { path: path.to_string(), message: e.to_string() });
    }
}

/// A template's own volumes, and each mount of its container or script.
fn check_volumes(plan: &Plan, t: &Template, path: &str, problems: &mut Vec<Problem>) {
    let config_maps = |name: &str| plan.config_maps.contains_key(name);
    for (i, v) in t.volumes.iter().enumerate() {
        if let Some(message) = v.problem(&config_maps) {
            problems.push(Problem { path: format!("{path}.volumes[{i}]"), message });
        }
    }
    let (field, mounts) = match (&t.container, &t.script) {
        (Some(c), _) => ("container", &c.volume_mounts),
        (None, Some(s)) => ("script", &s.volume_mounts),
        _ => return,
    };
    let spec = &plan.spec;
    for (i, m) in mounts.iter().enumerate() {
        let known = t.volumes.iter().chain(&spec.volumes).any(|v| v.name == m.name)
            || spec.volume_claim_templates.iter().any(|c| c.metadata.name == m.name);
        if let Some(message) = m.problem(known) {
            problems.push(Problem { path: format!("{path}.{field}.volumeMounts[{i}]"), message });
        }
    }
}

/// `timeout` is for container and script templates, and is a duration with a unit.
fn check_timeout(timeout: &str, pod: bool, path: &str, problems: &mut Vec<Problem>) {
    let path = format!("{path}.timeout");
    if !pod {
        let message = "is for container and script templates only (use activeDeadlineSeconds on steps and DAGs)";
        problems.push(Problem { path, message: message.into() });
    } else if !timeout.contains("{{") && crate::time::timeout(timeout).is_none() {
        let message = format!("{timeout:?} is not a duration with a unit, such as \"10s\" or \"1m30s\"");
        problems.push(Problem { path, message });
    }
}

/// A template runs exactly one of container, script, steps, dag or suspend.
fn check_kind(t: &Template, path: &str, problems: &mut Vec<Problem>) {
    let mut push = |p: String, m: String| problems.push(Problem { path: p, message: m });
    match t.kind() {
        TemplateKind::Several => {
            push(path.into(), format!("{} has more than one of container, script, steps, dag, suspend", describe(t)))
        }
        TemplateKind::None => {
            let unsupported = [
                (
                    t.resource.is_some(),
                    "resource",
                    "a resource template creates Kubernetes objects, which needs a cluster: ferry run cannot apply it (run the workflow in Argo)",
                ),
                (t.data.is_some(), "data", "data templates are not supported"),
                (t.container_set.is_some(), "containerSet", "containerSet templates are not supported"),
                (t.plugin.is_some(), "plugin", "an executor plugin runs in a cluster: ferry run cannot call it"),
            ];
            match unsupported.into_iter().find(|(set, ..)| *set) {
                Some((_, field, why)) => push(format!("{path}.{field}"), why.into()),
                None => {
                    push(path.into(), format!("{} has none of container, script, steps, dag, suspend", describe(t)))
                }
            }
        }
        TemplateKind::Suspend => {
            if let Some(d) = t.suspend.as_ref().and_then(|s| s.duration.as_ref())
                && !d.0.contains("{{")
                && crate::time::active_deadline(&d.0).is_none()
            {
                push(format!("{path}.suspend.duration"), format!("{:?} is not a number of seconds or a duration", d.0));
            }
        }
        TemplateKind::Http => {
            if let Some(http) = &t.http {
                for (field, message) in http_problems(http) {
                    push(format!("{path}.http.{field}"), message);
                }
            }
        }
        TemplateKind::Container | TemplateKind::Script | TemplateKind::Steps | TemplateKind::Dag => {}
    }
    if t.daemon == Some(true) {
        if !t.kind().is_pod() {
            push(format!("{path}.daemon"), "only a container or script template can be a daemon".into());
        } else if !t.outputs.parameters.is_empty() || !t.outputs.artifacts.is_empty() {
            push(
                format!("{path}.outputs"),
                "a daemon runs until its steps or DAG template ends, so its outputs would never be saved".into(),
            );
        }
    }
    if let Some(memo) = &t.memoize {
        if memo.key.trim().is_empty() {
            push(format!("{path}.memoize.key"), "is required".into());
        }
        if memo.cache.config_map.name.trim().is_empty() {
            push(format!("{path}.memoize.cache.configMap.name"), "is required".into());
        }
        let age = memo.max_age.trim();
        if !age.is_empty() && !age.contains("{{") && crate::time::timeout(age).is_none() {
            push(format!("{path}.memoize.maxAge"), format!("{age:?} is not a duration such as \"10s\""));
        }
    }
    let mut names = std::collections::HashSet::new();
    for (i, s) in t.sidecars.iter().enumerate() {
        if s.name.is_empty() || !names.insert(s.name.as_str()) {
            push(format!("{path}.sidecars[{i}].name"), "each sidecar needs a name of its own".into());
        }
    }
}

/// `env[].valueFrom`: exactly one of a secret's or a ConfigMap's key (a
/// ConfigMap given with the workflow); pod fields do not exist locally.
fn check_env(plan: &Plan, t: &Template, path: &str, problems: &mut Vec<Problem>) {
    let (kind, env) = match (&t.container, &t.script) {
        (Some(c), _) => ("container", &c.env),
        (None, Some(s)) => ("script", &s.env),
        _ => return,
    };
    for (i, e) in env.iter().enumerate() {
        let Some(from) = &e.value_from else { continue };
        let at = format!("{path}.{kind}.env[{i}].valueFrom");
        let mut push = |message: String| problems.push(Problem { path: at.clone(), message });
        if from.field_ref.is_some() || from.resource_field_ref.is_some() {
            push("fieldRef and resourceFieldRef read the Kubernetes pod, which a local step has not".into());
            continue;
        }
        match (&from.secret_key_ref, &from.config_map_key_ref) {
            (Some(_), Some(_)) | (None, None) => push("give exactly one of secretKeyRef, configMapKeyRef".into()),
            (None, Some(r)) if !plan.config_maps.get(&r.name).is_some_and(|m| m.contains_key(&r.key)) => push(format!(
                "configMapKeyRef: no ConfigMap {:?} with key {:?} was given with the workflow",
                r.name, r.key
            )),
            _ => {}
        }
    }
}

/// Custom metrics: a Prometheus name, a help text, exactly one of gauge,
/// counter and histogram (with numeric buckets), and variables that exist
/// where they are emitted: a template's own and its node's `status`,
/// `duration`, `exitCode`, `outputs.*` (`scope`), or the workflow's.
fn check_metrics(metrics: &crate::model::Metrics, path: &str, scope: Option<&Scope<'_>>, problems: &mut Vec<Problem>) {
    for (i, m) in metrics.prometheus.iter().enumerate() {
        let at = format!("{path}.prometheus[{i}]");
        let mut push = |field: &str, message: String| problems.push(Problem { path: format!("{at}{field}"), message });
        let valid_name = m
            .name
            .chars()
            .enumerate()
            .all(|(j, c)| c.is_ascii_alphabetic() || c == '_' || c == ':' || (j > 0 && c.is_ascii_digit()));
        if m.name.is_empty() || !valid_name {
            push(".name", format!("{:?} is not a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)", m.name));
        }
        if m.help.trim().is_empty() {
            push(".help", "is required".into());
        }
        let kinds = [m.gauge.is_some(), m.counter.is_some(), m.histogram.is_some()].iter().filter(|k| **k).count();
        if kinds != 1 {
            push("", "give exactly one of gauge, counter, histogram".into());
        }
        if let Some(h) = &m.histogram
            && let Some(bad) = h.buckets.iter().find(|b| b.0.trim().parse::<f64>().is_err())
        {
            push(".histogram.buckets", format!("{:?} is not a number", bad.0));
        }
        let mut texts: Vec<(String, &str)> = vec![(".when".into(), m.when.as_str())];
        texts.extend(m.labels.iter().enumerate().map(|(j, l)| (format!(".labels[{j}].value"), l.value.as_str())));
        texts.extend(m.gauge.iter().map(|g| (".gauge.value".to_string(), g.value.as_str())));
        texts.extend(m.counter.iter().map(|c| (".counter.value".to_string(), c.value.as_str())));
        texts.extend(m.histogram.iter().map(|h| (".histogram.value".to_string(), h.value.as_str())));
        for (field, text) in texts {
            let Ok(vars) = expr::variables(text) else {
                push(&field, format!("{text:?} is not a valid template"));
                continue;
            };
            for v in vars {
                let node_var = matches!(v.as_str(), "status" | "duration" | "exitCode" | "outputs.result")
                    || v.starts_with("outputs.parameters.")
                    || v.starts_with("resourcesDuration.");
                let checked = match scope {
                    Some(_) if node_var => Ok(()),
                    Some(s) => known(&v, s),
                    None if v.starts_with("workflow.") => Ok(()),
                    None => Err(format!("{{{{{v}}}}}: a workflow's metrics read only workflow.* variables")),
                };
                if let Err(message) = checked {
                    push(&field, message);
                }
            }
        }
    }
}

/// What is wrong with an HTTP template, by field.
fn http_problems(http: &crate::model::Http) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    if http.url.trim().is_empty() {
        problems.push(("url", "is required".to_string()));
    }
    if !http.method.is_empty() && !http.method.bytes().all(|b| b.is_ascii_alphabetic()) {
        problems.push(("method", format!("{:?} is not an HTTP method", http.method)));
    }
    if !http.body.is_empty() && http.body_from.is_some() {
        problems.push(("bodyFrom", "give body or bodyFrom, not both".into()));
    }
    if let Some(from) = &http.body_from {
        use base64::Engine;
        if base64::engine::general_purpose::STANDARD.decode(from.bytes.trim()).is_err() {
            problems.push(("bodyFrom.bytes", "is not base64".into()));
        }
    }
    if !http.success_condition.trim().is_empty()
        && !http.success_condition.contains("{{")
        && let Err(e) = crate::expression::check(&http.success_condition)
    {
        problems.push(("successCondition", e.to_string()));
    }
    problems
}

/// Paths of a pod's artifacts, `from` of a steps or DAG template's output
/// artifacts, where output parameters come from, and every artifact's location.
fn check_inputs_and_outputs(plan: &Plan, t: &Template, path: &str, pod: bool, problems: &mut Vec<Problem>) {
    for (i, a) in t.inputs.artifacts.iter().enumerate() {
        let p = format!("{path}.inputs.artifacts[{i}]");
        if pod && a.path.is_empty() {
            problems.push(Problem {
                path: format!("{p}.path"),
                message: format!("input artifact {:?} needs a path", a.name),
            });
        }
        check_artifact(plan, a, &p, problems);
    }
    for (i, a) in t.outputs.artifacts.iter().enumerate() {
        let p = format!("{path}.outputs.artifacts[{i}]");
        if pod && a.path.is_empty() {
            problems.push(Problem {
                path: format!("{p}.path"),
                message: format!("output artifact {:?} needs a path", a.name),
            });
        }
        if !pod && a.from.is_empty() && a.from_expression.is_empty() {
            problems.push(Problem {
                path: format!("{p}.from"),
                message: format!("output artifact {:?} of a {} template needs from", a.name, t.kind()),
            });
        }
        check_artifact(plan, a, &p, problems);
    }
    for (i, p) in t.outputs.parameters.iter().enumerate() {
        let vf = p.value_from.as_ref();
        let suspend = t.kind() == TemplateKind::Suspend;
        let ok = if pod {
            p.value.is_some() || vf.is_some_and(|v| !v.path.is_empty())
        } else if suspend {
            p.value.is_some() || vf.is_some_and(|v| v.supplied.is_some())
        } else {
            p.value.is_some() || vf.is_some_and(|v| !v.parameter.is_empty() || !v.expression.is_empty())
        };
        let at = format!("{path}.outputs.parameters[{i}]");
        if !ok {
            let need = match (pod, suspend) {
                (true, _) => "valueFrom.path or value",
                (false, true) => "valueFrom.supplied or value",
                (false, false) => "valueFrom.parameter, valueFrom.expression or value",
            };
            problems.push(Problem { path: at.clone(), message: format!("output parameter {:?} needs {need}", p.name) });
        }
        let Some(vf) = vf.filter(|v| !v.expression.is_empty()) else { continue };
        let message = if pod {
            Some(
                "valueFrom.expression is for steps and DAG templates; a container or script reads valueFrom.path"
                    .into(),
            )
        } else if !vf.parameter.is_empty() {
            Some("give valueFrom.parameter or valueFrom.expression, not both".into())
        } else {
            crate::expression::check(&vf.expression).err().map(|e| e.to_string())
        };
        if let Some(message) = message {
            problems.push(Problem { path: format!("{at}.valueFrom.expression"), message });
        }
    }
}

/// The variables the `valueFrom.expression`s of a steps or DAG template's
/// outputs read exist there (their syntax is checked with the template).
fn check_output_expressions(t: &Template, scope: &Scope<'_>, path: &str, problems: &mut Vec<Problem>) {
    for (i, p) in t.outputs.parameters.iter().enumerate() {
        let Some(vf) = p.value_from.as_ref().filter(|v| !v.expression.is_empty() && v.parameter.is_empty()) else {
            continue;
        };
        if crate::expression::check(&vf.expression).is_ok()
            && let Err(message) = check_expression(&vf.expression, scope)
        {
            problems.push(Problem { path: format!("{path}.outputs.parameters[{i}].valueFrom.expression"), message });
        }
    }
}

/// `retryStrategy.expression` parses and reads only what Argo gives it:
/// `retries` and `lastRetry.*`.
fn check_retry_expression(expression: &str) -> Result<(), String> {
    // Its `{{...}}` tags (checked with the template's other strings) are
    // substituted before it is evaluated: parse it with a value in each.
    let probe = expr::substitute(expression, &mut |_| expr::Resolved::Value("true".into()));
    let expression = probe.as_deref().unwrap_or(expression);
    crate::expression::check(expression).map_err(|e| e.to_string())?;
    for r in crate::expression::references(expression) {
        if !matches!(
            r.as_str(),
            "retries" | "lastRetry.exitCode" | "lastRetry.status" | "lastRetry.duration" | "lastRetry.message"
        ) {
            return Err(format!(
                "`{r}` is not available here: a retry expression reads retries and lastRetry.exitCode, .status, .duration, .message"
            ));
        }
    }
    Ok(())
}

/// `retryStrategy`: a whole-number limit, durations, a numeric factor, an expression.
fn check_retry(r: &RetryStrategy, path: &str, problems: &mut Vec<Problem>) {
    if !r.expression.is_empty()
        && let Err(message) = check_retry_expression(&r.expression)
    {
        problems.push(Problem { path: format!("{path}.retryStrategy.expression"), message });
    }
    if let Some(l) = &r.limit
        && l.0.trim().parse::<u32>().is_err()
    {
        problems.push(Problem {
            path: format!("{path}.retryStrategy.limit"),
            message: format!("{:?} is not a whole number", l.0),
        });
    }
    if let Some(b) = &r.backoff {
        for (field, v) in [("duration", &b.duration), ("maxDuration", &b.max_duration), ("cap", &b.cap)] {
            if let Some(v) = v
                && crate::time::parse_duration(&v.0).is_none()
            {
                problems.push(Problem {
                    path: format!("{path}.retryStrategy.backoff.{field}"),
                    message: format!("{:?} is not a duration such as 10s, 2m or 1h", v.0),
                });
            }
        }
        if let Some(f) = &b.factor
            && f.0.trim().parse::<f64>().is_err()
        {
            problems.push(Problem {
                path: format!("{path}.retryStrategy.backoff.factor"),
                message: format!("{:?} is not a number", f.0),
            });
        }
    }
}

/// A steps template's groups: unique step names per group, each step checked
/// with the steps it may reference, and the outputs with every step.
fn check_steps(
    plan: &Plan,
    origin: &Origin,
    t: &Template,
    groups: &[Vec<Step>],
    path: &str,
    scope: &Scope<'_>,
    problems: &mut Vec<Problem>,
) {
    let mut group_of = HashMap::new();
    for (g, group) in groups.iter().enumerate() {
        for step in group {
            group_of.entry(step.name.clone()).or_insert(g);
        }
    }
    let group_of = Rc::new(group_of);
    for (g, group) in groups.iter().enumerate() {
        let mut names = HashSet::new();
        for (i, step) in group.iter().enumerate() {
            let p = format!("{path}.steps[{g}][{i}]");
            if !names.insert(step.name.as_str()) {
                problems.push(Problem {
                    path: p.clone(),
                    message: format!("step name {:?} is used twice in one group", step.name),
                });
            }
            let siblings = Siblings::Steps { group_of: group_of.clone(), before: g };
            let s = Scope { siblings: Some(siblings), in_loop: has_loop(step), ..scope_copy(scope) };
            check_step(plan, origin, step, &p, &s, problems);
        }
    }
    let outputs = serde_json::to_value(&t.outputs).unwrap_or_default();
    let s = Scope { siblings: Some(Siblings::Steps { group_of, before: usize::MAX }), ..scope_copy(scope) };
    check_strings(&outputs, &s, &format!("{path}.outputs"), problems);
    check_output_expressions(t, &s, path, problems);
}

fn scope_copy<'a>(s: &Scope<'a>) -> Scope<'a> {
    Scope {
        params: s.params.clone(),
        in_artifacts: s.in_artifacts.clone(),
        out_params: s.out_params.clone(),
        out_artifacts: s.out_artifacts.clone(),
        workflow_params: s.workflow_params,
        siblings: s.siblings.clone(),
        in_loop: s.in_loop,
        inline: s.inline,
        scheduled: s.scheduled,
    }
}

fn has_loop(step: &Step) -> bool {
    step.with_items.is_some() || !step.with_param.is_empty() || step.with_sequence.is_some()
}

fn check_dag(
    plan: &Plan,
    origin: &Origin,
    t: &Template,
    dag: &crate::model::Dag,
    path: &str,
    scope: &Scope<'_>,
    problems: &mut Vec<Problem>,
) {
    let names: HashMap<&str, usize> = dag.tasks.iter().enumerate().map(|(i, t)| (t.name.as_str(), i)).collect();
    if names.len() != dag.tasks.len() {
        problems.push(Problem { path: format!("{path}.dag.tasks"), message: "task names must be unique".into() });
    }
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); dag.tasks.len()];
    for (i, task) in dag.tasks.iter().enumerate() {
        let p = format!("{path}.dag.tasks[{i}]");
        if !task.depends.is_empty() && !task.dependencies.is_empty() {
            problems.push(Problem {
                path: p.clone(),
                message: format!("task {:?} has both depends and dependencies", task.name),
            });
        }
        let deps: Vec<String> = if !task.depends.trim().is_empty() {
            match expr::parse_depends(&task.depends) {
                Ok(d) => d.tasks(),
                Err(e) => {
                    problems.push(Problem { path: format!("{p}.depends"), message: e.to_string() });
                    Vec::new()
                }
            }
        } else {
            task.dependencies.clone()
        };
        for d in deps {
            match names.get(d.as_str()) {
                Some(&j) => edges[i].push(j),
                None => problems.push(Problem {
                    path: format!("{p}.{}", if task.depends.is_empty() { "dependencies" } else { "depends" }),
                    message: format!("task {:?} depends on {d:?}, which is not a task of {}", task.name, describe(t)),
                }),
            }
        }
    }
    if !dag.target.contains("{{")
        && let Err(message) = dag.targeted()
    {
        problems.push(Problem { path: format!("{path}.dag.target"), message });
    }
    if let Some(cycle) = find_cycle(&edges) {
        let names: Vec<&str> = cycle.iter().map(|&i| dag.tasks[i].name.as_str()).collect();
        problems.push(Problem {
            path: format!("{path}.dag.tasks"),
            message: format!("dependency cycle: {}", names.join(" -> ")),
        });
    }
    let index: Rc<HashMap<String, usize>> = Rc::new(names.iter().map(|(n, &i)| (n.to_string(), i)).collect());
    let edges = Rc::new(edges);
    let siblings = |task| Siblings::Tasks { index: index.clone(), edges: edges.clone(), task };
    for (i, task) in dag.tasks.iter().enumerate() {
        let s = Scope { siblings: Some(siblings(Some(i))), in_loop: has_loop(task), ..scope_copy(scope) };
        check_step(plan, origin, task, &format!("{path}.dag.tasks[{i}]"), &s, problems);
    }
    let outputs = serde_json::to_value(&t.outputs).unwrap_or_default();
    let s = Scope { siblings: Some(siblings(None)), ..scope_copy(scope) };
    check_strings(&outputs, &s, &format!("{path}.outputs"), problems);
    check_output_expressions(t, &s, path, problems);
}

/// A dependency cycle, as the tasks on it from the first one met, or none.
/// Depth-first with an explicit stack: a chain of tasks as long as a
/// workflow file can hold must not grow the thread's stack.
fn find_cycle(edges: &[Vec<usize>]) -> Option<Vec<usize>> {
    // 0 unvisited, 1 on the path, 2 done.
    let mut state = vec![0u8; edges.len()];
    // The current path: each task with the index of its next edge to follow.
    let mut path: Vec<(usize, usize)> = Vec::new();
    for start in 0..edges.len() {
        if state[start] != 0 {
            continue;
        }
        state[start] = 1;
        path.push((start, 0));
        while let Some(&mut (n, ref mut next)) = path.last_mut() {
            let Some(&m) = edges[n].get(*next) else {
                state[n] = 2;
                path.pop();
                continue;
            };
            *next += 1;
            match state[m] {
                1 => {
                    let at = path.iter().position(|&(x, _)| x == m).unwrap_or(0);
                    let mut cycle: Vec<usize> = path[at..].iter().map(|&(x, _)| x).collect();
                    cycle.push(m);
                    return Some(cycle);
                }
                0 => {
                    state[m] = 1;
                    path.push((m, 0));
                }
                _ => {}
            }
        }
    }
    None
}

fn check_step(plan: &Plan, origin: &Origin, step: &Step, path: &str, scope: &Scope<'_>, problems: &mut Vec<Problem>) {
    if !check_target_fields(step, path, problems) {
        return;
    }
    let target = plan.target(origin, step);
    let Some((_, target)) = target else {
        let what = match &step.template_ref {
            Some(r) => format!("templateRef {}/{}", r.name, r.template),
            None => format!("template {:?}", step.template),
        };
        problems.push(Problem {
            path: path.into(),
            message: format!("{:?} refers to {what}, which is not found", step.name),
        });
        return;
    };
    if let Some(inline) = &step.inline {
        check_inline(plan, origin, inline, &format!("{path}.inline"), scope.workflow_params, problems);
    }
    let mut fields = serde_json::to_value(step).unwrap_or_default();
    if let Some(map) = fields.as_object_mut() {
        // An inline template is checked as a template, in its own scope.
        for k in ["name", "template", "templateRef", "inline", "dependencies", "depends", "onExit", "hooks"] {
            map.remove(k);
        }
    }
    check_strings(&fields, scope, path, problems);
    if !step.when.is_empty() {
        let probe = expr::substitute(&step.when, &mut |_| expr::Resolved::Value("x".into()));
        if let Ok(text) = probe
            && let Err(e @ (expr::Error::Syntax { .. } | expr::Error::Unsupported { .. })) = expr::evaluate_when(&text)
        {
            problems.push(Problem { path: format!("{path}.when"), message: e.to_string() });
        }
    }
    check_loop(step, path, problems);
    if !step.on_exit.is_empty() && plan.find(origin, &step.on_exit, None).is_none() {
        problems.push(Problem {
            path: format!("{path}.onExit"),
            message: format!("template {:?} not found", step.on_exit),
        });
    }
    check_arguments(plan, step, target, path, problems);
    // A step's hooks may read the step's own outcome.
    let own = Scope { siblings: scope.siblings.as_ref().map(Siblings::and_own), ..scope_copy(scope) };
    check_hooks(plan, origin, (&step.hooks, &step.on_exit), path, Some(&own), problems);
}

/// The `hooks` of a workflow (`scope` None) or of a step: each names a
/// template that exists and supplies its inputs; every hook but `exit` has
/// an expression that parses; `hooks.exit` and `onExit` are not both set.
fn check_hooks(
    plan: &Plan,
    origin: &Origin,
    (hooks, on_exit): (&BTreeMap<String, LifecycleHook>, &str),
    path: &str,
    scope: Option<&Scope<'_>>,
    problems: &mut Vec<Problem>,
) {
    if hooks.contains_key(EXIT_HOOK) && !on_exit.is_empty() {
        problems.push(Problem {
            path: format!("{path}.hooks.{EXIT_HOOK}"),
            message: "both onExit and hooks.exit are set: keep one (they are the same hook)".into(),
        });
    }
    for (name, hook) in hooks {
        let at = format!("{path}.hooks.{name}");
        if name != EXIT_HOOK {
            let checked = match (hook.expression.trim(), scope) {
                ("", _) => {
                    Err("a hook other than exit needs an expression: it runs when the expression turns true".into())
                }
                (e, Some(s)) => check_expression(e, s),
                (e, None) => crate::expression::check(e).map_err(|e| e.to_string()),
            };
            if let Err(message) = checked {
                problems.push(Problem { path: format!("{at}.expression"), message });
            }
        }
        let as_step = hook.as_step(&format!("hooks.{name}"));
        let Some((_, target)) = plan.find(origin, &hook.template, hook.template_ref.as_ref()) else {
            let what = match &hook.template_ref {
                Some(r) => format!("templateRef {}/{}", r.name, r.template),
                None => format!("template {:?}", hook.template),
            };
            problems.push(Problem { path: at, message: format!("{what} is not found") });
            continue;
        };
        if let Some(s) = scope {
            let arguments = serde_json::to_value(&hook.arguments).unwrap_or_default();
            check_strings(&arguments, s, &format!("{at}.arguments"), problems);
        }
        check_arguments(plan, &as_step, target, &at, problems);
    }
}

/// A step runs exactly one of `template`, `templateRef` and `inline`;
/// false when it does not, so nothing more about its target is checked.
fn check_target_fields(step: &Step, path: &str, problems: &mut Vec<Problem>) -> bool {
    let given: Vec<&str> = [
        (!step.template.is_empty(), "template"),
        (step.template_ref.is_some(), "templateRef"),
        (step.inline.is_some(), "inline"),
    ]
    .into_iter()
    .filter_map(|(set, field)| set.then_some(field))
    .collect();
    let message = match given.as_slice() {
        [_] => return true,
        [] => format!("{:?} gives none of template, templateRef, inline: give exactly one", step.name),
        several => format!(
            "{:?} gives {}: give exactly one of template, templateRef, inline",
            step.name,
            several.join(" and ")
        ),
    };
    problems.push(Problem { path: path.into(), message });
    false
}

/// An inline template: nameless (Argo names it after its step), then
/// checked as any template, at its own path.
fn check_inline(
    plan: &Plan,
    origin: &Origin,
    inline: &Template,
    path: &str,
    wp: &HashSet<String>,
    problems: &mut Vec<Problem>,
) {
    if !inline.name.is_empty() {
        problems.push(Problem {
            path: format!("{path}.name"),
            message: format!("an inline template has no name (found {:?}): its step names it", inline.name),
        });
    }
    check_template(plan, origin, inline, path, wp, problems);
}

/// How messages name a template: inline templates have no name.
fn describe(t: &Template) -> String {
    if t.name.is_empty() { "the inline template".into() } else { format!("template {:?}", t.name) }
}

/// At most one of `withItems`, `withParam`, `withSequence`, each well formed.
fn check_loop(step: &Step, path: &str, problems: &mut Vec<Problem>) {
    if !step.with_param.is_empty()
        && !step.with_param.contains("{{")
        && serde_json::from_str::<Vec<serde_json::Value>>(&step.with_param).is_err()
    {
        problems.push(Problem {
            path: format!("{path}.withParam"),
            message: "is neither a {{...}} reference nor a JSON list".into(),
        });
    }
    if let Some(seq) = &step.with_sequence
        && seq.count.is_some() == seq.end.is_some()
    {
        problems.push(Problem {
            path: format!("{path}.withSequence"),
            message: "give exactly one of count and end".into(),
        });
    }
    if [step.with_items.is_some(), !step.with_param.is_empty(), step.with_sequence.is_some()]
        .iter()
        .filter(|b| **b)
        .count()
        > 1
    {
        problems.push(Problem { path: path.into(), message: "use one of withItems, withParam, withSequence".into() });
    }
}

/// A step supplies every input its template needs, and its artifacts are well formed.
fn check_arguments(plan: &Plan, step: &Step, target: &Template, path: &str, problems: &mut Vec<Problem>) {
    for p in &target.inputs.parameters {
        let given = step.arguments.parameters.iter().any(|a| a.name == p.name);
        if !given && p.value.is_none() && p.default.is_none() {
            problems.push(Problem {
                path: format!("{path}.arguments.parameters"),
                message: format!(
                    "{:?} does not supply input parameter {:?} of {}",
                    step.name,
                    p.name,
                    describe(target)
                ),
            });
        }
    }
    for a in &target.inputs.artifacts {
        let given = step.arguments.artifacts.iter().any(|x| x.name == a.name);
        if !given && !a.optional && !a.has_location() {
            problems.push(Problem {
                path: format!("{path}.arguments.artifacts"),
                message: format!("{:?} does not supply input artifact {:?} of {}", step.name, a.name, describe(target)),
            });
        }
    }
    for (i, a) in step.arguments.artifacts.iter().enumerate() {
        check_artifact(plan, a, &format!("{path}.arguments.artifacts[{i}]"), problems);
    }
}

fn check_artifact(plan: &Plan, a: &Artifact, path: &str, problems: &mut Vec<Problem>) {
    if location_count(a) > 1 {
        problems.push(Problem {
            path: path.into(),
            message: format!("artifact {:?} names more than one location", a.name),
        });
    }
    if !a.from.is_empty() && !a.from_expression.is_empty() {
        problems.push(Problem {
            path: path.into(),
            message: format!("artifact {:?} has both from and fromExpression", a.name),
        });
    }
    if !a.from.is_empty() {
        let t = a.from.trim();
        if !(t.starts_with("{{") && t.ends_with("}}") && t.matches("{{").count() == 1) {
            problems.push(Problem {
                path: format!("{path}.from"),
                message: format!("{:?} must be one {{{{...}}}} reference", a.from),
            });
        }
    }
    if let Declared::Full(loc) = declared(a)
        && let Err(e) = plan.registry.get(&loc.driver)
    {
        problems.push(Problem { path: path.into(), message: e.to_string() });
    }
}

/// Checks every `{{...}}` tag in the strings of `value`.
fn check_strings(value: &serde_json::Value, scope: &Scope<'_>, path: &str, problems: &mut Vec<Problem>) {
    match value {
        serde_json::Value::String(s) if s.contains("{{") => match expr::variables(s) {
            Ok(vars) => {
                for v in vars {
                    let checked = match v.strip_prefix('=') {
                        Some(expression) => check_expression(expression, scope),
                        None => known(&v, scope),
                    };
                    if let Err(m) = checked {
                        problems.push(Problem { path: path.into(), message: m });
                    }
                }
            }
            Err(e) => problems.push(Problem { path: path.into(), message: e.to_string() }),
        },
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                check_strings(v, scope, &format!("{path}[{i}]"), problems);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                check_strings(v, scope, &format!("{path}.{k}"), problems);
            }
        }
        _ => {}
    }
}

/// Why a step-level variable is unknown inside an inline template's body.
const INLINE_SCOPE: &str = "an inline template sees only its own inputs, not its step's item, steps or tasks: pass the value through the step's arguments";

/// An expression parses, and the Argo variables it reads exist here.
fn check_expression(expression: &str, s: &Scope<'_>) -> Result<(), String> {
    crate::expression::check(expression).map_err(|e| e.to_string())?;
    for r in crate::expression::references(expression) {
        if !ARGO_ROOTS.contains(&r.split('.').next().unwrap_or_default()) || partial(&r) {
            continue;
        }
        known(&r, s).map_err(|m| format!("{m} (in expression `{expression}`)"))?;
    }
    Ok(())
}

/// The first names of Argo's variables; an expression's other names are its own (`let`, closures).
const ARGO_ROOTS: [&str; 10] =
    ["inputs", "outputs", "workflow", "steps", "tasks", "item", "pod", "node", "retries", "lastRetry"];

/// A reference to a group of variables (`inputs.parameters`, `steps.a`)
/// that an expression then indexes: there is no whole variable to check.
fn partial(r: &str) -> bool {
    let parts: Vec<&str> = r.split('.').collect();
    matches!(
        parts.as_slice(),
        [_] | ["inputs" | "outputs", "parameters" | "artifacts"]
            | ["workflow", "parameters" | "labels" | "annotations" | "outputs"]
            | ["workflow", "outputs", "parameters"]
            | ["steps" | "tasks", _]
            | ["steps" | "tasks", _, "outputs"]
    ) && parts[0] != "retries"
        && parts[0] != "item"
}

fn known(var: &str, s: &Scope<'_>) -> Result<(), String> {
    let parts: Vec<&str> = var.split('.').collect();
    let unknown = |what: &str| Err(format!("{{{{{var}}}}}: {what}"));
    let declared = |found: bool, what: &str| if found { Ok(()) } else { unknown(what) };
    match parts.as_slice() {
        ["inputs", "parameters", p] => declared(s.params.contains(p), "the template declares no such input parameter"),
        ["inputs", "parameters"] => Ok(()),
        ["inputs", "artifacts", a, "path"] | ["inputs", "artifacts", a] => {
            declared(s.in_artifacts.contains(a), "the template declares no such input artifact")
        }
        ["outputs", "parameters", p, "path"] => {
            declared(s.out_params.contains(p), "the template declares no such output parameter")
        }
        ["outputs", "artifacts", a, "path"] => {
            declared(s.out_artifacts.contains(a), "the template declares no such output artifact")
        }
        ["workflow", "parameters", p] => {
            declared(s.workflow_params.contains(*p) || *p == "json", "the workflow declares no such parameter")
        }
        // The name of the step or task a template runs as (Argo's node context).
        ["steps" | "tasks", "name"] => Ok(()),
        ["workflow", "outputs", "parameters" | "artifacts", _] | ["workflow", "labels" | "annotations", ..] => Ok(()),
        [
            "workflow",
            "name" | "uid" | "namespace" | "status" | "failures" | "duration" | "parameters" | "mainEntrypoint"
            | "priority" | "serviceAccountName" | "creationTimestamp",
        ] => Ok(()),
        ["workflow", "creationTimestamp", _] => Ok(()),
        ["workflow", "scheduledTime"] => declared(s.scheduled, "only runs of a CronWorkflow have a scheduled time"),
        ["pod", "name"] | ["node", "name"] | ["retries"] => Ok(()),
        ["item", ..] if s.inline && !s.in_loop => unknown(INLINE_SCOPE),
        ["lastRetry", "exitCode" | "status" | "duration" | "message"] => Ok(()),
        ["item", ..] => declared(s.in_loop, "item is only set in withItems, withParam or withSequence loops"),
        [scope @ ("steps" | "tasks"), name, rest @ ..] => known_sibling(scope, name, rest, s)
            .or_else(|e| if s.inline && s.siblings.is_none() { unknown(INLINE_SCOPE) } else { unknown(&e) }),
        _ => unknown("unknown variable"),
    }
}

/// `steps.NAME.REST` or `tasks.NAME.REST`: a sibling this field may reference,
/// and a field of it that exists. `Err` says why not.
fn known_sibling(scope: &str, name: &str, rest: &[&str], s: &Scope<'_>) -> Result<(), String> {
    match &s.siblings {
        Some(siblings) if siblings.kind() == scope => {
            if !siblings.may_reference(name) {
                let hint = if scope == "tasks" { "a task this one depends on" } else { "a step of an earlier group" };
                return Err(format!("{name:?} is not {hint}"));
            }
            match rest {
                ["outputs", "result"]
                | ["outputs", "parameters"]
                | ["outputs", "parameters", _]
                | ["outputs", "artifacts", _] => Ok(()),
                ["exitCode"] | ["status"] | ["id"] | ["startedAt"] | ["finishedAt"] | ["ip"] | ["hostNodeName"] => {
                    Ok(())
                }
                _ => Err("unknown field".into()),
            }
        }
        _ => Err(format!(
            "{scope}.* is only available inside a {} template",
            if scope == "steps" { "steps" } else { "dag" }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Documents;
    use crate::plan::PlanOptions;
    use std::path::Path;

    fn problems(yaml: &str) -> Vec<String> {
        let mut docs = Documents::default();
        docs.add(Path::new("wf.yaml"), yaml).unwrap();
        let options = PlanOptions { registry: crate::registry::Registry::builtin(), ..Default::default() };
        match Plan::build(&docs, &options).and_then(checked) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems.iter().map(|p| p.to_string()).collect(),
        }
    }

    const HEAD: &str = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: t}\nspec:\n  entrypoint: main\n  templates:\n";

    #[test]
    fn a_good_dag_has_no_problems() {
        let p = problems(&format!(
            "{HEAD}  - name: main\n    dag:\n      tasks:\n      - {{name: a, template: echo}}\n      - {{name: b, template: echo, depends: a, arguments: {{parameters: [{{name: m, value: '{{{{tasks.a.outputs.result}}}}'}}]}}}}\n  - name: echo\n    inputs: {{parameters: [{{name: m, default: x}}]}}\n    container: {{image: a, command: [echo, '{{{{inputs.parameters.m}}}}']}}\n"
        ));
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn a_ten_thousand_task_chain_lints_without_deep_recursion() {
        let mut yaml = format!("{HEAD}  - name: main\n    dag:\n      tasks:\n      - {{name: t0, template: echo}}\n");
        // Each task reads its predecessor's result; the last one the first's.
        for i in 1..10_000 {
            let from = if i == 9_999 { 0 } else { i - 1 };
            yaml.push_str(&format!("      - {{name: t{i}, template: echo, depends: t{}, arguments: {{parameters: [{{name: m, value: '{{{{tasks.t{from}.outputs.result}}}}'}}]}}}}\n", i - 1));
        }
        yaml.push_str("  - name: echo\n    inputs: {parameters: [{name: m, default: x}]}\n    container: {image: a, command: [echo]}\n");
        assert!(yaml.len() < 4 << 20, "inside the workflow file cap");
        assert_eq!(problems(&yaml), Vec::<String>::new());
        // t1 cannot read t5, which runs after it.
        let early = yaml.replacen("value: '{{tasks.t0.outputs.result}}'", "value: '{{tasks.t5.outputs.result}}'", 1);
        let all = problems(&early).join("\n");
        assert!(all.contains("dag.tasks[1].arguments.parameters[0].value: {{tasks.t5.outputs.result}}: \"t5\" is not a task this one depends on"), "{all}");
        // Closed into a cycle, it is found and named from its first task.
        let cyclic = yaml.replace("{name: t0, template: echo}", "{name: t0, template: echo, depends: t9999}");
        let all = problems(&cyclic).join("\n");
        assert!(all.contains("dependency cycle: t0 -> t9999 -> t9998 -> "), "{}", &all[..all.len().min(300)]);
    }

    #[test]
    fn cycles_unknown_templates_and_missing_inputs_are_named() {
        let p = problems(&format!(
            "{HEAD}  - name: main\n    dag:\n      tasks:\n      - {{name: a, template: echo, depends: c}}\n      - {{name: b, template: echo, depends: a}}\n      - {{name: c, template: echo, depends: b}}\n      - {{name: d, template: nope}}\n      - {{name: e, template: need}}\n  - name: echo\n    container: {{image: a, command: [echo]}}\n  - name: need\n    inputs: {{parameters: [{{name: m}}]}}\n    container: {{image: a, command: [echo]}}\n"
        ));
        let all = p.join("\n");
        assert!(all.contains("spec.templates[0].dag.tasks: dependency cycle: a -> c -> b -> a"), "{all}");
        assert!(all.contains("spec.templates[0].dag.tasks[3]: \"d\" refers to template \"nope\""), "{all}");
        assert!(
            all.contains("dag.tasks[4].arguments.parameters: \"e\" does not supply input parameter \"m\""),
            "{all}"
        );
    }

    #[test]
    fn bad_expressions_and_variables_are_named() {
        let p = problems(&format!(
            "{HEAD}  - name: main\n    steps:\n    - - {{name: a, template: echo, when: '(1 == 1'}}\n    - - {{name: b, template: echo, when: '{{{{steps.zz.outputs.result}}}} == x'}}\n  - name: echo\n    container: {{image: a, command: [echo, '{{{{inputs.parameters.nope}}}}', '{{{{item}}}}']}}\n"
        ));
        let all = p.join("\n");
        assert!(all.contains("spec.templates[0].steps[0][0].when"), "{all}");
        assert!(
            all.contains("steps[1][0].when: {{steps.zz.outputs.result}}: \"zz\" is not a step of an earlier group"),
            "{all}"
        );
        assert!(all.contains("container.command[1]: {{inputs.parameters.nope}}"), "{all}");
        assert!(all.contains("{{item}}: item is only set"), "{all}");
    }

    #[test]
    fn unknown_dependencies_and_entrypoints_are_named() {
        let p = problems(
            "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n  entrypoint: missing\n  templates:\n  - name: main\n    dag:\n      tasks:\n      - {name: a, template: main, depends: 'ghost.Succeeded'}\n",
        );
        let all = p.join("\n");
        assert!(all.contains("spec.entrypoint: template \"missing\" not found"), "{all}");
        assert!(all.contains("dag.tasks[0].depends: task \"a\" depends on \"ghost\""), "{all}");
    }

    #[test]
    fn inline_templates_lint_as_templates_at_their_own_path() {
        let good = problems(&format!(
            "{HEAD}  - name: main\n    steps:\n    - - name: a\n        arguments: {{parameters: [{{name: m, value: hi}}]}}\n        inline:\n          inputs: {{parameters: [{{name: m}}]}}\n          outputs: {{parameters: [{{name: o, valueFrom: {{path: /tmp/o}}}}]}}\n          container: {{image: a, command: [echo, '{{{{inputs.parameters.m}}}}']}}\n    - - name: b\n        arguments: {{parameters: [{{name: m, value: '{{{{steps.a.outputs.parameters.o}}}}'}}]}}\n        inline:\n          inputs: {{parameters: [{{name: m}}]}}\n          dag:\n            tasks:\n            - name: t\n              arguments: {{parameters: [{{name: n, value: '{{{{inputs.parameters.m}}}}'}}]}}\n              inline:\n                inputs: {{parameters: [{{name: n}}]}}\n                script: {{image: a, source: 'echo {{{{inputs.parameters.n}}}}'}}\n"
        ));
        assert!(good.is_empty(), "{good:?}");
        let p = problems(&format!(
            "{HEAD}  - name: main\n    steps:\n    - - {{name: both, template: echo, inline: {{container: {{image: a, command: ['true']}}}}}}\n      - {{name: named, inline: {{name: x, container: {{image: a, command: ['true']}}}}}}\n      - {{name: empty, inline: {{}}}}\n      - {{name: none}}\n      - {{name: bad, inline: {{container: {{image: a, command: [echo, '{{{{inputs.parameters.nope}}}}']}}}}}}\n      - name: needs\n        inline: {{inputs: {{parameters: [{{name: m}}]}}, container: {{image: a, command: ['true']}}}}\n      - name: nested\n        inline:\n          dag:\n            tasks:\n            - {{name: t, inline: {{script: {{image: a, source: '{{{{item}}}}'}}}}}}\n            - {{name: u, template: ghost}}\n  - name: echo\n    container: {{image: a, command: ['true']}}\n"
        ));
        let all = p.join("\n");
        let s0 = "spec.templates[0].steps[0]";
        for want in [
            format!("{s0}[0]: \"both\" gives template and inline: give exactly one of template, templateRef, inline"),
            format!("{s0}[1].inline.name: an inline template has no name (found \"x\")"),
            format!("{s0}[2].inline: the inline template has none of container, script, steps, dag"),
            format!("{s0}[3]: \"none\" gives none of template, templateRef, inline"),
            format!("{s0}[4].inline.container.command[1]: {{{{inputs.parameters.nope}}}}"),
            format!(
                "{s0}[5].arguments.parameters: \"needs\" does not supply input parameter \"m\" of the inline template"
            ),
            format!(
                "{s0}[6].inline.dag.tasks[0].inline.script.source: {{{{item}}}}: an inline template sees only its own inputs"
            ),
            format!("{s0}[6].inline.dag.tasks[1]: \"u\" refers to template \"ghost\""),
        ] {
            assert!(all.contains(&want), "missing {want:?} in\n{all}");
        }
        assert_eq!(p.len(), 8, "{all}");
    }

    #[test]
    fn a_named_template_without_a_name_is_named_by_its_path() {
        let all = problems(&format!("{HEAD}  - name: main\n    steps: [[{{name: a, template: t}}]]\n  - container: {{image: a, command: ['true']}}\n")).join("\n");
        assert!(all.contains("spec.templates[1].name: a template needs a name"), "{all}");
    }
}
