//! The Argo `Workflow` documents Ferry reads, as users write them today.
//!
//! Every struct refuses fields it does not know, so anything Ferry does not
//! support fails at load time with the field's path and line instead of being
//! silently ignored. A few pod-scheduling fields that have no meaning for a
//! local run (`serviceAccountName`, `nodeSelector`, ...) are accepted and kept
//! as they are, so the same file runs on a cluster and here.

use crate::strategy::Strategy;
use crate::synchronization::{ConfigMapKeyRef, Synchronization};
use crate::volume::{ClaimGc, ClaimTemplate, Volume, VolumeMount};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A YAML value accepted and carried along but not acted on locally.
pub type Recorded = Option<Value>;

/// A string that YAML may spell as a number or a boolean (Argo's `AnyString`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct AnyString(pub String);

impl<'de> Deserialize<'de> for AnyString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = AnyString;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AnyString, E> {
                Ok(AnyString(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<AnyString, E> {
                Ok(AnyString(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<AnyString, E> {
                Ok(AnyString(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<AnyString, E> {
                Ok(AnyString(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<AnyString, E> {
                Ok(AnyString(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl fmt::Display for AnyString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Argo reads YAML 1.1, where `0755` is octal; YAML 1.2 (and this parser)
/// would take it as the string "0755" or decimal 755, so the text decides.
fn file_mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let Some(text) = Option::<AnyString>::deserialize(d)? else { return Ok(None) };
    let t = text.0.trim();
    let parsed = if let Some(oct) = t.strip_prefix("0o") {
        u32::from_str_radix(oct, 8)
    } else if t.len() > 1 && t.starts_with('0') {
        u32::from_str_radix(&t[1..], 8)
    } else {
        t.parse()
    };
    match parsed {
        Ok(m) if m <= 0o7777 => Ok(Some(m)),
        _ => Err(de::Error::custom(format!("mode {t:?} is not a file mode such as 0755"))),
    }
}

/// `metadata` of any document.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metadata {
    /// The name.
    #[serde(default)]
    pub name: String,
    /// A prefix to which a random suffix is added.
    #[serde(default)]
    pub generate_name: String,
    /// The namespace (recorded).
    #[serde(default)]
    pub namespace: String,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// A `Workflow`, `WorkflowTemplate` or `ClusterWorkflowTemplate`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Workflow {
    /// `argoproj.io/v1alpha1`.
    pub api_version: String,
    /// The document kind.
    pub kind: String,
    /// Name and labels.
    #[serde(default)]
    pub metadata: Metadata,
    /// What to run.
    #[serde(default)]
    pub spec: WorkflowSpec,
}

/// `spec` of a workflow.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkflowSpec {
    /// The template the workflow starts with.
    #[serde(default)]
    pub entrypoint: String,
    /// Workflow parameters and artifacts.
    #[serde(default)]
    pub arguments: Arguments,
    /// The templates.
    #[serde(default)]
    pub templates: Vec<Template>,
    /// Fields merged into every template that does not set them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_defaults: Option<Template>,
    /// A template run after the workflow, whatever its outcome.
    #[serde(default)]
    pub on_exit: String,
    /// Lifecycle hooks: `exit` (as `onExit`, with arguments) and named hooks
    /// that run once when their expression turns true while the run runs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hooks: BTreeMap<String, LifecycleHook>,
    /// Prometheus metrics emitted when the run ends.
    pub metrics: Option<Metrics>,
    /// Labels and annotations the run gets (some from expressions).
    pub workflow_metadata: Option<WorkflowMetadata>,
    /// At most this many pods at once.
    pub parallelism: Option<u32>,
    /// The whole workflow fails after this many seconds.
    pub active_deadline_seconds: Option<u64>,
    /// Which artifact repository key-only artifacts use.
    pub artifact_repository_ref: Option<ArtifactRepositoryRef>,
    /// Artifact garbage collection for the whole workflow.
    #[serde(rename = "artifactGC")]
    pub artifact_gc: Option<WorkflowArtifactGc>,
    /// Runs a `WorkflowTemplate` as this workflow.
    pub workflow_template_ref: Option<WorkflowTemplateRef>,
    /// Archive the main container's logs as an artifact.
    pub archive_logs: Option<bool>,
    /// Volumes every template may mount.
    #[serde(default)]
    pub volumes: Vec<Volume>,
    /// Claims made for this run, shared by the steps that mount them.
    #[serde(default)]
    pub volume_claim_templates: Vec<ClaimTemplate>,
    /// When the run's claims are deleted.
    #[serde(rename = "volumeClaimGC")]
    pub volume_claim_gc: Option<ClaimGc>,
    /// Locks the whole run holds.
    pub synchronization: Option<Synchronization>,
    /// Recorded: no effect locally.
    pub service_account_name: Recorded,
    /// Recorded: no effect locally.
    pub image_pull_secrets: Recorded,
    /// Recorded: no effect locally.
    pub node_selector: Recorded,
    /// Recorded: no effect locally.
    pub tolerations: Recorded,
    /// Recorded: no effect locally.
    pub security_context: Recorded,
    /// Recorded: no effect locally.
    pub pod_metadata: Recorded,
    /// Recorded: no effect locally.
    #[serde(rename = "podGC")]
    pub pod_gc: Recorded,
    /// Recorded: no effect locally.
    pub ttl_strategy: Recorded,
    /// Recorded: Kubernetes pod configuration, no effect locally.
    pub pod_spec_patch: Recorded,
    /// Recorded: Kubernetes pod configuration, no effect locally.
    pub pod_resources: Recorded,
    /// Recorded: Kubernetes pod configuration, no effect locally.
    pub resource_claims: Recorded,
    /// Recorded: Kubernetes pod configuration, no effect locally.
    pub dns_config: Recorded,
    /// Recorded: Kubernetes pod configuration, no effect locally.
    pub dns_policy: Recorded,
    /// Recorded: Kubernetes pod configuration, no effect locally.
    pub pod_disruption_budget: Recorded,
    /// Recorded: Kubernetes pod configuration, no effect locally.
    pub affinity: Recorded,
    /// Recorded: Kubernetes pod configuration, no effect locally.
    pub priority: Recorded,
    /// Recorded: Kubernetes pod configuration, no effect locally.
    pub host_network: Recorded,
    /// Recorded: Kubernetes pod configuration, no effect locally.
    pub pod_priority_class_name: Recorded,
    /// Recorded: Kubernetes pod configuration, no effect locally.
    pub scheduler_name: Recorded,
    /// Recorded: Kubernetes pod configuration, no effect locally.
    pub host_aliases: Recorded,
    /// Recorded: Kubernetes pod configuration, no effect locally.
    pub executor: Recorded,
    /// Recorded: Kubernetes pod configuration, no effect locally.
    pub automount_service_account_token: Recorded,
}

/// `spec.workflowTemplateRef`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkflowTemplateRef {
    /// The `WorkflowTemplate`'s name.
    pub name: String,
    /// Refers to a `ClusterWorkflowTemplate`.
    #[serde(default)]
    pub cluster_scope: bool,
}

/// `spec.artifactRepositoryRef`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ArtifactRepositoryRef {
    /// The ConfigMap; `artifact-repositories` when empty.
    #[serde(default)]
    pub config_map: String,
    /// The key in it; the ConfigMap's default annotation when empty.
    #[serde(default)]
    pub key: String,
}

/// `spec.artifactGC`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkflowArtifactGc {
    /// The default strategy for every output artifact.
    #[serde(default)]
    pub strategy: GcStrategy,
    /// Remove the workflow even when its GC failed.
    #[serde(default)]
    pub force_finalizer_removal: bool,
    /// Recorded: no effect locally.
    pub service_account_name: Recorded,
    /// Recorded: no effect locally.
    pub pod_metadata: Recorded,
    /// Recorded: no effect locally.
    pub pod_spec_patch: Recorded,
}

/// `artifactGC` of one artifact.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ArtifactGc {
    /// Overrides the workflow's strategy.
    #[serde(default)]
    pub strategy: GcStrategy,
    /// Recorded: no effect locally.
    pub service_account_name: Recorded,
    /// Recorded: no effect locally.
    pub pod_metadata: Recorded,
}

/// When an output artifact is deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum GcStrategy {
    /// Not set here: inherit.
    #[default]
    #[serde(rename = "")]
    Unset,
    /// Deleted when the workflow completes.
    OnWorkflowCompletion,
    /// Deleted when the workflow is deleted.
    OnWorkflowDeletion,
    /// Kept.
    Never,
}

/// Parameters and artifacts passed in.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Arguments {
    /// Parameters.
    #[serde(default)]
    pub parameters: Vec<Parameter>,
    /// Artifacts.
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
}

/// A parameter in `inputs`, `outputs` or `arguments`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Parameter {
    /// The name.
    pub name: String,
    /// The value.
    pub value: Option<AnyString>,
    /// Used when no value is given.
    pub default: Option<AnyString>,
    /// The allowed values.
    #[serde(rename = "enum", default)]
    pub allowed: Vec<AnyString>,
    /// Where an output parameter's value comes from.
    pub value_from: Option<ValueFrom>,
    /// Exported as `workflow.outputs.parameters.<globalName>`.
    #[serde(default)]
    pub global_name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
}

/// `valueFrom` of an output parameter.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ValueFrom {
    /// A file the step wrote.
    #[serde(default)]
    pub path: String,
    /// A child's parameter, for steps and DAG templates.
    #[serde(default)]
    pub parameter: String,
    /// An expr-lang expression over the children's outputs, for steps and DAG templates.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub expression: String,
    /// Used when the file is missing.
    pub default: Option<AnyString>,
    /// Suspend templates: given when the node is resumed (`ferry resume
    /// --approve --set NAME=VALUE`), else the default.
    pub supplied: Option<Empty>,
    /// A key of a ConfigMap among the workflow's files (arguments and inputs).
    pub config_map_key_ref: Option<ConfigMapKeyRef>,
    /// Resource templates only (which lint refuses): a JSON path into the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_path: Recorded,
    /// Resource templates only (which lint refuses): a jq filter over the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jq_filter: Recorded,
}

impl Parameter {
    /// The value of its `valueFrom.configMapKeyRef`, from `config_maps`
    /// (name to data); `None` without one, or when it names nothing there.
    pub fn config_map_value<'a>(
        &self,
        config_maps: &'a BTreeMap<String, BTreeMap<String, String>>,
    ) -> Option<&'a String> {
        let r = self.value_from.as_ref()?.config_map_key_ref.as_ref()?;
        config_maps.get(&r.name)?.get(&r.key)
    }
}

/// An artifact in `inputs`, `outputs` or `arguments`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Artifact {
    /// The name.
    pub name: String,
    /// Where it lives in the step's file system.
    #[serde(default)]
    pub path: String,
    /// `{{steps.X.outputs.artifacts.Y}}` or `{{tasks.X...}}`.
    #[serde(default)]
    pub from: String,
    /// An expression choosing the artifact: `tasks.X.outputs.artifacts.Y`, or
    /// `cond ? a : b` over such references.
    #[serde(default)]
    pub from_expression: String,
    /// A missing artifact is not an error.
    #[serde(default)]
    pub optional: bool,
    /// A path inside an `archive: none` directory artifact.
    #[serde(default)]
    pub sub_path: String,
    /// File mode applied after loading: `0755` (octal, as Argo's YAML reads
    /// it), `0o755`, or a decimal number such as `493`.
    #[serde(default, deserialize_with = "file_mode")]
    pub mode: Option<u32>,
    /// Apply `mode` to the whole tree.
    #[serde(default)]
    pub recurse_mode: bool,
    /// How the artifact is archived.
    pub archive: Option<ArchiveStrategy>,
    /// Exported as `workflow.outputs.artifacts.<globalName>`.
    #[serde(default)]
    pub global_name: String,
    /// Garbage collection for this artifact.
    #[serde(rename = "artifactGC")]
    pub artifact_gc: Option<ArtifactGc>,
    /// Argo v4 plugin location.
    pub plugin: Option<PluginLocation>,
    /// Argo's S3 block, served by Ferry's `s3` driver.
    pub s3: Option<serde_yaml_ng::Mapping>,
    /// Argo's OSS block, served by Ferry's `oss` driver.
    pub oss: Option<serde_yaml_ng::Mapping>,
    /// Argo's GCS block, served by Ferry's `gcs` driver.
    pub gcs: Option<serde_yaml_ng::Mapping>,
    /// Argo's Git block, served by Ferry's `git` driver.
    pub git: Option<serde_yaml_ng::Mapping>,
    /// Argo's HTTP block, served by Ferry's `http` driver.
    pub http: Option<serde_yaml_ng::Mapping>,
    /// Inline contents.
    pub raw: Option<RawArtifact>,
}

/// `raw:` artifact contents.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawArtifact {
    /// The file's contents.
    pub data: String,
}

/// `plugin:` block of an artifact (Argo v4).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PluginLocation {
    /// The driver's name in `artifactDrivers`.
    #[serde(default)]
    pub name: String,
    /// The driver's configuration, handed over as it is.
    #[serde(default)]
    pub configuration: String,
    /// The object key.
    #[serde(default)]
    pub key: String,
    /// How long to wait for the driver's socket.
    #[serde(default)]
    pub connection_timeout_seconds: u32,
}

/// `archive:` of an artifact.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ArchiveStrategy {
    /// gzip over tar.
    pub tar: Option<TarStrategy>,
    /// As it is.
    pub none: Option<Empty>,
    /// zip.
    pub zip: Option<Empty>,
    /// zstd over tar (Ferry's addition).
    pub zstd: Option<ZstdStrategy>,
}

/// An empty YAML object (`none: {}`).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// `tar:` options.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TarStrategy {
    /// gzip level 0-9.
    pub compression_level: Option<i32>,
}

/// `zstd:` options.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ZstdStrategy {
    /// zstd level 1-22.
    pub level: Option<i32>,
}

/// Inputs of a template.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Inputs {
    /// Parameters.
    #[serde(default)]
    pub parameters: Vec<Parameter>,
    /// Artifacts.
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
}

/// Outputs of a template.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Outputs {
    /// Parameters.
    #[serde(default)]
    pub parameters: Vec<Parameter>,
    /// Artifacts.
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
}

/// One template.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Template {
    /// The name. Lint requires it, except of an inline template (and
    /// `templateDefaults`), which have none.
    #[serde(default)]
    pub name: String,
    /// Inputs.
    #[serde(default)]
    pub inputs: Inputs,
    /// Outputs.
    #[serde(default)]
    pub outputs: Outputs,
    /// A container to run.
    pub container: Option<Container>,
    /// A script to run.
    pub script: Option<Script>,
    /// Groups of steps: groups run in order, the steps of a group in parallel.
    pub steps: Option<Vec<Vec<Step>>>,
    /// A DAG of tasks.
    pub dag: Option<Dag>,
    /// Waits: for a duration, or until resumed.
    pub suspend: Option<Suspend>,
    /// One HTTP request; its response body is the node's result.
    pub http: Option<Http>,
    /// Retries.
    pub retry_strategy: Option<RetryStrategy>,
    /// At most this many children at once.
    pub parallelism: Option<u32>,
    /// Stop starting children after one fails (steps and loops).
    pub fail_fast: Option<bool>,
    /// The step fails after this many seconds.
    pub active_deadline_seconds: Option<AnyString>,
    /// Container and script templates: the step fails after this Go
    /// duration (`"10s"`; Argo refuses a bare number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<AnyString>,
    /// Where this template's outputs go.
    pub archive_location: Option<ArchiveLocation>,
    /// Volumes of this template's pod.
    #[serde(default)]
    pub volumes: Vec<Volume>,
    /// Locks each node of this template holds while it runs.
    pub synchronization: Option<Synchronization>,
    /// Reuse the outputs of an earlier successful node with the same key.
    pub memoize: Option<Memoize>,
    /// Prometheus metrics emitted when each node of this template ends.
    pub metrics: Option<Metrics>,
    /// The pod keeps running, until the steps or DAG template that started
    /// it ends, once ready: its dependents start then.
    pub daemon: Option<bool>,
    /// Containers beside the main one, started before it and stopped after.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sidecars: Vec<Sidecar>,
    /// Recorded: no effect locally.
    pub metadata: Recorded,
    /// Recorded: Argo's display name and other pod annotations.
    pub annotations: Recorded,
    /// Refused by lint: creating Kubernetes objects needs a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Recorded,
    /// Refused by lint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Recorded,
    /// Refused by lint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_set: Recorded,
    /// Refused by lint: executor plugins run in a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Recorded,
    /// Recorded: no effect locally.
    pub node_selector: Recorded,
    /// Recorded: no effect locally.
    pub tolerations: Recorded,
    /// Recorded: no effect locally.
    pub service_account_name: Recorded,
    /// Recorded: no effect locally.
    pub security_context: Recorded,
    /// Recorded: no effect locally.
    pub pod_spec_patch: Recorded,
    /// Recorded: Kubernetes pod configuration, no effect locally.
    pub pod_resources: Recorded,
    /// Recorded: Kubernetes pod configuration, no effect locally.
    pub resource_claims: Recorded,
    /// Recorded: Kubernetes pod configuration, no effect locally.
    pub init_containers: Recorded,
    /// Recorded: Kubernetes pod configuration, no effect locally.
    pub affinity: Recorded,
    /// Recorded: Kubernetes pod configuration, no effect locally.
    pub priority_class_name: Recorded,
    /// Recorded: Kubernetes pod configuration, no effect locally.
    pub scheduler_name: Recorded,
    /// Recorded: Kubernetes pod configuration, no effect locally.
    pub host_aliases: Recorded,
    /// Recorded: Kubernetes pod configuration, no effect locally.
    pub executor: Recorded,
    /// Recorded: Kubernetes pod configuration, no effect locally.
    pub automount_service_account_token: Recorded,
}

/// `spec.workflowMetadata`: labels and annotations added to the run's own.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkflowMetadata {
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Labels whose value is an expression over the workflow's parameters.
    #[serde(default)]
    pub labels_from: BTreeMap<String, LabelValueFrom>,
}

/// One of `labelsFrom`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LabelValueFrom {
    /// An expr-lang expression over `workflow.*`.
    pub expression: String,
}

/// `metrics:` of a workflow or a template.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// The metrics.
    #[serde(default)]
    pub prometheus: Vec<PrometheusMetric>,
}

/// One custom Prometheus metric: a gauge, a counter or a histogram.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusMetric {
    /// The metric's name.
    pub name: String,
    /// Its help text (required, as in Argo).
    #[serde(default)]
    pub help: String,
    /// Its labels (values may hold `{{...}}`).
    #[serde(default)]
    pub labels: Vec<MetricLabel>,
    /// Emitted only when this condition holds.
    #[serde(default)]
    pub when: String,
    /// A gauge.
    pub gauge: Option<Gauge>,
    /// A counter.
    pub counter: Option<Counter>,
    /// A histogram.
    pub histogram: Option<Histogram>,
}

/// A label of a metric.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricLabel {
    /// The label's name.
    pub key: String,
    /// Its value.
    pub value: String,
}

/// `gauge:` of a metric.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Gauge {
    /// The value.
    pub value: String,
    /// Recorded: Ferry emits when the node ends.
    pub realtime: Option<bool>,
    /// `Set` (default), `Add` or `Sub`.
    pub operation: Option<String>,
}

/// `counter:` of a metric.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Counter {
    /// What to add.
    pub value: String,
}

/// `histogram:` of a metric.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Histogram {
    /// The observed value.
    pub value: String,
    /// The buckets' upper bounds.
    #[serde(default)]
    pub buckets: Vec<AnyString>,
}

/// `memoize:` of a template: a node whose key the cache holds, saved
/// there at most `maxAge` ago, succeeds at once with the saved outputs.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Memoize {
    /// The key (usually from inputs).
    pub key: String,
    /// How old a saved entry may be (a Go duration); any age when empty.
    #[serde(default)]
    pub max_age: String,
    /// Which cache: Argo's ConfigMap, here a table of the Ferry home.
    pub cache: MemoizeCache,
}

/// `memoize.cache`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MemoizeCache {
    /// The cache's name.
    pub config_map: MemoizeConfigMap,
}

/// `memoize.cache.configMap`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MemoizeConfigMap {
    /// The cache's name.
    pub name: String,
    /// Recorded.
    pub key: Option<String>,
}

/// `http:` of a template (Argo's HTTP template).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Http {
    /// Where the request goes.
    pub url: String,
    /// The method (`GET` when empty).
    #[serde(default)]
    pub method: String,
    /// Request headers.
    #[serde(default)]
    pub headers: Vec<HttpTemplateHeader>,
    /// The request body.
    #[serde(default)]
    pub body: String,
    /// Or a body of bytes (base64 in YAML, as Kubernetes writes `[]byte`).
    pub body_from: Option<HttpBodySource>,
    /// The whole request and response must take at most this long.
    pub timeout_seconds: Option<u64>,
    /// An expression over `response` (`statusCode`, `body`, `headers`) and
    /// `request`; without one, a 2xx status succeeds.
    #[serde(default)]
    pub success_condition: String,
    /// Accept any TLS certificate.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// A header of an HTTP template.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpTemplateHeader {
    /// The name.
    pub name: String,
    /// The value.
    #[serde(default)]
    pub value: String,
    /// Or a value read from a secret.
    pub value_from: Option<HttpHeaderSource>,
}

/// `valueFrom:` of an HTTP template's header.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpHeaderSource {
    /// A key of a secret: `FERRY_SECRETS_DIR/<name>/<key>`.
    pub secret_key_ref: Option<SecretKeySelector>,
}

/// A key of a secret.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecretKeySelector {
    /// The secret.
    pub name: String,
    /// The key.
    pub key: String,
    /// Recorded.
    pub optional: Option<bool>,
}

/// `bodyFrom:` of an HTTP template.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpBodySource {
    /// The body, base64-encoded.
    #[serde(default)]
    pub bytes: String,
}

/// `suspend:` of a template.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Suspend {
    /// Resume by itself after this long (seconds, or a duration such as
    /// `20s`, `5m`); without it, wait until resumed.
    pub duration: Option<AnyString>,
}

/// `archiveLocation` of a template.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ArchiveLocation {
    /// Archive the main container's logs.
    pub archive_logs: Option<bool>,
    /// A plugin location.
    pub plugin: Option<PluginLocation>,
    /// An S3 location.
    pub s3: Option<serde_yaml_ng::Mapping>,
    /// An OSS location.
    pub oss: Option<serde_yaml_ng::Mapping>,
    /// A GCS location.
    pub gcs: Option<serde_yaml_ng::Mapping>,
}

/// An environment variable.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnvVar {
    /// The name.
    pub name: String,
    /// The value.
    #[serde(default)]
    pub value: String,
    /// Or a value read when the step starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<EnvVarSource>,
}

/// `env[].valueFrom`: a key of a secret (`FERRY_SECRETS_DIR/<name>/<key>`)
/// or of a ConfigMap given with the workflow.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnvVarSource {
    /// A key of a secret.
    pub secret_key_ref: Option<SecretKeySelector>,
    /// A key of a ConfigMap.
    pub config_map_key_ref: Option<ConfigMapKeyRef>,
    /// Refused by lint: a field of the Kubernetes pod.
    pub field_ref: Recorded,
    /// Refused by lint: a resource of the Kubernetes container.
    pub resource_field_ref: Recorded,
}

/// `container:` of a template.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Container {
    /// The image (recorded; the local runtime runs the command on this host).
    #[serde(default)]
    pub image: String,
    /// The command.
    #[serde(default)]
    pub command: Vec<String>,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment.
    #[serde(default)]
    pub env: Vec<EnvVar>,
    /// The working directory.
    #[serde(default)]
    pub working_dir: String,
    /// Volumes mounted into it.
    #[serde(default)]
    pub volume_mounts: Vec<VolumeMount>,
    /// Recorded: no effect locally.
    pub resources: Recorded,
    /// Recorded: no effect locally.
    pub image_pull_policy: Recorded,
    /// Recorded: no effect locally.
    pub security_context: Recorded,
    /// Recorded: no effect locally.
    pub name: Recorded,
    /// When a daemon counts as ready: its dependents wait for it.
    pub readiness_probe: Option<Probe>,
    /// Recorded: no effect locally.
    pub liveness_probe: Recorded,
    /// Recorded: no effect locally.
    pub startup_probe: Recorded,
    /// Recorded: every port of the host is the step's (the local runtime
    /// shares the host's network).
    pub ports: Recorded,
}

/// A container of the pod beside the main one (`sidecars:`): started
/// before it, stopped after it. Its fields repeat [`Container`]'s, with a
/// required `name` and `mirrorVolumeMounts`: serde cannot both flatten a
/// `Container` in and refuse unknown fields.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Sidecar {
    /// Its name, unique in the template.
    pub name: String,
    /// The image (recorded, as the main container's).
    #[serde(default)]
    pub image: String,
    /// The command (required in the local runtime).
    #[serde(default)]
    pub command: Vec<String>,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment.
    #[serde(default)]
    pub env: Vec<EnvVar>,
    /// The working directory.
    #[serde(default)]
    pub working_dir: String,
    /// Volumes mounted into it.
    #[serde(default)]
    pub volume_mounts: Vec<VolumeMount>,
    /// Mount every volume the main container mounts, at the same paths.
    #[serde(default)]
    pub mirror_volume_mounts: bool,
    /// Recorded: no effect locally.
    pub resources: Recorded,
    /// Recorded: no effect locally.
    pub image_pull_policy: Recorded,
    /// Recorded: no effect locally.
    pub security_context: Recorded,
    /// Recorded: a sidecar gates nothing.
    pub readiness_probe: Recorded,
    /// Recorded: no effect locally.
    pub liveness_probe: Recorded,
    /// Recorded: no effect locally.
    pub startup_probe: Recorded,
    /// Recorded: the host's network is shared.
    pub ports: Recorded,
}

/// A Kubernetes probe: one of `exec`, `httpGet`, `tcpSocket`, tried every
/// `periodSeconds` until it succeeds (readiness) or fails
/// `failureThreshold` times in a row.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Probe {
    /// Runs a command in the container: exit 0 is success.
    pub exec: Option<ExecAction>,
    /// An HTTP GET: a status from 200 to 399 is success.
    pub http_get: Option<HttpGetAction>,
    /// A TCP connection that opens is success.
    pub tcp_socket: Option<TcpSocketAction>,
    /// Wait this long before the first try (0).
    pub initial_delay_seconds: Option<u64>,
    /// Between tries (10).
    pub period_seconds: Option<u64>,
    /// One try's limit (1).
    pub timeout_seconds: Option<u64>,
    /// Failures in a row before giving up (3); ignored while a readiness
    /// probe waits, as Kubernetes keeps probing a container that runs.
    pub failure_threshold: Option<u32>,
    /// Recorded: one success is enough.
    pub success_threshold: Recorded,
    /// Recorded.
    pub termination_grace_period_seconds: Recorded,
    /// Recorded.
    pub grpc: Recorded,
}

/// `exec:` of a probe.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExecAction {
    /// The command and its arguments.
    #[serde(default)]
    pub command: Vec<String>,
}

/// `httpGet:` of a probe.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpGetAction {
    /// The path (`/`).
    #[serde(default)]
    pub path: String,
    /// The port number.
    pub port: AnyString,
    /// The host (the pod's address).
    #[serde(default)]
    pub host: String,
    /// `HTTP` (default) or `HTTPS`.
    #[serde(default)]
    pub scheme: String,
    /// Headers sent.
    #[serde(default)]
    pub http_headers: Vec<HttpHeader>,
}

/// A header of an HTTP probe.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpHeader {
    /// The name.
    pub name: String,
    /// The value.
    #[serde(default)]
    pub value: String,
}

/// `tcpSocket:` of a probe.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TcpSocketAction {
    /// The port number.
    pub port: AnyString,
    /// The host (the pod's address).
    #[serde(default)]
    pub host: String,
}

/// `script:` of a template: a container whose command runs `source`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Script {
    /// The image (recorded).
    #[serde(default)]
    pub image: String,
    /// The interpreter; `sh` when empty.
    #[serde(default)]
    pub command: Vec<String>,
    /// Extra arguments after the script file.
    #[serde(default)]
    pub args: Vec<String>,
    /// The script.
    pub source: String,
    /// Environment.
    #[serde(default)]
    pub env: Vec<EnvVar>,
    /// The working directory.
    #[serde(default)]
    pub working_dir: String,
    /// Volumes mounted into it.
    #[serde(default)]
    pub volume_mounts: Vec<VolumeMount>,
    /// Recorded: no effect locally.
    pub resources: Recorded,
    /// Recorded: no effect locally.
    pub image_pull_policy: Recorded,
    /// Recorded: no effect locally.
    pub security_context: Recorded,
    /// Recorded: no effect locally.
    pub name: Recorded,
    /// When a daemon counts as ready: its dependents wait for it.
    pub readiness_probe: Option<Probe>,
    /// Recorded: no effect locally.
    pub liveness_probe: Recorded,
    /// Recorded: no effect locally.
    pub startup_probe: Recorded,
    /// Recorded: every port of the host is the step's (the local runtime
    /// shares the host's network).
    pub ports: Recorded,
}

/// `templateRef:` to a template of a `WorkflowTemplate`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TemplateRef {
    /// The `WorkflowTemplate`.
    pub name: String,
    /// The template in it.
    pub template: String,
    /// Refers to a `ClusterWorkflowTemplate`.
    #[serde(default)]
    pub cluster_scope: bool,
}

/// The name of the hook Argo runs as an exit handler.
pub const EXIT_HOOK: &str = "exit";

/// One of `hooks:` of a workflow, step or task: a template to run on an event.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LifecycleHook {
    /// The template to run.
    #[serde(default)]
    pub template: String,
    /// Or a template of a `WorkflowTemplate`.
    pub template_ref: Option<TemplateRef>,
    /// Its arguments.
    #[serde(default)]
    pub arguments: Arguments,
    /// When it runs (every hook but `exit` needs one).
    #[serde(default)]
    pub expression: String,
}

impl LifecycleHook {
    /// The hook as a step named `name`, for the code that runs steps.
    pub fn as_step(&self, name: &str) -> Step {
        Step {
            name: name.to_string(),
            template: self.template.clone(),
            template_ref: self.template_ref.clone(),
            arguments: self.arguments.clone(),
            ..Step::default()
        }
    }

    /// `onExit: NAME`, as the exit hook it is.
    fn on_exit(template: &str) -> Option<LifecycleHook> {
        (!template.is_empty()).then(|| LifecycleHook { template: template.to_string(), ..Default::default() })
    }
}

impl Step {
    /// What runs after this step: `hooks.exit`, else `onExit` (lint refuses both).
    pub fn exit_hook(&self) -> Option<LifecycleHook> {
        self.hooks.get(EXIT_HOOK).cloned().or_else(|| LifecycleHook::on_exit(&self.on_exit))
    }
}

impl WorkflowSpec {
    /// What runs after the workflow: `hooks.exit`, else `onExit` (lint refuses both).
    pub fn exit_hook(&self) -> Option<LifecycleHook> {
        self.hooks.get(EXIT_HOOK).cloned().or_else(|| LifecycleHook::on_exit(&self.on_exit))
    }
}

/// `continueOn:`.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ContinueOn {
    /// Go on when the step failed.
    #[serde(default)]
    pub failed: bool,
    /// Go on when the step errored.
    #[serde(default)]
    pub error: bool,
}

/// `withSequence:`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Sequence {
    /// How many numbers, from `start`.
    pub count: Option<AnyString>,
    /// The first number (0).
    pub start: Option<AnyString>,
    /// The last number, inclusive.
    pub end: Option<AnyString>,
    /// printf format, such as `%02d`.
    #[serde(default)]
    pub format: String,
}

/// Fields a step and a DAG task share.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Step {
    /// The name.
    pub name: String,
    /// The template to run.
    #[serde(default)]
    pub template: String,
    /// Or a template of a `WorkflowTemplate`.
    pub template_ref: Option<TemplateRef>,
    /// Or a whole template written in place, without a name (Argo's
    /// `inline`). It runs as a named template would, from the same origin.
    pub inline: Option<Box<Template>>,
    /// Arguments.
    #[serde(default)]
    pub arguments: Arguments,
    /// Run only when true.
    #[serde(default)]
    pub when: String,
    /// A loop over these values.
    pub with_items: Option<Vec<serde_json::Value>>,
    /// A loop over a JSON list.
    #[serde(default)]
    pub with_param: String,
    /// A loop over numbers.
    pub with_sequence: Option<Sequence>,
    /// Failure of this step does not fail its parent.
    pub continue_on: Option<ContinueOn>,
    /// A template run after this step.
    #[serde(default)]
    pub on_exit: String,
    /// Lifecycle hooks: `exit` (as `onExit`, with arguments that may read
    /// this step's outputs) and named hooks run once when their expression
    /// turns true (evaluated as the step starts and as it ends).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hooks: BTreeMap<String, LifecycleHook>,
    /// DAG only: the tasks this one needs to have succeeded.
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// DAG only: an expression over other tasks' results.
    #[serde(default)]
    pub depends: String,
}

/// `dag:` of a template.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Dag {
    /// The tasks.
    pub tasks: Vec<Step>,
    /// Stop starting tasks after one fails (default true).
    pub fail_fast: Option<bool>,
    /// Run only these tasks (names separated by spaces) and what they
    /// depend on; empty: every task.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
}

impl Dag {
    /// The tasks `target` needs (all without a target), in their order;
    /// `Err` names a target that is no task.
    pub fn targeted(&self) -> Result<Vec<Step>, String> {
        let names: Vec<&str> = self.target.split_whitespace().collect();
        if names.is_empty() {
            return Ok(self.tasks.clone());
        }
        let index: BTreeMap<&str, &Step> = self.tasks.iter().map(|t| (t.name.as_str(), t)).collect();
        let mut needed: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
        let mut stack = Vec::new();
        for n in names {
            if !index.contains_key(n) {
                return Err(format!("target {n:?} is not a task of this DAG"));
            }
            stack.push(n);
        }
        while let Some(n) = stack.pop() {
            if !needed.insert(n) {
                continue;
            }
            let task = index[n];
            let from_depends = crate::expr::parse_depends(&task.depends).map(|d| d.tasks()).unwrap_or_default();
            for d in task.dependencies.iter().chain(&from_depends) {
                if let Some((name, _)) = index.get_key_value(d.as_str()) {
                    stack.push(name);
                }
            }
        }
        Ok(self.tasks.iter().filter(|t| needed.contains(t.name.as_str())).cloned().collect())
    }
}

/// `retryStrategy:`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RetryStrategy {
    /// Retries after the first attempt (unbounded when absent).
    pub limit: Option<AnyString>,
    /// Which failures are retried.
    pub retry_policy: Option<RetryPolicy>,
    /// Waits between attempts.
    pub backoff: Option<Backoff>,
    /// An expr-lang condition over `retries` and `lastRetry.*`: retry only while it is true.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub expression: String,
}

/// `retryPolicy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum RetryPolicy {
    /// Failures and errors.
    Always,
    /// Failures only (the step exited non-zero). Argo's default.
    #[default]
    OnFailure,
    /// Errors only (the step could not run).
    OnError,
    /// Errors that look transient.
    OnTransientError,
}

/// `backoff:` of a retry strategy.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Backoff {
    /// The first wait: seconds or a duration such as `2s`, `1m`.
    pub duration: Option<AnyString>,
    /// Each wait is this many times the previous one.
    pub factor: Option<AnyString>,
    /// Give up retrying after this long.
    pub max_duration: Option<AnyString>,
    /// Never wait longer than this.
    pub cap: Option<AnyString>,
}

/// A `ConfigMap` (artifact repositories, controller configuration).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConfigMap {
    /// `v1`.
    pub api_version: String,
    /// `ConfigMap`.
    pub kind: String,
    /// Name and annotations.
    #[serde(default)]
    pub metadata: Metadata,
    /// The entries.
    #[serde(default)]
    pub data: BTreeMap<String, String>,
}

/// A `CronWorkflow` document (what it does: [`crate::cron`]).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CronWorkflow {
    /// `argoproj.io/v1alpha1`.
    pub api_version: String,
    /// `CronWorkflow`.
    pub kind: String,
    /// Its name names its runs.
    #[serde(default)]
    pub metadata: Metadata,
    /// The schedule and the workflow.
    pub spec: CronSpec,
}

/// `spec` of a `CronWorkflow`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CronSpec {
    /// What each run runs.
    pub workflow_spec: WorkflowSpec,
    /// Labels and annotations of each run.
    pub workflow_metadata: Option<Metadata>,
    /// One 5-field cron schedule (older Argo).
    #[serde(default)]
    pub schedule: String,
    /// Cron schedules (Argo 3.6+); a run starts at each time any of them names.
    #[serde(default)]
    pub schedules: Vec<String>,
    /// An IANA time zone the schedules are read in; this host's when empty.
    #[serde(default)]
    pub timezone: String,
    /// `Allow` (the default), `Forbid` or `Replace`.
    #[serde(default)]
    pub concurrency_policy: String,
    /// Nothing is scheduled.
    #[serde(default)]
    pub suspend: bool,
    /// A tick missed by more than this many seconds is skipped.
    pub starting_deadline_seconds: Option<i64>,
    /// Finished successful runs kept (3 when unset).
    pub successful_jobs_history_limit: Option<i32>,
    /// Finished failed runs kept (1 when unset).
    pub failed_jobs_history_limit: Option<i32>,
    /// A condition checked before each run (Argo 3.6+); false skips the tick.
    #[serde(default)]
    pub when: String,
}

/// Where a document came from, for messages.
#[derive(Clone, Debug)]
pub struct Source {
    /// The file.
    pub file: PathBuf,
    /// The line where the document starts.
    pub line: usize,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// Everything read from a set of files.
#[derive(Clone, Debug, Default)]
pub struct Documents {
    /// `Workflow` documents.
    pub workflows: Vec<(Source, Workflow)>,
    /// `WorkflowTemplate` and `ClusterWorkflowTemplate` documents.
    pub templates: Vec<(Source, Workflow)>,
    /// `ConfigMap` documents.
    pub config_maps: Vec<(Source, ConfigMap)>,
    /// `CronWorkflow` documents.
    pub crons: Vec<(Source, CronWorkflow)>,
}

/// A document that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct LoadError {
    /// The file.
    pub file: String,
    /// The line (1-based) closest to the problem.
    pub line: usize,
    /// What is wrong, naming the field.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
}

/// Largest workflow file read: a few times Kubernetes' own limit on one
/// object (about 1.5 MiB in etcd), so every real workflow fits.
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// Deepest nesting (block indentation plus `[`/`{`) a workflow file may
/// have. Real workflows stay below 20; the YAML parser slows down
/// quadratically on deep flow nesting, so deeper input is refused by a scan
/// before it is parsed.
pub const MAX_NESTING: usize = 100;

/// Refuses text larger than [`MAX_FILE_BYTES`] or nested deeper than
/// [`MAX_NESTING`], in one linear pass. The scan over-counts rather than
/// under-counts: brackets inside plain scalars count, and a quote opens a
/// quoted scalar only where one can start.
fn check_bounds(file: &Path, text: &str) -> Result<(), LoadError> {
    let refuse = |line: usize, message: String| LoadError { file: file.display().to_string(), line, message };
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(refuse(
            0,
            format!("{} bytes is more than a workflow file may hold ({} MiB)", text.len(), MAX_FILE_BYTES >> 20),
        ));
    }
    let too_deep = |n: usize| {
        refuse(
            n + 1,
            format!("nested more than {MAX_NESTING} levels deep (indentation, `[` and `{{`); no workflow needs that"),
        )
    };
    let mut scan = Nesting::default();
    for (n, line) in text.split('\n').enumerate() {
        let bytes = line.as_bytes();
        let line_indent = bytes.iter().take_while(|&&b| b == b' ').count();
        if scan.in_block_scalar(line_indent, bytes.len()) {
            continue;
        }
        let start = if scan.quote.is_none() && scan.flow == 0 {
            match scan.block_structure(bytes) {
                Some(start) => start,
                None => continue,
            }
        } else {
            0
        };
        let end = scan.scan(bytes, start).ok_or_else(|| too_deep(n))?;
        if scan.depth() > MAX_NESTING {
            return Err(too_deep(n));
        }
        scan.end_line(line, end, line_indent);
    }
    Ok(())
}

/// What [`check_bounds`] carries from one line to the next.
#[derive(Default)]
struct Nesting {
    /// The indentation of each open block level.
    indents: Vec<usize>,
    /// Open `[` and `{`.
    flow: usize,
    /// The quote of an open quoted scalar.
    quote: Option<u8>,
    /// A block scalar (`|`, `>`): the indentation of the line that opened it,
    /// and that of its first line of text. Lines indented at least that far
    /// are text (scripts), not structure; the first line indented less ends
    /// it, as in YAML, so a less indented line cannot pass for script text.
    block_scalar: Option<(usize, Option<usize>)>,
}

impl Nesting {
    fn depth(&self) -> usize {
        self.indents.len() + self.flow
    }

    /// Whether a line indented `line_indent` (of `len` bytes) is text of the
    /// open block scalar; the first line that is not ends it.
    fn in_block_scalar(&mut self, line_indent: usize, len: usize) -> bool {
        if let Some((parent, content)) = &mut self.block_scalar {
            if line_indent == len {
                return true;
            }
            let content = *content.get_or_insert(line_indent);
            if line_indent > *parent && line_indent >= content {
                return true;
            }
            self.block_scalar = None;
        }
        false
    }

    /// Block structure: each indentation level deeper than the one above,
    /// and each leading `- ` / `? ` / `: ` indicator, nests. Where the line's
    /// content starts, or `None` for a blank or comment line.
    fn block_structure(&mut self, bytes: &[u8]) -> Option<usize> {
        let indent = bytes.iter().take_while(|&&b| b == b' ').count();
        if indent == bytes.len() || bytes[indent] == b'#' {
            return None;
        }
        while self.indents.last().is_some_and(|&top| top >= indent) {
            self.indents.pop();
        }
        self.indents.push(indent);
        let mut i = indent;
        while i + 1 < bytes.len() && matches!(bytes[i], b'-' | b'?' | b':') && bytes[i + 1] == b' ' {
            i += 2;
            while i < bytes.len() && bytes[i] == b' ' {
                i += 1;
            }
            self.indents.push(i);
        }
        Some(i)
    }

    /// Follows quotes and flow brackets through `bytes[i..]`. Where the
    /// content ends (a comment starts), or `None` as soon as the nesting is
    /// deeper than [`MAX_NESTING`].
    fn scan(&mut self, bytes: &[u8], mut i: usize) -> Option<usize> {
        let mut prev = b' ';
        // Whether a scalar may start here: at the start of the line's content,
        // after `[`, `{`, `,`, or an indicator (`: `, `- `). Only there does a
        // quote open a quoted string; inside a plain scalar (`a "b`) it is
        // just a character, and counting it as a string would hide the rest
        // of the line or file from this scan.
        let mut scalar_start = true;
        while i < bytes.len() {
            let b = bytes[i];
            match self.quote {
                Some(b'"') if b == b'\\' => i += 1,
                Some(q) if b == q => self.quote = None,
                Some(_) => {}
                None => {
                    match b {
                        b'#' if prev == b' ' || prev == b'\t' => return Some(i),
                        b'\'' | b'"' if scalar_start => self.quote = Some(b),
                        b'[' | b'{' => self.flow += 1,
                        b']' | b'}' => self.flow = self.flow.saturating_sub(1),
                        _ => {}
                    }
                    let next_is_space = bytes.get(i + 1).is_none_or(|&c| c == b' ' || c == b'\t');
                    scalar_start = match b {
                        b' ' | b'\t' => scalar_start,
                        b'[' | b'{' | b',' => true,
                        b':' | b'-' | b'?' => next_is_space,
                        _ => false,
                    };
                }
            }
            if self.depth() > MAX_NESTING {
                return None;
            }
            prev = b;
            i += 1;
        }
        Some(bytes.len())
    }

    /// After a line whose content ends at `end`: a block scalar it opens,
    /// and the end of a single-quoted scalar outside flow.
    fn end_line(&mut self, line: &str, end: usize, line_indent: usize) {
        if self.quote.is_none() && self.flow == 0 {
            let last = line[..end].split_whitespace().last().unwrap_or("");
            if (last.starts_with('|') || last.starts_with('>'))
                && last[1..].bytes().all(|b| b == b'-' || b == b'+' || b.is_ascii_digit())
            {
                self.block_scalar = Some((line_indent, None));
            }
        }
        // A quoted scalar continues on the next line only inside flow or
        // as a double-quoted string; a stray quote in a block scalar (a
        // script's `don't`) must not hide the rest of the file.
        if self.quote == Some(b'\'') && self.flow == 0 {
            self.quote = None;
        }
    }
}

impl Documents {
    /// Reads every YAML document of `files`.
    pub fn load(files: &[PathBuf]) -> Result<Self, LoadError> {
        let mut docs = Documents::default();
        for file in files {
            if let Ok(meta) = std::fs::metadata(file)
                && meta.len() > MAX_FILE_BYTES
            {
                return Err(LoadError {
                    file: file.display().to_string(),
                    line: 0,
                    message: format!(
                        "{} bytes is more than a workflow file may hold ({} MiB)",
                        meta.len(),
                        MAX_FILE_BYTES >> 20
                    ),
                });
            }
            let text = std::fs::read_to_string(file).map_err(|e| LoadError {
                file: file.display().to_string(),
                line: 0,
                message: format!("cannot read: {e}"),
            })?;
            docs.add(file, &text)?;
        }
        Ok(docs)
    }

    /// Reads every YAML document of `text`, which came from `file`.
    pub fn add(&mut self, file: &Path, text: &str) -> Result<(), LoadError> {
        check_bounds(file, text)?;
        for (line, doc) in split_documents(text) {
            if doc.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
                continue;
            }
            let source = Source { file: file.to_path_buf(), line };
            let err = |line_in_doc: usize, message: String| LoadError {
                file: file.display().to_string(),
                line: line + line_in_doc.saturating_sub(1),
                message,
            };
            let head: Head = serde_yaml_ng::from_str(doc).map_err(|e| {
                let l = e.location().map(|l| l.line()).unwrap_or(1);
                err(l, format!("not a YAML object: {}", strip_location(&e.to_string())))
            })?;
            match (head.api_version.as_str(), head.kind.as_str()) {
                ("argoproj.io/v1alpha1", "Workflow") => docs_push(&mut self.workflows, source, typed(doc, &err)?),
                ("argoproj.io/v1alpha1", "WorkflowTemplate" | "ClusterWorkflowTemplate") => {
                    docs_push(&mut self.templates, source, typed(doc, &err)?)
                }
                ("v1", "ConfigMap") => docs_push(&mut self.config_maps, source, typed(doc, &err)?),
                ("argoproj.io/v1alpha1", "CronWorkflow") => docs_push(&mut self.crons, source, typed(doc, &err)?),
                (api, kind) => {
                    return Err(err(
                        1,
                        format!(
                            "unsupported document `apiVersion: {api}`, `kind: {kind}`: expected an argoproj.io/v1alpha1 \
                             Workflow, CronWorkflow, WorkflowTemplate or ClusterWorkflowTemplate, or a v1 ConfigMap"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn docs_push<T>(list: &mut Vec<(Source, T)>, source: Source, value: T) {
    list.push((source, value));
}

fn typed<T: serde::de::DeserializeOwned>(doc: &str, err: &dyn Fn(usize, String) -> LoadError) -> Result<T, LoadError> {
    let de = serde_yaml_ng::Deserializer::from_str(doc);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let line = inner.location().map(|l| l.line()).unwrap_or(1);
        err(line, format!("field `{path}`: {}", strip_location(&inner.to_string())))
    })
}

/// serde_yaml_ng appends "at line L column C" to some messages; we print our own.
fn strip_location(message: &str) -> String {
    message.split(" at line ").next().unwrap_or(message).to_string()
}

/// Splits a multi-document YAML text at `---` lines, with each document's
/// first line number, so errors can name lines of the whole file.
fn split_documents(text: &str) -> Vec<(usize, &str)> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end();
        if bare == "---" || bare.starts_with("--- ") {
            docs.push((start_line, &text[start..offset]));
            start = offset + line.len();
            start_line = i + 2;
        }
        offset += line.len();
    }
    docs.push((start_line, &text[start..]));
    docs
}

/// Where a script template's source is placed inside the step.
pub const SCRIPT_PATH: &str = "/argo/staging/script";

impl Script {
    /// The interpreter (`sh` when none is given), and its arguments: the
    /// script's file first, as Argo runs a script.
    pub fn command_and_args(&self) -> (Vec<String>, Vec<String>) {
        let command = if self.command.is_empty() { vec!["sh".to_string()] } else { self.command.clone() };
        (command, [vec![SCRIPT_PATH.to_string()], self.args.clone()].concat())
    }
}

impl Artifact {
    /// The archive strategy declared on this artifact, if any.
    pub fn strategy(&self) -> Option<Strategy> {
        let a = self.archive.as_ref()?;
        if a.none.is_some() {
            Some(Strategy::None)
        } else if a.zip.is_some() {
            Some(Strategy::Zip)
        } else if let Some(z) = &a.zstd {
            Some(Strategy::Zstd { level: z.level })
        } else {
            Some(Strategy::Tar {
                level: a.tar.as_ref().and_then(|t| t.compression_level).and_then(|l| u32::try_from(l).ok()),
            })
        }
    }

    /// True when the artifact names a storage location (fully or by key).
    pub fn has_location(&self) -> bool {
        self.plugin.is_some()
            || self.s3.is_some()
            || self.oss.is_some()
            || self.gcs.is_some()
            || self.git.is_some()
            || self.http.is_some()
            || self.raw.is_some()
    }
}

impl Template {
    /// A copy without `steps` and `dag`: what is left is small, whatever
    /// the number of children.
    pub fn clone_without_children(&self) -> Template {
        Template {
            name: self.name.clone(),
            inputs: self.inputs.clone(),
            outputs: self.outputs.clone(),
            container: self.container.clone(),
            script: self.script.clone(),
            steps: None,
            dag: None,
            suspend: self.suspend.clone(),
            http: self.http.clone(),
            retry_strategy: self.retry_strategy.clone(),
            parallelism: self.parallelism,
            fail_fast: self.fail_fast,
            active_deadline_seconds: self.active_deadline_seconds.clone(),
            timeout: self.timeout.clone(),
            archive_location: self.archive_location.clone(),
            volumes: self.volumes.clone(),
            synchronization: self.synchronization.clone(),
            memoize: self.memoize.clone(),
            metrics: self.metrics.clone(),
            daemon: self.daemon,
            sidecars: self.sidecars.clone(),
            metadata: self.metadata.clone(),
            annotations: self.annotations.clone(),
            resource: self.resource.clone(),
            data: self.data.clone(),
            container_set: self.container_set.clone(),
            plugin: self.plugin.clone(),
            node_selector: self.node_selector.clone(),
            tolerations: self.tolerations.clone(),
            service_account_name: self.service_account_name.clone(),
            security_context: self.security_context.clone(),
            pod_spec_patch: self.pod_spec_patch.clone(),
            pod_resources: self.pod_resources.clone(),
            resource_claims: self.resource_claims.clone(),
            init_containers: self.init_containers.clone(),
            affinity: self.affinity.clone(),
            priority_class_name: self.priority_class_name.clone(),
            scheduler_name: self.scheduler_name.clone(),
            host_aliases: self.host_aliases.clone(),
            executor: self.executor.clone(),
            automount_service_account_token: self.automount_service_account_token.clone(),
        }
    }

    /// The kind of template, for dispatch and messages.
    pub fn kind(&self) -> TemplateKind {
        let set = [
            (self.container.is_some(), TemplateKind::Container),
            (self.script.is_some(), TemplateKind::Script),
            (self.steps.is_some(), TemplateKind::Steps),
            (self.dag.is_some(), TemplateKind::Dag),
            (self.suspend.is_some(), TemplateKind::Suspend),
            (self.http.is_some(), TemplateKind::Http),
        ];
        let mut kinds = set.into_iter().filter(|(on, _)| *on).map(|(_, kind)| kind);
        match (kinds.next(), kinds.next()) {
            (Some(kind), None) => kind,
            (None, _) => TemplateKind::None,
            (Some(_), Some(_)) => TemplateKind::Several,
        }
    }
}

/// What a template runs, by which of `container`, `script`, `steps` and `dag`
/// it sets. Only the first four run; lint refuses the other two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateKind {
    /// `container`: a pod.
    Container,
    /// `script`: a pod running its source.
    Script,
    /// `steps`: groups of steps, one group after another.
    Steps,
    /// `dag`: tasks ordered by their dependencies.
    Dag,
    /// `suspend`: waits for a duration or until resumed.
    Suspend,
    /// `http`: one HTTP request, made by `ferry` itself.
    Http,
    /// None of them (a resource, data, containerSet or plugin template, which lint refuses).
    None,
    /// More than one of the five.
    Several,
}

impl TemplateKind {
    /// Runs as a pod (a container or a script), not as nested nodes.
    pub fn is_pod(self) -> bool {
        matches!(self, TemplateKind::Container | TemplateKind::Script)
    }

    /// The field that makes the kind, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateKind::Container => "container",
            TemplateKind::Script => "script",
            TemplateKind::Steps => "steps",
            TemplateKind::Dag => "dag",
            TemplateKind::Suspend => "suspend",
            TemplateKind::Http => "http",
            TemplateKind::None => "none",
            TemplateKind::Several => "several",
        }
    }
}

impl std::fmt::Display for TemplateKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Documents, LoadError> {
        let mut d = Documents::default();
        d.add(Path::new("wf.yaml"), text).map(|()| d)
    }

    #[test]
    fn reads_a_multi_document_file() {
        let d = load(
            "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {generateName: a-}\nspec:\n  entrypoint: main\n  templates:\n  - name: main\n    container: {image: alpine, command: [echo, 1]}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: artifact-repositories}\ndata: {x: 'y'}\n",
        )
        .unwrap();
        assert_eq!(d.workflows.len(), 1);
        assert_eq!(d.config_maps.len(), 1);
        assert_eq!(d.config_maps[0].0.line, 10);
        assert_eq!(d.workflows[0].1.spec.templates[0].kind(), TemplateKind::Container);
    }

    #[test]
    fn an_unsupported_field_is_named_with_its_line() {
        let err = load(
            "# leading comment\n---\napiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n  entrypoint: main\n  templates:\n  - name: main\n    podSpec: {}\n",
        )
        .unwrap_err();
        assert_eq!(err.line, 9, "{err}");
        assert!(err.message.contains("spec.templates[0]"), "{err}");
        assert!(err.message.contains("podSpec"), "{err}");
    }

    #[test]
    fn numbers_are_accepted_where_argo_takes_any_string() {
        let d = load(
            "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n  arguments:\n    parameters: [{name: n, value: 3}, {name: b, value: true}]\n",
        )
        .unwrap();
        let p = &d.workflows[0].1.spec.arguments.parameters;
        assert_eq!(p[0].value.as_ref().unwrap().0, "3");
        assert_eq!(p[1].value.as_ref().unwrap().0, "true");
    }

    #[test]
    fn file_modes_read_as_argo_reads_them() {
        let d = load(
            "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n  arguments:\n    artifacts: [{name: a, mode: 0755}, {name: b, mode: 493}, {name: c, mode: '0o600'}]\n",
        )
        .unwrap();
        let modes: Vec<_> = d.workflows[0].1.spec.arguments.artifacts.iter().map(|a| a.mode).collect();
        assert_eq!(modes, [Some(0o755), Some(0o755), Some(0o600)]);
        assert!(load("apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n  arguments:\n    artifacts: [{name: a, mode: 0999}]\n").is_err());
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing_and_large_workflows_still_load() {
        for (text, line) in [
            ("[".repeat(100_000), 1),
            (format!("apiVersion: v1\nkind: ConfigMap\ndata: {}\n", "{a: ".repeat(50_000)), 3),
            (format!("x:\n{}", (0..200).map(|i| format!("{}- \n", " ".repeat(i))).collect::<String>()), 101),
            (format!("{}1\n", "- ".repeat(100_000)), 1),
            // Lines less indented than a script's text end the script.
            (format!("t:\n  - script: |\n      echo\n    name: {}\n", "[".repeat(100_000)), 4),
            // A quote inside a plain scalar opens no string.
            (format!("entrypoint: a \"b\nx: {}\n", "[".repeat(100_000)), 2),
            (format!("x: [a 'b, {}\n", "[".repeat(100_000)), 1),
        ] {
            let err = load(&text).unwrap_err();
            assert!(err.message.contains("nested more than 100 levels"), "{err}");
            assert_eq!((err.file.as_str(), err.line), ("wf.yaml", line), "{err}");
        }
        let big = "x".repeat(MAX_FILE_BYTES as usize + 1);
        assert!(load(&big).unwrap_err().message.contains("more than a workflow file may hold"));
        // 2,000 templates (about 300 KB), brackets in scripts and quotes
        // with apostrophes: loads.
        let templates: String = (0..2000)
            .map(|i| format!("  - name: t{i}\n    script:\n      image: alpine\n      source: |\n        [ -f x ] && echo \"[[[\" don't [[ stop\n        echo '[' {{\n"))
            .collect();
        let text = format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n  entrypoint: t0\n  templates:\n{templates}"
        );
        assert!(text.len() > 200_000);
        assert_eq!(load(&text).unwrap().workflows[0].1.spec.templates.len(), 2000);
    }

    #[test]
    fn unknown_kinds_are_refused() {
        let err = load("apiVersion: v1\nkind: Pod\n").unwrap_err();
        assert!(err.message.contains("kind: Pod"), "{err}");
    }
}
