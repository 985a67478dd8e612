//! A run's plan: the workflow as it will run, with its `WorkflowTemplate`
//! references, parameters, artifact repository and drivers resolved. The
//! plan is stored with the run, so `ferry resume` continues the same plan
//! even if the files changed since.

use crate::drivers::Registry;
use crate::repository::Repository;
use crate::workflow::{Documents, Metadata, Template, TemplateRef, Workflow, WorkflowSpec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
}

/// The runtime a run was started with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeChoice {
    /// `local` or `docker` (empty: local).
    pub runtime: String,
    /// `--image-map` entries.
    pub image_map: Vec<String>,
}

/// Which set of templates a template name is looked up in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin(pub Option<String>);

/// A problem that stops a workflow from running, with the field it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The field path, such as `spec.templates[1].dag.tasks[0].depends`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() { f.write_str(&self.message) } else { write!(f, "{}: {}", self.path, self.message) }
    }
}

/// Problems found in a set of files.
#[derive(Debug, thiserror::Error)]
#[error("{}", .problems.iter().map(|p| format!("{}: {p}", .file)).collect::<Vec<_>>().join("\n"))]
pub struct PlanError {
    /// The workflow's file.
    pub file: String,
    /// Every problem found.
    pub problems: Vec<Problem>,
}

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
}

fn problem(path: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem { path: path.into(), message: message.into() }
}

/// A random lowercase suffix for `generateName`, as the API server adds.
pub fn random_suffix() -> String {
    let id = uuid::Uuid::new_v4();
    let alphabet = b"bcdfghjklmnpqrstvwxz2456789";
    id.as_bytes().iter().take(5).map(|b| alphabet[usize::from(*b) % alphabet.len()] as char).collect()
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl Plan {
    /// Builds the plan for the one `Workflow` among `docs`.
    pub fn build(docs: &Documents, options: &PlanOptions) -> Result<Plan, PlanError> {
        let (source, wf) = match docs.workflows.as_slice() {
            [one] => (one.0.to_string(), &one.1),
            [] => {
                return Err(PlanError {
                    file: "input".into(),
                    problems: vec![problem("", "no Workflow document among the files given")],
                });
            }
            many => {
                return Err(PlanError {
                    file: many[1].0.to_string(),
                    problems: vec![problem("", "more than one Workflow document: run one at a time")],
                });
            }
        };
        let fail = |problems: Vec<Problem>| PlanError { file: source.clone(), problems };
        let mut library = BTreeMap::new();
        for (_, t) in &docs.templates {
            let key = if t.kind == "ClusterWorkflowTemplate" {
                format!("cluster/{}", t.metadata.name)
            } else {
                t.metadata.name.clone()
            };
            library.insert(key, t.spec.clone());
        }
        let spec = merged_spec(wf, &library).map_err(|p| fail(vec![p]))?;
        let mut parameters = BTreeMap::new();
        let mut problems = Vec::new();
        for (i, p) in spec.arguments.parameters.iter().enumerate() {
            let given = options.parameters.iter().rev().find(|(k, _)| *k == p.name).map(|(_, v)| v.clone());
            match given
                .or_else(|| p.value.as_ref().map(|v| v.0.clone()))
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
        let fallback = options
            .fallback_repository
            .clone()
            .unwrap_or_else(|| Repository::embedded(std::path::Path::new("artifacts")));
        let config_maps: Vec<_> = docs.config_maps.iter().map(|(_, c)| c.clone()).collect();
        let repository = Repository::resolve(&config_maps, spec.artifact_repository_ref.as_ref(), fallback)
            .map_err(|e| problem("spec.artifactRepositoryRef", e.0));
        let repository = match repository {
            Ok(r) => Some(r),
            Err(p) => {
                problems.push(p);
                None
            }
        };
        let mut registry = options.registry.clone();
        for (_, cm) in &docs.config_maps {
            if let Some(list) = cm.data.get("artifactDrivers")
                && let Err(e) = registry.merge_text(
                    &format!("artifactDrivers:\n{}", indent(list)),
                    &format!("ConfigMap {}", cm.metadata.name),
                )
            {
                problems.push(problem(format!("ConfigMap {}.data.artifactDrivers", cm.metadata.name), e.to_string()));
            }
        }
        let name = options.name.clone().unwrap_or_else(|| {
            if wf.metadata.name.is_empty() {
                format!(
                    "{}{}",
                    if wf.metadata.generate_name.is_empty() { "workflow-" } else { &wf.metadata.generate_name },
                    random_suffix()
                )
            } else {
                wf.metadata.name.clone()
            }
        });
        let parallelism = options
            .parallelism
            .or(spec.parallelism.map(|p| p as usize))
            .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get() * 2).unwrap_or(4))
            .max(1);
        let plan = Plan {
            name,
            uid: uuid::Uuid::new_v4().to_string(),
            namespace: if wf.metadata.namespace.is_empty() { "default".into() } else { wf.metadata.namespace.clone() },
            created: now_ms(),
            metadata: wf.metadata.clone(),
            spec,
            library,
            parameters,
            repository: repository.clone().unwrap_or_else(|| Repository::embedded(std::path::Path::new("."))),
            registry,
            parallelism,
            source: source.clone(),
            runtime: RuntimeChoice::default(),
        };
        problems.extend(crate::lint::check(&plan));
        if problems.is_empty() { Ok(plan) } else { Err(fail(problems)) }
    }

    /// The templates of an origin.
    pub fn templates(&self, origin: &Origin) -> &[Template] {
        match &origin.0 {
            None => &self.spec.templates,
            Some(key) => self.library.get(key).map(|s| s.templates.as_slice()).unwrap_or_default(),
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
            Some(r) => Origin(Some(if r.cluster_scope { format!("cluster/{}", r.name) } else { r.name.clone() })),
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
    let key = if r.cluster_scope { format!("cluster/{}", r.name) } else { r.name.clone() };
    let base = library.get(&key).ok_or_else(|| {
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
    if !own.on_exit.is_empty() {
        spec.on_exit = own.on_exit.clone();
    }
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
