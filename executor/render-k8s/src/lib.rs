//! `ferry render --runtime kubernetes`: the Pod each step of a workflow
//! runs as on Kubernetes, in Argo Workflows v4's layout for artifact plugins
//! (its default, non-init-less layout), built from the typed API structs of
//! `k8s-openapi` so every field is one the API server knows.
//!
//! A step's pod holds: the executor's `init` container; one init container
//! `init-artifact-<driver>` per driver its inputs use, running the driver's
//! image with its socket in its own `/tmp`; the executor's `wait` container;
//! `main`; and one sidecar `artifact-plugin-<driver>` per driver its outputs
//! (and archived logs) use, sharing an `emptyDir` socket volume with `wait`
//! at `/tmp/artifact-plugins/<driver>`. Every location goes through a driver
//! in Ferry, so `s3:`, `gcs:` and `oss:` blocks appear as the drivers of those
//! names; the images come from the driver registry.

#![warn(unreachable_pub)]

use ferry_workflow::model::Template;
use ferry_workflow::naming::{INIT_DRIVER_PREFIX, SIDECAR_DRIVER_PREFIX, pod_name};
use ferry_workflow::plan::Plan;
use ferry_workflow::registry::RegistryError;
use ferry_workflow::time::active_deadline;
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapKeySelector, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, Pod, PodSpec,
    ResourceRequirements, SecretKeySelector, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::{BTreeMap, BTreeSet};

/// Argo's executor binary, copied into `/var/run/argo` by the `init` container.
const ARGOEXEC: &str = "/var/run/argo/argoexec";
/// The entrypoint of Ferry's driver images (deploy/images/Dockerfile); Argo
/// reads it from the image and appends the socket path.
const DRIVER_ENTRYPOINT: &str = "/entrypoint";

/// What the pods are rendered with.
#[derive(Clone, Debug)]
pub struct RenderOptions {
    /// The image of the `init` and `wait` containers (and of argoexec).
    pub executor_image: String,
    /// The namespace the pods go to (`metadata.namespace`), if given.
    pub namespace: Option<String>,
    /// Memory limit of each driver container. Ferry's drivers stay under
    /// 128 MiB moving 20 GiB (docs/benchmarks.md), so twice that by default.
    pub driver_memory_limit: String,
}

impl Default for RenderOptions {
    fn default() -> RenderOptions {
        RenderOptions {
            executor_image: "quay.io/argoproj/argoexec:v4.0.0".into(),
            namespace: None,
            driver_memory_limit: "256Mi".into(),
        }
    }
}

/// A failure to render.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A template's field does not fit the Kubernetes type.
    #[error("template {template}: {field}: {message}")]
    Field {
        /// The template.
        template: String,
        /// The field, as in the workflow.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A driver is not in the registry.
    #[error("template {template}: {source}")]
    Driver {
        /// The template.
        template: String,
        /// The registry's answer.
        source: RegistryError,
    },
}

/// One pod per template that runs a container or a script, in file order:
/// each named one, then those written inline in its steps or tasks.
pub fn render(plan: &Plan, options: &RenderOptions) -> Result<Vec<Pod>, RenderError> {
    let mut found = Vec::new();
    for t in &plan.spec.templates {
        let node = format!("{}.{}", plan.name, t.name);
        if t.kind().is_pod() {
            found.push(PodTemplate { t, label: t.name.clone(), node: node.clone() });
        }
        inline_pod_templates(t, &t.name, &node, &mut found);
    }
    found.iter().map(|p| pod(plan, p, options)).collect()
}

/// A template that runs as a pod, with what names it.
struct PodTemplate<'a> {
    t: &'a Template,
    /// How errors name it: its name, or for an inline template the path of
    /// its step, such as `main.steps[0][1].inline`.
    label: String,
    /// The node name the pod is rendered for.
    node: String,
}

/// The pod templates written inline in `t`'s steps or tasks, at any depth.
/// Their node is named after the steps that hold them.
fn inline_pod_templates<'a>(t: &'a Template, label: &str, node: &str, found: &mut Vec<PodTemplate<'a>>) {
    let steps = t
        .steps
        .iter()
        .flatten()
        .enumerate()
        .flat_map(|(g, group)| group.iter().enumerate().map(move |(i, step)| (format!("steps[{g}][{i}]"), step)));
    let tasks =
        t.dag.iter().flat_map(|d| d.tasks.iter().enumerate().map(|(i, task)| (format!("dag.tasks[{i}]"), task)));
    for (at, step) in steps.chain(tasks) {
        let Some(inline) = &step.inline else { continue };
        let (label, node) = (format!("{label}.{at}.inline"), format!("{node}.{}", step.name));
        if inline.kind().is_pod() {
            found.push(PodTemplate { t: inline, label: label.clone(), node: node.clone() });
        }
        inline_pod_templates(inline, &label, &node, found);
    }
}

fn empty_dir(name: &str) -> Volume {
    Volume { name: name.into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Default::default() }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount { name: name.into(), mount_path: path.into(), ..Default::default() }
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar { name: name.into(), value: Some(value.into()), ..Default::default() }
}

/// Argo's plugin containers run as the image's non-root user, with nothing more.
fn driver_security() -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Default::default() }),
        ..Default::default()
    }
}

fn driver_resources(options: &RenderOptions) -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), Quantity("10m".into())),
            ("memory".to_string(), Quantity("32Mi".into())),
        ])),
        limits: Some(BTreeMap::from([("memory".to_string(), Quantity(options.driver_memory_limit.clone()))])),
        ..Default::default()
    }
}

fn log_options() -> Vec<String> {
    ["--loglevel", "info", "--log-format", "text"].map(String::from).to_vec()
}

/// A driver's container: argoexec in `role` (`artifact-plugin-init …`,
/// `artifact-plugin-sidecar`) starting the image's entrypoint on the socket,
/// with the drivers' resources and security context.
fn driver_container(
    name: String,
    image: String,
    role: Vec<String>,
    driver: &str,
    options: &RenderOptions,
) -> Container {
    let argv = [
        role,
        log_options(),
        vec!["--".into(), DRIVER_ENTRYPOINT.into(), format!("/tmp/artifact-plugins/{driver}/socket")],
    ]
    .concat();
    Container {
        name,
        image: Some(image),
        command: Some(vec![ARGOEXEC.into()]),
        args: Some(argv),
        resources: Some(driver_resources(options)),
        security_context: Some(driver_security()),
        ..Default::default()
    }
}

fn socket_volume(driver: &str) -> String {
    format!("{SIDECAR_DRIVER_PREFIX}{driver}")
}

/// What every container of one template's pod is built from.
struct PodParts<'a> {
    t: &'a Template,
    /// How errors name the template.
    label: &'a str,
    options: &'a RenderOptions,
    /// The template as JSON (`ARGO_TEMPLATE`).
    template_json: String,
    var_run_argo: VolumeMount,
}

impl PodParts<'_> {
    fn field(&self, field: &str, message: String) -> RenderError {
        RenderError::Field { template: self.label.to_string(), field: field.into(), message }
    }

    /// `init`, which loads what no plugin loads and copies argoexec for the
    /// others, then one `init-artifact-<driver>` per input driver.
    fn init_containers(&self, inputs: &BTreeSet<String>, image_of: &ImageOf) -> Result<Vec<Container>, RenderError> {
        let mut init_containers = vec![Container {
            name: "init".into(),
            image: Some(self.options.executor_image.clone()),
            command: Some(vec!["argoexec".into()]),
            args: Some([vec!["init".to_string()], log_options()].concat()),
            env: Some(vec![env("ARGO_CONTAINER_NAME", "init"), env("ARGO_TEMPLATE", self.template_json.clone())]),
            volume_mounts: Some(vec![mount("input-artifacts", "/argo/inputs/artifacts"), self.var_run_argo.clone()]),
            ..Default::default()
        }];
        for driver in inputs {
            let name = format!("{INIT_DRIVER_PREFIX}{driver}");
            let role = vec!["artifact-plugin-init".to_string(), "--plugin-name".into(), driver.clone()];
            let mut c = driver_container(name.clone(), image_of(driver)?, role, driver, self.options);
            c.env = Some(vec![env("ARGO_CONTAINER_NAME", name), env("ARGO_TEMPLATE", self.template_json.clone())]);
            c.volume_mounts = Some(vec![mount("input-artifacts", "/argo/inputs/artifacts"), self.var_run_argo.clone()]);
            init_containers.push(c);
        }
        Ok(init_containers)
    }

    /// `wait`, which hands the outputs to the sidecars' sockets.
    fn wait(&self, outputs: &BTreeSet<String>) -> Container {
        let sidecar_names: Vec<String> = outputs.iter().map(|d| format!("{SIDECAR_DRIVER_PREFIX}{d}")).collect();
        let mut wait_mounts = vec![
            self.var_run_argo.clone(),
            VolumeMount {
                name: "tmp-dir-argo".into(),
                mount_path: "/tmp".into(),
                sub_path: Some("tmp".into()),
                ..Default::default()
            },
        ];
        wait_mounts.extend(outputs.iter().map(|d| mount(&socket_volume(d), &format!("/tmp/artifact-plugins/{d}"))));
        Container {
            name: "wait".into(),
            image: Some(self.options.executor_image.clone()),
            command: Some(vec!["argoexec".into()]),
            args: Some([vec!["wait".to_string()], log_options()].concat()),
            env: Some(vec![
                env("ARGO_CONTAINER_NAME", "wait"),
                env("ARGO_TEMPLATE", self.template_json.clone()),
                env("ARGO_ARTIFACT_PLUGIN_NAMES", sidecar_names.join(",")),
            ]),
            volume_mounts: Some(wait_mounts),
            ..Default::default()
        }
    }

    /// One `artifact-plugin-<driver>` sidecar per output driver.
    fn sidecars(&self, outputs: &BTreeSet<String>, image_of: &ImageOf) -> Result<Vec<Container>, RenderError> {
        let mut containers = Vec::new();
        for driver in outputs {
            let name = format!("{SIDECAR_DRIVER_PREFIX}{driver}");
            let role = vec!["artifact-plugin-sidecar".into()];
            let mut c = driver_container(name.clone(), image_of(driver)?, role, driver, self.options);
            c.env = Some(vec![env("ARGO_CONTAINER_NAME", name)]);
            c.volume_mounts = Some(vec![
                mount(&socket_volume(driver), &format!("/tmp/artifact-plugins/{driver}")),
                // The staged outputs the wait container hands over.
                VolumeMount {
                    name: "tmp-dir-argo".into(),
                    mount_path: "/tmp/argo/outputs".into(),
                    sub_path: Some("tmp/argo/outputs".into()),
                    ..Default::default()
                },
                self.var_run_argo.clone(),
            ]);
            containers.push(c);
        }
        Ok(containers)
    }

    /// `activeDeadlineSeconds`, in whole seconds (rounded up, as the API takes no fraction).
    fn deadline(&self) -> Result<Option<i64>, RenderError> {
        match &self.t.active_deadline_seconds {
            // An expression is resolved when the step runs, not here.
            Some(s) if s.0.contains("{{") => Ok(None),
            Some(s) => {
                let d = active_deadline(&s.0).ok_or_else(|| {
                    self.field("activeDeadlineSeconds", format!("{:?} is not a number of seconds", s.0))
                })?;
                let whole = d.as_secs() + u64::from(d.subsec_nanos() > 0);
                Ok(Some(i64::try_from(whole).unwrap_or(i64::MAX)))
            }
            None => Ok(None),
        }
    }
}

/// A driver's image, from the registry.
type ImageOf<'a> = dyn Fn(&str) -> Result<String, RenderError> + 'a;

fn pod(plan: &Plan, found: &PodTemplate<'_>, options: &RenderOptions) -> Result<Pod, RenderError> {
    let (t, label) = (found.t, found.label.as_str());
    let parts = PodParts {
        t,
        label,
        options,
        template_json: serde_json::to_string(t).map_err(|e| RenderError::Field {
            template: label.to_string(),
            field: "(template)".into(),
            message: e.to_string(),
        })?,
        var_run_argo: mount("var-run-argo", "/var/run/argo"),
    };
    let (inputs, outputs) = (plan.input_drivers(t), plan.output_drivers(t));
    let image_of = |driver: &str| {
        plan.registry
            .get(driver)
            .map(|d| d.image.clone())
            .map_err(|source| RenderError::Driver { template: label.to_string(), source })
    };
    let init_containers = parts.init_containers(&inputs, &image_of)?;
    let mut containers = vec![parts.wait(&outputs), main(t, &parts.var_run_argo).map_err(|(f, m)| parts.field(&f, m))?];
    containers.extend(parts.sidecars(&outputs, &image_of)?);
    for (i, sidecar) in t.sidecars.iter().enumerate() {
        let field = format!("sidecars[{i}]");
        let mut c: Container =
            kubernetes(Some(sidecar), &field).map_err(|(f, m)| parts.field(&f, m))?.unwrap_or_default();
        c.env = Some(sidecar.env.iter().map(user_env).collect());
        containers.push(c);
    }
    let mut volumes = vec![empty_dir("var-run-argo"), empty_dir("tmp-dir-argo"), empty_dir("input-artifacts")];
    volumes.extend(outputs.iter().map(|d| empty_dir(&socket_volume(d))));
    let node = found.node.clone();
    let service_account = t
        .service_account_name
        .as_ref()
        .or(plan.spec.service_account_name.as_ref())
        .and_then(|v| v.as_str())
        .map(String::from);
    Ok(Pod {
        metadata: ObjectMeta {
            name: Some(pod_name(&plan.name, &t.name, &node)),
            namespace: options.namespace.clone(),
            labels: Some(BTreeMap::from([
                ("workflows.argoproj.io/workflow".to_string(), plan.name.clone()),
                ("workflows.argoproj.io/completed".to_string(), "false".to_string()),
            ])),
            // An inline template has no name to annotate.
            annotations: Some(
                [("workflows.argoproj.io/node-name", node), ("workflows.argoproj.io/template-name", t.name.clone())]
                    .into_iter()
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            ),
            ..Default::default()
        },
        spec: Some(PodSpec {
            restart_policy: Some("Never".into()),
            active_deadline_seconds: parts.deadline()?,
            service_account_name: service_account,
            init_containers: Some(init_containers),
            containers,
            volumes: Some(volumes),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// The main container: the template's command under Argo's emissary, its
/// resources, and each input artifact mounted from the loaded files.
fn main(t: &Template, var_run_argo: &VolumeMount) -> Result<Container, (String, String)> {
    let (image, command, args, env_vars, working_dir, resources) = match (&t.container, &t.script) {
        (Some(c), _) => (&c.image, c.command.clone(), c.args.clone(), &c.env, &c.working_dir, &c.resources),
        (None, Some(s)) => {
            let (command, args) = s.command_and_args();
            (&s.image, command, args, &s.env, &s.working_dir, &s.resources)
        }
        (None, None) => return Err(("container".into(), "the template runs nothing".into())),
    };
    let kind = if t.container.is_some() { "container" } else { "script" };
    let probe = t.container.as_ref().and_then(|c| c.readiness_probe.as_ref());
    let probe = probe.or_else(|| t.script.as_ref().and_then(|s| s.readiness_probe.as_ref()));
    if image.is_empty() {
        return Err((format!("{kind}.image"), "is required on Kubernetes".into()));
    }
    let resources: Option<ResourceRequirements> = match resources {
        Some(value) => Some(
            serde_yaml_ng::from_value(value.clone())
                .map_err(|e| (format!("{kind}.resources"), format!("not a Kubernetes ResourceRequirements: {e}")))?,
        ),
        None => None,
    };
    let argv = [vec!["emissary".to_string()], log_options(), vec!["--".to_string()], command, args].concat();
    let mut mounts = vec![var_run_argo.clone()];
    mounts.extend(t.inputs.artifacts.iter().filter(|a| !a.path.is_empty()).map(|a| VolumeMount {
        name: "input-artifacts".into(),
        mount_path: a.path.clone(),
        sub_path: Some(a.name.clone()),
        ..Default::default()
    }));
    Ok(Container {
        name: "main".into(),
        image: Some(image.clone()),
        command: Some(vec![ARGOEXEC.into()]),
        args: Some(argv),
        env: Some(std::iter::once(env("ARGO_CONTAINER_NAME", "main")).chain(env_vars.iter().map(user_env)).collect()),
        working_dir: (!working_dir.is_empty()).then(|| working_dir.clone()),
        resources,
        readiness_probe: kubernetes(probe, &format!("{kind}.readinessProbe"))?,
        volume_mounts: Some(mounts),
        ..Default::default()
    })
}

/// A template's own env var: its value, or where Kubernetes reads it from.
fn user_env(e: &ferry_workflow::model::EnvVar) -> EnvVar {
    let from = e.value_from.as_ref();
    let value_from = from.map(|f| EnvVarSource {
        secret_key_ref: f.secret_key_ref.as_ref().map(|k| SecretKeySelector {
            name: k.name.clone(),
            key: k.key.clone(),
            optional: k.optional,
        }),
        config_map_key_ref: f.config_map_key_ref.as_ref().map(|k| ConfigMapKeySelector {
            name: k.name.clone(),
            key: k.key.clone(),
            optional: k.optional,
        }),
        ..Default::default()
    });
    EnvVar { name: e.name.clone(), value: from.is_none().then(|| e.value.clone()), value_from }
}

/// A field Ferry models as Argo writes it, as the Kubernetes type of the same shape.
fn kubernetes<T: serde::Serialize, K: serde::de::DeserializeOwned>(
    value: Option<&T>,
    field: &str,
) -> Result<Option<K>, (String, String)> {
    let Some(value) = value else { return Ok(None) };
    let json = serde_json::to_value(value).map_err(|e| (field.to_string(), e.to_string()))?;
    serde_json::from_value(strip_nulls(json)).map(Some).map_err(|e| (field.to_string(), e.to_string()))
}

/// The JSON without its `null`s and empty texts and lists (Ferry's defaults,
/// unset in Kubernetes), a `port` that is a number as a number (Kubernetes
/// reads a text port as a port's name).
fn strip_nulls(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.into_iter()
                .filter(|(_, v)| !(v.is_null() || v == "" || v.as_array().is_some_and(Vec::is_empty)))
                .map(|(k, v)| match (k.as_str(), v.as_str().and_then(|p| p.parse::<u16>().ok())) {
                    ("port", Some(number)) => (k, serde_json::Value::from(number)),
                    _ => (k, strip_nulls(v)),
                })
                .collect(),
        ),
        other => other,
    }
}

/// The pods as one YAML stream (`---` between documents), as `kubectl apply -f` takes.
pub fn to_yaml(pods: &[Pod]) -> Result<String, String> {
    let mut out = String::new();
    for pod in pods {
        out.push_str("---\n");
        let value = serde_json::to_value(pod).map_err(|e| e.to_string())?;
        out.push_str(&serde_yaml_ng::to_string(&value).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_workflow::model::{Documents, SCRIPT_PATH};
    use ferry_workflow::plan::PlanOptions;
    use ferry_workflow::repository::Repository;

    fn plan(spec: &str) -> Plan {
        let text = format!("apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {{name: wf}}\nspec:\n{spec}");
        let mut docs = Documents::default();
        docs.add(std::path::Path::new("wf.yaml"), &text).unwrap();
        let options = PlanOptions {
            registry: ferry_workflow::registry::Registry::builtin(),
            fallback_repository: Some(Repository::embedded(std::path::Path::new("/repo"))),
            ..Default::default()
        };
        ferry_workflow::lint::checked(Plan::build(&docs, &options).unwrap()).unwrap()
    }

    const PASSING: &str = "  entrypoint: main\n  templates:\n  - name: main\n    steps:\n    - - {name: a, template: produce}\n    - - {name: b, template: consume, arguments: {artifacts: [{name: in, from: '{{steps.a.outputs.artifacts.out}}'}]}}\n  - name: produce\n    container:\n      image: alpine:3.20\n      command: [sh, -c, 'echo hi > /tmp/out']\n      resources: {limits: {memory: 64Mi, cpu: '1'}}\n    outputs:\n      artifacts:\n      - {name: out, path: /tmp/out}\n      - {name: big, path: /tmp/big, s3: {bucket: b, key: k}}\n  - name: consume\n    activeDeadlineSeconds: 30\n    inputs:\n      artifacts: [{name: in, path: /in/file}]\n    script: {image: alpine:3.20, source: 'cat /in/file'}\n";

    fn names(containers: &[Container]) -> Vec<&str> {
        containers.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn a_producing_step_has_one_sidecar_per_output_driver_sharing_a_socket_volume_with_wait() {
        let pods = render(&plan(PASSING), &RenderOptions::default()).unwrap();
        assert_eq!(pods.len(), 2, "one pod per container or script template");
        let spec = pods[0].spec.as_ref().unwrap();
        assert_eq!(names(spec.init_containers.as_ref().unwrap()), ["init"], "no inputs, no plugin init containers");
        assert_eq!(names(&spec.containers), ["wait", "main", "artifact-plugin-fs", "artifact-plugin-s3"]);
        let wait = &spec.containers[0];
        let plugins = wait.env.as_ref().unwrap().iter().find(|e| e.name == "ARGO_ARTIFACT_PLUGIN_NAMES").unwrap();
        assert_eq!(plugins.value.as_deref(), Some("artifact-plugin-fs,artifact-plugin-s3"));
        for driver in ["fs", "s3"] {
            let sidecar = spec.containers.iter().find(|c| c.name == format!("artifact-plugin-{driver}")).unwrap();
            assert_eq!(
                sidecar.image.as_deref(),
                Some(format!("ferry/driver-{driver}:{}", env!("CARGO_PKG_VERSION")).as_str())
            );
            let socket = format!("/tmp/artifact-plugins/{driver}");
            assert_eq!(sidecar.args.as_ref().unwrap().last().unwrap(), &format!("{socket}/socket"));
            let shared = |c: &Container| {
                c.volume_mounts
                    .as_ref()
                    .unwrap()
                    .iter()
                    .any(|m| m.mount_path == socket && m.name == format!("artifact-plugin-{driver}"))
            };
            assert!(shared(sidecar) && shared(wait), "{driver}: the socket directory is not shared with wait");
            assert!(
                spec.volumes
                    .as_ref()
                    .unwrap()
                    .iter()
                    .any(|v| v.name == format!("artifact-plugin-{driver}") && v.empty_dir.is_some())
            );
            assert_eq!(sidecar.security_context.as_ref().unwrap().run_as_non_root, Some(true));
            assert!(sidecar.resources.as_ref().unwrap().limits.as_ref().unwrap().contains_key("memory"));
        }
        let main = &spec.containers[1];
        let limits = main.resources.as_ref().unwrap().limits.as_ref().unwrap();
        assert_eq!(limits["memory"], Quantity("64Mi".into()), "the template's resources");
        assert_eq!(&main.args.as_ref().unwrap()[5..], ["--", "sh", "-c", "echo hi > /tmp/out"]);
    }

    #[test]
    fn a_consuming_step_loads_through_an_init_container_and_mounts_its_input() {
        let pods =
            render(&plan(PASSING), &RenderOptions { namespace: Some("argo".into()), ..Default::default() }).unwrap();
        let pod = &pods[1];
        assert_eq!(pod.metadata.namespace.as_deref(), Some("argo"));
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(names(spec.init_containers.as_ref().unwrap()), ["init", "init-artifact-fs"]);
        assert_eq!(names(&spec.containers), ["wait", "main"], "no outputs, no sidecars");
        assert_eq!(spec.active_deadline_seconds, Some(30));
        let main = &spec.containers[1];
        let input = main.volume_mounts.as_ref().unwrap().iter().find(|m| m.mount_path == "/in/file").unwrap();
        assert_eq!((input.name.as_str(), input.sub_path.as_deref()), ("input-artifacts", Some("in")));
        assert!(main.args.as_ref().unwrap().ends_with(&["sh".to_string(), SCRIPT_PATH.to_string()]));
    }

    #[test]
    fn probes_sidecars_and_env_from_secrets_render_as_kubernetes_has_them() {
        let spec = "  entrypoint: t\n  templates:\n  - name: t\n    container:\n      image: x\n      command: ['true']\n      env: [{name: P, valueFrom: {secretKeyRef: {name: db, key: pw}}}, {name: Q, value: q}]\n      readinessProbe: {httpGet: {path: /ok, port: '8080'}, periodSeconds: 2}\n    sidecars:\n    - {name: web, image: nginx, command: [nginx], mirrorVolumeMounts: true}\n";
        let pods = render(&plan(spec), &RenderOptions::default()).unwrap();
        let containers = &pods[0].spec.as_ref().unwrap().containers;
        assert_eq!(names(containers), ["wait", "main", "web"]);
        let main = &containers[1];
        let probe = main.readiness_probe.as_ref().unwrap();
        let get = probe.http_get.as_ref().unwrap();
        assert_eq!(
            get.port,
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8080),
            "a number, not a port name"
        );
        assert_eq!((get.path.as_deref(), probe.period_seconds), (Some("/ok"), Some(2)));
        let env = main.env.as_ref().unwrap();
        let secret = env.iter().find(|e| e.name == "P").unwrap();
        assert_eq!(secret.value, None);
        assert_eq!(secret.value_from.as_ref().unwrap().secret_key_ref.as_ref().unwrap().key, "pw");
        assert_eq!(env.iter().find(|e| e.name == "Q").unwrap().value.as_deref(), Some("q"));
        assert_eq!(containers[2].command.as_deref(), Some(&["nginx".to_string()][..]));
    }

    #[test]
    fn bad_fields_are_named() {
        let spec = "  entrypoint: t\n  templates:\n  - name: t\n    container: {image: x, command: ['true'], resources: {limits: 3}}\n";
        let err = render(&plan(spec), &RenderOptions::default()).unwrap_err().to_string();
        assert!(err.contains("template t") && err.contains("container.resources"), "{err}");
        let spec = "  entrypoint: t\n  templates:\n  - name: t\n    container: {command: ['true']}\n";
        let err = render(&plan(spec), &RenderOptions::default()).unwrap_err().to_string();
        assert!(err.contains("template t") && err.contains("container.image"), "{err}");
    }

    #[test]
    fn the_yaml_is_one_document_per_pod_with_kind_and_api_version() {
        let yaml = to_yaml(&render(&plan(PASSING), &RenderOptions::default()).unwrap()).unwrap();
        assert_eq!(yaml.matches("---\n").count(), 2);
        assert_eq!(yaml.matches("kind: Pod\n").count(), 2, "{yaml}");
        assert_eq!(yaml.matches("apiVersion: v1\n").count(), 2);
    }

    #[test]
    fn a_deadline_renders_in_whole_seconds_as_ferry_run_reads_it() {
        let deadline = |value: &str| {
            let spec = format!(
                "  entrypoint: main\n  templates:\n  - name: main\n    activeDeadlineSeconds: {value}\n    container: {{image: a, command: [sh]}}\n"
            );
            let options = PlanOptions { registry: ferry_workflow::registry::Registry::builtin(), ..Default::default() };
            let mut docs = Documents::default();
            let text =
                format!("apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {{name: wf}}\nspec:\n{spec}");
            docs.add(std::path::Path::new("wf.yaml"), &text).unwrap();
            // Built without lint, so a value lint refuses still reaches the renderer.
            let plan = Plan::build(&docs, &options).unwrap().plan;
            render(&plan, &RenderOptions::default()).map(|pods| pods[0].spec.as_ref().unwrap().active_deadline_seconds)
        };
        assert_eq!(deadline("30").unwrap(), Some(30));
        assert_eq!(deadline("'1m30s'").unwrap(), Some(90));
        assert_eq!(deadline("'1500ms'").unwrap(), Some(2), "rounded up: the API takes whole seconds");
        let err = deadline("'soon'").unwrap_err().to_string();
        assert!(err.contains("activeDeadlineSeconds") && err.contains("\"soon\" is not a number of seconds"), "{err}");
    }

    #[test]
    fn inline_pod_templates_render_at_any_depth_and_errors_name_their_step() {
        let spec = "  entrypoint: main\n  templates:\n  - name: main\n    steps:\n    - - name: a\n        inline:\n          container: {image: alpine:3.20, command: [sh, -c, 'echo hi > /tmp/out']}\n          outputs: {artifacts: [{name: out, path: /tmp/out}]}\n    - - name: b\n        inline:\n          dag:\n            tasks:\n            - {name: c, inline: {script: {image: alpine:3.20, source: 'true'}}}\n";
        let pods = render(&plan(spec), &RenderOptions::default()).unwrap();
        let nodes: Vec<&str> = pods
            .iter()
            .map(|p| p.metadata.annotations.as_ref().unwrap()["workflows.argoproj.io/node-name"].as_str())
            .collect();
        assert_eq!(nodes, ["wf.main.a", "wf.main.b.c"]);
        for (pod, node) in pods.iter().zip(nodes) {
            assert_eq!(
                pod.metadata.name.as_deref(),
                Some(pod_name("wf", "", node).as_str()),
                "no template in the name"
            );
            assert!(!pod.metadata.annotations.as_ref().unwrap().contains_key("workflows.argoproj.io/template-name"));
        }
        assert_eq!(names(pods[0].spec.as_ref().unwrap().containers.as_slice()), ["wait", "main", "artifact-plugin-fs"]);
        let bad = spec.replace("image: alpine:3.20, source", "source");
        let err = render(&plan(&bad), &RenderOptions::default()).unwrap_err().to_string();
        assert!(err.starts_with("template main.steps[1][0].inline.dag.tasks[0].inline: "), "{err}");
    }
}
