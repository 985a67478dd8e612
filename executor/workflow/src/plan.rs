//! A run's plan: the workflow as it will run, with its `WorkflowTemplate`
//! references, parameters, artifact repository and drivers resolved. The
//! plan is stored with the run, so `ferry resume` continues the same plan
//! even if the files changed since.

use crate::defaults;
use crate::model::{Documents, Metadata, Step, Template, TemplateRef, Workflow, WorkflowSpec, WorkflowTemplateRef};
use crate::naming::random_suffix;
use crate::problem::{PlanError, Problem, problem};
use crate::registry::Registry;
use crate::repository::{Repository, driver_of};
use crate::time::now_ms;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The resolved workflow.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    /// The run's name (`{{workflow.name}}`).
    pub name: String,
    /// `{{workflow.uid}}`.
    pub uid: String,
    /// `{{workflow.namespace}}`.
    pub namespace: String,
    /// Unix milliseconds.
    pub created: i64,
    /// The workflow's metadata.
    pub metadata: Metadata,
    /// The spec, merged with its `workflowTemplateRef`.
    pub spec: WorkflowSpec,
    /// `WorkflowTemplate`s (and `cluster/<name>` for cluster ones) for `templateRef`.
    pub library: BTreeMap<String, WorkflowSpec>,
    /// `{{workflow.parameters.*}}`.
    pub parameters: BTreeMap<String, String>,
    /// Where key-only and keyless artifacts go.
    pub repository: Repository,
    /// The drivers the run may start.
    pub registry: Registry,
    /// The most pods at once.
    pub parallelism: usize,
    /// The file the workflow came from, for messages.
    pub source: String,
    /// Where the run's steps run (`--runtime`, `--image-map`), so `ferry
    /// resume` continues in the same place. Empty for plans stored before it
    /// was kept: those resume locally unless told otherwise.
    #[serde(default)]
    pub runtime: RuntimeChoice,
    /// The data of the ConfigMaps among the files, by name, for
    /// `configMap` volumes.
    #[serde(default)]
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
}

/// The runtime a run was started with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeChoice {
    /// Where the steps run.
    pub runtime: RuntimeKind,
    /// `--image-map` entries.
    pub image_map: Vec<String>,
}

/// Where steps run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// Processes of this host, each in its own step directory.
    // Plans stored before the runtime had a type hold "" for local.
    #[default]
    #[serde(alias = "")]
    Local,
    /// One Docker container per step, its declared paths bind-mounted from the step directory.
    Docker,
}

/// Which set of templates a template name is looked up in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin(pub Option<String>);

/// What the user chose on the command line.
#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    /// `-p name=value`.
    pub parameters: Vec<(String, String)>,
    /// `--parallelism`.
    pub parallelism: Option<usize>,
    /// Used when the files name no repository.
    pub fallback_repository: Option<Repository>,
    /// The drivers.
    pub registry: Registry,
    /// `--name`.
    pub name: Option<String>,
    /// Where the steps will run (`--runtime`); `None` when nothing runs
    /// here (`ferry render`), so no runtime's limits are checked.
    pub runtime: Option<RuntimeChoice>,
    /// The tick a `CronWorkflow` runs for (`{{workflow.scheduledTime}}`); now when unset.
    pub scheduled: Option<jiff::Timestamp>,
}

/// A plan as built, with the problems found building it. Lint judges it
/// next ([`crate::lint::checked`]), so every problem is reported at once.
#[derive(Debug)]
pub struct Draft {
    /// The plan.
    pub plan: Plan,
    /// What building it found wrong.
    pub problems: Vec<Problem>,
    /// The path of the workflow's spec in its file: `spec`, or
    /// `spec.workflowSpec` in a `CronWorkflow`; lint's paths start there.
    pub spec_path: &'static str,
}

/// The key a `WorkflowTemplate` (or, with `cluster`, a
/// `ClusterWorkflowTemplate`) has in [`Plan::library`].
fn library_key(name: &str, cluster: bool) -> String {
    if cluster { format!("cluster/{name}") } else { name.to_string() }
}

/// The one `Workflow` among `docs`, with the file it came from, the field
/// path of its spec, and the problems of a `CronWorkflow`'s own fields. A
/// `CronWorkflow` runs as the workflow of one tick: `options.scheduled`, else now.
fn the_workflow(docs: &Documents, options: &PlanOptions) -> Result<Chosen, PlanError> {
    let many = || PlanError {
        file: docs
            .workflows
            .iter()
            .map(|w| &w.0)
            .chain(docs.crons.iter().map(|c| &c.0))
            .nth(1)
            .map(|s| s.to_string())
            .unwrap_or_default(),
        problems: vec![problem("", "more than one Workflow or CronWorkflow document: run one at a time")],
    };
    match (docs.workflows.as_slice(), docs.crons.as_slice()) {
        ([one], []) => {
            Ok(Chosen { source: one.0.to_string(), workflow: one.1.clone(), spec_path: "spec", problems: Vec::new() })
        }
        ([], [(source, cron)]) => {
            let mut problems = Vec::new();
            if cron.metadata.name.is_empty() {
                problems.push(problem("metadata.name", "a CronWorkflow needs a name: it names its runs"));
            }
            let zone = match cron.spec.rules() {
                Ok(rules) => rules.schedule.zone().clone(),
                Err(found) => {
                    problems.extend(found);
                    jiff::tz::TimeZone::UTC
                }
            };
            let at = options.scheduled.unwrap_or_else(whole_second_now).to_zoned(zone);
            Ok(Chosen {
                source: source.to_string(),
                workflow: cron.workflow_at(&at),
                spec_path: "spec.workflowSpec",
                problems,
            })
        }
        ([], []) => match docs.templates.as_slice() {
            // As `argo submit --from workflowtemplate/NAME`: a run of the one
            // template given, its entrypoint and arguments its own.
            [(source, template)] if !template.spec.entrypoint.is_empty() => Ok(Chosen {
                source: source.to_string(),
                workflow: Workflow {
                    api_version: template.api_version.clone(),
                    kind: "Workflow".into(),
                    metadata: Metadata { generate_name: format!("{}-", template.metadata.name), ..Metadata::default() },
                    spec: WorkflowSpec {
                        workflow_template_ref: Some(WorkflowTemplateRef {
                            name: template.metadata.name.clone(),
                            cluster_scope: template.kind == "ClusterWorkflowTemplate",
                        }),
                        ..WorkflowSpec::default()
                    },
                },
                spec_path: "spec",
                problems: Vec::new(),
            }),
            _ => Err(PlanError {
                file: "input".into(),
                problems: vec![problem(
                    "",
                    "no Workflow or CronWorkflow document among the files given (nor a single WorkflowTemplate with an entrypoint to run)",
                )],
            }),
        },
        _ => Err(many()),
    }
}

/// The workflow a plan is built for.
struct Chosen {
    source: String,
    workflow: Workflow,
    /// `spec`, or `spec.workflowSpec` in a `CronWorkflow`.
    spec_path: &'static str,
    /// Problems of a `CronWorkflow`'s own fields.
    problems: Vec<Problem>,
}

/// Now, to the second: a run-once of a `CronWorkflow` is named after it.
fn whole_second_now() -> jiff::Timestamp {
    jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// `p` with its leading `spec` replaced by `spec_path` (a `CronWorkflow`'s
/// `spec.workflowSpec`), so problems name the field in the file.
pub(crate) fn under(mut p: Problem, spec_path: &str) -> Problem {
    if spec_path != "spec" && (p.path == "spec" || p.path.starts_with("spec.") || p.path.starts_with("spec[")) {
        p.path = format!("{spec_path}{}", &p.path["spec".len()..]);
    }
    p
}

/// The workflow's parameters: `-p` over the file's value over its default.
fn parameters(
    spec: &WorkflowSpec,
    options: &PlanOptions,
    config_maps: &BTreeMap<String, BTreeMap<String, String>>,
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, String> {
    let mut parameters = BTreeMap::new();
    for (i, p) in spec.arguments.parameters.iter().enumerate() {
        let given = options.parameters.iter().rev().find(|(k, _)| *k == p.name).map(|(_, v)| v.clone());
        match given
            .or_else(|| p.value.as_ref().map(|v| v.0.clone()))
            .or_else(|| p.config_map_value(config_maps).cloned())
            .or_else(|| p.default.as_ref().map(|v| v.0.clone()))
        {
            Some(v) => {
                if !p.allowed.is_empty() && !p.allowed.iter().any(|a| a.0 == v) {
                    problems.push(problem(
                        format!("spec.arguments.parameters[{i}]"),
                        format!(
                            "value {v:?} of {} is not one of its enum values ({})",
                            p.name,
                            p.allowed.iter().map(|a| a.0.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
                parameters.insert(p.name.clone(), v);
            }
            None => problems.push(problem(
                format!("spec.arguments.parameters[{i}].value"),
                format!("parameter {} has no value: give one with -p {}=VALUE", p.name, p.name),
            )),
        }
    }
    for (k, _) in &options.parameters {
        if !spec.arguments.parameters.iter().any(|p| &p.name == k) {
            problems.push(problem(
                "spec.arguments.parameters",
                format!("-p {k}: the workflow declares no parameter {k:?}"),
            ));
        }
    }
    parameters
}

/// The artifact repository the files name, else the fallback.
fn repository(
    docs: &Documents,
    spec: &WorkflowSpec,
    options: &PlanOptions,
    problems: &mut Vec<Problem>,
) -> Option<Repository> {
    let fallback =
        options.fallback_repository.clone().unwrap_or_else(|| Repository::embedded(std::path::Path::new("artifacts")));
    let config_maps: Vec<_> = docs.config_maps.iter().map(|(_, c)| c.clone()).collect();
    match Repository::resolve(&config_maps, spec.artifact_repository_ref.as_ref(), fallback) {
        Ok(r) => Some(r),
        Err(e) => {
            problems.push(problem("spec.artifactRepositoryRef", e.0));
            None
        }
    }
}

/// The drivers given, with those the files' ConfigMaps register over them.
fn registry(docs: &Documents, options: &PlanOptions, problems: &mut Vec<Problem>) -> Registry {
    let mut registry = options.registry.clone();
    for (_, cm) in &docs.config_maps {
        if let Some(list) = cm.data.get("artifactDrivers")
            && let Err(e) = registry
                .merge_text(&format!("artifactDrivers:\n{}", indent(list)), &format!("ConfigMap {}", cm.metadata.name))
        {
            problems.push(problem(format!("ConfigMap {}.data.artifactDrivers", cm.metadata.name), e.to_string()));
        }
    }
    registry
}

/// The workflow's `templateDefaults` merged into every template, its own
/// and those of the libraries it may reference (as Argo applies the running
/// workflow's defaults to every template it runs).
fn with_template_defaults(
    mut spec: WorkflowSpec,
    mut library: BTreeMap<String, WorkflowSpec>,
    problems: &mut Vec<Problem>,
) -> (WorkflowSpec, BTreeMap<String, WorkflowSpec>) {
    let Some(defaults) = spec.template_defaults.clone() else { return (spec, library) };
    let mut merge = |t: &mut Template, path: String| match defaults::apply(&defaults, t) {
        Ok(merged) => *t = merged,
        Err(e) => problems.push(problem(path, format!("with spec.templateDefaults merged: {e}"))),
    };
    for (i, t) in spec.templates.iter_mut().enumerate() {
        merge(t, format!("spec.templates[{i}]"));
    }
    for (k, lib) in &mut library {
        for (i, t) in lib.templates.iter_mut().enumerate() {
            merge(t, format!("WorkflowTemplate {k}: spec.templates[{i}]"));
        }
    }
    (spec, library)
}

/// Every container template, of the workflow and of its libraries, has a
/// `command`: the local runtime runs it on this host and cannot read an
/// image's entrypoint (the Docker runtime and Kubernetes can).
fn commands_for_local(
    spec: &WorkflowSpec,
    library: &BTreeMap<String, WorkflowSpec>,
    mapped: &BTreeSet<&str>,
    problems: &mut Vec<Problem>,
) {
    let specs = std::iter::once(("spec".to_string(), spec))
        .chain(library.iter().map(|(k, s)| (format!("WorkflowTemplate {k}: spec"), s)));
    for (prefix, spec) in specs {
        for (i, t) in spec.templates.iter().enumerate() {
            let message = |image: &str| {
                format!(
                    "is required with the local runtime, which cannot read the entrypoint of image {image:?}: give the command, map the image to a program of this host with --image-map IMAGE=PROGRAM, or use --runtime docker"
                )
            };
            if let Some(c) = t.container.as_ref().filter(|c| c.command.is_empty() && !mapped.contains(c.image.as_str()))
            {
                problems.push(problem(format!("{prefix}.templates[{i}].container.command"), message(&c.image)));
            }
            for (j, s) in t.sidecars.iter().enumerate().filter(|(_, s)| s.command.is_empty()) {
                problems.push(problem(format!("{prefix}.templates[{i}].sidecars[{j}].command"), message(&s.image)));
            }
        }
    }
}

/// The run's metadata with `spec.workflowMetadata` added: its labels and
/// annotations, and each of `labelsFrom` evaluated over the workflow's name
/// and parameters (Argo's `labelsFrom`).
fn with_workflow_metadata(
    wf: &Workflow,
    name: &str,
    parameters: &BTreeMap<String, String>,
    problems: &mut Vec<Problem>,
) -> Metadata {
    let mut metadata = wf.metadata.clone();
    let Some(extra) = &wf.spec.workflow_metadata else { return metadata };
    metadata.labels.extend(extra.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    metadata.annotations.extend(extra.annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut vars: BTreeMap<String, String> =
        parameters.iter().map(|(k, v)| (format!("workflow.parameters.{k}"), v.clone())).collect();
    vars.insert("workflow.name".into(), name.to_string());
    for (label, from) in &extra.labels_from {
        match crate::expression::evaluate(&from.expression, &vars)
            .and_then(|v| crate::expression::parameter_text(&from.expression, &v))
        {
            Ok(value) => {
                metadata.labels.insert(label.clone(), value);
            }
            Err(e) => {
                problems.push(problem(format!("spec.workflowMetadata.labelsFrom.{label}.expression"), e.to_string()))
            }
        }
    }
    metadata
}

/// `--name`, else `metadata.name`, else `generateName` (or `workflow-`) and a random suffix.
fn run_name(wf: &Workflow, options: &PlanOptions) -> String {
    options.name.clone().unwrap_or_else(|| {
        if wf.metadata.name.is_empty() {
            format!(
                "{}{}",
                if wf.metadata.generate_name.is_empty() { "workflow-" } else { &wf.metadata.generate_name },
                random_suffix()
            )
        } else {
            wf.metadata.name.clone()
        }
    })
}

impl Plan {
    /// Builds the plan for the one `Workflow` among `docs`. A problem that
    /// leaves nothing to build on is the error; the others come with the plan.
    pub fn build(docs: &Documents, options: &PlanOptions) -> Result<Draft, PlanError> {
        let Chosen { source, workflow, spec_path, problems: own_problems } = the_workflow(docs, options)?;
        let wf = &workflow;
        let library: BTreeMap<String, WorkflowSpec> = docs
            .templates
            .iter()
            .map(|(_, t)| (library_key(&t.metadata.name, t.kind == "ClusterWorkflowTemplate"), t.spec.clone()))
            .collect();
        let spec = merged_spec(wf, &library)
            .map_err(|p| PlanError { file: source.clone(), problems: vec![under(p, spec_path)] })?;
        let mut problems = Vec::new();
        let (spec, library) = with_template_defaults(spec, library, &mut problems);
        let config_maps: BTreeMap<String, BTreeMap<String, String>> =
            docs.config_maps.iter().map(|(_, c)| (c.metadata.name.clone(), c.data.clone())).collect();
        let parameters = parameters(&spec, options, &config_maps, &mut problems);
        let repository = repository(docs, &spec, options, &mut problems);
        let registry = registry(docs, options, &mut problems);
        if let Some(choice) = options.runtime.as_ref().filter(|r| r.runtime == RuntimeKind::Local) {
            let mapped: BTreeSet<&str> =
                choice.image_map.iter().filter_map(|e| e.split_once('=')).map(|(f, _)| f).collect();
            commands_for_local(&spec, &library, &mapped, &mut problems);
        }
        let parallelism = options
            .parallelism
            .or(spec.parallelism.map(|p| p as usize))
            .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get() * 2).unwrap_or(4))
            .max(1);
        let name = run_name(wf, options);
        let metadata = with_workflow_metadata(wf, &name, &parameters, &mut problems);
        let plan = Plan {
            name,
            uid: uuid::Uuid::new_v4().to_string(),
            namespace: if wf.metadata.namespace.is_empty() { "default".into() } else { wf.metadata.namespace.clone() },
            created: now_ms(),
            metadata,
            spec,
            library,
            parameters,
            repository: repository.unwrap_or_else(|| Repository::embedded(std::path::Path::new("."))),
            registry,
            parallelism,
            source,
            runtime: options.runtime.clone().unwrap_or_default(),
            config_maps,
        };
        let mut problems: Vec<Problem> = problems.into_iter().map(|p| under(p, spec_path)).collect();
        problems.extend(own_problems);
        Ok(Draft { plan, problems, spec_path })
    }

    /// The repository a template's outputs go to: its `archiveLocation`
    /// over the workflow's.
    pub fn repository_for(&self, t: &Template) -> Repository {
        match &t.archive_location {
            Some(a) => Repository::from_archive_location(a, &self.repository),
            None => self.repository.clone(),
        }
    }

    /// Whether a template whose outputs go to `repo` archives its log there.
    pub fn archives_logs(&self, repo: &Repository) -> bool {
        repo.archive_logs || self.spec.archive_logs.unwrap_or(false)
    }

    /// The drivers a template loads its inputs with, as Argo's `GetPluginNames` picks them.
    pub fn input_drivers(&self, t: &Template) -> BTreeSet<String> {
        let repo = self.repository_for(t);
        t.inputs.artifacts.iter().map(|a| driver_of(a, &repo)).collect()
    }

    /// The drivers a template saves its outputs (and archived log) with.
    pub fn output_drivers(&self, t: &Template) -> BTreeSet<String> {
        let repo = self.repository_for(t);
        let mut names: BTreeSet<String> = t.outputs.artifacts.iter().map(|a| driver_of(a, &repo)).collect();
        if self.archives_logs(&repo) {
            names.insert(repo.location.driver.clone());
        }
        names
    }

    /// The templates of an origin.
    pub fn templates(&self, origin: &Origin) -> &[Template] {
        match &origin.0 {
            None => &self.spec.templates,
            Some(key) => self.library.get(key).map(|s| s.templates.as_slice()).unwrap_or_default(),
        }
    }

    /// The template a step runs (its `inline` template, else the one it
    /// names), and the origin the template's own references use. An inline
    /// template belongs to the templates its step is written among.
    pub fn target<'a>(&'a self, origin: &Origin, step: &'a Step) -> Option<(Origin, &'a Template)> {
        match &step.inline {
            Some(inline) => Some((origin.clone(), inline)),
            None => self.find(origin, &step.template, step.template_ref.as_ref()),
        }
    }

    /// Finds the template a step names, and the origin its own references use.
    pub fn find(
        &self,
        origin: &Origin,
        template: &str,
        template_ref: Option<&TemplateRef>,
    ) -> Option<(Origin, &Template)> {
        let origin = match template_ref {
            Some(r) => Origin(Some(library_key(&r.name, r.cluster_scope))),
            None => origin.clone(),
        };
        let name = template_ref.map(|r| r.template.as_str()).unwrap_or(template);
        let found = self.templates(&origin).iter().find(|t| t.name == name)?;
        Some((origin, found))
    }
}

fn indent(list: &str) -> String {
    list.lines().map(|l| format!("  {l}\n")).collect()
}

/// Argo's merge of a workflow over the `WorkflowTemplate` it references:
/// the workflow's own fields win, parameters merge by name, templates add up.
fn merged_spec(wf: &Workflow, library: &BTreeMap<String, WorkflowSpec>) -> Result<WorkflowSpec, Problem> {
    let Some(r) = &wf.spec.workflow_template_ref else {
        return Ok(wf.spec.clone());
    };
    let base = library.get(&library_key(&r.name, r.cluster_scope)).ok_or_else(|| {
        problem(
            "spec.workflowTemplateRef.name",
            format!("WorkflowTemplate {:?} not found among the files given", r.name),
        )
    })?;
    let own = &wf.spec;
    let mut spec = base.clone();
    if !own.entrypoint.is_empty() {
        spec.entrypoint = own.entrypoint.clone();
    }
    for p in &own.arguments.parameters {
        match spec.arguments.parameters.iter_mut().find(|q| q.name == p.name) {
            Some(q) => *q = p.clone(),
            None => spec.arguments.parameters.push(p.clone()),
        }
    }
    for a in &own.arguments.artifacts {
        spec.arguments.artifacts.retain(|b| b.name != a.name);
        spec.arguments.artifacts.push(a.clone());
    }
    spec.templates.extend(own.templates.iter().cloned());
    if own.template_defaults.is_some() {
        spec.template_defaults = own.template_defaults.clone();
    }
    if !own.on_exit.is_empty() {
        spec.on_exit = own.on_exit.clone();
    }
    spec.hooks.extend(own.hooks.iter().map(|(k, v)| (k.clone(), v.clone())));
    spec.parallelism = own.parallelism.or(spec.parallelism);
    spec.active_deadline_seconds = own.active_deadline_seconds.or(spec.active_deadline_seconds);
    if own.artifact_repository_ref.is_some() {
        spec.artifact_repository_ref = own.artifact_repository_ref.clone();
    }
    if own.artifact_gc.is_some() {
        spec.artifact_gc = own.artifact_gc.clone();
    }
    spec.workflow_template_ref = None;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plans stored before the runtime had a type say `""` for local, or nothing at all.
    #[test]
    fn stored_runtime_choices_of_every_version_load() {
        let read = |json: &str| serde_json::from_str::<RuntimeChoice>(json).map(|c| c.runtime);
        assert_eq!(read(r#"{"runtime": "", "image_map": []}"#).unwrap(), RuntimeKind::Local);
        assert_eq!(read(r#"{"runtime": "local", "image_map": []}"#).unwrap(), RuntimeKind::Local);
        assert_eq!(read(r#"{"runtime": "docker", "image_map": ["a=b"]}"#).unwrap(), RuntimeKind::Docker);
        assert!(read(r#"{"runtime": "podman", "image_map": []}"#).is_err());
        let docker = RuntimeChoice { runtime: RuntimeKind::Docker, image_map: Vec::new() };
        assert_eq!(serde_json::to_value(&docker).unwrap()["runtime"], "docker", "stored as before");
    }
}
